//! One task per connection: it owns the socket and the protocol engine, turns the engine's
//! events into commands for the core, and the core's answers into frames. After each wake-up
//! (a read, answers from the core, a timer) it writes everything the engine produced at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use sluice_codec::transport::{
    Accepted, Attach, AttachTarget, DeliveryState, DeliveryTag, Error, Rejected, Role,
    SenderSettleMode,
};
use sluice_codec::types::Symbol;
// Temporary queues' addresses start with this prefix, which `sluice check` refuses in manifests.
use sluice_config::TEMPORARY_ADDRESS_PREFIX as TEMPORARY_PREFIX;
use sluice_engine::{Config, Connection, Event, LinkId, SessionId};
use sluice_router::{AddressTable, Direction, NodeKind, Resolution};
use sluice_store::{MessageId, Outcome};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::core::{Command, ConnId, ToConn};

/// Credit a publishing link is kept topped up to: enough to keep a fast producer streaming,
/// small enough that the core's backlog per link stays bounded.
const PUBLISH_CREDIT: u32 = 500;

fn is_temporary(address: &str) -> bool {
    address.starts_with(TEMPORARY_PREFIX)
}

/// Where a client's message goes: `(address, multicast)`, or the condition and reason it is
/// rejected with.
type RouteTarget = Result<(String, bool), (Symbol, String)>;

/// A delivery read from a publishing link.
struct Incoming {
    link: LinkId,
    delivery_id: u32,
    settled: bool,
    payload: bytes::Bytes,
}

/// Read buffer size: one syscall takes up to this much.
const READ_BUFFER: usize = 64 * 1024;

/// What a link attached on this connection is bound to.
enum Binding {
    /// The client publishes to `queue`.
    Publisher { queue: String },
    /// The client consumes from a queue (the core knows which).
    Consumer,
    /// The client consumes from the temporary queue its dynamic receiver created; the queue
    /// goes when the link does.
    TemporaryConsumer { address: String },
    /// The client publishes to a multicast address.
    MulticastPublisher { address: String },
    /// The client receives a multicast address's messages, pre-settled.
    MulticastReceiver,
    /// The client sends with a null target address: each message goes where its `to` says
    /// (the `ANONYMOUS-RELAY` capability).
    Relay,
}

struct State {
    conn: ConnId,
    engine: Connection,
    table: Arc<AddressTable>,
    core: mpsc::Sender<Command>,
    links: HashMap<LinkId, Binding>,
    /// Deliveries we sent and await an outcome for: by (session, delivery id).
    sent: BTreeMap<(u16, u32), (LinkId, MessageId)>,
    commands: Vec<Command>,
    /// Tags for pre-settled deliveries, which the core does not number.
    next_tag: u64,
    /// Temporary queues this connection has created.
    next_temporary: u64,
}

