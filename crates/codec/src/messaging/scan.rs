//! The section scan: what the broker does to every message on the hot path.
//!
//! A message arrives as [`Bytes`]. The scan walks its sections once. It decodes the header and
//! the delivery and message annotations, which an intermediary may change. It checks every
//! field of the properties section and keeps the two routing needs (`to` for anonymous relay,
//! `absolute-expiry-time` for expiry); the full [`Properties`] decode is on demand, because a
//! decoded properties section is some 400 bytes of moves and reference counts per message that
//! the broker almost never reads. Application properties, body and footer are located, not
//! read. The bare message (properties through body, part 3 §3.2) is immutable at an
//! intermediary, so it stays the `Bytes` it came in: forwarding it costs a reference count, not
//! a copy.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use super::message::Body;
use super::sections::{AnnotatedPrefix, Header, Properties, section};
use crate::composite::{Composite, FieldValue, Map, read_descriptor_code};
use crate::error::{CodecError, ErrorKind, Result};
use crate::types::{Decoder, Encode, Timestamp, codes, is_utf8};

/// Where a checked UTF-8 text is in a message: `(offset, length)`.
type TextRange = (u32, u32);

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
    properties: Option<usize>,
    /// Where the `to` property's UTF-8 text is in `raw` (a range, not a slice: a slice would
    /// cost two atomic reference-count updates per message).
    to: Option<TextRange>,
    /// Where the `group-id` property's text is in `raw`, as for `to`.
    group_id: Option<TextRange>,
    absolute_expiry_time: Option<Timestamp>,
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
    ErrorKind::InvalidValue {
        field: "message",
        reason,
    }
    .into()
}

/// Reads the list header of a composite section whose descriptor has been consumed.
fn list_header<T: Composite>(d: &mut Decoder<'_>) -> Result<(usize, usize)> {
    let code = d.byte()?;
    if !matches!(code, codes::LIST0 | codes::LIST8 | codes::LIST32) {
        return Err(ErrorKind::UnexpectedType {
            field: T::NAME,
            expected: "list",
            found: code,
        }
        .into());
    }
    d.compound_header(code)
}

/// Reads a composite encoded as a described list whose descriptor has been consumed.
fn read_list_section<T: Composite>(d: &mut Decoder<'_>) -> Result<T> {
    let (size, count) = list_header::<T>(d)?;
    T::decode_list(d, size, count)
}

/// Positions of the properties fields routing reads (checked against the definition in tests).
const PROPERTIES_TO: usize = 2;
const PROPERTIES_ABSOLUTE_EXPIRY_TIME: usize = 8;
const PROPERTIES_GROUP_ID: usize = 10;

/// What the scan keeps of the properties: where `to` and `group-id` are, and
/// `absolute-expiry-time`.
type ScannedProperties = (Option<TextRange>, Option<TextRange>, Option<Timestamp>);

/// Checks a properties list and returns what routing and queues read of it, in one pass.
fn scan_properties(d: &mut Decoder<'_>) -> Result<ScannedProperties> {
    let (size, count) = list_header::<Properties>(d)?;
    d.nested(size, Properties::NAME, |d| {
        let (mut to, mut group_id, mut expiry) = (None, None, None);
        for index in 0..count {
            match index {
                PROPERTIES_TO => to = scan_text(d, "Properties.to")?,
                PROPERTIES_GROUP_ID => group_id = scan_text(d, "Properties.group_id")?,
                PROPERTIES_ABSOLUTE_EXPIRY_TIME => {
                    expiry = Timestamp::decode_field(d, "Properties.absolute_expiry_time")?;
                }
                _ => Properties::validate_field_at(index, d)?,
            }
        }
        Ok((to, group_id, expiry))
    })
}

