//! A stored node: a queue, deadletter, named subscription or temporary queue, with competing
//! consumers. The [`Queue`] of the store keeps the messages; this adds who its consumers are,
//! the messages waiting for room, where its dead-lettered and expired messages go, and what
//! its durable messages tell the journal.
//!
//! A full queue holds what arrives (and everything after it, to keep the order) until a
//! consumer makes room; a publisher's answer waits with its message, and so does its credit,
//! so a queue at its limits slows its publishers instead of refusing them. What waits is
//! bounded: past [`WAITING_BYTES_MAX`] of waiting publishes, a publish is refused (Artemis's
//! `max-size-bytes-reject-threshold`), so no number of links or connections makes a full
//! queue hold more. A waiting publish goes with its link or connection.

use std::collections::VecDeque;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use sluice_codec::messaging::ScannedMessage;
use sluice_codec::transport::{Accepted, DeliveryState, Released};
use sluice_engine::LinkId;
use sluice_store::{
    Change, ConsumerId, ConsumerOptions, MessageId, Outcome, Queue, QueuePolicy, StoreError,
};

pub(crate) use sluice_config::AddressFullPolicy;

use super::command::ToConn;
use super::duplicates::Duplicates;
use super::ids::{ConnId, LinkKey, NodeId};
use super::step::{Answer, Arrival, Ctx, Forward, Joins, Via};
use crate::error::Refusal;

/// Most bytes of publishes a full node holds waiting for room, beyond its own limits.
pub(crate) const WAITING_BYTES_MAX: usize = 32 * 1024 * 1024;

/// What waits for room, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Waiting {
    items: VecDeque<Arrival>,
    /// Bytes of the waiting publishes (moved messages are bounded by the queues they left).
    publish_bytes: usize,
}

impl Waiting {
    fn push(&mut self, arrival: Arrival) {
        if arrival.via == Via::Publish {
            self.publish_bytes += arrival.message.raw().len();
        }
        self.items.push_back(arrival);
    }

    fn pop(&mut self) -> Option<Arrival> {
        let arrival = self.items.pop_front()?;
        if arrival.via == Via::Publish {
            self.publish_bytes -= arrival.message.raw().len();
        }
        Some(arrival)
    }

    /// Whether a publish of `size` bytes may wait too.
    fn has_room(&self, size: usize) -> bool {
        self.publish_bytes.saturating_add(size) <= WAITING_BYTES_MAX
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Drops what `conn` (and `link`) published, and topic copies whose publisher has gone:
    /// nobody is left to answer.
    pub(crate) fn forget(&mut self, conn: ConnId, link: Option<LinkId>, joins: &Joins) {
        let before = self.items.len();
        self.items.retain(|a| match a.answer {
            Answer::Join(id) => joins.is_open(id),
            answer => !answer.is_for(conn, link),
        });
        if self.items.len() != before {
            self.publish_bytes = self
                .items
                .iter()
                .filter(|a| a.via == Via::Publish)
                .map(|a| a.message.raw().len())
                .sum();
        }
    }

    /// Whether anything waits that a client published (not a message moved from another node).
    pub(crate) fn holds_publishes(&self) -> bool {
        self.items.iter().any(|a| a.answer != Answer::Nobody)
    }

    /// Everything waiting, when the node goes.
    pub(crate) fn take_all(&mut self) -> Vec<Arrival> {
        self.publish_bytes = 0;
        self.items.drain(..).collect()
    }
}

/// A stored node.
#[derive(Debug)]
pub(crate) struct QueueNode {
    pub(crate) address: Arc<str>,
    queue: Queue,
    dead_letter: Option<NodeId>,
    expiry: Option<NodeId>,
    /// A named subscription's `maxConsumers`.
    max_consumers: Option<u32>,
    consumers: FxHashMap<ConsumerId, LinkKey>,
    /// Consumers that asked for a drain.
    draining: Vec<ConsumerId>,
    pub(crate) waiting: Waiting,
    /// A temporary queue: the receiver that made it, with which it goes.
    pub(crate) owner: Option<LinkKey>,
    /// What happens to a publish when the queue is full.
    full: AddressFullPolicy,
    /// A consumer's `rejected` counts as a failed attempt (`modified{delivery-failed}`), as
    /// EnMasse's `treatRejectAsUnmodifiedDeliveryFailed` (default true) has it.
    reject_retries: bool,
    /// Duplicate detection, when configured.
    duplicates: Option<Duplicates>,
}

/// A stored node as its plan describes it.
#[derive(Debug, Clone)]
pub(crate) struct QueuePlan {
    pub(crate) address: Arc<str>,
    pub(crate) policy: QueuePolicy,
    pub(crate) dead_letter: Option<NodeId>,
    pub(crate) expiry: Option<NodeId>,
    pub(crate) max_consumers: Option<u32>,
    /// At its limits: hold publishers back (block), refuse (fail) or drop the oldest (drop).
    /// Page is block with no byte limit but the disk's, set in the policy.
    pub(crate) full: AddressFullPolicy,
    /// A consumer's `rejected` is retried as `modified{delivery-failed}`.
    pub(crate) reject_retries: bool,
}

impl QueueNode {
    pub(crate) fn new(plan: QueuePlan) -> Self {
        QueueNode {
            address: plan.address,
            queue: Queue::new(plan.policy),
            dead_letter: plan.dead_letter,
            expiry: plan.expiry,
            max_consumers: plan.max_consumers,
            consumers: FxHashMap::default(),
            draining: Vec::new(),
            waiting: Waiting::default(),
            owner: None,
            full: plan.full,
            reject_retries: plan.reject_retries,
            duplicates: None,
        }
    }

