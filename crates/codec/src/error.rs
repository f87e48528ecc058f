//! The codec's one error type, and the AMQP error condition each variant maps to.
//!
//! The codec reads bytes from unauthenticated peers, so every failure is an ordinary value: the
//! engine turns it into a `close` carrying [`CodecError::condition`] and the peer's connection
//! ends, nobody else's.

/// Why bytes could not be decoded, or a value could not be framed.
///
/// The kind is boxed so that the codec's `Result`s stay two words and come back in registers:
/// an error is rare, and every successful read of a byte should not pay for moving a 40-byte
/// error slot around.
#[derive(Clone, PartialEq, Eq)]
pub struct CodecError(Box<ErrorKind>);

impl CodecError {
    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.0
    }

    /// The AMQP error condition to close the connection with (part 2 §2.8.15, §2.8.16).
    pub fn condition(&self) -> &'static str {
        self.0.condition()
    }
}

impl From<ErrorKind> for CodecError {
    #[cold]
    #[inline(never)]
    fn from(kind: ErrorKind) -> Self {
        CodecError(Box::new(kind))
    }
}

impl std::fmt::Debug for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for CodecError {}

impl PartialEq<ErrorKind> for CodecError {
    fn eq(&self, other: &ErrorKind) -> bool {
        *self.0 == *other
    }
}

/// The kinds of [`CodecError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
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

impl ErrorKind {
    /// The AMQP error condition for this kind of error.
    ///
    /// This is the one table from codec errors to conditions; the engine uses it as is.
    pub fn condition(&self) -> &'static str {
        match self {
            ErrorKind::Truncated { .. }
            | ErrorKind::InvalidFormatCode(_)
            | ErrorKind::UnexpectedType { .. }
            | ErrorKind::InvalidValue { .. }
            | ErrorKind::MissingField(_)
            | ErrorKind::NestingTooDeep(_)
            | ErrorKind::ArrayTooLarge(_) => DECODE_ERROR,
            ErrorKind::Framing(_) | ErrorKind::FrameTooLarge { .. } | ErrorKind::NotAmqp => {
                FRAMING_ERROR
            }
            ErrorKind::FrameSizeTooSmall { .. } => FRAME_SIZE_TOO_SMALL,
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
            CodecError::from(ErrorKind::MissingField("open.container_id")).condition(),
            DECODE_ERROR
        );
        assert_eq!(
            ErrorKind::FrameTooLarge { size: 9, max: 8 }.condition(),
            FRAMING_ERROR
        );
        assert_eq!(
            ErrorKind::FrameSizeTooSmall {
                needed: 600,
                max: 512
            }
            .condition(),
            FRAME_SIZE_TOO_SMALL
        );
        let msg = ErrorKind::UnexpectedType {
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
