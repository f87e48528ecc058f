//! Sessions (part 2 §2.5) and the links on them (§2.6): channels, transfer windows, handles,
//! link credit, deliveries and dispositions.
//!
//! ```text
//!  ours:   begin ──▶ BeginSent ──peer's begin──▶ Mapped ──end──▶ EndSent ──peer's end──▶ gone
//!  peer's: begin (answered at once) ───────────▶ Mapped ──peer's end (answered)─────────▶ gone
//! ```
//!
//! A [`Session`] owns its windows, its links and its unsettled deliveries, and writes what it
//! has to say through an [`Out`]; [`Sessions`] maps channels and hands each frame to its
//! session. The modules follow the spec's pieces: [`link`] attach and detach, [`flow`] credit
//! and windows, [`incoming`] and [`reassembly`] transfers received, [`send`] transfers sent,
//! [`disposition`] settlement.

mod disposition;
mod flow;
mod incoming;
mod link;
mod reassembly;
mod send;
mod table;

use sluice_codec::transport::{Begin, End, Error, Performative, Role, conditions};
use sluice_codec::types::Symbol;

use crate::config::Config;
use crate::error::ConnectionError;
use crate::ids::{LinkId, SessionId};
use crate::out::Out;
use crate::slots::Slots;
use crate::unsettled::Unsettled;

use link::Link;
pub(crate) use reassembly::{PartialBudget, Payload};
pub use send::SendError;
pub(crate) use table::Sessions;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionState {
    BeginSent,
    Mapped,
    /// We sent end (after an error or on request) and wait for the peer's.
    EndSent,
}

/// One session's state, from our end.
#[derive(Debug)]
pub(crate) struct Session {
    /// Our channel.
    channel: u16,
    remote_channel: Option<u16>,
    state: SessionState,
    /// Part 2 §2.5.6: the transfer-id of our next transfer frame.
    next_outgoing_id: u32,
    /// Transfer frames the peer may still send before our next flow.
    incoming_window: u32,
    /// The transfer-id of the peer's next transfer frame.
    next_incoming_id: u32,
    /// Transfer frames we may still send before the peer's next flow.
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

/// A session-level failure: the session ends with this error (part 2 §2.5.5), or the connection
/// closes when the condition is a framing error.
#[derive(Debug)]
pub(crate) struct SessionError(Symbol, String);

impl SessionError {
    fn new(condition: Symbol, description: impl Into<String>) -> Self {
        SessionError(condition, description.into())
    }
}

impl Session {
    fn new(channel: u16, remote_channel: Option<u16>, config: &Config) -> Self {
        Session {
            channel,
            remote_channel,
            state: SessionState::BeginSent,
            next_outgoing_id: 0,
            incoming_window: config.session_window,
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

    fn id(&self) -> SessionId {
        SessionId(self.channel)
    }

    fn link_id(&self, handle: u32) -> LinkId {
        LinkId {
            session: self.id(),
            handle,
        }
    }

    fn local_begin(&self, config: &Config) -> Begin {
        Begin {
            remote_channel: self.remote_channel,
            next_outgoing_id: self.next_outgoing_id,
            incoming_window: self.incoming_window,
            outgoing_window: config.session_window,
            handle_max: config.link_handle_max,
            ..Default::default()
        }
    }

    /// Takes the peer's begin: its ids, windows and handle-max.
    fn map(&mut self, begin: &Begin) {
        self.state = SessionState::Mapped;
        self.next_incoming_id = begin.next_outgoing_id;
        self.remote_incoming_window = begin.incoming_window;
        self.remote_outgoing_window = begin.outgoing_window;
        self.remote_handle_max = begin.handle_max;
    }

    /// Ends the session from our side; frames are ignored until the peer's end, so what its
    /// links were receiving is freed now.
    pub(crate) fn end(&mut self, error: Option<Error>, out: &mut Out<'_>) {
        if self.state == SessionState::EndSent {
            return;
        }
        self.state = SessionState::EndSent;
        self.free_partials(out.partials);
        out.write(self.channel, &End { error }.into());
    }

    /// Handles a frame on this session other than begin and end.
    #[inline]
    fn on_frame(
        &mut self,
        performative: Performative,
        payload: Payload,
        out: &mut Out<'_>,
    ) -> Result<(), SessionError> {
        match performative {
            Performative::Attach(attach) => self.on_attach(attach, out),
            Performative::Flow(flow) => self.on_flow(flow, out),
            Performative::Transfer(transfer) => self.on_transfer(transfer, payload, out),
            Performative::Disposition(d) => {
                self.on_disposition(d, out);
                Ok(())
            }
            Performative::Detach(detach) => self.on_detach(detach, out),
            other => Err(SessionError::new(
                conditions::NOT_ALLOWED,
                format!("{} on a session", other.name()),
            )),
        }
    }

    /// Our handle for the peer's `remote` handle, or the session error for a frame (`what`) on
    /// a handle the peer has not attached (part 2 §2.8.15 `amqp:unattached-handle`).
    fn local_handle(&self, remote: u32, what: &str) -> Result<u32, SessionError> {
        self.remote_handles.get(&remote).copied().ok_or_else(|| {
            SessionError::new(
                conditions::UNATTACHED_HANDLE,
                format!("{what} on unattached handle {remote}"),
            )
        })
    }

    /// Frees what every link of the session is receiving.
    fn free_partials(&mut self, budget: &mut PartialBudget) {
        for (_, l) in self.links.iter_mut() {
            l.free_partial(budget);
        }
    }

    /// Bytes the session's unfinished deliveries hold.
    fn partial_bytes(&self) -> usize {
        self.links.iter().map(|(_, l)| l.partial_bytes()).sum()
    }

    /// Checks the accounting that could drift (debug builds; a fuzzer or a property test then
    /// finds the input that makes it).
    fn check_invariants(&self, config: &Config) {
        let (mut unsettled_in, mut unsettled_out) = (0usize, 0usize);
        for (_, l) in self.links.iter() {
            match l.role {
                Role::Receiver => unsettled_in += l.unsettled as usize,
                Role::Sender => unsettled_out += l.unsettled as usize,
            }
        }
        debug_assert_eq!(
            unsettled_in,
            self.unsettled_in.len(),
            "unsettled deliveries received: the links' counts and the session's map differ"
        );
        debug_assert_eq!(
            unsettled_out,
            self.unsettled_out.len(),
            "unsettled deliveries sent: the links' counts and the session's map differ"
        );
        debug_assert!(
            self.incoming_window <= config.session_window,
            "session window: {} open, more than the {} we advertise",
            self.incoming_window,
            config.session_window
        );
    }
}

fn opposite(role: Role) -> Role {
    match role {
        Role::Sender => Role::Receiver,
        Role::Receiver => Role::Sender,
    }
}

impl From<SessionError> for ConnectionError {
    fn from(SessionError(condition, description): SessionError) -> Self {
        ConnectionError::new(condition, description)
    }
}
