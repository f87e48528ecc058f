//! An in-memory client/server pair on a virtual clock, for tests and benchmarks: what one side
//! writes, the other reads, with no sockets and no real time.

use std::time::{Duration, Instant};

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
