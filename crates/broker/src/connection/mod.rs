//! One task per connection: it owns the stream and the protocol engine, turns the engine's
//! events into commands for the core, and the core's answers into frames. After each wake-up
//! (a read, answers from the core, a timer) it writes everything the engine produced at once.
//!
//! The task is generic over its stream, so plain TCP, TLS and WebSocket connections all run
//! the same code. Its parts: the run loop (here), the links ([`links`]), attaching
//! ([`attach`]), messages in and out and their settlement ([`transfer`]), and the SASL step
//! that establishes who the peer is ([`sasl`]).

mod attach;
mod backlog;
mod links;
mod read;
mod sasl;
mod transfer;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use rustc_hash::FxHashMap;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

use sluice_codec::transport::{Error, conditions};
use sluice_engine::{Config, Connection, Event, LinkId};
use sluice_router::AddressTable;
use sluice_store::MessageId;

use crate::core::{Command, ConnId, ToConn};
use crate::driver::{CoreTx, ToCore};
use backlog::Backlog;
use links::Links;
use read::ReadBuffer;
use sasl::{Authenticator, Identity, Step};

/// Output written at once while answers from the core wait: a consumer's batch of large
/// messages (a thousand of 64 KiB) goes out in pieces of about this size through one reused
/// buffer, not as one buffer of tens of megabytes grown and faulted in each time.
const WRITE_CHUNK: usize = 256 * 1024;

/// What every connection of a listener shares.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) table: Arc<AddressTable>,
    pub(crate) core: CoreTx,
}

struct State {
    conn: ConnId,
    engine: Connection,
    table: Arc<AddressTable>,
    core: CoreTx,
    auth: Authenticator,
    /// Who the peer is, once SASL (or its absence) has said.
    identity: Identity,
    links: Links,
    /// Deliveries we sent and await an outcome for: by (session, delivery id).
    sent: FxHashMap<(u16, u32), (LinkId, MessageId)>,
    /// Accepted publishes answered in this wake-up and not yet settled: one session's
    /// contiguous delivery ids, settled with a single disposition.
    accepting: Option<(sluice_engine::SessionId, u32, u32)>,
    /// Answers from the core not applied yet: the rest of a batch past [`WRITE_CHUNK`].
    answers: VecDeque<ToConn>,
    commands: Vec<Command>,
    /// Pre-settled deliveries waiting for a closed session window.
    backlog: Backlog,
    /// Tags for pre-settled deliveries, which the core does not number.
    next_tag: u64,
}

/// Serves one accepted stream until the connection ends.
pub(crate) async fn run<S>(
    stream: S,
    conn: ConnId,
    shared: Shared,
    mut stopping: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (tx, mut from_core) = mpsc::unbounded_channel();
    if shared.core.send(ToCore::Hello { conn, tx }).await.is_err() {
        return;
    }
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut state = State {
        conn,
        engine: Connection::server(shared.config, Instant::now()),
        table: shared.table,
        core: shared.core,
        auth: Authenticator,
        identity: Identity::Anonymous,
        links: Links::default(),
        sent: FxHashMap::default(),
        accepting: None,
        answers: VecDeque::new(),
        commands: Vec::new(),
        backlog: Backlog::default(),
        next_tag: 0,
    };
    let mut buf = ReadBuffer::default();
    loop {
        state.handle_events();
        if !state.flush_commands().await {
            break;
        }
        let out = state.engine.take_output();
        if !out.is_empty() && wr.write_all(&out).await.is_err() {
            break;
        }
        state.engine.recycle_output(out);
        if state.engine.is_done() {
            break;
        }
        if !state.answers.is_empty() {
            state.apply_answers(Instant::now());
            continue;
        }
        let deadline = state.engine.poll_timeout();
        tokio::select! {
            read = buf.read_from(&mut rd), if !state.engine.is_output_full() => match read {
                Ok(bytes) if !bytes.is_empty() => state.engine.handle_input(bytes, Instant::now()),
                _ => break,
            },
            answer = from_core.recv() => match answer {
                Some(first) => {
                    state.answers.extend(first);
                    while let Ok(more) = from_core.try_recv() {
                        state.answers.extend(more);
                    }
                    state.apply_answers(Instant::now());
                }
                None => break,
            },
            () = sleep_until(deadline) => state.engine.handle_timeout(Instant::now()),
            // The broker is shutting down: close, then keep reading until the peer's close.
            Ok(()) = stopping.changed() => {
                let error = Error::new(conditions::CONNECTION_FORCED, "Sluice is shutting down");
                state.engine.close(Some(error), Instant::now());
            }
        }
    }
    let gone = ToCore::Batch {
        conn,
        commands: vec![Command::Gone],
    };
    // A core that has gone needs no goodbye.
    let _core_gone = state.core.send(gone).await;
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

impl State {
    fn push(&mut self, command: Command) {
        self.commands.push(command);
    }

    /// Sends this wake-up's commands to the core as one batch; false if the core is gone.
    async fn flush_commands(&mut self) -> bool {
        if self.commands.is_empty() {
            return true;
        }
        // The next batch starts with room for as many commands as this one held: publishes
        // are large, and regrowing the vector from empty each wake-up copied them repeatedly.
        let room = Vec::with_capacity(self.commands.len());
        let commands = std::mem::replace(&mut self.commands, room);
        let batch = ToCore::Batch {
            conn: self.conn,
            commands,
        };
        self.core.send(batch).await.is_ok()
    }

    fn handle_events(&mut self) {
        let now = Instant::now();
        while let Some(event) = self.engine.poll_event() {
            match event {
                Event::SaslInit {
                    mechanism,
                    initial_response,
                    ..
                } => {
                    let step = self.auth.init(&mechanism, initial_response.as_deref());
                    self.sasl_step(step, now);
                }
                Event::SaslResponse { response } => {
                    let step = self.auth.respond(&response);
                    self.sasl_step(step, now);
                }
                Event::LinkAttached {
                    link,
                    attach,
                    remote_first: true,
                } => self.on_attach(link, &attach, now),
                Event::Credit {
                    link,
                    credit,
                    drain,
                } => self.on_credit(link, credit, drain),
                Event::Delivery {
                    link,
                    delivery_id,
                    settled,
                    payload,
                    ..
                } => self.on_delivery(link, delivery_id, settled, payload, now),
                Event::Disposition {
                    session,
                    role: sluice_codec::transport::Role::Receiver,
                    first,
                    last,
                    settled,
                    state,
                } => self.on_disposition(session, first, last, settled, state),
                Event::LinkDetached { link, .. } => self.unbind(link),
                Event::SessionEnded { session, .. } => {
                    for link in self.links.of_session(session) {
                        self.unbind(link);
                    }
                }
                _ => {}
            }
        }
        self.resume_stalled();
        self.send_backlog(now);
    }

    fn sasl_step(&mut self, step: Step, now: Instant) {
        match step {
            Step::Done { code, identity } => {
                if code == sluice_codec::SaslCode::Ok {
                    self.identity = identity;
                }
                self.engine.sasl_outcome(code, now);
            }
        }
    }

    /// A link goes: everything the connection kept for it goes with it, and the core
    /// forgets it (a receiver stops consuming, a sender's waiting publishes are dropped).
    fn unbind(&mut self, link: LinkId) {
        let Some(entry) = self.links.remove(link) else {
            return;
        };
        if entry.is_receiver() {
            self.sent.retain(|_, (l, _)| *l != link);
            self.backlog.forget(link);
        }
        self.push(Command::Detach { link });
    }
}
