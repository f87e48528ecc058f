//! Who a connection's peer is once SASL has succeeded.

use std::sync::Arc;

use crate::rights::Rights;

/// A SASL mechanism this crate implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// RFC 4505.
    Anonymous,
    /// RFC 4616.
    Plain,
    /// RFC 7677.
    ScramSha256,
    /// RFC 5802 with SHA-512.
    ScramSha512,
    /// RFC 4422 appendix A: the TLS client certificate.
    External,
}

impl Mechanism {
    /// Every mechanism, in no particular order.
    pub const ALL: [Mechanism; 5] = [
        Mechanism::Anonymous,
        Mechanism::Plain,
        Mechanism::ScramSha256,
        Mechanism::ScramSha512,
        Mechanism::External,
    ];

    /// The SASL name, as offered in `sasl-mechanisms`.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Anonymous => "ANONYMOUS",
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::External => "EXTERNAL",
        }
    }

    /// The mechanism with SASL name `name` (exact, as SASL names are upper case).
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// What a principal may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grants {
    /// Service `none`: every right on every address.
    All,
    /// A MessagingUser's rights, looked up by username in the current
    /// [`Users`](crate::Users) snapshot at each check, so that a reload that changes the user
    /// applies to new attaches.
    User,
    /// Rights given explicitly (an external authentication server's `address-authz`, or a
    /// CBS token): pattern to operations.
    Explicit(Rights),
}

/// Who a connection's peer is, after SASL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The user name; `anonymous` for ANONYMOUS.
    pub username: Arc<str>,
    /// The mechanism that authenticated it.
    pub mechanism: Mechanism,
    /// What it may do.
    pub grants: Grants,
    /// A service-account token's expiry (Unix milliseconds): the broker closes the
    /// connection then.
    pub expires_at_ms: Option<i64>,
}

impl Principal {
    pub(crate) fn new(username: &str, mechanism: Mechanism, grants: Grants) -> Principal {
        Principal {
            username: Arc::from(username),
            mechanism,
            grants,
            expires_at_ms: None,
        }
    }
}
