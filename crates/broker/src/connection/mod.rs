//! One task per connection: it owns the stream and the protocol engine, turns the engine's
//! events into commands for the core, and the core's answers into frames. After each wake-up
//! (a read, answers from the core, a timer) it writes everything the engine produced at once.
//!
//! The task is generic over its stream, so plain TCP, TLS and WebSocket connections all run
//! the same code. Its parts: the run loop (here), the links ([`links`]), attaching
//! ([`attach`]), messages in and out and their settlement ([`transfer`]), and the SASL step
//! that establishes who the peer is ([`sasl`]).

mod attach;
pub(crate) use attach::{LINK_CAPACITY_MAX, PUBLISH_CREDIT};
mod backlog;
mod cbs;
mod filters;
mod links;
mod manage;
mod read;
pub(crate) mod refuse;
mod replies;
mod rights;
mod sasl;
mod transfer;
mod txn;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use rustc_hash::FxHashMap;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

use sluice_codec::transport::{Error, conditions};
use sluice_engine::{Config, Connection, Event, LinkId, SaslConfig};
use sluice_router::{AddressTable, Direction, Resolution};
use sluice_store::MessageId;
use sluice_transport::PeerInfo;

use crate::core::{Command, ConnId, ToConn};
use crate::driver::{CoreTx, ToCore};
use crate::gate::Admission;
use crate::security::Security;
use backlog::Backlog;
use links::Links;
use read::ReadBuffer;
use sasl::{Auth, Pending, PendingFuture};

/// Output written at once while answers from the core wait: a consumer's batch of large
/// messages (a thousand of 64 KiB) goes out in pieces of about this size through one reused
/// buffer, not as one buffer of tens of megabytes grown and faulted in each time.
const WRITE_CHUNK: usize = 256 * 1024;

/// What a configuration gives connections, replaced whole by a reload.
#[derive(Debug)]
pub(crate) struct Serving {
    /// The addresses, resolved at attach.
    pub(crate) table: AddressTable,
    /// The engine's settings for connections opened from now on (the idle timeout and the
    /// largest message are negotiated at open and attach).
    pub(crate) config: Config,
    /// The credit publishers are kept topped up to.
    pub(crate) link_capacity: u32,
}

/// What every connection of a listener shares.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub(crate) serving: watch::Receiver<Arc<Serving>>,
    pub(crate) core: CoreTx,
    pub(crate) security: Arc<Security>,
    /// Bounds the password hashes computed at once.
    pub(crate) hashing: Arc<tokio::sync::Semaphore>,
    /// What the external authentication server offers, asked periodically.
    pub(crate) external_mechanisms: watch::Receiver<Arc<Vec<String>>>,
    /// Most links of each direction per connection.
    pub(crate) senders_max: u32,
    pub(crate) receivers_max: u32,
    pub(crate) telemetry: crate::telemetry::Telemetry,
}

struct State {
    conn: ConnId,
    engine: Connection,
    serving: Arc<Serving>,
    core: CoreTx,
    /// Who the peer is and what it may do.
    auth: Auth,
    /// Its places in the broker's connection counts.
    admission: Admission,
    /// Rights gained by `$cbs` put-token, and the `$cbs` links.
    cbs: cbs::Cbs,
    /// Open transactions and commits in flight.
    txns: txn::Txns,
    /// The `$management` links and answers.
    manage: manage::Manage,
    senders_max: u32,
    receivers_max: u32,
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
    /// Refused attaches logged so far: a client refused over and over is logged only for its
    /// first [`LINK_REFUSALS_LOGGED_MAX`].
    link_refusals_logged: u32,
    telemetry: crate::telemetry::Telemetry,
    /// This connection and its sessions in the metrics.
    counted: crate::telemetry::metrics::ConnectionGauge,
}

/// Refused attaches logged per connection.
const LINK_REFUSALS_LOGGED_MAX: u32 = 10;

