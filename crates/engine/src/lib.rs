//! Sans-IO AMQP 1.0 protocol engine for Sluice.
//!
//! Owns: the protocol state of one connection: protocol headers, the SASL exchange, open and
//! close, heartbeats and timeouts ([`Connection`]); sessions with their channels and transfer
//! windows; links with handles, credit, drain, deliveries joined from transfers, and
//! dispositions. Bytes and the current time go in; bytes to write, [`Event`]s and the next
//! deadline come out, in the style of quinn-proto and rustls. What a delivery means (queues,
//! routing, authorization) is the caller's.
//!
//! Must not depend on: tokio, sockets, a clock or any Sluice crate but `sluice-codec`. The same
//! engine runs in the broker (server side), in `sluice bench` (client side) and in memory in
//! tests, on a virtual clock.

#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

mod config;
mod connection;
mod endpoints;
mod error;
mod event;
mod ids;
mod input;
mod out;
mod session;
mod slots;
pub mod testing;
mod unsettled;

pub use config::{
    CHANNEL_MAX_DEFAULT, Config, FRAME_SIZE_MAX_DEFAULT, LINK_HANDLE_MAX_DEFAULT,
    LINK_UNSETTLED_MAX_DEFAULT, MESSAGE_SIZE_MAX_DEFAULT, OUTPUT_BUFFER_MAX_DEFAULT,
    PARTIAL_BYTES_MAX_DEFAULT, SASL_FRAME_SIZE_MAX_DEFAULT, SESSION_WINDOW_DEFAULT, SaslConfig,
};
pub use connection::{Connection, OUTPUT_RECYCLE_MAX, Side};
pub use error::ConnectionError;
pub use event::Event;
pub use ids::{LinkId, SessionId};
pub use session::SendError;
