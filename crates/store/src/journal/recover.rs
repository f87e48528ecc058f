//! [`Journal::open`]: replays every segment, in order, into the queues' messages; cuts a torn
//! tail; refuses corruption anywhere else, naming the segment and byte offset.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;

use bytes::Bytes;

use super::format::{self, Body, Decoded};
use super::index::{Index, Loc, QueueRef, RememberedLoc, Segment};
use super::{Journal, JournalConfig, JournalError, Storage, read_locs};
use crate::duplicates::RememberedId;
use crate::queue::MessageId;

/// A message the journal kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredMessage {
    /// Its id in its queue.
    pub id: MessageId,
    /// The message as it was received.
    pub payload: Bytes,
    /// The delivery count it had reached.
    pub delivery_count: u32,
}

/// A message the journal kept whose payload recovery left on disk (past
/// [`JournalConfig::load_bytes_per_queue`]): its queue holds only this and reads the rest when
/// it needs it ([`Journal::read`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PagedMessage {
    /// Its id in its queue.
    pub id: MessageId,
    /// The size of the message as received.
    pub size: u32,
    /// The delivery count it had reached.
    pub delivery_count: u32,
}

/// Where a torn tail was cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The segment.
    pub segment: u64,
    /// Its new length.
    pub offset: u64,
    /// The bytes cut.
    pub dropped: u64,
    /// Why the first of them was not a record.
    pub reason: String,
}

/// What recovery found, for the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments read.
    pub segments: usize,
    /// Records replayed.
    pub records: u64,
    /// Messages recovered, in every queue.
    pub messages: u64,
    /// Their bytes.
    pub bytes: u64,
    /// A torn tail, if the last segment had one.
    pub truncated: Option<Truncation>,
    /// Of the messages, those left on disk (past the load budget).
    pub paged: u64,
}

impl fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} messages ({} bytes) from {} records in {} segments",
            self.messages, self.bytes, self.records, self.segments
        )?;
        if self.paged > 0 {
            write!(f, ", {} of them left on disk", self.paged)?;
        }
        if let Some(t) = &self.truncated {
            write!(
                f,
                "; a torn tail of {} bytes cut at byte {} of segment {:016x} ({})",
                t.dropped, t.offset, t.segment, t.reason
            )?;
        }
        Ok(())
    }
}

/// Every queue's messages, by address, in id order, and the report.
#[derive(Debug, Default)]
pub struct Recovery {
    /// The messages of each queue, read into memory: its oldest, up to the load budget.
    pub queues: BTreeMap<String, Vec<RecoveredMessage>>,
    /// The rest of each queue's messages, left on disk; every one is newer than all of the
    /// queue's messages in [`Recovery::queues`].
    pub paged: BTreeMap<String, Vec<PagedMessage>>,
    /// The ids each queue's duplicate window remembered, in no particular order, with the
    /// times they were remembered at (the queue drops those out of its window now).
    pub duplicates: BTreeMap<String, Vec<RememberedId>>,
    /// What was found.
    pub report: RecoveryReport,
}

/// Replay's state across segments.
#[derive(Default)]
struct Replay {
    names: Vec<String>,
    by_name: HashMap<String, QueueRef>,
    index: Index,
    seq: u64,
    records: u64,
    /// A remembered id that waits for the next record to store its message.
    pending: Option<PendingId>,
}

/// A remembered record that names its message: it counts once that message's stored record
/// follows.
struct PendingId {
    key: (QueueRef, MessageId),
    ordinal: u64,
    loc: RememberedLoc,
}

impl Replay {
    fn queue(&mut self, name: &str) -> QueueRef {
        if let Some(q) = self.by_name.get(name) {
            return *q;
        }
        let q = QueueRef(u32::try_from(self.names.len()).unwrap_or(u32::MAX));
        self.names.push(name.to_string());
        self.by_name.insert(name.to_string(), q);
        q
    }

