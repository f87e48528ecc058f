//! Units: the changes of one committed transaction, written so that recovery replays all of
//! them or none (see the module docs of [`crate::journal`]).
//!
//! [`Change::Atomic`] announces how many changes follow. They are held until the last comes,
//! then encoded together: room for all of them is made first (so the tail never rolls inside
//! a unit), the queues they name are bound, then the atomic record and the unit's records
//! follow one another.

use std::collections::BTreeSet;

use super::format::{self, Body};
use super::{Journal, JournalError, QueueRef, Storage};
use crate::change::Change;

/// A unit whose changes are still coming.
#[derive(Debug)]
pub(super) struct Unit {
    expect: u32,
    changes: Vec<(QueueRef, Change)>,
}

impl<S: Storage> Journal<S> {
    /// Opens a unit of the next `records` changes.
    pub(super) fn begin_unit(&mut self, records: u32) -> Result<(), JournalError> {
        // A unit its caller left open is written as far as it came, never lost.
        self.end_partial_unit()?;
        if records > 0 {
            self.unit = Some(Unit {
                expect: records,
                changes: Vec::new(),
            });
        }
        Ok(())
    }

    /// Adds a change to the open unit, and writes the unit once it is whole.
    pub(super) fn add_to_unit(
        &mut self,
        queue: QueueRef,
        change: &Change,
    ) -> Result<(), JournalError> {
        let Some(unit) = &mut self.unit else {
            return self.append_one(queue, change);
        };
        unit.changes.push((queue, change.clone()));
        if unit.changes.len() < unit.expect as usize {
            return Ok(());
        }
        self.end_partial_unit()
    }

    /// Writes the open unit, whole or not (a flush does not wait for changes that may never
    /// come).
    pub(super) fn end_partial_unit(&mut self) -> Result<(), JournalError> {
        match self.unit.take() {
            Some(unit) => self.write_unit(&unit.changes),
            None => Ok(()),
        }
    }

