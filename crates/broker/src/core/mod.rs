//! The node owner: one task holds every queue, topic, multicast and anycast address of the
//! address space. Connection tasks send it commands in batches over a bounded channel and it
//! answers each connection on that connection's own channel, so no node is ever shared or
//! locked.
//!
//! The channels back to connections are unbounded, but what goes down them is bounded by the
//! link credit the connection granted (deliveries) and by the transfers it read (publish
//! answers), so a connection that stops reading cannot make the core hold more than that.
//!
//! Each wake-up applies a batch of commands, then works only on what they touched: the queues
//! marked dirty, the topics holding publishes back, the anycast addresses whose credit moved.

mod anycast;
mod topic;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sluice_codec::messaging::ScannedMessage;
use sluice_codec::transport::{
    Accepted, DeliveryState, Error, Modified, Rejected, Released, conditions,
};
use sluice_codec::types::Symbol;
use sluice_engine::{LinkId, SessionId};
use sluice_store::{ConsumerId, MessageId, Outcome, Queue, QueuePolicy};
use tokio::sync::mpsc;

use anycast::Anycast;
pub(crate) use topic::Filter;
use topic::Topic;

/// A connection, numbered by the listener.
pub(crate) type ConnId = u64;

/// A link of a connection: the core's key for receivers and anycast senders.
pub(crate) type LinkKey = (ConnId, LinkId);

/// Where a published message goes, as the connection resolved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// A queue (or a temporary queue).
    Queue(String),
    /// A topic, under `name` (the topic's address or a name below it).
    Topic { topic: String, name: String },
    /// Every current receiver of a multicast address.
    Multicast(String),
    /// One receiver of an anycast address.
    Anycast(String),
}

/// What a receiving link consumes, as the connection resolved it.
#[derive(Debug, Clone)]
pub(crate) enum Subscribe {
    /// A queue, deadletter, named subscription or existing temporary queue.
    Queue(String),
    /// A new temporary queue for a dynamic receiver, deleted when the link goes.
    Temporary(String),
    /// A private subscription to a topic from now on.
    Topic { topic: String, filter: Filter },
    /// A multicast address.
    Multicast(String),
    /// An anycast address.
    Anycast(String),
}

/// Who published a message and where its outcome goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin {
    conn: ConnId,
    link: LinkId,
    /// The delivery to settle, or `None` when the sender settled it.
    settle: Option<(SessionId, u32)>,
}

/// What a connection asks of the core.
// Publish, the big variant, is nearly every command: boxing it would cost an allocation per
// message to save bytes on the rare others.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Command {
    /// A connection starts; answers go to `tx`.
    Register {
        conn: ConnId,
        tx: mpsc::UnboundedSender<ToConn>,
    },
    /// A connection ended: as if every link of it detached.
    Unregister { conn: ConnId },
    /// A message from `link`, scanned by the connection (so scanning runs on every core, not
    /// only the core task's). Every publish is answered with [`ToConn::Published`], which the
    /// connection's publisher credit waits for.
    Publish {
        conn: ConnId,
        link: LinkId,
        route: Route,
        message: ScannedMessage,
        settle: Option<(SessionId, u32)>,
    },
    /// A receiving link asks to attach; answered with [`ToConn::Attached`].
    AttachReceiver {
        conn: ConnId,
        link: LinkId,
        source: Subscribe,
    },
    /// A sending link attached to an anycast address: it gets credit as receivers do.
    AttachAnycastSender {
        conn: ConnId,
        link: LinkId,
        address: String,
    },
    /// A receiver's link credit, and whether it asks for a drain.
    Credit {
        conn: ConnId,
        link: LinkId,
        credit: u32,
        drain: bool,
    },
    /// A receiver's outcome for a delivery.
    Settle {
        conn: ConnId,
        link: LinkId,
        message: MessageId,
        state: DeliveryState,
    },
    /// A delivery the connection could not send (the link lost its credit or went): it goes
    /// back without counting as an attempt.
    Unsent {
        conn: ConnId,
        link: LinkId,
        message: MessageId,
    },
    /// A receiver or anycast sender detached.
    Detach { conn: ConnId, link: LinkId },
}

