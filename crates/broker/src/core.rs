//! The node owner: one task holds every queue of the address space. Connection tasks send it
//! commands in batches over a bounded channel and it answers each connection on that
//! connection's own channel, so no queue is ever shared or locked.
//!
//! The channels back to connections are unbounded, but what goes down them is bounded by the
//! link credit the connection granted (deliveries) and by the transfers it read (publish
//! answers), so a connection that stops reading cannot make the core hold more than that.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sluice_codec::messaging::ScannedMessage;
use sluice_codec::transport::conditions;
use sluice_codec::types::Symbol;
use sluice_engine::{LinkId, SessionId};
use sluice_router::{AddressTable, NodeKind};
use sluice_store::{ConsumerId, MessageId, Outcome, Queue, QueuePolicy};
use tokio::sync::mpsc;

/// A connection, numbered by the listener.
pub(crate) type ConnId = u64;

/// What a connection asks of the core.
#[derive(Debug)]
pub(crate) enum Command {
    /// A connection starts; answers go to `tx`.
    Register {
        conn: ConnId,
        tx: mpsc::UnboundedSender<ToConn>,
    },
    /// A connection ended: its consumers' unsettled messages go back to their queues.
    Unregister { conn: ConnId },
    /// A message for `queue`; when `settle` is set, the connection waits for the outcome.
    Publish {
        conn: ConnId,
        queue: String,
        message: Bytes,
        settle: Option<(SessionId, u32)>,
    },
    /// A receiving link attached to `queue`.
    AddConsumer {
        conn: ConnId,
        link: LinkId,
        queue: String,
    },
    /// The consumer's link credit, and whether the receiver asks for a drain.
    Credit {
        conn: ConnId,
        link: LinkId,
        credit: u32,
        drain: bool,
    },
    /// The consumer's outcome for a delivery.
    Settle {
        conn: ConnId,
        link: LinkId,
        message: MessageId,
        outcome: Outcome,
    },
    /// A receiving link detached.
    RemoveConsumer { conn: ConnId, link: LinkId },
    /// A receiving link attached to a multicast address.
    AddMulticastReceiver {
        conn: ConnId,
        link: LinkId,
        address: String,
    },
    /// A message for every current receiver of a multicast address (the sender is settled).
    PublishMulticast { address: String, message: Bytes },
    /// A dynamic receiver's temporary queue, owned by `conn`.
    CreateTemporaryQueue { conn: ConnId, address: String },
    /// The temporary queue's link closed: the queue and what it holds go.
    DeleteTemporaryQueue { address: String },
}

/// What the core tells a connection.
#[derive(Debug)]
pub(crate) enum ToConn {
    /// Send `payload` on `link` as one delivery of `message`.
    Deliver {
        link: LinkId,
        message: MessageId,
        payload: Bytes,
    },
    /// The outcome of a publish: `Ok` accepted, `Err` rejected with a condition and why.
    Published {
        session: SessionId,
        delivery_id: u32,
        outcome: Result<(), (Symbol, String)>,
    },
    /// A drain found nothing more: give back the credit.
    Drained { link: LinkId },
    /// Send `payload` on `link` pre-settled (multicast).
    DeliverSettled { link: LinkId, payload: Bytes },
}

struct Consumer {
    queue: String,
    id: ConsumerId,
    drain: bool,
}

/// The queues and who consumes from them.
pub(crate) struct Core {
    queues: HashMap<String, Queue>,
    /// Dead-letter and expiry targets by queue address.
    targets: HashMap<String, (Option<String>, Option<String>)>,
    connections: HashMap<ConnId, mpsc::UnboundedSender<ToConn>>,
    consumers: HashMap<(ConnId, LinkId), Consumer>,
    by_id: HashMap<ConsumerId, (ConnId, LinkId)>,
    next_consumer: u64,
    /// Receivers of each multicast address.
    multicast: HashMap<String, Vec<(ConnId, LinkId)>>,
    /// Each multicast receiver's address and credit.
    multicast_credit: HashMap<(ConnId, LinkId), (String, u32)>,
    /// Temporary queues and the connection that made each.
    temporary: HashMap<String, ConnId>,
}

/// Commands handled per wake-up before deliveries are computed: enough to amortise the pass
/// over touched queues, small enough to keep latency low.
const BATCH_MAX: usize = 256;

