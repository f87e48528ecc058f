//! Why a connection ended, as the AMQP error it was (or will be) closed with.

use sluice_codec::CodecError;
use sluice_codec::transport::{Error, conditions};
use sluice_codec::types::Symbol;

/// A connection-level failure: the condition and description sent to the peer in `close`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{condition}: {description}")]
pub struct ConnectionError {
    /// The AMQP error condition.
    pub condition: Symbol,
    /// What happened, for the peer and for our logs.
    pub description: String,
}

impl ConnectionError {
    /// An error with a spec condition.
    pub fn new(condition: Symbol, description: impl Into<String>) -> Self {
        ConnectionError {
            condition,
            description: description.into(),
        }
    }

    /// The peer broke a rule of the protocol (part 2 §2.8.15 `amqp:not-allowed`).
    pub fn not_allowed(description: impl Into<String>) -> Self {
        ConnectionError::new(conditions::NOT_ALLOWED, description)
    }

    /// The `error` to put in a `close`.
    pub fn to_amqp(&self) -> Error {
        Error::new(self.condition.clone(), self.description.as_str())
    }
}

impl From<CodecError> for ConnectionError {
    fn from(e: CodecError) -> Self {
        let condition = Symbol::try_from(e.condition()).unwrap_or(conditions::DECODE_ERROR);
        ConnectionError::new(condition, e.to_string())
    }
}
