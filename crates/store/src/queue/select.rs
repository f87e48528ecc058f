//! Which consumer may take a message: consumer filters (selectors) and message groups.
//!
//! A filtered consumer ([`ConsumerOptions::filter`]) is handed only the messages its
//! [`MessageFilter`] matches; the others stay, in order, for other consumers. Messages with
//! the same `group-id` go to one consumer at a time, in order: a group is assigned to a
//! consumer when its first message is dispatched and stays with it while the queue holds any
//! message of the group (available, held or in flight); when none is held, or the consumer
//! goes, the assignment ends. A group's messages wait while its consumer has no credit; later
//! messages of other groups still flow. The group table has an entry only for groups with a
//! message held in memory, so it is bounded by the queue's depth. Paged messages join their
//! group when read back, in arrival order, so a group's order holds across paging; priority
//! still orders a group's messages among themselves (a higher one of a group goes first).
//! A group's messages go only to its consumer: one its filter refuses waits until the group
//! ends or the consumer leaves (the group keeps to one consumer rather than to the filters).
//!
//! Cost: a queue with no filtered consumer and no group takes the plain round-robin path of
//! [`pick_consumer`]. Otherwise a message is tested against the consumers with credit once
//! per walk that reaches it, and a walk passes at most [`DISPATCH_SKIPS_MAX`] messages no
//! consumer can take; it then stops, and the next call of
//! [`Queue::next_deliveries`](super::Queue::next_deliveries) resumes after them (see
//! [`Queue::dispatch_pending`](super::Queue::dispatch_pending)), so one call never walks a
//! queue full of messages nobody matches.

use std::collections::HashMap;
use std::sync::Arc;

use sluice_codec::messaging::ScannedMessage;

use super::{Consumer, ConsumerId, Stored};

/// The most messages one dispatch walk passes without handing them out (no consumer with
/// credit matches, their group's consumer has none, or every consumer refused them).
pub const DISPATCH_SKIPS_MAX: usize = 1024;

/// A consumer's selector: which messages it takes. Evaluated by the store during dispatch,
/// so it must be cheap and must not block.
pub trait MessageFilter: Send + Sync + std::fmt::Debug {
    /// Whether the consumer takes `message`.
    fn matches(&self, message: &ScannedMessage) -> bool;
}

/// How a consumer takes messages. `Default` is a plain competing consumer.
#[derive(Debug, Clone, Default)]
pub struct ConsumerOptions {
    /// Only messages this matches are handed to the consumer.
    pub filter: Option<Arc<dyn MessageFilter>>,
    /// A browser: sees copies of the messages without taking them (see [`super::browse`]).
    pub browse: bool,
}

/// A message group with messages held.
#[derive(Debug)]
pub(super) struct Group {
    /// Who has it, once its first message was dispatched.
    pub(super) consumer: Option<ConsumerId>,
    /// Its messages held in memory (available, held or in flight).
    pub(super) held: usize,
    /// How many of them wait for a due time (a redelivery delay, a schedule): while any does,
    /// none of the group is dispatched, so the group's order holds.
    pub(super) waiting: usize,
}

pub(super) type Groups = HashMap<Box<str>, Group>;

/// A message joins its group's count (it is now held in memory).
pub(super) fn join(groups: &mut Groups, stored: &Stored) {
    if let Some(id) = stored.message.group_id() {
        match groups.get_mut(id) {
            Some(group) => group.held += 1,
            None => {
                groups.insert(
                    id.into(),
                    Group {
                        consumer: None,
                        held: 1,
                        waiting: 0,
                    },
                );
            }
        }
    }
}

/// A message leaves the queue: its group ends when it was the last one held.
pub(super) fn leave(groups: &mut Groups, stored: &Stored) {
    if let Some(id) = stored.message.group_id()
        && let Some(group) = groups.get_mut(id)
    {
        group.held = group.held.saturating_sub(1);
        if group.held == 0 {
            groups.remove(id);
        }
    }
}

/// A message of a group starts or stops waiting for its due time.
pub(super) fn wait(groups: &mut Groups, stored: &Stored, starts: bool) {
    if let Some(group) = stored.message.group_id().and_then(|id| groups.get_mut(id)) {
        group.waiting = if starts {
            group.waiting + 1
        } else {
            group.waiting.saturating_sub(1)
        };
    }
}

/// The groups a dispatch walk passed a message of: their later messages wait too, so a group
/// leaves in order. Allocated only when a grouped message is passed.
#[derive(Debug, Default)]
pub(super) struct Passed(Vec<Box<str>>);

impl Passed {
    /// Whether `stored`'s group had a message passed in this walk.
    pub(super) fn blocks(&self, stored: &Stored) -> bool {
        !self.0.is_empty()
            && stored
                .message
                .group_id()
                .is_some_and(|g| self.0.iter().any(|p| &**p == g))
    }

    /// `stored` was passed: later messages of its group wait.
    pub(super) fn pass(&mut self, stored: &Stored) {
        if let Some(g) = stored.message.group_id()
            && !self.0.iter().any(|p| &**p == g)
        {
            self.0.push(g.into());
        }
    }
}

/// The consumer for `stored` where filters or groups are in play: its group's consumer if it
/// has one (with credit, or none), otherwise the next matching one round robin, which then
/// has the group. Takes one credit from it.
pub(super) fn pick_selective(
    consumers: &mut [Consumer],
    cursor: &mut usize,
    groups: &mut Groups,
    stored: &Stored,
) -> Option<ConsumerId> {
    let group = stored.message.group_id().and_then(|id| groups.get_mut(id));
    let takes = |c: &Consumer| {
        c.credit > 0
            && !stored.refused_by.contains(&c.id)
            && c.filter.as_ref().is_none_or(|f| f.matches(&stored.message))
    };
    if group.as_ref().is_some_and(|g| g.waiting > 0) {
        return None;
    }
    if let Some(owner) = group.as_ref().and_then(|g| g.consumer) {
        let consumer = consumers.iter_mut().find(|c| c.id == owner)?;
        if !takes(consumer) {
            return None;
        }
        consumer.credit -= 1;
        return Some(owner);
    }
    let count = consumers.len();
    for step in 0..count {
        let index = (*cursor + step) % count;
        let Some(consumer) = consumers.get_mut(index) else {
            continue;
        };
        if takes(consumer) {
            consumer.credit -= 1;
            *cursor = (index + 1) % count;
            if let Some(group) = group {
                group.consumer = Some(consumer.id);
            }
            return Some(consumer.id);
        }
    }
    None
}
