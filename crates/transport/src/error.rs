//! The crate's one error type.

use std::io;
use std::path::PathBuf;

/// What went wrong while loading TLS material or accepting a connection.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Reading from or writing to the socket failed (also: the peer closed it).
    #[error("connection I/O failed: {0}")]
    Io(#[from] io::Error),
    /// The peer closed the connection before sending the first bytes that say which protocol
    /// it speaks (the 8-byte AMQP header on the plain port, 4 bytes on the TLS port).
    #[error(
        "the peer closed the connection after {received} of the {expected} bytes that say which protocol it speaks"
    )]
    HeaderIncomplete {
        /// How many bytes arrived.
        received: usize,
        /// How many were needed.
        expected: usize,
    },
    /// The TLS handshake failed (bad client hello, untrusted or missing client certificate,
    /// no common protocol version, ...).
    #[error("TLS handshake failed: {0}")]
    Tls(io::Error),
    /// A certificate, key or CA file could not be read.
    #[error("cannot read {path}: {source}")]
    CertificateFileRead {
        /// The file.
        path: PathBuf,
        /// Why reading failed.
        source: io::Error,
    },
    /// A certificate, key or CA file was read but its content is not usable.
    #[error("bad certificate file {path}: {reason}")]
    BadCertificateFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the certificate chain and key together (for example, a key that does
    /// not match the certificate).
    #[error(
        "the server certificate {cert} and key {key} do not make a TLS configuration: {source}"
    )]
    CertificateRejected {
        /// The certificate chain file (or `<self-signed>`).
        cert: PathBuf,
        /// The key file (or `<self-signed>`).
        key: PathBuf,
        /// rustls's reason.
        source: rustls::Error,
    },
    /// The client CA bundle could not be made into a client certificate verifier.
    #[error("client CA bundle {path} cannot verify client certificates: {reason}")]
    ClientCaRejected {
        /// The CA bundle file.
        path: PathBuf,
        /// rustls's reason.
        reason: String,
    },
    /// Generating the self-signed CA or server certificate failed.
    #[error("cannot generate the self-signed certificates: {0}")]
    SelfSigned(#[from] rcgen::Error),
    /// The `selfsigned` provider was given no hostname to issue the server certificate for.
    #[error("the self-signed certificate provider needs at least one hostname")]
    SelfSignedNoHostnames,
    /// Writing a certificate file failed (the self-signed provider's CA for clients, or a
    /// test PKI file).
    #[error("cannot write the certificate file {path}: {source}")]
    CertificateFileWrite {
        /// Where it was to go.
        path: PathBuf,
        /// Why writing failed.
        source: io::Error,
    },
    /// A client spoke plain AMQP to the TLS port; it was sent the AMQP TLS header and should
    /// be dropped.
    #[error("the client sent a plain AMQP header to the TLS port")]
    PlainOnTlsPort,
    /// A client asked for the AMQP TLS layer with a protocol version we do not speak; it was
    /// sent our TLS header (AMQP 1.0 part 2 §2.2) and should be dropped.
    #[error("the client asked for TLS with an unsupported protocol header {header:?}")]
    UnsupportedTlsHeader {
        /// The 8 bytes it sent.
        header: [u8; 8],
    },
    /// The WebSocket upgrade or a WebSocket frame was bad (includes frames over the size
    /// limit, text messages and broken HTTP).
    #[error("WebSocket failed: {0}")]
    WebSocket(Box<tokio_tungstenite::tungstenite::Error>),
    /// The WebSocket upgrade request did not offer the `amqp` subprotocol; it was answered
    /// with HTTP 400.
    #[error("the WebSocket upgrade did not offer the `amqp` subprotocol (Sec-WebSocket-Protocol)")]
    NotAmqpSubprotocol,
}

impl From<tokio_tungstenite::tungstenite::Error> for TransportError {
    fn from(error: tokio_tungstenite::tungstenite::Error) -> Self {
        TransportError::WebSocket(Box::new(error))
    }
}
