//! A topic's private subscriptions: one log of the topic's messages that every subscriber
//! reads with its own cursor, so a message is held once however many subscribers it has (a
//! reference count per entry, not a queue entry per subscriber), and a publish costs the same
//! for one subscriber as for thousands. What a subscriber holds of its own is only what it has
//! been handed and not settled, and what it released to be handed again.
//!
//! ```text
//!   base                                                       end
//!    | entry | entry | entry | entry | entry | entry | entry |
//!                ^ cursor of a slow subscriber      ^ cursor of a fast one
//! ```
//!
//! The log is the topic's buffer for its slowest subscriber, bounded by the topic's budget
//! (messages and bytes). An entry leaves from the front once every subscriber's cursor is past
//! it and nobody holds it; a cursor moves past what its filter does not match without credit,
//! so a subscriber only holds back what it wants. When the log is full the topic holds its
//! publishers back through their credit (Artemis's `BLOCK`).
//!
//! Private subscriptions are not durable (they die with their link): nothing here is journaled.
//! A rejected message, or one past the topic's delivery attempts, is dropped for that
//! subscriber; one settled `modified` with `undeliverable-here` too, since the subscriber is the
//! only consumer of its subscription.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use bytes::Bytes;
use sluice_codec::Encode;
use sluice_codec::messaging::{Header, ScannedMessage};
use sluice_store::{MessageId, Outcome, QueuePolicy, expiry_instant_ms};

use super::command::{Filter, ToConn};
use super::ids::LinkKey;
use super::outbox::Outbox;

/// Most private subscribers one topic serves.
pub(crate) const SUBSCRIBERS_MAX: usize = 10_000;

/// A subscriber of a topic's log.
pub(crate) type SubscriberId = u32;

/// One message of the log.
#[derive(Debug)]
struct Entry {
    message: Box<ScannedMessage>,
    /// The name it was published under (`None`: the topic's own address).
    name: Option<Arc<str>>,
    expiry_ms: Option<i64>,
    /// Subscribers holding it: handed to them and unsettled, or waiting to be handed again.
    holders: u32,
    /// When it was published (ms since the epoch).
    arrived_ms: i64,
}

impl Entry {
    fn is_expired(&self, now_ms: i64) -> bool {
        self.expiry_ms.is_some_and(|at| at <= now_ms)
    }
}

/// A subscriber's hold on one entry.
#[derive(Debug, Clone, Copy)]
struct Hold {
    /// Failed delivery attempts so far.
    delivery_count: u32,
    /// Whether it was handed out before (then its header says `first-acquirer` false).
    acquired_before: bool,
}

#[derive(Debug)]
struct Subscriber {
    key: LinkKey,
    filter: Filter,
    /// The first entry it has not looked at.
    cursor: u64,
    credit: u32,
    drain: bool,
    /// Handed out and not settled, by entry.
    in_flight: FxHashMap<u64, Hold>,
    /// To be handed out again, oldest first.
    again: BTreeMap<u64, Hold>,
}

/// The log and its subscribers.
#[derive(Debug)]
pub(crate) struct Fanout {
    entries: VecDeque<Entry>,
    /// The sequence number of the first entry.
    base: u64,
    bytes: usize,
    policy: QueuePolicy,
    subscribers: Vec<Option<Subscriber>>,
    count: usize,
    /// Holds of all subscribers together, which the entries' holders must sum to.
    holds: u64,
}

/// Why a subscriber's settlement names nothing it holds: the broker's own bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the subscriber holds no such delivery")]
pub(crate) struct NotHeld;

impl Fanout {
    /// An empty log with the topic's budget, TTL clamp and delivery attempts.
    pub(crate) fn new(policy: QueuePolicy) -> Self {
        Fanout {
            entries: VecDeque::new(),
            base: 0,
            bytes: 0,
            policy,
            subscribers: Vec::new(),
            count: 0,
            holds: 0,
        }
    }

    fn end(&self) -> u64 {
        self.base + self.entries.len() as u64
    }

    pub(crate) fn has_subscribers(&self) -> bool {
        self.count > 0
    }

    /// Whether a message of `size` bytes fits the budget now.
    pub(crate) fn has_room(&self, size: usize) -> bool {
        self.entries.len() < self.policy.messages_max
            && self.bytes.saturating_add(size) <= self.policy.bytes_max
    }

    /// The most bytes the log holds: a message above it can never be placed.
    pub(crate) fn bytes_max(&self) -> usize {
        self.policy.bytes_max
    }

    /// Adds a message published under `name` at `now_ms`, for the subscribers there are now.
    pub(crate) fn append(
        &mut self,
        message: Box<ScannedMessage>,
        name: Option<Arc<str>>,
        now_ms: i64,
    ) {
        let ttl = message.header.as_ref().and_then(|h| h.ttl);
        let absolute = message.absolute_expiry_time().map(|t| t.0);
        let expiry_ms = expiry_instant_ms(now_ms, ttl, absolute, self.policy.ttl);
        self.bytes += message.raw().len();
        self.entries.push_back(Entry {
            message,
            name,
            expiry_ms,
            holders: 0,
            arrived_ms: now_ms,
        });
    }

