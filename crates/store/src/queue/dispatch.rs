//! Dispatch: handing available messages to consumers with credit.
//!
//! Levels are walked highest priority first (see [`super::priority`]); within a level, oldest
//! first; consumers round robin by credit, never one that refused a message with
//! `undeliverable-here`.

use super::{Consumer, ConsumerId, Delivery, InFlight, MessageId, Queue};

impl Queue {
    /// Hands available messages, oldest first, to consumers with credit, round robin; each
    /// message to one consumer, never to one that refused it with `undeliverable-here`.
    /// Expired messages met on the way leave the queue (see [`Queue::poll_forward`]).
    pub fn next_deliveries(&mut self, now_ms: i64) -> Vec<Delivery> {
        if self.next_due_ms().is_some_and(|due| due <= now_ms) {
            self.release_due(now_ms);
        }
        self.saw(now_ms);
        let mut deliveries = Vec::new();
        let mut level = self.available.highest();
        let mut from = MessageId(0);
        while self.credit_total > 0 {
            let Some(at) = level else {
                break;
            };
            let Some((id, stored)) = self.available.first_from(at, from.0) else {
                // This level is spent (or refused): the next lower one, from its oldest.
                level = self.available.next_below(at);
                from = MessageId(0);
                continue;
            };
            let id = MessageId(id);
            from = MessageId(id.0.saturating_add(1));
            let expired = stored.is_expired(now_ms);
            let consumer = if expired {
                None
            } else {
                match pick_consumer(
                    &mut self.consumers,
                    &mut self.next_consumer,
                    &stored.refused_by,
                ) {
                    Some(consumer) => {
                        self.credit_total -= 1;
                        Some(consumer)
                    }
                    // Every consumer with credit refused it: leave it for another.
                    None => continue,
                }
            };
            let Some(mut stored) = self.take_available_at(at, id) else {
                break;
            };
            let Some(consumer) = consumer else {
                self.expire(id, stored);
                continue;
            };
            let payload = stored.payload();
            let first = !stored.acquired_before;
            stored.acquired_before = true;
            self.in_flight.insert(
                id.0,
                InFlight {
                    stored,
                    consumer,
                    first,
                },
            );
            self.counters.delivered += 1;
            deliveries.push(Delivery {
                consumer,
                message: id,
                payload,
            });
        }
        self.debug_check();
        deliveries
    }
}

/// The next consumer, round robin from `cursor`, with credit and not in `refused_by`; takes one
/// credit from it and moves the cursor past it.
fn pick_consumer(
    consumers: &mut [Consumer],
    cursor: &mut usize,
    refused_by: &[ConsumerId],
) -> Option<ConsumerId> {
    let count = consumers.len();
    for step in 0..count {
        let index = (*cursor + step) % count;
        let Some(consumer) = consumers.get_mut(index) else {
            continue;
        };
        if consumer.credit > 0 && !refused_by.contains(&consumer.id) {
            consumer.credit -= 1;
            *cursor = (index + 1) % count;
            return Some(consumer.id);
        }
    }
    None
}
