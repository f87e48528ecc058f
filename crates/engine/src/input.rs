//! The read buffer: bytes from the socket, cut into frames.
//!
//! A frame is decoded as `Bytes` slices of the buffer it was read into, so a payload kept after
//! its frame is handled (a message handed to the caller, one part of a delivery still arriving)
//! keeps that buffer's whole allocation alive, neighbouring frames and all. To know what a kept
//! part really holds, a large frame (at least [`LARGE_FRAME_MIN`] bytes, up to the frame size we
//! accept) is read into an allocation of exactly its own size, so that keeping it holds that
//! frame and nothing else. Small frames share one chunk, as every frame used to.
//!
//! A large frame gets its allocation once at least half of it has arrived: the peer's word
//! alone (a frame header) never makes us allocate, and at most the other half is reserved ahead
//! of its bytes. Until then its first bytes wait in the shared chunk and are copied over once,
//! as growing the buffer copied a partial frame before.

use bytes::BytesMut;
use sluice_codec::CodecError;
use sluice_codec::frame::{FRAME_HEADER_SIZE, Frame, decode_frame};

/// The smallest frame read into an allocation of its own. The cost of keeping a part (its
/// `Bytes`, its slot in the part list and the allocation's header, about 100 bytes) is then
/// under 1.5 % of the part; a smaller payload is cheaper copied.
pub(crate) const LARGE_FRAME_MIN: usize = 8 * 1024;

/// The smallest shared chunk allocated, so that many small reads share one allocation.
const CHUNK_MIN: usize = 16 * 1024;

/// How many frames past the front one are looked at for a large frame to stop before. A read
/// of many small frames is then buffered whole, as before, without a pass over its headers
/// (that pass missed the CPU cache once a frame, 2 % of the engine benchmark); a large frame
/// further on shares the chunk and is copied if it is kept.
const LOOKAHEAD_FRAMES: usize = 8;

/// Bytes read and not yet decoded.
#[derive(Debug, Default)]
pub(crate) struct ReadBuffer {
    buf: BytesMut,
    /// `Some(size)` while `buf` is an allocation of exactly `size` bytes made for the frame at
    /// its front.
    own_frame: Option<usize>,
}

impl ReadBuffer {
    /// The bytes buffered.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Drops `n` bytes from the front (a protocol header).
    pub(crate) fn advance(&mut self, n: usize) {
        let _ = self.buf.split_to(n.min(self.buf.len()));
    }

    /// Lets go of the chunk when nothing is buffered: what was read from it lives on in the
    /// frames handed out (and goes with them), and a connection gone quiet holds no buffer.
    /// A busy connection seldom stops on a frame boundary, so this costs it little.
    pub(crate) fn release_if_empty(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 0 {
            self.buf = BytesMut::new();
            self.own_frame = None;
        }
    }

    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.own_frame = None;
    }

    /// Buffers a first piece of `incoming` and returns its length (at least 1 when `incoming`
    /// is not empty). While frames are being read (`frame_max` is the largest accepted), the
    /// piece ends where a large frame starts or ends, so that it can be given its own
    /// allocation; otherwise (a protocol header, a SASL answer pending) it is all of `incoming`.
    pub(crate) fn fill(&mut self, incoming: &[u8], frame_max: Option<u32>) -> usize {
        let large = frame_max.and_then(|max| {
            self.front_size(incoming)
                .filter(|&size| is_large(size, max) && self.buf.len() < size)
        });
        let taken = match (large, frame_max) {
            (Some(size), _) => self.fill_large(size, incoming),
            (None, Some(max)) => self.small_run(incoming, max),
            (None, None) => incoming.len(),
        };
        let taken = if taken == 0 { incoming.len() } else { taken };
        let piece = incoming.get(..taken).unwrap_or(incoming);
        if self.own_frame.is_some() {
            // The room was made for exactly these bytes.
            self.buf.extend_from_slice(piece);
        } else {
            self.append_shared(piece);
        }
        taken
    }

    /// Decodes the frame at the front, if it is whole; [`ReadBuffer::own_frame`] then tells
    /// whether it came in an allocation of its own. (The frame is returned as the decoder
    /// gives it: wrapping it moved 150 bytes more per frame.)
    pub(crate) fn decode(&mut self, frame_max: u32) -> Result<Option<Frame>, CodecError> {
        decode_frame(&mut self.buf, frame_max)
    }

    /// After [`ReadBuffer::decode`] gave a frame: the size of the allocation it has to itself,
    /// or 0 when it shares the chunk with other frames.
    pub(crate) fn own_frame(&mut self) -> usize {
        self.own_frame.take().unwrap_or(0)
    }

    /// How much of `incoming` to take for the large frame of `size` bytes at the front, making
    /// its allocation once half of it is here.
    fn fill_large(&mut self, size: usize, incoming: &[u8]) -> usize {
        let have = self.buf.len();
        if self.own_frame != Some(size) {
            if have + incoming.len() < size / 2 {
                // All of `incoming` belongs to this frame, and too little of it is here yet.
                return incoming.len();
            }
            let mut own = BytesMut::with_capacity(size);
            own.extend_from_slice(&self.buf);
            self.buf = own;
            self.own_frame = Some(size);
        }
        incoming.len().min(size - have)
    }

    /// How much of `incoming` to take before a large frame: the rest of the frame at the
    /// front, then whole small frames, looking at most [`LOOKAHEAD_FRAMES`] ahead.
    fn small_run(&self, incoming: &[u8], frame_max: u32) -> usize {
        let Some(front) = self.front_size(incoming) else {
            return incoming.len();
        };
        let mut at = front.saturating_sub(self.buf.len());
        for _ in 0..LOOKAHEAD_FRAMES {
            if at >= incoming.len() {
                break;
            }
            let Some(size) = incoming.get(at..).and_then(declared_size) else {
                break;
            };
            if is_large(size, frame_max) {
                return at;
            }
            if size < FRAME_HEADER_SIZE {
                // Not a frame: the decoder will say so.
                break;
            }
            at += size;
        }
        incoming.len()
    }

    /// The size declared by the frame header at the front, read across the buffered bytes and
    /// `incoming`.
    fn front_size(&self, incoming: &[u8]) -> Option<usize> {
        let mut bytes = self.buf.iter().chain(incoming).copied();
        let size = [bytes.next()?, bytes.next()?, bytes.next()?, bytes.next()?];
        Some(u32::from_be_bytes(size) as usize)
    }

    /// Appends to the shared chunk, reusing its allocation when no frame holds it any more and
    /// starting a new one otherwise.
    fn append_shared(&mut self, bytes: &[u8]) {
        let room = self.buf.capacity() - self.buf.len();
        if room < bytes.len() && !self.buf.try_reclaim(bytes.len()) {
            let mut chunk = BytesMut::with_capacity((self.buf.len() + bytes.len()).max(CHUNK_MIN));
            chunk.extend_from_slice(&self.buf);
            self.buf = chunk;
        }
        self.buf.extend_from_slice(bytes);
    }
}