    /// The node with duplicate detection, when `limits` are given.
    pub(crate) fn with_duplicates(mut self, limits: Option<sluice_store::DuplicateLimits>) -> Self {
        self.duplicates = limits.map(Duplicates::new);
        self
    }

    /// How many ids its duplicate window holds, if it has one.
    #[cfg(test)]
    pub(crate) fn duplicates_len(&self) -> Option<usize> {
        self.duplicates.as_ref().map(Duplicates::len)
    }

    /// Puts back the ids the journal kept for its duplicate window (none without one).
    pub(crate) fn restore_duplicates(&mut self, ids: Vec<sluice_store::RememberedId>, now: i64) {
        if let Some(d) = &mut self.duplicates {
            d.restore(ids, now);
        }
    }

    /// Takes the plan of `new` (a reload): its policy, targets, `maxConsumers` and full
    /// policy; the messages and consumers stay.
    pub(crate) fn reconfigure(&mut self, new: QueueNode) {
        self.queue.set_policy(*new.queue.policy());
        self.dead_letter = new.dead_letter;
        self.expiry = new.expiry;
        self.max_consumers = new.max_consumers;
        self.full = new.full;
        self.reject_retries = new.reject_retries;
        match (&mut self.duplicates, new.duplicates) {
            (Some(old), Some(new)) => old.reconfigure(new),
            (old, new) => *old = new,
        }
    }

    /// Removes every available message (logged for the journal); returns how many.
    pub(crate) fn purge(&mut self, id: NodeId, ctx: &mut Ctx<'_>) -> usize {
        let removed = self.queue.purge();
        ctx.journal.take(id, &mut self.queue);
        removed
    }

    /// A temporary queue owned by the receiver `owner`.
    pub(crate) fn temporary(address: Arc<str>, owner: LinkKey) -> Self {
        let mut node = QueueNode::new(QueuePlan {
            address,
            policy: QueuePolicy::default(),
            dead_letter: None,
            expiry: None,
            max_consumers: None,
            full: AddressFullPolicy::Block,
            // Nothing to retry into: a temporary queue has no attempt limit or target.
            reject_retries: false,
        });
        node.owner = Some(owner);
        node
    }

    pub(crate) fn queue(&self) -> &Queue {
        &self.queue
    }

    /// The store itself, for an operator's move (`core::manage`), which takes messages out
    /// as forwards do and journals them the same way.
    pub(crate) fn queue_mut(&mut self) -> &mut Queue {
        &mut self.queue
    }

    /// Whether its messages are journaled.
    pub(crate) fn is_durable(&self) -> bool {
        self.queue.policy().durable
    }

    /// Puts back a message the journal kept (see [`Queue::restore`]).
    pub(crate) fn restore(&mut self, id: MessageId, message: ScannedMessage, count: u32, now: i64) {
        self.queue.restore(id, message, count, now);
    }

