//! One queue: stored messages, competing consumers, outcomes, expiry and dead-lettering.
//!
//! A message is in exactly one place at a time:
//!
//! ```text
//!             enqueue
//!                |
//!                v         next_deliveries (credit)
//!   +------> available ---------------------------> in flight (one consumer)
//!   |            |                                      |
//!   |            | expired                              | accepted ----------> gone (acknowledged)
//!   |            v                                      | rejected, or too many
//!   |     expiry target or dropped                      |   failed deliveries -> dead-letter target or dropped
//!   |                                                   | released, modified,
//!   +---------------------------------------------------+   consumer removed
//! ```
//!
//! Available messages are kept by priority level (header `priority`, see [`priority`]) and, within
//! a level, in arrival order (by [`MessageId`]), so a message that comes back from a consumer
//! returns to its original place, ahead of everything of its level that arrived after it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use sluice_codec::Encode;
use sluice_codec::messaging::{Header, ScannedMessage};

use crate::change::Change;
use crate::error::StoreError;
use crate::policy::{QueuePolicy, expiry_instant_ms};
use available::Available;
use priority::{Levels, level_of};
pub use select::{ConsumerOptions, DISPATCH_SKIPS_MAX, MessageFilter};

/// A message's id within its queue, given at enqueue in arrival order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub u64);

/// A consumer (a receiving link attached to the queue), named by the broker. An id must not be
/// reused for another link while the queue lives: `undeliverable-here` refusals are kept by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConsumerId(pub u64);

/// A message handed to a consumer: send `payload` on the consumer's link as one delivery, and
/// report its outcome with [`Queue::settle`].
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Who gets it.
    pub consumer: ConsumerId,
    /// Which message it is.
    pub message: MessageId,
    /// The encoded message: as received on a first delivery; with a header carrying the raised
    /// `delivery-count` and `first-acquirer` false on a later one.
    pub payload: Bytes,
}

/// A consumer's outcome for a delivery (AMQP 1.0 part 3 §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Processed: the message is removed.
    Accepted,
    /// Not processed and not counted as a delivery attempt: the message is offered again.
    Released,
    /// Not processed; offered again.
    Modified {
        /// Counts as a failed delivery attempt: the delivery count is raised (§3.4.5).
        delivery_failed: bool,
        /// Not to be offered to this consumer again (§3.4.5).
        undeliverable_here: bool,
    },
    /// Invalid: the message goes to the dead-letter target, or is dropped without one.
    Rejected,
}

/// Why a message is handed back to the router by [`Queue::poll_forward`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardReason {
    /// It expired; it goes to the expiry target.
    Expired,
    /// A consumer rejected it; it goes to the dead-letter target.
    Rejected,
    /// Its delivery count reached [`QueuePolicy::delivery_attempts_max`]; it goes to the
    /// dead-letter target.
    DeliveryAttemptsExceeded,
    /// An operator moved it ([`Queue::take_where`]); it goes where the operator said.
    Moved,
}

impl ForwardReason {
    /// Whether the message goes to the expiry target (otherwise, to the dead-letter target).
    pub fn is_expiry(self) -> bool {
        self == ForwardReason::Expired
    }
}

/// A message that has left the queue for its expiry or dead-letter target. The queue no
/// longer holds or counts it; the router enqueues `payload` at the target address (with
/// [`Queue::enqueue_forwarded`] there, so its own expiry does not apply again).
#[derive(Debug, Clone, PartialEq)]
pub struct Forward {
    /// Its id in this queue.
    pub id: MessageId,
    /// Where it goes, and why.
    pub reason: ForwardReason,
    /// The encoded message, its header carrying the delivery count it reached.
    pub payload: Bytes,
    /// Whether this queue's journal holds it (a durable message of a durable queue, or one
    /// that was paged): its removal from this queue is for the broker to log, once the target
    /// has stored it (see [`Change`]).
    pub journaled: bool,
}

