//! Borrowed, allocation-free reads of single fields of a scanned message: what a message
//! selector needs.
//!
//! A selector tests every message a filtered receiver may get, so reading a field must cost a
//! walk over bytes already in memory, not a decode into owned values: [`FieldRef`] borrows from
//! the message's `Bytes`. Application-property keys are compared as bytes in place. Anything
//! malformed reads as `None` (the scan has checked the properties section, but the
//! application properties were only located).

use bytes::Bytes;

use super::scan::ScannedMessage;
use crate::composite::read_descriptor_code;
use crate::types::{Decoder, codes};

/// One field of a message, borrowed from the message's bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldRef<'a> {
    /// An encoded `null`.
    Null,
    /// A `boolean`.
    Bool(bool),
    /// Any integer type that fits an `i64` (a `ulong` above `i64::MAX` reads as `Other`).
    Int(i64),
    /// A `float` or `double`.
    Float(f64),
    /// A `string`.
    Str(&'a str),
    /// A `symbol`.
    Symbol(&'a str),
    /// A `binary`.
    Binary(&'a [u8]),
    /// A `uuid`.
    Uuid([u8; 16]),
    /// A `timestamp`, in milliseconds since the Unix epoch.
    Timestamp(i64),
    /// Any other type (char, decimals, compounds, described values).
    Other,
}

/// A field of the properties section (part 3 §3.2.4), by its position in the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum PropertyField {
    MessageId = 0,
    UserId = 1,
    To = 2,
    Subject = 3,
    ReplyTo = 4,
    CorrelationId = 5,
    ContentType = 6,
    ContentEncoding = 7,
    AbsoluteExpiryTime = 8,
    CreationTime = 9,
    GroupId = 10,
    GroupSequence = 11,
    ReplyToGroupId = 12,
}

/// Reads the next value as a borrowed field; `None` if it is malformed.
fn read_field<'a>(d: &mut Decoder<'a>) -> Option<FieldRef<'a>> {
    let code = d.byte().ok()?;
    Some(match code {
        codes::NULL => FieldRef::Null,
        codes::TRUE => FieldRef::Bool(true),
        codes::FALSE => FieldRef::Bool(false),
        codes::BOOLEAN => FieldRef::Bool(d.byte().ok()? != 0),
        codes::UINT0 | codes::ULONG0 => FieldRef::Int(0),
        codes::UBYTE | codes::SMALLUINT | codes::SMALLULONG => {
            FieldRef::Int(i64::from(d.byte().ok()?))
        }
        codes::BYTE | codes::SMALLINT | codes::SMALLLONG => {
            FieldRef::Int(i64::from(d.byte().ok()? as i8))
        }
        codes::USHORT => FieldRef::Int(i64::from(u16::from_be_bytes(d.array().ok()?))),
        codes::SHORT => FieldRef::Int(i64::from(i16::from_be_bytes(d.array().ok()?))),
        codes::UINT => FieldRef::Int(i64::from(u32::from_be_bytes(d.array().ok()?))),
        codes::INT => FieldRef::Int(i64::from(i32::from_be_bytes(d.array().ok()?))),
        codes::ULONG => match i64::try_from(u64::from_be_bytes(d.array().ok()?)) {
            Ok(v) => FieldRef::Int(v),
            Err(_) => FieldRef::Other,
        },
        codes::LONG => FieldRef::Int(i64::from_be_bytes(d.array().ok()?)),
        codes::FLOAT => FieldRef::Float(f64::from(f32::from_be_bytes(d.array().ok()?))),
        codes::DOUBLE => FieldRef::Float(f64::from_be_bytes(d.array().ok()?)),
        codes::TIMESTAMP => FieldRef::Timestamp(i64::from_be_bytes(d.array().ok()?)),
        codes::UUID => FieldRef::Uuid(d.array().ok()?),
        codes::VBIN8 | codes::VBIN32 => FieldRef::Binary(d.variable_slice(code).ok()?),
        codes::STR8 | codes::STR32 => {
            FieldRef::Str(std::str::from_utf8(d.variable_slice(code).ok()?).ok()?)
        }
        codes::SYM8 | codes::SYM32 => {
            FieldRef::Symbol(std::str::from_utf8(d.variable_slice(code).ok()?).ok()?)
        }
        codes::DESCRIBED => {
            d.skip_value().ok()?;
            d.skip_value().ok()?;
            FieldRef::Other
        }
        _ => {
            d.skip_body(code).ok()?;
            FieldRef::Other
        }
    })
}

/// A decoder positioned after the descriptor of the section starting at `start`.
fn section_body(raw: &Bytes, start: usize) -> Option<Decoder<'_>> {
    let mut d = Decoder::new(raw);
    d.advance(start).ok()?;
    (d.byte().ok()? == codes::DESCRIBED).then_some(())?;
    read_descriptor_code(&mut d).ok()?;
    Some(d)
}

