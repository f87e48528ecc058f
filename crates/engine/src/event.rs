//! What the engine tells its caller.

use bytes::Bytes;
use sluice_codec::SaslCode;
use sluice_codec::transport::{Error, Open, Performative};
use sluice_codec::types::{Str, Symbol};

use crate::error::ConnectionError;

/// Something that happened on a connection, for the caller to act on.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Server: the client chose a mechanism. Answer with
    /// [`crate::Connection::sasl_outcome`] or [`crate::Connection::sasl_challenge`]; input waits
    /// until then, so the answer may take a network round trip (a TokenReview).
    SaslInit {
        /// The chosen mechanism.
        mechanism: Symbol,
        /// Its initial response.
        initial_response: Option<Bytes>,
        /// The host the client asked for.
        hostname: Option<Str>,
    },
    /// Server: the client answered a challenge.
    SaslResponse {
        /// The response.
        response: Bytes,
    },
    /// Client: the server sent a challenge; answer with [`crate::Connection::sasl_respond`].
    SaslChallenge {
        /// The challenge.
        challenge: Bytes,
    },
    /// Client: the SASL exchange ended.
    SaslOutcome {
        /// The server's verdict.
        code: SaslCode,
    },
    /// The peer's `open` arrived; ours has been sent.
    Opened {
        /// The peer's open: container id, hostname, limits, capabilities, properties.
        remote: Box<Open>,
    },
    /// A frame on a session channel, for the session layer.
    Frame {
        /// The channel it arrived on.
        channel: u16,
        /// The performative.
        performative: Performative,
        /// The payload after it (transfers).
        payload: Bytes,
    },
    /// The peer closed the connection (we have answered).
    RemoteClose {
        /// The error it closed with, if any.
        error: Option<Error>,
    },
    /// We closed the connection because the peer broke the protocol, went silent or ran out
    /// its time; the `close` carrying this error is in the output.
    Failed(ConnectionError),
}
