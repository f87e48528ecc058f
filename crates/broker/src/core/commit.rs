//! A transaction's commit (AMQP 1.0 part 4 §4.4): every publish and every acknowledgement it
//! holds, applied in one step of the core or not at all.
//!
//! The connection holds a transaction's work until its discharge, then hands all of it over
//! as one [`Command::Commit`](super::Command::Commit). The core first checks that every
//! publish can be stored now: its node is there, it is a queue (or a multicast address, which
//! stores nothing and delivers at once), nothing waits in the queue for room, and the queue has
//! room for all of the transaction's messages to it within its depth and byte limits (and the
//! broker's memory budget, for a queue that does not page). A commit cannot wait for room: the
//! client waits for its discharge. Only when every check passes are the publishes stored and
//! the acknowledgements settled, in this one call; otherwise nothing is stored, the held
//! deliveries go back as `modified{delivery-failed}` (as a rollback), and the answer names the
//! cause.
//!
//! Topics and anycast addresses take no transactional publishes: a topic's copies go to its
//! named subscriptions in later steps (so they could not be checked and stored together), and
//! an anycast address holds nothing to commit. The commit is refused, naming the address.
//!
//! In the journal the commit's records (messages stored in durable queues, acknowledged
//! durable messages removed, raised delivery counts) follow one [`Change::Atomic`] marker, so
//! recovery replays all of them or none. Dead-lettering a rejected message is the one thing
//! that happens after the commit's step: it is the ordinary two-record move, safe on its own.

use sluice_codec::messaging::ScannedMessage;
use sluice_codec::transport::{DeliveryState, Modified};
use sluice_engine::{LinkId, SessionId};
use sluice_store::{Change, MessageId};

use super::command::{Route, ToConn};
use super::ids::{ConnId, NodeId};
use super::step::{Answer, Arrival, Via};
use super::{Core, Node, temporary_address};

/// A commit the core was handed.
#[derive(Debug)]
pub(crate) struct Commit {
    /// The discharge's delivery, which [`ToConn::Committed`] answers.
    pub(crate) discharge: (SessionId, u32),
    pub(crate) publishes: Vec<(Route, Box<ScannedMessage>)>,
    /// Receivers' outcomes for deliveries of theirs, grouped by link and outcome.
    pub(crate) settles: Vec<(LinkId, Vec<MessageId>, DeliveryState)>,
}

impl Core {
    /// Applies a commit of `conn` whole, or refuses it whole.
    pub(super) fn commit(&mut self, conn: ConnId, commit: Commit) {
        let Commit {
            discharge,
            publishes,
            settles,
        } = commit;
        if let Err(reason) = self.check_commit(conn, &publishes, &settles) {
            let failed = DeliveryState::Modified(Modified {
                delivery_failed: true,
                ..Default::default()
            });
            for (receiver, messages, _) in settles {
                self.settle((conn, receiver), &messages, &failed);
            }
            let result = Err(reason);
            self.out.push(conn, ToConn::Committed { discharge, result });
            return;
        }
        let unit = self.journal.begin_unit();
        for (route, message) in publishes {
            self.store_committed(route.node, message);
        }
        for (receiver, messages, state) in settles {
            self.settle((conn, receiver), &messages, &state);
        }
        let synced = self.journal.end_unit(unit);
        let answer = ToConn::Committed {
            discharge,
            result: Ok(()),
        };
        self.out.push_after_journal(conn, answer, synced);
    }

