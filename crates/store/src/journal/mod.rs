//! The journal: durable queues' messages in append-only segment files, replayed at start.
//!
//! The journal turns the [`Change`]s of durable queues into records, writes them in batches
//! (one write per segment touched, then one sync: group commit, driven by the caller), rebuilds
//! every queue from them at start ([`Journal::open`]), and deletes or rewrites segments whose
//! messages have gone ([`Journal::compact`]), so the disk follows the live backlog. It reaches
//! the disk only through [`Storage`]: [`FsStorage`] for files, [`MemStorage`] for tests with
//! injected faults. It has no thread and no clock: the broker's writer thread calls it.
//!
//! # Format (version 2)
//!
//! A journal is a directory of segments named by number, `<16 hex digits>.journal`, written in
//! ascending order. Every integer is little-endian.
//!
//! Segment header, 24 bytes:
//!
//! | bytes | field                                                        |
//! |-------|--------------------------------------------------------------|
//! | 8     | magic `SLUICEJL`                                             |
//! | 4     | format version (1); a reader reads every version up to its own |
//! | 8     | the segment's number, as in its name                         |
//! | 4     | CRC32C (Castagnoli) of the 20 bytes before                   |
//!
//! Then records, each:
//!
//! | bytes | field                                                        |
//! |-------|--------------------------------------------------------------|
//! | 4     | `len`: the bytes after this frame (at least 9)               |
//! | 4     | CRC32C of those `len` bytes                                  |
//! | 8     | sequence number: one more than the record before in the segment; across segments it only grows |
//! | 1     | kind                                                         |
//! | ...   | the kind's fields                                            |
//!
//! | kind | name    | fields                                                          |
//! |------|---------|-----------------------------------------------------------------|
//! | 1    | bind    | queue `u32`, the queue's address (UTF-8, the rest)               |
//! | 2    | stored  | queue `u32`, message id `u64`, delivery count `u32`, the message as received (the rest) |
//! | 3    | count   | queue `u32`, message id `u64`, delivery count `u32`              |
//! | 4    | removed | queue `u32`, message id `u64`                                   |
//! | 5    | paged   | as stored: a message that is not durable, written only to take it out of memory |
//! | 6    | atomic  | `records` `u32`: the next `records` records of the segment are one unit |
//! | 7    | remembered | queue `u32`, has-message `u8` and message id `u64`, ordinal `u64`, at `i64` ms, window `u64` ms, ids max `u32`, the encoded `message-id` (the rest) |
//!
//! A queue number means what the segment's own earlier bind record says, so every segment can
//! be read, kept or deleted on its own; a queue is identified across restarts by its address.
//!
//! Replay applies every record in order: a stored record adds a message (a second copy of the
//! same id, which compaction writes, replaces the first), count sets its delivery count, and
//! removed drops it; count and removed of a message not there are ignored (compaction deleted
//! its history). A paged record is skipped: a restart loses non-durable messages, wherever
//! they were. What is left is every queue's messages, by id.
//!
//! An atomic record opens a unit (a committed transaction's records): the records it counts
//! follow it at once, in the same segment (the journal rolls to a new segment before a unit
//! that does not fit; the queues it names are bound before the marker), and replay applies
//! them only once the last of them is read. Binds are never inside a unit.
//!
//! A remembered record (duplicate detection) adds a `message-id` to its queue's window, which
//! forgets the oldest past its ids max and those older than its window (measured from the
//! newest id's time). One that names a message counts only if the next record (binds aside)
//! stores that message: the two are written together, so a crash keeps both or neither.
//!
//! # Recovery
//!
//! An invalid record in the last segment with no valid record after it is a torn tail (a
//! write cut short by the crash): the segment is cut there and the report says so. An invalid
//! record anywhere else, or one followed by valid records, is corruption: [`Journal::open`]
//! fails with the segment and byte offset and skips nothing. A unit the torn tail cuts short
//! is cut whole, from its atomic record on: none of a unit is replayed unless all of it is.
//! A unit cut short anywhere but at the end of the last segment is corruption.
//!
//! # Deleting and rewriting segments
//!
//! A segment can be deleted when none of its messages is live, none of its remembered ids is
//! still remembered, and none of the older segments
//! its count and removed records refer to is left. The oldest segment is rewritten (its live
//! messages stored again at the tail, with their delivery counts, and its remembered ids
//! written again on their own, then it is deleted) when at
//! most half of it is live, or when the journal holds more than twice the live bytes.

