//! A whole message with every section decoded: what clients build and send, and what tests
//! compare. The broker itself works on [`ScannedMessage`] and never decodes a body.

use bytes::{Bytes, BytesMut};

use super::scan::ScannedMessage;
use super::sections::{
    AnnotatedPrefix, Header, Properties, data_section_size, map_section_size, put_data_section,
    put_map_section, section,
};
use crate::composite::Map;
use crate::error::Result;
use crate::types::{self, Encode, Value};

/// The application data of a message.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Body {
    /// No body section.
    #[default]
    Empty,
    /// One or more `data` sections of opaque bytes.
    Data(Vec<Bytes>),
    /// One or more `amqp-sequence` sections.
    Sequence(Vec<Vec<Value>>),
    /// One `amqp-value` section.
    Value(Value),
}

/// An AMQP message, all sections decoded (part 3 §3.2).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Message {
    /// Transport headers.
    pub header: Option<Header>,
    /// Annotations for the next hop only.
    pub delivery_annotations: Option<Map>,
    /// Annotations that travel with the message.
    pub message_annotations: Option<Map>,
    /// Immutable standard properties.
    pub properties: Option<Properties>,
    /// Application properties.
    pub application_properties: Option<Map>,
    /// The body.
    pub body: Body,
    /// Footer annotations.
    pub footer: Option<Map>,
}

impl Message {
    /// A message whose body is one data section.
    pub fn with_data(data: impl Into<Bytes>) -> Self {
        Message {
            body: Body::Data(vec![data.into()]),
            ..Default::default()
        }
    }

    fn prefix(&self) -> AnnotatedPrefix<'_> {
        AnnotatedPrefix {
            header: self.header.as_ref(),
            delivery_annotations: self.delivery_annotations.as_ref(),
            message_annotations: self.message_annotations.as_ref(),
        }
    }

    /// Decodes every section of an encoded message.
    pub fn decode(raw: &Bytes) -> Result<Self> {
        let scanned = ScannedMessage::scan(raw.clone())?;
        Ok(Message {
            properties: scanned.properties()?,
            application_properties: scanned.application_properties()?,
            body: scanned.body()?,
            footer: scanned.footer()?,
            header: scanned.header,
            delivery_annotations: scanned.delivery_annotations,
            message_annotations: scanned.message_annotations,
        })
    }
}

fn value_section_size(v: &Value) -> usize {
    3 + v.encoded_size()
}

fn put_value_section(out: &mut BytesMut, code: u64, v: &Value) {
    types::put_descriptor(out, code);
    v.encode(out);
}

fn sequence_size(items: &[Value]) -> usize {
    let body: usize = items.iter().map(Encode::encoded_size).sum();
    3 + if items.is_empty() {
        1
    } else {
        types::compound_header_size(items.len(), body) + body
    }
}

fn put_sequence(out: &mut BytesMut, items: &[Value]) {
    types::put_descriptor(out, section::AMQP_SEQUENCE);
    if items.is_empty() {
        out.extend_from_slice(&[types::codes::LIST0]);
        return;
    }
    let body: usize = items.iter().map(Encode::encoded_size).sum();
    types::put_compound_header(
        out,
        types::codes::LIST8,
        types::codes::LIST32,
        items.len(),
        body,
    );
    items.iter().for_each(|v| v.encode(out));
}

impl Encode for Message {
    fn encoded_size(&self) -> usize {
        let body = match &self.body {
            Body::Empty => 0,
            Body::Data(parts) => parts.iter().map(|p| data_section_size(p.len())).sum(),
            Body::Sequence(seqs) => seqs.iter().map(|s| sequence_size(s)).sum(),
            Body::Value(v) => value_section_size(v),
        };
        self.prefix().encoded_size()
            + self.properties.as_ref().map_or(0, Encode::encoded_size)
            + self
                .application_properties
                .as_ref()
                .map_or(0, map_section_size)
            + body
            + self.footer.as_ref().map_or(0, map_section_size)
    }