    /// Puts back a message the journal kept on disk (see [`Queue::restore_paged`]).
    pub(crate) fn restore_paged(&mut self, id: MessageId, size: u32, count: u32, now: i64) {
        self.queue.restore_paged(id, size, count, now);
    }

    /// Bytes of messages held in memory.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.queue.memory_bytes()
    }

    /// Whether the queue takes messages out of memory into the journal.
    pub(crate) fn pages(&self) -> bool {
        self.queue.policy().paging
    }

    /// Over the broker's memory budget, a queue that pages keeps new messages on disk.
    pub(crate) fn set_memory_pressure(&mut self, over: bool) {
        self.queue.set_memory_pressure(over);
    }

    /// What a page-in read found (`None`: read, but it does not decode).
    pub(crate) fn page_in(
        &mut self,
        id: NodeId,
        found: Vec<(MessageId, Option<Box<ScannedMessage>>)>,
        ctx: &mut Ctx<'_>,
    ) {
        self.queue.page_in(found, ctx.now);
        ctx.journal.take(id, &mut self.queue);
    }

    /// Whether an arrival of `size` bytes cannot be stored now: the queue is full, or the
    /// broker is over its memory budget and this queue cannot page.
    fn is_full_for(&self, size: usize, ctx: &Ctx<'_>) -> bool {
        !self.queue.has_room(size) || (ctx.memory_over && !self.pages())
    }

    /// A message arriving: stored if there is room, else waiting for it.
    pub(crate) fn arrive(&mut self, id: NodeId, arrival: Arrival, ctx: &mut Ctx<'_>) {
        // A duplicate is accepted at once, even by a full queue: it is already stored.
        let arrival = match &mut self.duplicates {
            None => arrival,
            Some(d) => match d.check(arrival, self.queue.policy().durable, ctx) {
                Some((arrival, _)) => arrival,
                None => return,
            },
        };
        let size = arrival.message.raw().len();
        let bytes_max = self.queue.policy().bytes_max;
        if size > bytes_max {
            let refusal = Refusal::NeverFits {
                address: self.address.to_string(),
                size,
                max: bytes_max,
            };
            return refuse(&arrival, &refusal, ctx);
        }
        if self.waiting.is_empty() && !self.queue.has_room(size) {
            match self.full {
                AddressFullPolicy::Fail if arrival.via == Via::Publish => {
                    let refusal = Refusal::Store(StoreError::BytesLimit {
                        message_bytes: size,
                        bytes_max,
                    });
                    return refuse(&arrival, &refusal, ctx);
                }
                AddressFullPolicy::Drop => {
                    // What it could not drop (in flight) it waits for, as a block would.
                    let _fits = self.queue.drop_oldest_for(size);
                    ctx.journal.take(id, &mut self.queue);
                }
                _ => {}
            }
        }
        if !self.waiting.is_empty() || self.is_full_for(size, ctx) {
            if arrival.via == Via::Publish && !self.waiting.has_room(size) {
                let refusal = Refusal::WaitingFull {
                    address: self.address.to_string(),
                    max: WAITING_BYTES_MAX,
                };
                return refuse(&arrival, &refusal, ctx);
            }
            self.waiting.push(arrival);
            return;
        }
        self.store(id, arrival, ctx);
    }

    fn store(&mut self, id: NodeId, arrival: Arrival, ctx: &mut Ctx<'_>) {
        // Checked again: the original may have been stored while this one waited.
        let (arrival, message_id) = match &mut self.duplicates {
            None => (arrival, None),
            Some(d) => match d.check(arrival, self.queue.policy().durable, ctx) {
                Some(checked) => checked,
                None => return,
            },
        };
        let Arrival {
            message,
            answer,
            via,
        } = arrival;
        let stored = match via {
            Via::Publish => self.queue.enqueue(message, ctx.now),
            Via::Moved { .. } => self.queue.enqueue_forwarded(message, ctx.now),
        };
        match stored {
            Ok(stored) => {
                let synced = self.queue.has_changes();
                match (&mut self.duplicates, message_id) {
                    (Some(d), Some(message_id)) => {
                        d.remember(id, &mut self.queue, stored, &message_id, ctx);
                    }
                    _ => ctx.journal.take(id, &mut self.queue),
                }
                if let Via::Moved {
                    from: Some((node, message)),
                } = via
                {
                    ctx.journal.push(node, Change::Removed { id: message });
                }
                ctx.resolve(answer, DeliveryState::Accepted(Accepted {}), synced);
            }
            Err(e) => refuse_parts(answer, via, &Refusal::Store(e), ctx),
        }
    }