    /// A subscriber from now on: it sees what is appended after this.
    pub(crate) fn subscribe(&mut self, key: LinkKey, filter: Filter) -> Option<SubscriberId> {
        if self.count >= SUBSCRIBERS_MAX {
            return None;
        }
        let subscriber = Subscriber {
            key,
            filter,
            cursor: self.end(),
            credit: 0,
            drain: false,
            in_flight: FxHashMap::default(),
            again: BTreeMap::new(),
        };
        self.count += 1;
        if let Some(free) = self.subscribers.iter().position(Option::is_none)
            && let Some(slot) = self.subscribers.get_mut(free)
        {
            *slot = Some(subscriber);
            return Some(free as SubscriberId);
        }
        self.subscribers.push(Some(subscriber));
        Some((self.subscribers.len() - 1) as SubscriberId)
    }

    /// The subscriber leaves with everything it holds.
    pub(crate) fn unsubscribe(&mut self, id: SubscriberId) {
        let Some(sub) = self.subscribers.get_mut(id as usize).and_then(Option::take) else {
            return;
        };
        self.count -= 1;
        for seq in sub.in_flight.keys().chain(sub.again.keys()) {
            release_hold(&mut self.entries, self.base, &mut self.holds, *seq);
        }
        self.debug_check();
    }

    pub(crate) fn credit(&mut self, id: SubscriberId, credit: u32, drain: bool) {
        if let Some(sub) = self.subscriber_mut(id) {
            sub.credit = credit;
            sub.drain = drain;
        }
    }

    fn subscriber_mut(&mut self, id: SubscriberId) -> Option<&mut Subscriber> {
        self.subscribers
            .get_mut(id as usize)
            .and_then(Option::as_mut)
    }

    /// A subscriber's outcome for an entry it was handed.
    pub(crate) fn settle(
        &mut self,
        id: SubscriberId,
        message: MessageId,
        outcome: Outcome,
    ) -> Result<(), NotHeld> {
        let attempts_max = self.policy.delivery_attempts_max;
        let seq = message.0;
        let sub = self
            .subscribers
            .get_mut(id as usize)
            .and_then(Option::as_mut)
            .ok_or(NotHeld)?;
        let mut hold = sub.in_flight.remove(&seq).ok_or(NotHeld)?;
        hold.acquired_before = true;
        let again = match outcome {
            Outcome::Accepted | Outcome::Rejected => false,
            Outcome::Released => true,
            Outcome::Modified {
                undeliverable_here: true,
                ..
            } => false,
            Outcome::Modified {
                delivery_failed, ..
            } => {
                if delivery_failed {
                    hold.delivery_count = hold.delivery_count.saturating_add(1);
                }
                attempts_max.is_none_or(|max| hold.delivery_count < max)
            }
        };
        if again {
            sub.again.insert(seq, hold);
        } else {
            release_hold(&mut self.entries, self.base, &mut self.holds, seq);
        }
        self.debug_check();
        Ok(())
    }

    /// An entry the subscriber's connection could not send: handed out again as if never
    /// handed out.
    pub(crate) fn unsend(&mut self, id: SubscriberId, message: MessageId) -> Result<(), NotHeld> {
        let sub = self.subscriber_mut(id).ok_or(NotHeld)?;
        let hold = sub.in_flight.remove(&message.0).ok_or(NotHeld)?;
        sub.again.insert(message.0, hold);
        Ok(())
    }

    /// Hands every subscriber with credit what it may have, oldest first (what it gets again
    /// before what it has not seen); answers finished drains.
    pub(crate) fn dispatch(&mut self, topic: &str, now_ms: i64, out: &mut Outbox) {
        let (entries, base) = (&mut self.entries, self.base);
        for sub in self.subscribers.iter_mut().flatten() {
            if sub.credit == 0 {
                continue;
            }
            hand_again(sub, entries, base, &mut self.holds, now_ms, out);
            hand_new(sub, entries, base, &mut self.holds, topic, now_ms, out);
            if sub.drain
                && sub.credit > 0
                && sub.again.is_empty()
                && sub.cursor >= base + entries.len() as u64
            {
                sub.credit = 0;
                sub.drain = false;
                out.push(sub.key.0, ToConn::Drained { link: sub.key.1 });
            }
        }
        self.debug_check();
    }

    /// Drops entries from the front that nobody needs any more: every cursor is past them (a
    /// cursor moves past what its filter does not match, or what expired), and nobody holds
    /// them. An expired entry nobody holds goes even if a cursor is behind it.
    pub(crate) fn trim(&mut self, topic: &str, now_ms: i64) {
        let end = self.end();
        let mut low = end;
        for sub in self.subscribers.iter_mut().flatten() {
            skip_unwanted(sub, &self.entries, self.base, topic, now_ms);
            low = low.min(sub.cursor);
        }
        while let Some(front) = self.entries.front() {
            let passed = self.base < low;
            if front.holders > 0 || !(passed || front.is_expired(now_ms)) {
                break;
            }
            self.bytes -= front.message.raw().len();
            self.entries.pop_front();
            self.base += 1;
        }
        self.debug_check();
    }

