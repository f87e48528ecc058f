//! Message sections (part 3 §3.2): the header and properties composites, message ids, and the
//! descriptor codes of the map and body sections.

use bytes::{BufMut, Bytes, BytesMut};

use crate::composite::{FieldValue, Map};
use crate::error::{CodecError, ErrorKind, Result};
use crate::types::{self, Decoder, Encode, Str, Symbol, Timestamp, Uuid, codes};

crate::composite! {
    /// Transport headers for a message (part 3 §3.2.1). Fields at their default are encoded as
    /// null, as Proton does.
    pub struct Header = ("amqp:header:list", 0x70) {
        /// Whether the message must survive an intermediary restart.
        durable: bool => default(false),
        /// Relative priority, 0 to 9 by convention; 4 when absent.
        priority: u8 => default(4),
        /// Time to live in milliseconds.
        ttl: u32 => optional,
        /// Whether the message has not been acquired before.
        first_acquirer: bool => default(false),
        /// Number of prior unsuccessful delivery attempts.
        delivery_count: u32 => default(0),
    }
}

crate::composite! {
    /// Immutable properties of the bare message (part 3 §3.2.4).
    pub struct Properties = ("amqp:properties:list", 0x73) {
        /// Application message identifier.
        message_id: MessageId => optional,
        /// Identity of the user that produced the message.
        user_id: Bytes => optional,
        /// The address of the node the message is destined for.
        to: Str => optional,
        /// The subject of the message.
        subject: Str => optional,
        /// The node to send replies to.
        reply_to: Str => optional,
        /// Application correlation identifier.
        correlation_id: MessageId => optional,
        /// MIME content type.
        content_type: Symbol => optional,
        /// MIME content encoding.
        content_encoding: Symbol => optional,
        /// When the message is considered expired.
        absolute_expiry_time: Timestamp => optional,
        /// When the message was created.
        creation_time: Timestamp => optional,
        /// The group the message belongs to.
        group_id: Str => optional,
        /// The relative position of the message within its group.
        group_sequence: u32 => optional,
        /// The group the reply message belongs to.
        reply_to_group_id: Str => optional,
    }
}

/// A message or correlation id (part 3 §3.2.11 to §3.2.14).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum MessageId {
    Ulong(u64),
    Uuid(Uuid),
    Binary(Bytes),
    String(Str),
}

impl FieldValue for MessageId {
    fn decode_field(d: &mut Decoder<'_>, field: &'static str) -> Result<Option<Self>> {
        let code = d.peek()?;
        Ok(Some(match code {
            codes::NULL => {
                d.byte()?;
                return Ok(None);
            }
            codes::ULONG0 | codes::SMALLULONG | codes::ULONG => {
                MessageId::Ulong(decoded(u64::decode_field(d, field))?)
            }
            codes::UUID => MessageId::Uuid(decoded(Uuid::decode_field(d, field))?),
            codes::VBIN8 | codes::VBIN32 => {
                MessageId::Binary(decoded(Bytes::decode_field(d, field))?)
            }
            codes::STR8 | codes::STR32 => MessageId::String(decoded(Str::decode_field(d, field))?),
            other => {
                return Err(ErrorKind::UnexpectedType {
                    field,
                    expected: "message id",
                    found: other,
                }
                .into());
            }
        }))
    }
    fn validate_field(d: &mut Decoder<'_>, field: &'static str) -> Result<()> {
        match d.peek()? {
            codes::VBIN8 | codes::VBIN32 => Bytes::validate_field(d, field),
            codes::STR8 | codes::STR32 => Str::validate_field(d, field),
            _ => Self::decode_field(d, field).map(drop),
        }
    }
    fn field_size(&self) -> usize {
        match self {
            MessageId::Ulong(v) => v.field_size(),
            MessageId::Uuid(v) => v.field_size(),
            MessageId::Binary(v) => v.field_size(),
            MessageId::String(v) => v.field_size(),
        }
    }
    fn encode_field(&self, out: &mut BytesMut) {
        match self {
            MessageId::Ulong(v) => v.encode_field(out),
            MessageId::Uuid(v) => v.encode_field(out),
            MessageId::Binary(v) => v.encode_field(out),
            MessageId::String(v) => v.encode_field(out),
        }
    }
}

/// The value of a non-null field whose constructor was peeked.
fn decoded<T>(r: Result<Option<T>>) -> Result<T> {
    r?.ok_or_else(|| {
        CodecError::from(ErrorKind::InvalidValue {
            field: "message id",
            reason: "null",
        })
    })
}

/// Descriptor codes of the sections (part 3 §3.2).
pub mod section {
    /// `header`.
    pub const HEADER: u64 = 0x70;
    /// `delivery-annotations`.
    pub const DELIVERY_ANNOTATIONS: u64 = 0x71;
    /// `message-annotations`.
    pub const MESSAGE_ANNOTATIONS: u64 = 0x72;
    /// `properties`.
    pub const PROPERTIES: u64 = 0x73;
    /// `application-properties`.
    pub const APPLICATION_PROPERTIES: u64 = 0x74;
    /// `data`.
    pub const DATA: u64 = 0x75;
    /// `amqp-sequence`.
    pub const AMQP_SEQUENCE: u64 = 0x76;
    /// `amqp-value`.
    pub const AMQP_VALUE: u64 = 0x77;
    /// `footer`.
    pub const FOOTER: u64 = 0x78;
}

/// Size of a map section (annotations, application properties, footer).
pub fn map_section_size(map: &Map) -> usize {
    3 + map.field_size()
}

/// Writes a map section with descriptor `code`.
pub fn put_map_section(out: &mut BytesMut, code: u64, map: &Map) {
    types::put_descriptor(out, code);
    map.encode_field(out);
}

/// Size of a data section holding `len` bytes.
pub fn data_section_size(len: usize) -> usize {
    3 + types::variable_size(len)
}

/// Writes a data section.
pub fn put_data_section(out: &mut BytesMut, data: &[u8]) {
    out.put_slice(&[codes::DESCRIBED, codes::SMALLULONG, section::DATA as u8]);
    types::put_variable(out, codes::VBIN8, codes::VBIN32, data);
}

/// The sections in front of the bare message: the ones an intermediary may change (part 3
/// §3.2). Both whole messages and scanned ones encode them through this.
#[derive(Debug, Clone, Copy)]
pub struct AnnotatedPrefix<'a> {
    /// The header.
    pub header: Option<&'a Header>,
    /// Delivery annotations.
    pub delivery_annotations: Option<&'a Map>,
    /// Message annotations.
    pub message_annotations: Option<&'a Map>,
}

impl Encode for AnnotatedPrefix<'_> {
    fn encoded_size(&self) -> usize {
        self.header.map_or(0, Encode::encoded_size)
            + self.delivery_annotations.map_or(0, map_section_size)
            + self.message_annotations.map_or(0, map_section_size)
    }

    fn encode(&self, out: &mut BytesMut) {
        if let Some(h) = self.header {
            h.encode(out);
        }
        if let Some(m) = self.delivery_annotations {
            put_map_section(out, section::DELIVERY_ANNOTATIONS, m);
        }
        if let Some(m) = self.message_annotations {
            put_map_section(out, section::MESSAGE_ANNOTATIONS, m);
        }
    }
}
