//! Source and target terminii (part 3 §3.5) and the standard lifetime policies for dynamic nodes.

use crate::composite::Fields;
use crate::enums::{TerminusDurability, TerminusExpiryPolicy};
use crate::transport::Outcome;
use crate::types::{Str, Symbol, Value};

crate::composite! {
    /// Where a link's messages come from (part 3 §3.5.3).
    pub struct Source = ("amqp:source:list", 0x28) {
        /// The address of the source; written even when null (`kept`), so that the list is never
        /// empty: pyamqp reads an empty one as no source and drops the attach.
        address: Str => kept,
        /// What terminus state is durable.
        durable: TerminusDurability => default(TerminusDurability::None),
        /// When the expiry timer starts.
        expiry_policy: TerminusExpiryPolicy => default(TerminusExpiryPolicy::SessionEnd),
        /// Seconds before the terminus expires.
        timeout: u32 => default(0),
        /// Ask the peer to create the node (request/reply).
        dynamic: bool => default(false),
        /// Properties of the dynamically created node.
        dynamic_node_properties: Fields => optional,
        /// `move` (competing consumers) or `copy` (browse).
        distribution_mode: Symbol => optional,
        /// Filters keyed by name; each value a described filter or null.
        filter: Fields => optional,
        /// Outcome for unsettled deliveries when the link closes.
        default_outcome: Outcome => optional,
        /// Outcomes the source supports.
        outcomes: Vec<Symbol> => default(Vec::new()),
        /// Extension capabilities of the source.
        capabilities: Vec<Symbol> => default(Vec::new()),
    }
}

crate::composite! {
    /// Where a link's messages go (part 3 §3.5.4).
    pub struct Target = ("amqp:target:list", 0x29) {
        /// The address of the target; written even when null (`kept`), so that the list is never
        /// empty: pyamqp reads an empty one as no target and drops the attach.
        address: Str => kept,
        /// What terminus state is durable.
        durable: TerminusDurability => default(TerminusDurability::None),
        /// When the expiry timer starts.
        expiry_policy: TerminusExpiryPolicy => default(TerminusExpiryPolicy::SessionEnd),
        /// Seconds before the terminus expires.
        timeout: u32 => default(0),
        /// Ask the peer to create the node.
        dynamic: bool => default(false),
        /// Properties of the dynamically created node.
        dynamic_node_properties: Fields => optional,
        /// Extension capabilities of the target.
        capabilities: Vec<Symbol> => default(Vec::new()),
    }
}

crate::composite! {
    /// Delete a dynamic node when the link that created it closes (part 3 §3.5.10).
    pub struct DeleteOnClose = ("amqp:delete-on-close:list", 0x2b) {}
}

crate::composite! {
    /// Delete a dynamic node when it has no links (part 3 §3.5.11).
    pub struct DeleteOnNoLinks = ("amqp:delete-on-no-links:list", 0x2c) {}
}

crate::composite! {
    /// Delete a dynamic node when it holds no messages (part 3 §3.5.12).
    pub struct DeleteOnNoMessages = ("amqp:delete-on-no-messages:list", 0x2d) {}
}

crate::composite! {
    /// Delete a dynamic node when it has neither links nor messages (part 3 §3.5.13).
    pub struct DeleteOnNoLinksOrMessages = ("amqp:delete-on-no-links-or-messages:list", 0x2e) {}
}

/// The `lifetime-policy` key of dynamic node properties (part 3 §3.5.9).
pub const LIFETIME_POLICY: Symbol = Symbol::from_static("lifetime-policy");
/// The `supported-dist-modes` key of dynamic node properties.
pub const SUPPORTED_DIST_MODES: Symbol = Symbol::from_static("supported-dist-modes");
/// Distribution mode: messages are moved to one consumer (competing consumers).
pub const DIST_MODE_MOVE: Symbol = Symbol::from_static("move");
/// Distribution mode: messages are copied (browsing).
pub const DIST_MODE_COPY: Symbol = Symbol::from_static("copy");

