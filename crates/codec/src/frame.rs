//! Framing (part 2 §2.2, §2.3; part 5 §5.1, §5.2, §5.3): protocol headers, the 8-byte frame
//! header, the incremental frame decoder and the frame encoders.
//!
//! ```text
//!  +0     +1     +2     +3
//! +------+------+------+------+        required   SIZE: whole frame, header included
//! |          SIZE             |        DOFF: header length in 4-byte words (>= 2)
//! +------+------+------+------+        TYPE: 0 AMQP, 1 SASL
//! | DOFF | TYPE |  CHANNEL    |
//! +------+------+------+------+
//! |   extended header (DOFF*4 - 8 bytes, ignored)  |
//! |   body: a performative, then the payload       |
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{ErrorKind, Result};
use crate::security::SaslFrame;
use crate::transport::{Performative, Transfer};
use crate::types::{Decoder, Encode};

/// Bytes in a frame header.
pub const FRAME_HEADER_SIZE: usize = 8;
/// The largest frame a peer may send before it has learned the other's maximum: every peer
/// must accept frames of this size (part 2 §2.7.1, MIN-MAX-FRAME-SIZE).
pub const MIN_MAX_FRAME_SIZE: u32 = 512;
/// Frame type of AMQP frames.
pub const FRAME_TYPE_AMQP: u8 = 0x00;
/// Frame type of SASL frames.
pub const FRAME_TYPE_SASL: u8 = 0x01;
/// An empty AMQP frame on channel 0: the heartbeat that keeps an idle connection open.
pub const EMPTY_FRAME: [u8; 8] = [0, 0, 0, 8, 2, 0, 0, 0];
/// Most buffer room [`decode_frame`] reserves ahead of a partial frame's bytes. The size is the
/// peer's word until the bytes arrive: reserving all of it let an 8-byte header claiming a
/// frame of the maximum size (4 GiB when none is set) allocate that much at once.
const RESERVE_AHEAD_MAX: usize = 64 * 1024;

/// The protocol layers a connection may start with (part 2 §2.2, part 5 §5.1 and §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolId {
    /// Plain AMQP.
    Amqp = 0,
    /// A TLS layer.
    Tls = 2,
    /// A SASL layer.
    Sasl = 3,
}

/// The 8-byte protocol header: `AMQP`, protocol id, major, minor, revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolHeader {
    /// The protocol id byte as received (may be one we do not know).
    pub id: u8,
    /// Major version.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
    /// Revision.
    pub revision: u8,
}

impl ProtocolHeader {
    /// `AMQP 0 1.0.0`.
    pub const AMQP: ProtocolHeader = ProtocolHeader::v1_0(ProtocolId::Amqp);
    /// `AMQP 2 1.0.0`.
    pub const TLS: ProtocolHeader = ProtocolHeader::v1_0(ProtocolId::Tls);
    /// `AMQP 3 1.0.0`.
    pub const SASL: ProtocolHeader = ProtocolHeader::v1_0(ProtocolId::Sasl);

    const fn v1_0(id: ProtocolId) -> Self {
        ProtocolHeader {
            id: id as u8,
            major: 1,
            minor: 0,
            revision: 0,
        }
    }

    /// The protocol, if the id is one AMQP 1.0 defines.
    pub fn protocol(&self) -> Option<ProtocolId> {
        match self.id {
            0 => Some(ProtocolId::Amqp),
            2 => Some(ProtocolId::Tls),
            3 => Some(ProtocolId::Sasl),
            _ => None,
        }
    }

    /// Whether this is version 1.0.0 of a protocol we know.
    pub fn is_supported(&self) -> bool {
        self.protocol().is_some() && (self.major, self.minor, self.revision) == (1, 0, 0)
    }

    /// The wire form.
    pub fn to_bytes(self) -> [u8; 8] {
        [
            b'A',
            b'M',
            b'Q',
            b'P',
            self.id,
            self.major,
            self.minor,
            self.revision,
        ]
    }

    /// Reads a protocol header from the start of `buf`: `Ok(None)` until 8 bytes are there, and
    /// an error as soon as the bytes present cannot begin `AMQP` (an HTTP request, say), so the
    /// caller can answer without waiting for more.
    pub fn decode(buf: &[u8]) -> Result<Option<ProtocolHeader>> {
        let prefix_len = buf.len().min(4);
        if buf.get(..prefix_len) != b"AMQP".get(..prefix_len) {
            return Err(ErrorKind::NotAmqp.into());
        }
        match buf.get(..8) {
            Some(&[_, _, _, _, id, major, minor, revision]) => Ok(Some(ProtocolHeader {
                id,
                major,
                minor,
                revision,
            })),
            _ => Ok(None),
        }
    }
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Total frame size, header included.
    pub size: u32,
    /// Data offset in 4-byte words.
    pub doff: u8,
    /// Frame type.
    pub frame_type: u8,
    /// Channel (AMQP frames) or ignored (SASL frames).
    pub channel: u16,
}

