//! Receiving links: attaching one to what it consumes, its credit, its outcomes, and what
//! happens to its deliveries when it goes.

use rustc_hash::FxHashMap;

use bytes::Bytes;
use sluice_codec::transport::{DeliveryState, Error, conditions};
use sluice_store::{ConsumerId, MessageId, Queue, QueuePolicy};

use super::{
    Core, LinkKey, Receiver, SUBSCRIPTION_BUFFER_BYTES, SUBSCRIPTION_BUFFER_MESSAGES, Subscribe,
    ToConn, delivery_failed, mark, outcome_of,
};

impl Core {
    pub(super) fn attach_receiver(&mut self, key: LinkKey, source: Subscribe) -> Result<(), Error> {
        let receiver = match source {
            Subscribe::Queue(queue) => {
                let Some(q) = self.queues.get(&queue) else {
                    return Err(Error::new(
                        conditions::NOT_FOUND,
                        format!("no address '{queue}' in this address space"),
                    ));
                };
                if let Some(&max) = self.max_consumers.get(&queue)
                    && q.consumer_count() >= usize::try_from(max).unwrap_or(usize::MAX)
                {
                    return Err(Error::new(
                        conditions::RESOURCE_LIMIT_EXCEEDED,
                        format!("subscription '{queue}' already has its {max} consumer(s)"),
                    ));
                }
                self.consume(key, queue, false, None)
            }
            Subscribe::Temporary(queue) => {
                self.queues
                    .insert(queue.clone(), Queue::new(QueuePolicy::default()));
                self.consume(key, queue, true, None)
            }
            Subscribe::Topic { topic, filter } => {
                let Some(t) = self.topics.get_mut(&topic) else {
                    return Err(Error::new(
                        conditions::NOT_FOUND,
                        format!("no topic '{topic}'"),
                    ));
                };
                self.next_subscription += 1;
                let queue = format!("_sluice.sub.{}.{}", key.0, self.next_subscription);
                t.subscribe(filter, queue.clone());
                // Temporary subscriptions drop what expires (EnMasse did too) and what is
                // rejected; their size is bounded so a slow receiver holds back, not fills up.
                let policy = QueuePolicy {
                    messages_max: SUBSCRIPTION_BUFFER_MESSAGES,
                    bytes_max: SUBSCRIPTION_BUFFER_BYTES,
                    dead_letter_target: false,
                    expiry_target: false,
                    ..self.topic_policies.get(&topic).copied().unwrap_or_default()
                };
                self.queues.insert(queue.clone(), Queue::new(policy));
                self.consume(key, queue, true, Some(topic))
            }
            Subscribe::Multicast(address) => {
                let Some(receivers) = self.multicast.get_mut(&address) else {
                    return Err(Error::new(
                        conditions::NOT_FOUND,
                        format!("no address '{address}'"),
                    ));
                };
                receivers.push(key);
                Receiver::Multicast { address, credit: 0 }
            }
            Subscribe::Anycast(address) => {
                let Some(a) = self.anycast.get_mut(&address) else {
                    return Err(Error::new(
                        conditions::NOT_FOUND,
                        format!("no address '{address}'"),
                    ));
                };
                a.add_receiver(key);
                Receiver::Anycast {
                    address,
                    credit: 0,
                    drain: false,
                    in_flight: FxHashMap::default(),
                }
            }
        };
        self.links_of.entry(key.0).or_default().insert(key.1);
        self.receivers.insert(key, receiver);
        Ok(())
    }

    pub(super) fn consume(
        &mut self,
        key: LinkKey,
        queue: String,
        owned: bool,
        topic: Option<String>,
    ) -> Receiver {
        let id = ConsumerId(self.next_consumer);
        self.next_consumer += 1;
        if let Some(q) = self.queues.get_mut(&queue) {
            // A fresh id is never a duplicate.
            let _ = q.add_consumer(id);
        }
        self.by_consumer.insert(id, key);
        Receiver::Queue {
            queue,
            id,
            owned,
            topic,
        }
    }

