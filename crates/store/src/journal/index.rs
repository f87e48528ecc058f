//! What the journal knows of its segments without reading them: where every live message is,
//! and per segment how much of it is still live and which older segments its records refer
//! to. Compaction decides from this alone; recovery and appending keep it the same way.

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

/// One segment as the index sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Segment {
    /// Its size in bytes (written, or to be written).
    pub(crate) len: u64,
    /// Messages stored in it that are still live.
    pub(crate) live: u64,
    /// The bytes of their stored records.
    pub(crate) live_bytes: u64,
    /// Older segments holding messages its records count or remove: while one of them is
    /// still there, deleting this one would bring those messages back.
    pub(crate) refs: BTreeSet<u64>,
}

#[derive(Debug, Default)]
pub(crate) struct Index {
    pub(crate) segments: BTreeMap<u64, Segment>,
    pub(crate) live: HashMap<Key, Loc>,
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