impl FrameHeader {
    /// Parses and checks the 8 header bytes.
    pub fn parse(bytes: [u8; 8]) -> Result<Self> {
        let [s0, s1, s2, s3, doff, frame_type, c0, c1] = bytes;
        let header = FrameHeader {
            size: u32::from_be_bytes([s0, s1, s2, s3]),
            doff,
            frame_type,
            channel: u16::from_be_bytes([c0, c1]),
        };
        // Part 2 §2.3.1: SIZE covers the header; DOFF MUST be at least 2 and the body starts
        // within the frame.
        if (header.size as usize) < FRAME_HEADER_SIZE {
            return Err(ErrorKind::Framing("frame size is smaller than the frame header").into());
        }
        if doff < 2 {
            return Err(ErrorKind::Framing("data offset is below 2").into());
        }
        if usize::from(doff) * 4 > header.size as usize {
            return Err(ErrorKind::Framing("data offset points past the end of the frame").into());
        }
        Ok(header)
    }
}

/// What a frame carries.
#[derive(Debug, Clone, PartialEq)]
pub enum FrameBody {
    /// An empty frame: a heartbeat.
    Empty,
    /// An AMQP performative and, for a transfer, the payload that follows it.
    Amqp {
        /// The performative.
        performative: Performative,
        /// Bytes after the performative: a slice of the read buffer, not a copy.
        payload: Bytes,
    },
    /// A SASL frame.
    Sasl(SaslFrame),
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The channel from the header.
    pub channel: u16,
    /// The body.
    pub body: FrameBody,
}

/// Decodes the next whole frame from the front of `buf`, leaving any partial frame in place.
///
/// `Ok(None)` means more bytes are needed. A frame declaring a size over `max_frame_size` is
/// refused as soon as its header is read, before any of it is buffered; room for a smaller one
/// is reserved as its bytes arrive, not all at once on the header's word.
pub fn decode_frame(buf: &mut BytesMut, max_frame_size: u32) -> Result<Option<Frame>> {
    let Some(header_bytes) = buf.get(..FRAME_HEADER_SIZE) else {
        return Ok(None);
    };
    let mut raw = [0u8; FRAME_HEADER_SIZE];
    raw.copy_from_slice(header_bytes);
    let header = FrameHeader::parse(raw)?;
    if header.size > max_frame_size {
        return Err(ErrorKind::FrameTooLarge {
            size: header.size,
            max: max_frame_size,
        }
        .into());
    }
    let size = header.size as usize;
    if buf.len() < size {
        buf.reserve((size - buf.len()).min(RESERVE_AHEAD_MAX));
        return Ok(None);
    }
    let mut frame = buf.split_to(size).freeze();
    frame.advance(usize::from(header.doff) * 4);
    decode_frame_body(header, frame).map(Some)
}

/// Decodes a frame body (what follows the data offset).
pub fn decode_frame_body(header: FrameHeader, body: Bytes) -> Result<Frame> {
    if body.is_empty() {
        // Only an AMQP frame may be empty (part 2 §2.3.2): it keeps the connection alive.
        return match header.frame_type {
            FRAME_TYPE_AMQP => Ok(Frame {
                channel: header.channel,
                body: FrameBody::Empty,
            }),
            FRAME_TYPE_SASL => Err(ErrorKind::Framing("empty SASL frame").into()),
            _ => Err(ErrorKind::Framing("unknown frame type").into()),
        };
    }
    let mut d = Decoder::new(&body);
    let frame_body = match header.frame_type {
        FRAME_TYPE_AMQP => {
            let performative = Performative::decode(&mut d)?;
            let payload = body.slice(d.position()..);
            FrameBody::Amqp {
                performative,
                payload,
            }
        }
        FRAME_TYPE_SASL => {
            let sasl = SaslFrame::decode(&mut d)?;
            if !d.is_empty() {
                return Err(ErrorKind::Framing("bytes after a SASL frame body").into());
            }
            FrameBody::Sasl(sasl)
        }
        _ => return Err(ErrorKind::Framing("unknown frame type").into()),
    };
    Ok(Frame {
        channel: header.channel,
        body: frame_body,
    })
}

fn put_frame_header(out: &mut BytesMut, size: usize, frame_type: u8, channel: u16) {
    out.put_u32(size as u32);
    out.put_u8(2);
    out.put_u8(frame_type);
    out.put_u16(channel);
}