/// What the core tells a connection.
#[derive(Debug)]
pub(crate) enum ToConn {
    /// Send `payload` on `link` as one delivery of `message`; pre-settled when `settled`.
    Deliver {
        link: LinkId,
        message: MessageId,
        payload: Bytes,
        settled: bool,
    },
    /// The answer to a publish from `link`, with the outcome for the delivery when the sender
    /// did not settle it.
    Published {
        link: LinkId,
        settle: Option<(SessionId, u32)>,
        state: DeliveryState,
    },
    /// The answer to a receiver's attach: `Err` carries the condition it is refused with.
    Attached {
        link: LinkId,
        result: Result<(), Error>,
    },
    /// A drain found nothing more: give back the credit.
    Drained { link: LinkId },
    /// An anycast sender may have `more` credit.
    Credit { link: LinkId, more: u32 },
}

/// What a receiving link consumes from.
enum Receiver {
    /// A queue consumer. `owned` queues (temporary queues, private topic subscriptions) are
    /// deleted with the link; `topic` is the topic a private subscription feeds from.
    Queue {
        queue: String,
        id: ConsumerId,
        owned: bool,
        topic: Option<String>,
    },
    /// A multicast receiver: nothing is stored for it, it only has credit.
    Multicast { address: String, credit: u32 },
    /// An anycast receiver, with the deliveries it has not settled and whom they came from.
    Anycast {
        address: String,
        credit: u32,
        drain: bool,
        in_flight: HashMap<MessageId, (Origin, Bytes)>,
    },
}

/// Most messages a private topic subscription buffers for a slow receiver; past it the topic
/// holds its publishers back through their credit.
pub(crate) const SUBSCRIPTION_BUFFER_MESSAGES: usize = 10_000;
/// Most bytes a private topic subscription buffers.
pub(crate) const SUBSCRIPTION_BUFFER_BYTES: usize = 64 * 1024 * 1024;

/// Commands handled per wake-up before deliveries are computed: enough to amortise the work
/// on touched nodes, small enough to keep latency low.
const BATCH_MAX: usize = 256;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A stored node as the core builds it: its queue policy, its dead-letter and expiry targets,
/// and for a named subscription its topic and consumer limit.
#[derive(Debug, Clone)]
pub(crate) struct StoredNode {
    pub(crate) address: String,
    pub(crate) policy: QueuePolicy,
    pub(crate) dead_letter: Option<String>,
    pub(crate) expiry: Option<String>,
    pub(crate) subscription: Option<(String, u32)>,
}

/// The addresses and their receivers.
pub(crate) struct Core {
    queues: HashMap<String, Queue>,
    /// Dead-letter and expiry targets by queue address.
    targets: HashMap<String, (Option<String>, Option<String>)>,
    /// Named subscriptions' consumer limits.
    max_consumers: HashMap<String, u32>,
    topics: HashMap<String, Topic>,
    /// Each topic's TTL clamp, for its private subscriptions.
    topic_policies: HashMap<String, QueuePolicy>,
    multicast: HashMap<String, Vec<LinkKey>>,
    anycast: HashMap<String, Anycast>,
    connections: HashMap<ConnId, mpsc::UnboundedSender<ToConn>>,
    /// Receivers and anycast senders of each connection, so one leaving costs its own links.
    links_of: HashMap<ConnId, HashSet<LinkId>>,
    receivers: HashMap<LinkKey, Receiver>,
    by_consumer: HashMap<ConsumerId, LinkKey>,
    next_consumer: u64,
    /// Numbers anycast deliveries (queues number their own messages).
    next_anycast: u64,
    /// Numbers private subscriptions.
    next_subscription: u64,
    /// Work for the end of this wake-up.
    dirty_queues: HashSet<String>,
    dirty_topics: HashSet<String>,
    /// Topics holding messages back for a full subscription: retried every wake-up.
    blocked_topics: HashSet<String>,
    dirty_anycast: HashSet<String>,
    /// Queue consumers that asked for a drain.
    draining: HashSet<LinkKey>,
    /// When each queue's first available message expires.
    expiring: HashMap<String, i64>,
}