/// The queue's counters, for metrics. Every message that leaves the queue is counted in
/// exactly one of `acknowledged`, `dead_lettered`, `expired` and `dropped`, so
/// `enqueued == acknowledged + dead_lettered + expired + dropped + moved + depth` always holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueCounters {
    /// Messages accepted by enqueue.
    pub enqueued: u64,
    /// Deliveries handed to consumers, first deliveries and redeliveries alike.
    pub delivered: u64,
    /// Deliveries settled `accepted`: the messages are gone.
    pub acknowledged: u64,
    /// Deliveries settled `released`.
    pub released: u64,
    /// Deliveries settled `modified`.
    pub modified: u64,
    /// Deliveries settled `rejected` (then dead-lettered or dropped).
    pub rejected: u64,
    /// Expired messages handed back for the expiry target.
    pub expired: u64,
    /// Messages handed back for the dead-letter target.
    pub dead_lettered: u64,
    /// Messages discarded because no target was set: expired without an expiry target,
    /// rejected or past the redelivery limit without a dead-letter target.
    pub dropped: u64,
    /// Messages an operator moved to another address ([`Queue::take_where`]).
    pub moved: u64,
}

/// A queue as [`Queue::stats`] reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Messages held.
    pub depth: usize,
    /// Their bytes.
    pub bytes: usize,
    /// How many of them the journal holds.
    pub durable: usize,
    /// When the oldest arrived (ms since the epoch), if any is held.
    pub oldest_ms: Option<i64>,
}

/// A stored message and what the queue knows about it.
#[derive(Debug)]
struct Stored {
    /// Boxed where it arrived (the connection that scanned it), so that the few hundred
    /// bytes of a scanned message are never moved again: it moves as a pointer from the
    /// connection to the queue, and between available and in flight.
    message: Box<ScannedMessage>,
    /// The size charged against `bytes_max` at enqueue.
    size_bytes: usize,
    expiry_ms: Option<i64>,
    /// Failed delivery attempts so far (the header's `delivery-count`).
    delivery_count: u32,
    /// Whether some consumer has acquired it before (then `first-acquirer` is false).
    acquired_before: bool,
    /// Consumers that settled it `modified` with `undeliverable-here`.
    refused_by: Vec<ConsumerId>,
    /// A durable message in a durable queue: its changes are logged.
    durable: bool,
    /// The journal holds it (durable, or paged out and read back): its removal is logged.
    journaled: bool,
    /// When it arrived (ms since the epoch; for a restored message, when it was restored):
    /// the age operators watch.
    arrived_ms: i64,
}

impl Stored {
    /// Its priority level (header `priority`, 4 when absent, above 9 counted as 9).
    fn level(&self) -> u8 {
        level_of(self.message.header.as_ref().map_or(4, |h| h.priority))
    }

    fn is_expired(&self, now_ms: i64) -> bool {
        self.expiry_ms.is_some_and(|at| at <= now_ms)
    }

    /// The message as it goes out now: the bytes it arrived in until it has been acquired;
    /// after that a fresh header (part 3 §3.2.1: `delivery-count`, `first-acquirer`) in front
    /// of the untouched bare message.
    fn payload(&mut self) -> Bytes {
        if !self.acquired_before {
            return self.message.raw().clone();
        }
        let header = self.message.header.get_or_insert_with(Header::default);
        header.delivery_count = self.delivery_count;
        header.first_acquirer = false;
        self.message.to_bytes().freeze()
    }
}

#[derive(Debug)]
struct Consumer {
    id: ConsumerId,
    credit: u32,
    filter: Option<std::sync::Arc<dyn MessageFilter>>,
}

#[derive(Debug)]
struct InFlight {
    stored: Stored,
    consumer: ConsumerId,
    /// Whether this is the message's first acquisition (see [`Queue::unsend`]).
    first: bool,
}

