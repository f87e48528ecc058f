//! Stored nodes: enqueueing, expiry, dead-letter and expiry forwarding, and the end-of-wake-up
//! pass that hands messages to consumers.

use sluice_codec::messaging::ScannedMessage;
use sluice_codec::transport::{Accepted, DeliveryState, Released, conditions};

use super::{Core, Origin, Receiver, ToConn, mark, not_found, rejected};

impl Core {
    /// A publish to a queue. A full queue holds the publish (and every later one to it, to keep
    /// their order) until a consumer makes room; the publisher's answer waits with it, and so
    /// does its credit, so a queue at its limits slows its publishers instead of refusing them.
    /// Only a message that could never fit is refused.
    pub(super) fn publish_to_queue(
        &mut self,
        origin: Origin,
        queue: &str,
        message: ScannedMessage,
        now: i64,
    ) {
        if let Some(waiting) = self.held.get_mut(queue) {
            waiting.push_back((Some(origin), message));
            return;
        }
        let Some(q) = self.queues.get(queue) else {
            return self.answer(origin, not_found(queue));
        };
        let size = message.raw().len();
        if size > q.policy().bytes_max {
            let why = format!(
                "a message of {size} bytes can never fit queue '{queue}' (at most {} bytes)",
                q.policy().bytes_max
            );
            return self.answer(origin, rejected(conditions::RESOURCE_LIMIT_EXCEEDED, why));
        }
        if !q.has_room(size) {
            self.held
                .entry(queue.to_owned())
                .or_default()
                .push_back((Some(origin), message));
            return;
        }
        let state = self.enqueue(queue, message, now);
        self.answer(origin, state);
    }

    /// Places held messages, oldest first, in the queues that have room again. A publish is
    /// answered then; a dead-lettered or expired message moved from another queue has nobody to
    /// answer. Publishes held for a queue that went (a temporary queue) are released to their
    /// senders.
    pub(super) fn place_held(&mut self, now: i64) {
        if self.held.is_empty() {
            return;
        }
        let queues: Vec<String> = self.held.keys().cloned().collect();
        for queue in queues {
            let Some(mut waiting) = self.held.remove(&queue) else {
                continue;
            };
            while let Some((_, message)) = waiting.front() {
                let Some(q) = self.queues.get_mut(&queue) else {
                    for (origin, _) in waiting.drain(..) {
                        if let Some(origin) = origin {
                            self.out
                                .answer(origin, DeliveryState::Released(Released {}));
                        }
                    }
                    break;
                };
                if !q.has_room(message.raw().len()) {
                    break;
                }
                let Some((origin, message)) = waiting.pop_front() else {
                    break;
                };
                match origin {
                    Some(origin) => {
                        let state = self.enqueue(&queue, message, now);
                        self.out.answer(origin, state);
                    }
                    None => {
                        if q.enqueue_forwarded(message, now).is_ok() {
                            mark(&mut self.dirty_queues, &queue);
                        }
                    }
                }
            }
            if !waiting.is_empty() {
                self.held.insert(queue, waiting);
            }
        }
    }

    pub(super) fn enqueue(
        &mut self,
        queue: &str,
        message: ScannedMessage,
        now: i64,
    ) -> DeliveryState {
        let Some(q) = self.queues.get_mut(queue) else {
            return not_found(queue);
        };
        match q.enqueue(message, now) {
            Ok(_) => {
                mark(&mut self.dirty_queues, queue);
                DeliveryState::Accepted(Accepted {})
            }
            Err(e) => rejected(e.condition(), e.to_string()),
        }
    }

    /// Expires what is due in every queue whose first expiry has come.
    pub(super) fn expire(&mut self, now: i64) {
        let due: Vec<String> = self
            .expiring
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(q, _)| q.clone())
            .collect();
        for queue in due {
            if let Some(q) = self.queues.get_mut(&queue) {
                q.expire_messages(now);
            }
            self.expiring.remove(&queue);
            self.dirty_queues.insert(queue);
        }
    }

    /// The end of a wake-up: topics place what they held back, anycast addresses route and
    /// grant credit, queues move dead-lettered and expired messages to their targets and hand
    /// out what they can, and finished drains are answered.
    pub(super) fn pump(&mut self, now: i64) {
        self.place_held(now);
        let mut topics = std::mem::take(&mut self.dirty_topics);
        topics.extend(self.blocked_topics.iter().cloned());
        for topic in topics {
            self.place_topic(&topic, now);
        }
        for address in std::mem::take(&mut self.dirty_anycast) {
            self.route_anycast(&address);
        }
        // Forwarding marks its targets dirty and dispatch marks a queue dirty again when it
        // expired messages on the way: round after round until nothing moves.
        loop {
            let dirty = std::mem::take(&mut self.dirty_queues);
            if dirty.is_empty() {
                break;
            }
            for queue in &dirty {
                self.forward(queue, now);
            }
            for queue in &dirty {
                self.dispatch(queue, now);
            }
        }
        self.finish_drains();
    }

    pub(super) fn forward(&mut self, queue: &str, now: i64) {
        let Some(q) = self.queues.get_mut(queue) else {
            return;
        };
        let mut forwards = Vec::new();
        while let Some(f) = q.poll_forward() {
            forwards.push(f);
        }
        if forwards.is_empty() {
            return;
        }
        let (dead_letter, expiry) = self.targets.get(queue).cloned().unwrap_or_default();
        for f in forwards {
            let target = if f.reason.is_expiry() {
                &expiry
            } else {
                &dead_letter
            };
            let (Some(target), Ok(scanned)) = (target, ScannedMessage::scan(f.payload)) else {
                continue;
            };
            let Some(t) = self.queues.get_mut(target) else {
                continue;
            };
            // A full target holds it, as a full queue holds a publish: moved, never dropped.
            if self.held.contains_key(target) || !t.has_room(scanned.raw().len()) {
                self.held
                    .entry(target.clone())
                    .or_default()
                    .push_back((None, scanned));
            } else if t.enqueue_forwarded(scanned, now).is_ok() {
                mark(&mut self.dirty_queues, target);
            }
        }
    }

    pub(super) fn dispatch(&mut self, queue: &str, now: i64) {
        let Some(q) = self.queues.get_mut(queue) else {
            return;
        };
        let deliveries = q.next_deliveries(now);
        match q.next_expiry_ms() {
            Some(at) => self.expiring.insert(queue.to_string(), at),
            None => self.expiring.remove(queue),
        };
        if q.has_forwards() {
            mark(&mut self.dirty_queues, queue);
        }
        for d in deliveries {
            if let Some((conn, link)) = self.by_consumer.get(&d.consumer) {
                self.send(
                    *conn,
                    ToConn::Deliver {
                        link: *link,
                        message: d.message,
                        payload: d.payload,
                        settled: false,
                    },
                );
            }
        }
    }

    /// A queue drain ends when the queue has nothing more for the consumer's credit.
    pub(super) fn finish_drains(&mut self) {
        let mut done = Vec::new();
        for key in &self.draining {
            if let Some(Receiver::Queue { queue, id, .. }) = self.receivers.get(key)
                && let Some(q) = self.queues.get_mut(queue)
                && q.available() == 0
            {
                if q.credit(*id).unwrap_or(0) > 0 {
                    let _ = q.set_credit(*id, 0);
                }
                done.push(*key);
            }
        }
        for key in done {
            self.draining.remove(&key);
            self.send(key.0, ToConn::Drained { link: key.1 });
        }
    }
}
