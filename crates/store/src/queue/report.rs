//! What a queue reports of itself: sizes, counters and ids, for metrics, the console and tests.

use super::{ConsumerId, MessageId, Queue, QueueCounters, QueueStats};

impl Queue {
    /// What operators see of the queue: its depth, bytes, durable messages and the arrival of
    /// its oldest message. Walks the messages in memory (bounded by the memory budget), so it
    /// is for a scrape, never for the path of a message.
    pub fn stats(&self) -> QueueStats {
        let in_memory = self
            .available
            .iter()
            .map(|(_, s)| s)
            .chain(self.in_flight.iter().map(|(_, f)| &f.stored))
            .chain(self.held.values());
        let mut durable = 0;
        let mut oldest: Option<i64> = None;
        for s in in_memory {
            durable += usize::from(s.durable);
            oldest = Some(oldest.map_or(s.arrived_ms, |o| o.min(s.arrived_ms)));
        }
        // Paged messages are newer than those in memory, and all are in the journal.
        durable += self.paged.iter().filter(|r| r.durable).count();
        let oldest_ms =
            oldest.or_else(|| self.paged.front().map(|r| i64::from(r.arrived_s) * 1000));
        QueueStats {
            depth: self.depth(),
            bytes: self.bytes,
            durable,
            oldest_ms,
        }
    }

    /// Messages held: available (in memory or paged) and in flight.
    pub fn depth(&self) -> usize {
        self.available.len() + self.in_flight.len() + self.paged.len() + self.held.len()
    }

    /// Messages waiting for a consumer, in memory or paged.
    pub fn available(&self) -> usize {
        self.available.len() + self.paged.len()
    }

    /// Messages handed out and not yet settled.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Bytes held, available (in memory or paged) and in flight, as charged against
    /// `bytes_max`.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Bytes of the messages held in memory (what the broker's memory budget counts).
    pub fn memory_bytes(&self) -> usize {
        self.bytes - self.paged_bytes
    }

    /// How many consumers are attached.
    pub fn consumer_count(&self) -> usize {
        self.consumers.len()
    }

    /// The counters.
    pub fn counters(&self) -> &QueueCounters {
        &self.counters
    }

    /// The ids of the available messages in memory, in delivery order: highest priority
    /// first, oldest first within a priority (for tests and browsing).
    pub fn available_ids(&self) -> impl Iterator<Item = MessageId> + '_ {
        self.available.ids().into_iter().map(MessageId)
    }

    /// The ids of a consumer's unsettled deliveries, oldest first.
    pub fn unsettled(&self, consumer: ConsumerId) -> impl Iterator<Item = MessageId> + '_ {
        self.unsettled_of(consumer).into_iter()
    }
}