/// An in-memory queue with competing consumers. Sans-IO: time comes in as `now_ms`.
#[derive(Debug)]
pub struct Queue {
    policy: QueuePolicy,
    next_id: u64,
    /// By priority level, each in arrival order (see [`priority`]).
    available: Levels<Stored>,
    /// The available messages that expire, by expiry: the broker's expiry timer reads the first,
    /// and the expiry pass takes only what is due instead of walking the queue.
    expiring: BTreeSet<(i64, MessageId)>,
    /// Messages not to be offered before a due time, by it (see [`held`]).
    held: BTreeMap<(i64, MessageId), Stored>,
    /// The held messages that expire: (expiry, due, id).
    held_expiring: BTreeSet<(i64, i64, MessageId)>,
    /// Message groups with messages held in memory (see [`select`]).
    groups: select::Groups,
    /// How many consumers have a filter: with none and no group, dispatch takes the plain path.
    filtered: usize,
    /// Browsers, apart from the competing consumers (see [`browse`]).
    browsers: Vec<browse::Browser>,
    browsers_at_end: Vec<ConsumerId>,
    /// Where the last dispatch walk stopped at [`DISPATCH_SKIPS_MAX`]: (level, next id).
    resume: Option<(u8, u64)>,
    /// The latest time the queue was told of (see [`Queue::settle_at`]).
    now_ms: i64,
    /// Handed out in the order they are taken, and mostly settled in that order: the same
    /// ring as the available ones (a hash map's insert and remove per delivery showed in
    /// the broker's profile).
    in_flight: Available<InFlight>,
    /// In attach order; `next_consumer` is the round-robin cursor into it.
    consumers: Vec<Consumer>,
    next_consumer: usize,
    /// The sum of the consumers' credit, so dispatch stops at once when it is spent.
    credit_total: u64,
    /// Bytes held: in memory and paged.
    bytes: usize,
    /// Bytes of the available messages in memory.
    available_bytes: usize,
    /// Messages whose bodies are on disk only, oldest first; all newer than every message in
    /// memory (see [`paged`]).
    paged: VecDeque<paged::PagedRef>,
    paged_bytes: usize,
    /// The newest message of the page-in read outstanding.
    reading: Option<MessageId>,
    /// The broker is over its memory budget: new messages are paged.
    memory_pressure: bool,
    forwards: VecDeque<Forward>,
    /// Changes to durable messages since the broker last took them.
    changes: Vec<Change>,
    counters: QueueCounters,
}