mod format;
mod fs;
mod index;
mod mem;
mod recover;
mod storage;
mod unit;

#[cfg(test)]
mod duplicate_tests;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;

use bytes::Bytes;

pub use fs::FsStorage;
pub use index::QueueRef;
pub use mem::{MemStorage, Op};
pub use recover::{PagedMessage, RecoveredMessage, Recovery, RecoveryReport, Truncation};
pub use storage::Storage;

use crate::change::Change;
use crate::queue::MessageId;
use format::Body;
use index::{Index, Loc, RememberedLoc};

/// When the journal syncs what it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// Every flush ends with a sync: a record is on disk before [`Journal::flush`] returns.
    #[default]
    Always,
    /// Never sync but when a segment is finished or the journal closes: a crash of the process
    /// loses nothing, a crash of the machine loses what the OS had not written. For benchmarks.
    DangerNever,
}

/// The journal's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalConfig {
    /// A segment is finished once it holds this many bytes (a bigger record gets one alone).
    pub segment_bytes: u64,
    /// The largest record accepted (a message and 25 bytes).
    pub record_bytes_max: usize,
    /// At recovery, the most bytes of each queue's messages read into memory, oldest first;
    /// the rest stay on disk as [`PagedMessage`]s.
    pub load_bytes_per_queue: u64,
    /// When to sync.
    pub sync: SyncPolicy,
}

/// 64 MiB segments: big enough that rolling and deleting them is rare, small enough that a
/// compaction rewrites little at a time.
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 << 20;
/// The default largest record: above any message size a plan allows.
pub const RECORD_BYTES_MAX_DEFAULT: usize = 256 << 20;
/// The live bytes a compaction step rewrites at most, so a step stays short.
const REWRITE_STEP_BYTES: u64 = 8 << 20;

impl Default for JournalConfig {
    fn default() -> Self {
        Self {
            segment_bytes: SEGMENT_BYTES_DEFAULT,
            record_bytes_max: RECORD_BYTES_MAX_DEFAULT,
            load_bytes_per_queue: u64::MAX,
            sync: SyncPolicy::Always,
        }
    }
}

/// Why the journal could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The disk failed an operation; what was not synced is kept and written again by the
    /// next [`Journal::flush`].
    #[error("{op} journal segment {segment:016x}: {source}")]
    Io {
        /// What failed: "create", "write", "sync", "truncate", "remove", "read", "list".
        op: &'static str,
        /// The segment.
        segment: u64,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A record that is not at the torn tail does not check: nothing after it is read.
    #[error(
        "journal segment {segment:016x} is corrupt at byte {offset}: {reason}; valid records follow, so this is not a write cut short by a crash"
    )]
    Corrupt {
        /// The segment.
        segment: u64,
        /// The byte offset of the bad record.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A segment's header is not one this version reads.
    #[error("journal segment {segment:016x}: {reason}")]
    Segment {
        /// The segment.
        segment: u64,
        /// What is wrong.
        reason: String,
    },
    /// A message too big for a record.
    #[error("a record of {bytes} bytes is over the journal's limit of {max}")]
    TooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
}

impl JournalError {
    /// The disk is full: it clears when space is freed.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, Self::Io { source, .. } if source.kind() == io::ErrorKind::StorageFull)
    }

    fn io(op: &'static str, segment: u64) -> impl FnOnce(io::Error) -> Self {
        move |source| Self::Io {
            op,
            segment,
            source,
        }
    }
}

/// What the journal holds, for metrics and the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JournalStats {
    /// Segment files.
    pub segments: usize,
    /// Their bytes.
    pub disk_bytes: u64,
    /// Messages live in them.
    pub live_messages: usize,
    /// The bytes of those messages' records.
    pub live_bytes: u64,
    /// Bytes appended but not yet written and synced.
    pub pending_bytes: usize,
}

/// Bytes of one segment waiting to be written, from `start`.
#[derive(Debug)]
struct Chunk {
    segment: u64,
    start: u64,
    bytes: Vec<u8>,
    /// The segment file is still to be created.
    create: bool,
    /// An earlier attempt may have left part of the bytes: cut back to `start` first.
    redo: bool,
}

