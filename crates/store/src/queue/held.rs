//! Held messages: those not to be offered before a due time, by that time.
//!
//! Two features share this: scheduled delivery (message annotation `x-opt-delivery-time`, a
//! timestamp or long in ms since the epoch, or `x-opt-delivery-delay`, a long in ms after
//! arrival, as Artemis and Azure Service Bus read them; the time wins if both are set), and
//! the redelivery delay of [`QueuePolicy`](crate::QueuePolicy) after a failed delivery attempt.
//!
//! A held message is in memory (never paged: the paged messages are the newest, read back in
//! order, and a held one is taken out of that order), counts in the depth and bytes, may expire
//! while held (then it goes to its expiry target as any other), and is neither dispatched nor
//! seen by anyone until due. [`Queue::release_due`] (also run at the start of
//! [`Queue::next_deliveries`]) makes the due ones available at their places, and
//! [`Queue::next_due_ms`] tells the broker's timer when the next is. A restored message
//! ([`Queue::restore`]) applies its annotations again: a delay then counts from the restore,
//! since the journal keeps no arrival time.

use sluice_codec::messaging::ScannedMessage;
use sluice_codec::types::Value;

use super::{MessageId, Queue, Stored, select};

/// When a message is due by its annotations, received at `now_ms`; `None` if not scheduled.
pub(super) fn scheduled_ms(message: &ScannedMessage, now_ms: i64) -> Option<i64> {
    let annotations = message.message_annotations.as_ref()?;
    let mut delay = None;
    for (key, value) in annotations {
        let Value::Symbol(key) = key else {
            continue;
        };
        match (key.as_str(), value) {
            ("x-opt-delivery-time", Value::Timestamp(t)) => return Some(t.0),
            ("x-opt-delivery-time", Value::Long(at)) => return Some(*at),
            ("x-opt-delivery-delay", Value::Long(ms)) => delay = Some(now_ms.saturating_add(*ms)),
            _ => {}
        }
    }
    delay
}

impl Queue {
    /// Holds `stored` until `due_ms`.
    pub(super) fn hold(&mut self, id: MessageId, stored: Stored, due_ms: i64) {
        if let Some(at) = stored.expiry_ms {
            self.held_expiring.insert((at, due_ms, id));
        }
        select::wait(&mut self.groups, &stored, true);
        self.held.insert((due_ms, id), stored);
    }

    /// Makes available every held message due at `now_ms`, at its place; returns how many.
    /// Expired ones leave as they would have if available.
    pub fn release_due(&mut self, now_ms: i64) -> usize {
        self.saw(now_ms);
        let mut released = 0;
        while let Some(entry) = self.held.first_entry() {
            let (due_ms, id) = *entry.key();
            if due_ms > now_ms {
                break;
            }
            let stored = entry.remove();
            select::wait(&mut self.groups, &stored, false);
            if let Some(at) = stored.expiry_ms {
                self.held_expiring.remove(&(at, due_ms, id));
            }
            if stored.is_expired(now_ms) {
                self.expire(id, stored);
            } else {
                self.make_available(id, stored);
            }
            released += 1;
        }
        self.debug_check();
        released
    }

    /// When the next held message is due, if any is: the next time [`Queue::release_due`]
    /// has work.
    pub fn next_due_ms(&self) -> Option<i64> {
        self.held.first_key_value().map(|(&(due, _), _)| due)
    }

    /// The earlier of [`Queue::next_due_ms`] and [`Queue::next_expiry_ms`]: when the broker's
    /// timer for this queue fires next.
    pub fn next_timer_ms(&self) -> Option<i64> {
        match (self.next_due_ms(), self.next_expiry_ms()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The ids of the messages held until a due time, in no particular order.
    pub fn held_ids(&self) -> impl Iterator<Item = MessageId> + '_ {
        self.held.keys().map(|&(_, id)| id)
    }

    /// Messages held until a due time.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Expires the held messages expired at `now_ms`; returns how many.
    pub(super) fn expire_held(&mut self, now_ms: i64) -> usize {
        let mut expired = 0;
        while let Some(&(at, due_ms, id)) = self.held_expiring.first() {
            if at > now_ms {
                break;
            }
            self.held_expiring.remove(&(at, due_ms, id));
            if let Some(stored) = self.held.remove(&(due_ms, id)) {
                select::wait(&mut self.groups, &stored, false);
                self.expire(id, stored);
                expired += 1;
            }
        }
        expired
    }

    /// The earliest expiry of a held message.
    pub(super) fn next_held_expiry_ms(&self) -> Option<i64> {
        self.held_expiring.first().map(|&(at, _, _)| at)
    }

    /// Removes every held message, counted as dropped (a purge); returns how many.
    pub(super) fn purge_held(&mut self) -> usize {
        let held = std::mem::take(&mut self.held);
        self.held_expiring.clear();
        let count = held.len();
        for ((_, id), stored) in held {
            select::wait(&mut self.groups, &stored, false);
            self.counters.dropped += 1;
            self.remove(id, &stored);
        }
        count
    }

    /// Notes the latest time the queue was told of: what a call without `now_ms` (settle,
    /// consumer removal) counts a redelivery delay from.
    pub(super) fn saw(&mut self, now_ms: i64) {
        self.now_ms = self.now_ms.max(now_ms);
    }
}