/// Serves one accepted stream until the connection ends.
pub(crate) async fn run<S>(
    stream: S,
    peer: PeerInfo,
    conn: ConnId,
    shared: Shared,
    admission: Admission,
    mut stopping: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (tx, mut from_core) = mpsc::unbounded_channel();
    if shared.core.send(ToCore::Hello { conn, tx }).await.is_err() {
        return;
    }
    let (mut rd, mut wr) = tokio::io::split(stream);
    let auth = Auth::new(
        Arc::clone(&shared.security),
        Arc::clone(&shared.hashing),
        peer,
    );
    let mut serving_rx = shared.serving.clone();
    let serving = Arc::clone(&serving_rx.borrow_and_update());
    let mut config = serving.config.clone();
    config.sasl = SaslConfig::Server {
        mechanisms: auth.mechanisms(&shared.external_mechanisms.borrow()),
        allow_no_sasl: auth.allows_no_sasl(),
    };
    let mut pending: Option<PendingFuture> = None;
    let mut state = State {
        conn,
        engine: Connection::server(config, Instant::now()),
        serving,
        core: shared.core,
        auth,
        admission,
        cbs: cbs::Cbs::default(),
        txns: txn::Txns::default(),
        manage: manage::Manage::default(),
        senders_max: shared.senders_max,
        receivers_max: shared.receivers_max,
        links: Links::default(),
        sent: FxHashMap::default(),
        accepting: None,
        answers: VecDeque::new(),
        commands: Vec::new(),
        backlog: Backlog::default(),
        next_tag: 0,
        link_refusals_logged: 0,
        counted: crate::telemetry::metrics::ConnectionGauge::new(shared.telemetry.metrics()),
        telemetry: shared.telemetry,
    };
    let mut buf = ReadBuffer::default();
    loop {
        state.handle_events();
        if !state.flush_commands().await {
            break;
        }
        let out = state.engine.take_output();
        // One flush per wake-up: a TLS or WebSocket stream sends what it buffered (a
        // WebSocket message per flush), plain TCP has nothing to do.
        if !out.is_empty() && (wr.write_all(&out).await.is_err() || wr.flush().await.is_err()) {
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
        if let Some(p) = state
            .auth
            .pending
            .take()
            .or_else(|| state.cbs.pending.take())
        {
            pending = Some(p);
        }
        let deadline = state.engine.poll_timeout();
        let expiry = state.next_expiry();
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
            done = poll_pending(&mut pending) => {
                pending = None;
                state.on_pending(done, Instant::now());
            }
            () = sleep_until_ms(expiry) => state.on_expiry(Instant::now()),
            // A reload: links to removed addresses, and links that lost their rights, are
            // detached. (One watch for both: every branch here costs each wake-up.)
            Ok(()) = serving_rx.changed() => {
                let serving = Arc::clone(&serving_rx.borrow_and_update());
                state.on_serving_changed(serving, Instant::now());
                let users = Arc::clone(&state.auth.security().users.borrow());
                if !Arc::ptr_eq(&users, &state.auth.users) {
                    state.on_rights_changed(users, Instant::now());
                }
            }
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

/// The result of the future authentication waits on; never, without one.
async fn poll_pending(pending: &mut Option<PendingFuture>) -> Pending {
    match pending {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

/// Sleeps until a Unix time in milliseconds (a token's expiry); never, without one.
async fn sleep_until_ms(at_ms: Option<i64>) {
    match at_ms {
        Some(at) => {
            let wait = u64::try_from(at.saturating_sub(sasl::now_ms())).unwrap_or(0);
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
        }
        None => std::future::pending().await,
    }
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
                } => self.on_sasl_init(mechanism.as_str(), initial_response, now),
                Event::SaslResponse { response } => self.on_sasl_response(response, now),
                Event::Opened { .. } => self.on_opened(now),
                // The engine closed the connection: the peer broke the protocol, went silent,
                // or ran out its handshake time.
                Event::Failed(error) => tracing::warn!(
                    conn = self.conn,
                    peer = %self.auth.peer.addr,
                    user = self.auth.principal.as_ref().map_or("", |p| &*p.username),
                    %error,
                    "connection closed"
                ),
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
                    state,
                    payload,
                    ..
                } => self.on_delivery(link, delivery_id, settled, state, payload, now),
                Event::Disposition {
                    session,
                    role: sluice_codec::transport::Role::Receiver,
                    first,
                    last,
                    settled,
                    state,
                } => self.on_disposition(session, (first, last), settled, state, now),
                Event::LinkDetached { link, .. } => self.unbind(link),
                Event::SessionBegun { .. } => self.counted.session(1),
                Event::SessionEnded { session, .. } => {
                    self.counted.session(-1);
                    for link in self.links.of_session(session) {
                        self.unbind(link);
                    }
                }
                _ => {}
            }
        }
        self.resume_stalled();
        self.send_backlog(now);
        self.send_cbs_answers(now);
        self.send_manage_answers(now);
    }

    /// The open exchange is done: a connection that skipped SASL (service `none`) is
    /// anonymous; one over a limit learns why and closes.
    fn on_opened(&mut self, now: Instant) {
        if self.auth.principal.is_none() && !self.auth.allows_no_sasl() {
            // The engine lets a client skip SASL when no mechanism was offered; only service
            // `none` lets anyone in.
            let error = crate::error::Refusal::AuthenticationRequired.to_amqp();
            self.engine.close(Some(error), now);
            return;
        }
        if self.auth.principal.is_none() {
            let principal = Auth::anonymous();
            self.admit(&principal);
            self.auth.principal = Some(principal);
        }
        if let Some(error) = self.auth.refused_at_open.take() {
            self.engine.close(Some(error), now);
        }
    }

    /// A reload: links whose address is gone, or now names another node, are detached with
    /// `amqp:not-found`; the rest carry on, and new attaches use the new table.
    fn on_serving_changed(&mut self, serving: Arc<Serving>, now: Instant) {
        self.serving = serving;
        for (link, node, authorized) in self.links.bound() {
            let Some(address) = authorized.address else {
                continue;
            };
            let direction = if authorized.send {
                Direction::Send
            } else {
                Direction::Receive
            };
            let still = match self.serving.table.resolve(&address, direction) {
                Ok(Resolution::Node(n) | Resolution::Subscription(n)) => n.id == node,
                Ok(
                    Resolution::TopicName { topic, .. } | Resolution::TopicPattern { topic, .. },
                ) => topic.id == node,
                Err(_) => false,
            };
            if !still {
                tracing::info!(conn = self.conn, %address, "the address left the configuration: its link is detached");
                let error = Error::new(
                    conditions::NOT_FOUND,
                    format!("the address '{address}' was removed from the configuration"),
                );
                self.engine.detach(link, true, Some(error), now);
                self.unbind(link);
            }
        }
    }

    /// A link goes: everything the connection kept for it goes with it, and the core
    /// forgets it (a receiver stops consuming, a sender's waiting publishes are dropped).
    fn unbind(&mut self, link: LinkId) {
        let Some(entry) = self.links.remove(link) else {
            return;
        };
        if entry.is_cbs() {
            self.forget_cbs_link(link);
            return;
        }
        if entry.is_manage() {
            self.forget_manage_link(link);
            return;
        }
        if matches!(entry.binding, links::Binding::Coordinator) {
            self.forget_coordinator(link);
        }
        if entry.is_receiver() {
            self.sent.retain(|_, (l, _)| *l != link);
            self.backlog.forget(link);
        }
        self.push(Command::Detach { link });
    }
}
