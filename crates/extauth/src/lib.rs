//! Relaying a client's SASL exchange to an external AMQP authentication server: EnMasse's
//! "external authentication server API", used when an address space's `AuthenticationService`
//! has `type: external`.
//!
//! Owns: the client side of that API. [`probe_mechanisms`] asks the server which SASL
//! mechanisms it offers (Sluice offers the same to its clients). A [`Delegation`] runs one
//! client's exchange as a tokio task of its own: it connects (plain TCP or TLS), sends the
//! client's `sasl-init` with the realm as SASL hostname, relays challenges and responses, and
//! after `sasl-outcome` exchanges `open` (desiring `ADDRESS-AUTHZ`), reads who the user is and
//! what it may do from the server's connection properties ([`ExternalIdentity`]), then closes.
//!
//! ```text
//!  Delegation::start ──▶ connect, SASL header, sasl-init ──▶ Challenge ◀─┐
//!                                      │                        respond ─┘
//!                                      ▼
//!                         sasl-outcome ok? ── no ──▶ Refused(code)
//!                                      │ yes
//!                                      ▼
//!                  open ⇄ open (properties) ──▶ Authenticated(identity), close
//! ```
//!
//! Everything the server sends is bounded: SASL frames by [`SASL_FRAME_SIZE_MAX`], its `open`
//! by [`OPEN_FRAME_SIZE_MAX`], the properties, groups and `address-authz` entries by the
//! `*_MAX` constants, the rounds of challenges by [`CHALLENGES_MAX`], and the whole exchange by
//! [`ExternalServer::timeout`].
//!
//! Must not depend on: the broker, the auth crate or any other Sluice crate but
//! `sluice-engine` and `sluice-codec`. What a verdict means (which user, which addresses) is
//! the caller's.

#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

mod delegation;
mod error;
mod identity;
mod io;
mod probe;
mod server;
#[cfg(feature = "testing")]
pub mod testing;
mod tls;

use std::time::Duration;

pub use delegation::{Delegation, ExtStep};
pub use error::ExtAuthError;
pub use identity::ExternalIdentity;
pub use probe::probe_mechanisms;
pub use server::{ExternalServer, ExternalTls};

/// The connection capability that asks for (and offers) `address-authz`.
pub const ADDRESS_AUTHZ: &str = "ADDRESS-AUTHZ";

/// Default deadline for a whole delegated exchange, as EnMasse's authentication services
/// forced a disconnect after 10 s.
pub const TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
/// How long we wait for the server to answer our `close` once we have what we came for.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Largest SASL frame accepted from the server (a challenge): room for an OAuth token.
pub const SASL_FRAME_SIZE_MAX: u32 = 16 * 1024;
/// Largest initial response or response relayed to the server; the rest of
/// [`SASL_FRAME_SIZE_MAX`] leaves room for the frame, the mechanism and the realm.
pub const RESPONSE_BYTES_MAX: usize = 15 * 1024;
/// Largest frame accepted after SASL: the server's `open`, with the whole `address-authz`.
pub const OPEN_FRAME_SIZE_MAX: u32 = 256 * 1024;
/// Longest SASL mechanism name (RFC 4422 §3.1 allows 20 characters; some servers use more).
pub const MECHANISM_BYTES_MAX: usize = 64;
/// Longest realm (sent as the SASL hostname): a DNS name's limit.
pub const REALM_BYTES_MAX: usize = 255;
/// Most mechanisms read from the server's `sasl-mechanisms`.
pub const MECHANISMS_MAX: usize = 32;
/// Most rounds of challenge and response before the exchange is given up.
pub const CHALLENGES_MAX: usize = 16;
/// Most connection properties read from the server's `open`.
pub const PROPERTIES_MAX: usize = 64;
/// Most groups read from the `groups` property.
pub const GROUPS_MAX: usize = 1024;
/// Most address patterns read from the `address-authz` property.
pub const AUTHZ_ENTRIES_MAX: usize = 4096;
/// Most operations read for one address pattern in `address-authz`.
pub const AUTHZ_OPERATIONS_MAX: usize = 16;
