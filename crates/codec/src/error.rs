//! The codec's one error type, and the AMQP error condition each variant maps to.
//!
//! The codec reads bytes from unauthenticated peers, so every failure is an ordinary value: the
//! engine turns it into a `close` carrying [`CodecError::condition`] and the peer's connection
//! ends, nobody else's.

/// Why bytes could not be decoded, or a value could not be framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The input ended inside a value: more bytes were declared or needed than were present.
    #[error("truncated input: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the value needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// A byte in constructor position is not an AMQP 1.0 format code.
    #[error("invalid format code 0x{0:02x}")]
    InvalidFormatCode(u8),
    /// A field or value had a different AMQP type than the definition requires.
    #[error("{field}: expected {expected}, found format code 0x{found:02x}")]
    UnexpectedType {
        /// The field being decoded, as `composite.field`.
        field: &'static str,
        /// The AMQP type the definition requires.
        expected: &'static str,
        /// The format code found instead.
        found: u8,
    },
    /// A value was well-formed but not allowed where it appeared.
    #[error("{field}: {reason}")]
    InvalidValue {
        /// The field or construct being decoded.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A mandatory field was absent or null.
    #[error("{0}: mandatory field is missing")]
    MissingField(&'static str),
    /// Compound values nested deeper than [`crate::types::NESTING_DEPTH_MAX`].
    #[error("values nested deeper than {0} levels")]
    NestingTooDeep(usize),
    /// More zero-width array elements than the input could justify (see
    /// [`crate::types::Decoder`]): refused before allocating them.
    #[error("array of {0} zero-width elements exceeds the decoder's element budget")]
    ArrayTooLarge(usize),
    /// A frame header that cannot be valid (size below 8, data offset below 2 or past the end).
    #[error("malformed frame: {0}")]
    Framing(&'static str),
    /// A peer sent a frame larger than the maximum frame size it agreed to.
    #[error("frame of {size} bytes exceeds the maximum frame size of {max}")]
    FrameTooLarge {
        /// The size declared in the frame header.
        size: u32,
        /// The negotiated maximum.
        max: u32,
    },
    /// A protocol header that does not start with `AMQP`.
    #[error("not an AMQP protocol header")]
    NotAmqp,
    /// The smallest encoding of a performative does not fit the agreed maximum frame size.
    #[error("{needed} bytes are needed but the maximum frame size is {max}")]
    FrameSizeTooSmall {
        /// Bytes the frame would need.
        needed: usize,
        /// The agreed maximum.
        max: u32,
    },
}

/// `amqp:decode-error`: data could not be decoded.
pub const DECODE_ERROR: &str = "amqp:decode-error";
/// `amqp:frame-size-too-small`: a performative cannot fit the agreed maximum frame size.
pub const FRAME_SIZE_TOO_SMALL: &str = "amqp:frame-size-too-small";
/// `amqp:connection:framing-error`: a frame was malformed or too large.
pub const FRAMING_ERROR: &str = "amqp:connection:framing-error";

impl CodecError {
    /// The AMQP error condition to close the connection with (part 2 §2.8.15, §2.8.16).
    ///
    /// This is the one table from codec errors to conditions; the engine uses it as is.
    pub fn condition(&self) -> &'static str {
        match self {
            CodecError::Truncated { .. }
            | CodecError::InvalidFormatCode(_)
            | CodecError::UnexpectedType { .. }
            | CodecError::InvalidValue { .. }
            | CodecError::MissingField(_)
            | CodecError::NestingTooDeep(_)
            | CodecError::ArrayTooLarge(_) => DECODE_ERROR,
            CodecError::Framing(_) | CodecError::FrameTooLarge { .. } | CodecError::NotAmqp => {
                FRAMING_ERROR
            }
            CodecError::FrameSizeTooSmall { .. } => FRAME_SIZE_TOO_SMALL,
        }
    }
}

/// The codec's result type.
pub type Result<T, E = CodecError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_cover_the_three_amqp_errors() {
        assert_eq!(
            CodecError::MissingField("open.container_id").condition(),
            DECODE_ERROR
        );
        assert_eq!(
            CodecError::FrameTooLarge { size: 9, max: 8 }.condition(),
            FRAMING_ERROR
        );
        assert_eq!(
            CodecError::FrameSizeTooSmall {
                needed: 600,
                max: 512
            }
            .condition(),
            FRAME_SIZE_TOO_SMALL
        );
        let msg = CodecError::UnexpectedType {
            field: "attach.handle",
            expected: "uint",
            found: 0xa1,
        };
        assert_eq!(
            msg.to_string(),
            "attach.handle: expected uint, found format code 0xa1"
        );
    }
}