    /// Bytes the log holds (for tests and metrics).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Entries the log holds.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// When the oldest entry was published.
    pub(crate) fn oldest_ms(&self) -> Option<i64> {
        self.entries.front().map(|e| e.arrived_ms)
    }

    /// The bookkeeping every change must keep, checked in debug builds (tests, fuzzing).
    fn debug_check(&self) {
        debug_assert_eq!(
            self.holds,
            self.subscribers
                .iter()
                .flatten()
                .map(|s| (s.in_flight.len() + s.again.len()) as u64)
                .sum::<u64>(),
            "subscribers' holds drifted from the log's count"
        );
        debug_assert!(
            !self.entries.is_empty() || self.bytes == 0,
            "an empty log still counts {} bytes",
            self.bytes
        );
        debug_assert_eq!(
            self.count,
            self.subscribers.iter().flatten().count(),
            "the subscriber count drifted"
        );
    }
}

fn entry_mut(entries: &mut VecDeque<Entry>, base: u64, seq: u64) -> Option<&mut Entry> {
    let index = usize::try_from(seq.checked_sub(base)?).ok()?;
    entries.get_mut(index)
}

fn release_hold(entries: &mut VecDeque<Entry>, base: u64, holds: &mut u64, seq: u64) {
    *holds -= 1;
    if let Some(entry) = entry_mut(entries, base, seq) {
        entry.holders = entry.holders.saturating_sub(1);
    }
}

/// The entry as it goes out: the bytes it arrived in on its first acquisition; after that a
/// fresh header (`delivery-count`, `first-acquirer` false) in front of the untouched bare
/// message.
fn payload(entry: &Entry, hold: Hold) -> Bytes {
    if !hold.acquired_before {
        return entry.message.raw().clone();
    }
    let mut message = entry.message.clone();
    let header = message.header.get_or_insert_with(Header::default);
    header.delivery_count = hold.delivery_count;
    header.first_acquirer = false;
    message.to_bytes().freeze()
}

fn deliver(sub: &mut Subscriber, seq: u64, payload: Bytes, hold: Hold, out: &mut Outbox) {
    sub.credit -= 1;
    sub.in_flight.insert(seq, hold);
    out.push(
        sub.key.0,
        ToConn::Deliver {
            link: sub.key.1,
            message: MessageId(seq),
            payload,
            settled: false,
        },
    );
}

/// What the subscriber released or failed goes out again first; what expired meanwhile is
/// dropped.
fn hand_again(
    sub: &mut Subscriber,
    entries: &mut VecDeque<Entry>,
    base: u64,
    holds: &mut u64,
    now_ms: i64,
    out: &mut Outbox,
) {
    while sub.credit > 0 {
        let Some((seq, hold)) = sub.again.pop_first() else {
            return;
        };
        let live = entry_mut(entries, base, seq).filter(|e| !e.is_expired(now_ms));
        match live {
            Some(entry) => {
                let bytes = payload(entry, hold);
                deliver(sub, seq, bytes, hold, out);
            }
            None => release_hold(entries, base, holds, seq),
        }
    }
}

/// What the subscriber has not seen yet, from its cursor, skipping what its filter does not
/// match and what expired.
fn hand_new(
    sub: &mut Subscriber,
    entries: &mut VecDeque<Entry>,
    base: u64,
    holds: &mut u64,
    topic: &str,
    now_ms: i64,
    out: &mut Outbox,
) {
    sub.cursor = sub.cursor.max(base);
    while sub.credit > 0 {
        let seq = sub.cursor;
        let Some(entry) = entry_mut(entries, base, seq) else {
            return;
        };
        sub.cursor += 1;
        if entry.is_expired(now_ms) || !sub.filter.matches(entry.name.as_deref(), topic) {
            continue;
        }
        entry.holders += 1;
        *holds += 1;
        let hold = Hold {
            delivery_count: 0,
            acquired_before: false,
        };
        let bytes = payload(entry, hold);
        deliver(sub, seq, bytes, hold, out);
    }
}

/// Moves a cursor past entries the subscriber would never be handed, without credit.
fn skip_unwanted(
    sub: &mut Subscriber,
    entries: &VecDeque<Entry>,
    base: u64,
    topic: &str,
    now_ms: i64,
) {
    sub.cursor = sub.cursor.max(base);
    let start = usize::try_from(sub.cursor - base).unwrap_or(usize::MAX);
    for entry in entries.iter().skip(start) {
        if !entry.is_expired(now_ms) && sub.filter.matches(entry.name.as_deref(), topic) {
            return;
        }
        sub.cursor += 1;
    }
}
