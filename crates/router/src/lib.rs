//! Address routing for Sluice: the address table of one address space and the rules that map an
//! address (an attach's source or target, or a message's `to`) onto a node.
//!
//! Owns: address resolution and topic-name matching — exact addresses; `<topic>/<levels>` names
//! under a topic; receivers' `+` and `#` patterns; `<topic>::<subscription>`; which directions
//! each address type allows. The table is built once from plain [`NodeSpec`]s and never changes:
//! a reload builds a new one and swaps it whole.
//!
//! Must not depend on: IO, a runtime, the clock, any Sluice crate but `sluice-codec` (for the
//! error conditions), or the configuration crate's serde types (the broker turns resolved
//! configuration into [`NodeSpec`]s), so it stays a pure function of its input and can route
//! for remote nodes as well as local ones. Addresses resolve to [`NodeId`]s, which the broker
//! assigns; the table never interprets them.

#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

mod table;
mod topic;

pub use table::{AddressTable, Direction, NodeId, NodeKind, NodeSpec, Resolution, RouteError};
pub use topic::{TopicPattern, split_topic};