/// When a dynamic node is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum LifetimePolicy {
    DeleteOnClose,
    DeleteOnNoLinks,
    DeleteOnNoMessages,
    DeleteOnNoLinksOrMessages,
}

impl LifetimePolicy {
    /// The policy a dynamic-node-properties value names, if it is one of the four.
    pub fn from_value(value: &Value) -> Option<Self> {
        let Value::Described(d) = value else {
            return None;
        };
        let code = match &d.descriptor {
            Value::Ulong(code) => *code,
            Value::Symbol(name) => crate::descriptors::code_of(name.as_str())?,
            _ => return None,
        };
        Some(match code {
            0x2b => LifetimePolicy::DeleteOnClose,
            0x2c => LifetimePolicy::DeleteOnNoLinks,
            0x2d => LifetimePolicy::DeleteOnNoMessages,
            0x2e => LifetimePolicy::DeleteOnNoLinksOrMessages,
            _ => return None,
        })
    }

    /// The policy as a value for dynamic-node-properties.
    pub fn to_value(self) -> Value {
        let code = match self {
            LifetimePolicy::DeleteOnClose => 0x2b,
            LifetimePolicy::DeleteOnNoLinks => 0x2c,
            LifetimePolicy::DeleteOnNoMessages => 0x2d,
            LifetimePolicy::DeleteOnNoLinksOrMessages => 0x2e,
        };
        Value::Described(Box::new(crate::types::Described {
            descriptor: Value::Ulong(code),
            value: Value::List(Vec::new()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Encode;

    #[test]
    fn lifetime_policies_roundtrip_through_values() {
        for p in [
            LifetimePolicy::DeleteOnClose,
            LifetimePolicy::DeleteOnNoLinks,
            LifetimePolicy::DeleteOnNoMessages,
            LifetimePolicy::DeleteOnNoLinksOrMessages,
        ] {
            assert_eq!(LifetimePolicy::from_value(&p.to_value()), Some(p));
        }
        assert_eq!(LifetimePolicy::from_value(&Value::Null), None);
    }

    fn encoded<T: Encode>(value: &T) -> Vec<u8> {
        let mut out = bytes::BytesMut::new();
        value.encode(&mut out);
        assert_eq!(out.len(), value.encoded_size());
        out.to_vec()
    }

    #[test]
    fn a_terminus_without_an_address_keeps_its_null_address_field() {
        // [null], not the empty list (0x45) that pyamqp reads as no terminus at all.
        assert_eq!(
            encoded(&Target::default()),
            [0x00, 0x53, 0x29, 0xc0, 0x02, 0x01, 0x40]
        );
        assert_eq!(
            encoded(&Source::default()),
            [0x00, 0x53, 0x28, 0xc0, 0x02, 0x01, 0x40]
        );
        // Fields after the address still trim as before.
        let target = Target {
            address: Some("q".into()),
            ..Default::default()
        };
        assert_eq!(
            encoded(&target),
            [0x00, 0x53, 0x29, 0xc0, 0x04, 0x01, 0xa1, 0x01, b'q']
        );
        let dynamic = Source {
            dynamic: true,
            ..Default::default()
        };
        assert_eq!(
            encoded(&dynamic),
            [
                0x00, 0x53, 0x28, 0xc0, 0x06, 0x05, 0x40, 0x40, 0x40, 0x40, 0x41
            ]
        );
    }

    #[test]
    fn an_empty_terminus_list_still_decodes_as_the_default() {
        let buf = bytes::Bytes::from_static(&[0x00, 0x53, 0x29, 0x45]);
        let mut d = crate::types::Decoder::new(&buf);
        let target = crate::composite::decode_composite::<Target>(&mut d, "target");
        assert_eq!(target, Ok(Some(Target::default())));
    }
}
