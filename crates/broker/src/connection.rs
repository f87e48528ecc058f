//! One task per connection: it owns the socket and the protocol engine, turns the engine's
//! events into commands for the core, and the core's answers into frames. After each wake-up
//! (a read, answers from the core, a timer) it writes everything the engine produced at once.

use rustc_hash::FxHashMap;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use sluice_codec::messaging::ScannedMessage;
use sluice_codec::transport::{
    Accepted, Attach, AttachTarget, DeliveryState, DeliveryTag, Error, Modified, Released, Role,
    SenderSettleMode, conditions,
};
use sluice_codec::types::Symbol;
// Temporary queues' addresses start with this prefix, which `sluice check` refuses in manifests.
use sluice_config::TEMPORARY_ADDRESS_PREFIX as TEMPORARY_PREFIX;
use sluice_engine::{Config, Connection, Event, LinkId, SendError, SessionId};
use sluice_router::{AddressTable, Direction, NodeKind, Resolution, RouteError};
use sluice_store::MessageId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::core::{Command, ConnId, Filter, Route, Subscribe, ToConn, rejected_with};

/// Credit a publishing link is kept topped up to, counting the messages the core has not
/// answered yet: enough to keep a fast producer streaming, and the most the core holds for
/// one link when a topic holds publishers back.
const PUBLISH_CREDIT: u32 = 1000;

fn is_temporary(address: &str) -> bool {
    address.starts_with(TEMPORARY_PREFIX)
}

/// A transfer on a link where we are the sender: the engine refuses those, so this is only
/// the type system's completeness.
fn not_a_sender() -> Error {
    Error::new(
        conditions::NOT_ALLOWED,
        "this link carries messages the other way",
    )
}

fn route_error(e: &RouteError) -> Error {
    Error::new(
        Symbol::try_from(e.condition()).unwrap_or(Symbol::from_static("amqp:not-found")),
        e.to_string(),
    )
}

/// Read buffer size: one syscall takes up to this much.
const READ_BUFFER: usize = 64 * 1024;

/// Output written at once while answers from the core wait: a consumer's batch of large
/// messages (a thousand of 64 KiB) goes out in pieces of about this size through one reused
/// buffer, not as one buffer of tens of megabytes grown and faulted in each time.
const WRITE_CHUNK: usize = 256 * 1024;

/// What a link attached on this connection is bound to.
enum Binding {
    /// The client publishes along a fixed route; its credit follows the core's answers.
    Publisher(Route),
    /// The client publishes to an anycast address; its credit comes from the core, as
    /// receivers grant theirs.
    AnycastSender(Arc<str>),
    /// The client sends with a null target address: each message goes where its `to` says
    /// (the `ANONYMOUS-RELAY` capability).
    Relay,
    /// The client receives; the core knows from what.
    Receiver,
}

