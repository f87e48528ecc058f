//! The session and link operations of [`Connection`]: each finds its session and hands it what
//! it writes to. The logic is the session's (`session/`); here is only the public surface.

use std::time::Instant;

use sluice_codec::transport::{Attach, DeliveryState, DeliveryTag, Error, Role};

use crate::connection::Connection;
use crate::error::ConnectionError;
use crate::ids::{LinkId, SessionId};
use crate::session::SendError;

impl Connection {
    /// Begins a session; the peer's answer arrives as [`crate::Event::SessionBegun`].
    pub fn begin(&mut self, now: Instant) -> Result<SessionId, ConnectionError> {
        self.with_sessions(now, |sessions, out| sessions.begin(out))
    }

    /// Ends a session, with an error if there is one.
    pub fn end(&mut self, session: SessionId, error: Option<Error>, now: Instant) {
        self.with_session(session, now, |s, out| s.end(error, out));
    }

    /// Attaches a link on `session`; `attach.handle` is chosen by the engine. The peer's
    /// answer arrives as [`crate::Event::LinkAttached`].
    pub fn attach(
        &mut self,
        session: SessionId,
        attach: Attach,
        now: Instant,
    ) -> Result<LinkId, ConnectionError> {
        self.with_session(session, now, |s, out| s.attach(attach, out))
            .unwrap_or_else(|| {
                Err(ConnectionError::not_allowed(format!(
                    "no session on channel {}",
                    session.0
                )))
            })
    }

    /// Answers a link the peer attached ([`crate::Event::LinkAttached`] with `remote_first`):
    /// `reply` is our attach, with our role, terminus and settlement modes.
    ///
    /// A peer sender asking us to settle second (exactly once, part 3 §3.4) is answered with
    /// `rcv-settle-mode: first` unless `Config::receiver_settle_second` is set: the receiver
    /// states the mode it uses (part 2 §2.7.3), so the sender knows it does not get exactly
    /// once rather than believing it does.
    pub fn accept_link(&mut self, link: LinkId, reply: Attach, now: Instant) {
        self.with_session(link.session, now, |s, out| {
            s.accept_link(link.handle, reply, out)
        });
    }

    /// Refuses a link the peer attached: part 2 §2.6.3 has us answer with an attach carrying a
    /// null terminus, then a detach with the error.
    pub fn refuse_link(&mut self, link: LinkId, error: Error, now: Instant) {
        self.with_session(link.session, now, |s, out| {
            s.refuse_link(link.handle, error, out)
        });
    }

    /// Detaches a link (closing it when `closed`).
    pub fn detach(&mut self, link: LinkId, closed: bool, error: Option<Error>, now: Instant) {
        self.with_session(link.session, now, |s, out| {
            s.detach(link.handle, closed, error, out)
        });
    }

    /// Receiver: sets the link credit to `credit` (and asks the sender to use it up or return
    /// it when `drain`), sending a flow.
    pub fn grant_credit(&mut self, link: LinkId, credit: u32, drain: bool, now: Instant) {
        self.with_session(link.session, now, |s, out| {
            s.grant_credit(link.handle, credit, drain, out)
        });
    }

    /// Sender: tells the receiver how many messages are ready to send (the `available` of
    /// part 2 §2.6.7), in a flow.
    pub fn set_available(&mut self, link: LinkId, available: u32, now: Instant) {
        self.with_session(link.session, now, |s, out| {
            s.set_available(link.handle, available, out)
        });
    }

    /// Receiver: the number of messages the sender last said it has ready.
    pub fn available(&self, link: LinkId) -> u32 {
        self.session(link.session)
            .map_or(0, |s| s.available(link.handle))
    }

    /// Sender: the link credit the receiver has granted.
    pub fn credit(&self, link: LinkId) -> u32 {
        self.session(link.session)
            .map_or(0, |s| s.credit(link.handle))
    }

    /// Sender: how many unsettled deliveries [`Connection::send`] would take now: the link
    /// credit, bounded by the room under `Config::link_unsettled_max`, and 0 while the
    /// session's window is closed. A caller whose send failed for want of room waits for this
    /// to rise (the peer settling or widening its window) before offering more.
    pub fn sendable(&self, link: LinkId) -> u32 {
        let unsettled_max = self.config().link_unsettled_max;
        self.session(link.session)
            .map_or(0, |s| s.sendable(link.handle, unsettled_max))
    }

    /// Sender: after a drain request, once everything available has been sent, gives back the
    /// remaining credit (part 2 §2.6.7: advance delivery-count, credit to zero, then flow).
    pub fn drained(&mut self, link: LinkId, now: Instant) {
        self.with_session(link.session, now, |s, out| s.drained(link.handle, out));
    }

    /// Sender: there is nothing more to send for now, drain asked for or not: gives the
    /// remaining credit back (part 2 §2.6.7 lets a sender advance its delivery-count to spend
    /// credit it cannot use). A browser at the end of its queue is told so this way.
    pub fn spend_credit(&mut self, link: LinkId, now: Instant) {
        self.with_session(link.session, now, |s, out| s.spend_credit(link.handle, out));
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
        self.send_in_state(link, tag, payload, settled, None, now)
    }

    /// [`Connection::send`] with a delivery state on the transfer: a transactional send
    /// carries `transactional-state` with its txn-id (part 4 §4.4.1).
    pub fn send_in_state(
        &mut self,
        link: LinkId,
        tag: DeliveryTag,
        payload: &[u8],
        settled: bool,
        state: Option<DeliveryState>,
        now: Instant,
    ) -> Result<u32, SendError> {
        self.with_session(link.session, now, |s, out| {
            s.send(link.handle, tag, payload, settled, state, out)
        })
        .unwrap_or(Err(SendError::NotSender))
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
        self.with_session(session, now, |s, out| {
            s.disposition(role, (first, last), settled, state, out)
        });
    }
}
