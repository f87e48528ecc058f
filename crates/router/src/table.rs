//! The address table of one address space and how an address resolves against it.

use std::collections::HashMap;

use sluice_codec::transport::conditions;
use sluice_codec::types::Symbol;

use crate::topic::{TopicPattern, split_topic};

/// What an address is (EnMasse's address types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// Stored; competing consumers.
    Queue,
    /// Publish/subscribe; every receiver its own subscription.
    Topic,
    /// A named durable subscription to `topic`, shared by at most `max_consumers` receivers.
    Subscription {
        /// The topic's address.
        topic: String,
        /// How many receivers may share it.
        max_consumers: u32,
    },
    /// Routed to one receiver, never stored.
    Anycast,
    /// Routed to every receiver, pre-settled.
    Multicast,
    /// A queue that only dead-lettered and expired messages reach; consume only.
    Deadletter,
}

/// A node of the address space, as the broker numbers them: an index into its table of nodes
/// and the generation of that slot, so an id kept after its node went (a reply-to address, a
/// link bound before a reload) never reaches a later node in the same slot. The router only
/// carries it: an address resolves to its node's id once, at attach, and everything after
/// (commands, routes, journal records, reload diffs) uses the id instead of the string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// The slot in the broker's node table.
    pub index: u32,
    /// How many nodes the slot has held before this one.
    pub generation: u32,
}

impl NodeId {
    /// The id of slot `index` in its first generation.
    pub const fn first(index: u32) -> Self {
        NodeId {
            index,
            generation: 0,
        }
    }
}

/// One address of the address space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// The node the address resolves to.
    pub id: NodeId,
    /// The address clients use.
    pub address: String,
    /// Its type.
    pub kind: NodeKind,
}

/// Which way messages flow on the link being attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The client sends to the address (the attach's target).
    Send,
    /// The client receives from the address (the attach's source).
    Receive,
}

