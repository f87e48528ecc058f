//! The section scan: what the broker does to every message on the hot path.
//!
//! A message arrives as [`Bytes`]. The scan walks its sections once, decoding the header,
//! delivery and message annotations and properties (what routing, TTL and redelivery need) and
//! recording only the boundaries of application properties, body and footer. The bare message
//! (properties through body, part 3 §3.2) is immutable at an intermediary, so it stays the
//! `Bytes` it came in: forwarding it costs a reference count, not a copy.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use super::message::Body;
use super::sections::{Header, Properties, map_section_size, put_map_section, section};
use crate::composite::{Composite, FieldValue, Map, descriptor_code, read_descriptor};
use crate::error::{CodecError, Result};
use crate::types::{Decoder, Encode, codes};

/// Which kind of body a message has (part 3 §3.2.5 to §3.2.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body section (Proton sends these for an empty message).
    None,
    /// One or more `data` sections.
    Data,
    /// One or more `amqp-sequence` sections.
    Sequence,
    /// One `amqp-value` section.
    Value,
}

/// A message whose sections have been located, with its routing-relevant sections decoded.
///
/// The public section fields may be changed (a redelivery raises `header.delivery_count`, the
/// router adds message annotations); [`Encode`] then writes the new header and annotations
/// followed by the untouched bare message and footer.
#[derive(Debug, Clone, PartialEq)]
pub struct ScannedMessage {
    raw: Bytes,
    /// The header section.
    pub header: Option<Header>,
    /// The delivery-annotations section.
    pub delivery_annotations: Option<Map>,
    /// The message-annotations section.
    pub message_annotations: Option<Map>,
    /// The properties section (decoded, but still part of the immutable bare message).
    pub properties: Option<Properties>,
    bare_start: usize,
    application_properties: Option<Range<usize>>,
    body: Range<usize>,
    body_kind: BodyKind,
    footer_start: usize,
}

/// Order of a section: sections must appear in ascending rank, and only body sections repeat.
fn rank(code: u64) -> Option<u8> {
    Some(match code {
        section::HEADER => 0,
        section::DELIVERY_ANNOTATIONS => 1,
        section::MESSAGE_ANNOTATIONS => 2,
        section::PROPERTIES => 3,
        section::APPLICATION_PROPERTIES => 4,
        section::DATA | section::AMQP_SEQUENCE | section::AMQP_VALUE => 5,
        section::FOOTER => 6,
        _ => return None,
    })
}

const BODY_RANK: u8 = 5;
const BARE_RANK: u8 = 3;

fn invalid(reason: &'static str) -> CodecError {
    CodecError::InvalidValue {
        field: "message",
        reason,
    }
}

/// Reads a composite encoded as a described list whose descriptor has been consumed.
fn read_list_section<T: Composite>(d: &mut Decoder<'_>) -> Result<T> {
    let code = d.byte()?;
    if !matches!(code, codes::LIST0 | codes::LIST8 | codes::LIST32) {
        return Err(CodecError::UnexpectedType {
            field: T::NAME,
            expected: "list",
            found: code,
        });
    }
    let (size, count) = d.compound_header(code)?;
    T::decode_list(d, size, count)
}

/// Skips a section value after checking its constructor is one of `allowed`.
fn skip_checked(
    d: &mut Decoder<'_>,
    allowed: &[u8],
    field: &'static str,
    expected: &'static str,
) -> Result<()> {
    let code = d.byte()?;
    if !allowed.contains(&code) {
        return Err(CodecError::UnexpectedType {
            field,
            expected,
            found: code,
        });
    }
    d.skip_body(code)
}

impl ScannedMessage {
    /// Scans an encoded message (the payload of a delivery).
    pub fn scan(raw: Bytes) -> Result<Self> {
        let mut d = Decoder::new(&raw);
        let mut header = None;
        let mut delivery_annotations = None;
        let mut message_annotations = None;
        let mut properties = None;
        let mut bare_start = None;
        let mut application_properties = None;
        let mut body = 0..0;
        let mut body_kind = BodyKind::None;
        let mut footer_start = None;
        let mut last_rank: Option<u8> = None;

        while !d.is_empty() {
            let start = d.position();
            let code = d.byte()?;
            if code != codes::DESCRIBED {
                return Err(CodecError::UnexpectedType {
                    field: "message",
                    expected: "section",
                    found: code,
                });
            }
            let descriptor = read_descriptor(&mut d)?;
            let code = descriptor_code(&descriptor).ok_or(invalid("unknown section"))?;
            let rank = rank(code).ok_or(invalid("unknown section"))?;
            // Part 3 §3.2: sections appear in this order, each at most once, except that the
            // body may be several data or several amqp-sequence sections.
            if let Some(last) = last_rank
                && (rank < last || (rank == last && rank != BODY_RANK))
            {
                return Err(invalid("sections out of order or repeated"));
            }
            match code {
                section::HEADER => header = Some(read_list_section::<Header>(&mut d)?),
                section::DELIVERY_ANNOTATIONS => {
                    delivery_annotations = Map::decode_field(&mut d, "delivery-annotations")?;
                }
                section::MESSAGE_ANNOTATIONS => {
                    message_annotations = Map::decode_field(&mut d, "message-annotations")?;
                }
                section::PROPERTIES => properties = Some(read_list_section::<Properties>(&mut d)?),
                section::APPLICATION_PROPERTIES => {
                    skip_checked(
                        &mut d,
                        &[codes::MAP8, codes::MAP32, codes::NULL],
                        "application-properties",
                        "map",
                    )?;
                    application_properties = Some(start..d.position());
                }
                section::DATA => {
                    if !matches!(body_kind, BodyKind::None | BodyKind::Data) {
                        return Err(invalid("data section after another body kind"));
                    }
                    skip_checked(&mut d, &[codes::VBIN8, codes::VBIN32], "data", "binary")?;
                    body_kind = BodyKind::Data;
                }
                section::AMQP_SEQUENCE => {
                    if !matches!(body_kind, BodyKind::None | BodyKind::Sequence) {
                        return Err(invalid("amqp-sequence section after another body kind"));
                    }
                    skip_checked(
                        &mut d,
                        &[codes::LIST0, codes::LIST8, codes::LIST32],
                        "amqp-sequence",
                        "list",
                    )?;
                    body_kind = BodyKind::Sequence;
                }
                section::AMQP_VALUE => {
                    if body_kind != BodyKind::None {
                        return Err(invalid("amqp-value section after another body section"));
                    }
                    d.skip_value()?;
                    body_kind = BodyKind::Value;
                }
                _ => {
                    skip_checked(
                        &mut d,
                        &[codes::MAP8, codes::MAP32, codes::NULL],
                        "footer",
                        "map",
                    )?;
                    footer_start = Some(start);
                }
            }
            if rank >= BARE_RANK && bare_start.is_none() {
                bare_start = Some(start);
            }
            if rank == BODY_RANK {
                if body.is_empty() {
                    body.start = start;
                }
                body.end = d.position();
            }
            last_rank = Some(rank);
        }
        let end = raw.len();
        let footer_start = footer_start.unwrap_or(end);
        Ok(ScannedMessage {
            header,
            delivery_annotations,
            message_annotations,
            properties,
            bare_start: bare_start.unwrap_or(footer_start),
            application_properties,
            body,
            body_kind,
            footer_start,
            raw,
        })
    }

