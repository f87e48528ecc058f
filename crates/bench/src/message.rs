//! The benchmark message: a data body whose last 16 bytes carry the sequence number and the
//! send time, so latency is measured through any broker without touching other sections.
//! With slots, an application property `slot` (an `int`) is patched in place too, for
//! consumers that select on it.

use bytes::Bytes;
use sluice_codec::Encode;
use sluice_codec::messaging::{Body, Header, Message, Properties};
use sluice_codec::types::{Str, Value};

/// Bytes at the end of every body: sequence number, then send time (both big-endian `u64`).
pub const TRAILER_BYTES: usize = 16;

/// The application property a slotted message carries.
pub(crate) const SLOT_PROPERTY: &str = "slot";

/// The `slot` value the template is encoded with, so its place can be found: large enough to
/// be written as a 4-byte `int` (0x71), which every slot then is.
const SLOT_MARKER: i32 = 0x5A5A_5A5A;

/// One encoded message, patched in place for each send: no allocation per message.
#[derive(Debug, Clone)]
pub struct Template {
    bytes: Vec<u8>,
    /// Where the `slot` int's 4 bytes are, and how many slots there are.
    slot: Option<(usize, u32)>,
}

impl Template {
    /// A message with a body of `body_size` bytes (at least [`TRAILER_BYTES`]), durable or not.
    pub fn new(body_size: usize, durable: bool) -> Option<Self> {
        Template::slotted(body_size, durable, None)
    }

    /// The same, carrying the application property `slot` = sequence mod `slots` when given.
    pub fn slotted(body_size: usize, durable: bool, slots: Option<u32>) -> Option<Self> {
        if body_size < TRAILER_BYTES || slots == Some(0) {
            return None;
        }
        let message = Message {
            header: durable.then(|| Header {
                durable: true,
                ..Default::default()
            }),
            properties: Some(Properties::default()),
            application_properties: slots.map(|_| {
                vec![(
                    Value::String(Str::from(SLOT_PROPERTY)),
                    Value::Int(SLOT_MARKER),
                )]
            }),
            body: Body::Data(vec![Bytes::from(vec![b'x'; body_size])]),
            ..Default::default()
        };
        let bytes = message.to_bytes().to_vec();
        let slot = match slots {
            None => None,
            Some(n) => {
                let mut marker = [0x71; 5];
                marker[1..].copy_from_slice(&SLOT_MARKER.to_be_bytes());
                let at = bytes.windows(5).position(|w| w == marker)?;
                Some((at + 1, n))
            }
        };
        Some(Template { bytes, slot })
    }

    /// The message for `sequence`, sent (or due) at `sent_ns`.
    pub fn fill(&mut self, sequence: u64, sent_ns: u64) -> &[u8] {
        if let Some((at, slots)) = self.slot
            && let Some(place) = self.bytes.get_mut(at..at + 4)
        {
            // The sender's index sits in the top 16 bits: slots count its own messages.
            let slot = (sequence & ((1 << 48) - 1)) % u64::from(slots);
            place.copy_from_slice(&(slot as i32).to_be_bytes());
        }
        let len = self.bytes.len();
        if let Some(tail) = self.bytes.get_mut(len - TRAILER_BYTES..) {
            let (seq, time) = tail.split_at_mut(8);
            seq.copy_from_slice(&sequence.to_be_bytes());
            time.copy_from_slice(&sent_ns.to_be_bytes());
        }
        &self.bytes
    }

    /// The encoded size.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Never: a message always has its sections.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// The sequence number and send time a received message carries, if it is long enough.
pub fn trailer(payload: &[u8]) -> Option<(u64, u64)> {
    let tail = payload.get(payload.len().checked_sub(TRAILER_BYTES)?..)?;
    let (seq, time) = tail.split_at(8);
    Some((
        u64::from_be_bytes(seq.try_into().ok()?),
        u64::from_be_bytes(time.try_into().ok()?),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn the_trailer_round_trips_and_the_message_decodes() {
        let mut t = Template::new(100, true).unwrap();
        let bytes = Bytes::copy_from_slice(t.fill(42, 123_456_789));
        assert_eq!(trailer(&bytes), Some((42, 123_456_789)));
        let m = Message::decode(&bytes).unwrap();
        assert!(m.header.unwrap().durable);
        match m.body {
            Body::Data(d) => assert_eq!(d[0].len(), 100),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_slotted_message_carries_its_slot() {
        let mut t = Template::slotted(100, false, Some(10)).unwrap();
        for (sequence, slot) in [(0u64, 0), (7, 7), (23, 3), ((5 << 48) | 41, 1)] {
            let bytes = Bytes::copy_from_slice(t.fill(sequence, 9));
            let m = Message::decode(&bytes).unwrap();
            let props = m.application_properties.unwrap();
            assert_eq!(props[0].1, Value::Int(slot), "sequence {sequence}");
            assert_eq!(trailer(&bytes), Some((sequence, 9)));
        }
        assert!(Template::slotted(100, false, Some(0)).is_none());
    }

    #[test]
    fn a_body_too_small_for_the_trailer_is_refused() {
        assert!(Template::new(TRAILER_BYTES - 1, false).is_none());
        assert!(Template::new(TRAILER_BYTES, false).is_some());
        assert_eq!(trailer(&[0; 3]), None);
    }
}