    pub(super) fn credit(&mut self, key: LinkKey, credit: u32, drain: bool) {
        match self.receivers.get_mut(&key) {
            Some(Receiver::Queue { queue, id, .. }) => {
                if let Some(q) = self.queues.get_mut(queue) {
                    let _ = q.set_credit(*id, credit);
                    mark(&mut self.dirty_queues, queue);
                }
                if drain {
                    self.draining.insert(key);
                } else {
                    self.draining.remove(&key);
                }
            }
            Some(Receiver::Multicast { credit: c, .. }) => {
                // Nothing is stored for a multicast receiver: a drain ends at once.
                *c = if drain { 0 } else { credit };
                if drain {
                    self.send(key.0, ToConn::Drained { link: key.1 });
                }
            }
            Some(Receiver::Anycast {
                address,
                credit: c,
                drain: d,
                ..
            }) => {
                *c = credit;
                *d = drain;
                self.dirty_anycast.insert(address.clone());
            }
            None => {}
        }
    }

    pub(super) fn settle(&mut self, key: LinkKey, message: MessageId, state: DeliveryState) {
        match self.receivers.get_mut(&key) {
            Some(Receiver::Queue { queue, id, .. }) => {
                let Some(outcome) = outcome_of(&state) else {
                    return;
                };
                if let Some(q) = self.queues.get_mut(queue) {
                    let _ = q.settle(*id, message, outcome);
                    mark(&mut self.dirty_queues, queue);
                }
            }
            Some(Receiver::Anycast { in_flight, .. }) => {
                // The receiver's outcome, as it gave it, is the sender's.
                if let Some((origin, _)) = in_flight.remove(&message) {
                    self.answer(origin, state);
                }
            }
            _ => {}
        }
    }

    pub(super) fn unsent(&mut self, key: LinkKey, message: MessageId) {
        match self.receivers.get_mut(&key) {
            Some(Receiver::Queue { queue, id, .. }) => {
                if let Some(q) = self.queues.get_mut(queue) {
                    let _ = q.unsend(*id, message);
                    mark(&mut self.dirty_queues, queue);
                }
            }
            Some(Receiver::Anycast {
                address,
                credit,
                in_flight,
                ..
            }) => {
                *credit = 0;
                if let (Some((origin, payload)), Some(a)) = (
                    in_flight.remove(&message),
                    self.anycast.get_mut(address.as_str()),
                ) {
                    a.put_back(origin, payload);
                    self.dirty_anycast.insert(address.clone());
                }
            }
            _ => {}
        }
    }

    pub(super) fn detach(&mut self, key: LinkKey) {
        self.draining.remove(&key);
        match self.receivers.remove(&key) {
            Some(Receiver::Queue {
                queue,
                id,
                owned,
                topic,
            }) => {
                self.by_consumer.remove(&id);
                if owned {
                    self.queues.remove(&queue);
                    self.expiring.remove(&queue);
                    if let Some(t) = topic.and_then(|t| self.topics.get_mut(&t)) {
                        t.unsubscribe(&queue);
                    }
                } else if let Some(q) = self.queues.get_mut(&queue) {
                    let _ = q.remove_consumer(id);
                    self.dirty_queues.insert(queue);
                }
            }
            Some(Receiver::Multicast { address, .. }) => {
                if let Some(receivers) = self.multicast.get_mut(&address) {
                    receivers.retain(|k| *k != key);
                }
            }
            Some(Receiver::Anycast {
                address, in_flight, ..
            }) => {
                // It may have processed them: the senders learn the attempt failed.
                for (origin, _) in in_flight.into_values() {
                    self.answer(origin, delivery_failed());
                }
                if let Some(a) = self.anycast.get_mut(&address) {
                    a.remove_receiver(key);
                }
                self.dirty_anycast.insert(address);
            }
            None => {
                for (address, a) in &mut self.anycast {
                    if a.remove_sender(key) {
                        self.dirty_anycast.insert(address.clone());
                    }
                }
            }
        }
    }

    /// Multicast: a copy (a reference count, not bytes) to every receiver with credit; one
    /// without credit misses the message, as nothing is stored.
    pub(super) fn fan_out(&mut self, address: &str, message: &Bytes) {
        let Some(receivers) = self.multicast.get(address) else {
            return;
        };
        for key in receivers {
            if let Some(Receiver::Multicast { credit, .. }) = self.receivers.get_mut(key)
                && *credit > 0
            {
                *credit -= 1;
                self.out.push(
                    key.0,
                    ToConn::Deliver {
                        link: key.1,
                        message: MessageId(0),
                        payload: message.clone(),
                        settled: true,
                    },
                );
            }
        }
    }
}
