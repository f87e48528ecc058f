//! The connection state machine (part 2 §2.4, part 5 §5.1 and §5.3).
//!
//! ```text
//!  server                                    client
//!  AwaitHeader ──SASL hdr──▶ Sasl            SentHeader ──hdr──▶ Sasl | Amqp
//!       │                     │ init/response      (SASL: mechanisms → init → outcome,
//!       │ AMQP hdr            ▼ (caller decides)    then AMQP header and open, pipelined)
//!       │              AwaitHeader(AMQP)
//!       ▼                     │
//!  Amqp: open ◀──▶ open ──▶ Opened ──close──▶ CloseSent ──close──▶ Done
//! ```
//!
//! Bytes go in with [`Connection::handle_input`], the current time with every call; frames to
//! write come out of [`Connection::take_output`], events from [`Connection::poll_event`], and the
//! next deadline from [`Connection::poll_timeout`]. Nothing here reads a clock or touches a
//! socket, so a pair of connections runs in memory on a virtual clock.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use sluice_codec::frame::{
    EMPTY_FRAME, Frame, FrameBody, MIN_MAX_FRAME_SIZE, ProtocolHeader, ProtocolId,
    encode_performative,
};
use sluice_codec::transport::{Close, Error, Open, Performative, conditions};
use sluice_codec::types::Str;

mod sasl;

use crate::config::{Config, SaslConfig};
use crate::error::ConnectionError;
use crate::event::Event;
use crate::ids::SessionId;
use crate::input::ReadBuffer;
use crate::out::{Out, Writer};
use crate::session::{PartialBudget, Payload, Session, Sessions};

/// The largest written output buffer [`Connection::recycle_output`] keeps for the next output.
pub const OUTPUT_RECYCLE_MAX: usize = 1024 * 1024;

/// Which end of the connection this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Accepted the socket.
    Server,
    /// Opened the socket.
    Client,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the peer's protocol header: `expected` is what we sent or will accept.
    AwaitHeader { expected: Option<ProtocolId> },
    /// SASL frames are being exchanged; `waiting` is true while the caller owes an answer.
    Sasl { waiting: bool },
    /// AMQP frames; the peer's open has not arrived yet.
    AwaitOpen,
    /// Both opens exchanged.
    Opened,
    /// We sent close and wait for the peer's.
    CloseSent,
    /// Nothing more will be read; write out what is buffered and drop the socket.
    Done,
}

/// One AMQP connection's protocol state.
#[derive(Debug)]
pub struct Connection {
    side: Side,
    config: Config,
    state: State,
    input: ReadBuffer,
    /// Frames to write and events for the caller.
    writer: Writer,
    sessions: Sessions,
    /// Bytes held by the unfinished deliveries of every link.
    partials: PartialBudget,
    remote_idle_timeout: Option<Duration>,
    last_received: Instant,
    handshake_deadline: Option<Instant>,
    close_deadline: Option<Instant>,
    open_sent: bool,
    /// Set after a framing or decode error: the stream cannot be parsed past it, so nothing
    /// more is read while our close goes out.
    discard_input: bool,
}

impl Connection {
    /// A server connection that has just accepted a socket at `now`.
    pub fn server(config: Config, now: Instant) -> Self {
        Connection::new(
            Side::Server,
            config,
            now,
            State::AwaitHeader { expected: None },
        )
    }

    /// A client connection at `now`: its protocol header is already in the output.
    pub fn client(config: Config, now: Instant) -> Self {
        let first = match config.sasl {
            SaslConfig::Client { .. } => ProtocolHeader::SASL,
            _ => ProtocolHeader::AMQP,
        };
        let mut c = Connection::new(
            Side::Client,
            config,
            now,
            State::AwaitHeader {
                expected: first.protocol(),
            },
        );
        c.writer.output.extend_from_slice(&first.to_bytes());
        if first.protocol() == Some(ProtocolId::Amqp) {
            c.send_open();
        }
        c
    }