/// Encodes one frame holding `body` and `payload`, refusing one over `max_frame_size` with
/// [`CodecError::FrameSizeTooSmall`].
fn encode_frame(
    out: &mut BytesMut,
    channel: u16,
    frame_type: u8,
    body: &impl Encode,
    payload: &[u8],
    max_frame_size: u32,
) -> Result<()> {
    encode_frame_sized(
        out,
        channel,
        frame_type,
        body,
        body.encoded_size(),
        payload,
        max_frame_size,
    )
}

/// [`encode_frame`] for a body whose encoded size the caller has already computed (a
/// transfer's, on the path every delivery takes: a composite's size costs a walk of its
/// fields).
fn encode_frame_sized(
    out: &mut BytesMut,
    channel: u16,
    frame_type: u8,
    body: &impl Encode,
    body_size: usize,
    payload: &[u8],
    max_frame_size: u32,
) -> Result<()> {
    let size = FRAME_HEADER_SIZE + body_size + payload.len();
    debug_assert_eq!(body_size, body.encoded_size());
    if size > max_frame_size as usize {
        return Err(ErrorKind::FrameSizeTooSmall {
            needed: size,
            max: max_frame_size,
        }
        .into());
    }
    out.reserve(size);
    put_frame_header(out, size, frame_type, channel);
    body.encode(out);
    out.put_slice(payload);
    Ok(())
}

/// Encodes an AMQP frame with a performative and no payload.
pub fn encode_performative(
    out: &mut BytesMut,
    channel: u16,
    performative: &Performative,
    max_frame_size: u32,
) -> Result<()> {
    encode_frame(
        out,
        channel,
        FRAME_TYPE_AMQP,
        performative,
        &[],
        max_frame_size,
    )
}

/// Encodes a SASL frame (always channel 0).
pub fn encode_sasl(out: &mut BytesMut, frame: &SaslFrame, max_frame_size: u32) -> Result<()> {
    encode_frame(out, 0, FRAME_TYPE_SASL, frame, &[], max_frame_size)
}

