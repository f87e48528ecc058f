//! What session and link code writes to: the connection's output and event queues, with the
//! peer's frame size, our configuration, the time and the connection's budget for partial
//! deliveries. A session is handed an [`Out`] for each call, as quinn-proto's streams are handed
//! the connection's pending queues, instead of reaching into the connection.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::BytesMut;
use sluice_codec::frame::{MIN_MAX_FRAME_SIZE, encode_performative};
use sluice_codec::transport::Performative;

use crate::config::Config;
use crate::event::Event;
use crate::session::PartialBudget;

/// The connection's output: frames to write and events for the caller.
#[derive(Debug)]
pub(crate) struct Writer {
    /// Encoded frames waiting for [`crate::Connection::take_output`].
    pub(crate) output: BytesMut,
    /// Events waiting for [`crate::Connection::poll_event`].
    pub(crate) events: VecDeque<Event>,
    /// The largest frame we may send: the peer's advertised maximum once its open arrives.
    pub(crate) frame_max: u32,
    /// When we last wrote a frame, for heartbeats.
    pub(crate) last_sent: Instant,
    /// One of our own performatives did not fit the peer's frame size: nothing sensible can be
    /// sent, so the connection is over once the output is written.
    pub(crate) broken: bool,
}

impl Writer {
    pub(crate) fn new(now: Instant) -> Self {
        Writer {
            output: BytesMut::new(),
            events: VecDeque::new(),
            frame_max: MIN_MAX_FRAME_SIZE,
            last_sent: now,
            broken: false,
        }
    }

    /// Encodes `performative` on `channel` within the peer's frame size.
    pub(crate) fn performative(&mut self, channel: u16, performative: &Performative, now: Instant) {
        if let Err(e) = encode_performative(&mut self.output, channel, performative, self.frame_max)
        {
            self.events.push_back(Event::Failed(e.into()));
            self.broken = true;
        }
        self.last_sent = now;
    }
}

/// What a session call writes to, and what it reads while it does.
pub(crate) struct Out<'a> {
    pub(crate) writer: &'a mut Writer,
    pub(crate) config: &'a Config,
    /// Bytes held by every unfinished delivery of the connection.
    pub(crate) partials: &'a mut PartialBudget,
    pub(crate) now: Instant,
}

impl Out<'_> {
    /// Writes a performative on `channel`.
    #[inline]
    pub(crate) fn write(&mut self, channel: u16, performative: &Performative) {
        self.writer.performative(channel, performative, self.now);
    }

    /// Queues an event for the caller.
    #[inline]
    pub(crate) fn event(&mut self, event: Event) {
        self.writer.events.push_back(event);
    }
}
