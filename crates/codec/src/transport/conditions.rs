//! Error condition symbols defined by the spec (part 2 §2.8.15 to §2.8.18, part 4 §4.5.8).

use crate::types::Symbol;

macro_rules! conditions {
    ($( $(#[$m:meta])* $name:ident = $value:literal; )*) => {
        $( $(#[$m])* pub const $name: Symbol = Symbol::from_static($value); )*
        /// Every condition the spec defines.
        pub const ALL: &[&str] = &[$($value),*];
    };
}

conditions! {
    /// An internal error occurred.
    INTERNAL_ERROR = "amqp:internal-error";
    /// A peer attempted to work with a remote entity that does not exist.
    NOT_FOUND = "amqp:not-found";
    /// A peer attempted to work with a remote entity to which it has no access.
    UNAUTHORIZED_ACCESS = "amqp:unauthorized-access";
    /// Data could not be decoded.
    DECODE_ERROR = "amqp:decode-error";
    /// A peer exceeded its resource allocation.
    RESOURCE_LIMIT_EXCEEDED = "amqp:resource-limit-exceeded";
    /// The peer tried to use a frame in a manner that is inconsistent with the spec.
    NOT_ALLOWED = "amqp:not-allowed";
    /// An invalid field was passed in a frame body.
    INVALID_FIELD = "amqp:invalid-field";
    /// The peer tried to use functionality that is not implemented.
    NOT_IMPLEMENTED = "amqp:not-implemented";
    /// The client attempted to work with a locked entity.
    RESOURCE_LOCKED = "amqp:resource-locked";
    /// The client made a request that was not allowed because a precondition failed.
    PRECONDITION_FAILED = "amqp:precondition-failed";
    /// A referenced entity was deleted.
    RESOURCE_DELETED = "amqp:resource-deleted";
    /// The peer sent a frame that is not permitted in the current state.
    ILLEGAL_STATE = "amqp:illegal-state";
    /// A performative cannot fit the agreed maximum frame size.
    FRAME_SIZE_TOO_SMALL = "amqp:frame-size-too-small";
    /// An operator intervened to close the connection.
    CONNECTION_FORCED = "amqp:connection:forced";
    /// A valid frame header cannot be formed from the incoming byte stream.
    FRAMING_ERROR = "amqp:connection:framing-error";
    /// The container is no longer available on the current connection.
    CONNECTION_REDIRECT = "amqp:connection:redirect";
    /// The peer violated incoming window for the session.
    WINDOW_VIOLATION = "amqp:session:window-violation";
    /// Input was received for a link that was detached with an error.
    ERRANT_LINK = "amqp:session:errant-link";
    /// An attach was received using a handle that is already in use for an attached link.
    HANDLE_IN_USE = "amqp:session:handle-in-use";
    /// A frame (other than attach) was received referencing a handle which is not in use.
    UNATTACHED_HANDLE = "amqp:session:unattached-handle";
    /// An operator intervened to detach for some reason.
    DETACH_FORCED = "amqp:link:detach-forced";
    /// The peer sent more message transfers than currently allowed on the link.
    TRANSFER_LIMIT_EXCEEDED = "amqp:link:transfer-limit-exceeded";
    /// The peer sent a larger message than is supported on the link.
    MESSAGE_SIZE_EXCEEDED = "amqp:link:message-size-exceeded";
    /// The address provided cannot be resolved to a terminus at the current container.
    LINK_REDIRECT = "amqp:link:redirect";
    /// The link has been attached elsewhere, causing the existing attachment to be forcibly closed.
    STOLEN = "amqp:link:stolen";
    /// The specified txn-id does not exist.
    TRANSACTION_UNKNOWN_ID = "amqp:transaction:unknown-id";
    /// The transaction was rolled back for a reason other than a discharge.
    TRANSACTION_ROLLBACK = "amqp:transaction:rollback";
    /// The time allowed for the transaction has passed.
    TRANSACTION_TIMEOUT = "amqp:transaction:timeout";
}

#[cfg(test)]
mod tests {
    #[test]
    fn codec_error_conditions_are_spec_conditions() {
        for c in [
            crate::error::DECODE_ERROR,
            crate::error::FRAMING_ERROR,
            crate::error::FRAME_SIZE_TOO_SMALL,
        ] {
            assert!(super::ALL.contains(&c), "{c}");
        }
    }
}
