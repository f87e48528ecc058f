//! The benchmark message: a data body whose last 16 bytes carry the sequence number and the
//! send time, so latency is measured through any broker without touching other sections.

use bytes::Bytes;
use sluice_codec::Encode;
use sluice_codec::messaging::{Body, Header, Message, Properties};

/// Bytes at the end of every body: sequence number, then send time (both big-endian `u64`).
pub const TRAILER_BYTES: usize = 16;

/// One encoded message, patched in place for each send: no allocation per message.
#[derive(Debug, Clone)]
pub struct Template {
    bytes: Vec<u8>,
}

impl Template {
    /// A message with a body of `body_size` bytes (at least [`TRAILER_BYTES`]), durable or not.
    pub fn new(body_size: usize, durable: bool) -> Option<Self> {
        if body_size < TRAILER_BYTES {
            return None;
        }
        let message = Message {
            header: durable.then(|| Header {
                durable: true,
                ..Default::default()
            }),
            properties: Some(Properties::default()),
            body: Body::Data(vec![Bytes::from(vec![b'x'; body_size])]),
            ..Default::default()
        };
        Some(Template {
            bytes: message.to_bytes().to_vec(),
        })
    }

    /// The message for `sequence`, sent (or due) at `sent_ns`.
    pub fn fill(&mut self, sequence: u64, sent_ns: u64) -> &[u8] {
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
    fn a_body_too_small_for_the_trailer_is_refused() {
        assert!(Template::new(TRAILER_BYTES - 1, false).is_none());
        assert!(Template::new(TRAILER_BYTES, false).is_some());
        assert_eq!(trailer(&[0; 3]), None);
    }
}