    /// Places waiting messages, oldest first, while there is room.
    fn place_waiting(&mut self, id: NodeId, ctx: &mut Ctx<'_>) {
        while let Some(front) = self.waiting.items.front() {
            if self.is_full_for(front.message.raw().len(), ctx) {
                break;
            }
            let Some(arrival) = self.waiting.pop() else {
                break;
            };
            self.store(id, arrival, ctx);
        }
    }

    /// The node goes (a temporary queue whose receiver left): what waits for it is released
    /// to its publishers, to send elsewhere.
    pub(crate) fn close(&mut self, ctx: &mut Ctx<'_>) {
        for arrival in self.waiting.take_all() {
            ctx.resolve(arrival.answer, DeliveryState::Released(Released {}), false);
        }
    }

    /// A receiver attaches as a consumer.
    pub(crate) fn attach(
        &mut self,
        key: LinkKey,
        consumer: ConsumerId,
        options: ConsumerOptions,
    ) -> Result<(), Refusal> {
        // A temporary queue is its creating link's alone: anyone may send to it (it is a
        // reply-to address), but no other link may read the replies.
        if self.owner.is_some_and(|owner| owner != key) {
            return Err(Refusal::NotOwner(self.address.to_string()));
        }
        if let Some(max) = self.max_consumers
            && self.queue.consumer_count() >= max as usize
        {
            return Err(Refusal::TooManyConsumers {
                address: self.address.to_string(),
                max,
            });
        }
        self.queue.add_consumer_with(consumer, options)?;
        self.consumers.insert(consumer, key);
        Ok(())
    }

    /// A consumer leaves: its unsettled deliveries go back (as failed attempts).
    pub(crate) fn detach(
        &mut self,
        id: NodeId,
        consumer: ConsumerId,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), StoreError> {
        self.consumers.remove(&consumer);
        self.draining.retain(|c| *c != consumer);
        let result = self.queue.remove_consumer_at(consumer, ctx.now);
        ctx.journal.take(id, &mut self.queue);
        result
    }

    pub(crate) fn credit(
        &mut self,
        consumer: ConsumerId,
        credit: u32,
        drain: bool,
    ) -> Result<(), StoreError> {
        self.queue.set_credit(consumer, credit)?;
        self.draining.retain(|c| *c != consumer);
        if drain {
            self.draining.push(consumer);
        }
        Ok(())
    }

    pub(crate) fn settle(
        &mut self,
        id: NodeId,
        consumer: ConsumerId,
        message: MessageId,
        outcome: Outcome,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), StoreError> {
        let outcome = match outcome {
            Outcome::Rejected if self.reject_retries => Outcome::Modified {
                delivery_failed: true,
                undeliverable_here: false,
            },
            outcome => outcome,
        };
        let result = self.queue.settle_at(consumer, message, outcome, ctx.now);
        ctx.journal.take(id, &mut self.queue);
        result
    }

    pub(crate) fn unsend(
        &mut self,
        consumer: ConsumerId,
        message: MessageId,
    ) -> Result<(), StoreError> {
        self.queue.unsend(consumer, message)
    }

    /// Expires what is due, and releases held messages whose time has come (a redelivery
    /// delay, a scheduled delivery).
    pub(crate) fn expire(&mut self, id: NodeId, ctx: &mut Ctx<'_>) {
        self.queue.release_due(ctx.now);
        self.queue.expire_messages(ctx.now);
        ctx.journal.take(id, &mut self.queue);
    }

    /// When the first available message expires, or a held one is due.
    pub(crate) fn next_expiry(&self) -> Option<i64> {
        self.queue.next_timer_ms()
    }