    fn new(side: Side, config: Config, now: Instant, state: State) -> Self {
        Connection {
            side,
            handshake_deadline: Some(now + config.handshake_timeout),
            partials: PartialBudget::new(config.partial_bytes_max),
            config,
            state,
            input: ReadBuffer::default(),
            writer: Writer::new(now),
            sessions: Sessions::new(),
            remote_idle_timeout: None,
            last_received: now,
            close_deadline: None,
            open_sent: false,
            discard_input: false,
        }
    }

    /// Which end this is.
    pub fn side(&self) -> Side {
        self.side
    }

    /// Feeds bytes read from the socket.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        if self.state == State::Done || self.discard_input {
            return;
        }
        // Buffered a piece at a time, so that a large frame can be read into an allocation of
        // its own (see `input`); the frames are handled in order all the same.
        let mut rest = bytes;
        loop {
            let taken = self.input.fill(rest, self.frame_max_now());
            rest = rest.get(taken..).unwrap_or_default();
            self.read(now);
            if rest.is_empty() || self.state == State::Done || self.discard_input {
                break;
            }
        }
        // Everything read was a whole frame: an idle connection keeps no chunk of its own.
        self.input.release_if_empty();
        self.after_read(now);
    }

    /// Bytes to write to the socket, taken out of the engine (one buffer per call: write it
    /// with one syscall, then give it back with [`Connection::recycle_output`]).
    pub fn take_output(&mut self) -> BytesMut {
        std::mem::take(&mut self.writer.output)
    }

    /// Gives back a buffer from [`Connection::take_output`] once it is written, so the next
    /// output fills its capacity instead of a buffer regrown from empty: with large messages
    /// the regrowth's copies and fresh pages cost more than the writing. A buffer larger than
    /// [`OUTPUT_RECYCLE_MAX`] is dropped, so an idle connection keeps little.
    pub fn recycle_output(&mut self, mut written: BytesMut) {
        let output = &mut self.writer.output;
        if output.is_empty()
            && written.capacity() > output.capacity()
            && written.capacity() <= OUTPUT_RECYCLE_MAX
        {
            written.clear();
            *output = written;
        }
    }

    /// Bytes of output waiting for [`Connection::take_output`].
    pub fn output_len(&self) -> usize {
        self.writer.output.len()
    }

    /// Whether the caller should stop reading until the peer has taken some output.
    pub fn is_output_full(&self) -> bool {
        self.writer.output.len() >= self.config.output_buffer_max
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.writer.events.pop_front()
    }

    /// Whether the connection is over: once the output is written, drop the socket.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Whether both opens have been exchanged and no close has started.
    pub fn is_open(&self) -> bool {
        self.state == State::Opened
    }

    /// The earliest time [`Connection::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Done {
            return None;
        }
        let idle = match self.state {
            State::Opened | State::AwaitOpen => {
                self.config.idle_timeout.map(|t| self.last_received + t)
            }
            _ => None,
        };
        let heartbeat = self.heartbeat_interval().map(|i| self.writer.last_sent + i);
        [
            self.handshake_deadline,
            self.close_deadline,
            idle,
            heartbeat,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Acts on the time: heartbeats, idle timeout, handshake and close timeouts.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.on_timeout(now);
        self.finish_call();
    }

    fn on_timeout(&mut self, now: Instant) {
        if self.state == State::Done {
            return;
        }
        if self.close_deadline.is_some_and(|d| now >= d) {
            self.state = State::Done;
            return;
        }
        if self.handshake_deadline.is_some_and(|d| now >= d) {
            self.fail(
                ConnectionError::new(conditions::RESOURCE_LIMIT_EXCEEDED, "handshake timed out"),
                now,
            );
            return;
        }
        if matches!(self.state, State::Opened | State::AwaitOpen)
            && let Some(timeout) = self.config.idle_timeout
            && now >= self.last_received + timeout
        {
            // Part 2 §2.4.5: a peer silent past our advertised idle timeout is closed, with an
            // error saying why.
            let silent = now.duration_since(self.last_received);
            self.fail(
                ConnectionError::new(
                    conditions::RESOURCE_LIMIT_EXCEEDED,
                    format!(
                        "idle timeout: nothing received for {} ms",
                        silent.as_millis()
                    ),
                ),
                now,
            );
            return;
        }
        if let Some(interval) = self.heartbeat_interval()
            && now >= self.writer.last_sent + interval
        {
            self.writer.output.extend_from_slice(&EMPTY_FRAME);
            self.writer.last_sent = now;
        }
    }

    /// Half the peer's idle timeout: how often we must send something (part 2 §2.4.5).
    fn heartbeat_interval(&self) -> Option<Duration> {
        match self.state {
            State::Opened => self.remote_idle_timeout.map(|t| t / 2),
            _ => None,
        }
    }

    /// Closes the connection, with an error if there is one.
    pub fn close(&mut self, error: Option<Error>, now: Instant) {
        self.start_close(error, now);
        self.finish_call();
    }

    fn start_close(&mut self, error: Option<Error>, now: Instant) {
        self.handshake_deadline = None;
        match self.state {
            State::Opened | State::AwaitOpen => {
                if !self.open_sent {
                    self.send_open();
                }
                self.write_performative(0, &Performative::Close(Close { error }), now);
                self.state = State::CloseSent;
                self.close_deadline = Some(now + self.config.close_timeout);
            }
            State::CloseSent | State::Done => {}
            _ => self.state = State::Done,
        }
    }

    /// Reads what is buffered, then acts on the read as a whole.
    fn process(&mut self, now: Instant) {
        self.read(now);
        self.after_read(now);
    }

    /// Handles every whole header and frame buffered, while the state lets it.
    fn read(&mut self, now: Instant) {
        loop {
            if self.discard_input {
                break;
            }
            let progressed = match self.state {
                State::AwaitHeader { expected } => self.read_header(expected, now),
                State::Sasl { waiting: true } | State::Done => false,
                State::Sasl { waiting: false } => {
                    self.read_frame(self.config.sasl_frame_size_max, now)
                }
                State::AwaitOpen | State::Opened | State::CloseSent => {
                    self.read_frame(self.config.frame_size_max, now)
                }
            };
            if !progressed {
                break;
            }
        }
    }

    /// After a read: reopens session windows, and drops input that will never be read.
    fn after_read(&mut self, now: Instant) {
        if self.state == State::Opened {
            let (sessions, mut out) = self.split(now);
            sessions.refill_windows(&mut out);
        }
        if self.state == State::Done || self.discard_input {
            self.input.clear();
        }
        self.finish_call();
    }

    /// The largest frame to read now, or `None` while no frames are being read (a protocol
    /// header is awaited, or the caller owes a SASL answer).
    fn frame_max_now(&self) -> Option<u32> {
        match self.state {
            State::Sasl { waiting: false } => Some(self.config.sasl_frame_size_max),
            State::AwaitOpen | State::Opened | State::CloseSent => Some(self.config.frame_size_max),
            _ => None,
        }
    }

    /// Run at the end of every call that may change the state: the connection is over when
    /// one of our own frames could not be written, and what unfinished deliveries hold is
    /// freed once it no longer is open.
    fn finish_call(&mut self) {
        if self.writer.broken {
            self.state = State::Done;
        }
        if self.state != State::Opened && self.partials.held() > 0 {
            self.sessions.free_partials(&mut self.partials);
        }
        if cfg!(debug_assertions) {
            self.sessions.check_invariants(&self.partials, &self.config);
        }
    }

    /// The sessions, and what they write to.
    fn split(&mut self, now: Instant) -> (&mut Sessions, Out<'_>) {
        let out = Out {
            writer: &mut self.writer,
            config: &self.config,
            partials: &mut self.partials,
            now,
        };
        (&mut self.sessions, out)
    }

    /// Runs `f` on the sessions with what they write to.
    pub(crate) fn with_sessions<R>(
        &mut self,
        now: Instant,
        f: impl FnOnce(&mut Sessions, &mut Out<'_>) -> R,
    ) -> R {
        let (sessions, mut out) = self.split(now);
        let result = f(sessions, &mut out);
        self.finish_call();
        result
    }

    /// Runs `f` on one session with what it writes to; `None` when there is no such session.
    pub(crate) fn with_session<R>(
        &mut self,
        session: SessionId,
        now: Instant,
        f: impl FnOnce(&mut Session, &mut Out<'_>) -> R,
    ) -> Option<R> {
        self.with_sessions(now, |sessions, out| {
            sessions.get_mut(session).map(|s| f(s, out))
        })
    }

    /// A session, to read.
    pub(crate) fn session(&self, session: SessionId) -> Option<&Session> {
        self.sessions.get(session)
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// Reads the peer's protocol header, if all 8 bytes are there.
    fn read_header(&mut self, expected: Option<ProtocolId>, now: Instant) -> bool {
        let header = match ProtocolHeader::decode(self.input.bytes()) {
            Ok(Some(h)) => h,
            Ok(None) => return false,
            Err(_) => return self.refuse_header(now),
        };
        self.input.advance(8);
        self.last_received = now;
        let protocol = header.protocol().filter(|_| header.is_supported());
        match (self.side, expected, protocol) {
            (Side::Client, Some(want), Some(got)) if want == got => {
                self.state = match got {
                    ProtocolId::Sasl => State::Sasl { waiting: false },
                    _ => State::AwaitOpen,
                };
                true
            }
            (Side::Server, None, Some(ProtocolId::Sasl)) if self.sasl_offered() => {
                self.offer_mechanisms(now);
                true
            }
            (Side::Server, None, Some(ProtocolId::Amqp)) if self.sasl_optional() => {
                self.accept_amqp_header();
                true
            }
            (Side::Server, Some(ProtocolId::Amqp), Some(ProtocolId::Amqp)) => {
                self.accept_amqp_header();
                true
            }
            _ => self.refuse_header(now),
        }
    }

    fn accept_amqp_header(&mut self) {
        self.writer
            .output
            .extend_from_slice(&ProtocolHeader::AMQP.to_bytes());
        self.state = State::AwaitOpen;
    }

    /// Part 2 §2.2: answer a header we do not support with the one we would accept, then close
    /// the socket.
    fn refuse_header(&mut self, now: Instant) -> bool {
        let ours = match (self.side, &self.config.sasl, self.state) {
            (
                _,
                _,
                State::AwaitHeader {
                    expected: Some(ProtocolId::Amqp),
                },
            ) => ProtocolHeader::AMQP,
            (Side::Server, SaslConfig::Server { .. }, _) => ProtocolHeader::SASL,
            _ => ProtocolHeader::AMQP,
        };
        if self.side == Side::Server {
            self.writer.output.extend_from_slice(&ours.to_bytes());
        }
        self.writer.last_sent = now;
        self.writer
            .events
            .push_back(Event::Failed(ConnectionError::not_allowed(
                "unsupported protocol header",
            )));
        self.state = State::Done;
        false
    }

    /// Reads and handles one frame, if a whole one is buffered.
    fn read_frame(&mut self, frame_max: u32, now: Instant) -> bool {
        let frame = match self.input.decode(frame_max) {
            Ok(Some(frame)) => frame,
            Ok(None) => return false,
            Err(e) => {
                self.discard_input = true;
                self.input.clear();
                self.fail(e.into(), now);
                // The stream cannot be parsed past this point, so the peer's close could never
                // be recognised: once our close is written, the connection is over.
                self.state = State::Done;
                return false;
            }
        };
        let own_frame = self.input.own_frame();
        self.last_received = now;
        let result = match self.state {
            State::Sasl { .. } => self.handle_sasl(frame, now),
            _ => self.handle_amqp(frame, own_frame, now),
        };
        if let Err(e) = result {
            // Keep reading: after our close, the peer's close may still be in the input.
            self.fail(e, now);
        }
        true
    }

    fn handle_amqp(
        &mut self,
        frame: Frame,
        own_frame: usize,
        now: Instant,
    ) -> Result<(), ConnectionError> {
        let (performative, payload) = match frame.body {
            FrameBody::Empty => return Ok(()),
            FrameBody::Amqp {
                performative,
                payload,
            } => (performative, payload),
            FrameBody::Sasl(_) => {
                return Err(ConnectionError::not_allowed(
                    "a SASL frame after SASL ended",
                ));
            }
        };
        match (self.state, performative) {
            (State::AwaitOpen, Performative::Open(open)) => {
                self.on_open(open, now);
                Ok(())
            }
            // Part 2 §2.4.1: open is the first frame after the header.
            (State::AwaitOpen, other) => Err(ConnectionError::not_allowed(format!(
                "{} before open",
                other.name()
            ))),
            (_, Performative::Open(_)) => Err(ConnectionError::not_allowed("a second open")),
            (_, Performative::Close(close)) => {
                if self.state != State::CloseSent {
                    self.write_performative(0, &Performative::Close(Close::default()), now);
                    self.writer
                        .events
                        .push_back(Event::RemoteClose { error: close.error });
                }
                self.state = State::Done;
                Ok(())
            }
            (State::CloseSent, _) => Ok(()), // Part 2 §2.4.3: ignore frames after our close.
            (_, performative) => {
                if frame.channel > self.config.channel_max {
                    return Err(ConnectionError::not_allowed(format!(
                        "channel {} is above channel-max {}",
                        frame.channel, self.config.channel_max
                    )));
                }
                let payload = Payload {
                    bytes: payload,
                    own_frame,
                };
                let (sessions, mut out) = self.split(now);
                sessions.on_frame(frame.channel, performative, payload, &mut out)
            }
        }
    }

    fn on_open(&mut self, open: Box<Open>, now: Instant) {
        // Part 2 §2.7.1: never send frames larger than the peer's max-frame-size; a value below
        // 512 is read as 512, the size every peer must accept.
        self.writer.frame_max = open.max_frame_size.max(MIN_MAX_FRAME_SIZE);
        self.sessions.set_remote_channel_max(open.channel_max);
        self.remote_idle_timeout = open
            .idle_time_out
            .filter(|ms| *ms > 0)
            .map(|ms| Duration::from_millis(u64::from(ms)));
        if !self.open_sent {
            self.send_open();
        }
        self.writer.last_sent = now;
        self.state = State::Opened;
        self.handshake_deadline = None;
        self.writer.events.push_back(Event::Opened { remote: open });
    }

    fn local_open(&self) -> Open {
        Open {
            container_id: Str::from(self.config.container_id.as_str()),
            hostname: match self.side {
                Side::Client => self.config.hostname.as_deref().map(Str::from),
                Side::Server => None,
            },
            max_frame_size: self.config.frame_size_max,
            channel_max: self.config.channel_max,
            idle_time_out: self
                .config
                .idle_timeout
                .map(|t| u32::try_from(t.as_millis()).unwrap_or(u32::MAX)),
            offered_capabilities: self.config.offered_capabilities.clone(),
            desired_capabilities: self.config.desired_capabilities.clone(),
            properties: self.config.properties.clone(),
            ..Default::default()
        }
    }

    fn send_open(&mut self) {
        let open = Performative::from(self.local_open());
        // Before the peer's open we may only assume 512-byte frames.
        if let Err(e) = encode_performative(&mut self.writer.output, 0, &open, MIN_MAX_FRAME_SIZE) {
            self.writer.events.push_back(Event::Failed(e.into()));
            self.state = State::Done;
        }
        self.open_sent = true;
    }

    fn write_performative(&mut self, channel: u16, performative: &Performative, now: Instant) {
        self.writer.performative(channel, performative, now);
        if self.writer.broken {
            self.state = State::Done;
        }
    }

    /// Closes the connection with `error` because of something the peer did or did not do.
    fn fail(&mut self, error: ConnectionError, now: Instant) {
        self.handshake_deadline = None;
        if matches!(self.state, State::CloseSent | State::Done) {
            // Already closing: part 2 §2.4.3 has us ignore what the peer sends until its close,
            // so a later error changes nothing and is not reported twice.
            return;
        }
        match self.state {
            State::AwaitOpen | State::Opened => {
                if !self.open_sent {
                    // Part 2 §2.4.1: a close must follow an open.
                    self.send_open();
                }
                let close = Performative::Close(Close {
                    error: Some(error.to_amqp()),
                });
                self.write_performative(0, &close, now);
                self.state = State::CloseSent;
                self.close_deadline = Some(now + self.config.close_timeout);
            }
            _ => self.state = State::Done,
        }
        self.writer.events.push_back(Event::Failed(error));
    }
}