    /// Applies one valid record of `segment` found at `offset`.
    fn apply(
        &mut self,
        segment: u64,
        offset: usize,
        record: &Decoded<'_>,
        bound: &mut HashMap<u32, QueueRef>,
    ) -> Result<(), String> {
        let local = |bound: &HashMap<u32, QueueRef>, q: u32| {
            bound
                .get(&q)
                .copied()
                .ok_or_else(|| format!("queue number {q} is not bound earlier in the segment"))
        };
        // A remembered id counts only if the record after it (binds aside) stores its message.
        if let Some(p) = self.pending.take() {
            match &record.body {
                Body::Bind { .. } => self.pending = Some(p),
                Body::Stored {
                    queue,
                    id,
                    paged: false,
                    ..
                } if bound.get(queue).map(|q| (*q, *id)) == Some(p.key) => {
                    self.index.remembered(p.key.0, p.ordinal, p.loc);
                }
                _ => {}
            }
        }
        match &record.body {
            Body::Bind { queue, name } => {
                let q = self.queue(name);
                bound.insert(*queue, q);
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
                let q = local(bound, *queue)?;
                let loc = RememberedLoc {
                    segment,
                    offset: (offset + format::REMEMBERED_ID_AT) as u64,
                    len: u32::try_from(message_id.len()).map_err(|e| e.to_string())?,
                    at_ms: *at_ms,
                    window_ms: *window_ms,
                    ids_max: *ids_max,
                };
                match message {
                    Some(m) => {
                        self.pending = Some(PendingId {
                            key: (q, *m),
                            ordinal: *ordinal,
                            loc,
                        })
                    }
                    None => self.index.remembered(q, *ordinal, loc),
                }
            }
            Body::Stored {
                queue,
                id,
                delivery_count,
                payload,
                paged,
            } => {
                let key = (local(bound, *queue)?, *id);
                let len = u32::try_from(payload.len()).map_err(|e| e.to_string())?;
                // A paged message was not durable: the restart has lost it.
                if !paged {
                    let at = offset + format::STORED_PAYLOAD_AT;
                    let loc = Loc {
                        segment,
                        offset: at as u64,
                        len,
                        count: *delivery_count,
                        paged: false,
                    };
                    self.index.stored(key, loc);
                }
            }
            Body::Count { queue, id, count } => {
                self.index
                    .counted(segment, (local(bound, *queue)?, *id), *count);
            }
            Body::Removed { queue, id } => {
                self.index.removed(segment, (local(bound, *queue)?, *id));
            }
            // Read by `replay_segment`, which holds a unit's records back until it is whole.
            Body::Atomic { .. } => {}
        }
        self.seq = record.seq;
        self.records += 1;
        Ok(())
    }
}

/// Whether a valid record of sequence number above `after` starts anywhere in `bytes`: then an
/// invalid one before it is damage, not a write cut short.
fn valid_record_follows(bytes: &[u8], after: u64, record_max: usize) -> bool {
    (1..bytes.len()).any(|at| {
        bytes
            .get(at..)
            .is_some_and(|rest| matches!(format::decode(rest, record_max), Ok(d) if d.seq > after))
    })
}