    /// Why the commit cannot be applied whole, if it cannot.
    fn check_commit(
        &self,
        conn: ConnId,
        publishes: &[(Route, Box<ScannedMessage>)],
        settles: &[(LinkId, Vec<MessageId>, DeliveryState)],
    ) -> Result<(), String> {
        // Each target's messages and bytes together, in the order first named.
        let mut targets: Vec<(NodeId, usize, usize)> = Vec::new();
        for (route, message) in publishes {
            let size = message.raw().len();
            match targets.iter_mut().find(|(n, _, _)| *n == route.node) {
                Some((_, count, bytes)) => {
                    *count += 1;
                    *bytes = bytes.saturating_add(size);
                }
                None => targets.push((route.node, 1, size)),
            }
        }
        for (node, count, bytes) in targets {
            self.check_target(node, count, bytes)?;
        }
        // An acknowledgement of a delivery whose link has gone cannot take effect: the core
        // gave the message back when the link went.
        if let Some((receiver, _, _)) = settles
            .iter()
            .find(|(l, _, _)| !self.links.contains_key(&(conn, *l)))
        {
            return Err(format!(
                "the receiving link (handle {}) of an acknowledged delivery has detached, and its messages went back to their queue",
                receiver.handle
            ));
        }
        Ok(())
    }

    /// Whether `count` messages of `bytes` in all can be stored in `node` now.
    fn check_target(&self, node: NodeId, count: usize, bytes: usize) -> Result<(), String> {
        if let Some(r) = self.retired.get(&node) {
            return Err(format!("the address '{}' has been removed", r.address));
        }
        let Some(slot) = self.nodes.get(node) else {
            return Err(format!(
                "the address '{}' has gone",
                temporary_address(node)
            ));
        };
        match &slot.node {
            Node::Queue(q) => {
                let policy = q.queue().policy();
                if !q.waiting.is_empty() || !q.queue().has_room_for(count, bytes) {
                    return Err(format!(
                        "the queue '{}' has no room for the transaction's {count} messages ({bytes} bytes): it holds {} of at most {} messages, at most {} bytes",
                        q.address,
                        q.queue().depth(),
                        policy.messages_max,
                        policy.bytes_max
                    ));
                }
                if self.memory.over && !q.pages() {
                    return Err(format!(
                        "the broker is over its memory budget and the queue '{}' keeps its messages in memory",
                        q.address
                    ));
                }
                Ok(())
            }
            Node::Multicast(_) => Ok(()),
            Node::Topic(t) => Err(format!(
                "transactional sends to the topic '{}' are not supported",
                t.address
            )),
            Node::Anycast(a) => Err(format!(
                "transactional sends to the anycast address '{}' are not supported: it stores nothing to commit",
                a.address
            )),
        }
    }

    /// Stores (or, on a multicast address, delivers) a message of a checked commit.
    fn store_committed(&mut self, id: NodeId, message: Box<ScannedMessage>) {
        let (nodes, mut ctx) = self.ctx();
        let Some(slot) = nodes.get_mut(id) else {
            return;
        };
        slot.counts.deliveries_in += 1;
        let delivered = ctx.out.delivered;
        match &mut slot.node {
            // Checked to have room: stored at once, answered with the commit.
            Node::Queue(q) => {
                let arrival = Arrival {
                    message,
                    answer: Answer::Nobody,
                    via: Via::Publish,
                };
                q.arrive(id, arrival, &mut ctx);
            }
            Node::Multicast(m) => {
                m.publish(message.raw(), ctx.out);
                slot.counts.transit += 1;
            }
            Node::Topic(_) | Node::Anycast(_) => {}
        }
        slot.counts.deliveries_out += ctx.out.delivered - delivered;
        self.mark(id);
    }
}

/// Where a unit starts in the journal records of a wake-up.
pub(super) type UnitStart = usize;

impl super::journal::Journal {
    /// Starts a unit: the records made until [`Self::end_unit`] form one.
    pub(super) fn begin_unit(&self) -> UnitStart {
        self.pending()
    }

    /// Ends the unit begun at `start`: puts a [`Change::Atomic`] marker in front of its
    /// records (one record alone needs none); returns whether it made any record.
    pub(super) fn end_unit(&mut self, start: UnitStart) -> bool {
        let records = self.pending().saturating_sub(start);
        if records > 1 {
            let records = u32::try_from(records).unwrap_or(u32::MAX);
            self.insert_before(start, Change::Atomic { records });
        }
        records > 0
    }
}