/// What an address resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution<'a> {
    /// The address is a node.
    Node(&'a NodeSpec),
    /// A name below a topic (`orders/eu/de`): published to, or subscribed to exactly.
    TopicName {
        /// The topic (the name's first level).
        topic: &'a NodeSpec,
        /// The whole name.
        name: String,
    },
    /// A receiver's wildcard pattern below a topic (`orders/eu/+`, `orders/#`).
    TopicPattern {
        /// The topic (the pattern's first level).
        topic: &'a NodeSpec,
        /// The pattern.
        pattern: TopicPattern,
    },
    /// A subscription reached as `<topic>::<subscription>`.
    Subscription(&'a NodeSpec),
}

/// Why an address cannot be used: mapped to the AMQP condition the attach is refused with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// No address of the space matches.
    #[error("no address '{0}' in this address space")]
    NotFound(String),
    /// The address exists but not for this direction.
    #[error("{0}")]
    NotAllowed(String),
    /// A malformed topic pattern.
    #[error("invalid topic pattern: {0}")]
    InvalidPattern(&'static str),
    /// Two nodes with one address.
    #[error("address '{0}' is defined twice")]
    Duplicate(String),
}

impl RouteError {
    /// The AMQP error condition for the refused attach (or the released message).
    pub fn condition(&self) -> Symbol {
        match self {
            RouteError::NotFound(_) => conditions::NOT_FOUND,
            RouteError::NotAllowed(_) => conditions::NOT_ALLOWED,
            RouteError::InvalidPattern(_) => conditions::INVALID_FIELD,
            RouteError::Duplicate(_) => conditions::INTERNAL_ERROR,
        }
    }
}

/// Every address of one address space, immutable once built.
#[derive(Debug, Clone, Default)]
pub struct AddressTable {
    nodes: HashMap<String, NodeSpec>,
}

impl AddressTable {
    /// A table of `specs`; two with one address are an error.
    pub fn new(specs: impl IntoIterator<Item = NodeSpec>) -> Result<Self, RouteError> {
        let mut nodes = HashMap::new();
        for spec in specs {
            if nodes.contains_key(&spec.address) {
                return Err(RouteError::Duplicate(spec.address));
            }
            nodes.insert(spec.address.clone(), spec);
        }
        Ok(AddressTable { nodes })
    }

    /// The node with exactly this address.
    pub fn node(&self, address: &str) -> Option<&NodeSpec> {
        self.nodes.get(address)
    }

    /// How many addresses the table holds.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Resolves `address` for a link in `direction`, or a message's `to` with
    /// [`Direction::Send`].
    pub fn resolve(
        &self,
        address: &str,
        direction: Direction,
    ) -> Result<Resolution<'_>, RouteError> {
        if let Some((topic, subscription)) = address.split_once("::") {
            return self.resolve_subscription(topic, subscription, direction);
        }
        if let Some(node) = self.nodes.get(address) {
            return match (&node.kind, direction) {
                (NodeKind::Deadletter, Direction::Send) => Err(RouteError::NotAllowed(format!(
                    "'{address}' is a dead-letter address: it can only be consumed from"
                ))),
                (NodeKind::Subscription { topic, .. }, Direction::Send) => {
                    Err(RouteError::NotAllowed(format!(
                        "'{address}' is a subscription: publish to its topic '{topic}'"
                    )))
                }
                _ => Ok(Resolution::Node(node)),
            };
        }
        let (first, rest) = split_topic(address);
        let topic = match (rest, self.nodes.get(first)) {
            (Some(_), Some(node)) if node.kind == NodeKind::Topic => node,
            _ => return Err(RouteError::NotFound(address.to_string())),
        };
        let pattern = TopicPattern::parse(address)?;
        match (pattern.is_wildcard(), direction) {
            (false, _) => Ok(Resolution::TopicName {
                topic,
                name: address.to_string(),
            }),
            (true, Direction::Receive) => Ok(Resolution::TopicPattern { topic, pattern }),
            (true, Direction::Send) => Err(RouteError::NotAllowed(format!(
                "'{address}': '+' and '#' are for receivers; a message is published to one name"
            ))),
        }
    }

    fn resolve_subscription(
        &self,
        topic: &str,
        subscription: &str,
        direction: Direction,
    ) -> Result<Resolution<'_>, RouteError> {
        let full = format!("{topic}::{subscription}");
        let node = self
            .nodes
            .get(subscription)
            .ok_or_else(|| RouteError::NotFound(full.clone()))?;
        match &node.kind {
            NodeKind::Subscription { topic: t, .. } if t == topic => match direction {
                Direction::Receive => Ok(Resolution::Subscription(node)),
                Direction::Send => Err(RouteError::NotAllowed(format!(
                    "'{full}' is a subscription: publish to its topic '{topic}'"
                ))),
            },
            _ => Err(RouteError::NotFound(full)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(address: &str, kind: NodeKind) -> NodeSpec {
        NodeSpec {
            id: NodeId::first(address.len() as u32),
            address: address.into(),
            kind,
        }
    }

    fn table() -> AddressTable {
        AddressTable::new([
            node("orders", NodeKind::Queue),
            node("news", NodeKind::Topic),
            node(
                "news-eu",
                NodeKind::Subscription {
                    topic: "news".into(),
                    max_consumers: 1,
                },
            ),
            node("rpc", NodeKind::Anycast),
            node("events", NodeKind::Multicast),
            node("dlq", NodeKind::Deadletter),
        ])
        .unwrap()
    }

    #[test]
    fn exact_addresses_resolve_to_their_nodes_both_ways() {
        let t = table();
        for address in ["orders", "news", "rpc", "events"] {
            for direction in [Direction::Send, Direction::Receive] {
                let Ok(Resolution::Node(n)) = t.resolve(address, direction) else {
                    panic!("{address}")
                };
                assert_eq!(n.address, address);
            }
        }
        assert!(matches!(
            t.resolve("dlq", Direction::Receive),
            Ok(Resolution::Node(_))
        ));
        assert!(matches!(
            t.resolve("news-eu", Direction::Receive),
            Ok(Resolution::Node(_))
        ));
    }

    #[test]
    fn unknown_addresses_are_not_found() {
        let t = table();
        let err = t.resolve("nowhere", Direction::Send).unwrap_err();
        assert_eq!(err.condition(), "amqp:not-found");
        assert_eq!(
            err.to_string(),
            "no address 'nowhere' in this address space"
        );
        // Levels below something that is not a topic are not names.
        assert!(matches!(
            t.resolve("orders/eu", Direction::Send),
            Err(RouteError::NotFound(_))
        ));
        assert!(matches!(
            t.resolve("news::missing", Direction::Receive),
            Err(RouteError::NotFound(_))
        ));
        assert!(matches!(
            t.resolve("orders::news-eu", Direction::Receive),
            Err(RouteError::NotFound(_))
        ));
    }

    #[test]
    fn dead_letter_addresses_and_subscriptions_are_consume_only() {
        let t = table();
        for address in ["dlq", "news-eu", "news::news-eu"] {
            let err = t.resolve(address, Direction::Send).unwrap_err();
            assert_eq!(err.condition(), "amqp:not-allowed", "{address}");
        }
    }

    #[test]
    fn topic_names_and_patterns() {
        let t = table();
        let Ok(Resolution::TopicName { topic, name }) = t.resolve("news/eu/de", Direction::Send)
        else {
            panic!()
        };
        assert_eq!(
            (topic.address.as_str(), name.as_str()),
            ("news", "news/eu/de")
        );
        assert!(matches!(
            t.resolve("news/eu/de", Direction::Receive),
            Ok(Resolution::TopicName { .. })
        ));
        let Ok(Resolution::TopicPattern { pattern, .. }) =
            t.resolve("news/+/de", Direction::Receive)
        else {
            panic!()
        };
        assert!(pattern.matches("news/eu/de") && !pattern.matches("news/eu/fr"));
        assert!(matches!(
            t.resolve("news/#", Direction::Receive),
            Ok(Resolution::TopicPattern { .. })
        ));
        assert_eq!(
            t.resolve("news/#", Direction::Send)
                .unwrap_err()
                .condition(),
            "amqp:not-allowed"
        );
        assert_eq!(
            t.resolve("news/#/x", Direction::Receive)
                .unwrap_err()
                .condition(),
            "amqp:invalid-field"
        );
    }

    #[test]
    fn subscriptions_by_topic_and_name() {
        let t = table();
        let Ok(Resolution::Subscription(n)) = t.resolve("news::news-eu", Direction::Receive) else {
            panic!()
        };
        assert_eq!(n.address, "news-eu");
    }

    #[test]
    fn duplicate_addresses_are_refused() {
        let err = AddressTable::new([node("a", NodeKind::Queue), node("a", NodeKind::Topic)])
            .unwrap_err();
        assert_eq!(err, RouteError::Duplicate("a".into()));
    }
}