impl Queue {
    /// An empty queue.
    pub fn new(policy: QueuePolicy) -> Self {
        Queue {
            policy,
            next_id: 0,
            available: Levels::default(),
            expiring: BTreeSet::new(),
            held: BTreeMap::new(),
            held_expiring: BTreeSet::new(),
            now_ms: i64::MIN,
            groups: select::Groups::new(),
            filtered: 0,
            resume: None,
            browsers: Vec::new(),
            browsers_at_end: Vec::new(),
            in_flight: Available::default(),
            consumers: Vec::new(),
            next_consumer: 0,
            credit_total: 0,
            bytes: 0,
            available_bytes: 0,
            paged: VecDeque::new(),
            paged_bytes: 0,
            reading: None,
            memory_pressure: false,
            forwards: VecDeque::new(),
            changes: Vec::new(),
            counters: QueueCounters::default(),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &QueuePolicy {
        &self.policy
    }

    /// Replaces the policy (a configuration reload). Limits apply to later enqueues, the TTL
    /// clamp to later messages, the redelivery limit and targets from now on.
    pub fn set_policy(&mut self, policy: QueuePolicy) {
        self.policy = policy;
    }

    /// Stores a message a sender sent, received at `now_ms`. Its expiry comes from its header
    /// TTL or `absolute-expiry-time`, clamped by the policy.
    ///
    /// The message must be as scanned: if the caller changed its header or annotations, it
    /// encodes and scans it again first, since a first delivery sends the bytes it came in.
    pub fn enqueue(
        &mut self,
        message: impl Into<Box<ScannedMessage>>,
        now_ms: i64,
    ) -> Result<MessageId, StoreError> {
        let message = message.into();
        let ttl_ms = message.header.as_ref().and_then(|h| h.ttl);
        let absolute_ms = message.absolute_expiry_time().map(|t| t.0);
        let expiry_ms = expiry_instant_ms(now_ms, ttl_ms, absolute_ms, self.policy.ttl);
        self.store(message, expiry_ms, now_ms)
    }

    /// Stores a message another queue dead-lettered or expired ([`Forward::payload`]). Its own
    /// TTL and `absolute-expiry-time` no longer apply (Artemis clears the expiration of a
    /// message it moves); this queue's TTL maximum still does.
    pub fn enqueue_forwarded(
        &mut self,
        message: impl Into<Box<ScannedMessage>>,
        now_ms: i64,
    ) -> Result<MessageId, StoreError> {
        let message = message.into();
        let expiry_ms = expiry_instant_ms(now_ms, None, None, self.policy.ttl);
        self.store(message, expiry_ms, now_ms)
    }

    fn store(
        &mut self,
        message: Box<ScannedMessage>,
        expiry_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<MessageId, StoreError> {
        if self.depth() >= self.policy.messages_max {
            return Err(StoreError::DepthLimit {
                messages_max: self.policy.messages_max,
            });
        }
        let size_bytes = message.raw().len();
        if self.bytes.saturating_add(size_bytes) > self.policy.bytes_max {
            return Err(StoreError::BytesLimit {
                message_bytes: size_bytes,
                bytes_max: self.policy.bytes_max,
            });
        }
        self.saw(now_ms);
        let id = MessageId(self.next_id);
        self.next_id = self.next_id.saturating_add(1);
        let delivery_count = message.header.as_ref().map_or(0, |h| h.delivery_count);
        let durable = self.policy.durable && message.header.as_ref().is_some_and(|h| h.durable);
        let due_ms = held::scheduled_ms(&message, now_ms).filter(|&due| due > now_ms);
        if due_ms.is_none() && self.pages(size_bytes) {
            self.page_out(id, &message, expiry_ms, delivery_count, durable, now_ms);
            self.bytes += size_bytes;
            self.counters.enqueued += 1;
            self.debug_check();
            return Ok(id);
        }
        if durable {
            self.changes.push(Change::Stored {
                id,
                payload: message.raw().clone(),
            });
        }
        let stored = Stored {
            message,
            size_bytes,
            expiry_ms,
            delivery_count,
            acquired_before: false,
            refused_by: Vec::new(),
            durable,
            journaled: durable,
            arrived_ms: now_ms,
        };
        select::join(&mut self.groups, &stored);
        match due_ms {
            Some(due_ms) => self.hold(id, stored, due_ms),
            None => self.make_available(id, stored),
        }
        self.bytes += size_bytes;
        self.counters.enqueued += 1;
        self.debug_check();
        Ok(id)
    }

    /// Puts back a durable message the journal kept across a restart, under the id it had,
    /// with the delivery count it reached. Nothing is logged (the journal has it), and no
    /// limit applies: a message accepted before the restart is never dropped for want of room
    /// after it; while the queue is over its limits new messages wait instead. Its TTL counts
    /// again from `now_ms` (the journal keeps no arrival time); an `absolute-expiry-time`
    /// still holds. Restore messages in id order; new messages are numbered above the last.
    pub fn restore(
        &mut self,
        id: MessageId,
        message: impl Into<Box<ScannedMessage>>,
        delivery_count: u32,
        now_ms: i64,
    ) {
        let message = message.into();
        let ttl_ms = message.header.as_ref().and_then(|h| h.ttl);
        let absolute_ms = message.absolute_expiry_time().map(|t| t.0);
        let expiry_ms = expiry_instant_ms(now_ms, ttl_ms, absolute_ms, self.policy.ttl);
        let size_bytes = message.raw().len();
        self.next_id = self.next_id.max(id.0.saturating_add(1));
        self.saw(now_ms);
        let due_ms = held::scheduled_ms(&message, now_ms).filter(|&due| due > now_ms);
        let stored = Stored {
            message,
            size_bytes,
            expiry_ms,
            delivery_count,
            // Delivered before the restart, perhaps: not the first acquisition any more.
            acquired_before: delivery_count > 0,
            refused_by: Vec::new(),
            durable: true,
            journaled: true,
            arrived_ms: now_ms,
        };
        select::join(&mut self.groups, &stored);
        match due_ms {
            Some(due_ms) => self.hold(id, stored, due_ms),
            None => self.make_available(id, stored),
        }
        self.bytes += size_bytes;
        self.counters.enqueued += 1;
        self.debug_check();
    }

    /// Removes every available message expired at `now_ms` (dispatch only meets the messages
    /// it walks past; the broker calls this at [`Queue::next_expiry_ms`]). Returns how many
    /// expired. Costs what it removes, not the queue's length.
    pub fn expire_messages(&mut self, now_ms: i64) -> usize {
        let expired: Vec<MessageId> = self
            .expiring
            .range(..=(now_ms, MessageId(u64::MAX)))
            .map(|&(_, id)| id)
            .collect();
        for &id in &expired {
            if let Some(stored) = self.take_available(id) {
                self.expire(id, stored);
            }
        }
        let held = self.expire_held(now_ms);
        self.debug_check();
        expired.len() + held
    }

    /// Settles a consumer's delivery with its outcome.
    pub fn settle(
        &mut self,
        consumer: ConsumerId,
        message: MessageId,
        outcome: Outcome,
    ) -> Result<(), StoreError> {
        let mut stored = self.take_in_flight(consumer, message)?.stored;
        match outcome {
            Outcome::Accepted => {
                self.counters.acknowledged += 1;
                self.remove(message, &stored);
            }
            Outcome::Released => {
                self.counters.released += 1;
                self.make_available(message, stored);
            }
            Outcome::Modified {
                delivery_failed,
                undeliverable_here,
            } => {
                self.counters.modified += 1;
                if undeliverable_here {
                    stored.refused_by.push(consumer);
                }
                if delivery_failed {
                    self.fail_delivery(message, stored);
                } else {
                    self.make_available(message, stored);
                }
            }
            Outcome::Rejected => {
                self.counters.rejected += 1;
                self.dead_letter(message, stored, ForwardReason::Rejected);
            }
        }
        self.debug_check();
        Ok(())
    }

    /// [`Queue::settle`] at `now_ms`: a redelivery delay counts from then. (`settle` itself
    /// counts it from the latest time the queue was told of by any call.)
    pub fn settle_at(
        &mut self,
        consumer: ConsumerId,
        message: MessageId,
        outcome: Outcome,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.saw(now_ms);
        self.settle(consumer, message, outcome)
    }

    /// [`Queue::remove_consumer`] at `now_ms`, as [`Queue::settle_at`] is to `settle`.
    pub fn remove_consumer_at(&mut self, id: ConsumerId, now_ms: i64) -> Result<(), StoreError> {
        self.saw(now_ms);
        self.remove_consumer(id)
    }

    /// Takes back a delivery that never left: the consumer's connection could not send it (its
    /// peer's window was full). It returns to its place as if never handed out: not counted
    /// as delivered, and still the first acquisition to come, so it goes out again as the bytes
    /// it arrived in rather than re-encoded with `first-acquirer` false.
    pub fn unsend(&mut self, consumer: ConsumerId, message: MessageId) -> Result<(), StoreError> {
        let flight = self.take_in_flight(consumer, message)?;
        let mut stored = flight.stored;
        if flight.first {
            stored.acquired_before = false;
        }
        self.counters.delivered = self.counters.delivered.saturating_sub(1);
        self.make_available(message, stored);
        self.debug_check();
        Ok(())
    }

    /// The next message that left the queue for its expiry or dead-letter target.
    pub fn poll_forward(&mut self) -> Option<Forward> {
        self.forwards.pop_front()
    }

    /// The changes to durable messages since the last call, oldest first, for the journal.
    /// Empty unless the policy is durable.
    pub fn take_changes(&mut self) -> std::vec::Drain<'_, Change> {
        self.changes.drain(..)
    }

    /// Whether [`Queue::take_changes`] has any.
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }

    /// Whether a message of `bytes` would be stored now, within both limits.
    pub fn has_room(&self, bytes: usize) -> bool {
        self.has_room_for(1, bytes)
    }

    /// Whether `messages` messages of `bytes` in all would be stored now, within both limits
    /// (a transaction's commit checks all of its messages to a queue before storing any).
    pub fn has_room_for(&self, messages: usize, bytes: usize) -> bool {
        self.depth().saturating_add(messages) <= self.policy.messages_max
            && self.bytes.saturating_add(bytes) <= self.policy.bytes_max
    }

    /// Drops the oldest available messages (in memory, then paged) until a message of
    /// `bytes` fits, for an address whose full policy is to drop the oldest; each is counted
    /// as dropped. Returns whether it fits now (it may not, if the rest is in flight).
    pub fn drop_oldest_for(&mut self, bytes: usize) -> bool {
        while !self.has_room(bytes) {
            if let Some((level, id)) = self.available.oldest() {
                let id = MessageId(id);
                if let Some(stored) = self.take_available_at(level, id) {
                    self.counters.dropped += 1;
                    self.remove(id, &stored);
                }
            } else if !self.drop_paged_front() {
                return false;
            }
        }
        self.debug_check();
        true
    }

    /// Removes every available message, in memory and paged (those in flight stay with their
    /// consumers), counted as dropped and logged as removed; returns how many went. For an
    /// operator's purge, and for an address whose grace period after leaving the
    /// configuration has ended.
    pub fn purge(&mut self) -> usize {
        let mut removed = 0;
        while let Some((level, id)) = self.available.oldest() {
            let id = MessageId(id);
            let Some(stored) = self.take_available_at(level, id) else {
                break;
            };
            self.counters.dropped += 1;
            self.remove(id, &stored);
            removed += 1;
        }
        while self.drop_paged_front() {
            removed += 1;
        }
        removed += self.purge_held();
        self.debug_check();
        removed
    }

    /// Whether messages wait in [`Queue::poll_forward`].
    pub fn has_forwards(&self) -> bool {
        !self.forwards.is_empty()
    }

    fn unsettled_of(&self, consumer: ConsumerId) -> Vec<MessageId> {
        let mut ids: Vec<MessageId> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.consumer == consumer)
            .map(|(id, _)| MessageId(id))
            .collect();
        ids.sort_unstable();
        ids
    }