impl Core {
    /// The stored nodes, topics, multicast and anycast addresses of a space.
    pub(crate) fn new(
        stored: Vec<StoredNode>,
        topics: Vec<(String, QueuePolicy)>,
        multicast: Vec<String>,
        anycast: Vec<String>,
    ) -> Self {
        let mut core = Core {
            queues: HashMap::new(),
            targets: HashMap::new(),
            max_consumers: HashMap::new(),
            topics: topics
                .iter()
                .map(|(a, _)| (a.clone(), Topic::default()))
                .collect(),
            topic_policies: topics.into_iter().collect(),
            multicast: multicast.into_iter().map(|a| (a, Vec::new())).collect(),
            anycast: anycast
                .into_iter()
                .map(|a| (a, Anycast::default()))
                .collect(),
            connections: HashMap::new(),
            links_of: HashMap::new(),
            receivers: HashMap::new(),
            by_consumer: HashMap::new(),
            next_consumer: 0,
            next_anycast: 0,
            next_subscription: 0,
            dirty_queues: HashSet::new(),
            dirty_topics: HashSet::new(),
            blocked_topics: HashSet::new(),
            dirty_anycast: HashSet::new(),
            draining: HashSet::new(),
            expiring: HashMap::new(),
        };
        for node in stored {
            core.queues
                .insert(node.address.clone(), Queue::new(node.policy));
            core.targets
                .insert(node.address.clone(), (node.dead_letter, node.expiry));
            if let Some((topic, max)) = node.subscription {
                core.max_consumers.insert(node.address.clone(), max);
                if let Some(t) = core.topics.get_mut(&topic) {
                    t.subscribe(Filter::All, node.address);
                }
            }
        }
        core
    }

