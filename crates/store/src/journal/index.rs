//! What the journal knows of its segments without reading them: where every live message is,
//! and per segment how much of it is still live and which older segments its records refer
//! to. Compaction decides from this alone; recovery and appending keep it the same way.
//!
//! It also knows where each queue's remembered `message-id`s are (duplicate detection), and
//! forgets them as the queue's window does: by count, and by time, the time being the newest
//! id's (the journal has no clock; it may keep an id longer than the window, never shorter).
//! A segment holding a remembered id is live, as one holding a live message is.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::queue::MessageId;

/// A queue's number in this journal: given when it is first named, for the life of the
/// journal value (segments on disk bind their own numbers to addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueRef(pub(crate) u32);

pub(crate) type Key = (QueueRef, MessageId);

/// Where a live message's stored record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Loc {
    pub(crate) segment: u64,
    /// The payload's offset in the segment file.
    pub(crate) offset: u64,
    pub(crate) len: u32,
    /// The delivery count it has reached.
    pub(crate) count: u32,
    /// A paged record (kind 5): a message that is not durable.
    pub(crate) paged: bool,
}

impl Loc {
    /// The stored record's size on disk.
    fn record(&self) -> u64 {
        super::format::stored_size(self.len as usize) as u64
    }
}

/// Where a remembered id's record is, and the window it was remembered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RememberedLoc {
    pub(crate) segment: u64,
    /// The id's offset in the segment file.
    pub(crate) offset: u64,
    pub(crate) len: u32,
    pub(crate) at_ms: i64,
    pub(crate) window_ms: u64,
    pub(crate) ids_max: u32,
}

impl RememberedLoc {
    fn record(&self) -> u64 {
        super::format::remembered_size(self.len as usize) as u64
    }

    /// Whether the window had forgotten `self` by `now_ms`.
    fn expired_at(&self, now_ms: i64) -> bool {
        let age_ms = now_ms.saturating_sub(self.at_ms);
        age_ms >= 0 && age_ms as u64 >= self.window_ms
    }
}

/// One segment as the index sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Segment {
    /// Its size in bytes (written, or to be written).
    pub(crate) len: u64,
    /// Messages stored in it that are still live.
    pub(crate) live: u64,
    /// The bytes of their stored records, and of its remembered ids' records.
    pub(crate) live_bytes: u64,
    /// Remembered ids whose records are in it.
    pub(crate) remembered: u64,
    /// Older segments holding messages its records count or remove: while one of them is
    /// still there, deleting this one would bring those messages back.
    pub(crate) refs: BTreeSet<u64>,
}

#[derive(Debug, Default)]
pub(crate) struct Index {
    pub(crate) segments: BTreeMap<u64, Segment>,
    pub(crate) live: HashMap<Key, Loc>,
    /// Each queue's remembered ids, by ordinal (oldest first).
    pub(crate) remembered: HashMap<QueueRef, BTreeMap<u64, RememberedLoc>>,
}

impl Index {
    /// A message was stored (or stored again by compaction: the newer copy counts).
    pub(crate) fn stored(&mut self, key: Key, loc: Loc) {
        if let Some(old) = self.live.insert(key, loc) {
            self.forget(&old);
        }
        if let Some(s) = self.segments.get_mut(&loc.segment) {
            s.live += 1;
            s.live_bytes += loc.record();
        }
    }

    /// A queue's window remembered an id (or compaction wrote it again: the newer copy
    /// counts); then the ids its window forgot by now are forgotten.
    pub(crate) fn remembered(&mut self, queue: QueueRef, ordinal: u64, loc: RememberedLoc) {
        let window = self.remembered.entry(queue).or_default();
        let mut gone = Vec::new();
        gone.extend(window.insert(ordinal, loc));
        if let Some(s) = self.segments.get_mut(&loc.segment) {
            s.remembered += 1;
            s.live_bytes += loc.record();
        }
        while let Some((_, first)) = window.first_key_value() {
            if window.len() <= loc.ids_max as usize && !first.expired_at(loc.at_ms) {
                break;
            }
            gone.extend(window.pop_first().map(|(_, l)| l));
        }
        for old in gone {
            if let Some(s) = self.segments.get_mut(&old.segment) {
                s.remembered = s.remembered.saturating_sub(1);
                s.live_bytes = s.live_bytes.saturating_sub(old.record());
            }
        }
    }

    /// The remembered ids whose records are in `segment`.
    pub(crate) fn remembered_in(&self, segment: u64) -> Vec<(QueueRef, u64, RememberedLoc)> {
        self.remembered
            .iter()
            .flat_map(|(q, window)| window.iter().map(move |(o, loc)| (*q, *o, *loc)))
            .filter(|(_, _, loc)| loc.segment == segment)
            .collect()
    }

    /// A record of `segment` raised a message's count.
    pub(crate) fn counted(&mut self, segment: u64, key: Key, count: u32) {
        if let Some(loc) = self.live.get_mut(&key) {
            loc.count = count;
            let at = loc.segment;
            self.refer(segment, at);
        }
    }

    /// A record of `segment` removed a message.
    pub(crate) fn removed(&mut self, segment: u64, key: Key) -> bool {
        let Some(old) = self.live.remove(&key) else {
            return false;
        };
        self.forget(&old);
        self.refer(segment, old.segment);
        true
    }

    fn forget(&mut self, loc: &Loc) {
        if let Some(s) = self.segments.get_mut(&loc.segment) {
            s.live = s.live.saturating_sub(1);
            s.live_bytes = s.live_bytes.saturating_sub(loc.record());
        }
    }

    fn refer(&mut self, from: u64, to: u64) {
        if from != to
            && let Some(s) = self.segments.get_mut(&from)
        {
            s.refs.insert(to);
        }
    }

    /// Segments that can go, oldest first, leaving out `keep` (the one being written): no live
    /// message, and none of the segments they refer to left. One pass suffices, as references
    /// only point at older segments.
    pub(crate) fn dead(&self, keep: Option<u64>) -> Vec<u64> {
        let mut gone = BTreeSet::new();
        for (&n, s) in &self.segments {
            if Some(n) != keep
                && s.live == 0
                && s.remembered == 0
                && s.refs
                    .iter()
                    .all(|r| gone.contains(r) || !self.segments.contains_key(r))
            {
                gone.insert(n);
            }
        }
        gone.into_iter().collect()
    }

    /// Bytes on disk, and the bytes of live messages' records.
    pub(crate) fn sizes(&self) -> (u64, u64) {
        self.segments
            .values()
            .fold((0, 0), |(d, l), s| (d + s.len, l + s.live_bytes))
    }
}