    /// When the first available message expires, if any does: the next time
    /// [`Queue::expire_messages`] has work.
    pub fn next_expiry_ms(&self) -> Option<i64> {
        let available = self.expiring.first().map(|&(at, _)| at);
        match (available, self.next_held_expiry_ms()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn make_available(&mut self, id: MessageId, stored: Stored) {
        if let Some(at) = stored.expiry_ms {
            self.expiring.insert((at, id));
        }
        self.available_bytes += stored.size_bytes;
        self.available.insert(stored.level(), id.0, stored);
    }

    /// Takes an available message of any level (off the hot path: expiry).
    fn take_available(&mut self, id: MessageId) -> Option<Stored> {
        let stored = self.available.remove(id.0)?;
        self.took_available(id, stored)
    }

    /// Takes an available message of `level`.
    fn take_available_at(&mut self, level: u8, id: MessageId) -> Option<Stored> {
        let stored = self.available.remove_at(level, id.0)?;
        self.took_available(id, stored)
    }

    fn took_available(&mut self, id: MessageId, stored: Stored) -> Option<Stored> {
        self.available_bytes -= stored.size_bytes;
        if let Some(at) = stored.expiry_ms {
            self.expiring.remove(&(at, id));
        }
        Some(stored)
    }

    /// Removes `consumer`'s delivery of `message` from the in-flight map (one lookup: a
    /// delivery of another consumer is put back).
    fn take_in_flight(
        &mut self,
        consumer: ConsumerId,
        message: MessageId,
    ) -> Result<InFlight, StoreError> {
        let not_in_flight = || StoreError::NotInFlight { consumer, message };
        let flight = self.in_flight.remove(message.0).ok_or_else(not_in_flight)?;
        if flight.consumer != consumer {
            self.in_flight.insert(message.0, flight);
            return Err(not_in_flight());
        }
        Ok(flight)
    }

    fn consumer_index(&self, id: ConsumerId) -> Option<usize> {
        self.consumers.iter().position(|c| c.id == id)
    }

    /// A failed delivery attempt: raise the count, then requeue or dead-letter.
    fn fail_delivery(&mut self, id: MessageId, mut stored: Stored) {
        stored.delivery_count = stored.delivery_count.saturating_add(1);
        let limit_reached = self
            .policy
            .delivery_attempts_max
            .is_some_and(|max| stored.delivery_count >= max);
        if limit_reached {
            self.dead_letter(id, stored, ForwardReason::DeliveryAttemptsExceeded);
        } else {
            if stored.durable {
                let count = stored.delivery_count;
                self.changes.push(Change::DeliveryCount { id, count });
            }
            let delay_ms = self.policy.redelivery_delay_after_ms(stored.delivery_count);
            if delay_ms == 0 {
                self.make_available(id, stored);
            } else {
                let due_ms = self
                    .now_ms
                    .saturating_add(i64::try_from(delay_ms).unwrap_or(i64::MAX));
                self.hold(id, stored, due_ms);
            }
        }
    }

    /// A message leaves the queue for good (acknowledged or dropped).
    fn remove(&mut self, id: MessageId, stored: &Stored) {
        self.bytes -= stored.size_bytes;
        select::leave(&mut self.groups, stored);
        if stored.journaled {
            self.changes.push(Change::Removed { id });
        }
    }

    /// Invariants that bookkeeping could drift from, checked in debug builds (tests, fuzzing,
    /// the model tests): every message stored is counted exactly once in where it went, and
    /// the credit total is the consumers' credit.
    fn debug_check(&self) {
        let c = &self.counters;
        debug_assert_eq!(
            c.enqueued,
            c.acknowledged
                + c.dead_lettered
                + c.expired
                + c.dropped
                + c.moved
                + self.depth() as u64,
            "a message was lost or counted twice"
        );
        debug_assert_eq!(
            self.credit_total,
            self.consumers
                .iter()
                .map(|c| u64::from(c.credit))
                .sum::<u64>(),
            "the credit total drifted from the consumers' credit"
        );
        debug_assert!(
            self.depth() > 0 || self.bytes == 0,
            "an empty queue still charges {} bytes",
            self.bytes
        );
    }

    fn expire(&mut self, id: MessageId, stored: Stored) {
        if self.policy.expiry_target {
            self.counters.expired += 1;
            self.forward(id, stored, ForwardReason::Expired);
        } else {
            self.counters.dropped += 1;
            self.remove(id, &stored);
        }
    }

    fn dead_letter(&mut self, id: MessageId, stored: Stored, reason: ForwardReason) {
        if self.policy.dead_letter_target {
            self.counters.dead_lettered += 1;
            self.forward(id, stored, reason);
        } else {
            self.counters.dropped += 1;
            self.remove(id, &stored);
        }
    }

    fn forward(&mut self, id: MessageId, mut stored: Stored, reason: ForwardReason) {
        self.bytes -= stored.size_bytes;
        select::leave(&mut self.groups, &stored);
        let payload = stored.payload();
        self.forwards.push_back(Forward {
            id,
            reason,
            payload,
            journaled: stored.journaled,
        });
    }
}

mod available;
mod browse;
mod consumers;
mod dispatch;
mod held;
mod paged;
mod priority;
mod report;
mod select;
mod take;

pub use paged::PAGE_IN_BYTES_MAX;
#[cfg(test)]
mod browse_tests;
#[cfg(test)]
mod held_tests;
#[cfg(test)]
mod priority_tests;
#[cfg(test)]
mod select_tests;
#[cfg(test)]
mod tests;
