//! Links bound to nodes: a receiver attaching to what it consumes, its credit, its outcomes,
//! and what happens when it goes; an anycast sender, which gets its credit from the node.

use std::sync::Arc;

use sluice_codec::transport::DeliveryState;
use sluice_store::{ConsumerId, MessageId, Outcome};

use super::command::{Attached, Filter, Source};
use super::fanout::SubscriberId;
use super::ids::{LinkKey, NodeId};
use super::{Core, Node, QueueNode, Slot, bookkeeping, temporary_address};
use crate::error::Refusal;

/// What a link is to the node it is bound to.
#[derive(Debug, Clone, Copy)]
pub(super) struct Binding {
    pub(super) node: NodeId,
    pub(super) role: Role,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// A consumer of a stored node.
    Consumer(ConsumerId),
    /// A private subscriber of a topic.
    Subscriber(SubscriberId),
    /// A receiver of an anycast address.
    AnycastReceiver,
    /// A receiver of a multicast address.
    MulticastReceiver,
    /// A sender to an anycast address.
    AnycastSender,
}

impl Core {
    pub(super) fn attach_receiver(
        &mut self,
        key: LinkKey,
        source: Source,
    ) -> Result<Attached, Refusal> {
        let (node, filter, consumer_options, address) = match source {
            Source::Node {
                node,
                filter,
                consumer,
            } => (node, filter, consumer, None),
            Source::Temporary { consumer } => {
                let mut address = None;
                let node = self.nodes.insert_with(|id| {
                    let name: Arc<str> = temporary_address(id).into();
                    address = Some(name.clone());
                    Slot {
                        node: Node::Queue(QueueNode::temporary(name, key)),
                        dirty: false,
                        memory: 0,
                        timer: None,
                        counts: super::stats::NodeCounts::default(),
                    }
                });
                (node, Filter::All, consumer, address)
            }
        };
        if let Some(r) = self.retired.get(&node) {
            return Err(Refusal::Gone(r.address.to_string()));
        }
        let slot = self
            .nodes
            .get_mut(node)
            .ok_or_else(|| Refusal::Gone(temporary_address(node)))?;
        let role = match &mut slot.node {
            Node::Queue(q) => {
                let consumer = ConsumerId(self.next_consumer);
                self.next_consumer += 1;
                q.attach(key, consumer, consumer_options)?;
                Role::Consumer(consumer)
            }
            Node::Topic(t) => Role::Subscriber(t.subscribe(key, filter)?),
            Node::Multicast(m) => {
                m.add_receiver(key);
                Role::MulticastReceiver
            }
            Node::Anycast(a) => {
                a.add_receiver(key);
                Role::AnycastReceiver
            }
        };
        self.bind(key, Binding { node, role });
        self.mark(node);
        Ok(Attached { address })
    }

    /// A sender with a fixed target: an anycast one is granted credit by its node.
    pub(super) fn attach_sender(&mut self, key: LinkKey, node: NodeId) {
        if let Some(Slot {
            node: Node::Anycast(a),
            ..
        }) = self.nodes.get_mut(node)
        {
            a.add_sender(key);
            self.bind(
                key,
                Binding {
                    node,
                    role: Role::AnycastSender,
                },
            );
            self.mark(node);
        }
    }

    fn bind(&mut self, key: LinkKey, binding: Binding) {
        self.links.insert(key, binding);
        self.links_of.entry(key.0).or_default().push(key.1);
    }

    pub(super) fn credit(&mut self, key: LinkKey, credit: u32, drain: bool) {
        let Some(b) = self.links.get(&key).copied() else {
            return;
        };
        let (nodes, ctx) = self.ctx();
        let Some(slot) = nodes.get_mut(b.node) else {
            return;
        };
        match (&mut slot.node, b.role) {
            (Node::Queue(q), Role::Consumer(c)) => {
                if let Err(e) = q.credit(c, credit, drain) {
                    bookkeeping(&e);
                }
            }
            (Node::Topic(t), Role::Subscriber(s)) => t.log_mut().credit(s, credit, drain),
            (Node::Multicast(m), Role::MulticastReceiver) => m.credit(key, credit, drain, ctx.out),
            (Node::Anycast(a), Role::AnycastReceiver) => a.credit(key, credit, drain),
            _ => {}
        }
        self.mark(b.node);
    }

