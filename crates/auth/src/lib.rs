//! Sluice's authentication and authorization, as sans-IO code.
//!
//! Owns:
//! - the credentials and rights of one address space ([`Users`]), built once per
//!   configuration load from its `MessagingUser`s and shared by every connection;
//! - one connection's SASL exchange ([`Exchange`]): ANONYMOUS, PLAIN (RFC 4616),
//!   SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677, server side) and EXTERNAL. A check
//!   that needs a network round trip (a Kubernetes TokenReview of a service-account token) is
//!   returned as [`Step::Review`] and its result fed back with [`Exchange::reviewed`];
//! - authorization ([`authorize`]) against address patterns ([`Rights`]) with the matching
//!   rules of EnMasse's standard and brokered address spaces;
//! - Azure-style shared access signatures for `$cbs` put-token ([`verify_sas`]).
//!
//! Time is passed in (`now_ms`, Unix milliseconds) and randomness is passed in or taken from
//! the operating system; nothing here opens a socket or a file.
//!
//! Must not depend on: tokio, sockets, files, a clock, or any Sluice crate but
//! `sluice-config`.
//!
//! Against abuse: every field read from a client is bounded by a named constant below;
//! malformed input is a [`Step::Failure`], never a panic; an unknown user costs the same work
//! as a wrong password and fails at the same step; passwords and tokens never appear in a
//! `Debug` output or a reason string.

#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

mod authorize;
mod error;
mod exchange;
mod plain;
mod principal;
mod rights;
mod sas;
mod scram;
mod settings;
mod step;
mod users;

#[cfg(test)]
mod test_support;

pub use authorize::{Denied, authorize};
pub use error::AuthError;
pub use exchange::{Exchange, Random, SERVICE_ACCOUNT_USERNAME};
pub use principal::{Grants, Mechanism, Principal};
pub use rights::{Operation, Rights};
pub use sas::{SAS_TOKEN_BYTES_MAX, SasError, SasGrant, SasKey, verify_sas};
pub use settings::{AuthSettings, Service, Transport};
pub use step::{FailureCode, ReviewFailure, Reviewed, Step};
pub use users::{User, UserKind, Users};

/// Longest user name (PLAIN authcid and authzid, SCRAM `n=` and `a=`), in bytes.
pub const USERNAME_BYTES_MAX: usize = 255;
/// Longest password or service-account token (PLAIN), in bytes. Bound service-account tokens
/// are 1.5 to 4 KiB.
pub const PASSWORD_BYTES_MAX: usize = 8 * 1024;
/// Longest SCRAM client-first or client-final message, in bytes.
pub const SCRAM_MESSAGE_BYTES_MAX: usize = 1024;
/// Longest SCRAM client nonce, in bytes.
pub const SCRAM_NONCE_BYTES_MAX: usize = 256;
/// Longest ANONYMOUS trace information (RFC 4505 allows 255 characters, up to 4 bytes each).
pub const ANONYMOUS_TRACE_BYTES_MAX: usize = 1024;
/// The SCRAM iteration count used when none is configured (RFC 7677's minimum).
pub const SCRAM_ITERATIONS_DEFAULT: u32 = 4096;
/// The lowest SCRAM iteration count accepted in [`AuthSettings`] (RFC 7677 §4: at least 4096).
pub const SCRAM_ITERATIONS_MIN: u32 = 4096;
/// The highest SCRAM iteration count accepted in [`AuthSettings`]: every PLAIN login and every
/// load costs this many HMACs per user, so it bounds the CPU a login can take.
pub const SCRAM_ITERATIONS_MAX: u32 = 1_000_000;