/// The journal of an address space's durable queues.
pub struct Journal<S: Storage> {
    storage: S,
    config: JournalConfig,
    /// The last sequence number given.
    seq: u64,
    names: Vec<String>,
    by_name: HashMap<String, QueueRef>,
    index: Index,
    /// The segment appended to in this run, once there is one.
    tail: Option<u64>,
    /// Queues the tail has bound.
    tail_bound: HashSet<QueueRef>,
    next_segment: u64,
    pending: VecDeque<Chunk>,
    /// A written chunk's buffer, kept for the next.
    spare: Vec<u8>,
    /// The unit being appended: its changes are held until the last of them comes.
    unit: Option<unit::Unit>,
    /// A unit's records are being encoded: the tail does not roll between them.
    in_unit: bool,
}

impl<S: Storage> std::fmt::Debug for Journal<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("seq", &self.seq)
            .field("tail", &self.tail)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// A spare buffer bigger than this is let go rather than kept.
const SPARE_BYTES_MAX: usize = 8 << 20;

impl<S: Storage> Journal<S> {
    /// The number of the queue with this address (the same for the life of the journal).
    pub fn queue(&mut self, address: &str) -> QueueRef {
        if let Some(q) = self.by_name.get(address) {
            return *q;
        }
        let q = QueueRef(u32::try_from(self.names.len()).unwrap_or(u32::MAX));
        self.names.push(address.to_string());
        self.by_name.insert(address.to_string(), q);
        q
    }

    /// Adds a change of `queue` to what the next [`Journal::flush`] writes. Only a message too
    /// big for a record is refused; nothing here touches the disk.
    /// A [`Change::Atomic`] holds the changes after it until all of the unit has come, then
    /// encodes them together (see the module docs).
    pub fn append(&mut self, queue: QueueRef, change: &Change) -> Result<(), JournalError> {
        if let Change::Atomic { records } = change {
            return self.begin_unit(*records);
        }
        if self.unit.is_some() {
            return self.add_to_unit(queue, change);
        }
        self.append_one(queue, change)
    }

    fn append_one(&mut self, queue: QueueRef, change: &Change) -> Result<(), JournalError> {
        match change {
            Change::Stored { id, payload } => self.store(queue, *id, 0, payload, false),
            Change::Paged { id, payload } => self.store(queue, *id, 0, payload, true),
            Change::DeliveryCount { id, count } => {
                self.record(queue, 40, &|q| Body::Count {
                    queue: q,
                    id: *id,
                    count: *count,
                });
                self.index.counted(self.tail_now(), (queue, *id), *count);
                Ok(())
            }
            Change::Removed { id } => {
                self.record(queue, 40, &|q| Body::Removed { queue: q, id: *id });
                self.index.removed(self.tail_now(), (queue, *id));
                Ok(())
            }
            // Markers are encoded by the unit itself.
            Change::Atomic { .. } => Ok(()),
            Change::Remembered {
                message,
                id,
                limits,
            } => {
                let loc = RememberedLoc {
                    segment: 0,
                    offset: 0,
                    len: u32::try_from(id.message_id.len()).unwrap_or(u32::MAX),
                    at_ms: id.at_ms,
                    window_ms: limits.window_ms,
                    ids_max: limits.ids_max,
                };
                self.remember(queue, *message, id.ordinal, loc, &id.message_id);
                Ok(())
            }
        }
    }

    /// Records a remembered id at the tail. The id's length is bounded by the store's
    /// duplicate window, far below a record's limit.
    fn remember(
        &mut self,
        queue: QueueRef,
        message: Option<MessageId>,
        ordinal: u64,
        loc: RememberedLoc,
        message_id: &[u8],
    ) {
        let size = format::remembered_size(message_id.len());
        let at = self.record(queue, size, &|q| Body::Remembered {
            queue: q,
            message,
            ordinal,
            at_ms: loc.at_ms,
            window_ms: loc.window_ms,
            ids_max: loc.ids_max,
            message_id,
        });
        let loc = RememberedLoc {
            segment: self.tail_now(),
            offset: at + format::REMEMBERED_ID_AT as u64,
            ..loc
        };
        self.index.remembered(queue, ordinal, loc);
    }