/// Serves one accepted socket until the connection ends.
pub(crate) async fn run(
    stream: TcpStream,
    conn: ConnId,
    config: Config,
    table: Arc<AddressTable>,
    core: mpsc::Sender<Command>,
) {
    // Without it every request/response step (attach, credit, disposition) waits out Nagle.
    let _ = stream.set_nodelay(true);
    let (tx, mut from_core) = mpsc::unbounded_channel();
    if core.send(Command::Register { conn, tx }).await.is_err() {
        return;
    }
    let (mut rd, mut wr) = stream.into_split();
    let mut state = State {
        conn,
        engine: Connection::server(config, Instant::now()),
        table,
        core,
        links: HashMap::new(),
        sent: BTreeMap::new(),
        commands: Vec::new(),
        next_tag: 0,
        next_temporary: 0,
    };
    let mut buf = vec![0u8; READ_BUFFER];
    loop {
        state.handle_events();
        if !state.flush_commands().await {
            break;
        }
        let out = state.engine.take_output();
        if !out.is_empty() && wr.write_all(&out).await.is_err() {
            break;
        }
        if state.engine.is_done() {
            break;
        }
        let deadline = state.engine.poll_timeout();
        tokio::select! {
            read = rd.read(&mut buf), if !state.engine.is_output_full() => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => state.engine.handle_input(buf.get(..n).unwrap_or_default(), Instant::now()),
            },
            answer = from_core.recv() => match answer {
                Some(first) => {
                    state.on_core_answer(first);
                    while let Ok(more) = from_core.try_recv() {
                        state.on_core_answer(more);
                    }
                }
                None => break,
            },
            () = sleep_until(deadline) => state.engine.handle_timeout(Instant::now()),
        }
    }
    let _ = state.core.send(Command::Unregister { conn }).await;
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

    /// Sends this wake-up's commands to the core; false if the core is gone.
    async fn flush_commands(&mut self) -> bool {
        for command in self.commands.drain(..) {
            if self.core.send(command).await.is_err() {
                return false;
            }
        }
        true
    }

    fn handle_events(&mut self) {
        let now = Instant::now();
        while let Some(event) = self.engine.poll_event() {
            match event {
                // Authentication `none`: any mechanism we offer, any credentials.
                Event::SaslInit { .. } | Event::SaslResponse { .. } => {
                    self.engine.sasl_outcome(sluice_codec::SaslCode::Ok, now);
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
                } => {
                    if matches!(
                        self.links.get(&link),
                        Some(
                            Binding::Consumer
                                | Binding::TemporaryConsumer { .. }
                                | Binding::MulticastReceiver
                        )
                    ) {
                        self.push(Command::Credit {
                            conn: self.conn,
                            link,
                            credit,
                            drain,
                        });
                    }
                }
                Event::Delivery {
                    link,
                    delivery_id,
                    settled,
                    payload,
                    ..
                } => {
                    let target = match self.links.get(&link) {
                        Some(Binding::Publisher { queue }) => Ok((queue.clone(), false)),
                        Some(Binding::MulticastPublisher { address }) => {
                            Ok((address.clone(), true))
                        }
                        Some(Binding::Relay) => self.relay_target(&payload),
                        _ => continue,
                    };
                    let delivery = Incoming {
                        link,
                        delivery_id,
                        settled,
                        payload,
                    };
                    self.route(delivery, target, now);
                    if self.engine.credit(link) < PUBLISH_CREDIT / 2 {
                        self.engine.grant_credit(link, PUBLISH_CREDIT, false, now);
                    }
                }
                Event::Disposition {
                    session,
                    role: Role::Receiver,
                    first,
                    last,
                    settled,
                    state,
                } => {
                    self.on_disposition(session, first, last, settled, state);
                }
                Event::LinkDetached { link, .. } => self.unbind(link),
                Event::SessionEnded { session, .. } => {
                    let gone: Vec<LinkId> = self
                        .links
                        .keys()
                        .filter(|l| l.session == session)
                        .copied()
                        .collect();
                    for link in gone {
                        self.unbind(link);
                    }
                }
                _ => {}
            }
        }
    }

    fn unbind(&mut self, link: LinkId) {
        match self.links.remove(&link) {
            Some(Binding::Consumer) => {
                self.sent.retain(|_, (l, _)| *l != link);
                self.push(Command::RemoveConsumer {
                    conn: self.conn,
                    link,
                });
            }
            Some(Binding::MulticastReceiver) => self.push(Command::RemoveConsumer {
                conn: self.conn,
                link,
            }),
            Some(Binding::TemporaryConsumer { address }) => {
                self.sent.retain(|_, (l, _)| *l != link);
                self.push(Command::RemoveConsumer {
                    conn: self.conn,
                    link,
                });
                self.push(Command::DeleteTemporaryQueue { address });
            }
            _ => {}
        }
    }

    fn on_attach(&mut self, link: LinkId, attach: &Attach, now: Instant) {
        // The peer sends: we receive into the target's address; the peer receives: we send
        // from the source's.
        let (direction, address) = match attach.role {
            Role::Sender => (
                Direction::Send,
                match &attach.target {
                    Some(AttachTarget::Target(t)) => {
                        t.address.as_ref().map(|a| a.as_str().to_string())
                    }
                    _ => None,
                },
            ),
            Role::Receiver => (
                Direction::Receive,
                attach
                    .source
                    .as_ref()
                    .and_then(|s| s.address.as_ref())
                    .map(|a| a.as_str().to_string()),
            ),
        };
        let Some(address) = address else {
            let dynamic = attach.source.as_ref().is_some_and(|s| s.dynamic)
                || matches!(&attach.target, Some(AttachTarget::Target(t)) if t.dynamic);
            if attach.role == Role::Sender && !dynamic {
                self.accept(link, attach, false, now);
                self.links.insert(link, Binding::Relay);
                self.engine.grant_credit(link, PUBLISH_CREDIT, false, now);
                return;
            }
            if attach.role == Role::Receiver && dynamic {
                self.attach_dynamic_receiver(link, attach, now);
                return;
            }
            let error = Error::new(
                Symbol::from_static("amqp:not-implemented"),
                "dynamic senders are not served",
            );
            self.engine.refuse_link(link, error, now);
            return;
        };
        let resolved = if is_temporary(&address) {
            // Temporary queues are not in the address table: the core knows whether one exists.
            Ok(address.clone())
        } else {
            Err(())
        };
        let (node_address, multicast) = match resolved {
            Ok(temporary) => (temporary, false),
            Err(()) => match self.table.resolve(&address, direction) {
                Ok(Resolution::Node(node))
                    if matches!(node.kind, NodeKind::Queue | NodeKind::Deadletter) =>
                {
                    (node.address.clone(), false)
                }
                Ok(Resolution::Node(node)) if node.kind == NodeKind::Multicast => {
                    (node.address.clone(), true)
                }
                Ok(_) => {
                    let error = Error::new(
                        Symbol::from_static("amqp:not-implemented"),
                        format!(
                            "'{address}' is served only as a queue or multicast address so far"
                        ),
                    );
                    self.engine.refuse_link(link, error, now);
                    return;
                }
                Err(e) => {
                    let condition = Symbol::try_from(e.condition())
                        .unwrap_or(Symbol::from_static("amqp:not-found"));
                    self.engine
                        .refuse_link(link, Error::new(condition, e.to_string()), now);
                    return;
                }
            },
        };
        self.accept(link, attach, multicast, now);
        let conn = self.conn;
        match (attach.role, multicast) {
            (Role::Sender, false) => {
                let queue = node_address;
                self.links.insert(link, Binding::Publisher { queue });
                self.engine.grant_credit(link, PUBLISH_CREDIT, false, now);
            }
            (Role::Sender, true) => {
                let address = node_address;
                self.links
                    .insert(link, Binding::MulticastPublisher { address });
                self.engine.grant_credit(link, PUBLISH_CREDIT, false, now);
            }
            (Role::Receiver, false) => {
                let queue = node_address;
                self.links.insert(link, Binding::Consumer);
                self.push(Command::AddConsumer { conn, link, queue });
            }
            (Role::Receiver, true) => {
                let address = node_address;
                self.links.insert(link, Binding::MulticastReceiver);
                self.push(Command::AddMulticastReceiver {
                    conn,
                    link,
                    address,
                });
            }
        }
    }

    /// A dynamic receiver (request/reply): a temporary queue named for this connection, whose
    /// address the attach reply carries, deleted when the link closes.
    fn attach_dynamic_receiver(&mut self, link: LinkId, attach: &Attach, now: Instant) {
        self.next_temporary += 1;
        let address = format!("{TEMPORARY_PREFIX}{}.{}", self.conn, self.next_temporary);
        let conn = self.conn;
        self.push(Command::CreateTemporaryQueue {
            conn,
            address: address.clone(),
        });
        let mut source = attach.source.clone().unwrap_or_default();
        source.address = Some(address.as_str().into());
        let reply = Attach {
            name: attach.name.clone(),
            role: Role::Sender,
            source: Some(source),
            target: attach.target.clone(),
            ..Default::default()
        };
        self.engine.accept_link(link, reply, now);
        self.links.insert(
            link,
            Binding::TemporaryConsumer {
                address: address.clone(),
            },
        );
        self.push(Command::AddConsumer {
            conn,
            link,
            queue: address,
        });
    }

    /// Accepts a link the peer attached, mirroring its terminii; multicast deliveries go out
    /// pre-settled.
    fn accept(&mut self, link: LinkId, attach: &Attach, multicast: bool, now: Instant) {
        let reply = Attach {
            name: attach.name.clone(),
            role: match attach.role {
                Role::Sender => Role::Receiver,
                Role::Receiver => Role::Sender,
            },
            snd_settle_mode: if multicast && attach.role == Role::Receiver {
                SenderSettleMode::Settled
            } else {
                SenderSettleMode::Mixed
            },
            source: attach.source.clone(),
            target: attach.target.clone(),
            ..Default::default()
        };
        self.engine.accept_link(link, reply, now);
    }

    /// Anonymous relay: where a message's `to` sends it, or why it cannot go.
    fn relay_target(&self, payload: &bytes::Bytes) -> RouteTarget {
        let to = sluice_codec::messaging::ScannedMessage::scan(payload.clone())
            .ok()
            .and_then(|m| m.to().map(str::to_string));
        match to.as_deref() {
            None => Err((
                Symbol::from_static("amqp:invalid-field"),
                "a message on an anonymous link needs a 'to'".to_string(),
            )),
            Some(to) if is_temporary(to) => Ok((to.to_string(), false)),
            Some(to) => match self.table.resolve(to, Direction::Send) {
                Ok(Resolution::Node(node)) => match node.kind {
                    NodeKind::Queue => Ok((node.address.clone(), false)),
                    NodeKind::Multicast => Ok((node.address.clone(), true)),
                    _ => Err((
                        Symbol::from_static("amqp:not-implemented"),
                        format!("'{to}' is served only as a queue or multicast address so far"),
                    )),
                },
                Ok(_) => Err((
                    Symbol::from_static("amqp:not-implemented"),
                    format!("'{to}' is served only as a queue or multicast address so far"),
                )),
                Err(e) => Err((
                    Symbol::try_from(e.condition())
                        .unwrap_or(Symbol::from_static("amqp:not-found")),
                    e.to_string(),
                )),
            },
        }
    }

    /// Publishes a delivery from a client to a queue (the outcome comes from the core) or a
    /// multicast address (settled at once: nothing is stored to wait for), or rejects it.
    fn route(&mut self, delivery: Incoming, target: RouteTarget, now: Instant) {
        let Incoming {
            link,
            delivery_id,
            settled,
            payload,
        } = delivery;
        let conn = self.conn;
        let state = match target {
            Ok((queue, false)) => {
                let settle = (!settled).then_some((link.session, delivery_id));
                self.push(Command::Publish {
                    conn,
                    queue,
                    message: payload,
                    settle,
                });
                return;
            }
            Ok((address, true)) => {
                self.push(Command::PublishMulticast {
                    address,
                    message: payload,
                });
                DeliveryState::Accepted(Accepted {})
            }
            Err((condition, description)) => DeliveryState::Rejected(Rejected {
                error: Some(Box::new(Error::new(condition, description))),
            }),
        };
        if !settled {
            self.engine.disposition(
                link.session,
                Role::Receiver,
                delivery_id,
                delivery_id,
                true,
                Some(state),
                now,
            );
        }
    }

    fn on_disposition(
        &mut self,
        session: SessionId,
        first: u32,
        last: u32,
        settled: bool,
        state: Option<DeliveryState>,
    ) {
        let outcome = match state {
            Some(DeliveryState::Accepted(_)) => Outcome::Accepted,
            Some(DeliveryState::Released(_)) => Outcome::Released,
            Some(DeliveryState::Rejected(_)) => Outcome::Rejected,
            Some(DeliveryState::Modified(m)) => Outcome::Modified {
                delivery_failed: m.delivery_failed,
                undeliverable_here: m.undeliverable_here,
            },
            // Settled with no outcome: nothing says the message was processed, so it is offered
            // again rather than lost.
            None if settled => Outcome::Released,
            _ => return,
        };
        let range = (session.0, first)..=(session.0, last);
        let ids: Vec<(u16, u32)> = self.sent.range(range).map(|(k, _)| *k).collect();
        for key in ids {
            if let Some((link, message)) = self.sent.remove(&key) {
                self.push(Command::Settle {
                    conn: self.conn,
                    link,
                    message,
                    outcome,
                });
            }
        }
    }

    fn on_core_answer(&mut self, answer: ToConn) {
        let now = Instant::now();
        match answer {
            ToConn::Deliver {
                link,
                message,
                payload,
            } => {
                match self
                    .engine
                    .send(link, DeliveryTag::from_u64(message.0), &payload, false, now)
                {
                    Ok(delivery_id) => {
                        self.sent
                            .insert((link.session.0, delivery_id), (link, message));
                    }
                    // The link went away or lost its credit meanwhile: the message goes back.
                    Err(_) => self.push(Command::Settle {
                        conn: self.conn,
                        link,
                        message,
                        outcome: Outcome::Released,
                    }),
                }
            }
            ToConn::Published {
                session,
                delivery_id,
                outcome,
            } => {
                let state = match outcome {
                    Ok(()) => DeliveryState::Accepted(Accepted {}),
                    Err((condition, description)) => DeliveryState::Rejected(Rejected {
                        error: Some(Box::new(Error::new(condition, description))),
                    }),
                };
                self.engine.disposition(
                    session,
                    Role::Receiver,
                    delivery_id,
                    delivery_id,
                    true,
                    Some(state),
                    now,
                );
            }
            ToConn::Drained { link } => self.engine.drained(link, now),
            ToConn::DeliverSettled { link, payload } => {
                self.next_tag += 1;
                // A receiver that left or ran out of credit misses it: multicast stores nothing.
                let _ = self.engine.send(
                    link,
                    DeliveryTag::from_u64(self.next_tag),
                    &payload,
                    true,
                    now,
                );
            }
        }
    }
}