struct State {
    conn: ConnId,
    engine: Connection,
    table: Arc<AddressTable>,
    core: mpsc::Sender<Vec<Command>>,
    links: FxHashMap<LinkId, Binding>,
    /// Receivers' attach replies, sent when the core has subscribed them.
    pending: FxHashMap<LinkId, Attach>,
    /// Accepted publishes answered in this wake-up and not yet settled: one session's
    /// contiguous delivery ids, settled with a single disposition.
    accepting: Option<(SessionId, u32, u32)>,
    /// Publishes per link the core has not answered yet.
    unanswered: FxHashMap<LinkId, u32>,
    /// Receiving links whose client left too much unsettled (or closed its session window):
    /// the core was told their credit is 0 until there is room again. The value is the drain
    /// flag of the client's latest flow, passed on with the credit then.
    stalled: FxHashMap<LinkId, bool>,
    /// Deliveries we sent and await an outcome for: by (session, delivery id).
    sent: FxHashMap<(u16, u32), (LinkId, MessageId)>,
    /// Answers from the core not applied yet: the rest of a batch past [`WRITE_CHUNK`].
    answers: VecDeque<ToConn>,
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
    core: mpsc::Sender<Vec<Command>>,
    mut stopping: watch::Receiver<bool>,
) {
    // Without it every request/response step (attach, credit, disposition) waits out Nagle.
    let _ = stream.set_nodelay(true);
    let (tx, mut from_core) = mpsc::unbounded_channel();
    if core
        .send(vec![Command::Register { conn, tx }])
        .await
        .is_err()
    {
        return;
    }
    let (mut rd, mut wr) = stream.into_split();
    let mut state = State {
        conn,
        engine: Connection::server(config, Instant::now()),
        table,
        core,
        links: FxHashMap::default(),
        pending: FxHashMap::default(),
        accepting: None,
        unanswered: FxHashMap::default(),
        stalled: FxHashMap::default(),
        sent: FxHashMap::default(),
        answers: VecDeque::new(),
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
            read = rd.read(&mut buf), if !state.engine.is_output_full() => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => state.engine.handle_input(buf.get(..n).unwrap_or_default(), Instant::now()),
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
    let _ = state.core.send(vec![Command::Unregister { conn }]).await;
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
        let batch = std::mem::replace(&mut self.commands, room);
        self.core.send(batch).await.is_ok()
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
                    if let Some(latest) = self.stalled.get_mut(&link) {
                        *latest = drain;
                    } else if matches!(self.links.get(&link), Some(Binding::Receiver)) {
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
                    let settle = (!settled).then_some((link.session, delivery_id));
                    let published = match self.links.get(&link) {
                        Some(binding) => ScannedMessage::scan(payload)
                            .map_err(|e| {
                                Error::new(
                                    Symbol::try_from(e.condition())
                                        .unwrap_or(conditions::DECODE_ERROR),
                                    e.to_string(),
                                )
                            })
                            .and_then(|message| {
                                let route = match binding {
                                    Binding::Publisher(route) => route.clone(),
                                    Binding::AnycastSender(address) => {
                                        Route::Anycast(address.clone())
                                    }
                                    Binding::Relay => self.relay_route(&message)?,
                                    Binding::Receiver => return Err(not_a_sender()),
                                };
                                Ok((route, message))
                            }),
                        None => continue,
                    };
                    match published {
                        Ok((route, message)) => {
                            *self.unanswered.entry(link).or_default() += 1;
                            self.push(Command::Publish {
                                conn: self.conn,
                                link,
                                route,
                                message,
                                settle,
                            });
                        }
                        // A sender that settled its message hears nothing: it chose not to.
                        Err(error) => {
                            if let Some((session, id)) = settle {
                                self.settle_received(session, (id, id), rejected_with(error), now);
                            }
                        }
                    }
                    self.top_up(link, now);
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
        self.resume_stalled();
    }

    /// Gives the core back the credit of stalled links that have room again.
    fn resume_stalled(&mut self) {
        if self.stalled.is_empty() {
            return;
        }
        let ready: Vec<(LinkId, bool)> = self
            .stalled
            .iter()
            .filter(|(link, _)| self.engine.sendable(**link) > 0)
            .map(|(link, drain)| (*link, *drain))
            .collect();
        for (link, drain) in ready {
            self.stalled.remove(&link);
            self.push(Command::Credit {
                conn: self.conn,
                link,
                credit: self.engine.credit(link),
                drain,
            });
        }
    }

    /// Keeps a publishing link's credit plus what the core has not answered at
    /// [`PUBLISH_CREDIT`], refilling once half is used so flows are not sent per message.
    /// Anycast senders get their credit from the core instead.
    fn top_up(&mut self, link: LinkId, now: Instant) {
        if !matches!(
            self.links.get(&link),
            Some(Binding::Publisher(_) | Binding::Relay)
        ) {
            return;
        }
        let unanswered = self.unanswered.get(&link).copied().unwrap_or(0);
        if self.engine.credit(link) + unanswered <= PUBLISH_CREDIT / 2 {
            let credit = PUBLISH_CREDIT.saturating_sub(unanswered);
            self.engine.grant_credit(link, credit, false, now);
        }
    }

    fn unbind(&mut self, link: LinkId) {
        self.pending.remove(&link);
        self.stalled.remove(&link);
        self.unanswered.remove(&link);
        match self.links.remove(&link) {
            Some(Binding::Receiver) => {
                self.sent.retain(|_, (l, _)| *l != link);
                self.push(Command::Detach {
                    conn: self.conn,
                    link,
                });
            }
            Some(Binding::AnycastSender(_)) => self.push(Command::Detach {
                conn: self.conn,
                link,
            }),
            _ => {}
        }
    }

    /// What `address` is for a link in `direction`, in the core's terms (as a receiver would
    /// consume it; [`State::send_route`] turns it into a sender's route).
    fn target(&self, address: &str, direction: Direction) -> Result<Subscribe, Error> {
        if is_temporary(address) {
            // Temporary queues are not in the address table: the core knows whether one exists.
            return Ok(Subscribe::Queue(address.to_string()));
        }
        let resolved = self
            .table
            .resolve(address, direction)
            .map_err(|e| route_error(&e))?;
        Ok(match resolved {
            Resolution::Node(node) => match node.kind {
                NodeKind::Queue | NodeKind::Deadletter | NodeKind::Subscription { .. } => {
                    Subscribe::Queue(node.address.clone())
                }
                NodeKind::Topic => Subscribe::Topic {
                    topic: node.address.clone(),
                    filter: Filter::All,
                },
                NodeKind::Multicast => Subscribe::Multicast(node.address.clone()),
                NodeKind::Anycast => Subscribe::Anycast(node.address.clone()),
            },
            Resolution::TopicName { topic, name } => Subscribe::Topic {
                topic: topic.address.clone(),
                filter: Filter::Name(name),
            },
            Resolution::TopicPattern { topic, pattern } => Subscribe::Topic {
                topic: topic.address.clone(),
                filter: Filter::Pattern(pattern),
            },
            Resolution::Subscription(node) => Subscribe::Queue(node.address.clone()),
        })
    }

    /// Where a sender's messages to `address` go. The router refuses patterns, subscriptions
    /// and deadletter addresses to senders, so what resolves is a queue, a topic name, or a
    /// multicast or anycast address.
    fn send_route(&self, address: &str) -> Result<Route, Error> {
        Ok(match self.target(address, Direction::Send)? {
            Subscribe::Queue(queue) | Subscribe::Temporary(queue) => Route::Queue(queue.into()),
            Subscribe::Topic { topic, filter } => {
                let name = match filter {
                    Filter::Name(name) => name,
                    Filter::All | Filter::Pattern(_) => topic.clone(),
                };
                Route::Topic {
                    topic: topic.into(),
                    name: name.into(),
                }
            }
            Subscribe::Multicast(address) => Route::Multicast(address.into()),
            Subscribe::Anycast(address) => Route::Anycast(address.into()),
        })
    }

    fn on_attach(&mut self, link: LinkId, attach: &Attach, now: Instant) {
        let dynamic = attach.source.as_ref().is_some_and(|s| s.dynamic)
            || matches!(&attach.target, Some(AttachTarget::Target(t)) if t.dynamic);
        match attach.role {
            // The peer sends: we receive into the target's address.
            Role::Sender => {
                let address = match &attach.target {
                    Some(AttachTarget::Target(t)) => t.address.as_ref().map(|a| a.as_str()),
                    _ => None,
                };
                let binding = match (address, dynamic) {
                    (None, false) => Ok(Binding::Relay),
                    (None, true) => Err(Error::new(
                        Symbol::from_static("amqp:not-implemented"),
                        "dynamic targets are not served: attach a dynamic receiver for a \
                         temporary queue",
                    )),
                    (Some(address), _) => self.send_route(address).map(|route| match route {
                        Route::Anycast(address) => Binding::AnycastSender(address),
                        route => Binding::Publisher(route),
                    }),
                };
                match binding {
                    Ok(binding) => {
                        self.engine.accept_link(link, reply_to(attach, false), now);
                        if let Binding::AnycastSender(address) = &binding {
                            self.push(Command::AttachAnycastSender {
                                conn: self.conn,
                                link,
                                address: address.to_string(),
                            });
                        } else {
                            self.engine.grant_credit(link, PUBLISH_CREDIT, false, now);
                        }
                        self.links.insert(link, binding);
                    }
                    Err(error) => self.engine.refuse_link(link, error, now),
                }
            }
            // The peer receives: we send from the source's address, once the core has
            // subscribed the link (it may refuse, e.g. a subscription's `maxConsumers`).
            Role::Receiver => {
                let address = attach
                    .source
                    .as_ref()
                    .and_then(|s| s.address.as_ref())
                    .map(|a| a.as_str().to_string());
                let (source, reply) = match address {
                    None if dynamic => self.dynamic_source(attach),
                    None => {
                        let error = Error::new(
                            Symbol::from_static("amqp:invalid-field"),
                            "a receiver needs a source address, or a dynamic source",
                        );
                        self.engine.refuse_link(link, error, now);
                        return;
                    }
                    Some(address) => match self.target(&address, Direction::Receive) {
                        Ok(source) => {
                            let settled = matches!(source, Subscribe::Multicast(_));
                            (source, reply_to(attach, settled))
                        }
                        Err(error) => {
                            self.engine.refuse_link(link, error, now);
                            return;
                        }
                    },
                };
                self.pending.insert(link, reply);
                self.links.insert(link, Binding::Receiver);
                self.push(Command::AttachReceiver {
                    conn: self.conn,
                    link,
                    source,
                });
            }
        }
    }

    /// A dynamic receiver (request/reply): a temporary queue named for this connection, whose
    /// address the attach reply carries, deleted when the link closes.
    fn dynamic_source(&mut self, attach: &Attach) -> (Subscribe, Attach) {
        self.next_temporary += 1;
        let address = format!("{TEMPORARY_PREFIX}{}.{}", self.conn, self.next_temporary);
        let mut reply = reply_to(attach, false);
        let mut source = attach.source.clone().unwrap_or_default();
        source.address = Some(address.as_str().into());
        reply.source = Some(source);
        (Subscribe::Temporary(address), reply)
    }

    /// Anonymous relay: where a message's `to` sends it, or why it cannot go.
    fn relay_route(&self, message: &ScannedMessage) -> Result<Route, Error> {
        match message.to() {
            Some(to) => self.send_route(to),
            None => Err(Error::new(
                Symbol::from_static("amqp:invalid-field"),
                "a message on an anonymous link needs a 'to'",
            )),
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
        let state = match state {
            Some(
                s @ (DeliveryState::Accepted(_)
                | DeliveryState::Released(_)
                | DeliveryState::Rejected(_)
                | DeliveryState::Modified(_)),
            ) => s,
            // Settled with no outcome: nothing says the message was processed, so it is offered
            // again rather than lost.
            _ if settled => DeliveryState::Released(Released {}),
            _ => return,
        };
        // A range wider than what is unsettled is walked through the map instead, so a peer's
        // `0..=u32::MAX` costs what we sent, not four billion steps.
        let width = u64::from(last.wrapping_sub(first)) + 1;
        let ids: Vec<(u16, u32)> = if width <= self.sent.len() as u64 {
            (0..width)
                .map(|i| (session.0, first.wrapping_add(i as u32)))
                .collect()
        } else {
            self.sent
                .keys()
                .filter(|(s, id)| *s == session.0 && u64::from(id.wrapping_sub(first)) < width)
                .copied()
                .collect()
        };
        // One command per run of the range on one link (usually the whole range).
        let mut run: Option<(LinkId, Vec<MessageId>)> = None;
        for key in ids {
            let Some((link, message)) = self.sent.remove(&key) else {
                continue;
            };
            match &mut run {
                Some((l, messages)) if *l == link => messages.push(message),
                _ => {
                    if let Some((l, messages)) = run.replace((link, vec![message])) {
                        self.push_settle(l, messages, state.clone());
                    }
                }
            }
        }
        if let Some((link, messages)) = run {
            self.push_settle(link, messages, state);
        }
    }

    fn push_settle(&mut self, link: LinkId, messages: Vec<MessageId>, state: DeliveryState) {
        self.push(Command::Settle {
            conn: self.conn,
            link,
            messages,
            state,
        });
    }

    /// Applies the core's answers until the output holds [`WRITE_CHUNK`], then settles what
    /// they accepted; the rest wait for the next turn of the loop, after a write.
    fn apply_answers(&mut self, now: Instant) {
        while let Some(answer) = self.answers.pop_front() {
            self.on_core_answer(answer, now);
            if self.engine.output_len() >= WRITE_CHUNK {
                break;
            }
        }
        self.flush_accepts(now);
    }

    /// Settles the deliveries `first..=last` the client sent us on `session`, with `state`.
    fn settle_received(
        &mut self,
        session: SessionId,
        (first, last): (u32, u32),
        state: DeliveryState,
        now: Instant,
    ) {
        self.engine
            .disposition(session, Role::Receiver, first, last, true, Some(state), now);
    }

    /// Settles the range of accepted publishes gathered so far with one disposition.
    fn flush_accepts(&mut self, now: Instant) {
        if let Some((session, first, last)) = self.accepting.take() {
            let accepted = DeliveryState::Accepted(Accepted {});
            self.settle_received(session, (first, last), accepted, now);
        }
    }

    fn on_core_answer(&mut self, answer: ToConn, now: Instant) {
        match answer {
            ToConn::Deliver {
                link,
                message,
                payload,
                settled: true,
            } => {
                self.next_tag += 1;
                // A receiver that left or ran out of credit misses it: multicast stores nothing.
                let tag = DeliveryTag::from_u64(self.next_tag);
                let _ = self.engine.send(link, tag, &payload, true, now);
                let _ = message;
            }
            ToConn::Deliver {
                link,
                message,
                payload,
                settled: false,
            } => {
                let tag = DeliveryTag::from_u64(message.0);
                match self.engine.send(link, tag, &payload, false, now) {
                    Ok(delivery_id) => {
                        self.sent
                            .insert((link.session.0, delivery_id), (link, message));
                    }
                    // The client cannot take this message on this link: offered elsewhere.
                    Err(SendError::TooLarge { .. }) => self.push_settle(
                        link,
                        vec![message],
                        DeliveryState::Modified(Modified {
                            undeliverable_here: true,
                            ..Default::default()
                        }),
                    ),
                    // No room until the client settles or widens its window: the message goes
                    // back, and the core gets no credit for the link until there is room.
                    Err(SendError::TooManyUnsettled | SendError::WindowFull) => {
                        self.push(Command::Unsent {
                            conn: self.conn,
                            link,
                            message,
                        });
                        if let std::collections::hash_map::Entry::Vacant(e) =
                            self.stalled.entry(link)
                        {
                            e.insert(false);
                            self.push(Command::Credit {
                                conn: self.conn,
                                link,
                                credit: 0,
                                drain: false,
                            });
                        }
                    }
                    // The link went away or lost its credit meanwhile: the message goes back.
                    Err(_) => self.push(Command::Unsent {
                        conn: self.conn,
                        link,
                        message,
                    }),
                }
            }
            ToConn::Published {
                link,
                settle,
                count,
                state,
            } => {
                if let Some(n) = self.unanswered.get_mut(&link) {
                    *n = n.saturating_sub(count);
                }
                if let Some((session, id)) = settle {
                    let end = id.wrapping_add(count.saturating_sub(1));
                    match (state, &mut self.accepting) {
                        // The common case: consecutive accepts, settled with one range.
                        (DeliveryState::Accepted(_), Some((s, _, last)))
                            if *s == session && last.wrapping_add(1) == id =>
                        {
                            *last = end;
                        }
                        (DeliveryState::Accepted(_), _) => {
                            self.flush_accepts(now);
                            self.accepting = Some((session, id, end));
                        }
                        (state, _) => {
                            self.flush_accepts(now);
                            self.settle_received(session, (id, id), state, now);
                        }
                    }
                }
                self.top_up(link, now);
            }
            ToConn::Attached { link, result } => {
                let Some(reply) = self.pending.remove(&link) else {
                    return;
                };
                match result {
                    Ok(()) => self.engine.accept_link(link, reply, now),
                    Err(error) => {
                        self.links.remove(&link);
                        self.engine.refuse_link(link, error, now);
                    }
                }
            }
            ToConn::Drained { link } => self.engine.drained(link, now),
            ToConn::Credit { link, more } => {
                if matches!(self.links.get(&link), Some(Binding::AnycastSender(_))) {
                    let credit = self.engine.credit(link).saturating_add(more);
                    self.engine.grant_credit(link, credit, false, now);
                }
            }
        }
    }
}

/// The reply to a link the peer attached, mirroring its terminii; `settled` when what we send
/// on it goes pre-settled (multicast).
fn reply_to(attach: &Attach, settled: bool) -> Attach {
    Attach {
        name: attach.name.clone(),
        role: match attach.role {
            Role::Sender => Role::Receiver,
            Role::Receiver => Role::Sender,
        },
        snd_settle_mode: if settled {
            SenderSettleMode::Settled
        } else {
            SenderSettleMode::Mixed
        },
        source: attach.source.clone(),
        target: attach.target.clone(),
        ..Default::default()
    }
}