    /// The message as it arrived.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// The bare message: properties, application properties and body, as received.
    pub fn bare(&self) -> Bytes {
        self.raw.slice(self.bare_start..self.footer_start)
    }

    /// The bare message followed by the footer, as received: what follows the annotations.
    pub fn bare_and_footer(&self) -> Bytes {
        self.raw.slice(self.bare_start..)
    }

    /// The kind of body.
    pub fn body_kind(&self) -> BodyKind {
        self.body_kind
    }

    /// The encoded body sections, as received.
    pub fn body_bytes(&self) -> Bytes {
        self.raw.slice(self.body.clone())
    }

    /// Decodes the application properties (not done by the scan: only selectors need them).
    pub fn application_properties(&self) -> Result<Option<Map>> {
        self.decode_map_section(
            self.application_properties.clone(),
            "application-properties",
        )
    }

    /// Decodes the footer.
    pub fn footer(&self) -> Result<Option<Map>> {
        let range = (self.footer_start < self.raw.len()).then(|| self.footer_start..self.raw.len());
        self.decode_map_section(range, "footer")
    }

    fn decode_map_section(
        &self,
        range: Option<Range<usize>>,
        field: &'static str,
    ) -> Result<Option<Map>> {
        let Some(range) = range else { return Ok(None) };
        let section = self.raw.slice(range);
        let mut d = Decoder::new(&section);
        d.byte()?; // 0x00, and a descriptor the scan already checked
        read_descriptor(&mut d)?;
        Map::decode_field(&mut d, field)
    }

    /// Decodes the body.
    pub fn body(&self) -> Result<Body> {
        let bytes = self.body_bytes();
        let mut d = Decoder::new(&bytes);
        let mut data = Vec::new();
        let mut sequence = Vec::new();
        while !d.is_empty() {
            d.byte()?;
            match descriptor_code(&read_descriptor(&mut d)?) {
                Some(section::DATA) => {
                    data.push(Bytes::decode_field(&mut d, "data")?.unwrap_or_default());
                }
                Some(section::AMQP_SEQUENCE) => {
                    let code = d.byte()?;
                    sequence.push(d.list_body(code)?);
                }
                _ => return Ok(Body::Value(d.read_value()?)),
            }
        }
        Ok(match self.body_kind {
            BodyKind::Data => Body::Data(data),
            BodyKind::Sequence => Body::Sequence(sequence),
            BodyKind::None | BodyKind::Value => Body::Empty,
        })
    }

    fn prefix_size(&self) -> usize {
        self.header.as_ref().map_or(0, Encode::encoded_size)
            + self
                .delivery_annotations
                .as_ref()
                .map_or(0, map_section_size)
            + self
                .message_annotations
                .as_ref()
                .map_or(0, map_section_size)
    }

    /// Writes the header and annotations as they are now (the part an intermediary may change).
    pub fn encode_prefix(&self, out: &mut BytesMut) {
        if let Some(h) = &self.header {
            h.encode(out);
        }
        if let Some(m) = &self.delivery_annotations {
            put_map_section(out, section::DELIVERY_ANNOTATIONS, m);
        }
        if let Some(m) = &self.message_annotations {
            put_map_section(out, section::MESSAGE_ANNOTATIONS, m);
        }
    }
}

impl Encode for ScannedMessage {
    fn encoded_size(&self) -> usize {
        self.prefix_size() + (self.raw.len() - self.bare_start)
    }

    fn encode(&self, out: &mut BytesMut) {
        self.encode_prefix(out);
        out.extend_from_slice(self.raw.get(self.bare_start..).unwrap_or_default());
    }
}
