//! What an exchange answers to each client frame.

use std::fmt;

use bytes::Bytes;

use crate::principal::Principal;

/// The next thing the broker does in a SASL exchange.
#[derive(Clone, PartialEq, Eq)]
pub enum Step {
    /// Send a `sasl-challenge` with these bytes and wait for the `sasl-response`.
    Challenge(Bytes),
    /// Authenticated: send `sasl-outcome` ok. For SCRAM `additional_data` carries the
    /// server-final message (`v=<server signature>`) for the outcome's additional-data.
    Success {
        /// Who the peer is.
        principal: Principal,
        /// The outcome's additional-data.
        additional_data: Option<Bytes>,
    },
    /// Refused: send `sasl-outcome` with `code`. `reason` is for the log only: it never holds
    /// a password or a token, and the client must not learn it (it would tell an unknown user
    /// from a wrong password).
    Failure {
        /// The SASL outcome code.
        code: FailureCode,
        /// Why, for the log.
        reason: String,
    },
    /// Waiting for a Kubernetes TokenReview of `token`: the broker makes it and calls
    /// [`Exchange::reviewed`](crate::Exchange::reviewed) with the result.
    Review {
        /// The bearer token to review. Not printed by `Debug`.
        token: String,
    },
}

impl Step {
    pub(crate) fn fail(code: FailureCode, reason: impl Into<String>) -> Step {
        Step::Failure {
            code,
            reason: reason.into(),
        }
    }

    /// A refusal for bad credentials or a malformed exchange.
    pub(crate) fn auth(reason: impl Into<String>) -> Step {
        Step::fail(FailureCode::Auth, reason)
    }
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Challenge(bytes) => f.debug_tuple("Challenge").field(bytes).finish(),
            Step::Success {
                principal,
                additional_data,
            } => f
                .debug_struct("Success")
                .field("principal", principal)
                .field("additional_data", additional_data)
                .finish(),
            Step::Failure { code, reason } => f
                .debug_struct("Failure")
                .field("code", code)
                .field("reason", reason)
                .finish(),
            Step::Review { .. } => f
                .debug_struct("Review")
                .field("token", &"<redacted>")
                .finish(),
        }
    }
}

/// A `sasl-outcome` code other than ok (AMQP 1.0 §5.3.3.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureCode {
    /// 1: bad credentials or a malformed exchange.
    Auth,
    /// 2: a system error.
    Sys,
    /// 3: a permanent system error.
    SysPerm,
    /// 4: a transient system error (e.g. the Kubernetes API server is unreachable).
    SysTemp,
}

impl FailureCode {
    /// The `sasl-code` value on the wire.
    pub fn code(self) -> u8 {
        match self {
            FailureCode::Auth => 1,
            FailureCode::Sys => 2,
            FailureCode::SysPerm => 3,
            FailureCode::SysTemp => 4,
        }
    }
}

/// A TokenReview that authenticated the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reviewed {
    /// `status.user.username`, e.g. `system:serviceaccount:<ns>:<name>`.
    pub username: String,
    /// When the token expires (Unix milliseconds), if known.
    pub expires_at_ms: Option<i64>,
}

/// A TokenReview that did not authenticate the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReviewFailure {
    /// The API server answered that the token is not valid.
    Rejected(String),
    /// The review could not be made (API server unreachable, timeout, ...).
    Unavailable(String),
}
