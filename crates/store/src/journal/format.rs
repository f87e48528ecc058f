//! The bytes on disk: the segment header and the record layout (see the module docs of
//! [`crate::journal`] for the table). Encoding appends to a buffer; decoding reads one record
//! from a slice and says precisely why it could not.

use crate::queue::MessageId;

/// The first bytes of every segment file.
pub(crate) const MAGIC: [u8; 8] = *b"SLUICEJL";
/// The format this version writes. A reader accepts every version up to its own. Version 2
/// added atomic units (kind 6) and remembered duplicate ids (kind 7): a version-1 reader
/// refuses a version-2 segment by its header, rather than as a corrupt record.
pub(crate) const VERSION: u32 = 2;
/// Magic, version, segment number, CRC32C of the 20 bytes before it.
pub(crate) const HEADER_BYTES: usize = 24;
/// Length and CRC32C in front of every record.
pub(crate) const FRAME_BYTES: usize = 8;
/// Sequence number and kind: the least a record's checked part holds.
const RECORD_MIN: usize = 9;

const KIND_BIND: u8 = 1;
const KIND_STORED: u8 = 2;
const KIND_COUNT: u8 = 3;
const KIND_REMOVED: u8 = 4;
const KIND_PAGED: u8 = 5;
const KIND_ATOMIC: u8 = 6;
const KIND_REMEMBERED: u8 = 7;
/// A remembered record's fields before the id: queue, message flag and id, ordinal, time,
/// window and count.
const REMEMBERED_FIXED: usize = 4 + 1 + 8 + 8 + 8 + 8 + 4;

/// A queue's number within one segment, given by a [`Body::Bind`] record earlier in it.
pub(crate) type LocalQueue = u32;

/// What a record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body<'a> {
    /// From here on in this segment, `queue` is the queue with this address.
    Bind { queue: LocalQueue, name: &'a str },
    /// A message was stored (or rewritten by compaction, with the count it had reached).
    /// `paged`: a message that is not durable, written only so its queue need not hold it in
    /// memory (kind 5); recovery leaves it out, as a restart loses non-durable messages.
    Stored {
        queue: LocalQueue,
        id: MessageId,
        delivery_count: u32,
        payload: &'a [u8],
        paged: bool,
    },
    /// A failed delivery raised a message's count.
    Count {
        queue: LocalQueue,
        id: MessageId,
        count: u32,
    },
    /// A message left its queue.
    Removed { queue: LocalQueue, id: MessageId },
    /// The next `records` records of the segment are one unit: replayed all or none.
    Atomic { records: u32 },
    /// A queue's duplicate window remembered a `message-id` (kind 7): with the message
    /// stored by the next record, or on its own when compaction wrote it again.
    Remembered {
        queue: LocalQueue,
        message: Option<MessageId>,
        ordinal: u64,
        at_ms: i64,
        window_ms: u64,
        ids_max: u32,
        message_id: &'a [u8],
    },
}

/// A record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decoded<'a> {
    pub(crate) seq: u64,
    pub(crate) body: Body<'a>,
    /// The record's size on disk, frame included.
    pub(crate) size: usize,
}

/// Why the bytes at an offset are not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Bad {
    /// The slice ends before the frame or the record does (a torn write, at the tail).
    #[error("the record is cut short: {needed} bytes needed, {left} left")]
    Short { needed: usize, left: usize },
    #[error("the record length {0} is impossible")]
    Length(u32),
    #[error("the checksum does not match")]
    Checksum,
    #[error("unknown record kind {0}")]
    Kind(u8),
    #[error("a record of kind {0} has the wrong size")]
    Layout(u8),
    #[error("a queue name is not UTF-8")]
    Name,
}

/// Encodes a segment's header.
pub(crate) fn header(segment: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_BYTES);
    h.extend_from_slice(&MAGIC);
    h.extend_from_slice(&VERSION.to_le_bytes());
    h.extend_from_slice(&segment.to_le_bytes());
    let crc = crc32c::crc32c(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    h
}

