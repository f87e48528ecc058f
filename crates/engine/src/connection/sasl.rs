//! The SASL layer (part 5 §5.3): the server offers mechanisms and the caller judges the
//! client's answers; the client picks its configured mechanism. Input waits while the caller
//! owes an answer, so a verdict may take a network round trip.

use std::time::Instant;

use bytes::Bytes;
use sluice_codec::SaslCode;
use sluice_codec::frame::{Frame, FrameBody, ProtocolHeader, ProtocolId, encode_sasl};
use sluice_codec::security::{
    SaslChallenge, SaslFrame, SaslInit, SaslMechanisms, SaslOutcome, SaslResponse,
};
use sluice_codec::transport::conditions;
use sluice_codec::types::Str;

use super::{Connection, Side, State};
use crate::config::SaslConfig;
use crate::error::ConnectionError;
use crate::event::Event;

impl Connection {
    /// Server: answers the SASL exchange. `Ok` lets the client go on to AMQP; any other code
    /// ends the connection once the outcome is written.
    pub fn sasl_outcome(&mut self, code: SaslCode, now: Instant) {
        self.sasl_outcome_with(code, None, now);
    }

    /// Server: answers the SASL exchange with additional data for the client (SCRAM's
    /// server-final message, which proves the server knew the password).
    pub fn sasl_outcome_with(
        &mut self,
        code: SaslCode,
        additional_data: Option<Bytes>,
        now: Instant,
    ) {
        if self.side != Side::Server || self.state != (State::Sasl { waiting: true }) {
            return;
        }
        let outcome = SaslFrame::Outcome(SaslOutcome {
            code,
            additional_data,
        });
        self.write_sasl(&outcome, now);
        self.state = if code == SaslCode::Ok {
            State::AwaitHeader {
                expected: Some(ProtocolId::Amqp),
            }
        } else {
            State::Done
        };
        self.process(now);
    }

    /// Server: sends a SASL challenge; the client's response arrives as
    /// [`Event::SaslResponse`].
    pub fn sasl_challenge(&mut self, challenge: Bytes, now: Instant) {
        if self.side != Side::Server || self.state != (State::Sasl { waiting: true }) {
            return;
        }
        self.write_sasl(&SaslFrame::Challenge(SaslChallenge { challenge }), now);
        self.state = State::Sasl { waiting: false };
        self.process(now);
    }

    /// Client: answers a SASL challenge.
    pub fn sasl_respond(&mut self, response: Bytes, now: Instant) {
        if self.side != Side::Client || self.state != (State::Sasl { waiting: true }) {
            return;
        }
        self.write_sasl(&SaslFrame::Response(SaslResponse { response }), now);
        self.state = State::Sasl { waiting: false };
        self.process(now);
    }

    /// Server: answers a SASL header with ours and the mechanisms we offer.
    pub(super) fn offer_mechanisms(&mut self, now: Instant) {
        self.writer
            .output
            .extend_from_slice(&ProtocolHeader::SASL.to_bytes());
        let mechanisms = match &self.config.sasl {
            SaslConfig::Server { mechanisms, .. } => mechanisms.clone(),
            _ => Vec::new(),
        };
        let frame = SaslFrame::Mechanisms(SaslMechanisms {
            sasl_server_mechanisms: mechanisms,
        });
        self.write_sasl(&frame, now);
        self.state = State::Sasl { waiting: false };
    }

    /// A server with no mechanisms has nothing to offer: `sasl-mechanisms` must name at least
    /// one (part 5 §5.3.3.1), so such a configuration behaves as no SASL layer.
    pub(super) fn sasl_offered(&self) -> bool {
        matches!(&self.config.sasl, SaslConfig::Server { mechanisms, .. } if !mechanisms.is_empty())
    }

    pub(super) fn sasl_optional(&self) -> bool {
        match self.config.sasl {
            SaslConfig::Server { allow_no_sasl, .. } => allow_no_sasl || !self.sasl_offered(),
            _ => true,
        }
    }

    pub(super) fn handle_sasl(
        &mut self,
        frame: Frame,
        now: Instant,
    ) -> Result<(), ConnectionError> {
        let FrameBody::Sasl(sasl) = frame.body else {
            return Err(ConnectionError::not_allowed(
                "an AMQP frame during the SASL exchange",
            ));
        };
        match (self.side, sasl) {
            (Side::Server, SaslFrame::Init(init)) => {
                let SaslInit {
                    mechanism,
                    initial_response,
                    hostname,
                } = init;
                self.writer.events.push_back(Event::SaslInit {
                    mechanism,
                    initial_response,
                    hostname,
                });
                self.state = State::Sasl { waiting: true };
            }
            (Side::Server, SaslFrame::Response(r)) => {
                self.writer.events.push_back(Event::SaslResponse {
                    response: r.response,
                });
                self.state = State::Sasl { waiting: true };
            }
            (Side::Client, SaslFrame::Mechanisms(m)) => {
                let SaslConfig::Client {
                    mechanism,
                    initial_response,
                } = self.config.sasl.clone()
                else {
                    return Err(ConnectionError::not_allowed("no SASL client configuration"));
                };
                if !m.sasl_server_mechanisms.contains(&mechanism) {
                    return Err(ConnectionError::new(
                        conditions::NOT_IMPLEMENTED,
                        format!("the server does not offer SASL {mechanism}"),
                    ));
                }
                let hostname = self.config.hostname.as_deref().map(Str::from);
                let init = SaslFrame::Init(SaslInit {
                    mechanism,
                    initial_response,
                    hostname,
                });
                self.write_sasl(&init, now);
            }
            (Side::Client, SaslFrame::Challenge(c)) => {
                self.writer.events.push_back(Event::SaslChallenge {
                    challenge: c.challenge,
                });
                self.state = State::Sasl { waiting: true };
            }
            (Side::Client, SaslFrame::Outcome(o)) => {
                self.writer
                    .events
                    .push_back(Event::SaslOutcome { code: o.code });
                if o.code == SaslCode::Ok {
                    // Pipelined: the AMQP header and open go out before the server's header.
                    self.writer
                        .output
                        .extend_from_slice(&ProtocolHeader::AMQP.to_bytes());
                    self.send_open();
                    self.state = State::AwaitHeader {
                        expected: Some(ProtocolId::Amqp),
                    };
                } else {
                    self.state = State::Done;
                }
            }
            (_, other) => {
                return Err(ConnectionError::not_allowed(format!(
                    "unexpected SASL frame {other:?}"
                )));
            }
        }
        Ok(())
    }

    fn write_sasl(&mut self, frame: &SaslFrame, now: Instant) {
        // SASL frames are bounded by MIN-MAX-FRAME-SIZE unless larger ones were agreed out of
        // band (part 5 §5.3.1); ours are small, the peer's limit is what we accept.
        if let Err(e) = encode_sasl(
            &mut self.writer.output,
            frame,
            self.config.sasl_frame_size_max,
        ) {
            self.writer.events.push_back(Event::Failed(e.into()));
            self.state = State::Done;
        }
        self.writer.last_sent = now;
    }
}
