//! Why a delegated exchange (or a probe) did not reach a verdict.

use std::path::PathBuf;

/// A failure talking to the external authentication server. A [`crate::ExtStep::Refused`] is
/// not an error: it is the server's verdict.
#[derive(Debug, thiserror::Error)]
pub enum ExtAuthError {
    /// The TCP connection could not be made.
    #[error("cannot connect to the external authentication server {host}:{port}: {source}")]
    Connect {
        /// The server's host.
        host: String,
        /// The server's port.
        port: u16,
        /// What the system said.
        source: std::io::Error,
    },
    /// A TLS file (CA bundle, client certificate or key) could not be used.
    #[error("TLS file {path}: {reason}")]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS configuration or handshake failed.
    #[error("TLS to the external authentication server {host}: {reason}")]
    Tls {
        /// The server's host.
        host: String,
        /// What failed.
        reason: String,
    },
    /// The exchange did not finish within [`crate::ExternalServer::timeout`].
    #[error("the external authentication server did not answer in time")]
    Timeout,
    /// The server broke the protocol or sent something this API does not allow.
    #[error("external authentication server: {0}")]
    Protocol(String),
    /// The server does not offer the mechanism the client chose.
    #[error("the external authentication server does not offer SASL mechanism {0}")]
    MechanismNotOffered(String),
    /// The server sent (or the client gave) more than a limit allows.
    #[error("too large: {0}")]
    TooLarge(String),
    /// The connection ended, or could not be read or written, before a verdict.
    #[error("the connection to the external authentication server was lost: {0}")]
    Disconnected(String),
    /// `respond` was called when no challenge was waiting for an answer.
    #[error("no SASL challenge is waiting for a response")]
    NotChallenged,
    /// The mechanism name cannot be sent (not ASCII, empty or too long).
    #[error("invalid SASL mechanism name {0:?}")]
    InvalidMechanism(String),
    /// The realm cannot be sent as a SASL hostname (too long).
    #[error("invalid realm: {0}")]
    InvalidRealm(String),
}