impl ScannedMessage {
    /// The application property `name`, read in place; `None` if absent or malformed.
    pub fn application_property(&self, name: &str) -> Option<FieldRef<'_>> {
        let range = self.application_properties_range()?;
        let mut d = section_body(self.raw(), range.start)?;
        let code = d.byte().ok()?;
        if !matches!(code, codes::MAP8 | codes::MAP32) {
            return None;
        }
        let (size, count) = d.compound_header(code).ok()?;
        if size > d.remaining() {
            return None;
        }
        for _ in 0..count / 2 {
            let key_code = d.byte().ok()?;
            let key = match key_code {
                codes::STR8 | codes::STR32 | codes::SYM8 | codes::SYM32 => {
                    Some(d.variable_slice(key_code).ok()?)
                }
                _ => {
                    d.skip_body(key_code).ok()?;
                    None
                }
            };
            if key == Some(name.as_bytes()) {
                return read_field(&mut d);
            }
            d.skip_value().ok()?;
        }
        None
    }

    /// The properties-section field `which`; `None` if there is no properties section, the
    /// list is shorter, or the field is malformed. An encoded `null` reads as `Null`.
    pub fn property_field(&self, which: PropertyField) -> Option<FieldRef<'_>> {
        let mut d = section_body(self.raw(), self.properties_start()?)?;
        let code = d.byte().ok()?;
        if !matches!(code, codes::LIST0 | codes::LIST8 | codes::LIST32) {
            return None;
        }
        let (_, count) = d.compound_header(code).ok()?;
        let index = which as usize;
        if index >= count {
            return None;
        }
        for _ in 0..index {
            d.skip_value().ok()?;
        }
        read_field(&mut d)
    }

    /// The `message-id` as encoded (constructor and value), a slice of the message's bytes;
    /// `None` if there is no properties section, no id, an encoded `null`, or it is
    /// malformed. Duplicate detection compares ids so, whatever their type.
    pub fn message_id_encoded(&self) -> Option<Bytes> {
        let raw = self.raw();
        let mut d = section_body(raw, self.properties_start()?)?;
        let code = d.byte().ok()?;
        if !matches!(code, codes::LIST0 | codes::LIST8 | codes::LIST32) {
            return None;
        }
        let (_, count) = d.compound_header(code).ok()?;
        if count == 0 || d.peek().ok()? == codes::NULL {
            return None;
        }
        let start = d.position();
        d.skip_value().ok()?;
        let end = d.position();
        (end <= raw.len()).then(|| raw.slice(start..end))
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::messaging::{Body, Message, Properties};
    use crate::types::{Encode, Str, Symbol, Value};

    fn scanned(message: &Message) -> ScannedMessage {
        let mut out = BytesMut::new();
        message.encode(&mut out);
        ScannedMessage::scan(out.freeze()).unwrap()
    }

    #[test]
    fn the_message_id_is_its_encoded_value_in_place() {
        use crate::messaging::MessageId;
        let with = |id: Option<MessageId>| {
            scanned(&Message {
                properties: Some(Properties {
                    message_id: id,
                    subject: Some(Str::from("s")),
                    ..Properties::default()
                }),
                body: Body::Value(Value::Null),
                ..Message::default()
            })
        };
        let m = with(Some(MessageId::String(Str::from("order-1"))));
        let id = m.message_id_encoded().unwrap();
        assert_eq!(&id[..], b"\xa1\x07order-1");
        assert!(m.raw().as_ptr_range().contains(&id.as_ptr()), "a slice");
        let ulong = with(Some(MessageId::Ulong(7)))
            .message_id_encoded()
            .unwrap();
        assert_eq!(&ulong[..], b"\x53\x07");
        assert_eq!(with(None).message_id_encoded(), None);
        let bare = scanned(&Message {
            body: Body::Value(Value::Null),
            ..Message::default()
        });
        assert_eq!(bare.message_id_encoded(), None);
    }

    #[test]
    fn reads_application_properties_and_properties_in_place() {
        let message = Message {
            properties: Some(Properties {
                subject: Some(Str::from("stock.nyse")),
                group_sequence: Some(7),
                ..Properties::default()
            }),
            application_properties: Some(vec![
                (
                    Value::String(Str::from("colour")),
                    Value::String(Str::from("green")),
                ),
                (Value::Symbol(Symbol::from_static("weight")), Value::Int(9)),
                (Value::String(Str::from("ratio")), Value::Double(0.5)),
            ]),
            body: Body::Value(Value::Null),
            ..Message::default()
        };
        let m = scanned(&message);
        assert_eq!(
            m.application_property("colour"),
            Some(FieldRef::Str("green"))
        );
        assert_eq!(m.application_property("weight"), Some(FieldRef::Int(9)));
        assert_eq!(m.application_property("ratio"), Some(FieldRef::Float(0.5)));
        assert_eq!(m.application_property("missing"), None);
        assert_eq!(
            m.property_field(PropertyField::Subject),
            Some(FieldRef::Str("stock.nyse"))
        );
        assert_eq!(
            m.property_field(PropertyField::GroupSequence),
            Some(FieldRef::Int(7))
        );
        assert_eq!(m.property_field(PropertyField::ReplyToGroupId), None);
        assert_eq!(
            m.property_field(PropertyField::MessageId),
            Some(FieldRef::Null)
        );
    }
}