    /// Runs until every connection sender is gone.
    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut batch = Vec::with_capacity(BATCH_MAX);
        loop {
            let next_expiry = self.expiring.values().min().copied();
            tokio::select! {
                n = rx.recv_many(&mut batch, BATCH_MAX) => {
                    if n == 0 {
                        return;
                    }
                    let now = now_ms();
                    for command in batch.drain(..) {
                        self.apply(command, now);
                    }
                    self.pump(now);
                }
                () = sleep_until_ms(next_expiry) => {
                    let now = now_ms();
                    self.expire(now);
                    self.pump(now);
                }
            }
        }
    }

    fn send(&self, conn: ConnId, message: ToConn) {
        send_to(&self.connections, conn, message);
    }

    fn answer(&self, origin: Origin, state: DeliveryState) {
        answer_to(&self.connections, origin, state);
    }

    fn apply(&mut self, command: Command, now: i64) {
        match command {
            Command::Register { conn, tx } => {
                self.connections.insert(conn, tx);
            }
            Command::Unregister { conn } => {
                for link in self.links_of.remove(&conn).unwrap_or_default() {
                    self.detach((conn, link));
                }
                self.connections.remove(&conn);
            }
            Command::Publish {
                conn,
                link,
                route,
                message,
                settle,
            } => {
                let origin = Origin { conn, link, settle };
                self.publish(origin, route, message, now);
            }
            Command::AttachReceiver { conn, link, source } => {
                let result = self.attach_receiver((conn, link), source);
                self.send(conn, ToConn::Attached { link, result });
            }
            Command::AttachAnycastSender {
                conn,
                link,
                address,
            } => {
                if let Some(a) = self.anycast.get_mut(&address) {
                    a.add_sender((conn, link));
                    self.links_of.entry(conn).or_default().insert(link);
                    self.dirty_anycast.insert(address);
                }
            }
            Command::Credit {
                conn,
                link,
                credit,
                drain,
            } => self.credit((conn, link), credit, drain),
            Command::Settle {
                conn,
                link,
                message,
                state,
            } => self.settle((conn, link), message, state),
            Command::Unsent {
                conn,
                link,
                message,
            } => self.unsent((conn, link), message),
            Command::Detach { conn, link } => {
                if let Some(links) = self.links_of.get_mut(&conn) {
                    links.remove(&link);
                }
                self.detach((conn, link));
            }
        }
    }

    fn publish(&mut self, origin: Origin, route: Route, message: ScannedMessage, now: i64) {
        match route {
            Route::Queue(queue) => {
                let state = self.enqueue(&queue, message, now);
                self.answer(origin, state);
            }
            Route::Topic { topic, name } => match self.topics.get_mut(&topic) {
                Some(t) => {
                    t.publish(origin, &name, message);
                    self.dirty_topics.insert(topic);
                }
                None => self.answer(origin, not_found(&topic)),
            },
            Route::Multicast(address) => {
                self.fan_out(&address, message.raw());
                self.answer(origin, DeliveryState::Accepted(Accepted {}));
            }
            Route::Anycast(address) => match self.anycast.get_mut(&address) {
                Some(a) => {
                    a.publish(origin, message.raw().clone());
                    self.dirty_anycast.insert(address);
                }
                None => self.answer(origin, not_found(&address)),
            },
        }
    }

    fn enqueue(&mut self, queue: &str, message: ScannedMessage, now: i64) -> DeliveryState {
        let Some(q) = self.queues.get_mut(queue) else {
            return not_found(queue);
        };
        match q.enqueue(message, now) {
            Ok(_) => {
                self.dirty_queues.insert(queue.to_string());
                DeliveryState::Accepted(Accepted {})
            }
            Err(e) => rejected(e.condition(), e.to_string()),
        }
    }

    fn attach_receiver(&mut self, key: LinkKey, source: Subscribe) -> Result<(), Error> {
        let receiver = match source {
            Subscribe::Queue(queue) => {
                let Some(q) = self.queues.get(&queue) else {
                    return Err(Error::new(
                        conditions::NOT_FOUND,
                        format!("no address '{queue}' in this address space"),
                    ));
                };
                if let Some(&max) = self.max_consumers.get(&queue)
                    && q.consumer_count() >= usize::try_from(max).unwrap_or(usize::MAX)
                {
                    return Err(Error::new(
                        conditions::RESOURCE_LIMIT_EXCEEDED,
                        format!("subscription '{queue}' already has its {max} consumer(s)"),
                    ));
                }
                self.consume(key, queue, false, None)
            }
            Subscribe::Temporary(queue) => {
                self.queues
                    .insert(queue.clone(), Queue::new(QueuePolicy::default()));
                self.consume(key, queue, true, None)
            }
            Subscribe::Topic { topic, filter } => {
                let Some(t) = self.topics.get_mut(&topic) else {
                    return Err(Error::new(
                        conditions::NOT_FOUND,
                        format!("no topic '{topic}'"),
                    ));
                };
                self.next_subscription += 1;
                let queue = format!("_sluice.sub.{}.{}", key.0, self.next_subscription);
                t.subscribe(filter, queue.clone());
                // Temporary subscriptions drop what expires (EnMasse did too) and what is
                // rejected; their size is bounded so a slow receiver holds back, not fills up.
                let policy = QueuePolicy {
                    messages_max: SUBSCRIPTION_BUFFER_MESSAGES,
                    bytes_max: SUBSCRIPTION_BUFFER_BYTES,
                    dead_letter_target: false,
                    expiry_target: false,
                    ..self.topic_policies.get(&topic).copied().unwrap_or_default()
                };
                self.queues.insert(queue.clone(), Queue::new(policy));
                self.consume(key, queue, true, Some(topic))
            }
            Subscribe::Multicast(address) => {
                let Some(receivers) = self.multicast.get_mut(&address) else {
                    return Err(Error::new(
                        conditions::NOT_FOUND,
                        format!("no address '{address}'"),
                    ));
                };
                receivers.push(key);
                Receiver::Multicast { address, credit: 0 }
            }
            Subscribe::Anycast(address) => {
                let Some(a) = self.anycast.get_mut(&address) else {
                    return Err(Error::new(
                        conditions::NOT_FOUND,
                        format!("no address '{address}'"),
                    ));
                };
                a.add_receiver(key);
                Receiver::Anycast {
                    address,
                    credit: 0,
                    drain: false,
                    in_flight: HashMap::new(),
                }
            }
        };
        self.links_of.entry(key.0).or_default().insert(key.1);
        self.receivers.insert(key, receiver);
        Ok(())
    }

    fn consume(
        &mut self,
        key: LinkKey,
        queue: String,
        owned: bool,
        topic: Option<String>,
    ) -> Receiver {
        let id = ConsumerId(self.next_consumer);
        self.next_consumer += 1;
        if let Some(q) = self.queues.get_mut(&queue) {
            // A fresh id is never a duplicate.
            let _ = q.add_consumer(id);
        }
        self.by_consumer.insert(id, key);
        Receiver::Queue {
            queue,
            id,
            owned,
            topic,
        }
    }

    fn credit(&mut self, key: LinkKey, credit: u32, drain: bool) {
        match self.receivers.get_mut(&key) {
            Some(Receiver::Queue { queue, id, .. }) => {
                if let Some(q) = self.queues.get_mut(queue) {
                    let _ = q.set_credit(*id, credit);
                    self.dirty_queues.insert(queue.clone());
                }
                if drain {
                    self.draining.insert(key);
                } else {
                    self.draining.remove(&key);
                }
            }
            Some(Receiver::Multicast { credit: c, .. }) => {
                // Nothing is stored for a multicast receiver: a drain ends at once.
                *c = if drain { 0 } else { credit };
                if drain {
                    self.send(key.0, ToConn::Drained { link: key.1 });
                }
            }
            Some(Receiver::Anycast {
                address,
                credit: c,
                drain: d,
                ..
            }) => {
                *c = credit;
                *d = drain;
                self.dirty_anycast.insert(address.clone());
            }
            None => {}
        }
    }

    fn settle(&mut self, key: LinkKey, message: MessageId, state: DeliveryState) {
        match self.receivers.get_mut(&key) {
            Some(Receiver::Queue { queue, id, .. }) => {
                let Some(outcome) = outcome_of(&state) else {
                    return;
                };
                if let Some(q) = self.queues.get_mut(queue) {
                    let _ = q.settle(*id, message, outcome);
                    self.dirty_queues.insert(queue.clone());
                }
            }
            Some(Receiver::Anycast { in_flight, .. }) => {
                // The receiver's outcome, as it gave it, is the sender's.
                if let Some((origin, _)) = in_flight.remove(&message) {
                    self.answer(origin, state);
                }
            }
            _ => {}
        }
    }

    fn unsent(&mut self, key: LinkKey, message: MessageId) {
        match self.receivers.get_mut(&key) {
            Some(Receiver::Queue { .. }) => {
                self.settle(key, message, DeliveryState::Released(Released {}));
            }
            Some(Receiver::Anycast {
                address,
                credit,
                in_flight,
                ..
            }) => {
                *credit = 0;
                if let (Some((origin, payload)), Some(a)) = (
                    in_flight.remove(&message),
                    self.anycast.get_mut(address.as_str()),
                ) {
                    a.put_back(origin, payload);
                    self.dirty_anycast.insert(address.clone());
                }
            }
            _ => {}
        }
    }

    fn detach(&mut self, key: LinkKey) {
        self.draining.remove(&key);
        match self.receivers.remove(&key) {
            Some(Receiver::Queue {
                queue,
                id,
                owned,
                topic,
            }) => {
                self.by_consumer.remove(&id);
                if owned {
                    self.queues.remove(&queue);
                    self.expiring.remove(&queue);
                    if let Some(t) = topic.and_then(|t| self.topics.get_mut(&t)) {
                        t.unsubscribe(&queue);
                    }
                } else if let Some(q) = self.queues.get_mut(&queue) {
                    let _ = q.remove_consumer(id);
                    self.dirty_queues.insert(queue);
                }
            }
            Some(Receiver::Multicast { address, .. }) => {
                if let Some(receivers) = self.multicast.get_mut(&address) {
                    receivers.retain(|k| *k != key);
                }
            }
            Some(Receiver::Anycast {
                address, in_flight, ..
            }) => {
                // It may have processed them: the senders learn the attempt failed.
                for (origin, _) in in_flight.into_values() {
                    self.answer(origin, delivery_failed());
                }
                if let Some(a) = self.anycast.get_mut(&address) {
                    a.remove_receiver(key);
                }
                self.dirty_anycast.insert(address);
            }
            None => {
                for (address, a) in &mut self.anycast {
                    if a.remove_sender(key) {
                        self.dirty_anycast.insert(address.clone());
                    }
                }
            }
        }
    }

    /// Multicast: a copy (a reference count, not bytes) to every receiver with credit; one
    /// without credit misses the message, as nothing is stored.
    fn fan_out(&mut self, address: &str, message: &Bytes) {
        let Some(receivers) = self.multicast.get(address) else {
            return;
        };
        for key in receivers {
            if let Some(Receiver::Multicast { credit, .. }) = self.receivers.get_mut(key)
                && *credit > 0
            {
                *credit -= 1;
                if let Some(tx) = self.connections.get(&key.0) {
                    let _ = tx.send(ToConn::Deliver {
                        link: key.1,
                        message: MessageId(0),
                        payload: message.clone(),
                        settled: true,
                    });
                }
            }
        }
    }

    /// Expires what is due in every queue whose first expiry has come.
    fn expire(&mut self, now: i64) {
        let due: Vec<String> = self
            .expiring
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(q, _)| q.clone())
            .collect();
        for queue in due {
            if let Some(q) = self.queues.get_mut(&queue) {
                q.expire_messages(now);
            }
            self.expiring.remove(&queue);
            self.dirty_queues.insert(queue);
        }
    }

    /// The end of a wake-up: topics place what they held back, anycast addresses route and
    /// grant credit, queues move dead-lettered and expired messages to their targets and hand
    /// out what they can, and finished drains are answered.
    fn pump(&mut self, now: i64) {
        let mut topics = std::mem::take(&mut self.dirty_topics);
        topics.extend(self.blocked_topics.iter().cloned());
        for topic in topics {
            self.place_topic(&topic, now);
        }
        for address in std::mem::take(&mut self.dirty_anycast) {
            self.route_anycast(&address);
        }
        // Forwarding marks its targets dirty and dispatch marks a queue dirty again when it
        // expired messages on the way: round after round until nothing moves.
        loop {
            let dirty = std::mem::take(&mut self.dirty_queues);
            if dirty.is_empty() {
                break;
            }
            for queue in &dirty {
                self.forward(queue, now);
            }
            for queue in &dirty {
                self.dispatch(queue, now);
            }
        }
        self.finish_drains();
    }

    fn forward(&mut self, queue: &str, now: i64) {
        let Some(q) = self.queues.get_mut(queue) else {
            return;
        };
        let mut forwards = Vec::new();
        while let Some(f) = q.poll_forward() {
            forwards.push(f);
        }
        if forwards.is_empty() {
            return;
        }
        let (dead_letter, expiry) = self.targets.get(queue).cloned().unwrap_or_default();
        for f in forwards {
            let target = if f.reason.is_expiry() {
                &expiry
            } else {
                &dead_letter
            };
            if let (Some(target), Ok(scanned)) = (target, ScannedMessage::scan(f.payload))
                && let Some(t) = self.queues.get_mut(target)
                && t.enqueue_forwarded(scanned, now).is_ok()
            {
                self.dirty_queues.insert(target.clone());
            }
        }
    }

    fn dispatch(&mut self, queue: &str, now: i64) {
        let Some(q) = self.queues.get_mut(queue) else {
            return;
        };
        let deliveries = q.next_deliveries(now);
        match q.next_expiry_ms() {
            Some(at) => self.expiring.insert(queue.to_string(), at),
            None => self.expiring.remove(queue),
        };
        if q.has_forwards() {
            self.dirty_queues.insert(queue.to_string());
        }
        for d in deliveries {
            if let Some((conn, link)) = self.by_consumer.get(&d.consumer) {
                self.send(
                    *conn,
                    ToConn::Deliver {
                        link: *link,
                        message: d.message,
                        payload: d.payload,
                        settled: false,
                    },
                );
            }
        }
    }

    /// A queue drain ends when the queue has nothing more for the consumer's credit.
    fn finish_drains(&mut self) {
        let mut done = Vec::new();
        for key in &self.draining {
            if let Some(Receiver::Queue { queue, id, .. }) = self.receivers.get(key)
                && let Some(q) = self.queues.get_mut(queue)
                && q.available() == 0
            {
                if q.credit(*id).unwrap_or(0) > 0 {
                    let _ = q.set_credit(*id, 0);
                }
                done.push(*key);
            }
        }
        for key in done {
            self.draining.remove(&key);
            self.send(key.0, ToConn::Drained { link: key.1 });
        }
    }
}

