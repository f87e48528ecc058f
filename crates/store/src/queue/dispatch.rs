//! Dispatch: handing available messages to consumers with credit.
//!
//! Levels are walked highest priority first (see [`super::priority`]); within a level, oldest
//! first; consumers round robin by credit, never one that refused a message with
//! `undeliverable-here`.

use super::{
    Consumer, ConsumerId, DISPATCH_SKIPS_MAX, Delivery, InFlight, MessageId, Queue, select,
};

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
        // Resume where the last walk stopped at its limit, else start at the top.
        let (mut level, mut from) = match self.resume.take() {
            Some((level, from)) => (Some(level), MessageId(from)),
            None => (self.available.highest(), MessageId(0)),
        };
        let selective = self.filtered > 0 || !self.groups.is_empty();
        let mut skipped = 0usize;
        let mut passed = select::Passed::default();
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
                let picked = if selective && passed.blocks(stored) {
                    None
                } else if selective {
                    select::pick_selective(
                        &mut self.consumers,
                        &mut self.next_consumer,
                        &mut self.groups,
                        stored,
                    )
                } else {
                    pick_consumer(
                        &mut self.consumers,
                        &mut self.next_consumer,
                        &stored.refused_by,
                    )
                };
                match picked {
                    Some(consumer) => {
                        self.credit_total -= 1;
                        Some(consumer)
                    }
                    // No consumer with credit may take it: leave it for another, and stop
                    // after a bounded walk, to resume here on the next call.
                    None => {
                        if selective {
                            passed.pass(stored);
                        }
                        skipped += 1;
                        if skipped >= DISPATCH_SKIPS_MAX {
                            self.resume = Some((at, from.0));
                            break;
                        }
                        continue;
                    }
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

    /// Whether the last [`Queue::next_deliveries`] stopped after passing
    /// [`DISPATCH_SKIPS_MAX`] messages no consumer with credit could take: the broker calls it
    /// again (after other work) to go on from there.
    pub fn dispatch_pending(&self) -> bool {
        self.resume.is_some() && self.credit_total > 0
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