impl<S: Storage> Journal<S> {
    /// Opens the journal in `storage`: replays it, cuts a torn tail, and returns the journal
    /// (appending to a new segment) with every queue's messages.
    pub fn open(mut storage: S, config: JournalConfig) -> Result<(Self, Recovery), JournalError> {
        let mut segments = storage.list().map_err(JournalError::io("list", 0))?;
        segments.sort_unstable();
        let mut replay = Replay::default();
        let mut report = RecoveryReport::default();
        let count = segments.len();
        for (i, &segment) in segments.iter().enumerate() {
            let last = i + 1 == count;
            let bytes = Bytes::from(
                storage
                    .read(segment)
                    .map_err(JournalError::io("read", segment))?,
            );
            if let Err(bad) = format::check_header(&bytes, segment) {
                if last && matches!(bad, format::BadHeader::Short) {
                    // Created, but the crash came before its header was written.
                    storage
                        .remove(segment)
                        .map_err(JournalError::io("remove", segment))?;
                    report.truncated = Some(Truncation {
                        segment,
                        offset: 0,
                        dropped: bytes.len() as u64,
                        reason: bad.to_string(),
                    });
                    continue;
                }
                return Err(JournalError::Segment {
                    segment,
                    reason: bad.to_string(),
                });
            }
            report.segments += 1;
            replay.index.segments.insert(
                segment,
                Segment {
                    len: bytes.len() as u64,
                    ..Segment::default()
                },
            );
            let end = replay_segment(&mut replay, segment, &bytes, config.record_bytes_max);
            if let Err(Stop {
                cut: offset,
                bad,
                seq,
                reason,
            }) = end
            {
                let rest = bytes.get(bad..).unwrap_or_default();
                if !last || valid_record_follows(rest, seq, config.record_bytes_max) {
                    return Err(JournalError::Corrupt {
                        segment,
                        offset: bad as u64,
                        reason,
                    });
                }
                storage
                    .truncate(segment, offset as u64)
                    .and_then(|()| storage.sync(segment))
                    .map_err(JournalError::io("truncate", segment))?;
                if let Some(s) = replay.index.segments.get_mut(&segment) {
                    s.len = offset as u64;
                }
                report.truncated = Some(Truncation {
                    segment,
                    offset: offset as u64,
                    dropped: (bytes.len() - offset) as u64,
                    reason,
                });
            }
        }
        report.records = replay.records;
        // A remembered id last of all: its message's record was cut off with the torn tail.
        replay.pending = None;
        let (queues, paged) = recovered(&mut storage, &replay, &config, &mut report)?;
        let duplicates = remembered(&mut storage, &replay)?;
        let next_segment = segments.last().map_or(1, |s| s + 1);
        let journal = Journal {
            storage,
            config,
            seq: replay.seq,
            names: replay.names,
            by_name: replay.by_name,
            index: replay.index,
            tail: None,
            tail_bound: HashSet::new(),
            next_segment,
            pending: VecDeque::new(),
            spare: Vec::new(),
            unit: None,
            in_unit: false,
        };
        Ok((
            journal,
            Recovery {
                queues,
                paged,
                duplicates,
                report,
            },
        ))
    }
}

/// Where replaying a segment stopped short.
struct Stop {
    /// Where the segment is to be cut: the bad record, or the atomic record of the unit it
    /// cut short.
    cut: usize,
    /// The first byte that is not a valid record (the segment's end when a unit ends there).
    bad: usize,
    /// The sequence number of the last valid record before `bad`.
    seq: u64,
    reason: String,
}

/// A unit being read: its atomic record's offset, the records it still expects, and those
/// read so far (applied once the last is).
struct OpenUnit<'a> {
    at: usize,
    expect: u32,
    records: Vec<(usize, Decoded<'a>)>,
}

/// Replays a segment's records; at the first that is not valid, says where and why.
fn replay_segment(
    replay: &mut Replay,
    segment: u64,
    bytes: &[u8],
    record_max: usize,
) -> Result<(), Stop> {
    let mut bound = HashMap::new();
    let mut offset = format::HEADER_BYTES;
    let mut prev: Option<u64> = None;
    let mut unit: Option<OpenUnit<'_>> = None;
    let before = replay.seq;
    let stop = |unit: &Option<OpenUnit<'_>>, bad: usize, seq: Option<u64>, reason: String| Stop {
        cut: unit.as_ref().map_or(bad, |u| u.at),
        bad,
        seq: seq.unwrap_or(before),
        reason,
    };
    while offset < bytes.len() {
        let rest = bytes.get(offset..).unwrap_or_default();
        let record = match format::decode(rest, record_max) {
            Ok(record) => record,
            Err(e) => return Err(stop(&unit, offset, prev, e.to_string())),
        };
        let in_order = match prev {
            Some(p) => record.seq == p + 1,
            None => record.seq > replay.seq,
        };
        if !in_order {
            let reason = format!(
                "sequence number {} does not follow {}",
                record.seq,
                prev.unwrap_or(replay.seq)
            );
            return Err(stop(&unit, offset, prev, reason));
        }
        let size = record.size;
        let seq = record.seq;
        match (&mut unit, &record.body) {
            (Some(_), Body::Atomic { .. } | Body::Bind { .. }) => {
                let reason = "a unit holds a marker or a bind".to_string();
                return Err(stop(&unit, offset, prev, reason));
            }
            (None, Body::Atomic { records }) => {
                unit = (*records > 0).then(|| OpenUnit {
                    at: offset,
                    expect: *records,
                    records: Vec::new(),
                });
                replay.seq = seq;
                replay.records += 1;
            }
            (Some(u), _) => {
                u.records.push((offset, record));
                if u.records.len() == u.expect as usize
                    && let Some(done) = unit.take()
                {
                    for (at, r) in &done.records {
                        replay
                            .apply(segment, *at, r, &mut bound)
                            .map_err(|reason| stop(&None, *at, prev, reason))?;
                    }
                }
            }
            (None, _) => replay
                .apply(segment, offset, &record, &mut bound)
                .map_err(|reason| stop(&None, offset, prev, reason))?,
        }
        prev = Some(seq);
        offset += size;
    }
    if let Some(u) = &unit {
        let reason = format!(
            "a unit of {} records ends after {}",
            u.expect,
            u.records.len()
        );
        return Err(stop(&unit, bytes.len(), prev, reason));
    }
    Ok(())
}

