//! The SASL step of a connection: who the peer is.
//!
//! The engine reports the client's `sasl-init` and responses; this decides what to answer and
//! which [`Identity`] the connection has from then on, so authorization has a place to look.
//! With authentication `none` (the only service served so far) every mechanism offered
//! succeeds at once, and the identity is anonymous with every right.

use sluice_codec::SaslCode;
use sluice_codec::types::Symbol;

/// Who the peer of a connection is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Identity {
    /// Not authenticated (authentication `none`, or no SASL layer at all).
    Anonymous,
}

/// What to answer the client's SASL frame with. (Challenges, and answers that wait for an
/// external check, come with the mechanisms that need them.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// The exchange is over with this outcome; `Ok` brings `identity`.
    Done { code: SaslCode, identity: Identity },
}

/// The authentication of one connection, for the address space's authentication service.
#[derive(Debug, Default)]
pub(crate) struct Authenticator;

impl Authenticator {
    /// The client chose `mechanism` (one we offered) with an initial response.
    pub(crate) fn init(&mut self, _mechanism: &Symbol, _response: Option<&[u8]>) -> Step {
        // Authentication `none`: any mechanism we offer, any credentials.
        Step::Done {
            code: SaslCode::Ok,
            identity: Identity::Anonymous,
        }
    }

    /// The client answered a challenge. No mechanism served so far challenges, so a response
    /// is out of turn.
    pub(crate) fn respond(&mut self, _response: &[u8]) -> Step {
        Step::Done {
            code: SaslCode::Auth,
            identity: Identity::Anonymous,
        }
    }
}
