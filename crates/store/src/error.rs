//! The store's one error type.

use sluice_codec::transport::conditions;
use sluice_codec::types::Symbol;

use crate::queue::{ConsumerId, MessageId};

/// Why a queue operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The queue already holds `messages_max` messages (queued and in flight).
    #[error("queue full: it holds its limit of {messages_max} messages")]
    DepthLimit {
        /// The queue's message limit.
        messages_max: usize,
    },
    /// Storing the message would take the queue over `bytes_max`.
    #[error("queue full: {message_bytes} more bytes would exceed its limit of {bytes_max} bytes")]
    BytesLimit {
        /// The size of the refused message.
        message_bytes: usize,
        /// The queue's byte limit.
        bytes_max: usize,
    },
    /// A consumer with this id is already attached.
    #[error("consumer {0:?} is already attached to this queue")]
    DuplicateConsumer(ConsumerId),
    /// No consumer with this id is attached.
    #[error("consumer {0:?} is not attached to this queue")]
    UnknownConsumer(ConsumerId),
    /// The message is not an unsettled delivery of this consumer.
    #[error("message {message:?} is not an unsettled delivery of consumer {consumer:?}")]
    NotInFlight {
        /// The consumer that settled.
        consumer: ConsumerId,
        /// The message it named.
        message: MessageId,
    },
}

impl StoreError {
    /// The AMQP error condition the broker answers with (the one table mapping store errors to
    /// the wire). The consumer and delivery errors are the broker's own bookkeeping going wrong,
    /// never something a peer can cause by itself, hence `internal-error`.
    pub fn condition(&self) -> Symbol {
        match self {
            StoreError::DepthLimit { .. } | StoreError::BytesLimit { .. } => {
                conditions::RESOURCE_LIMIT_EXCEEDED
            }
            StoreError::DuplicateConsumer(_)
            | StoreError::UnknownConsumer(_)
            | StoreError::NotInFlight { .. } => conditions::INTERNAL_ERROR,
        }
    }
}
