//! Paging: a queue past its memory budget keeps new messages' bodies in the journal and only a
//! small reference in memory, and reads them back, oldest first, as its consumers come to them.
//!
//! The paged messages are always the queue's newest: once one message is paged, every later
//! one is too until the tail has been read back, so a queue is its messages in memory (in id
//! order) followed by its paged references (in id order), and reading back never reorders.
//! The broker carries the reads out: [`Queue::poll_page_in`] names the messages to read,
//! [`Queue::page_in`] takes them back. At most one read is outstanding per queue, and it is
//! asked for only while consumers have credit and little is available in memory, so what a
//! queue reads back is bounded by [`PAGE_IN_BYTES_MAX`] ahead of its consumers.

use sluice_codec::messaging::ScannedMessage;

use super::{MessageId, Queue, Stored};
use crate::change::Change;
use crate::policy::expiry_instant_ms;

/// The most bytes one page-in read brings back, and the least available in memory below
/// which the next read is asked for: enough for a few milliseconds of a fast consumer.
pub const PAGE_IN_BYTES_MAX: usize = 4 << 20;
/// The most messages one page-in read brings back.
const PAGE_IN_MESSAGES_MAX: usize = 4096;

/// A message whose body is on disk only.
#[derive(Debug, Clone, Copy)]
pub(super) struct PagedRef {
    pub(super) id: MessageId,
    pub(super) size: u32,
    /// `None` for a message recovered from the journal: its expiry is read from its header
    /// when it comes back, counted from then (as [`Queue::restore`] counts from the restart).
    pub(super) expiry_ms: Option<i64>,
    recovered: bool,
    delivery_count: u32,
    pub(super) durable: bool,
    /// When it arrived, in seconds since the epoch (it fits the struct's padding).
    pub(super) arrived_s: u32,
}

impl Queue {
    /// Whether a new message of `size` bytes is paged rather than held in memory.
    pub(super) fn pages(&self, size: usize) -> bool {
        self.policy.paging
            && (!self.paged.is_empty()
                || self.memory_pressure
                || self.memory_bytes().saturating_add(size) > self.policy.memory_max)
    }

    /// Logs a new message for the journal and keeps only its reference.
    pub(super) fn page_out(
        &mut self,
        id: MessageId,
        message: &ScannedMessage,
        expiry_ms: Option<i64>,
        delivery_count: u32,
        durable: bool,
        now_ms: i64,
    ) {
        let payload = message.raw().clone();
        let size = payload.len();
        self.changes.push(if durable {
            Change::Stored { id, payload }
        } else {
            Change::Paged { id, payload }
        });
        self.paged.push_back(PagedRef {
            id,
            size: u32::try_from(size).unwrap_or(u32::MAX),
            expiry_ms,
            recovered: false,
            delivery_count,
            durable,
            arrived_s: seconds(now_ms),
        });
        self.paged_bytes += size;
    }

    /// Tells the queue whether the broker is over its memory budget: while it is, a queue
    /// that may page pages every new message.
    pub fn set_memory_pressure(&mut self, over: bool) {
        self.memory_pressure = over;
    }

    /// Messages whose bodies are on disk only.
    pub fn paged(&self) -> usize {
        self.paged.len()
    }

    /// The messages to read back from the journal now, oldest first, if any: asked for when
    /// consumers have credit, little is available in memory and no read is outstanding. The
    /// broker reads them (after the journal has written them) and hands them to
    /// [`Queue::page_in`].
    pub fn poll_page_in(&mut self) -> Option<Vec<MessageId>> {
        let low = PAGE_IN_BYTES_MAX.min(self.policy.memory_max / 2);
        if self.reading.is_some()
            || self.paged.is_empty()
            || self.credit_total == 0
            || self.available_bytes >= low
        {
            return None;
        }
        let budget = PAGE_IN_BYTES_MAX.min(self.policy.memory_max / 4);
        let mut bytes = 0usize;
        let ids: Vec<MessageId> = self
            .paged
            .iter()
            .take(PAGE_IN_MESSAGES_MAX)
            .take_while(|r| {
                let first = bytes == 0;
                bytes = bytes.saturating_add(r.size as usize);
                first || bytes <= budget
            })
            .map(|r| r.id)
            .collect();
        self.reading = ids.last().copied();
        Some(ids)
    }

    /// Takes back what a page-in read found, in id order: `None` for a message that was read
    /// but no longer decodes. A message asked for and not found, or not decoding, is gone
    /// (counted as dropped; the broker logs it). Expired ones leave as they would have in
    /// memory.
    pub fn page_in(
        &mut self,
        found: impl IntoIterator<Item = (MessageId, Option<Box<ScannedMessage>>)>,
        now_ms: i64,
    ) {
        let Some(upto) = self.reading.take() else {
            return;
        };
        for (id, message) in found {
            while self.paged.front().is_some_and(|r| r.id < id) {
                self.drop_paged_front();
            }
            if self.paged.front().is_none_or(|r| r.id != id) {
                continue;
            }
            let Some(r) = self.paged.pop_front() else {
                break;
            };
            self.paged_bytes -= r.size as usize;
            let Some(message) = message else {
                self.counters.dropped += 1;
                self.bytes -= r.size as usize;
                self.changes.push(Change::Removed { id });
                continue;
            };
            let expiry_ms = if r.recovered {
                let ttl_ms = message.header.as_ref().and_then(|h| h.ttl);
                let absolute_ms = message.absolute_expiry_time().map(|t| t.0);
                expiry_instant_ms(now_ms, ttl_ms, absolute_ms, self.policy.ttl)
            } else {
                r.expiry_ms
            };
            let stored = Stored {
                message,
                size_bytes: r.size as usize,
                expiry_ms,
                delivery_count: r.delivery_count,
                acquired_before: r.recovered && r.delivery_count > 0,
                refused_by: Vec::new(),
                durable: r.durable,
                journaled: true,
                arrived_ms: i64::from(r.arrived_s) * 1000,
            };
            super::select::join(&mut self.groups, &stored);
            if stored.is_expired(now_ms) {
                self.expire(id, stored);
            } else {
                self.make_available(id, stored);
            }
        }
        while self.paged.front().is_some_and(|r| r.id <= upto) {
            self.drop_paged_front();
        }
        self.debug_check();
    }

    /// Drops the oldest paged message, if any (it was lost, or dropped to make room).
    pub(super) fn drop_paged_front(&mut self) -> bool {
        let Some(r) = self.paged.pop_front() else {
            return false;
        };
        self.paged_bytes -= r.size as usize;
        self.bytes -= r.size as usize;
        self.counters.dropped += 1;
        self.changes.push(Change::Removed { id: r.id });
        true
    }

    /// Puts back a durable message the journal kept and left on disk at recovery (see
    /// [`Queue::restore`]): only its reference, after every restored message.
    pub fn restore_paged(&mut self, id: MessageId, size: u32, delivery_count: u32, now_ms: i64) {
        self.next_id = self.next_id.max(id.0.saturating_add(1));
        self.paged.push_back(PagedRef {
            id,
            size,
            expiry_ms: None,
            recovered: true,
            delivery_count,
            durable: true,
            arrived_s: seconds(now_ms),
        });
        self.paged_bytes += size as usize;
        self.bytes += size as usize;
        self.counters.enqueued += 1;
        self.debug_check();
    }
}

#[cfg(test)]
mod tests;

/// Milliseconds since the epoch as whole seconds in a `u32` (enough until 2106).
fn seconds(ms: i64) -> u32 {
    u32::try_from(ms.max(0) / 1000).unwrap_or(u32::MAX)
}
