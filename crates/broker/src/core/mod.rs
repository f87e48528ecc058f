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
mod outbox;
mod queues;
mod receivers;
mod topic;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use std::collections::VecDeque;

use rustc_hash::{FxHashMap, FxHashSet};
use sluice_codec::messaging::ScannedMessage;
use sluice_codec::transport::{Accepted, DeliveryState, Error, Modified, Rejected, conditions};
use sluice_codec::types::Symbol;
use sluice_engine::{LinkId, SessionId};
use sluice_store::{ConsumerId, MessageId, Outcome, Queue, QueuePolicy};
use tokio::sync::mpsc;

use anycast::Anycast;
use outbox::Outbox;
pub(crate) use outbox::ToConnTx;
pub(crate) use topic::Filter;
use topic::Topic;

/// A connection, numbered by the listener.
pub(crate) type ConnId = u64;

/// A link of a connection: the core's key for receivers and anycast senders.
pub(crate) type LinkKey = (ConnId, LinkId);

/// Where a published message goes, as the connection resolved it. A publishing link's route
/// goes with each of its messages, so its names are shared, not copied per message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// A queue (or a temporary queue).
    Queue(Arc<str>),
    /// A topic, under `name` (the topic's address or a name below it).
    Topic { topic: Arc<str>, name: Arc<str> },
    /// Every current receiver of a multicast address.
    Multicast(Arc<str>),
    /// One receiver of an anycast address.
    Anycast(Arc<str>),
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
    Register { conn: ConnId, tx: ToConnTx },
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
    /// A receiver's outcome for deliveries: one command for a disposition's range on a link,
    /// not one per message.
    Settle {
        conn: ConnId,
        link: LinkId,
        messages: Vec<MessageId>,
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
    /// The answer to `count` consecutive publishes from `link`, with the outcome for their
    /// deliveries (ids `settle.1` on, one after another) when the sender did not settle them.
    /// Only accepted publishes are answered more than one at a time.
    Published {
        link: LinkId,
        settle: Option<(SessionId, u32)>,
        count: u32,
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
        in_flight: FxHashMap<MessageId, (Origin, Bytes)>,
    },
}

/// Most messages a private topic subscription buffers for a slow receiver; past it the topic
/// holds its publishers back through their credit.
pub(crate) const SUBSCRIPTION_BUFFER_MESSAGES: usize = 10_000;
/// Most bytes a private topic subscription buffers.
pub(crate) const SUBSCRIPTION_BUFFER_BYTES: usize = 64 * 1024 * 1024;

/// Batches of commands (one per connection wake-up) handled per core wake-up before
/// deliveries are computed: enough to amortise the work on touched nodes, small enough to
/// keep latency low.
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
    queues: FxHashMap<String, Queue>,
    /// Dead-letter and expiry targets by queue address.
    targets: FxHashMap<String, (Option<String>, Option<String>)>,
    /// Named subscriptions' consumer limits.
    max_consumers: FxHashMap<String, u32>,
    /// Messages waiting for room in a full queue, by queue: publishes (with whom to answer)
    /// and messages dead-lettered or expired from another queue (`None`).
    held: FxHashMap<String, VecDeque<(Option<Origin>, ScannedMessage)>>,
    topics: FxHashMap<String, Topic>,
    /// Each topic's TTL clamp, for its private subscriptions.
    topic_policies: FxHashMap<String, QueuePolicy>,
    multicast: FxHashMap<String, Vec<LinkKey>>,
    anycast: FxHashMap<String, Anycast>,
    out: Outbox,
    /// Receivers and anycast senders of each connection, so one leaving costs its own links.
    links_of: FxHashMap<ConnId, FxHashSet<LinkId>>,
    receivers: FxHashMap<LinkKey, Receiver>,
    by_consumer: FxHashMap<ConsumerId, LinkKey>,
    next_consumer: u64,
    /// Numbers anycast deliveries (queues number their own messages).
    next_anycast: u64,
    /// Numbers private subscriptions.
    next_subscription: u64,
    /// Work for the end of this wake-up.
    dirty_queues: FxHashSet<String>,
    dirty_topics: FxHashSet<String>,
    /// Topics holding messages back for a full subscription: retried every wake-up.
    blocked_topics: FxHashSet<String>,
    dirty_anycast: FxHashSet<String>,
    /// Queue consumers that asked for a drain.
    draining: FxHashSet<LinkKey>,
    /// When each queue's first available message expires.
    expiring: FxHashMap<String, i64>,
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
            queues: FxHashMap::default(),
            targets: FxHashMap::default(),
            max_consumers: FxHashMap::default(),
            held: FxHashMap::default(),
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
            out: Outbox::default(),
            links_of: FxHashMap::default(),
            receivers: FxHashMap::default(),
            by_consumer: FxHashMap::default(),
            next_consumer: 0,
            next_anycast: 0,
            next_subscription: 0,
            dirty_queues: FxHashSet::default(),
            dirty_topics: FxHashSet::default(),
            blocked_topics: FxHashSet::default(),
            dirty_anycast: FxHashSet::default(),
            draining: FxHashSet::default(),
            expiring: FxHashMap::default(),
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
    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Vec<Command>>) {
        let mut batches = Vec::with_capacity(BATCH_MAX);
        loop {
            let next_expiry = self.expiring.values().min().copied();
            tokio::select! {
                n = rx.recv_many(&mut batches, BATCH_MAX) => {
                    if n == 0 {
                        return;
                    }
                    let now = now_ms();
                    for batch in batches.drain(..) {
                        for command in batch {
                            self.apply(command, now);
                        }
                    }
                    self.pump(now);
                }
                () = sleep_until_ms(next_expiry) => {
                    let now = now_ms();
                    self.expire(now);
                    self.pump(now);
                }
            }
            self.out.flush();
        }
    }

    fn send(&mut self, conn: ConnId, message: ToConn) {
        self.out.push(conn, message);
    }

    fn answer(&mut self, origin: Origin, state: DeliveryState) {
        self.out.answer(origin, state);
    }

    fn apply(&mut self, command: Command, now: i64) {
        match command {
            Command::Register { conn, tx } => {
                self.out.register(conn, tx);
            }
            Command::Unregister { conn } => {
                for link in self.links_of.remove(&conn).unwrap_or_default() {
                    self.detach((conn, link));
                }
                self.out.unregister(conn);
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
                messages,
                state,
            } => {
                for message in messages {
                    self.settle((conn, link), message, state.clone());
                }
            }
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
            Route::Queue(queue) => self.publish_to_queue(origin, &queue, message, now),
            Route::Topic { topic, name } => match self.topics.get_mut(&*topic) {
                Some(t) => {
                    t.publish(origin, &name, message);
                    mark(&mut self.dirty_topics, &topic);
                }
                None => self.answer(origin, not_found(&topic)),
            },
            Route::Multicast(address) => {
                self.fan_out(&address, message.raw());
                self.answer(origin, DeliveryState::Accepted(Accepted {}));
            }
            Route::Anycast(address) => match self.anycast.get_mut(&*address) {
                Some(a) => {
                    a.publish(origin, message.raw().clone());
                    mark(&mut self.dirty_anycast, &address);
                }
                None => self.answer(origin, not_found(&address)),
            },
        }
    }
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

/// Marks `queue` dirty, allocating its name only the first time in a wake-up.
fn mark(dirty: &mut FxHashSet<String>, queue: &str) {
    // Looked up before inserting: the name is allocated once per wake-up, not per message.
    if !dirty.contains(queue) {
        dirty.insert(queue.to_owned());
    }
}