    fn encode(&self, out: &mut BytesMut) {
        self.prefix().encode(out);
        if let Some(p) = &self.properties {
            p.encode(out);
        }
        if let Some(m) = &self.application_properties {
            put_map_section(out, section::APPLICATION_PROPERTIES, m);
        }
        match &self.body {
            Body::Empty => {}
            Body::Data(parts) => parts.iter().for_each(|p| put_data_section(out, p)),
            Body::Sequence(seqs) => seqs.iter().for_each(|s| put_sequence(out, s)),
            Body::Value(v) => put_value_section(out, section::AMQP_VALUE, v),
        }
        if let Some(m) = &self.footer {
            put_map_section(out, section::FOOTER, m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messaging::{BodyKind, MessageId};
    use crate::types::{Str, Symbol};

    fn sample() -> Message {
        Message {
            header: Some(Header {
                durable: true,
                ttl: Some(5000),
                delivery_count: 2,
                ..Default::default()
            }),
            delivery_annotations: Some(vec![(
                Value::Symbol(Symbol::from_static("x-opt-d")),
                Value::Uint(1),
            )]),
            message_annotations: Some(vec![(
                Value::Symbol(Symbol::from_static("x-opt-m")),
                Value::from("v"),
            )]),
            properties: Some(Properties {
                message_id: Some(MessageId::Ulong(42)),
                to: Some(Str::from("orders/eu")),
                reply_to: Some(Str::from("replies")),
                ..Default::default()
            }),
            application_properties: Some(vec![(Value::from("k"), Value::Long(-3))]),
            body: Body::Data(vec![
                Bytes::from_static(b"hello"),
                Bytes::from_static(b"world"),
            ]),
            footer: Some(vec![(
                Value::Symbol(Symbol::from_static("x-opt-f")),
                Value::Null,
            )]),
        }
    }

    #[test]
    fn a_full_message_roundtrips() {
        let m = sample();
        let bytes = m.to_bytes().freeze();
        assert_eq!(bytes.len(), m.encoded_size());
        assert_eq!(Message::decode(&bytes), Ok(m));
    }

    #[test]
    fn the_scan_keeps_the_bare_message_and_reencodes_a_changed_header() {
        let m = sample();
        let bytes = m.to_bytes().freeze();
        let mut scanned = ScannedMessage::scan(bytes.clone()).unwrap();
        assert_eq!(scanned.body_kind(), BodyKind::Data);
        assert_eq!(scanned.properties().unwrap(), m.properties);
        assert_eq!(scanned.to(), Some("orders/eu"));
        let bare = scanned.bare();
        // Zero copy: the bare message points into the received buffer.
        let offset = (bare.as_ptr() as usize).wrapping_sub(bytes.as_ptr() as usize);
        assert!(offset + bare.len() <= bytes.len());
        assert_eq!(bytes.slice(offset..offset + bare.len()), bare);
        scanned.header.as_mut().unwrap().delivery_count += 1;
        let again = Message::decode(&scanned.to_bytes().freeze()).unwrap();
        assert_eq!(again.header.unwrap().delivery_count, 3);
        assert_eq!(again.body, m.body);
        assert_eq!(again.footer, m.footer);
    }

    #[test]
    fn sections_out_of_order_are_refused() {
        let header = Header::default().to_bytes();
        let props = Properties::default().to_bytes();
        let mut wrong = props.clone();
        wrong.extend_from_slice(&header);
        assert!(ScannedMessage::scan(wrong.freeze()).is_err());
        let mut twice = header.clone();
        twice.extend_from_slice(&header);
        assert!(ScannedMessage::scan(twice.freeze()).is_err());
    }

    #[test]
    fn sequence_and_value_bodies_roundtrip() {
        for body in [
            Body::Sequence(vec![vec![Value::Uint(1)], vec![]]),
            Body::Value(Value::Map(vec![(Value::from("a"), Value::Null)])),
            Body::Empty,
        ] {
            let m = Message {
                body,
                ..Default::default()
            };
            let bytes = m.to_bytes().freeze();
            assert_eq!(Message::decode(&bytes), Ok(m));
        }
    }
}