/// Whether a frame of `size` bytes gets an allocation of its own. One over `frame_max` does
/// not: the decoder refuses it as soon as its header is read.
fn is_large(size: usize, frame_max: u32) -> bool {
    size >= LARGE_FRAME_MIN && size <= frame_max as usize
}

fn declared_size(bytes: &[u8]) -> Option<usize> {
    let &[a, b, c, d, ..] = bytes else {
        return None;
    };
    Some(u32::from_be_bytes([a, b, c, d]) as usize)
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use sluice_codec::frame::{FrameBody, encode_transfer};
    use sluice_codec::transport::Transfer;

    use super::*;

    fn transfer_frame(payload_len: usize) -> BytesMut {
        let mut wire = BytesMut::new();
        let transfer = Transfer {
            handle: 0,
            more: true,
            ..Default::default()
        };
        encode_transfer(&mut wire, 0, &transfer, &vec![7u8; payload_len], u32::MAX).unwrap();
        wire
    }

    /// Feeds `wire` in pieces of `read` bytes, decoding after each piece as the connection
    /// does: each frame's payload length and the size of the allocation it has to itself.
    fn read_all(wire: &[u8], read: usize) -> Vec<(usize, usize)> {
        let mut input = ReadBuffer::default();
        let mut frames = Vec::new();
        for mut piece in wire.chunks(read) {
            while !piece.is_empty() {
                let taken = input.fill(piece, Some(1024 * 1024));
                piece = &piece[taken..];
                while let Some(frame) = input.decode(1024 * 1024).unwrap() {
                    let own = input.own_frame();
                    let FrameBody::Amqp { payload, .. } = frame.body else {
                        panic!("{:?}", frame.body)
                    };
                    frames.push((payload.len(), own));
                }
            }
        }
        frames
    }

    #[test]
    fn a_large_frame_gets_an_allocation_of_its_own_and_small_ones_share() {
        let mut wire = BytesMut::new();
        wire.extend_from_slice(&transfer_frame(10));
        let large = transfer_frame(20_000);
        let large_size = large.len();
        wire.extend_from_slice(&large);
        wire.extend_from_slice(&transfer_frame(10));
        wire.extend_from_slice(&transfer_frame(30_000));
        for read in [1, 7, 4096, 15_000, wire.len()] {
            let frames = read_all(&wire, read);
            assert_eq!(frames.len(), 4, "read {read}");
            assert_eq!(frames[0], (10, 0), "read {read}");
            assert_eq!(frames[1], (20_000, large_size), "read {read}");
            assert_eq!(frames[2], (10, 0), "read {read}");
            assert_eq!(frames[3].0, 30_000, "read {read}");
            assert!(frames[3].1 > 30_000, "read {read}");
        }
    }

    #[test]
    fn a_frame_header_alone_allocates_nothing_ahead() {
        let large = transfer_frame(60_000);
        let mut input = ReadBuffer::default();
        let taken = input.fill(&large[..100], Some(1024 * 1024));
        assert_eq!(taken, 100);
        assert!(input.buf.capacity() < 60_000);
        assert_eq!(input.own_frame, None);
        // Past half of it, the rest is reserved at once.
        let taken = input.fill(&large[100..40_000], Some(1024 * 1024));
        assert_eq!(taken, 39_900);
        assert_eq!(input.own_frame, Some(large.len()));
        assert_eq!(input.buf.capacity(), large.len());
    }

    #[test]
    fn a_frame_over_the_limit_is_left_to_the_decoder() {
        let large = transfer_frame(60_000);
        let mut input = ReadBuffer::default();
        assert_eq!(input.fill(&large, Some(16 * 1024)), large.len());
        assert!(input.decode(16 * 1024).is_err());
    }

    #[test]
    fn a_buffer_read_to_the_end_of_its_frames_lets_its_chunk_go() {
        let mut input = ReadBuffer::default();
        let wire = transfer_frame(10);
        let (head, tail) = wire.split_at(wire.len() - 1);
        input.fill(head, Some(1024 * 1024));
        input.release_if_empty();
        assert!(
            input.buf.capacity() > 0,
            "a frame half read keeps its bytes"
        );
        input.fill(tail, Some(1024 * 1024));
        assert!(input.decode(1024 * 1024).unwrap().is_some());
        input.release_if_empty();
        assert_eq!(input.buf.capacity(), 0);
    }
}
