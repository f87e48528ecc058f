//! What the engine tells its caller.

use bytes::Bytes;
use sluice_codec::SaslCode;
use sluice_codec::transport::{Attach, Begin, DeliveryState, DeliveryTag, Error, Open, Role};
use sluice_codec::types::{Str, Symbol};

use crate::error::ConnectionError;
use crate::ids::{LinkId, SessionId};

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
    /// A session began: the peer answered our begin, or began one we have answered.
    SessionBegun {
        /// The session.
        session: SessionId,
        /// The peer's begin.
        remote: Box<Begin>,
    },
    /// A session ended (we have answered the peer's end, or it answered ours). Its links end
    /// with it: no `LinkDetached` follows for them.
    SessionEnded {
        /// The session.
        session: SessionId,
        /// The error it ended with.
        error: Option<Error>,
    },
    /// The peer attached a link. When `remote_first`, the peer began it: answer with
    /// [`crate::Connection::accept_link`] or [`crate::Connection::refuse_link`]. Otherwise it
    /// answers our attach.
    LinkAttached {
        /// The link.
        link: LinkId,
        /// The peer's attach.
        attach: Box<Attach>,
        /// Whether the peer attached first.
        remote_first: bool,
    },
    /// The peer detached a link (we have answered).
    LinkDetached {
        /// The link.
        link: LinkId,
        /// Whether it is closed rather than only detached.
        closed: bool,
        /// The error it detached with.
        error: Option<Error>,
    },
    /// Sender: the receiver set our credit. With `drain`, send what is available, then call
    /// [`crate::Connection::drained`].
    Credit {
        /// The link.
        link: LinkId,
        /// Deliveries we may send.
        credit: u32,
        /// Whether the receiver asks us to use up or return the credit.
        drain: bool,
    },
    /// Receiver: the sender used up or returned the credit a drain asked about.
    Drained {
        /// The link.
        link: LinkId,
    },
    /// Receiver: a whole delivery arrived (its transfers joined).
    Delivery {
        /// The link.
        link: LinkId,
        /// The delivery id, for dispositions.
        delivery_id: u32,
        /// The sender's tag.
        tag: Option<DeliveryTag>,
        /// Whether the sender settled it.
        settled: bool,
        /// The sender's state for it, if any.
        state: Option<DeliveryState>,
        /// The message: a slice of the read buffer when it came in one frame.
        payload: Bytes,
    },
    /// Receiver: the sender aborted a delivery; what arrived of it is discarded.
    Aborted {
        /// The link.
        link: LinkId,
        /// The delivery.
        delivery_id: u32,
    },
    /// The peer changed the state of deliveries `first..=last`.
    Disposition {
        /// The session.
        session: SessionId,
        /// The role of the peer: `Receiver` settles what we sent.
        role: Role,
        /// First delivery id.
        first: u32,
        /// Last delivery id.
        last: u32,
        /// Whether the peer settled them.
        settled: bool,
        /// The new state.
        state: Option<DeliveryState>,
    },
    /// The peer closed the connection (we have answered). Every session and link ends with it.
    RemoteClose {
        /// The error it closed with, if any.
        error: Option<Error>,
    },
    /// We closed the connection because the peer broke the protocol, went silent or ran out
    /// its time; the `close` carrying this error is in the output.
    Failed(ConnectionError),
}