    /// The end of a wake-up that touched the node: waiting messages are placed, consumers get
    /// what their credit allows, dead-lettered and expired messages go to their targets, and
    /// finished drains are answered.
    pub(crate) fn pump(&mut self, id: NodeId, ctx: &mut Ctx<'_>) {
        self.place_waiting(id, ctx);
        // Each walk past messages no consumer selects is bounded and resumes where the last
        // stopped, until the queue has been walked to its end (or credit ran out).
        // (Bounded here too: each walk covers at least a slice of the queue.)
        let walks_max = self.queue.depth() / sluice_store::DISPATCH_SKIPS_MAX + 2;
        for _ in 0..walks_max {
            for d in self.queue.next_deliveries(ctx.now) {
                self.deliver(d, false, ctx);
            }
            if !self.queue.dispatch_pending() {
                break;
            }
        }
        // A browser's copy needs no settling: the message stays.
        for d in self.queue.next_browse_deliveries(ctx.now) {
            self.deliver(d, true, ctx);
        }
        if let Some(ids) = self.queue.poll_page_in() {
            ctx.journal.read(id, ids);
        }
        ctx.journal.take(id, &mut self.queue);
        self.forward(id, ctx);
        self.finish_drains(ctx);
        for consumer in self.queue.take_browsers_at_end() {
            if let Err(e) = self.queue.set_credit(consumer, 0) {
                super::bookkeeping(&e);
            }
            if let Some(&(conn, link)) = self.consumers.get(&consumer) {
                ctx.out.push(conn, ToConn::Exhausted { link });
            }
        }
    }

    fn deliver(&self, d: sluice_store::Delivery, settled: bool, ctx: &mut Ctx<'_>) {
        if let Some(&(conn, link)) = self.consumers.get(&d.consumer) {
            ctx.out.push(
                conn,
                ToConn::Deliver {
                    link,
                    message: d.message,
                    payload: d.payload,
                    settled,
                },
            );
        }
    }

    /// Hands what left the queue to its expiry or dead-letter target, as steps.
    fn forward(&mut self, id: NodeId, ctx: &mut Ctx<'_>) {
        while let Some(f) = self.queue.poll_forward() {
            let target = if f.reason.is_expiry() {
                self.expiry
            } else {
                self.dead_letter
            };
            let from = f.journaled.then_some((id, f.id));
            // It carries where it came from, for an operator's move back.
            let scanned = ScannedMessage::scan(f.payload)
                .and_then(|m| super::manage::annotate_origin(m, &self.address))
                .map(Box::new);
            match (target, scanned) {
                (Some(to), Ok(message)) => ctx.steps.push_back(Forward {
                    to,
                    arrival: Arrival {
                        message,
                        answer: Answer::Nobody,
                        via: Via::Moved { from },
                    },
                }),
                // Its header was re-encoded by the store, so this is the broker's bug, not
                // the client's; the message has nowhere to go.
                (_, Err(e)) => {
                    tracing::error!(queue = %self.address, error = %e, "a dead-lettered message does not decode");
                    if let Some((node, message)) = from {
                        ctx.journal.push(node, Change::Removed { id: message });
                    }
                }
                (None, Ok(_)) => {
                    if let Some((node, message)) = from {
                        ctx.journal.push(node, Change::Removed { id: message });
                    }
                }
            }
        }
    }

    /// A drain ends when the queue has nothing more for the consumer's credit.
    fn finish_drains(&mut self, ctx: &mut Ctx<'_>) {
        if self.draining.is_empty() || self.queue.available() > 0 {
            return;
        }
        for consumer in std::mem::take(&mut self.draining) {
            if self.queue.credit(consumer).unwrap_or(0) > 0
                && let Err(e) = self.queue.set_credit(consumer, 0)
            {
                super::bookkeeping(&e);
            }
            if let Some(&(conn, link)) = self.consumers.get(&consumer) {
                ctx.out.push(conn, ToConn::Drained { link });
            }
        }
    }
}

/// An arrival that will not be stored: its publisher hears why; a moved message's source logs
/// it gone (it has nowhere else to be).
fn refuse(arrival: &Arrival, refusal: &Refusal, ctx: &mut Ctx<'_>) {
    refuse_parts(arrival.answer, arrival.via, refusal, ctx);
}

fn refuse_parts(answer: Answer, via: Via, refusal: &Refusal, ctx: &mut Ctx<'_>) {
    if let Via::Moved {
        from: Some((node, message)),
    } = via
    {
        ctx.journal.push(node, Change::Removed { id: message });
    }
    ctx.refuse(answer, refusal);
}