    fn store(
        &mut self,
        queue: QueueRef,
        id: MessageId,
        delivery_count: u32,
        payload: &[u8],
        paged: bool,
    ) -> Result<(), JournalError> {
        let size = format::stored_size(payload.len());
        let len = u32::try_from(payload.len()).ok();
        let (Some(len), true) = (len, size <= self.config.record_bytes_max) else {
            return Err(JournalError::TooLarge {
                bytes: size,
                max: self.config.record_bytes_max,
            });
        };
        let at = self.record(queue, size, &|q| Body::Stored {
            queue: q,
            id,
            delivery_count,
            payload,
            paged,
        });
        let loc = Loc {
            segment: self.tail_now(),
            offset: at + format::STORED_PAYLOAD_AT as u64,
            len,
            count: delivery_count,
            paged,
        };
        self.index.stored((queue, id), loc);
        Ok(())
    }

    fn tail_now(&self) -> u64 {
        self.tail.unwrap_or_default()
    }

    /// Encodes a record of `size` bytes at the tail (rolling to a new segment if it would not
    /// fit, and binding the queue first if the segment has not); returns its offset.
    fn record<'p>(&mut self, queue: QueueRef, size: usize, body: &dyn Fn(u32) -> Body<'p>) -> u64 {
        self.make_room(size);
        self.bind(queue);
        self.encode(self.tail_now(), &body(queue.0))
    }

    /// Binds `queue` in the tail segment, unless it is bound there already.
    fn bind(&mut self, queue: QueueRef) {
        if self.tail_bound.insert(queue) {
            let name = self
                .names
                .get(queue.0 as usize)
                .cloned()
                .unwrap_or_default();
            let body = Body::Bind {
                queue: queue.0,
                name: &name,
            };
            self.encode(self.tail_now(), &body);
        }
    }

    fn encode(&mut self, segment: u64, body: &Body<'_>) -> u64 {
        let len = self.index.segments.get(&segment).map_or(0, |s| s.len);
        if self.pending.back().is_none_or(|c| c.segment != segment) {
            let bytes = std::mem::take(&mut self.spare);
            self.pending.push_back(Chunk {
                segment,
                start: len,
                bytes,
                create: false,
                redo: false,
            });
        }
        self.seq += 1;
        let seq = self.seq;
        let Some(chunk) = self.pending.back_mut() else {
            return len;
        };
        let before = chunk.bytes.len();
        format::encode(&mut chunk.bytes, seq, body);
        let written = (chunk.bytes.len() - before) as u64;
        if let Some(s) = self.index.segments.get_mut(&segment) {
            s.len += written;
        }
        len
    }

    /// Starts a new segment if the tail cannot take `size` more bytes (or there is none yet).
    fn make_room(&mut self, size: usize) {
        if self.in_unit {
            // Room for the whole unit was made before its marker.
            return;
        }
        let len = self
            .tail
            .and_then(|t| self.index.segments.get(&t))
            .map(|s| s.len);
        let fits = len.is_some_and(|l| {
            l + size as u64 <= self.config.segment_bytes || l <= format::HEADER_BYTES as u64
        });
        if fits {
            return;
        }
        if let Some(old) = self.tail
            && self.pending.back().is_none_or(|c| c.segment != old)
        {
            // Nothing of the old tail is waiting, but under `DangerNever` it may not be synced:
            // an empty chunk makes the flush sync it before the next segment starts.
            self.pending.push_back(Chunk {
                segment: old,
                start: len.unwrap_or_default(),
                bytes: Vec::new(),
                create: false,
                redo: false,
            });
        }
        let segment = self.next_segment;
        self.next_segment += 1;
        let header = format::header(segment);
        self.index.segments.insert(
            segment,
            index::Segment {
                len: header.len() as u64,
                ..index::Segment::default()
            },
        );
        self.pending.push_back(Chunk {
            segment,
            start: 0,
            bytes: header,
            create: true,
            redo: false,
        });
        self.tail = Some(segment);
        self.tail_bound.clear();
    }

    /// Whether there is anything to flush.
    pub fn is_dirty(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The last sequence number given to a record.
    pub fn last_seq(&self) -> u64 {
        self.seq
    }

    /// Writes what was appended, one write per segment, and syncs as the policy says. On an
    /// error nothing is lost: the next flush cuts back what was partly written and writes it
    /// again, so a caller retries until it succeeds.
    pub fn flush(&mut self) -> Result<(), JournalError> {
        self.end_partial_unit()?;
        loop {
            let last = self.pending.len() == 1;
            let Some(chunk) = self.pending.front_mut() else {
                break;
            };
            let segment = chunk.segment;
            if chunk.create {
                self.storage
                    .create(segment)
                    .map_err(JournalError::io("create", segment))?;
                chunk.create = false;
                chunk.redo = false;
            }
            if chunk.redo {
                self.storage
                    .truncate(segment, chunk.start)
                    .map_err(JournalError::io("truncate", segment))?;
                chunk.redo = false;
            }
            if !chunk.bytes.is_empty()
                && let Err(e) = self.storage.write_at(segment, chunk.start, &chunk.bytes)
            {
                chunk.redo = true;
                return Err(JournalError::io("write", segment)(e));
            }
            // A finished segment is always synced: only the tail may be torn at recovery.
            if (!last || self.config.sync == SyncPolicy::Always)
                && let Err(e) = self.storage.sync(segment)
            {
                chunk.redo = true;
                return Err(JournalError::io("sync", segment)(e));
            }
            if let Some(done) = self.pending.pop_front()
                && done.bytes.capacity() <= SPARE_BYTES_MAX
            {
                self.spare = done.bytes;
                self.spare.clear();
            }
        }
        Ok(())
    }

    /// One step of compaction, when everything appended is written: deletes the segments that
    /// can go, then rewrites part of the oldest if it is mostly dead (or the journal is over
    /// twice its live bytes). Returns whether there is more to do.
    pub fn compact(&mut self) -> Result<bool, JournalError> {
        // A unit still coming must not be split by the rewrite's flush.
        if self.is_dirty() || self.unit.is_some() {
            return Ok(false);
        }
        if self.config.sync == SyncPolicy::DangerNever
            && let Some(t) = self.tail
        {
            // Deleting a segment must not outrun the records that emptied it.
            self.storage.sync(t).map_err(JournalError::io("sync", t))?;
        }
        self.delete_dead()?;
        let Some((&head, s)) = self.index.segments.iter().next() else {
            return Ok(false);
        };
        let (disk, live) = self.index.sizes();
        let crowded = disk > 2 * live + 2 * self.config.segment_bytes;
        if Some(head) == self.tail
            || (s.live == 0 && s.remembered == 0)
            || self.index.segments.len() < 3
            || (s.live_bytes * 2 > s.len && !crowded)
        {
            return Ok(false);
        }
        self.rewrite(head)?;
        Ok(true)
    }

    fn delete_dead(&mut self) -> Result<(), JournalError> {
        for segment in self.index.dead(self.tail) {
            self.storage
                .remove(segment)
                .map_err(JournalError::io("remove", segment))?;
            self.index.segments.remove(&segment);
        }
        Ok(())
    }

    /// Stores again at the tail up to [`REWRITE_STEP_BYTES`] of `segment`'s live messages.
    fn rewrite(&mut self, segment: u64) -> Result<(), JournalError> {
        let mut moving: Vec<_> = self
            .index
            .live
            .iter()
            .filter(|(_, loc)| loc.segment == segment)
            .map(|(k, loc)| (*k, *loc))
            .collect();
        // In file order, so the reads go forward.
        moving.sort_by_key(|(_, loc)| loc.offset);
        let mut bytes = 0;
        for ((queue, id), loc) in moving {
            if bytes >= REWRITE_STEP_BYTES {
                break;
            }
            let mut payload = vec![0u8; loc.len as usize];
            self.storage
                .read_at(segment, loc.offset, &mut payload)
                .map_err(JournalError::io("read", segment))?;
            self.store(queue, id, loc.count, &payload, loc.paged)?;
            bytes += u64::from(loc.len);
        }
        for (queue, ordinal, loc) in self.index.remembered_in(segment) {
            if bytes >= REWRITE_STEP_BYTES {
                break;
            }
            let mut message_id = vec![0u8; loc.len as usize];
            self.storage
                .read_at(segment, loc.offset, &mut message_id)
                .map_err(JournalError::io("read", segment))?;
            self.remember(queue, None, ordinal, loc, &message_id);
            bytes += u64::from(loc.len);
        }
        self.flush()
    }

    /// Reads back messages of `queue` that are in the journal (stored or paged), for a queue
    /// that holds only their references. Ids the journal does not hold are left out. Call it
    /// after the flush that wrote them.
    pub fn read(
        &mut self,
        queue: QueueRef,
        ids: &[MessageId],
    ) -> Result<Vec<(MessageId, Bytes)>, JournalError> {
        let found: Vec<(MessageId, Loc)> = ids
            .iter()
            .filter_map(|id| self.index.live.get(&(queue, *id)).map(|loc| (*id, *loc)))
            .collect();
        let locs: Vec<Loc> = found.iter().map(|(_, loc)| *loc).collect();
        let payloads = read_locs(&mut self.storage, &locs)?;
        Ok(found.into_iter().map(|(id, _)| id).zip(payloads).collect())
    }

    /// Writes and syncs everything, deletes the segments that can go, and closes.
    pub fn close(mut self) -> Result<(), JournalError> {
        self.flush()?;
        if let Some(t) = self.tail {
            self.storage.sync(t).map_err(JournalError::io("sync", t))?;
        }
        self.delete_dead()
    }

    /// What the journal holds.
    pub fn stats(&self) -> JournalStats {
        let (disk_bytes, live_bytes) = self.index.sizes();
        JournalStats {
            segments: self.index.segments.len(),
            disk_bytes,
            live_messages: self.index.live.len(),
            live_bytes,
            pending_bytes: self.pending.iter().map(|c| c.bytes.len()).sum(),
        }
    }

    /// The storage, for tests that look at the files.
    pub fn storage(&self) -> &S {
        &self.storage
    }
}

