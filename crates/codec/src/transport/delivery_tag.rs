//! Delivery tags (part 2 §2.8.7): a sender's name for a delivery, at most 32 bytes.
//!
//! Held inline rather than as a [`bytes::Bytes`] slice of the frame: copying at most 32 bytes is
//! cheaper than the two atomic reference-count updates a slice costs, and a tag kept for an
//! unsettled delivery does not pin the whole read buffer it arrived in.

use std::fmt;

use bytes::{BufMut, BytesMut};

use crate::composite::FieldValue;
use crate::error::{ErrorKind, Result};
use crate::types::{self, Decoder, codes};

/// A delivery tag: up to [`DeliveryTag::LEN_MAX`] bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DeliveryTag {
    len: u8,
    bytes: [u8; DeliveryTag::LEN_MAX],
}

impl DeliveryTag {
    /// The longest tag the spec allows ("up to 32 octets", part 2 §2.8.7).
    pub const LEN_MAX: usize = 32;

    /// A tag holding `bytes`; `None` if they are longer than [`DeliveryTag::LEN_MAX`].
    pub fn new(bytes: &[u8]) -> Option<Self> {
        let mut tag = DeliveryTag {
            len: u8::try_from(bytes.len()).ok()?,
            bytes: [0; Self::LEN_MAX],
        };
        tag.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(tag)
    }

    /// The 8-byte big-endian tag of a counter: how a sender usually names its deliveries.
    pub fn from_u64(n: u64) -> Self {
        let [b0, b1, b2, b3, b4, b5, b6, b7] = n.to_be_bytes();
        let mut bytes = [0; Self::LEN_MAX];
        for (slot, b) in bytes.iter_mut().zip([b0, b1, b2, b3, b4, b5, b6, b7]) {
            *slot = b;
        }
        DeliveryTag { len: 8, bytes }
    }

    /// The tag's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }
}

impl fmt::Debug for DeliveryTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeliveryTag(")?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

impl FieldValue for DeliveryTag {
    #[inline(always)]
    fn decode_field(d: &mut Decoder<'_>, field: &'static str) -> Result<Option<Self>> {
        match d.byte()? {
            codes::NULL => Ok(None),
            code @ (codes::VBIN8 | codes::VBIN32) => {
                match DeliveryTag::new(d.variable_slice(code)?) {
                    Some(tag) => Ok(Some(tag)),
                    None => Err(ErrorKind::InvalidValue {
                        field,
                        reason: "delivery tag longer than 32 bytes",
                    }
                    .into()),
                }
            }
            found => Err(ErrorKind::UnexpectedType {
                field,
                expected: "binary",
                found,
            }
            .into()),
        }
    }
    fn field_size(&self) -> usize {
        2 + usize::from(self.len)
    }
    fn encode_field(&self, out: &mut BytesMut) {
        out.put_u8(codes::VBIN8);
        out.put_u8(self.len);
        out.put_slice(self.as_bytes());
    }
}

const _: () = assert!(types::variable_size(DeliveryTag::LEN_MAX) == 2 + DeliveryTag::LEN_MAX);

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn tags_longer_than_32_bytes_are_refused() {
        assert!(DeliveryTag::new(&[7; 32]).is_some());
        assert!(DeliveryTag::new(&[7; 33]).is_none());
        let mut wire = vec![codes::VBIN8, 33];
        wire.extend_from_slice(&[1; 33]);
        let buf = Bytes::from(wire);
        let err = DeliveryTag::decode_field(&mut Decoder::new(&buf), "Transfer.delivery_tag")
            .unwrap_err();
        assert_eq!(err.condition(), crate::error::DECODE_ERROR);
        // The wide encoding of a short tag is accepted.
        let buf = Bytes::from_static(&[codes::VBIN32, 0, 0, 0, 2, 0xab, 0xcd]);
        let tag = DeliveryTag::decode_field(&mut Decoder::new(&buf), "tag")
            .unwrap()
            .unwrap();
        assert_eq!(tag.as_bytes(), [0xab, 0xcd]);
        assert_eq!(format!("{tag:?}"), "DeliveryTag(abcd)");
        assert_eq!(
            DeliveryTag::from_u64(1).as_bytes(),
            [0, 0, 0, 0, 0, 0, 0, 1]
        );
    }
}
