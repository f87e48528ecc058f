//! The one place a node is built from its resolved configuration: the address space's plan
//! numbers every address, builds the core's node for it, and the router's entry for the same
//! node, from the same pass.
//!
//! A stored address's size limit is EnMasse's: the infra config's `globalMaxSize` times its
//! plan's broker credit; without them, [`BYTES_MAX_DEFAULT`]. What a full one does follows
//! `addressFullPolicy` (block by default); `PAGE` lifts the size limit of a queue that pages
//! (it is bounded by the disk, and by [`PAGED_MESSAGES_MAX`]).
//!
//! A named subscription takes its topic's dead-letter and expiry targets when it has none of
//! its own, and its topic's TTL clamp (EnMasse applied a topic's `deadletter`, `expiry` and
//! `messageTtl` to its subscriptions).

use std::sync::Arc;

use rustc_hash::FxHashMap;

use sluice_config::resources::AddressType;
use sluice_config::{AddressFullPolicy, ResolvedAddress, ResolvedAddressSpace, StoreLimits};
use sluice_router::{AddressTable, NodeId, NodeKind, NodeSpec, RouteError};
use sluice_store::{BYTES_MAX_DEFAULT, DuplicateLimits, QueuePolicy, TtlPolicy};

use crate::core::{AnycastNode, MulticastNode, Node, QueueNode, QueuePlan, TopicNode};

/// An address space's nodes, numbered, and the table that resolves their addresses.
pub(crate) struct Plan {
    pub(crate) table: AddressTable,
    pub(crate) nodes: Vec<(NodeId, Node)>,
    /// What each node is, as the table has it.
    pub(crate) specs: Vec<NodeSpec>,
}

/// Most messages a queue that pages holds (a reference in memory costs some 50 bytes).
pub(crate) const PAGED_MESSAGES_MAX: usize = 10_000_000;

/// How the broker stores messages, beyond what the configuration says.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Storage {
    /// There is a journal: durable queues may page.
    pub(crate) paging: bool,
    /// Bytes of messages each queue that pages holds in memory before it pages.
    pub(crate) queue_memory_max: usize,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            paging: false,
            queue_memory_max: usize::MAX,
        }
    }
}

/// The store policy of an address: its plan's and its own TTL clamp and redelivery limit,
/// whether it has dead-letter and expiry targets, whether it is durable and pages, and its
/// size limit.
fn policy(address: &ResolvedAddress, limits: &StoreLimits, storage: Storage) -> QueuePolicy {
    let spec = &address.address.resource.spec;
    let ttl = address.message_ttl();
    let redelivery = address.redelivery_delay();
    let durable = matches!(
        address.address_type(),
        AddressType::Queue | AddressType::Subscription | AddressType::Deadletter
    );
    let paging = durable && storage.paging;
    let sized = match (limits.global_max_size, address.broker_credit()) {
        (Some(global), Some(credit)) if credit > 0.0 => {
            Some(((global as f64) * credit).min(usize::MAX as f64) as usize)
        }
        _ => None,
    };
    let page = limits.address_full_policy == Some(AddressFullPolicy::Page) && paging;
    let bytes_max = if page {
        usize::MAX
    } else {
        sized.unwrap_or(BYTES_MAX_DEFAULT)
    };
    let defaults = QueuePolicy::default();
    QueuePolicy {
        bytes_max,
        messages_max: if paging {
            PAGED_MESSAGES_MAX
        } else {
            defaults.messages_max
        },
        paging,
        memory_max: storage.queue_memory_max,
        delivery_attempts_max: address.maximum_delivery_attempts(),
        ttl: TtlPolicy {
            minimum_ms: ttl.minimum,
            maximum_ms: ttl.maximum,
        },
        dead_letter_target: spec.deadletter.is_some(),
        expiry_target: spec.expiry.is_some(),
        durable,
        redelivery_delay_ms: redelivery.delay_ms,
        redelivery_multiplier: redelivery.multiplier,
        redelivery_delay_max_ms: redelivery.maximum_ms,
    }
}

/// What each address of `space` is, by address.
pub(crate) fn kinds(space: &ResolvedAddressSpace) -> FxHashMap<&str, NodeKind> {
    space
        .addresses
        .iter()
        .map(|a| {
            let spec = &a.address.resource.spec;
            let kind = match a.address_type() {
                AddressType::Queue => NodeKind::Queue,
                AddressType::Deadletter => NodeKind::Deadletter,
                AddressType::Topic => NodeKind::Topic,
                AddressType::Anycast => NodeKind::Anycast,
                AddressType::Multicast => NodeKind::Multicast,
                AddressType::Subscription => NodeKind::Subscription {
                    topic: spec.topic.clone().unwrap_or_default(),
                    max_consumers: spec
                        .subscription
                        .as_ref()
                        .and_then(|s| s.max_consumers)
                        .unwrap_or(1),
                },
            };
            (spec.address.as_str(), kind)
        })
        .collect()
}

