//! The EnMasse resource model for Sluice: parse, validate and resolve the manifests an
//! operations team keeps in git, and explain every problem with a [`Diagnostic`].
//!
//! Owns: the serde types of `AddressSpace`, `Address`, `MessagingUser`, `AddressSpacePlan`,
//! `AddressPlan`, `AuthenticationService` and the infra configs ([`resources`]); reading
//! multi-document YAML with the line of every field; the validation rules of the EnMasse API
//! (names, address types per space type, plans, subscriptions, dead-letter targets, duplicates,
//! quota); and the resolved model per address space ([`Config`]) that the broker serves.
//!
//! Sans-IO: [`check`] takes file names and contents. Only [`load_paths`], a convenience for the
//! binary, reads files and directories.
//!
//! Must not depend on: tokio, sockets, a clock or any other Sluice crate.

#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

mod connections;
mod diagnostic;
mod duplicates;
mod fs;
mod limits;
mod load;
mod model;
pub mod resources;
mod validate;
mod yaml;

pub use connections::{
    CONNECTIONS_MAX_DEFAULT, CONNECTIONS_PER_HOST_MAX_DEFAULT, CONNECTIONS_PER_USER_MAX_DEFAULT,
    ConnectionLimits, HANDSHAKE_TIMEOUT_DEFAULT, LinkLimits, RECEIVERS_PER_CONNECTION_MAX_DEFAULT,
    SENDERS_PER_CONNECTION_MAX_DEFAULT, SESSIONS_PER_CONNECTION_MAX_DEFAULT,
    UNAUTHENTICATED_CONNECTIONS_MAX_DEFAULT,
};
pub use diagnostic::{Diagnostic, Severity};
pub use duplicates::{
    DUPLICATE_IDS_DEFAULT, DUPLICATE_IDS_MAX, DUPLICATE_WINDOW_DEFAULT_MS, DUPLICATE_WINDOW_MAX_MS,
    DuplicateDetection, parse_duration_ms,
};

/// The prefix of the temporary queues the broker creates for dynamic receivers; reserved, so
/// no manifest's address can start with it.
pub const TEMPORARY_ADDRESS_PREFIX: &str = "_sluice.tmp.";
pub use fs::{ConfigError, load_paths, read_paths};
pub use limits::{AddressFullPolicy, StoreLimits, parse_address_full_policy, parse_size};
pub use load::{Located, Manifests, Origin, Source, parse_sources};
pub use model::{
    Checked, Config, DEAD_LETTER_DELIVERY_ATTEMPTS_DEFAULT, PendingAddress, RedeliveryDelay,
    ResolvedAddress, ResolvedAddressSpace,
};
pub use validate::resolve;

/// Parses, validates and resolves `sources`: every diagnostic at once, and the model of the
/// address spaces that are valid.
pub fn check(sources: &[Source]) -> Checked {
    let mut diagnostics = Vec::new();
    let manifests = parse_sources(sources, &mut diagnostics);
    let config = resolve(&manifests, &mut diagnostics);
    Checked {
        config,
        diagnostics,
    }
}
