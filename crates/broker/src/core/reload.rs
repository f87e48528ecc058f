//! A new configuration applied to a running core, without dropping a connection.
//!
//! Addresses that stay keep their node (its messages, consumers and counts) and take their
//! new plan: size limit, TTL clamp, redelivery, dead-letter and expiry targets,
//! `maxConsumers`. New addresses get new nodes. An address that leaves has its receivers
//! unbound here (their connections detach them with `amqp:not-found` when they see the new
//! table), and what waits in it is released to its publishers. A stored queue that still
//! holds messages is retired instead of deleted: it takes no publish or attach, and keeps its
//! messages (in the journal too) until its address comes back, when the same node serves
//! again, or until its grace period ends, when they are removed.
//!
//! Nodes match across configurations by address and by what they are: a stored node (queue,
//! deadletter, subscription) stays one whatever its exact type becomes, while a queue that
//! becomes an anycast address is a new node, and the old one retires.

use std::sync::Arc;

use rustc_hash::FxHashSet;

use sluice_config::ResolvedAddressSpace;
use sluice_router::{AddressTable, NodeKind, NodeSpec, RouteError};

use super::stats::NodeCounts;
use super::{Core, Node, NodeId, QueueNode, QueuePlan, Slot};
use crate::plan::{self, Storage};

/// A removed queue kept for its messages.
#[derive(Debug, Clone)]
pub(crate) struct Retired {
    pub(crate) address: Arc<str>,
    /// When its messages are removed (ms since the epoch).
    pub(crate) until: i64,
}

/// What a reload did.
#[derive(Debug)]
pub(crate) struct Reloaded {
    /// The new table connections resolve addresses with.
    pub(crate) table: AddressTable,
    pub(crate) added: usize,
    pub(crate) removed: usize,
    /// Queues retired, kept for their messages.
    pub(crate) retiring: usize,
}

/// Whether two kinds of node can be the same node across a reload.
fn same_class(a: &NodeKind, b: &NodeKind) -> bool {
    let stored = |k: &NodeKind| {
        matches!(
            k,
            NodeKind::Queue | NodeKind::Deadletter | NodeKind::Subscription { .. }
        )
    };
    (stored(a) && stored(b)) || std::mem::discriminant(a) == std::mem::discriminant(b)
}

fn slot(node: Node) -> Slot {
    Slot {
        node,
        dirty: false,
        memory: 0,
        timer: None,
        counts: NodeCounts::default(),
    }
}

impl Core {
    /// The addresses the core serves, as planned at start.
    pub(crate) fn set_configured(&mut self, specs: Vec<NodeSpec>) {
        self.configured = specs.into_iter().map(|s| (s.address.clone(), s)).collect();
    }

    /// Serves `space` from now on; removed queues with messages are kept for `grace_ms`.
    pub(crate) fn reload(
        &mut self,
        space: &ResolvedAddressSpace,
        storage: Storage,
        grace_ms: i64,
        now: i64,
    ) -> Result<Reloaded, RouteError> {
        self.now = now;
        let old = std::mem::take(&mut self.configured);
        let mut reserved = Vec::new();
        let kinds = plan::kinds(space);
        let planned = {
            let nodes = &mut self.nodes;
            let retired = &self.retired;
            plan::plan_with(space, storage, |a| {
                let address = a.address.resource.spec.address.as_str();
                let kind = kinds.get(address);
                if let Some(spec) = old.get(address)
                    && kind.is_some_and(|k| same_class(&spec.kind, k))
                {
                    return spec.id;
                }
                let stored = kind.is_some_and(|k| same_class(k, &NodeKind::Queue));
                if stored
                    && let Some((id, _)) = retired.iter().find(|(_, r)| &*r.address == address)
                {
                    return *id;
                }
                let id = nodes.reserve();
                reserved.push(id);
                id
            })
        };
        let planned = match planned {
            Ok(p) => p,
            Err(e) => {
                for id in reserved {
                    self.nodes.release(id);
                }
                self.configured = old;
                return Err(e);
            }
        };
        let mut added = 0;
        let kept: FxHashSet<_> = planned.nodes.iter().map(|(id, _)| *id).collect();
        for (id, node) in planned.nodes {
            if self.retired.remove(&id).is_some() {
                tracing::info!(node = ?id, "a removed queue's address is back: it serves its kept messages again");
            }
            match self.nodes.get_mut(id) {
                Some(slot) => {
                    match (&mut slot.node, node) {
                        (Node::Queue(q), Node::Queue(new)) => q.reconfigure(new),
                        (Node::Topic(t), Node::Topic(new)) => t.reconfigure(new),
                        _ => {}
                    }
                    self.mark(id);
                }
                None => {
                    if let Node::Queue(q) = &node
                        && q.is_durable()
                    {
                        self.new_durable.push((id, q.address.clone()));
                    }
                    self.nodes.insert_at(id, slot(node));
                    added += 1;
                }
            }
        }
        for id in reserved {
            if !kept.contains(&id) {
                self.nodes.release(id);
            }
        }
        let mut removed = 0;
        for spec in old.values().filter(|s| !kept.contains(&s.id)) {
            removed += 1;
            self.leave(spec.id, grace_ms);
        }
        self.set_configured(planned.specs);
        Ok(Reloaded {
            table: planned.table,
            added,
            removed,
            retiring: self.retired.len(),
        })
    }