/// Numbers and builds every address of `space`, in order from the first slot.
pub(crate) fn plan(space: &ResolvedAddressSpace, storage: Storage) -> Result<Plan, RouteError> {
    let mut next = 0;
    plan_with(space, storage, |_| {
        next += 1;
        NodeId::first(next - 1)
    })
}

/// Builds every address of `space`, numbered by `id_for` (a reload keeps the ids of the
/// addresses that stay).
pub(crate) fn plan_with(
    space: &ResolvedAddressSpace,
    storage: Storage,
    mut id_for: impl FnMut(&ResolvedAddress) -> NodeId,
) -> Result<Plan, RouteError> {
    let limits = space.store_limits();
    let full = match limits.address_full_policy.unwrap_or_default() {
        AddressFullPolicy::Page => AddressFullPolicy::Block,
        other => other,
    };
    let policy = |a: &ResolvedAddress| policy(a, &limits, storage);
    let ids: FxHashMap<&str, NodeId> = space
        .addresses
        .iter()
        .map(|a| (a.address.resource.spec.address.as_str(), id_for(a)))
        .collect();
    let id_of = |address: Option<&String>| address.and_then(|a| ids.get(a.as_str()).copied());
    let mut specs = Vec::with_capacity(space.addresses.len());
    let mut nodes = Vec::with_capacity(space.addresses.len());
    for a in &space.addresses {
        let spec = &a.address.resource.spec;
        let Some(id) = id_of(Some(&spec.address)) else {
            continue;
        };
        let name: Arc<str> = spec.address.as_str().into();
        // Configured for queues and subscriptions only (the config refuses it elsewhere).
        let duplicates = a.duplicate_detection().map(|d| DuplicateLimits {
            window_ms: d.window_ms,
            ids_max: d.ids_max,
        });
        let queue = |policy: QueuePolicy, dead_letter, expiry, max_consumers| {
            let node = QueueNode::new(QueuePlan {
                address: name.clone(),
                policy,
                dead_letter: id_of(dead_letter),
                expiry: id_of(expiry),
                max_consumers,
                full,
                reject_retries: !limits.rejected_dead_letters,
            });
            Node::Queue(node.with_duplicates(duplicates))
        };
        let (kind, node) = match a.address_type() {
            AddressType::Queue => (
                NodeKind::Queue,
                queue(
                    policy(a),
                    spec.deadletter.as_ref(),
                    spec.expiry.as_ref(),
                    None,
                ),
            ),
            AddressType::Deadletter => (
                NodeKind::Deadletter,
                queue(
                    policy(a),
                    spec.deadletter.as_ref(),
                    spec.expiry.as_ref(),
                    None,
                ),
            ),
            AddressType::Topic => {
                let named = space
                    .addresses
                    .iter()
                    .filter(|s| {
                        s.address_type() == AddressType::Subscription
                            && s.address.resource.spec.topic.as_deref()
                                == Some(spec.address.as_str())
                    })
                    .filter_map(|s| id_of(Some(&s.address.resource.spec.address)))
                    .collect();
                (
                    NodeKind::Topic,
                    Node::Topic(TopicNode::new(name.clone(), policy(a), named)),
                )
            }
            AddressType::Subscription => {
                let Some(topic) = spec.topic.as_deref().and_then(|t| space.address(t)) else {
                    continue;
                };
                let topic_spec = &topic.address.resource.spec;
                let dead_letter = spec.deadletter.as_ref().or(topic_spec.deadletter.as_ref());
                let expiry = spec.expiry.as_ref().or(topic_spec.expiry.as_ref());
                let policy = QueuePolicy {
                    ttl: policy(topic).ttl,
                    dead_letter_target: dead_letter.is_some(),
                    expiry_target: expiry.is_some(),
                    ..policy(a)
                };
                let max = spec
                    .subscription
                    .as_ref()
                    .and_then(|s| s.max_consumers)
                    .unwrap_or(1);
                let kind = NodeKind::Subscription {
                    topic: topic_spec.address.clone(),
                    max_consumers: max,
                };
                (kind, queue(policy, dead_letter, expiry, Some(max)))
            }
            AddressType::Anycast => (
                NodeKind::Anycast,
                Node::Anycast(AnycastNode::new(name.clone())),
            ),
            AddressType::Multicast => (
                NodeKind::Multicast,
                Node::Multicast(MulticastNode::new(name.clone())),
            ),
        };
        specs.push(NodeSpec {
            id,
            address: spec.address.clone(),
            kind,
        });
        nodes.push((id, node));
    }
    Ok(Plan {
        table: AddressTable::new(specs.clone())?,
        nodes,
        specs,
    })
}