/// Records closer than this are read with one read (the bytes between are read and dropped).
const READ_GAP_BYTES: u64 = 4 << 10;
/// The most one read takes.
const READ_RUN_BYTES: u64 = 8 << 20;

/// Reads the payloads at `locs` (in any order; returned in the same order), a run of records
/// close together in one segment with one read. A payload is a slice of its run's buffer when
/// most of that buffer is payloads, else a copy of its own, so a few messages never hold much
/// more than their own bytes.
fn read_locs<S: Storage>(storage: &mut S, locs: &[Loc]) -> Result<Vec<Bytes>, JournalError> {
    let mut order: Vec<usize> = (0..locs.len()).collect();
    order.sort_unstable_by_key(|&i| locs.get(i).map(|l| (l.segment, l.offset)));
    let mut out = vec![Bytes::new(); locs.len()];
    let mut start = 0;
    while start < order.len() {
        let first = order.get(start).and_then(|&i| locs.get(i)).copied();
        let Some(first) = first else { break };
        let mut end_at = first.offset + u64::from(first.len);
        let mut end = start + 1;
        let mut payload_bytes = u64::from(first.len);
        while let Some(next) = order.get(end).and_then(|&i| locs.get(i)) {
            let next_end = next.offset + u64::from(next.len);
            if next.segment != first.segment
                || next.offset > end_at + READ_GAP_BYTES
                || next_end - first.offset > READ_RUN_BYTES
            {
                break;
            }
            end_at = end_at.max(next_end);
            payload_bytes += u64::from(next.len);
            end += 1;
        }
        let mut buf = vec![0u8; (end_at - first.offset) as usize];
        storage
            .read_at(first.segment, first.offset, &mut buf)
            .map_err(JournalError::io("read", first.segment))?;
        let buffer = Bytes::from(buf);
        let copy = payload_bytes * 2 < buffer.len() as u64;
        for &i in order.get(start..end).unwrap_or_default() {
            if let (Some(loc), Some(slot)) = (locs.get(i), out.get_mut(i)) {
                let from = (loc.offset - first.offset) as usize;
                *slot = keep(&buffer, from, loc.len as usize, copy);
            }
        }
        start = end;
    }
    Ok(out)
}

/// A payload kept by recovery: a slice of its segment's buffer, or a copy of its own when
/// most of that buffer is dead (so a few messages do not hold a whole segment in memory).
fn keep(buffer: &Bytes, from: usize, len: usize, copy: bool) -> Bytes {
    let slice = buffer.slice(from..from + len);
    if copy {
        Bytes::copy_from_slice(&slice)
    } else {
        slice
    }
}
