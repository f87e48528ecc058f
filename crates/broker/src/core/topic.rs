//! A topic: every receiver attached to it reads the topic's log from the moment it attached
//! ([`Fanout`]), and every named subscription (a stored node of its own, durable, shared by up
//! to `maxConsumers` receivers) gets a copy through a forward step.
//!
//! A publish is answered once it is in the log and every named subscription has stored its
//! copy. When the log is full (its slowest receiver is behind by the topic's budget), the
//! topic holds the publish, and every later one to keep their order, until the log has room;
//! the publishers' answers wait with them, and so does their credit, so a slow subscriber
//! slows the publishers instead of filling memory (Artemis's `BLOCK` address-full policy).
//! What waits is bounded by [`WAITING_BYTES_MAX`], past which a publish is refused, and goes
//! with its link or connection.

use std::collections::VecDeque;
use std::sync::Arc;

use sluice_codec::messaging::ScannedMessage;
use sluice_codec::transport::{Accepted, DeliveryState};
use sluice_engine::LinkId;
use sluice_store::QueuePolicy;

use super::command::{Filter, Origin};
use super::fanout::{Fanout, SUBSCRIBERS_MAX, SubscriberId};
use super::ids::{ConnId, LinkKey, NodeId};
use super::queue::WAITING_BYTES_MAX;
use super::step::{Answer, Arrival, Ctx, Forward, Via};
use crate::error::Refusal;

/// Most messages a topic buffers for its slowest private subscriber; past it the topic holds
/// its publishers back through their credit.
pub(crate) const TOPIC_BUFFER_MESSAGES: usize = 10_000;
/// Most bytes a topic buffers for its slowest private subscriber.
pub(crate) const TOPIC_BUFFER_BYTES: usize = 64 * 1024 * 1024;

/// A publish waiting for room in the log.
#[derive(Debug)]
struct Held {
    origin: Origin,
    name: Option<Arc<str>>,
    message: Box<ScannedMessage>,
}

#[derive(Debug)]
pub(crate) struct TopicNode {
    pub(crate) address: Arc<str>,
    log: Fanout,
    /// The named subscriptions fed by the topic.
    named: Vec<NodeId>,
    held: VecDeque<Held>,
    held_bytes: usize,
}

impl TopicNode {
    /// A topic with `policy` (its TTL clamp and delivery attempts) for its private
    /// subscribers, and the named subscriptions it feeds.
    pub(crate) fn new(address: Arc<str>, policy: QueuePolicy, named: Vec<NodeId>) -> Self {
        let policy = QueuePolicy {
            messages_max: TOPIC_BUFFER_MESSAGES,
            bytes_max: TOPIC_BUFFER_BYTES,
            // Private subscriptions drop what is rejected or expires (EnMasse's did too).
            dead_letter_target: false,
            expiry_target: false,
            durable: false,
            ..policy
        };
        TopicNode {
            address,
            log: Fanout::new(policy),
            named,
            held: VecDeque::new(),
            held_bytes: 0,
        }
    }

    /// Takes the plan of `new` (a reload): its policy and named subscriptions.
    pub(crate) fn reconfigure(&mut self, new: TopicNode) {
        self.log.set_policy(*new.log.policy());
        self.named = new.named;
    }

    /// Releases the publishes it holds to their publishers (the topic leaves the
    /// configuration).
    pub(crate) fn release_held(&mut self, ctx: &mut Ctx<'_>) {
        for held in self.held.drain(..) {
            ctx.resolve(
                Answer::Publisher(held.origin),
                DeliveryState::Released(sluice_codec::transport::Released {}),
                false,
            );
        }
        self.held_bytes = 0;
    }

    pub(crate) fn log(&self) -> &Fanout {
        &self.log
    }

    /// A receiver subscribes from now on.
    pub(crate) fn subscribe(
        &mut self,
        key: LinkKey,
        filter: Filter,
    ) -> Result<SubscriberId, Refusal> {
        self.log
            .subscribe(key, filter)
            .ok_or_else(|| Refusal::TooManySubscribers {
                address: self.address.to_string(),
                max: SUBSCRIBERS_MAX,
            })
    }