/// Sends to a connection that may have gone (then its answers are moot).
fn send_to(
    connections: &HashMap<ConnId, mpsc::UnboundedSender<ToConn>>,
    conn: ConnId,
    message: ToConn,
) {
    if let Some(tx) = connections.get(&conn) {
        let _ = tx.send(message);
    }
}

/// Answers a publish.
fn answer_to(
    connections: &HashMap<ConnId, mpsc::UnboundedSender<ToConn>>,
    origin: Origin,
    state: DeliveryState,
) {
    send_to(
        connections,
        origin.conn,
        ToConn::Published {
            link: origin.link,
            settle: origin.settle,
            state,
        },
    );
}

async fn sleep_until_ms(at_ms: Option<i64>) {
    match at_ms {
        Some(at) => {
            let wait = u64::try_from(at.saturating_sub(now_ms())).unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
        None => std::future::pending().await,
    }
}

/// The store's outcome for a receiver's terminal state; `None` for a non-terminal one.
fn outcome_of(state: &DeliveryState) -> Option<Outcome> {
    Some(match state {
        DeliveryState::Accepted(_) => Outcome::Accepted,
        DeliveryState::Released(_) => Outcome::Released,
        DeliveryState::Rejected(_) => Outcome::Rejected,
        DeliveryState::Modified(m) => Outcome::Modified {
            delivery_failed: m.delivery_failed,
            undeliverable_here: m.undeliverable_here,
        },
        _ => return None,
    })
}

/// A `rejected` outcome carrying `error`.
pub(crate) fn rejected_with(error: Error) -> DeliveryState {
    DeliveryState::Rejected(Rejected {
        error: Some(Box::new(error)),
    })
}

fn rejected(condition: Symbol, description: String) -> DeliveryState {
    rejected_with(Error::new(condition, description))
}

fn not_found(address: &str) -> DeliveryState {
    rejected(
        conditions::NOT_FOUND,
        format!("no address '{address}' in this address space"),
    )
}

fn delivery_failed() -> DeliveryState {
    DeliveryState::Modified(Modified {
        delivery_failed: true,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests;
