//! A queue's duplicate detection window: the `message-id`s of the messages it accepted lately,
//! so that a producer's retry of a message already stored is accepted again but not stored
//! twice (Artemis's duplicate-id cache, Azure Service Bus's duplicate detection window).
//!
//! An id is compared as its encoded AMQP value (constructor and bytes), so `ulong 7` and
//! `string "7"` are different ids, as the spec's `message-id-*` types are. It is remembered
//! for `window_ms` from when it was accepted, and at most `ids_max` ids are held: past that
//! the oldest is forgotten first. Each id is a copy of its few bytes, never a slice of its
//! message (which would keep the whole message in memory for the window); an id longer than
//! [`DUPLICATE_ID_BYTES_MAX`] is never remembered, so the window's memory is bounded by
//! `ids_max × DUPLICATE_ID_BYTES_MAX`.
//!
//! Every id is numbered in the order it was remembered (its `ordinal`), so that the journal,
//! which may rewrite an old record after newer ones, and recovery agree with the window on
//! which id is the oldest. Sans-IO: the time comes in as `now_ms`.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

/// The longest encoded `message-id` remembered. Ids are ulongs, uuids (17 bytes encoded) or
/// short strings in practice (a JMS id is about 60); a longer one is never a duplicate.
pub const DUPLICATE_ID_BYTES_MAX: usize = 256;

/// How long ids are remembered, and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateLimits {
    /// An id is forgotten this long after it was remembered, ms.
    pub window_ms: u64,
    /// The most ids held; the oldest goes first.
    pub ids_max: u32,
}

/// One remembered id, as the journal records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RememberedId {
    /// Its place in the order ids were remembered in, from 0.
    pub ordinal: u64,
    /// The encoded `message-id`.
    pub message_id: Bytes,
    /// When it was remembered, ms since the epoch.
    pub at_ms: i64,
}

/// The ids a queue remembers.
#[derive(Debug, Clone)]
pub struct DuplicateWindow {
    limits: DuplicateLimits,
    /// Oldest first. An entry whose ordinal is not its id's in `ids` is stale (the id was
    /// remembered again later, which only restoring does) and is skipped.
    order: VecDeque<RememberedId>,
    /// Each id's ordinal. The ids are the peers' choice, so the map keeps std's keyed hasher,
    /// which they cannot make collide.
    ids: HashMap<Bytes, u64>,
    next: u64,
}

impl DuplicateWindow {
    /// An empty window.
    pub fn new(limits: DuplicateLimits) -> Self {
        DuplicateWindow {
            limits,
            order: VecDeque::new(),
            ids: HashMap::new(),
            next: 0,
        }
    }

    /// The limits.
    pub fn limits(&self) -> DuplicateLimits {
        self.limits
    }

