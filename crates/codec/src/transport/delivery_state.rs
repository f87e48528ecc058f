//! Delivery states and outcomes (part 3 §3.4, with part 4's transactional states).
//!
//! [`DeliveryState`] is what a transfer or disposition `state` field may hold; [`Outcome`] is the
//! terminal subset a source's `default-outcome` or a transactional state may hold.

use bytes::BytesMut;

use crate::composite::{Composite, FieldValue, Fields, read_composite_start};
use crate::error::{ErrorKind, Result};
use crate::transactions::{Declared, TransactionalState};
use crate::transport::Error;
use crate::types::{Decoder, Encode};

crate::composite! {
    /// Partial progress of a delivery, for resumption (part 3 §3.4.1).
    pub struct Received = ("amqp:received:list", 0x23) {
        /// The section the next byte belongs to.
        section_number: u32 => required,
        /// The byte offset within that section.
        section_offset: u64 => required,
    }
}

crate::composite! {
    /// The message was processed successfully (part 3 §3.4.2).
    pub struct Accepted = ("amqp:accepted:list", 0x24) {}
}

crate::composite! {
    /// The message was invalid and will not be processed (part 3 §3.4.3).
    pub struct Rejected = ("amqp:rejected:list", 0x25) {
        /// Why. Boxed so that every delivery state stays small.
        error: Box<Error> => optional,
    }
}

crate::composite! {
    /// The message was not and will not be processed by this receiver (part 3 §3.4.4).
    pub struct Released = ("amqp:released:list", 0x26) {}
}

crate::composite! {
    /// The message was modified but not processed (part 3 §3.4.5).
    pub struct Modified = ("amqp:modified:list", 0x27) {
        /// Count this as a failed delivery attempt.
        delivery_failed: bool => default(false),
        /// Do not redeliver to this link.
        undeliverable_here: bool => default(false),
        /// Annotations to merge into the message.
        message_annotations: Fields => optional,
    }
}

/// Declares an enum of composites dispatched by descriptor code.
macro_rules! composite_union {
    ($(#[$m:meta])* pub enum $name:ident { $( $variant:ident($ty:ty) ),* $(,)? } expected $what:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq)]
        #[allow(missing_docs)]
        pub enum $name { $( $variant($ty) ),* }

        impl FieldValue for $name {
            fn decode_field(d: &mut Decoder<'_>, field: &'static str) -> Result<Option<Self>> {
                let Some((code, size, count)) = read_composite_start(d, field)? else { return Ok(None) };
                $( if code == <$ty as Composite>::CODE {
                    return <$ty as Composite>::decode_list(d, size, count).map(|v| Some($name::$variant(v)));
                } )*
                Err(ErrorKind::InvalidValue { field, reason: concat!("not a ", $what) }.into())
            }
            fn field_size(&self) -> usize {
                match self { $( $name::$variant(v) => v.encoded_size() ),* }
            }
            fn encode_field(&self, out: &mut BytesMut) {
                match self { $( $name::$variant(v) => v.encode(out) ),* }
            }
        }

        impl Encode for $name {
            fn encoded_size(&self) -> usize {
                self.field_size()
            }
            fn encode(&self, out: &mut BytesMut) {
                self.encode_field(out)
            }
        }

        $( impl From<$ty> for $name {
            fn from(v: $ty) -> Self { $name::$variant(v) }
        } )*
    };
}
pub(crate) use composite_union;

composite_union! {
    /// The state of a delivery at one end of a link.
    pub enum DeliveryState {
        Received(Received),
        Accepted(Accepted),
        Rejected(Rejected),
        Released(Released),
        Modified(Modified),
        Declared(Declared),
        TransactionalState(TransactionalState),
    } expected "delivery state"
}

composite_union! {
    /// A terminal delivery state.
    pub enum Outcome {
        Accepted(Accepted),
        Rejected(Rejected),
        Released(Released),
        Modified(Modified),
        Declared(Declared),
    } expected "outcome"
}

impl DeliveryState {
    /// Whether this state is terminal, i.e. an outcome (everything but received and a
    /// transactional state).
    pub fn is_outcome(&self) -> bool {
        !matches!(
            self,
            DeliveryState::Received(_) | DeliveryState::TransactionalState(_)
        )
    }
}

impl From<Outcome> for DeliveryState {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Accepted(v) => DeliveryState::Accepted(v),
            Outcome::Rejected(v) => DeliveryState::Rejected(v),
            Outcome::Released(v) => DeliveryState::Released(v),
            Outcome::Modified(v) => DeliveryState::Modified(v),
            Outcome::Declared(v) => DeliveryState::Declared(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn accepted_is_three_bytes_and_released_by_name_decodes() {
        let state = DeliveryState::Accepted(Accepted {});
        assert_eq!(state.to_bytes().as_ref(), [0x00, 0x53, 0x24, 0x45]);
        let mut wire = vec![0x00, 0xa3, 18];
        wire.extend_from_slice(b"amqp:released:list");
        wire.push(0x45);
        let buf = Bytes::from(wire);
        let decoded = DeliveryState::decode_field(&mut Decoder::new(&buf), "state");
        assert_eq!(decoded, Ok(Some(DeliveryState::Released(Released {}))));
    }

    #[test]
    fn an_outcome_field_refuses_received() {
        let bytes = DeliveryState::Received(Received {
            section_number: 1,
            section_offset: 2,
        })
        .to_bytes();
        let buf = bytes.freeze();
        assert!(Outcome::decode_field(&mut Decoder::new(&buf), "source.default_outcome").is_err());
    }
}
