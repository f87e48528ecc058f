//! Sessions and links (part 2 §2.5, §2.6): channels, transfer windows, handles, link credit,
//! deliveries and dispositions, layered on the connection.
//!
//! A session is named by its local channel ([`SessionId`]), a link by its session and local
//! handle ([`LinkId`]). The peer's channel and handle numbers are mapped to ours on arrival, so
//! the caller never sees them.

use crate::unsettled::Unsettled;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use sluice_codec::frame::encode_transfer;
use sluice_codec::transport::{
    Attach, Begin, DeliveryState, DeliveryTag, Detach, Disposition, End, Error, Flow, Performative,
    ReceiverSettleMode, Role, Transfer, conditions,
};
use sluice_codec::types::{Str, Symbol};

use crate::connection::Connection;
use crate::error::ConnectionError;
use crate::event::Event;
use crate::slots::Slots;

/// A session, by its local channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u16);

/// A link, by its session and local handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId {
    /// The session the link belongs to.
    pub session: SessionId,
    /// Our handle for it.
    pub handle: u32,
}

/// Why a delivery could not be sent now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No such link, or it is not an attached sender.
    #[error("not an attached sending link")]
    NotSender,
    /// The receiver has granted no credit.
    #[error("no link credit")]
    NoCredit,
    /// The session's outgoing window is closed: the peer takes no more transfers for now.
    #[error("the session window is full")]
    WindowFull,
    /// The peer has left `Config::link_unsettled_max` of this link's deliveries unsettled: a
    /// consumer that never acknowledges must not make us hold unbounded state.
    #[error("too many unsettled deliveries on the link")]
    TooManyUnsettled,
    /// The peer's max-frame-size cannot hold even the transfer performative.
    #[error("the peer's frame size cannot hold a transfer")]
    FrameTooSmall,
    /// The message exceeds the peer's max-message-size.
    #[error("message of {size} bytes exceeds the link's limit of {max}")]
    TooLarge {
        /// The message size.
        size: usize,
        /// The peer's limit.
        max: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionState {
    BeginSent,
    Mapped,
    /// We sent end (after an error or on request) and wait for the peer's.
    EndSent,
}

#[derive(Debug)]
pub(crate) struct Session {
    remote_channel: Option<u16>,
    state: SessionState,
    next_outgoing_id: u32,
    incoming_window: u32,
    next_incoming_id: u32,
    remote_incoming_window: u32,
    remote_outgoing_window: u32,
    /// The peer's handle-max: the highest handle we may attach with (part 2 §2.7.2).
    remote_handle_max: u32,
    next_delivery_id: u32,
    links: Slots<u32, Link>,
    remote_handles: Slots<u32, u32>,
    /// Deliveries we sent and the peer has not settled, by delivery id: the link's handle.
    unsettled_out: Unsettled,
    /// Deliveries we received and have not settled, by delivery id: the link's handle.
    unsettled_in: Unsettled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkState {
    AttachSent,
    /// The peer attached first; the caller has not answered yet.
    AttachReceived,
    Attached,
    DetachSent,
}

#[derive(Debug)]
struct Link {
    name: Str,
    role: Role,
    state: LinkState,
    remote_handle: Option<u32>,
    delivery_count: u32,
    link_credit: u32,
    drain: bool,
    /// The peer's max-message-size when we send; ours when we receive (0: no limit).
    message_size_max: u64,
    partial: Option<Partial>,
    /// The settlement mode the peer asked for in its attach.
    requested_rcv_settle_mode: ReceiverSettleMode,
    /// Deliveries on this link not yet settled (by the peer when we send, by us when we
    /// receive), bounded by `Config::link_unsettled_max`.
    unsettled: u32,
    /// Sender: messages it says it has ready; receiver: what the sender last said.
    available: u32,
}

/// A delivery whose transfers have `more` set: its payload so far.
#[derive(Debug)]
struct Partial {
    delivery_id: u32,
    tag: Option<DeliveryTag>,
    settled: bool,
    /// The transfers' payloads so far, as the slices of the read buffer they came in; joined
    /// once, into a buffer of exactly the message's size, when the last one arrives (growing
    /// one buffer frame by frame copied the message twice and held up to twice its size).
    parts: Vec<Bytes>,
    size: usize,
}

/// A session-level failure: the session ends with this error (part 2 §2.5.5).
struct SessionError(Symbol, String);

impl Connection {
    /// Begins a session; the peer's answer arrives as [`Event::SessionBegun`].
    pub fn begin(&mut self, now: Instant) -> Result<SessionId, ConnectionError> {
        let channel = self.free_channel()?;
        let session = self.new_session(None);
        let begin = self.local_begin(&session, None);
        self.sessions.insert(channel, session);
        self.write_performative(channel, &begin.into(), now);
        Ok(SessionId(channel))
    }

    /// Ends a session, with an error if there is one.
    pub fn end(&mut self, session: SessionId, error: Option<Error>, now: Instant) {
        if let Some(s) = self.sessions.get_mut(&session.0)
            && s.state != SessionState::EndSent
        {
            s.state = SessionState::EndSent;
            self.write_performative(session.0, &End { error }.into(), now);
        }
    }

    /// Attaches a link on `session`; `attach.handle` is chosen by the engine. The peer's
    /// answer arrives as [`Event::LinkAttached`].
    pub fn attach(
        &mut self,
        session: SessionId,
        mut attach: Attach,
        now: Instant,
    ) -> Result<LinkId, ConnectionError> {
        let handle_max = self.config.link_handle_max;
        let s = self.session_mut(session)?;
        let handle_max = handle_max.min(s.remote_handle_max);
        let handle = s.links.first_free(handle_max).ok_or_else(|| {
            ConnectionError::new(conditions::RESOURCE_LIMIT_EXCEEDED, "no free link handle")
        })?;
        attach.handle = handle;
        // Part 2 §2.7.3: a sender's attach carries its initial delivery-count.
        if attach.role == Role::Sender && attach.initial_delivery_count.is_none() {
            attach.initial_delivery_count = Some(0);
        }
        s.links
            .insert(handle, Link::new(&attach, LinkState::AttachSent, None));
        self.write_performative(session.0, &attach.into(), now);
        Ok(LinkId { session, handle })
    }

    /// Answers a link the peer attached ([`Event::LinkAttached`] with `remote_first`): `reply`
    /// is our attach, with our role, terminus and settlement modes.
    ///
    /// A peer sender asking us to settle second (exactly once, part 3 §3.4) is refused with
    /// `amqp:not-implemented` unless `Config::receiver_settle_second` is set: silently
    /// answering `first` would leave a sender that needs exactly-once believing it has it.
    pub fn accept_link(&mut self, link: LinkId, mut reply: Attach, now: Instant) {
        let limit = self.config.message_size_max;
        let second_allowed = self.config.receiver_settle_second;
        let Some(l) = self.link_mut(link) else { return };
        if l.state != LinkState::AttachReceived {
            return;
        }
        if reply.role == Role::Receiver
            && l.requested_rcv_settle_mode == ReceiverSettleMode::Second
            && !second_allowed
        {
            let error = Error::new(
                conditions::NOT_IMPLEMENTED,
                "receiver-settle-mode second is not supported",
            );
            self.refuse_link(link, error, now);
            return;
        }
        l.state = LinkState::Attached;
        l.role = reply.role;
        if reply.role == Role::Sender {
            // Part 2 §2.7.3: a sender's attach carries its initial delivery-count.
            reply.initial_delivery_count = Some(l.delivery_count);
        }
        if reply.role == Role::Receiver {
            // Part 2 §2.7.3: advertise the limit we enforce (the lower of the caller's and the
            // configured one), so that the sender learns it before it is detached for it.
            let asked = reply.max_message_size.unwrap_or(0);
            let max = match (asked, limit) {
                (0, m) | (m, 0) => m,
                (a, m) => a.min(m),
            };
            l.message_size_max = max;
            reply.max_message_size = (max > 0).then_some(max);
        }
        reply.handle = link.handle;
        self.write_performative(link.session.0, &reply.into(), now);
    }

    /// Refuses a link the peer attached: part 2 §2.6.3 has us answer with an attach carrying a
    /// null terminus, then a detach with the error.
    pub fn refuse_link(&mut self, link: LinkId, error: Error, now: Instant) {
        let Some(l) = self.link_mut(link) else { return };
        if l.state != LinkState::AttachReceived {
            return;
        }
        let role = l.role;
        let name = l.name.clone();
        l.state = LinkState::DetachSent;
        let reply = Attach {
            name,
            handle: link.handle,
            role,
            ..Default::default()
        };
        self.write_performative(link.session.0, &reply.into(), now);
        let detach = Detach {
            handle: link.handle,
            closed: true,
            error: Some(error),
        };
        self.write_performative(link.session.0, &detach.into(), now);
    }

    /// Detaches a link (closing it when `closed`).
    pub fn detach(&mut self, link: LinkId, closed: bool, error: Option<Error>, now: Instant) {
        let Some(l) = self.link_mut(link) else { return };
        if l.state == LinkState::DetachSent {
            return;
        }
        l.state = LinkState::DetachSent;
        self.write_performative(
            link.session.0,
            &Detach {
                handle: link.handle,
                closed,
                error,
            }
            .into(),
            now,
        );
    }

    /// Receiver: sets the link credit to `credit` (and asks the sender to use it up or return
    /// it when `drain`), sending a flow.
    pub fn grant_credit(&mut self, link: LinkId, credit: u32, drain: bool, now: Instant) {
        let Some(l) = self.link_mut(link) else { return };
        if l.role != Role::Receiver {
            return;
        }
        l.link_credit = credit;
        l.drain = drain;
        let flow = self.link_flow(link, false);
        self.write_performative(link.session.0, &flow.into(), now);
    }

    /// Sender: tells the receiver how many messages are ready to send (the `available` of
    /// part 2 §2.6.7), in a flow.
    pub fn set_available(&mut self, link: LinkId, available: u32, now: Instant) {
        let Some(l) = self.link_mut(link) else { return };
        if l.role != Role::Sender {
            return;
        }
        l.available = available;
        let flow = self.link_flow(link, false);
        self.write_performative(link.session.0, &flow.into(), now);
    }

    /// Receiver: the number of messages the sender last said it has ready.
    pub fn available(&self, link: LinkId) -> u32 {
        self.sessions
            .get(&link.session.0)
            .and_then(|s| s.links.get(&link.handle))
            .map_or(0, |l| l.available)
    }

    /// Sender: the link credit the receiver has granted.
    pub fn credit(&self, link: LinkId) -> u32 {
        self.sessions
            .get(&link.session.0)
            .and_then(|s| s.links.get(&link.handle))
            .map_or(0, |l| l.link_credit)
    }

    /// Sender: how many unsettled deliveries [`Connection::send`] would take now: the link
    /// credit, bounded by the room under `Config::link_unsettled_max`, and 0 while the
    /// session's window is closed. A caller whose send failed for want of room waits for this
    /// to rise (the peer settling or widening its window) before offering more.
    pub fn sendable(&self, link: LinkId) -> u32 {
        let unsettled_max = self.config.link_unsettled_max;
        let Some(s) = self.sessions.get(&link.session.0) else {
            return 0;
        };
        match s.links.get(&link.handle) {
            Some(l) if l.role == Role::Sender && l.state == LinkState::Attached => {
                if s.remote_incoming_window == 0 {
                    0
                } else {
                    l.link_credit.min(unsettled_max.saturating_sub(l.unsettled))
                }
            }
            _ => 0,
        }
    }

    /// Sender: after a drain request, once everything available has been sent, gives back the
    /// remaining credit (part 2 §2.6.7: advance delivery-count, credit to zero, then flow).
    pub fn drained(&mut self, link: LinkId, now: Instant) {
        let Some(l) = self.link_mut(link) else { return };
        if l.role != Role::Sender || !l.drain {
            return;
        }
        l.delivery_count = l.delivery_count.wrapping_add(l.link_credit);
        l.link_credit = 0;
        let flow = self.link_flow(link, false);
        self.write_performative(link.session.0, &flow.into(), now);
    }

    /// Sender: sends one delivery, split over as many transfer frames as the peer's frame size
    /// needs. Returns its delivery id.
    pub fn send(
        &mut self,
        link: LinkId,
        tag: DeliveryTag,
        payload: &[u8],
        settled: bool,
        now: Instant,
    ) -> Result<u32, SendError> {
        let frame_max = self.send_frame_max;
        let unsettled_max = self.config.link_unsettled_max;
        let s = self
            .sessions
            .get_mut(&link.session.0)
            .ok_or(SendError::NotSender)?;
        let l = s.links.get_mut(&link.handle).ok_or(SendError::NotSender)?;
        if l.role != Role::Sender || l.state != LinkState::Attached {
            return Err(SendError::NotSender);
        }
        if l.link_credit == 0 {
            return Err(SendError::NoCredit);
        }
        if !settled && l.unsettled >= unsettled_max {
            return Err(SendError::TooManyUnsettled);
        }
        if l.message_size_max > 0 && payload.len() as u64 > l.message_size_max {
            return Err(SendError::TooLarge {
                size: payload.len(),
                max: l.message_size_max,
            });
        }
        if s.remote_incoming_window == 0 {
            return Err(SendError::WindowFull);
        }
        let delivery_id = s.next_delivery_id;
        let transfer = Transfer {
            handle: link.handle,
            delivery_id: Some(delivery_id),
            delivery_tag: Some(tag),
            message_format: Some(0),
            settled: Some(settled),
            ..Default::default()
        };
        let before = self.output.len();
        if encode_transfer(
            &mut self.output,
            link.session.0,
            &transfer,
            payload,
            frame_max,
        )
        .is_err()
        {
            self.output.truncate(before);
            return Err(SendError::FrameTooSmall);
        }
        // Each frame is one transfer against the session windows (part 2 §2.5.6): a message
        // needing more frames than the peer's window has left waits for the next flow.
        let frames = count_frames(self.output.get(before..).unwrap_or_default());
        let window = self
            .sessions
            .get(&link.session.0)
            .map_or(0, |s| s.remote_incoming_window);
        if frames > window {
            self.output.truncate(before);
            return Err(SendError::WindowFull);
        }
        self.account_sent(link, frames);
        if !settled && let Some(s) = self.sessions.get_mut(&link.session.0) {
            s.unsettled_out.insert(delivery_id, link.handle);
            if let Some(l) = s.links.get_mut(&link.handle) {
                l.unsettled += 1;
            }
        }
        self.last_sent = now;
        Ok(delivery_id)
    }

    fn account_sent(&mut self, link: LinkId, frames: u32) {
        if let Some(s) = self.sessions.get_mut(&link.session.0) {
            s.next_delivery_id = s.next_delivery_id.wrapping_add(1);
            s.next_outgoing_id = s.next_outgoing_id.wrapping_add(frames);
            s.remote_incoming_window = s.remote_incoming_window.saturating_sub(frames);
            if let Some(l) = s.links.get_mut(&link.handle) {
                l.delivery_count = l.delivery_count.wrapping_add(1);
                l.link_credit = l.link_credit.saturating_sub(1);
            }
        }
    }

    /// Sends a disposition for deliveries `first..=last` that we `role` (sent as sender or
    /// received as receiver) on `session`.
    #[allow(clippy::too_many_arguments)]
    pub fn disposition(
        &mut self,
        session: SessionId,
        role: Role,
        first: u32,
        last: u32,
        settled: bool,
        state: Option<DeliveryState>,
        now: Instant,
    ) {
        if !self.sessions.contains_key(&session.0) {
            return;
        }
        if settled && let Some(s) = self.sessions.get_mut(&session.0) {
            let map = match role {
                Role::Receiver => &mut s.unsettled_in,
                Role::Sender => &mut s.unsettled_out,
            };
            settle_range(map, &mut s.links, first, last);
        }
        let last = (last != first).then_some(last);
        let d = Disposition {
            role,
            first,
            last,
            settled,
            state,
            batchable: false,
        };
        self.write_performative(session.0, &d.into(), now);
    }

    fn free_channel(&self) -> Result<u16, ConnectionError> {
        self.sessions
            .first_free(self.channel_max_agreed())
            .ok_or_else(|| {
                ConnectionError::new(conditions::RESOURCE_LIMIT_EXCEEDED, "no free channel")
            })
    }

    fn channel_max_agreed(&self) -> u16 {
        self.config.channel_max.min(self.remote_channel_max)
    }

    fn new_session(&self, remote_channel: Option<u16>) -> Session {
        Session {
            remote_channel,
            state: SessionState::BeginSent,
            next_outgoing_id: 0,
            incoming_window: self.config.session_window,
            next_incoming_id: 0,
            remote_incoming_window: 0,
            remote_outgoing_window: 0,
            remote_handle_max: u32::MAX,
            next_delivery_id: 0,
            links: Slots::new(),
            remote_handles: Slots::new(),
            unsettled_out: Unsettled::default(),
            unsettled_in: Unsettled::default(),
        }
    }

    fn local_begin(&self, s: &Session, remote_channel: Option<u16>) -> Begin {
        Begin {
            remote_channel,
            next_outgoing_id: s.next_outgoing_id,
            incoming_window: s.incoming_window,
            outgoing_window: self.config.session_window,
            handle_max: self.config.link_handle_max,
            ..Default::default()
        }
    }

    fn session_mut(&mut self, session: SessionId) -> Result<&mut Session, ConnectionError> {
        self.sessions.get_mut(&session.0).ok_or_else(|| {
            ConnectionError::not_allowed(format!("no session on channel {}", session.0))
        })
    }

    fn link_mut(&mut self, link: LinkId) -> Option<&mut Link> {
        self.sessions
            .get_mut(&link.session.0)?
            .links
            .get_mut(&link.handle)
    }

    /// A flow carrying the session's windows and `link`'s state.
    fn link_flow(&self, link: LinkId, echo: bool) -> Flow {
        let s = self.sessions.get(&link.session.0);
        let l = s.and_then(|s| s.links.get(&link.handle));
        let mut flow = s.map_or_else(Flow::default, |s| self.session_flow(s));
        if let Some(l) = l {
            flow.handle = Some(link.handle);
            flow.delivery_count = Some(l.delivery_count);
            flow.link_credit = Some(l.link_credit);
            flow.drain = l.drain;
            flow.echo = echo;
            if l.role == Role::Sender {
                flow.available = Some(l.available);
            }
        }
        flow
    }

    fn session_flow(&self, s: &Session) -> Flow {
        Flow {
            next_incoming_id: s.remote_channel.map(|_| s.next_incoming_id),
            incoming_window: s.incoming_window,
            next_outgoing_id: s.next_outgoing_id,
            outgoing_window: self.config.session_window,
            ..Default::default()
        }
    }

    /// After a read: reopens every session window that has fallen below half, with one flow
    /// each. Refilling only between reads keeps violations detectable: a transfer in this read
    /// was sent before the peer could have seen a flow we have not written yet, so one past
    /// the window we last advertised is the peer's fault (part 2 §2.5.6).
    pub(crate) fn refill_windows(&mut self, now: Instant) {
        let window = self.config.session_window;
        let low: Vec<u16> = self
            .sessions
            .iter()
            // Rounded up, so that a window of one is refilled too rather than staying shut.
            .filter(|(_, s)| {
                s.state == SessionState::Mapped && s.incoming_window < window.div_ceil(2)
            })
            .map(|(c, _)| c)
            .collect();
        for channel in low {
            if let Some(s) = self.sessions.get_mut(&channel) {
                s.incoming_window = window;
            }
            if let Some(flow) = self.sessions.get(&channel).map(|s| self.session_flow(s)) {
                self.write_performative(channel, &flow.into(), now);
            }
        }
    }

    /// Handles a frame on a session channel.
    pub(crate) fn on_session_frame(
        &mut self,
        channel: u16,
        performative: Performative,
        payload: Bytes,
        now: Instant,
    ) -> Result<(), ConnectionError> {
        if let Performative::Begin(begin) = performative {
            return self.on_begin(channel, begin, now);
        }
        let Some(local) = self.local_channel(channel) else {
            // Part 2 §2.5.5: frames on a channel with no session are a connection error.
            return Err(ConnectionError::not_allowed(format!(
                "{} on unmapped channel {channel}",
                performative.name()
            )));
        };
        let session = SessionId(local);
        if let Performative::End(end) = performative {
            let ended_by_us = self
                .sessions
                .get(&local)
                .is_some_and(|s| s.state == SessionState::EndSent);
            if !ended_by_us {
                self.write_performative(local, &End::default().into(), now);
            }
            if let Some(ended) = self.sessions.remove(&local)
                && let Some(remote) = ended.remote_channel
            {
                self.remote_channels.remove(&remote);
            }
            self.events.push_back(Event::SessionEnded {
                session,
                error: end.error,
            });
            return Ok(());
        }
        if self
            .sessions
            .get(&local)
            .is_some_and(|s| s.state == SessionState::EndSent)
        {
            return Ok(()); // Part 2 §2.5.5: ignore frames until the peer's end.
        }
        let result = match performative {
            Performative::Attach(attach) => self.on_attach(session, attach, now),
            Performative::Flow(flow) => self.on_flow(session, flow, now),
            Performative::Transfer(transfer) => self.on_transfer(session, transfer, payload, now),
            Performative::Disposition(d) => {
                if d.settled
                    && let Some(s) = self.sessions.get_mut(&local)
                {
                    // The peer as receiver settles what we sent, and as sender what we received.
                    let map = match d.role {
                        Role::Receiver => &mut s.unsettled_out,
                        Role::Sender => &mut s.unsettled_in,
                    };
                    settle_range(map, &mut s.links, d.first, d.last.unwrap_or(d.first));
                }
                self.events.push_back(Event::Disposition {
                    session,
                    role: d.role,
                    first: d.first,
                    last: d.last.unwrap_or(d.first),
                    settled: d.settled,
                    state: d.state,
                });
                Ok(())
            }
            Performative::Detach(detach) => self.on_detach(session, detach, now),
            other => Err(SessionError(
                conditions::NOT_ALLOWED,
                format!("{} on a session", other.name()),
            )),
        };
        if let Err(SessionError(condition, description)) = result {
            if condition == conditions::FRAMING_ERROR {
                return Err(ConnectionError::new(condition, description));
            }
            self.end(session, Some(Error::new(condition, description)), now);
        }
        Ok(())
    }

    fn local_channel(&self, remote: u16) -> Option<u16> {
        self.remote_channels.get(&remote).copied()
    }

    fn on_begin(
        &mut self,
        channel: u16,
        begin: Box<Begin>,
        now: Instant,
    ) -> Result<(), ConnectionError> {
        if self.local_channel(channel).is_some() {
            return Err(ConnectionError::not_allowed(format!(
                "begin on channel {channel}, already in use"
            )));
        }
        let local = match begin.remote_channel {
            // The answer to a begin of ours.
            Some(ours) => {
                let s = self
                    .sessions
                    .get_mut(&ours)
                    .filter(|s| s.state == SessionState::BeginSent && s.remote_channel.is_none())
                    .ok_or_else(|| {
                        ConnectionError::not_allowed(format!(
                            "begin answers unknown channel {ours}"
                        ))
                    })?;
                s.remote_channel = Some(channel);
                ours
            }
            None => {
                let local = self.free_channel()?;
                let session = self.new_session(Some(channel));
                let reply = self.local_begin(&session, Some(channel));
                self.sessions.insert(local, session);
                self.write_performative(local, &reply.into(), now);
                local
            }
        };
        self.remote_channels.insert(channel, local);
        if let Some(s) = self.sessions.get_mut(&local) {
            s.state = SessionState::Mapped;
            s.next_incoming_id = begin.next_outgoing_id;
            s.remote_incoming_window = begin.incoming_window;
            s.remote_outgoing_window = begin.outgoing_window;
            s.remote_handle_max = begin.handle_max;
        }
        self.events.push_back(Event::SessionBegun {
            session: SessionId(local),
            remote: begin,
        });
        Ok(())
    }

    fn on_attach(
        &mut self,
        session: SessionId,
        attach: Box<Attach>,
        _now: Instant,
    ) -> Result<(), SessionError> {
        let handle_max = self.config.link_handle_max;
        if attach.handle > handle_max {
            // Part 2 §2.7.2: a handle beyond handle-max closes the connection.
            return Err(SessionError(
                conditions::FRAMING_ERROR,
                format!("handle {} above handle-max {handle_max}", attach.handle),
            ));
        }
        let message_size_max = self.config.message_size_max;
        let Some(s) = self.sessions.get_mut(&session.0) else {
            return Ok(());
        };
        if s.remote_handles.contains_key(&attach.handle) {
            return Err(SessionError(
                conditions::HANDLE_IN_USE,
                format!("handle {} is attached", attach.handle),
            ));
        }
        // The answer to an attach of ours carries the same link name.
        let ours = s
            .links
            .iter()
            .find(|(_, l)| l.state == LinkState::AttachSent && l.name == attach.name)
            .map(|(h, _)| h);
        let (handle, remote_first) = match ours {
            Some(h) => (h, false),
            None => {
                let h = s.links.first_free(handle_max).ok_or_else(|| {
                    SessionError(
                        conditions::RESOURCE_LIMIT_EXCEEDED,
                        "no free link handle".into(),
                    )
                })?;
                (h, true)
            }
        };
        s.remote_handles.insert(attach.handle, handle);
        if remote_first {
            // Our end has the other role; accept_link may still say otherwise.
            let mut link = Link::new(&attach, LinkState::AttachReceived, Some(attach.handle));
            link.role = opposite(attach.role);
            if link.role == Role::Receiver {
                link.message_size_max = message_size_max;
            }
            s.links.insert(handle, link);
        } else if let Some(l) = s.links.get_mut(&handle) {
            l.state = LinkState::Attached;
            l.remote_handle = Some(attach.handle);
            if l.role == Role::Sender {
                l.message_size_max = attach.max_message_size.unwrap_or(0);
            } else {
                l.delivery_count = attach.initial_delivery_count.unwrap_or(0);
            }
        }
        self.events.push_back(Event::LinkAttached {
            link: LinkId { session, handle },
            attach,
            remote_first,
        });
        Ok(())
    }

    fn on_detach(
        &mut self,
        session: SessionId,
        detach: Detach,
        now: Instant,
    ) -> Result<(), SessionError> {
        let Some(s) = self.sessions.get_mut(&session.0) else {
            return Ok(());
        };
        let Some(handle) = s.remote_handles.remove(&detach.handle) else {
            return Err(SessionError(
                conditions::UNATTACHED_HANDLE,
                format!("detach of unattached handle {}", detach.handle),
            ));
        };
        let ours_sent = s
            .links
            .get(&handle)
            .is_some_and(|l| l.state == LinkState::DetachSent);
        s.links.remove(&handle);
        s.unsettled_in.remove_link(handle);
        s.unsettled_out.remove_link(handle);
        if !ours_sent {
            self.write_performative(
                session.0,
                &Detach {
                    handle,
                    closed: detach.closed,
                    error: None,
                }
                .into(),
                now,
            );
        }
        self.events.push_back(Event::LinkDetached {
            link: LinkId { session, handle },
            closed: detach.closed,
            error: detach.error,
        });
        Ok(())
    }

    fn on_flow(
        &mut self,
        session: SessionId,
        flow: Flow,
        now: Instant,
    ) -> Result<(), SessionError> {
        let Some(s) = self.sessions.get_mut(&session.0) else {
            return Ok(());
        };
        // Part 2 §2.5.6: the peer's incoming window, counted from our next-outgoing-id.
        let base = flow.next_incoming_id.unwrap_or(0);
        s.remote_incoming_window = base
            .wrapping_add(flow.incoming_window)
            .wrapping_sub(s.next_outgoing_id);
        s.remote_outgoing_window = flow.outgoing_window;
        let Some(remote_handle) = flow.handle else {
            if flow.echo {
                let reply = self.sessions.get(&session.0).map(|s| self.session_flow(s));
                if let Some(reply) = reply {
                    self.write_performative(session.0, &reply.into(), now);
                }
            }
            return Ok(());
        };
        let Some(&handle) = s.remote_handles.get(&remote_handle) else {
            return Err(SessionError(
                conditions::UNATTACHED_HANDLE,
                format!("flow for unattached handle {remote_handle}"),
            ));
        };
        let link = LinkId { session, handle };
        let Some(l) = s.links.get_mut(&handle) else {
            return Ok(());
        };
        match l.role {
            Role::Sender => {
                // Part 2 §2.6.7: link-credit(snd) = delivery-count(rcv) + link-credit(rcv) -
                // delivery-count(snd); a receiver that has not heard from us counts from ours.
                let rcv_count = flow.delivery_count.unwrap_or(l.delivery_count);
                l.link_credit = rcv_count
                    .wrapping_add(flow.link_credit.unwrap_or(0))
                    .wrapping_sub(l.delivery_count);
                l.drain = flow.drain;
                let (credit, drain) = (l.link_credit, l.drain);
                self.events.push_back(Event::Credit {
                    link,
                    credit,
                    drain,
                });
            }
            Role::Receiver => {
                if let Some(available) = flow.available {
                    l.available = available;
                }
                if let Some(count) = flow.delivery_count {
                    // The sender advanced its count (a drain): the credit it consumed is gone.
                    let consumed = count.wrapping_sub(l.delivery_count);
                    l.link_credit = l.link_credit.saturating_sub(consumed);
                    l.delivery_count = count;
                }
                let drained = l.drain && l.link_credit == 0;
                if drained {
                    l.drain = false;
                    self.events.push_back(Event::Drained { link });
                }
            }
        }
        if flow.echo {
            let reply = self.link_flow(link, false);
            self.write_performative(session.0, &reply.into(), now);
        }
        Ok(())
    }

    fn on_transfer(
        &mut self,
        session: SessionId,
        t: Transfer,
        payload: Bytes,
        now: Instant,
    ) -> Result<(), SessionError> {
        let Some(s) = self.sessions.get_mut(&session.0) else {
            return Ok(());
        };
        // Part 2 §2.5.6: a transfer beyond our incoming window is a session error.
        if s.incoming_window == 0 {
            return Err(SessionError(
                conditions::WINDOW_VIOLATION,
                "transfer beyond the incoming window".into(),
            ));
        }
        s.incoming_window -= 1;
        s.next_incoming_id = s.next_incoming_id.wrapping_add(1);
        s.remote_outgoing_window = s.remote_outgoing_window.saturating_sub(1);
        let Some(&handle) = s.remote_handles.get(&t.handle) else {
            return Err(SessionError(
                conditions::UNATTACHED_HANDLE,
                format!("transfer on unattached handle {}", t.handle),
            ));
        };
        let link = LinkId { session, handle };
        let Some(l) = self.link_mut(link) else {
            return Ok(());
        };
        if l.role != Role::Receiver {
            return Err(SessionError(
                conditions::NOT_ALLOWED,
                "transfer to a sending link".into(),
            ));
        }
        if l.state == LinkState::DetachSent {
            // What the sender had in flight before our detach reached it (the rest of an
            // oversized delivery, say): counted against the window above, otherwise dropped.
            l.partial = None;
            return Ok(());
        }
        if t.resume {
            self.detach(
                link,
                true,
                Some(Error::new(
                    conditions::NOT_IMPLEMENTED,
                    "resumed deliveries are not supported",
                )),
                now,
            );
            return Ok(());
        }
        if l.partial.is_none() {
            let Some(delivery_id) = t.delivery_id else {
                return Err(SessionError(
                    conditions::INVALID_FIELD,
                    "first transfer of a delivery without delivery-id".into(),
                ));
            };
            // Part 2 §2.6.7: a sender may not send without credit.
            if l.link_credit == 0 {
                let error = Error::new(
                    conditions::TRANSFER_LIMIT_EXCEEDED,
                    "transfer without link credit",
                );
                if l.state == LinkState::AttachReceived {
                    // Sent before we even answered its attach: answer it as a refusal, so our
                    // detach follows our attach (part 2 §2.6.3), and the caller's later answer
                    // finds the link gone.
                    self.refuse_link(link, error, now);
                } else {
                    self.detach(link, true, Some(error), now);
                }
                return Ok(());
            }
            l.link_credit -= 1;
            l.delivery_count = l.delivery_count.wrapping_add(1);
            l.partial = Some(Partial {
                delivery_id,
                tag: t.delivery_tag,
                settled: false,
                parts: Vec::new(),
                size: 0,
            });
        }
        let max = l.message_size_max;
        let Some(p) = l.partial.as_mut() else {
            return Ok(());
        };
        p.settled |= t.settled.unwrap_or(false);
        if max > 0 && (p.size + payload.len()) as u64 > max {
            l.partial = None;
            self.detach(
                link,
                true,
                Some(Error::new(
                    conditions::MESSAGE_SIZE_EXCEEDED,
                    format!("message exceeds {max} bytes"),
                )),
                now,
            );
            return Ok(());
        }
        if t.aborted {
            let delivery_id = p.delivery_id;
            l.partial = None;
            self.events.push_back(Event::Aborted { link, delivery_id });
            return Ok(());
        }
        if t.more {
            p.size += payload.len();
            p.parts.push(payload);
            return Ok(());
        }
        let Some(p) = l.partial.take() else {
            return Ok(());
        };
        // A single-frame delivery keeps the payload as the slice of the read buffer it came in.
        let payload = if p.parts.is_empty() {
            payload
        } else {
            let mut whole = BytesMut::with_capacity(p.size + payload.len());
            for part in &p.parts {
                whole.extend_from_slice(part);
            }
            whole.extend_from_slice(&payload);
            whole.freeze()
        };
        if !p.settled {
            let unsettled_max = self.config.link_unsettled_max;
            if let Some(s) = self.sessions.get_mut(&session.0) {
                let over = s
                    .links
                    .get(&handle)
                    .is_some_and(|l| l.unsettled >= unsettled_max);
                if over {
                    self.detach(
                        link,
                        true,
                        Some(Error::new(
                            conditions::RESOURCE_LIMIT_EXCEEDED,
                            format!("more than {unsettled_max} unsettled deliveries on the link"),
                        )),
                        now,
                    );
                    return Ok(());
                }
                s.unsettled_in.insert(p.delivery_id, handle);
                if let Some(l) = s.links.get_mut(&handle) {
                    l.unsettled += 1;
                }
            }
        }
        self.events.push_back(Event::Delivery {
            link,
            delivery_id: p.delivery_id,
            tag: p.tag,
            settled: p.settled,
            state: t.state,
            payload,
        });
        Ok(())
    }
}

fn opposite(role: Role) -> Role {
    match role {
        Role::Sender => Role::Receiver,
        Role::Receiver => Role::Sender,
    }
}

impl Link {
    fn new(attach: &Attach, state: LinkState, remote_handle: Option<u32>) -> Self {
        Link {
            name: attach.name.clone(),
            role: attach.role,
            state,
            remote_handle,
            delivery_count: attach.initial_delivery_count.unwrap_or(0),
            link_credit: 0,
            drain: false,
            message_size_max: attach.max_message_size.unwrap_or(0),
            partial: None,
            requested_rcv_settle_mode: attach.rcv_settle_mode,
            unsettled: 0,
            available: 0,
        }
    }
}

/// Settles the deliveries `first..=last` of `map`, counting them off their links.
fn settle_range(map: &mut Unsettled, links: &mut Slots<u32, Link>, first: u32, last: u32) {
    map.settle_range(first, last, |handle| {
        if let Some(l) = links.get_mut(&handle) {
            l.unsettled = l.unsettled.saturating_sub(1);
        }
    });
}

/// How many frames `bytes` holds (they were just encoded, so every header is whole).
fn count_frames(mut bytes: &[u8]) -> u32 {
    let mut n = 0;
    while let Some(&[a, b, c, d]) = bytes.get(..4) {
        let size = u32::from_be_bytes([a, b, c, d]) as usize;
        bytes = bytes.get(size.max(8)..).unwrap_or_default();
        n += 1;
    }
    n
}