/// Why a segment's header is not one this version reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BadHeader {
    #[error("the header is cut short")]
    Short,
    #[error("the header is not a Sluice journal segment's (wrong magic or checksum)")]
    Foreign,
    #[error("format version {0}, newer than this Sluice reads ({VERSION})")]
    Newer(u32),
    #[error("the header names segment {0}, not the file's")]
    Misnamed(u64),
}

/// Checks a segment's header; returns its format version.
pub(crate) fn check_header(bytes: &[u8], segment: u64) -> Result<u32, BadHeader> {
    let h = bytes.get(..HEADER_BYTES).ok_or(BadHeader::Short)?;
    let (head, crc) = h.split_at(HEADER_BYTES - 4);
    if head.get(..MAGIC.len()) != Some(&MAGIC[..]) || crc32c::crc32c(head).to_le_bytes() != crc {
        return Err(BadHeader::Foreign);
    }
    let version = u32_at(head, 8);
    if version > VERSION {
        return Err(BadHeader::Newer(version));
    }
    let named = u64_at(head, 12);
    if named != segment {
        return Err(BadHeader::Misnamed(named));
    }
    Ok(version)
}

/// Appends one record to `out`; returns where its payload (if any) starts within `out`.
pub(crate) fn encode(out: &mut Vec<u8>, seq: u64, body: &Body<'_>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_BYTES]);
    out.extend_from_slice(&seq.to_le_bytes());
    let mut payload_at = 0;
    match body {
        Body::Bind { queue, name } => {
            out.push(KIND_BIND);
            out.extend_from_slice(&queue.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
        }
        Body::Stored {
            queue,
            id,
            delivery_count,
            payload,
            paged,
        } => {
            out.push(if *paged { KIND_PAGED } else { KIND_STORED });
            out.extend_from_slice(&queue.to_le_bytes());
            out.extend_from_slice(&id.0.to_le_bytes());
            out.extend_from_slice(&delivery_count.to_le_bytes());
            payload_at = out.len();
            out.extend_from_slice(payload);
        }
        Body::Count { queue, id, count } => {
            out.push(KIND_COUNT);
            out.extend_from_slice(&queue.to_le_bytes());
            out.extend_from_slice(&id.0.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
        }
        Body::Removed { queue, id } => {
            out.push(KIND_REMOVED);
            out.extend_from_slice(&queue.to_le_bytes());
            out.extend_from_slice(&id.0.to_le_bytes());
        }
        Body::Atomic { records } => {
            out.push(KIND_ATOMIC);
            out.extend_from_slice(&records.to_le_bytes());
        }
        Body::Remembered {
            queue,
            message,
            ordinal,
            at_ms,
            window_ms,
            ids_max,
            message_id,
        } => {
            out.push(KIND_REMEMBERED);
            out.extend_from_slice(&queue.to_le_bytes());
            out.push(u8::from(message.is_some()));
            out.extend_from_slice(&message.map_or(0, |m| m.0).to_le_bytes());
            out.extend_from_slice(&ordinal.to_le_bytes());
            out.extend_from_slice(&at_ms.to_le_bytes());
            out.extend_from_slice(&window_ms.to_le_bytes());
            out.extend_from_slice(&ids_max.to_le_bytes());
            payload_at = out.len();
            out.extend_from_slice(message_id);
        }
    }
    let checked = out.get(start + FRAME_BYTES..).unwrap_or_default();
    // A record longer than 4 GiB cannot be framed; the journal refuses such a message before
    // it gets here (its record limit is far below).
    let len = u32::try_from(checked.len()).unwrap_or(u32::MAX);
    let crc = crc32c::crc32c(checked);
    // Length in the low half, checksum in the high half: both little-endian, as read back.
    let frame = (u64::from(crc) << 32 | u64::from(len)).to_le_bytes();
    if let Some(f) = out.get_mut(start..start + FRAME_BYTES) {
        f.copy_from_slice(&frame);
    }
    payload_at
}

/// The size on disk of a stored record whose payload is `payload` bytes.
pub(crate) fn stored_size(payload: usize) -> usize {
    FRAME_BYTES + RECORD_MIN + 4 + 8 + 4 + payload
}

/// The size on disk of a count or removed record.
pub(crate) const SMALL_RECORD_BYTES: usize = FRAME_BYTES + RECORD_MIN + 4 + 8 + 4;
/// The size on disk of an atomic marker.
pub(crate) const ATOMIC_BYTES: usize = FRAME_BYTES + RECORD_MIN + 4;

/// The size on disk of a bind record for a queue named `name`.
pub(crate) fn bind_size(name: &str) -> usize {
    FRAME_BYTES + RECORD_MIN + 4 + name.len()
}

/// Reads the record at the start of `bytes`; `record_max` bounds its length.
pub(crate) fn decode(bytes: &[u8], record_max: usize) -> Result<Decoded<'_>, Bad> {
    let frame = bytes.get(..FRAME_BYTES).ok_or(Bad::Short {
        needed: FRAME_BYTES,
        left: bytes.len(),
    })?;
    let len = u32_at(frame, 0);
    let n = len as usize;
    if n < RECORD_MIN || n > record_max {
        return Err(Bad::Length(len));
    }
    let checked = bytes.get(FRAME_BYTES..FRAME_BYTES + n).ok_or(Bad::Short {
        needed: FRAME_BYTES + n,
        left: bytes.len(),
    })?;
    if crc32c::crc32c(checked) != u32_at(frame, 4) {
        return Err(Bad::Checksum);
    }
    let (seq_kind, rest) = checked.split_at(RECORD_MIN);
    let seq = u64_at(seq_kind, 0);
    let kind = seq_kind.last().copied().unwrap_or_default();
    let fixed = |n: usize| (rest.len() == n).then_some(()).ok_or(Bad::Layout(kind));
    let body = match kind {
        KIND_BIND => {
            let name = rest.get(4..).ok_or(Bad::Layout(kind))?;
            Body::Bind {
                queue: u32_at(rest, 0),
                name: std::str::from_utf8(name).map_err(|_| Bad::Name)?,
            }
        }
        KIND_STORED | KIND_PAGED => Body::Stored {
            queue: u32_at(rest, 0),
            id: MessageId(u64_at(rest, 4)),
            delivery_count: u32_at(rest, 12),
            payload: rest.get(16..).ok_or(Bad::Layout(kind))?,
            paged: kind == KIND_PAGED,
        },
        KIND_COUNT => {
            fixed(16)?;
            Body::Count {
                queue: u32_at(rest, 0),
                id: MessageId(u64_at(rest, 4)),
                count: u32_at(rest, 12),
            }
        }
        KIND_REMOVED => {
            fixed(12)?;
            Body::Removed {
                queue: u32_at(rest, 0),
                id: MessageId(u64_at(rest, 4)),
            }
        }
        KIND_ATOMIC => {
            fixed(4)?;
            Body::Atomic {
                records: u32_at(rest, 0),
            }
        }
        KIND_REMEMBERED => {
            let flag = rest.get(4).copied().ok_or(Bad::Layout(kind))?;
            if flag > 1 {
                return Err(Bad::Layout(kind));
            }
            Body::Remembered {
                queue: u32_at(rest, 0),
                message: (flag == 1).then(|| MessageId(u64_at(rest, 5))),
                ordinal: u64_at(rest, 13),
                at_ms: u64_at(rest, 21) as i64,
                window_ms: u64_at(rest, 29),
                ids_max: u32_at(rest, 37),
                message_id: rest.get(REMEMBERED_FIXED..).ok_or(Bad::Layout(kind))?,
            }
        }
        other => return Err(Bad::Kind(other)),
    };
    Ok(Decoded {
        seq,
        body,
        size: FRAME_BYTES + n,
    })
}

/// The size on disk of a remembered record whose id is `id` bytes.
pub(crate) fn remembered_size(id: usize) -> usize {
    FRAME_BYTES + RECORD_MIN + REMEMBERED_FIXED + id
}

/// The offset of a remembered record's id from the record's start.
pub(crate) const REMEMBERED_ID_AT: usize = FRAME_BYTES + RECORD_MIN + REMEMBERED_FIXED;

/// The offset of a stored record's payload from the record's start.
pub(crate) const STORED_PAYLOAD_AT: usize = FRAME_BYTES + RECORD_MIN + 16;

// Callers check the length first; a short slice reads as zeros rather than panicking.
fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_as_written() {
        let bodies = [
            Body::Bind {
                queue: 3,
                name: "orders/eu",
            },
            Body::Stored {
                queue: 3,
                id: MessageId(77),
                delivery_count: 2,
                payload: b"\x00Sp\xc0\x01\x00hello",
                paged: false,
            },
            Body::Stored {
                queue: 3,
                id: MessageId(78),
                delivery_count: 0,
                payload: b"\x00Sp\xc0\x01\x00paged",
                paged: true,
            },
            Body::Count {
                queue: 3,
                id: MessageId(77),
                count: 5,
            },
            Body::Removed {
                queue: 3,
                id: MessageId(77),
            },
            Body::Atomic { records: 12 },
            Body::Remembered {
                queue: 3,
                message: Some(MessageId(79)),
                ordinal: 12,
                at_ms: 1_700_000_000_000,
                window_ms: 600_000,
                ids_max: 20_000,
                message_id: b"\xa1\x03abc",
            },
            Body::Remembered {
                queue: 3,
                message: None,
                ordinal: 13,
                at_ms: -5,
                window_ms: 1,
                ids_max: 1,
                message_id: b"\x53\x07",
            },
        ];
        let mut out = Vec::new();
        for (i, b) in bodies.iter().enumerate() {
            let at = out.len();
            let payload_at = encode(&mut out, 10 + i as u64, b);
            let d = decode(&out[at..], 1 << 20).unwrap();
            assert_eq!(d.seq, 10 + i as u64);
            assert_eq!(&d.body, b);
            assert_eq!(d.size, out.len() - at);
            match b {
                Body::Stored { payload, .. } => {
                    assert_eq!(payload_at - at, STORED_PAYLOAD_AT);
                    assert_eq!(stored_size(payload.len()), d.size);
                }
                Body::Bind { name, .. } => assert_eq!(bind_size(name), d.size),
                Body::Atomic { .. } => assert_eq!(ATOMIC_BYTES, d.size),
                Body::Remembered { .. } => {}
                Body::Count { .. } | Body::Removed { .. } => {
                    assert!(d.size <= SMALL_RECORD_BYTES);
                }
            }
            if let Body::Remembered { message_id, .. } = b {
                assert_eq!(payload_at - at, REMEMBERED_ID_AT);
                assert_eq!(remembered_size(message_id.len()), d.size);
            }
        }
    }

    #[test]
    fn a_flipped_bit_anywhere_is_caught() {
        let mut out = Vec::new();
        encode(
            &mut out,
            1,
            &Body::Stored {
                queue: 0,
                id: MessageId(1),
                delivery_count: 0,
                payload: b"payload",
                paged: false,
            },
        );
        for byte in 0..out.len() {
            for bit in 0..8 {
                let mut b = out.clone();
                b[byte] ^= 1 << bit;
                assert!(decode(&b, 1 << 20).is_err(), "flip at {byte}.{bit}");
            }
        }
    }

    #[test]
    fn headers_check_magic_version_and_name() {
        let h = header(9);
        assert_eq!(check_header(&h, 9), Ok(VERSION));
        assert_eq!(check_header(&h, 8), Err(BadHeader::Misnamed(9)));
        assert_eq!(check_header(&h[..10], 9), Err(BadHeader::Short));
        let mut newer = h.clone();
        newer[8] = 3;
        let crc = crc32c::crc32c(&newer[..20]).to_le_bytes();
        newer[20..].copy_from_slice(&crc);
        assert_eq!(check_header(&newer, 9), Err(BadHeader::Newer(3)));
        let mut foreign = h.clone();
        foreign[0] = b'X';
        assert_eq!(check_header(&foreign, 9), Err(BadHeader::Foreign));
    }
}