/// Checks a string property (`to`, `group-id`) and returns where its text is.
fn scan_text(d: &mut Decoder<'_>, field: &'static str) -> Result<Option<TextRange>> {
    match d.byte()? {
        codes::NULL => Ok(None),
        code @ (codes::STR8 | codes::STR32) => {
            let text = d.variable_slice(code)?;
            if !is_utf8(text) {
                return Err(ErrorKind::InvalidValue {
                    field,
                    reason: "not valid UTF-8",
                }
                .into());
            }
            // Messages are bounded by the frame and message size limits, far below 4 GiB.
            let start = u32::try_from(d.position() - text.len())
                .map_err(|_| invalid("message over 4 GiB"))?;
            let len = u32::try_from(text.len()).map_err(|_| invalid("message over 4 GiB"))?;
            Ok(Some((start, len)))
        }
        found => Err(ErrorKind::UnexpectedType {
            field,
            expected: "string",
            found,
        }
        .into()),
    }
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
        return Err(ErrorKind::UnexpectedType {
            field,
            expected,
            found: code,
        }
        .into());
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
        let (mut to, mut group_id, mut absolute_expiry_time) = (None, None, None);
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
                return Err(ErrorKind::UnexpectedType {
                    field: "message",
                    expected: "section",
                    found: code,
                }
                .into());
            }
            let code = read_descriptor_code(&mut d)?.ok_or_else(|| invalid("unknown section"))?;
            let rank = rank(code).ok_or_else(|| invalid("unknown section"))?;
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
                section::PROPERTIES => {
                    (to, group_id, absolute_expiry_time) = scan_properties(&mut d)?;
                    properties = Some(start);
                }
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
            to,
            group_id,
            absolute_expiry_time,
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

    /// Decodes the properties section. The scan has already checked every field, so this fails
    /// only if the buffer was changed, which `Bytes` does not allow.
    pub fn properties(&self) -> Result<Option<Properties>> {
        let Some(start) = self.properties else {
            return Ok(None);
        };
        let mut d = Decoder::new(&self.raw);
        d.advance(start)?;
        d.byte()?;
        read_descriptor_code(&mut d)?;
        read_list_section::<Properties>(&mut d).map(Some)
    }

    /// Where the properties section starts in `raw` (for the in-place reads of `lookup`).
    pub(crate) fn properties_start(&self) -> Option<usize> {
        self.properties
    }

    /// Where the application-properties section is in `raw` (for the in-place reads of
    /// `lookup`).
    pub(crate) fn application_properties_range(&self) -> Option<Range<usize>> {
        self.application_properties.clone()
    }

    /// The `to` property: where an anonymous sender wants the message to go.
    pub fn to(&self) -> Option<&str> {
        self.text(self.to)
    }

    /// The `group-id` property: the message group a queue keeps to one consumer at a time.
    pub fn group_id(&self) -> Option<&str> {
        self.text(self.group_id)
    }

    fn text(&self, range: Option<TextRange>) -> Option<&str> {
        let (start, len) = range?;
        let start = start as usize;
        let text = self.raw.get(start..start + len as usize)?;
        // The scan checked the text is UTF-8; for the short ASCII addresses routing sees, this
        // second check costs a few nanoseconds.
        std::str::from_utf8(text).ok()
    }

    /// The `absolute-expiry-time` property.
    pub fn absolute_expiry_time(&self) -> Option<Timestamp> {
        self.absolute_expiry_time
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
        read_descriptor_code(&mut d)?;
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
            match read_descriptor_code(&mut d)? {
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

    /// The header and annotations as they are now (the part an intermediary may change).
    pub fn prefix(&self) -> AnnotatedPrefix<'_> {
        AnnotatedPrefix {
            header: self.header.as_ref(),
            delivery_annotations: self.delivery_annotations.as_ref(),
            message_annotations: self.message_annotations.as_ref(),
        }
    }
}

impl Encode for ScannedMessage {
    fn encoded_size(&self) -> usize {
        self.prefix().encoded_size() + (self.raw.len() - self.bare_start)
    }

    fn encode(&self, out: &mut BytesMut) {
        self.prefix().encode(out);
        out.extend_from_slice(self.raw.get(self.bare_start..).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_field_positions_match_the_definition() {
        assert_eq!(Properties::FIELDS[PROPERTIES_TO].name, "to");
        assert_eq!(Properties::FIELDS[PROPERTIES_GROUP_ID].name, "group_id");
        assert_eq!(
            Properties::FIELDS[PROPERTIES_ABSOLUTE_EXPIRY_TIME].name,
            "absolute_expiry_time"
        );
    }

    #[test]
    fn to_and_group_id_are_read_from_the_scan() {
        use crate::types::Str;
        let raw = super::super::Message {
            properties: Some(Properties {
                to: Some(Str::from("orders")),
                group_id: Some(Str::from("g-7")),
                ..Default::default()
            }),
            ..Default::default()
        }
        .to_bytes()
        .freeze();
        let scanned = ScannedMessage::scan(raw).unwrap();
        assert_eq!(scanned.to(), Some("orders"));
        assert_eq!(scanned.group_id(), Some("g-7"));
        let plain = ScannedMessage::scan(super::super::Message::default().to_bytes().freeze());
        assert_eq!(plain.unwrap().group_id(), None);
    }

    #[test]
    fn a_bad_field_in_properties_fails_the_scan() {
        // properties with `subject` (a string) encoded as a uint.
        let raw = Bytes::from_static(&[
            0x00, 0x53, 0x73, 0xc0, 0x06, 0x04, 0x40, 0x40, 0x40, 0x52, 0x01,
        ]);
        let err = ScannedMessage::scan(raw).unwrap_err();
        assert!(err.to_string().contains("Properties.subject"), "{err}");
    }
}