    /// New limits (a reload): the ids over the count go at once, those out of the new window
    /// at the next look.
    pub fn set_limits(&mut self, limits: DuplicateLimits) {
        self.limits = limits;
        // No time has passed for the count; the age check is the next call's.
        self.forget_old(i64::MIN);
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Whether `message_id` was remembered within the window before `now_ms`.
    pub fn contains(&mut self, message_id: &[u8], now_ms: i64) -> bool {
        self.forget_old(now_ms);
        self.ids.contains_key(message_id)
    }

    /// Remembers `message_id`, accepted at `now_ms`; returns what the journal records, or
    /// `None` when the id is too long to remember. The caller checked [`Self::contains`]
    /// first: an id already remembered is remembered again, as the newest.
    pub fn remember(&mut self, message_id: &[u8], now_ms: i64) -> Option<RememberedId> {
        if message_id.len() > DUPLICATE_ID_BYTES_MAX {
            return None;
        }
        let remembered = RememberedId {
            ordinal: self.next,
            message_id: Bytes::copy_from_slice(message_id),
            at_ms: now_ms,
        };
        self.next += 1;
        self.insert(remembered.clone());
        self.forget_old(now_ms);
        Some(remembered)
    }

    /// Puts back what the journal kept (in any order) after a restart at `now_ms`: ids out of
    /// the window are dropped, and the newest `ids_max` kept. Later ids are numbered after
    /// every ordinal given, kept or not.
    pub fn restore(&mut self, mut remembered: Vec<RememberedId>, now_ms: i64) {
        remembered.sort_unstable_by_key(|r| r.ordinal);
        for r in remembered {
            self.next = self.next.max(r.ordinal.saturating_add(1));
            if !self.is_expired(&r, now_ms) && r.message_id.len() <= DUPLICATE_ID_BYTES_MAX {
                self.insert(r);
            }
        }
        self.forget_old(now_ms);
    }

    fn insert(&mut self, r: RememberedId) {
        self.ids.insert(r.message_id.clone(), r.ordinal);
        self.order.push_back(r);
    }

    fn is_expired(&self, r: &RememberedId, now_ms: i64) -> bool {
        let age_ms = now_ms.saturating_sub(r.at_ms);
        age_ms >= 0 && age_ms as u64 >= self.limits.window_ms
    }

    /// Forgets the ids out of the window at `now_ms`, and the oldest past `ids_max`.
    fn forget_old(&mut self, now_ms: i64) {
        while let Some(front) = self.order.front() {
            let current = self.ids.get(&front.message_id) == Some(&front.ordinal);
            let over = self.ids.len() > self.limits.ids_max as usize;
            if current && !over && !self.is_expired(front, now_ms) {
                break;
            }
            if let Some(gone) = self.order.pop_front()
                && current
            {
                self.ids.remove(&gone.message_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(window_ms: u64, ids_max: u32) -> DuplicateWindow {
        DuplicateWindow::new(DuplicateLimits { window_ms, ids_max })
    }

    #[test]
    fn an_id_is_a_duplicate_within_the_window_and_forgotten_after_it() {
        let mut w = window(1000, 10);
        assert!(!w.contains(b"a", 0));
        w.remember(b"a", 0).unwrap();
        assert!(w.contains(b"a", 999));
        assert!(!w.contains(b"b", 999));
        assert!(
            !w.contains(b"a", 1000),
            "forgotten once the window has passed"
        );
        assert!(w.is_empty());
    }

    #[test]
    fn past_ids_max_the_oldest_is_forgotten_first() {
        let mut w = window(60_000, 3);
        for (i, id) in [b"a", b"b", b"c", b"d"].iter().enumerate() {
            w.remember(*id, i as i64).unwrap();
        }
        assert_eq!(w.len(), 3);
        assert!(!w.contains(b"a", 10));
        for id in [b"b", b"c", b"d"] {
            assert!(w.contains(id, 10));
        }
    }

    #[test]
    fn ids_are_compared_as_their_encoded_bytes_and_copied() {
        let mut w = window(60_000, 10);
        let message = Bytes::from_static(b"\x53\x07 rest of a message");
        let id = message.slice(0..2);
        let r = w.remember(&id, 0).unwrap();
        assert_eq!(&r.message_id[..], b"\x53\x07");
        assert_ne!(r.message_id.as_ptr(), id.as_ptr(), "a copy, not a slice");
        assert!(!w.contains(b"\xa1\x017", 0), "string \"7\" is not ulong 7");
    }

    #[test]
    fn an_id_too_long_is_never_remembered() {
        let mut w = window(60_000, 10);
        let long = vec![0xa1; DUPLICATE_ID_BYTES_MAX + 1];
        assert_eq!(w.remember(&long, 0), None);
        assert!(!w.contains(&long, 0));
    }

    #[test]
    fn restoring_drops_what_left_the_window_keeps_the_newest_and_numbers_after_all() {
        let r = |ordinal, id: &'static [u8], at_ms| RememberedId {
            ordinal,
            message_id: Bytes::from_static(id),
            at_ms,
        };
        let mut w = window(1000, 2);
        // Out of order, as a journal rewritten by compaction gives them; "a" again later.
        w.restore(
            vec![
                r(4, b"d", 5000),
                r(0, b"a", 100),
                r(3, b"c", 4900),
                r(2, b"a", 4800),
                r(1, b"b", 4700),
                r(5, b"old", 3000),
            ],
            5500,
        );
        assert_eq!(w.len(), 2);
        assert!(w.contains(b"c", 5500) && w.contains(b"d", 5500));
        assert!(!w.contains(b"a", 5500) && !w.contains(b"old", 5500));
        assert_eq!(w.remember(b"e", 5600).unwrap().ordinal, 6);
    }

    #[test]
    fn restoring_an_id_twice_keeps_its_newest_time() {
        let mut w = window(1000, 10);
        let r = |ordinal, at_ms| RememberedId {
            ordinal,
            message_id: Bytes::from_static(b"a"),
            at_ms,
        };
        w.restore(vec![r(0, 100), r(1, 900)], 1000);
        assert_eq!(w.len(), 1);
        assert!(w.contains(b"a", 1800), "the newer remembering counts");
        assert!(!w.contains(b"a", 1900));
    }

    #[test]
    fn narrower_limits_apply_at_once() {
        let mut w = window(60_000, 10);
        for (i, id) in [b"a", b"b", b"c"].iter().enumerate() {
            w.remember(*id, i as i64 * 100).unwrap();
        }
        w.set_limits(DuplicateLimits {
            window_ms: 60_000,
            ids_max: 1,
        });
        assert_eq!(w.len(), 1);
        assert!(w.contains(b"c", 300));
    }
}
