//! The journal's remembered ids (duplicate detection): they come back after a restart, survive
//! compaction while their window remembers them, let their segments go once it has forgotten
//! them, and count only together with the message stored with them.

use bytes::Bytes;

use super::tests::{open, removed, small, stored};
use super::*;
use crate::duplicates::{DuplicateLimits, RememberedId};

fn remembered(message: Option<u64>, ordinal: u64, id: &str, at_ms: i64, ids_max: u32) -> Change {
    Change::Remembered {
        message: message.map(MessageId),
        id: RememberedId {
            ordinal,
            message_id: Bytes::copy_from_slice(id.as_bytes()),
            at_ms,
        },
        limits: DuplicateLimits {
            window_ms: 60_000,
            ids_max,
        },
    }
}

/// The ids recovery gives back for `queue`, by ordinal.
fn ids(recovery: &Recovery, queue: &str) -> Vec<(u64, String, i64)> {
    let mut ids: Vec<_> = recovery
        .duplicates
        .get(queue)
        .map(|ids| {
            ids.iter()
                .map(|r| {
                    let id = String::from_utf8(r.message_id.to_vec()).unwrap();
                    (r.ordinal, id, r.at_ms)
                })
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// Appends a message with its id, as the broker does: the id first, then the message.
fn publish(j: &mut Journal<MemStorage>, q: QueueRef, message: u64, ordinal: u64, at_ms: i64) {
    let id = format!("id-{ordinal}");
    j.append(q, &remembered(Some(message), ordinal, &id, at_ms, 1000))
        .unwrap();
    j.append(q, &stored(message, b"payload")).unwrap();
}

#[test]
fn remembered_ids_come_back_after_a_restart_with_their_times() {
    let storage = MemStorage::new();
    let (mut j, _) = open(&storage, JournalConfig::default());
    let q = j.queue("orders");
    publish(&mut j, q, 0, 0, 1000);
    publish(&mut j, q, 1, 1, 2000);
    j.append(q, &removed(0)).unwrap();
    j.flush().unwrap();
    drop(j);
    let (_, r) = open(&storage, JournalConfig::default());
    assert_eq!(
        ids(&r, "orders"),
        vec![(0, "id-0".into(), 1000), (1, "id-1".into(), 2000)],
        "an id outlives its message"
    );
}

#[test]
fn an_id_whose_message_was_cut_off_by_a_torn_tail_is_not_remembered() {
    let storage = MemStorage::new();
    let (mut j, _) = open(&storage, JournalConfig::default());
    let q = j.queue("q");
    publish(&mut j, q, 0, 0, 1000);
    j.flush().unwrap();
    let segment = storage.segments()[0];
    let kept = storage.file(segment).unwrap().len();
    publish(&mut j, q, 1, 1, 2000);
    j.flush().unwrap();
    let full = storage.file(segment).unwrap();
    // Every cut inside the second pair: its id is never remembered without its message.
    for cut in kept..full.len() {
        let s = MemStorage::new();
        s.set_file(segment, full[..cut].to_vec());
        let (_, r) = open(&s, JournalConfig::default());
        assert_eq!(ids(&r, "q"), vec![(0, "id-0".into(), 1000)], "cut at {cut}");
        assert_eq!(r.queues["q"].len(), 1, "cut at {cut}");
    }
    let (_, r) = open(&storage, JournalConfig::default());
    assert_eq!(ids(&r, "q").len(), 2);
}

#[test]
fn the_journal_forgets_the_oldest_ids_past_the_windows_count_and_time() {
    let storage = MemStorage::new();
    let (mut j, _) = open(&storage, JournalConfig::default());
    let q = j.queue("q");
    for ordinal in 0..5 {
        j.append(q, &remembered(None, ordinal, &format!("c{ordinal}"), 0, 3))
            .unwrap();
    }
    // 61 s later: everything before is out of the 60 s window.
    j.append(q, &remembered(None, 5, "late", 61_000, 3))
        .unwrap();
    j.flush().unwrap();
    drop(j);
    let (_, r) = open(&storage, JournalConfig::default());
    assert_eq!(ids(&r, "q"), vec![(5, "late".into(), 61_000)]);
}

#[test]
fn remembered_ids_survive_compaction_while_remembered_and_their_segments_go_after() {
    let storage = MemStorage::new();
    let (mut j, _) = open(&storage, small(1024));
    let q = j.queue("q");
    // One long-remembered id, then a stream of messages that each stay a while (so that a
    // few segments are always live), none with an id.
    j.append(q, &remembered(None, 0, "keep-me", 1000, 1000))
        .unwrap();
    for id in 0..300 {
        j.append(q, &stored(id, &[5u8; 100])).unwrap();
        if id >= 25 {
            j.append(q, &removed(id - 25)).unwrap();
        }
        j.flush().unwrap();
        while j.compact().unwrap() {}
    }
    assert!(j.stats().segments <= 8, "{:?}", j.stats());
    assert!(
        !storage.segments().contains(&1),
        "the id's first segment was rewritten and deleted: {:?}",
        storage.segments()
    );
    drop(j);
    let (mut j, r) = open(&storage, small(1024));
    assert_eq!(ids(&r, "q"), vec![(0, "keep-me".into(), 1000)]);

    // Once the window has forgotten it (a newer id past the count of 1), its segment can go.
    let q = j.queue("q");
    j.append(q, &remembered(None, 1, "newer", 2000, 1)).unwrap();
    for id in 300..600 {
        j.append(q, &stored(id, &[5u8; 100])).unwrap();
        j.append(q, &removed(id)).unwrap();
        if id < 325 {
            j.append(q, &removed(id - 25)).unwrap();
        }
        j.flush().unwrap();
        while j.compact().unwrap() {}
    }
    assert!(j.stats().segments <= 3, "{:?}", j.stats());
    drop(j);
    let (_, r) = open(&storage, small(1024));
    assert_eq!(ids(&r, "q"), vec![(1, "newer".into(), 2000)]);
}

#[test]
fn without_compaction_a_window_of_ids_keeps_only_its_segments() {
    // Ids forgotten by count leave their segments dead: the disk follows the window.
    let storage = MemStorage::new();
    let (mut j, _) = open(&storage, small(1024));
    let q = j.queue("q");
    for ordinal in 0..500 {
        let id = format!("id-{ordinal:04}");
        j.append(q, &remembered(None, ordinal, &id, ordinal as i64, 4))
            .unwrap();
        j.flush().unwrap();
        j.compact().unwrap();
    }
    assert!(j.stats().segments <= 3, "{:?}", j.stats());
    drop(j);
    let (_, r) = open(&storage, small(1024));
    let kept: Vec<u64> = ids(&r, "q").into_iter().map(|(o, _, _)| o).collect();
    assert_eq!(kept, vec![496, 497, 498, 499]);
}