    pub(super) fn settle(&mut self, key: LinkKey, messages: &[MessageId], state: &DeliveryState) {
        let Some(b) = self.links.get(&key).copied() else {
            return;
        };
        let outcome = outcome_of(state);
        let (nodes, mut ctx) = self.ctx();
        let Some(slot) = nodes.get_mut(b.node) else {
            return;
        };
        slot.counts.settled(state, messages.len());
        match (&mut slot.node, b.role, outcome) {
            (Node::Queue(q), Role::Consumer(c), Some(outcome)) => {
                for &m in messages {
                    if let Err(e) = q.settle(b.node, c, m, outcome, &mut ctx) {
                        bookkeeping(&e);
                    }
                }
            }
            (Node::Topic(t), Role::Subscriber(s), Some(outcome)) => {
                for &m in messages {
                    if let Err(e) = t.log_mut().settle(s, m, outcome) {
                        bookkeeping(&e);
                    }
                }
            }
            (Node::Anycast(a), Role::AnycastReceiver, _) => {
                for &m in messages {
                    a.settle(key, m, state.clone(), ctx.out);
                }
            }
            _ => {}
        }
        self.mark(b.node);
    }

    pub(super) fn unsent(&mut self, key: LinkKey, message: MessageId) {
        let Some(b) = self.links.get(&key).copied() else {
            return;
        };
        let Some(slot) = self.nodes.get_mut(b.node) else {
            return;
        };
        match (&mut slot.node, b.role) {
            (Node::Queue(q), Role::Consumer(c)) => {
                if let Err(e) = q.unsend(c, message) {
                    bookkeeping(&e);
                }
            }
            (Node::Topic(t), Role::Subscriber(s)) => {
                if let Err(e) = t.log_mut().unsend(s, message) {
                    bookkeeping(&e);
                }
            }
            (Node::Anycast(a), Role::AnycastReceiver) => a.unsend(key, message),
            _ => {}
        }
        self.mark(b.node);
    }

    /// A link goes: a consumer's unsettled deliveries go back, a temporary queue goes with
    /// the receiver that made it, an anycast receiver's senders learn what failed.
    pub(super) fn unbind(&mut self, key: LinkKey) {
        let Some(b) = self.links.remove(&key) else {
            return;
        };
        let (nodes, mut ctx) = self.ctx();
        let Some(slot) = nodes.get_mut(b.node) else {
            return;
        };
        let mut remove = false;
        match (&mut slot.node, b.role) {
            (Node::Queue(q), Role::Consumer(_)) if q.owner == Some(key) => {
                q.close(&mut ctx);
                remove = true;
            }
            (Node::Queue(q), Role::Consumer(c)) => {
                if let Err(e) = q.detach(b.node, c, &mut ctx) {
                    bookkeeping(&e);
                }
            }
            (Node::Topic(t), Role::Subscriber(s)) => t.log_mut().unsubscribe(s),
            (Node::Multicast(m), Role::MulticastReceiver) => m.remove_receiver(key),
            (Node::Anycast(a), Role::AnycastReceiver) => a.remove_receiver(key, ctx.out),
            (Node::Anycast(a), Role::AnycastSender) => {
                a.remove_sender(key);
            }
            _ => {}
        }
        if remove {
            self.remove_node(b.node);
        } else {
            self.mark(b.node);
        }
    }

    pub(super) fn remove_node(&mut self, id: NodeId) {
        if let Some(slot) = self.nodes.remove(id) {
            if let Some(at) = slot.timer {
                self.timers.remove(&(at, id));
            }
            // What it held in memory (as of its last pump) goes with it.
            self.memory.used -= slot.memory;
        }
        self.holding.remove(&id);
    }
}

/// The store's outcome for a receiver's terminal state; `None` for a non-terminal one.
fn outcome_of(state: &DeliveryState) -> Option<Outcome> {
    Some(match state {
        DeliveryState::Accepted(_) => Outcome::Accepted,
        DeliveryState::Released(_) => Outcome::Released,
        DeliveryState::Rejected(_) => Outcome::Rejected,
        DeliveryState::Modified(m) => Outcome::Modified {
            delivery_failed: m.delivery_failed,
            undeliverable_here: m.undeliverable_here,
        },
        _ => return None,
    })
}
