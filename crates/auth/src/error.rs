//! The crate's one error type.

use thiserror::Error;

/// What went wrong loading users, checking settings or verifying a SAS token.
///
/// Load errors name the MessagingUser (`metadata.name`) and the field. No variant ever holds a
/// password, a token or a key.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// A password is not valid base64 (EnMasse's manifests carry the password base64-encoded).
    #[error("MessagingUser {user:?}: spec.authentication.password is not valid base64: {reason}")]
    PasswordBase64 {
        /// The user's `metadata.name`.
        user: String,
        /// What the decoder said (never the value).
        reason: String,
    },
    /// A decoded password is empty or longer than [`crate::PASSWORD_BYTES_MAX`].
    #[error(
        "MessagingUser {user:?}: spec.authentication.password decodes to {bytes} bytes; it must be 1 to {max} bytes"
    )]
    PasswordLength {
        /// The user's `metadata.name`.
        user: String,
        /// The decoded length.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// Two MessagingUsers of one address space have the same `spec.username`.
    #[error("MessagingUser {user:?}: spec.username {username:?} is also the username of {other:?}")]
    DuplicateUsername {
        /// The later user's `metadata.name`.
        user: String,
        /// The shared username.
        username: String,
        /// The earlier user's `metadata.name`.
        other: String,
    },
    /// `AuthSettings.scram_iterations` is out of range.
    #[error("scram_iterations {iterations} is out of range {min}..={max}")]
    Iterations {
        /// The configured value.
        iterations: u32,
        /// The lowest accepted.
        min: u32,
        /// The highest accepted.
        max: u32,
    },
    /// The operating system gave no random bytes.
    #[error("no random bytes from the operating system: {0}")]
    Random(String),
    /// A SAS token is longer than [`crate::SAS_TOKEN_BYTES_MAX`].
    #[error("SAS token is {bytes} bytes; at most {max} are accepted")]
    SasTooLong {
        /// Its length.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// A SAS token is not of the form `SharedAccessSignature sr=..&sig=..&se=..&skn=..`.
    #[error("SAS token is malformed: {0}")]
    SasMalformed(&'static str),
    /// A SAS token names a key this address space does not have.
    #[error("SAS token names unknown key {0:?}")]
    SasUnknownKey(String),
    /// A SAS token's signature does not match its key.
    #[error("SAS token signature does not match key {0:?}")]
    SasBadSignature(String),
    /// A SAS token has expired.
    #[error("SAS token expired at {expires_at_ms} ms (now {now_ms} ms)")]
    SasExpired {
        /// Its expiry, Unix milliseconds.
        expires_at_ms: i64,
        /// The time it was checked.
        now_ms: i64,
    },
}
