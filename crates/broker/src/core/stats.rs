//! What the core tells operators: per node, what it holds and what went through it. Counting
//! costs an add per publish, delivery and outcome on the core's own task; the rest is read
//! when asked (a scrape or a status request), never on a message's path.

use std::sync::Arc;

use sluice_codec::transport::DeliveryState;

use super::links::Role;
use super::{Core, Node};

/// What went through one node since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct NodeCounts {
    /// Messages publishers sent to it.
    pub(crate) deliveries_in: u64,
    /// Deliveries it handed to receivers.
    pub(crate) deliveries_out: u64,
    /// Messages routed straight through it, never stored (anycast, multicast).
    pub(crate) transit: u64,
    /// Receivers' outcomes: accepted, rejected, released, modified.
    pub(crate) outcomes: [u64; 4],
}

impl NodeCounts {
    /// Counts `n` receivers' outcomes of `state`.
    pub(crate) fn settled(&mut self, state: &DeliveryState, n: usize) {
        let i = match state {
            DeliveryState::Accepted(_) => 0,
            DeliveryState::Rejected(_) => 1,
            DeliveryState::Released(_) => 2,
            DeliveryState::Modified(_) => 3,
            _ => return,
        };
        if let Some(c) = self.outcomes.get_mut(i) {
            *c += n as u64;
        }
    }
}

/// What a stored node holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Held {
    pub(crate) depth: u64,
    pub(crate) bytes: u64,
    /// Its size limit.
    pub(crate) bytes_max: u64,
    /// When the oldest message arrived (ms since the epoch).
    pub(crate) oldest_ms: Option<i64>,
    pub(crate) durable: u64,
}

/// One configured node, as operators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeStats {
    pub(crate) address: Arc<str>,
    /// `None` for nodes that store nothing (anycast, multicast).
    pub(crate) held: Option<Held>,
    /// Receivers bound to it.
    pub(crate) consumers: u32,
    pub(crate) counts: NodeCounts,
}

/// The whole core, as operators see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CoreStats {
    /// Every configured node (temporary queues are summed into `temporary`).
    pub(crate) nodes: Vec<NodeStats>,
    /// Temporary queues and the messages they hold.
    pub(crate) temporary: (u64, u64),
    /// Queues removed from the configuration and kept for their messages: their address and
    /// when their grace period ends (ms since the epoch).
    pub(crate) retired: Vec<(Arc<str>, i64)>,
    /// Bytes of messages held in memory, and the budget (`usize::MAX`: none).
    pub(crate) memory_used: u64,
    pub(crate) memory_max: Option<u64>,
}

impl Core {
    /// A snapshot for operators.
    pub(crate) fn stats(&self) -> CoreStats {
        let mut consumers = rustc_hash::FxHashMap::default();
        for binding in self.links.values() {
            if !matches!(binding.role, Role::AnycastSender) {
                *consumers.entry(binding.node).or_insert(0u32) += 1;
            }
        }
        let mut stats = CoreStats {
            memory_used: self.memory.used as u64,
            memory_max: (self.memory.max != usize::MAX).then_some(self.memory.max as u64),
            ..CoreStats::default()
        };
        for (id, slot) in self.nodes.iter() {
            if let Some(r) = self.retired.get(&id) {
                stats.retired.push((r.address.clone(), r.until));
                // Its address now names another node (it changed type): that one is
                // reported under it, so no two series share a label.
                if self.configured.contains_key(&*r.address) {
                    continue;
                }
            }
            let (address, held) = match &slot.node {
                Node::Queue(q) if q.owner.is_some() => {
                    stats.temporary.0 += 1;
                    stats.temporary.1 += q.queue().depth() as u64;
                    continue;
                }
                Node::Queue(q) => {
                    let s = q.queue().stats();
                    let held = Held {
                        depth: s.depth as u64,
                        bytes: s.bytes as u64,
                        bytes_max: q.queue().policy().bytes_max as u64,
                        oldest_ms: s.oldest_ms,
                        durable: s.durable as u64,
                    };
                    (q.address.clone(), Some(held))
                }
                Node::Topic(t) => {
                    let log = t.log();
                    let held = Held {
                        depth: log.len() as u64,
                        bytes: log.bytes() as u64,
                        bytes_max: log.bytes_max() as u64,
                        oldest_ms: log.oldest_ms(),
                        durable: 0,
                    };
                    (t.address.clone(), Some(held))
                }
                Node::Anycast(a) => (a.address.clone(), None),
                Node::Multicast(m) => (m.address.clone(), None),
            };
            stats.nodes.push(NodeStats {
                address,
                held,
                consumers: consumers.get(&id).copied().unwrap_or(0),
                counts: slot.counts,
            });
        }
        stats
    }
}
