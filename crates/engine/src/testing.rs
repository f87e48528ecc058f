//! An in-memory client/server pair on a virtual clock, for tests and benchmarks: what one side
//! writes, the other reads, with no sockets and no real time.

use std::time::{Duration, Instant};

use sluice_codec::transport::{Attach, Role};

use crate::{Config, Connection, Event};

/// A client and a server connection wired back to back.
#[derive(Debug)]
pub struct Pair {
    /// The client end.
    pub client: Connection,
    /// The server end.
    pub server: Connection,
    /// The virtual time.
    pub now: Instant,
    /// When false, what the client writes is dropped: a peer that went silent.
    pub client_connected: bool,
}

impl Pair {
    /// A pair at a fixed starting instant.
    pub fn new(client: Config, server: Config) -> Self {
        let now = Instant::now();
        Pair {
            client: Connection::client(client, now),
            server: Connection::server(server, now),
            now,
            client_connected: true,
        }
    }

    /// Moves bytes both ways until neither side has anything to write.
    pub fn drive(&mut self) {
        for _ in 0..1000 {
            let to_server = self.client.take_output();
            let to_client = self.server.take_output();
            if to_server.is_empty() && to_client.is_empty() {
                return;
            }
            if self.client_connected && !to_server.is_empty() {
                self.server.handle_input(&to_server, self.now);
            }
            if !to_client.is_empty() {
                self.client.handle_input(&to_client, self.now);
            }
        }
    }

    /// Advances the virtual clock by `by`, firing every timer that falls due on the way, in
    /// order, and moving the bytes they produce.
    pub fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        // Each round fires at least one timer, which moves it forward or clears it; the bound
        // only guards the tests against an engine bug that would not.
        for _ in 0..100_000 {
            let next = [self.client.poll_timeout(), self.server.poll_timeout()]
                .into_iter()
                .flatten()
                .filter(|t| *t <= end)
                .min();
            let Some(at) = next else { break };
            self.now = at.max(self.now);
            self.client.handle_timeout(self.now);
            self.server.handle_timeout(self.now);
            self.drive();
        }
        self.now = end;
        self.drive();
    }

    /// Every event the client has produced so far.
    pub fn client_events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.client.poll_event()).collect()
    }

    /// Every event the server has produced so far.
    pub fn server_events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.server.poll_event()).collect()
    }
}

/// What became of a server connection fed a recorded byte stream by [`serve_recording`].
#[derive(Debug)]
pub struct Served {
    /// Every event, in order.
    pub events: Vec<Event>,
    /// How many of `events` came while the input was read (the rest came from timers).
    pub input_events: usize,
    /// Everything the server wrote.
    pub output: Vec<u8>,
    /// How many bytes of `output` were written while the input was read.
    pub input_output: usize,
    /// Whether the connection was open once the input was read.
    pub opened: bool,
    /// Whether it ended once every timer had fired.
    pub done: bool,
}

/// Feeds `input` to a server connection in pieces of `chunk` bytes (at least 1), accepting
/// every SASL exchange as soon as it asks, then lets every timer fire. The Proton corpus test and
/// the engine fuzz target both drive the engine through this.
pub fn serve_recording(input: &[u8], chunk: usize) -> Served {
    let mut now = Instant::now();
    let mut server = Connection::server(Config::server("sluice-test"), now);
    let mut events = Vec::new();
    let mut output = Vec::new();
    let collect = |server: &mut Connection, now: Instant, events: &mut Vec<Event>| {
        while let Some(event) = server.poll_event() {
            match &event {
                Event::SaslInit { .. } | Event::SaslResponse { .. } => {
                    server.sasl_outcome(sluice_codec::SaslCode::Ok, now);
                }
                Event::LinkAttached {
                    link,
                    attach,
                    remote_first: true,
                } => {
                    accept_mirrored(server, *link, attach, now);
                }
                _ => {}
            }
            events.push(event);
        }
    };
    for piece in input.chunks(chunk.max(1)) {
        server.handle_input(piece, now);
        collect(&mut server, now, &mut events);
        output.extend_from_slice(&server.take_output());
    }
    let opened = server.is_open();
    let input_events = events.len();
    let input_output = output.len();
    // Every deadline is at most a few minutes out: handshake, idle and close timeouts.
    for _ in 0..1000 {
        let Some(at) = server.poll_timeout() else {
            break;
        };
        now = now.max(at);
        server.handle_timeout(now);
        collect(&mut server, now, &mut events);
        output.extend_from_slice(&server.take_output());
        if server.is_done() {
            break;
        }
        now += Duration::from_millis(1);
    }
    Served {
        events,
        input_events,
        output,
        input_output,
        opened,
        done: server.is_done(),
    }
}

/// Accepts a link the peer attached with the mirror of its attach (our role the other one, the
/// same terminii), granting 100 credit when we receive.
pub fn accept_mirrored(
    connection: &mut Connection,
    link: crate::LinkId,
    attach: &Attach,
    now: Instant,
) {
    let role = match attach.role {
        Role::Sender => Role::Receiver,
        Role::Receiver => Role::Sender,
    };
    let reply = Attach {
        name: attach.name.clone(),
        role,
        source: attach.source.clone(),
        target: attach.target.clone(),
        initial_delivery_count: (role == Role::Sender).then_some(0),
        ..Default::default()
    };
    connection.accept_link(link, reply, now);
    if role == Role::Receiver {
        connection.grant_credit(link, 100, false, now);
    }
}
