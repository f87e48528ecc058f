//! Sluice's queue store: what a `queue` (or `deadletter`) address keeps and how it hands it out.
//!
//! Owns: the in-memory [`Queue`]: stored messages by priority, then in arrival order, competing
//! consumers served
//! round robin by credit, delivery outcomes (accepted, released, modified, rejected), requeueing
//! the unsettled deliveries of a consumer that goes away, message expiry from the header TTL or
//! `absolute-expiry-time` clamped by the address's `messageTtl` policy, the redelivery limit,
//! dead-letter and expiry hand-off ([`Forward`]), the depth and byte limits, the counters the
//! broker exports as metrics, paging (a queue past its memory budget keeps only references to
//! messages whose bodies are in the journal), the [`Change`]s a durable queue's journal must
//! record, the [`DuplicateWindow`] of `message-id`s a queue with duplicate detection accepted
//! lately, and the [`journal`] that writes them.
//!
//! Must not depend on: tokio, sockets, files, a clock or any Sluice crate but `sluice-codec`.
//! The current time comes in as `now_ms` (milliseconds since the Unix epoch, as AMQP timestamps
//! are), so the store runs in memory, deterministically, under property tests and fuzzing. Which
//! address a dead-lettered or expired message goes to is the router's business: the queue only
//! knows whether a target exists, and hands the message back through [`Queue::poll_forward`].
//!
//! A message stays the [`Bytes`](bytes::Bytes) it arrived in. Only when it is handed out again
//! after a failed or abandoned delivery is its header re-encoded (raised `delivery-count`,
//! `first-acquirer` false) in front of the untouched bare message.

#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

mod change;
mod duplicates;
mod error;
pub mod journal;
mod policy;
mod queue;

pub use change::Change;
pub use duplicates::{DUPLICATE_ID_BYTES_MAX, DuplicateLimits, DuplicateWindow, RememberedId};
pub use error::StoreError;
pub use policy::{
    BYTES_MAX_DEFAULT, MESSAGES_MAX_DEFAULT, QueuePolicy, TtlPolicy, expiry_instant_ms,
};
pub use queue::{
    ConsumerId, ConsumerOptions, DISPATCH_SKIPS_MAX, Delivery, Forward, ForwardReason,
    MessageFilter, MessageId, Outcome, PAGE_IN_BYTES_MAX, Queue, QueueCounters, QueueStats,
};
