//! AMQP 1.0 part 5 §5.3, SASL: the five frames of the exchange.

use bytes::BytesMut;

use crate::composite::{Composite, read_composite_start};
use crate::enums::SaslCode;
use crate::error::{ErrorKind, Result};
use crate::types::{Decoder, Encode, Str, Symbol};
use bytes::Bytes;

crate::composite! {
    /// The mechanisms the server offers (part 5 §5.3.3.1).
    pub struct SaslMechanisms = ("amqp:sasl-mechanisms:list", 0x40) {
        /// Supported mechanisms, most preferred first.
        sasl_server_mechanisms: Vec<Symbol> => required,
    }
}

crate::composite! {
    /// The client's chosen mechanism and initial response (part 5 §5.3.3.2).
    pub struct SaslInit = ("amqp:sasl-init:list", 0x41) {
        /// The chosen mechanism.
        mechanism: Symbol => required,
        /// The initial response.
        initial_response: Bytes => optional,
        /// The name of the target host.
        hostname: Str => optional,
    }
}

crate::composite! {
    /// A security challenge (part 5 §5.3.3.3).
    pub struct SaslChallenge = ("amqp:sasl-challenge:list", 0x42) {
        /// The challenge data.
        challenge: Bytes => required,
    }
}

crate::composite! {
    /// A response to a challenge (part 5 §5.3.3.4).
    pub struct SaslResponse = ("amqp:sasl-response:list", 0x43) {
        /// The response data.
        response: Bytes => required,
    }
}

crate::composite! {
    /// The result of the exchange (part 5 §5.3.3.5).
    pub struct SaslOutcome = ("amqp:sasl-outcome:list", 0x44) {
        /// The outcome.
        code: SaslCode => required,
        /// Additional data for the client.
        additional_data: Bytes => optional,
    }
}

/// The body of a SASL frame.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum SaslFrame {
    Mechanisms(SaslMechanisms),
    Init(SaslInit),
    Challenge(SaslChallenge),
    Response(SaslResponse),
    Outcome(SaslOutcome),
}

impl SaslFrame {
    /// Decodes a SASL frame body.
    pub fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        let Some((code, size, count)) = read_composite_start(d, "sasl frame")? else {
            return Err(ErrorKind::InvalidValue {
                field: "sasl frame",
                reason: "frame body is null",
            }
            .into());
        };
        Ok(match code {
            SaslMechanisms::CODE => {
                SaslFrame::Mechanisms(SaslMechanisms::decode_list(d, size, count)?)
            }
            SaslInit::CODE => SaslFrame::Init(SaslInit::decode_list(d, size, count)?),
            SaslChallenge::CODE => {
                SaslFrame::Challenge(SaslChallenge::decode_list(d, size, count)?)
            }
            SaslResponse::CODE => SaslFrame::Response(SaslResponse::decode_list(d, size, count)?),
            SaslOutcome::CODE => SaslFrame::Outcome(SaslOutcome::decode_list(d, size, count)?),
            _ => {
                return Err(ErrorKind::InvalidValue {
                    field: "sasl frame",
                    reason: "not a SASL frame descriptor",
                }
                .into());
            }
        })
    }
}

impl Encode for SaslFrame {
    fn encoded_size(&self) -> usize {
        match self {
            SaslFrame::Mechanisms(f) => f.encoded_size(),
            SaslFrame::Init(f) => f.encoded_size(),
            SaslFrame::Challenge(f) => f.encoded_size(),
            SaslFrame::Response(f) => f.encoded_size(),
            SaslFrame::Outcome(f) => f.encoded_size(),
        }
    }
    fn encode(&self, out: &mut BytesMut) {
        match self {
            SaslFrame::Mechanisms(f) => f.encode(out),
            SaslFrame::Init(f) => f.encode(out),
            SaslFrame::Challenge(f) => f.encode(out),
            SaslFrame::Response(f) => f.encode(out),
            SaslFrame::Outcome(f) => f.encode(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_frames_roundtrip() {
        let frames = [
            SaslFrame::Mechanisms(SaslMechanisms {
                sasl_server_mechanisms: vec![
                    Symbol::from_static("PLAIN"),
                    Symbol::from_static("ANONYMOUS"),
                ],
            }),
            SaslFrame::Init(SaslInit {
                mechanism: Symbol::from_static("PLAIN"),
                initial_response: Some(Bytes::from_static(b"\0u\0p")),
                hostname: Some("h".into()),
            }),
            SaslFrame::Challenge(SaslChallenge {
                challenge: Bytes::from_static(b"c"),
            }),
            SaslFrame::Response(SaslResponse {
                response: Bytes::from(vec![7u8; 2048]),
            }),
            SaslFrame::Outcome(SaslOutcome {
                code: SaslCode::Auth,
                additional_data: None,
            }),
        ];
        for f in frames {
            let buf = f.to_bytes().freeze();
            assert_eq!(buf.len(), f.encoded_size());
            assert_eq!(SaslFrame::decode(&mut Decoder::new(&buf)), Ok(f));
        }
    }

    #[test]
    fn mechanisms_must_name_at_least_one() {
        // Part 1 §1.3: a field both multiple and mandatory must hold at least one value; null
        // and an empty array are both invalid. Here sasl-server-mechanisms is an empty symbol
        // array, `e0 02 00 a3`.
        let buf = Bytes::from_static(&[0x00, 0x53, 0x40, 0xc0, 0x05, 0x01, 0xe0, 0x02, 0x00, 0xa3]);
        let missing = ErrorKind::MissingField("SaslMechanisms.sasl_server_mechanisms");
        assert_eq!(
            SaslFrame::decode(&mut Decoder::new(&buf)),
            Err(missing.clone().into())
        );
        let mut d = Decoder::new(&buf);
        d.advance(3).unwrap();
        let code = d.byte().unwrap();
        let (size, count) = d.compound_header(code).unwrap();
        assert_eq!(
            SaslMechanisms::validate_list(&mut d, size, count),
            Err(missing.into())
        );
    }
}
