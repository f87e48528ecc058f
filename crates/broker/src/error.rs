//! Why the broker refuses something a client asked for: one typed error, and the one table
//! ([`Refusal::condition`]) that maps it to the AMQP error condition the client is answered
//! with (a refused attach's detach, or a rejected delivery). Nothing else in the broker writes
//! a condition by hand.

use sluice_codec::CodecError;
use sluice_codec::transport::{Error, conditions};
use sluice_codec::types::Symbol;
use sluice_router::RouteError;
use sluice_store::StoreError;

/// A refusal of one link or one message, for that peer only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// The address does not resolve, or is not usable in that direction.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// The node an id named is gone (a temporary queue whose receiver left, say).
    #[error("'{0}' no longer exists")]
    Gone(String),
    /// A named subscription already has its `maxConsumers`.
    #[error("subscription '{address}' already has its {max} consumer(s)")]
    TooManyConsumers {
        /// The subscription.
        address: String,
        /// Its `maxConsumers`.
        max: u32,
    },
    /// A topic already has the most private subscribers it serves.
    #[error("topic '{address}' already has its limit of {max} subscribers")]
    TooManySubscribers {
        /// The topic.
        address: String,
        /// The limit.
        max: usize,
    },
    /// A message larger than its destination can ever hold.
    #[error("a message of {size} bytes can never fit '{address}' (at most {max} bytes)")]
    NeverFits {
        /// The destination.
        address: String,
        /// The message's size.
        size: usize,
        /// The destination's byte limit.
        max: usize,
    },
    /// A full destination already holds as many waiting publishes as it may.
    #[error(
        "'{address}' is full and already holds {max} bytes of publishes waiting for room; \
         retry later"
    )]
    WaitingFull {
        /// The destination.
        address: String,
        /// The bytes it may hold waiting.
        max: usize,
    },
    /// The store refused (a full queue, or the broker's own bookkeeping).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A message that does not decode.
    #[error("the message does not decode: {0}")]
    Decode(#[from] CodecError),
    /// A message on an anonymous-relay link without a `to`.
    #[error("a message on an anonymous link needs a 'to'")]
    NoTo,
    /// A receiving link without a source address that is not dynamic.
    #[error("a receiver needs a source address, or a dynamic source")]
    NoSource,
    /// A sending link asked for a dynamic target.
    #[error("dynamic targets are not served: attach a dynamic receiver for a temporary queue")]
    DynamicTarget,
    /// The peer has no right to this address in this direction (why, for the client).
    #[error("{0}")]
    Unauthorized(String),
    /// A receiver for a temporary queue another link created.
    #[error("'{0}' is a temporary queue of another link: only its creator may receive from it")]
    NotOwner(String),
    /// A connection past a connection limit (in all, per host, per user, authenticating).
    #[error(transparent)]
    Admission(#[from] crate::gate::Refused),
    /// A client that skipped SASL where authentication is required.
    #[error("authentication is required: no mechanism is available")]
    AuthenticationRequired,
    /// The credentials the connection was authenticated with (a token) expired.
    #[error("the credentials of '{0}' expired")]
    Expired(String),
    /// The connection has its most links of this kind.
    #[error("the connection already has its limit of {max} {kind}")]
    TooManyLinks {
        /// "senders" or "receivers".
        kind: &'static str,
        /// The limit.
        max: u32,
    },
    /// A receiver's source filter that does not compile (a selector that does not parse).
    #[error("{0}")]
    Filter(String),
    /// A transfer on a link where the broker sends: the engine refuses those first, so this is
    /// only the type system's completeness.
    #[error("this link carries messages the other way")]
    WrongDirection,
}

impl Refusal {
    /// The AMQP error condition for the refusal.
    pub(crate) fn condition(&self) -> Symbol {
        match self {
            Refusal::Route(e) => e.condition(),
            Refusal::Gone(_) => conditions::NOT_FOUND,
            Refusal::TooManyConsumers { .. }
            | Refusal::TooManySubscribers { .. }
            | Refusal::NeverFits { .. }
            | Refusal::WaitingFull { .. } => conditions::RESOURCE_LIMIT_EXCEEDED,
            Refusal::Store(e) => e.condition(),
            Refusal::Decode(e) => Symbol::from_static(e.condition()),
            Refusal::NoTo | Refusal::NoSource | Refusal::Filter(_) => conditions::INVALID_FIELD,
            Refusal::DynamicTarget => conditions::NOT_IMPLEMENTED,
            Refusal::WrongDirection => conditions::NOT_ALLOWED,
            Refusal::Unauthorized(_) | Refusal::NotOwner(_) => conditions::UNAUTHORIZED_ACCESS,
            Refusal::TooManyLinks { .. } | Refusal::Admission(_) => {
                conditions::RESOURCE_LIMIT_EXCEEDED
            }
            Refusal::AuthenticationRequired | Refusal::Expired(_) => {
                conditions::UNAUTHORIZED_ACCESS
            }
        }
    }

    /// The AMQP error: the condition and this refusal's description.
    pub(crate) fn to_amqp(&self) -> Error {
        Error::new(self.condition(), self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_names_its_condition_and_says_why() {
        let cases = [
            (
                Refusal::Route(RouteError::NotFound("x".into())),
                "amqp:not-found",
            ),
            (Refusal::Gone("_sluice.tmp.1.0".into()), "amqp:not-found"),
            (
                Refusal::WaitingFull {
                    address: "q".into(),
                    max: 10,
                },
                "amqp:resource-limit-exceeded",
            ),
            (Refusal::NoTo, "amqp:invalid-field"),
            (
                Refusal::Filter("the selector 'a =' does not parse: at column 4".into()),
                "amqp:invalid-field",
            ),
            (
                Refusal::Admission(crate::gate::Refused::Connections { max: 1 }),
                "amqp:resource-limit-exceeded",
            ),
            (Refusal::AuthenticationRequired, "amqp:unauthorized-access"),
            (Refusal::Expired("app".into()), "amqp:unauthorized-access"),
            (
                Refusal::Unauthorized("user 'a' may not send to 'q'".into()),
                "amqp:unauthorized-access",
            ),
            (
                Refusal::NotOwner("_sluice.tmp.1.0".into()),
                "amqp:unauthorized-access",
            ),
            (
                Refusal::TooManyLinks {
                    kind: "senders",
                    max: 1,
                },
                "amqp:resource-limit-exceeded",
            ),
            (Refusal::DynamicTarget, "amqp:not-implemented"),
        ];
        for (refusal, condition) in cases {
            let error = refusal.to_amqp();
            assert_eq!(error.condition, condition);
            assert!(error.description.is_some_and(|d| !d.as_str().is_empty()));
        }
    }
}
