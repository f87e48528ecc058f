//! Sluice's transports: the streams the connection task runs the AMQP engine on.
//!
//! The broker accepts a `tokio::net::TcpStream` on each listener and hands it to one of
//! [`accept_amqp`] (the plain port, with the AMQP TLS header upgrade of part 5 §5.2),
//! [`accept_amqps`] (TLS first), [`accept_wss`] or [`accept_ws`] (AMQP over WebSockets).
//! Each returns a [`Stream`] (`AsyncRead + AsyncWrite + Unpin + Send`) and a [`PeerInfo`]
//! saying what was learned about the peer: TLS or not, the verified client certificate's
//! subject (for SASL EXTERNAL), WebSocket or not.
//!
//! This crate owns TLS ([`Tls`]: rustls with the `ring` provider, TLS 1.2 and 1.3, files
//! reloaded while serving, or a self-signed CA generated at start), the protocol-header
//! sniffing that picks a layer, and the WebSocket binding. The accept functions have no
//! timers: the caller bounds each in its handshake deadline.
//!
//! It must not depend on the engine, broker or config crates: it moves bytes and knows
//! nothing of AMQP frames beyond the 8-byte protocol header.

mod accept;
mod error;
mod pem;
mod pki;
mod prefixed;
mod stream;
mod subject;
mod tls;
mod ws;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use accept::{
    AMQP_HEADER_BYTES, AMQP_TLS_HEADER, accept_amqp, accept_amqps, accept_ws, accept_wss,
};
pub use error::TransportError;
pub use pem::PEM_FILE_BYTES_MAX;
pub use stream::{PeerInfo, Stream};
pub use tls::{CertSource, RELOAD_INTERVAL_MIN, Tls, TlsSettings};
pub use ws::{AMQP_SUBPROTOCOL, WS_MESSAGE_BYTES_MAX};