/// How often expired messages are looked for.
const EXPIRY_SCAN_INTERVAL: Duration = Duration::from_secs(1);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Core {
    /// A queue for every stored node of the table (queue and deadletter addresses).
    pub(crate) fn new(table: &AddressTable, nodes: &[sluice_router::NodeSpec]) -> Self {
        let mut queues = HashMap::new();
        let mut targets = HashMap::new();
        for node in nodes {
            if matches!(node.kind, NodeKind::Queue | NodeKind::Deadletter)
                && table.node(&node.address).is_some()
            {
                let policy = QueuePolicy {
                    dead_letter_target: node.dead_letter.is_some(),
                    expiry_target: node.expiry.is_some(),
                    ..QueuePolicy::default()
                };
                queues.insert(node.address.clone(), Queue::new(policy));
                targets.insert(
                    node.address.clone(),
                    (node.dead_letter.clone(), node.expiry.clone()),
                );
            }
        }
        Core {
            queues,
            targets,
            connections: HashMap::new(),
            consumers: HashMap::new(),
            by_id: HashMap::new(),
            next_consumer: 0,
            multicast: HashMap::new(),
            multicast_credit: HashMap::new(),
            temporary: HashMap::new(),
        }
    }

    /// Runs until every connection sender is gone.
    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut expiry = tokio::time::interval(EXPIRY_SCAN_INTERVAL);
        let mut batch = Vec::with_capacity(BATCH_MAX);
        loop {
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
                _ = expiry.tick() => {
                    let now = now_ms();
                    for queue in self.queues.values_mut() {
                        queue.expire_messages(now);
                    }
                    self.pump(now);
                }
            }
        }
    }

    fn apply(&mut self, command: Command, now: i64) {
        match command {
            Command::Register { conn, tx } => {
                self.connections.insert(conn, tx);
            }
            Command::Unregister { conn } => {
                self.connections.remove(&conn);
                let temporary: Vec<String> = self
                    .temporary
                    .iter()
                    .filter(|(_, c)| **c == conn)
                    .map(|(a, _)| a.clone())
                    .collect();
                for address in temporary {
                    self.temporary.remove(&address);
                    self.queues.remove(&address);
                }
                let gone: Vec<(ConnId, LinkId)> = self
                    .consumers
                    .keys()
                    .filter(|(c, _)| *c == conn)
                    .copied()
                    .collect();
                let gone_multicast: Vec<(ConnId, LinkId)> = self
                    .multicast_credit
                    .keys()
                    .filter(|(c, _)| *c == conn)
                    .copied()
                    .chain(gone)
                    .collect();
                for key in gone_multicast {
                    self.remove_consumer(key);
                }
            }
            Command::Publish {
                conn,
                queue,
                message,
                settle,
            } => {
                let outcome = self.publish(&queue, message, now);
                if let (Some((session, delivery_id)), Some(tx)) =
                    (settle, self.connections.get(&conn))
                {
                    let _ = tx.send(ToConn::Published {
                        session,
                        delivery_id,
                        outcome,
                    });
                }
            }
            Command::AddConsumer { conn, link, queue } => {
                let id = ConsumerId(self.next_consumer);
                self.next_consumer += 1;
                if let Some(q) = self.queues.get_mut(&queue)
                    && q.add_consumer(id).is_ok()
                {
                    self.by_id.insert(id, (conn, link));
                    self.consumers.insert(
                        (conn, link),
                        Consumer {
                            queue,
                            id,
                            drain: false,
                        },
                    );
                }
            }
            Command::Credit {
                conn,
                link,
                credit,
                drain,
            } => {
                if let Some((_, c)) = self.multicast_credit.get_mut(&(conn, link)) {
                    // Nothing is stored for a multicast receiver: a drain ends at once.
                    *c = if drain { 0 } else { credit };
                    if drain && let Some(tx) = self.connections.get(&conn) {
                        let _ = tx.send(ToConn::Drained { link });
                    }
                }
                if let Some(c) = self.consumers.get_mut(&(conn, link)) {
                    c.drain = drain;
                    if let Some(q) = self.queues.get_mut(&c.queue) {
                        let _ = q.set_credit(c.id, credit);
                    }
                }
            }
            Command::Settle {
                conn,
                link,
                message,
                outcome,
            } => {
                if let Some(c) = self.consumers.get(&(conn, link))
                    && let Some(q) = self.queues.get_mut(&c.queue)
                {
                    let _ = q.settle(c.id, message, outcome);
                }
            }
            Command::RemoveConsumer { conn, link } => self.remove_consumer((conn, link)),
            Command::AddMulticastReceiver {
                conn,
                link,
                address,
            } => {
                self.multicast
                    .entry(address.clone())
                    .or_default()
                    .push((conn, link));
                self.multicast_credit.insert((conn, link), (address, 0));
            }
            Command::PublishMulticast { address, message } => self.fan_out(&address, &message),
            Command::CreateTemporaryQueue { conn, address } => {
                self.queues
                    .insert(address.clone(), Queue::new(QueuePolicy::default()));
                self.temporary.insert(address, conn);
            }
            Command::DeleteTemporaryQueue { address } => {
                self.temporary.remove(&address);
                self.queues.remove(&address);
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
            if let Some((_, credit)) = self.multicast_credit.get_mut(key)
                && *credit > 0
                && let Some(tx) = self.connections.get(&key.0)
            {
                *credit -= 1;
                let _ = tx.send(ToConn::DeliverSettled {
                    link: key.1,
                    payload: message.clone(),
                });
            }
        }
    }

    fn publish(&mut self, queue: &str, message: Bytes, now: i64) -> Result<(), (Symbol, String)> {
        let scanned = ScannedMessage::scan(message).map_err(|e| {
            (
                Symbol::try_from(e.condition()).unwrap_or(conditions::DECODE_ERROR),
                e.to_string(),
            )
        })?;
        let q = self
            .queues
            .get_mut(queue)
            .ok_or_else(|| (conditions::NOT_FOUND, format!("no queue '{queue}'")))?;
        q.enqueue(scanned, now)
            .map(drop)
            .map_err(|e| (e.condition(), e.to_string()))
    }

    fn remove_consumer(&mut self, key: (ConnId, LinkId)) {
        if let Some((address, _)) = self.multicast_credit.remove(&key)
            && let Some(receivers) = self.multicast.get_mut(&address)
        {
            receivers.retain(|k| *k != key);
        }
        if let Some(c) = self.consumers.remove(&key) {
            self.by_id.remove(&c.id);
            if let Some(q) = self.queues.get_mut(&c.queue) {
                let _ = q.remove_consumer(c.id);
            }
        }
    }

    /// Moves dead-lettered and expired messages to their targets, hands out what every queue
    /// can deliver now, and answers finished drains. Messages a delivery pass finds expired are
    /// moved on the next pass (at the latest the next expiry scan).
    fn pump(&mut self, now: i64) {
        let mut forwards = Vec::new();
        for (address, queue) in &mut self.queues {
            while let Some(f) = queue.poll_forward() {
                let (dead_letter, expiry) = self.targets.get(address).cloned().unwrap_or_default();
                if let Some(target) = if f.reason.is_expiry() {
                    expiry
                } else {
                    dead_letter
                } {
                    forwards.push((target, f.payload));
                }
            }
        }
        for (target, payload) in forwards {
            if let (Some(q), Ok(scanned)) =
                (self.queues.get_mut(&target), ScannedMessage::scan(payload))
            {
                let _ = q.enqueue_forwarded(scanned, now);
            }
        }
        for queue in self.queues.values_mut() {
            for d in queue.next_deliveries(now) {
                if let Some((conn, link)) = self.by_id.get(&d.consumer)
                    && let Some(tx) = self.connections.get(conn)
                {
                    let _ = tx.send(ToConn::Deliver {
                        link: *link,
                        message: d.message,
                        payload: d.payload,
                    });
                }
            }
        }
        // A drain ends when the queue has nothing more for the consumer's credit.
        for ((conn, link), c) in &mut self.consumers {
            if !c.drain {
                continue;
            }
            let Some(q) = self.queues.get_mut(&c.queue) else {
                continue;
            };
            if q.available() == 0 && q.credit(c.id).unwrap_or(0) > 0 {
                let _ = q.set_credit(c.id, 0);
                c.drain = false;
                if let Some(tx) = self.connections.get(conn) {
                    let _ = tx.send(ToConn::Drained { link: *link });
                }
            }
        }
    }
}