    /// The private subscribers' log: their credit, outcomes and leaving go to it directly.
    pub(crate) fn log_mut(&mut self) -> &mut Fanout {
        &mut self.log
    }

    /// A publish under `name`.
    pub(crate) fn publish(
        &mut self,
        origin: Origin,
        name: Option<Arc<str>>,
        message: Box<ScannedMessage>,
        ctx: &mut Ctx<'_>,
    ) {
        let size = message.raw().len();
        if self.log.has_subscribers() && size > self.log.bytes_max() {
            let refusal = Refusal::NeverFits {
                address: self.address.to_string(),
                size,
                max: self.log.bytes_max(),
            };
            return ctx.refuse(Answer::Publisher(origin), &refusal);
        }
        // Trimming walks every subscriber: only when the log looks full, not per publish.
        if self.held.is_empty() && !self.fits(size) {
            self.log.trim(&self.address, ctx.now);
        }
        if self.held.is_empty() && self.fits(size) {
            return self.place(origin, name, message, ctx);
        }
        if self.held_bytes.saturating_add(size) > WAITING_BYTES_MAX {
            let refusal = Refusal::WaitingFull {
                address: self.address.to_string(),
                max: WAITING_BYTES_MAX,
            };
            return ctx.refuse(Answer::Publisher(origin), &refusal);
        }
        self.held_bytes += size;
        self.held.push_back(Held {
            origin,
            name,
            message,
        });
    }

    /// Whether the log takes a message of `size` bytes now (it takes anything without
    /// subscribers: nothing is kept for nobody).
    fn fits(&self, size: usize) -> bool {
        !self.log.has_subscribers() || self.log.has_room(size)
    }

    /// Into the log for the subscribers there are now, and a copy to each named subscription;
    /// the publisher is answered when all of them have it.
    fn place(
        &mut self,
        origin: Origin,
        name: Option<Arc<str>>,
        message: Box<ScannedMessage>,
        ctx: &mut Ctx<'_>,
    ) {
        let answer = match self.named.len() {
            0 => None,
            copies => Some(Answer::Join(ctx.joins.open(origin, copies as u32))),
        };
        if let Some(answer) = answer {
            for &to in &self.named {
                ctx.steps.push_back(Forward {
                    to,
                    arrival: Arrival {
                        message: message.clone(),
                        answer,
                        via: Via::Publish,
                    },
                });
            }
        }
        if self.log.has_subscribers() {
            self.log.append(message, name, ctx.now);
        }
        if answer.is_none() {
            ctx.resolve(
                Answer::Publisher(origin),
                DeliveryState::Accepted(Accepted {}),
                false,
            );
        }
    }

    pub(crate) fn is_holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Drops the held publishes of `conn` (and `link`): nobody is left to answer.
    pub(crate) fn forget(&mut self, conn: ConnId, link: Option<LinkId>) {
        let before = self.held.len();
        self.held
            .retain(|h| !Answer::Publisher(h.origin).is_for(conn, link));
        if self.held.len() != before {
            self.held_bytes = self.held.iter().map(|h| h.message.raw().len()).sum();
        }
    }

    /// The end of a wake-up that touched the topic: subscribers get what their credit allows,
    /// the log drops what nobody needs, and held publishes take the room that made.
    pub(crate) fn pump(&mut self, ctx: &mut Ctx<'_>) {
        self.log.dispatch(&self.address, ctx.now, ctx.out);
        self.log.trim(&self.address, ctx.now);
        while let Some(front) = self.held.front() {
            if !self.fits(front.message.raw().len()) {
                break;
            }
            let Some(held) = self.held.pop_front() else {
                break;
            };
            self.held_bytes -= held.message.raw().len();
            self.place(held.origin, held.name, held.message, ctx);
        }
        // What was placed goes out in this wake-up too.
        self.log.dispatch(&self.address, ctx.now, ctx.out);
    }
}