    /// The addresses of the retired queues.
    #[cfg(test)]
    pub(crate) fn retiring(&self) -> Vec<String> {
        let mut list: Vec<_> = self
            .retired
            .values()
            .map(|r| r.address.to_string())
            .collect();
        list.sort();
        list
    }

    /// Node `id` leaves the configuration.
    fn leave(&mut self, id: NodeId, grace_ms: i64) {
        let bound: Vec<_> = self
            .links
            .iter()
            .filter(|(_, b)| b.node == id)
            .map(|(k, _)| *k)
            .collect();
        for key in bound {
            self.unbind(key);
        }
        let (nodes, mut ctx) = self.ctx();
        let Some(slot) = nodes.get_mut(id) else {
            return;
        };
        let mut keep = None;
        match &mut slot.node {
            Node::Queue(q) => {
                q.close(&mut ctx);
                if q.queue().depth() > 0 && grace_ms > 0 {
                    keep = Some(q.address.clone());
                } else {
                    q.purge(id, &mut ctx);
                }
            }
            Node::Topic(t) => t.release_held(&mut ctx),
            Node::Anycast(a) => a.release_held(ctx.out),
            Node::Multicast(_) => {}
        }
        match keep {
            Some(address) => {
                tracing::info!(%address, grace_s = grace_ms / 1000, "an address left the configuration: its stored messages are kept for the grace period");
                let until = self.now.saturating_add(grace_ms);
                self.retired.insert(id, Retired { address, until });
                self.mark(id);
            }
            None => self.remove_node(id),
        }
    }

    /// Retired queues whose grace period has ended lose their messages and go.
    pub(crate) fn expire_retired(&mut self, now: i64) {
        let due: Vec<_> = self
            .retired
            .iter()
            .filter(|(_, r)| r.until <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(r) = self.retired.remove(&id) else {
                continue;
            };
            let (nodes, mut ctx) = self.ctx();
            if let Some(Slot {
                node: Node::Queue(q),
                ..
            }) = nodes.get_mut(id)
            {
                let removed = q.purge(id, &mut ctx);
                tracing::warn!(address = %r.address, messages = removed, "the grace period of a removed address ended: its messages are deleted");
            }
            self.remove_node(id);
        }
    }

    /// When the next retired queue's grace period ends.
    pub(crate) fn next_retirement(&self) -> Option<i64> {
        self.retired.values().map(|r| r.until).min()
    }

    /// Durable queues added by reloads since the last call, for the journal to know.
    pub(crate) fn take_new_durable(&mut self) -> Vec<(NodeId, Arc<str>)> {
        std::mem::take(&mut self.new_durable)
    }

    /// Keeps the journaled messages of `address`, which the configuration does not name, in
    /// a retired durable queue for `grace_ms`: configured again within it, it serves them.
    pub(crate) fn retire_unconfigured(&mut self, address: &str, grace_ms: i64, now: i64) {
        let policy = sluice_store::QueuePolicy {
            durable: true,
            ..sluice_store::QueuePolicy::default()
        };
        let name: Arc<str> = address.into();
        let node = Node::Queue(QueueNode::new(QueuePlan {
            address: name.clone(),
            policy,
            dead_letter: None,
            expiry: None,
            max_consumers: None,
            full: super::AddressFullPolicy::Block,
            reject_retries: false,
        }));
        let id = self.nodes.insert_with(|_| slot(node));
        let until = now.saturating_add(grace_ms);
        self.retired.insert(
            id,
            Retired {
                address: name,
                until,
            },
        );
    }
}