    fn write_unit(&mut self, changes: &[(QueueRef, Change)]) -> Result<(), JournalError> {
        if changes.is_empty() {
            return Ok(());
        }
        let queues: BTreeSet<QueueRef> = changes.iter().map(|(q, _)| *q).collect();
        let mut size = format::ATOMIC_BYTES;
        for q in &queues {
            let name = self.names.get(q.0 as usize).map_or("", String::as_str);
            size += format::bind_size(name);
        }
        for (_, change) in changes {
            size += match change {
                Change::Stored { payload, .. } | Change::Paged { payload, .. } => {
                    let bytes = format::stored_size(payload.len());
                    // Refused before anything of the unit is encoded: all or none.
                    if bytes > self.config.record_bytes_max {
                        return Err(JournalError::TooLarge {
                            bytes,
                            max: self.config.record_bytes_max,
                        });
                    }
                    bytes
                }
                Change::DeliveryCount { .. } | Change::Removed { .. } => format::SMALL_RECORD_BYTES,
                Change::Remembered { id, .. } => format::remembered_size(id.message_id.len()),
                Change::Atomic { .. } => 0,
            };
        }
        self.make_room(size);
        for q in queues {
            self.bind(q);
        }
        let records = u32::try_from(changes.len()).unwrap_or(u32::MAX);
        self.encode(self.tail_now(), &Body::Atomic { records });
        self.in_unit = true;
        let result = changes
            .iter()
            .try_for_each(|(q, change)| self.append_one(*q, change));
        self.in_unit = false;
        result
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::super::{JournalConfig, MemStorage, Recovery};
    use super::*;
    use crate::queue::MessageId;

    fn stored(id: u64, payload: &[u8]) -> Change {
        Change::Stored {
            id: MessageId(id),
            payload: Bytes::copy_from_slice(payload),
        }
    }

    fn open(storage: &MemStorage, segment_bytes: u64) -> (Journal<MemStorage>, Recovery) {
        let config = JournalConfig {
            segment_bytes,
            ..JournalConfig::default()
        };
        Journal::open(storage.clone(), config).unwrap()
    }

    /// Each queue's message ids after a recovery.
    fn ids(r: &Recovery) -> Vec<(String, Vec<u64>)> {
        r.queues
            .iter()
            .map(|(q, m)| (q.clone(), m.iter().map(|m| m.id.0).collect::<Vec<_>>()))
            .filter(|(_, m)| !m.is_empty())
            .collect()
    }

    /// A journal holding message 0 of "a", then a unit storing 1 and 2 of "a", 0 of "b", and
    /// removing 0 of "a". Returns the storage, its one segment, and where the unit starts.
    fn with_unit() -> (MemStorage, u64, usize) {
        let storage = MemStorage::new();
        let (mut j, _) = open(&storage, 1 << 20);
        let a = j.queue("a");
        let b = j.queue("b");
        j.append(a, &stored(0, b"before")).unwrap();
        j.flush().unwrap();
        let segment = storage.segments()[0];
        let before = storage.file(segment).unwrap().len();
        j.append(a, &Change::Atomic { records: 4 }).unwrap();
        j.append(a, &stored(1, b"one")).unwrap();
        j.append(a, &stored(2, &[2u8; 50])).unwrap();
        j.append(b, &stored(0, b"b zero")).unwrap();
        j.append(a, &Change::Removed { id: MessageId(0) }).unwrap();
        j.flush().unwrap();
        (storage, segment, before)
    }

    #[test]
    fn a_complete_unit_recovers_whole() {
        let (storage, _, _) = with_unit();
        let (mut j, r) = open(&storage, 1 << 20);
        assert_eq!(
            ids(&r),
            vec![("a".into(), vec![1, 2]), ("b".into(), vec![0])]
        );
        assert_eq!(r.report.truncated, None);
        // Appending goes on after it.
        let a = j.queue("a");
        j.append(a, &stored(3, b"after")).unwrap();
        j.flush().unwrap();
        drop(j);
        let (_, r) = open(&storage, 1 << 20);
        assert_eq!(ids(&r)[0].1, vec![1, 2, 3]);
    }

    #[test]
    fn a_unit_cut_anywhere_at_the_tail_is_dropped_whole() {
        let (storage, segment, before) = with_unit();
        let full = storage.file(segment).unwrap();
        for cut in before..full.len() {
            let s = MemStorage::new();
            s.set_file(segment, full[..cut].to_vec());
            let (_, r) = open(&s, 1 << 20);
            assert_eq!(ids(&r), vec![("a".into(), vec![0])], "cut at {cut}");
            if cut > before + format::bind_size("b") {
                let t = r.report.truncated.as_ref().expect("a cut unit is reported");
                assert!(t.offset <= before as u64 + format::bind_size("b") as u64);
                assert_eq!(s.file(segment).unwrap().len() as u64, t.offset);
            }
        }
    }

    #[test]
    fn a_unit_cut_short_before_other_records_is_corruption() {
        let (storage, segment, before) = with_unit();
        let mut bytes = storage.file(segment).unwrap();
        // A unit announcing one more record than it has: the records after it are valid.
        let marker = before + format::bind_size("b");
        bytes[marker + format::FRAME_BYTES + 9] = 5;
        let checked = &bytes[marker + format::FRAME_BYTES..marker + format::ATOMIC_BYTES];
        let crc = crc32c::crc32c(checked).to_le_bytes();
        bytes[marker + 4..marker + 8].copy_from_slice(&crc);
        // Valid on its own, but a second segment follows: this one is no torn tail.
        storage.set_file(segment, bytes);
        storage.set_file(segment + 1, format::header(segment + 1));
        let err = Journal::open(storage.clone(), JournalConfig::default()).unwrap_err();
        assert!(matches!(err, JournalError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn a_unit_still_coming_is_held_back_whole_then_written() {
        let storage = MemStorage::new();
        let (mut j, _) = open(&storage, 1 << 20);
        let q = j.queue("q");
        j.append(q, &Change::Atomic { records: 2 }).unwrap();
        j.append(q, &stored(0, b"first of two")).unwrap();
        // Held until the unit is whole: nothing of it is encoded yet.
        assert!(!j.is_dirty());
        assert_eq!(j.stats().pending_bytes, 0);
        j.append(q, &stored(1, b"second of two")).unwrap();
        assert!(j.is_dirty());
        j.flush().unwrap();
        drop(j);
        let (_, r) = open(&storage, 1 << 20);
        assert_eq!(ids(&r), vec![("q".into(), vec![0, 1])]);
    }

    #[test]
    fn a_unit_that_does_not_fit_the_tail_starts_a_new_segment() {
        let storage = MemStorage::new();
        let (mut j, _) = open(&storage, 300);
        let q = j.queue("q");
        j.append(q, &stored(0, &[0u8; 150])).unwrap();
        j.append(q, &Change::Atomic { records: 3 }).unwrap();
        for id in 1..=3 {
            j.append(q, &stored(id, &[id as u8; 60])).unwrap();
        }
        j.flush().unwrap();
        let segments = storage.segments();
        assert_eq!(segments.len(), 2, "the unit rolled the tail once");
        let first = storage.file(segments[0]).unwrap();
        let second = storage.file(segments[1]).unwrap();
        for id in 1..=3u8 {
            let payload = [id; 60];
            let inside = |f: &[u8]| f.windows(60).any(|w| w == payload);
            assert!(!inside(&first) && inside(&second), "message {id}");
        }
        drop(j);
        let (_, r) = open(&storage, 300);
        assert_eq!(ids(&r), vec![("q".into(), vec![0, 1, 2, 3])]);
    }
}
