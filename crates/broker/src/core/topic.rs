//! Topics: every subscriber (a receiver's private subscription, or a named subscription) is a
//! queue of its own that the topic copies each message into (a reference count, not bytes).
//!
//! A subscription's queue is bounded. When a message finds one full, the topic holds that
//! message, and every later one to keep their order, until the queue has room; the publishers'
//! answers wait with them, and the connections grant publishers credit only as answers come
//! back, so a slow subscriber slows the publishers instead of filling memory (Artemis's
//! `BLOCK` address-full policy).

use std::collections::VecDeque;

use sluice_codec::messaging::ScannedMessage;
use sluice_codec::transport::{Accepted, DeliveryState};
use sluice_router::TopicPattern;

use super::{Core, Origin, mark};

/// Which names of a topic a subscriber receives.
#[derive(Debug, Clone)]
pub(crate) enum Filter {
    /// Everything published to the topic, at any level (a receiver on the topic's own address,
    /// or a named subscription).
    All,
    /// Messages published to exactly this name.
    Name(String),
    /// Names matching a `+`/`#` pattern.
    Pattern(TopicPattern),
}

impl Filter {
    fn matches(&self, name: &str) -> bool {
        match self {
            Filter::All => true,
            Filter::Name(n) => n == name,
            Filter::Pattern(p) => p.matches(name),
        }
    }
}

/// A message waiting to be placed in the subscriptions still in `remaining`.
#[derive(Debug)]
struct Held {
    origin: Origin,
    message: ScannedMessage,
    remaining: Vec<String>,
}

/// A topic's subscribers and the messages it holds back.
#[derive(Debug, Default)]
pub(super) struct Topic {
    /// Each subscriber's filter and queue.
    subscribers: Vec<(Filter, String)>,
    held: VecDeque<Held>,
}

impl Topic {
    pub(super) fn subscribe(&mut self, filter: Filter, queue: String) {
        self.subscribers.push((filter, queue));
    }

    pub(super) fn unsubscribe(&mut self, queue: &str) {
        self.subscribers.retain(|(_, q)| q != queue);
    }

    /// A message published under `name` goes to the subscribers matching it now: one that
    /// subscribes later does not get it, even if it is still held.
    pub(super) fn publish(&mut self, origin: Origin, name: &str, message: ScannedMessage) {
        let remaining = self
            .subscribers
            .iter()
            .filter(|(filter, _)| filter.matches(name))
            .map(|(_, queue)| queue.clone())
            .collect();
        self.held.push_back(Held {
            origin,
            message,
            remaining,
        });
    }

    /// Whether messages wait for room.
    pub(super) fn is_blocked(&self) -> bool {
        !self.held.is_empty()
    }
}

impl Core {
    /// Places the topic's messages, oldest first, in their subscriptions, and answers the
    /// publishers of those placed in all of them; stops at the first that finds one full.
    pub(super) fn place_topic(&mut self, topic: &str, now: i64) {
        let Some(t) = self.topics.get_mut(topic) else {
            return;
        };
        while let Some(held) = t.held.front_mut() {
            let message = &held.message;
            held.remaining.retain(|queue| {
                // A subscriber that left no longer waits for it.
                let Some(q) = self.queues.get_mut(queue) else {
                    return false;
                };
                // One that could never hold it is skipped rather than blocking for ever.
                if message.raw().len() > q.policy().bytes_max {
                    return false;
                }
                match q.enqueue(message.clone(), now) {
                    Ok(_) => {
                        mark(&mut self.dirty_queues, queue);
                        false
                    }
                    Err(_) => true,
                }
            });
            if !held.remaining.is_empty() {
                break;
            }
            if let Some(done) = t.held.pop_front() {
                self.out
                    .answer(done.origin, DeliveryState::Accepted(Accepted {}));
            }
        }
        if t.is_blocked() {
            self.blocked_topics.insert(topic.to_string());
        } else {
            self.blocked_topics.remove(topic);
        }
    }
}
