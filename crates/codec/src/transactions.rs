//! AMQP 1.0 part 4, transactions: the coordinator target, declare and discharge messages, and
//! the declared and transactional delivery states.

use bytes::Bytes;

use crate::transport::Outcome;
use crate::types::{Symbol, Value};

crate::composite! {
    /// The target of a link to a transaction coordinator (part 4 §4.5.1).
    pub struct Coordinator = ("amqp:coordinator:list", 0x30) {
        /// Transaction capabilities the coordinator must have.
        capabilities: Vec<Symbol> => default(Vec::new()),
    }
}

crate::composite! {
    /// Message body that declares a transaction (part 4 §4.5.2).
    pub struct Declare = ("amqp:declare:list", 0x31) {
        /// Global transaction id, for distributed transactions.
        global_id: Value => optional,
    }
}

crate::composite! {
    /// Message body that ends a transaction (part 4 §4.5.3).
    pub struct Discharge = ("amqp:discharge:list", 0x32) {
        /// The transaction.
        txn_id: Bytes => required,
        /// Roll back rather than commit.
        fail: bool => optional,
    }
}

crate::composite! {
    /// Outcome of a declare: the new transaction's id (part 4 §4.5.5).
    pub struct Declared = ("amqp:declared:list", 0x33) {
        /// The transaction id.
        txn_id: Bytes => required,
    }
}

crate::composite! {
    /// State of a delivery within a transaction (part 4 §4.5.6).
    pub struct TransactionalState = ("amqp:transactional-state:list", 0x34) {
        /// The transaction.
        txn_id: Bytes => required,
        /// The provisional outcome. Boxed so that every delivery state stays small.
        outcome: Box<Outcome> => optional,
    }
}

/// Local transactions capability.
pub const LOCAL_TRANSACTIONS: Symbol = Symbol::from_static("amqp:local-transactions");
/// Distributed transactions capability.
pub const DISTRIBUTED_TRANSACTIONS: Symbol = Symbol::from_static("amqp:distributed-transactions");
/// Promotable transactions capability.
pub const PROMOTABLE_TRANSACTIONS: Symbol = Symbol::from_static("amqp:promotable-transactions");
/// Several transactions per session capability.
pub const MULTI_TXNS_PER_SSN: Symbol = Symbol::from_static("amqp:multi-txns-per-ssn");
/// One transaction across several sessions capability.
pub const MULTI_SSNS_PER_TXN: Symbol = Symbol::from_static("amqp:multi-ssns-per-txn");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Encode;

    #[test]
    fn a_null_global_id_is_encoded_as_absent() {
        // `Some(Value::Null)` in an optional `*` field is null: trimmed like `None`, so the
        // encoding is the compact `list0` one and decodes back to the same declare.
        let declare = Declare {
            global_id: Some(Value::Null),
        };
        let bytes = declare.to_bytes();
        assert_eq!(bytes.as_ref(), [0x00, 0x53, 0x31, 0x45]);
        assert_eq!(declare.encoded_size(), bytes.len());
    }
}