/// Encodes a delivery's transfer frames: `transfer` with as much of `payload` as fits, then
/// continuation transfers (handle and `more` only) for the rest. Each payload byte is copied
/// once, into `out`. The last frame carries `transfer.more`, so a caller streaming a large
/// message can send it in pieces.
pub fn encode_transfer(
    out: &mut BytesMut,
    channel: u16,
    transfer: &Transfer,
    payload: &[u8],
    max_frame_size: u32,
) -> Result<()> {
    let max = max_frame_size as usize;
    let transfer_size = transfer.encoded_size();
    let first_overhead = FRAME_HEADER_SIZE + transfer_size;
    if first_overhead + payload.len() <= max {
        return encode_frame_sized(
            out,
            channel,
            FRAME_TYPE_AMQP,
            transfer,
            transfer_size,
            payload,
            max_frame_size,
        );
    }
    let mut first = transfer.clone();
    first.more = true;
    let first_room = max.saturating_sub(FRAME_HEADER_SIZE + first.encoded_size());
    if first_room == 0 {
        return Err(ErrorKind::FrameSizeTooSmall {
            needed: first_overhead + 1,
            max: max_frame_size,
        }
        .into());
    }
    let (head, mut rest) = payload.split_at(first_room.min(payload.len()));
    encode_frame(out, channel, FRAME_TYPE_AMQP, &first, head, max_frame_size)?;
    let mut next = Transfer {
        handle: transfer.handle,
        more: true,
        batchable: transfer.batchable,
        ..Default::default()
    };
    let room = max.saturating_sub(FRAME_HEADER_SIZE + next.encoded_size());
    if room == 0 {
        return Err(ErrorKind::FrameSizeTooSmall {
            needed: max + 1,
            max: max_frame_size,
        }
        .into());
    }
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(room.min(rest.len()));
        if tail.is_empty() {
            next.more = transfer.more;
        }
        encode_frame(out, channel, FRAME_TYPE_AMQP, &next, chunk, max_frame_size)?;
        rest = tail;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{Close, Open};

    #[test]
    fn protocol_headers_are_recognised_early() {
        assert_eq!(ProtocolHeader::decode(b"AMQ"), Ok(None));
        assert_eq!(
            ProtocolHeader::decode(b"GET / HT"),
            Err(ErrorKind::NotAmqp.into())
        );
        assert_eq!(ProtocolHeader::decode(b"AM"), Ok(None));
        let sasl = ProtocolHeader::decode(&ProtocolHeader::SASL.to_bytes());
        assert_eq!(sasl, Ok(Some(ProtocolHeader::SASL)));
        let odd = ProtocolHeader::decode(b"AMQP\x01\x01\x00\x0a")
            .unwrap()
            .unwrap();
        assert!(!odd.is_supported());
        assert!(ProtocolHeader::TLS.is_supported());
    }

    #[test]
    fn frames_arrive_in_pieces_and_heartbeats_are_empty() {
        let mut wire = BytesMut::new();
        let open = Performative::from(Open {
            container_id: "x".into(),
            ..Default::default()
        });
        encode_performative(&mut wire, 0, &open, 512).unwrap();
        wire.put_slice(&EMPTY_FRAME);
        let whole = wire.clone();
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for byte in whole.iter() {
            buf.put_u8(*byte);
            while let Some(f) = decode_frame(&mut buf, 512).unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(frames.len(), 2);
        assert_eq!(
            frames[0].body,
            FrameBody::Amqp {
                performative: open,
                payload: Bytes::new()
            }
        );
        assert_eq!(frames[1].body, FrameBody::Empty);
    }

    #[test]
    fn bad_headers_are_framing_errors() {
        for (bytes, why) in [
            ([0, 0, 0, 7, 2, 0, 0, 0], "size below 8"),
            ([0, 0, 0, 8, 1, 0, 0, 0], "doff below 2"),
            ([0, 0, 0, 8, 3, 0, 0, 0], "doff past the end"),
        ] {
            let mut buf = BytesMut::from(&bytes[..]);
            let err = decode_frame(&mut buf, 512).unwrap_err();
            assert_eq!(err.condition(), crate::error::FRAMING_ERROR, "{why}");
        }
        let mut big = BytesMut::from(&[0u8, 1, 0, 0, 2, 0, 0, 0][..]);
        assert_eq!(
            decode_frame(&mut big, 512),
            Err(ErrorKind::FrameTooLarge {
                size: 65536,
                max: 512
            }
            .into())
        );
        let mut unknown = BytesMut::from(&[0u8, 0, 0, 9, 2, 7, 0, 0, 0x40][..]);
        assert!(decode_frame(&mut unknown, 512).is_err());
        let mut empty_unknown = BytesMut::from(&[0u8, 0, 0, 8, 2, 7, 0, 0][..]);
        assert!(decode_frame(&mut empty_unknown, 512).is_err());
        let mut empty_sasl = BytesMut::from(&[0u8, 0, 0, 8, 2, 1, 0, 0][..]);
        assert!(decode_frame(&mut empty_sasl, 512).is_err());
    }

    #[test]
    fn a_declared_size_is_not_reserved_before_its_bytes_arrive() {
        // 8 bytes claiming a 256 MiB frame, under a maximum of u32::MAX (open's default).
        let mut buf = BytesMut::from(&[0x10u8, 0, 0, 0, 2, 0, 0, 0][..]);
        assert_eq!(decode_frame(&mut buf, u32::MAX), Ok(None));
        assert!(buf.capacity() <= 1 << 20, "reserved {}", buf.capacity());
    }

    #[test]
    fn extended_headers_are_skipped() {
        let mut wire = BytesMut::from(&[0u8, 0, 0, 16, 3, 0, 0, 5, 9, 9, 9, 9][..]);
        wire.put_slice(&[0x00, 0x53, 0x18, 0x45]);
        let frame = decode_frame(&mut wire, 512).unwrap().unwrap();
        assert_eq!(frame.channel, 5);
        assert_eq!(
            frame.body,
            FrameBody::Amqp {
                performative: Close::default().into(),
                payload: Bytes::new()
            }
        );
    }

    #[test]
    fn large_payloads_split_into_continuation_transfers() {
        let payload: Vec<u8> = (0..2000u32).map(|i| i as u8).collect();
        let transfer = Transfer {
            handle: 1,
            delivery_id: Some(5),
            delivery_tag: crate::transport::DeliveryTag::new(b"tag"),
            message_format: Some(0),
            ..Default::default()
        };
        let mut wire = BytesMut::new();
        encode_transfer(&mut wire, 3, &transfer, &payload, 512).unwrap();
        let mut joined = Vec::new();
        let mut mores = Vec::new();
        while let Some(frame) = decode_frame(&mut wire, 512).unwrap() {
            let FrameBody::Amqp {
                performative: Performative::Transfer(t),
                payload,
            } = frame.body
            else {
                panic!("not a transfer");
            };
            assert_eq!(frame.channel, 3);
            assert_eq!(t.handle, 1);
            mores.push(t.more);
            joined.extend_from_slice(&payload);
        }
        assert_eq!(joined, payload);
        assert!(mores.len() > 4);
        assert_eq!(mores.last(), Some(&false));
        assert!(mores[..mores.len() - 1].iter().all(|m| *m));
    }

    #[test]
    fn a_performative_too_big_for_the_frame_is_frame_size_too_small() {
        let open = Performative::from(Open {
            container_id: "x".repeat(600).into(),
            ..Default::default()
        });
        let err = encode_performative(&mut BytesMut::new(), 0, &open, 512).unwrap_err();
        assert_eq!(err.condition(), crate::error::FRAME_SIZE_TOO_SMALL);
    }
}