/// Every queue's remembered ids, read back.
fn remembered<S: Storage>(
    storage: &mut S,
    replay: &Replay,
) -> Result<BTreeMap<String, Vec<RememberedId>>, JournalError> {
    let mut out = BTreeMap::new();
    for (queue, window) in &replay.index.remembered {
        let Some(name) = replay.names.get(queue.0 as usize) else {
            continue;
        };
        let locs: Vec<Loc> = window
            .values()
            .map(|r| Loc {
                segment: r.segment,
                offset: r.offset,
                len: r.len,
                count: 0,
                paged: false,
            })
            .collect();
        let ids = read_locs(storage, &locs)?;
        let ids = window
            .iter()
            .zip(ids)
            .map(|((ordinal, r), message_id)| RememberedId {
                ordinal: *ordinal,
                // A copy: a slice would hold the segment's read buffer for the window.
                message_id: Bytes::copy_from_slice(&message_id),
                at_ms: r.at_ms,
            })
            .collect();
        out.insert(name.clone(), ids);
    }
    Ok(out)
}

/// The live messages, by queue and id: each queue's oldest read into memory up to the load
/// budget, the rest as references to their records.
#[allow(clippy::type_complexity)]
fn recovered<S: Storage>(
    storage: &mut S,
    replay: &Replay,
    config: &JournalConfig,
    report: &mut RecoveryReport,
) -> Result<
    (
        BTreeMap<String, Vec<RecoveredMessage>>,
        BTreeMap<String, Vec<PagedMessage>>,
    ),
    JournalError,
> {
    let mut by_queue: BTreeMap<QueueRef, Vec<(MessageId, Loc)>> = BTreeMap::new();
    for (&(queue, id), &loc) in &replay.index.live {
        by_queue.entry(queue).or_default().push((id, loc));
    }
    let mut queues = BTreeMap::new();
    let mut paged = BTreeMap::new();
    for (queue, mut messages) in by_queue {
        let Some(name) = replay.names.get(queue.0 as usize) else {
            continue;
        };
        messages.sort_unstable_by_key(|(id, _)| *id);
        let mut budget = config.load_bytes_per_queue;
        let split = messages
            .iter()
            .position(|(_, loc)| {
                let fits = u64::from(loc.len) <= budget;
                budget = budget.saturating_sub(u64::from(loc.len));
                !fits
            })
            .unwrap_or(messages.len());
        let (load, rest) = messages.split_at(split);
        let locs: Vec<Loc> = load.iter().map(|(_, loc)| *loc).collect();
        let payloads = read_locs(storage, &locs)?;
        report.messages += messages.len() as u64;
        report.bytes += messages.iter().map(|(_, l)| u64::from(l.len)).sum::<u64>();
        report.paged += rest.len() as u64;
        let loaded = load
            .iter()
            .zip(payloads)
            .map(|((id, loc), payload)| RecoveredMessage {
                id: *id,
                payload,
                delivery_count: loc.count,
            })
            .collect();
        queues.insert(name.clone(), loaded);
        if !rest.is_empty() {
            let refs = rest
                .iter()
                .map(|(id, loc)| PagedMessage {
                    id: *id,
                    size: loc.len,
                    delivery_count: loc.count,
                })
                .collect();
            paged.insert(name.clone(), refs);
        }
    }
    Ok((queues, paged))
}
