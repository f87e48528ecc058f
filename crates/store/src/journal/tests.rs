//! The journal against what it promises: a round trip, a torn tail cut at every byte and bit,
//! corruption refused with its position, compaction, faults, and a model of random runs with
//! crashes.

use std::collections::BTreeMap;
use std::io::ErrorKind;

use bytes::Bytes;
use proptest::prelude::*;

use super::*;

/// Queue name → id → (payload, delivery count).
type State = BTreeMap<String, BTreeMap<u64, (Vec<u8>, u32)>>;

pub(super) fn small(segment_bytes: u64) -> JournalConfig {
    JournalConfig {
        segment_bytes,
        ..JournalConfig::default()
    }
}

pub(super) fn stored(id: u64, payload: &[u8]) -> Change {
    Change::Stored {
        id: MessageId(id),
        payload: Bytes::copy_from_slice(payload),
    }
}

pub(super) fn removed(id: u64) -> Change {
    Change::Removed { id: MessageId(id) }
}

fn count(id: u64, count: u32) -> Change {
    Change::DeliveryCount {
        id: MessageId(id),
        count,
    }
}

pub(super) fn open(storage: &MemStorage, config: JournalConfig) -> (Journal<MemStorage>, Recovery) {
    Journal::open(storage.clone(), config).unwrap()
}

fn state_of(recovery: &Recovery) -> State {
    recovery
        .queues
        .iter()
        .map(|(name, messages)| {
            let m = messages
                .iter()
                .map(|m| (m.id.0, (m.payload.to_vec(), m.delivery_count)))
                .collect();
            (name.clone(), m)
        })
        .filter(|(_, m): &(String, BTreeMap<_, _>)| !m.is_empty())
        .collect()
}

/// The recovered state, reading back what recovery left on disk.
fn state_with_paged(journal: &mut Journal<MemStorage>, recovery: &Recovery) -> State {
    let mut state = state_of(recovery);
    for (name, refs) in &recovery.paged {
        let q = journal.queue(name);
        let ids: Vec<MessageId> = refs.iter().map(|m| m.id).collect();
        let read = journal.read(q, &ids).unwrap();
        assert_eq!(read.len(), refs.len(), "every paged message reads back");
        let into = state.entry(name.clone()).or_default();
        let newest_loaded = into.keys().next_back().copied();
        for ((id, payload), m) in read.into_iter().zip(refs) {
            assert!(
                newest_loaded.is_none_or(|n| n < id.0),
                "paged are newer than loaded"
            );
            into.insert(id.0, (payload.to_vec(), m.delivery_count));
        }
    }
    state.retain(|_, m| !m.is_empty());
    state
}

fn apply(state: &mut State, queue: &str, change: &Change) {
    let q = state.entry(queue.to_string()).or_default();
    match change {
        Change::Stored { id, payload } => {
            q.insert(id.0, (payload.to_vec(), 0));
        }
        Change::DeliveryCount { id, count } => {
            if let Some(m) = q.get_mut(&id.0) {
                m.1 = *count;
            }
        }
        Change::Removed { id } => {
            q.remove(&id.0);
        }
        // Not durable: a restart forgets it, so the state after one never has it.
        Change::Paged { .. } | Change::Atomic { .. } => {}
        // The windows' ids are checked by `duplicate_tests`.
        Change::Remembered { .. } => {}
    }
    state.retain(|_, m| !m.is_empty());
}

#[test]
fn what_was_flushed_comes_back_in_order_with_its_counts() {
    let storage = MemStorage::new();
    let (mut j, r) = open(&storage, JournalConfig::default());
    assert!(r.queues.is_empty());
    let a = j.queue("orders");
    let b = j.queue("audit/eu");
    for (q, c) in [
        (a, stored(0, b"first")),
        (b, stored(0, b"other queue")),
        (a, stored(1, b"second")),
        (a, count(0, 3)),
        (a, stored(2, b"third")),
        (a, removed(1)),
    ] {
        j.append(q, &c).unwrap();
    }
    j.flush().unwrap();
    drop(j);
    let (_, r) = open(&storage, JournalConfig::default());
    let orders = &r.queues["orders"];
    assert_eq!(
        orders
            .iter()
            .map(|m| (m.id.0, &m.payload[..], m.delivery_count))
            .collect::<Vec<_>>(),
        vec![(0, &b"first"[..], 3), (2, &b"third"[..], 0)]
    );
    assert_eq!(r.queues["audit/eu"].len(), 1);
    assert_eq!(r.report.messages, 3);
    assert_eq!(r.report.truncated, None);
}

#[test]
fn a_reopened_journal_appends_to_a_new_segment_and_keeps_numbering() {
    let storage = MemStorage::new();
    let (mut j, _) = open(&storage, JournalConfig::default());
    let q = j.queue("q");
    j.append(q, &stored(0, b"a")).unwrap();
    j.flush().unwrap();
    let seq = j.last_seq();
    drop(j);
    let (mut j, r) = open(&storage, JournalConfig::default());
    assert_eq!(j.last_seq(), seq);
    // The same address gets whatever number; the records bind it by name.
    let q = j.queue("q");
    j.append(q, &removed(0)).unwrap();
    j.append(q, &stored(1, b"b")).unwrap();
    j.flush().unwrap();
    assert_eq!(storage.segments().len(), 2);
    assert_eq!(r.queues["q"].len(), 1);
    drop(j);
    let (_, r) = open(&storage, JournalConfig::default());
    assert_eq!(
        state_of(&r)["q"].keys().copied().collect::<Vec<_>>(),
        vec![1]
    );
}

/// A journal of one segment whose records are `changes` of queue "q"; returns the storage,
/// the segment, and each record's end offset with the state after it.
fn written(changes: &[Change]) -> (MemStorage, u64, Vec<(usize, State)>) {
    let storage = MemStorage::new();
    let (mut j, _) = open(&storage, JournalConfig::default());
    let q = j.queue("q");
    let mut state = State::new();
    let mut ends = Vec::new();
    for c in changes {
        j.append(q, c).unwrap();
        j.flush().unwrap();
        apply(&mut state, "q", c);
        let segment = storage.segments()[0];
        ends.push((storage.file(segment).unwrap().len(), state.clone()));
    }
    (storage.clone(), storage.segments()[0], ends)
}

fn history() -> Vec<Change> {
    vec![
        stored(0, b"zero"),
        stored(1, &[7u8; 40]),
        count(0, 1),
        removed(1),
        stored(2, b"two"),
        removed(0),
    ]
}

#[test]
fn a_cut_at_every_byte_keeps_exactly_the_complete_records() {
    let (storage, segment, ends) = written(&history());
    let full = storage.file(segment).unwrap();
    // From inside the first record's bind to the end.
    let first = format::HEADER_BYTES;
    for cut in first..=full.len() {
        let s = MemStorage::new();
        s.set_file(segment, full[..cut].to_vec());
        let (_, r) = open(&s, JournalConfig::default());
        let complete = ends.iter().rev().find(|(end, _)| *end <= cut);
        let expected = complete.map(|(_, st)| st.clone()).unwrap_or_default();
        assert_eq!(state_of(&r), expected, "cut at {cut}");
        let boundary = cut == first || ends.iter().any(|(end, _)| *end == cut);
        // A cut between a bind and the record it binds for is a boundary too.
        if !boundary {
            assert!(
                r.report.truncated.is_some() || cut < full.len(),
                "cut at {cut}"
            );
        }
        if let Some(t) = &r.report.truncated {
            assert_eq!(s.file(segment).unwrap().len() as u64, t.offset);
        }
    }
}

#[test]
fn a_flipped_bit_in_the_last_record_cuts_it_and_nothing_else() {
    let (storage, segment, ends) = written(&history());
    let full = storage.file(segment).unwrap();
    let (before, kept) = &ends[ends.len() - 2];
    for byte in *before..full.len() {
        for bit in 0..8 {
            let mut b = full.clone();
            b[byte] ^= 1 << bit;
            let s = MemStorage::new();
            s.set_file(segment, b);
            let (_, r) = open(&s, JournalConfig::default());
            assert_eq!(&state_of(&r), kept, "flip at {byte}.{bit}");
            assert_eq!(r.report.truncated.as_ref().unwrap().offset, *before as u64);
        }
    }
}

#[test]
fn a_flipped_bit_before_valid_records_is_corruption_with_its_position() {
    let (storage, segment, ends) = written(&history());
    let full = storage.file(segment).unwrap();
    let (start, _) = ends[1];
    let (end, _) = ends[2];
    for byte in start..end {
        let mut b = full.clone();
        b[byte] ^= 0x10;
        let s = MemStorage::new();
        s.set_file(segment, b);
        match Journal::open(s, JournalConfig::default()) {
            Err(JournalError::Corrupt {
                segment: seg,
                offset,
                ..
            }) => {
                assert_eq!(seg, segment);
                assert_eq!(offset, start as u64, "flip at {byte}");
            }
            other => panic!("flip at {byte}: {other:?}"),
        }
    }
}

#[test]
fn a_bad_segment_that_is_not_the_last_is_refused() {
    let storage = MemStorage::new();
    let (mut j, _) = open(&storage, small(200));
    let q = j.queue("q");
    for id in 0..10 {
        j.append(q, &stored(id, &[1u8; 60])).unwrap();
    }
    j.flush().unwrap();
    let segments = storage.segments();
    assert!(segments.len() > 2);
    let mut first = storage.file(segments[0]).unwrap();
    let n = first.len();
    first.truncate(n - 3);
    storage.set_file(segments[0], first);
    let err = Journal::open(storage.clone(), small(200)).unwrap_err();
    assert!(
        matches!(err, JournalError::Corrupt { segment, .. } if segment == segments[0]),
        "{err}"
    );
    let mut header = storage.file(segments[1]).unwrap();
    header[0] = b'X';
    storage.set_file(segments[1], header);
    storage.set_file(segments[0], Vec::new());
    let err = Journal::open(storage.clone(), small(200)).unwrap_err();
    assert!(matches!(err, JournalError::Segment { .. }), "{err}");
}

#[test]
fn a_last_segment_without_its_header_is_dropped() {
    let storage = MemStorage::new();
    let (mut j, _) = open(&storage, small(200));
    let q = j.queue("q");
    j.append(q, &stored(0, b"kept")).unwrap();
    j.flush().unwrap();
    drop(j);
    storage.set_file(9, vec![b'S', b'L']);
    let (_, r) = open(&storage, small(200));
    assert_eq!(r.queues["q"].len(), 1);
    assert_eq!(r.report.truncated.as_ref().unwrap().segment, 9);
    assert!(!storage.segments().contains(&9));
}

#[test]
fn a_newer_format_is_refused_not_misread() {
    let storage = MemStorage::new();
    let mut header = format::header(1);
    header[8] = 9;
    let crc = crc32c::crc32c(&header[..20]).to_le_bytes();
    header[20..].copy_from_slice(&crc);
    storage.set_file(1, header);
    storage.set_file(2, format::header(2));
    let err = Journal::open(storage, JournalConfig::default()).unwrap_err();
    assert!(err.to_string().contains("version 9"), "{err}");
}

#[test]
fn settled_segments_are_deleted_so_the_disk_follows_the_backlog() {
    let storage = MemStorage::new();
    let (mut j, _) = open(&storage, small(1024));
    let q = j.queue("q");
    for id in 0..200 {
        j.append(q, &stored(id, &[3u8; 100])).unwrap();
        if id >= 2 {
            j.append(q, &removed(id - 2)).unwrap();
        }
        j.flush().unwrap();
        j.compact().unwrap();
    }
    let stats = j.stats();
    assert_eq!(stats.live_messages, 2);
    assert!(stats.segments <= 3, "{stats:?}");
    assert_eq!(stats.segments, storage.segments().len());
    drop(j);
    let (_, r) = open(&storage, small(1024));
    assert_eq!(
        state_of(&r)["q"].keys().copied().collect::<Vec<_>>(),
        vec![198, 199]
    );
}

#[test]
fn a_long_lived_message_is_rewritten_so_its_segment_can_go() {
    let storage = MemStorage::new();
    let (mut j, _) = open(&storage, small(1024));
    let q = j.queue("q");
    j.append(q, &stored(0, b"long lived")).unwrap();
    j.append(q, &count(0, 4)).unwrap();
    for id in 1..300 {
        j.append(q, &stored(id, &[5u8; 100])).unwrap();
        j.append(q, &removed(id)).unwrap();
        j.flush().unwrap();
        while j.compact().unwrap() {}
    }
    assert!(j.stats().segments <= 3, "{:?}", j.stats());
    drop(j);
    let (_, r) = open(&storage, small(1024));
    let m = &r.queues["q"];
    assert_eq!(m.len(), 1);
    assert_eq!(
        (&m[0].payload[..], m[0].delivery_count),
        (&b"long lived"[..], 4)
    );
}

#[test]
fn a_failed_write_or_sync_is_written_again_and_nothing_is_lost() {
    for (op, kind) in [
        (Op::Write, ErrorKind::Other),
        (Op::Sync, ErrorKind::Other),
        (Op::Create, ErrorKind::Other),
        (Op::Write, ErrorKind::StorageFull),
    ] {
        let storage = MemStorage::new();
        let (mut j, _) = open(&storage, JournalConfig::default());
        let q = j.queue("q");
        // A segment is created by the first flush.
        if op != Op::Create {
            j.append(q, &stored(0, b"before")).unwrap();
            j.flush().unwrap();
        }
        j.append(q, &stored(1, b"during")).unwrap();
        storage.fail_once(op, kind);
        let err = j.flush().unwrap_err();
        assert_eq!(err.is_disk_full(), kind == ErrorKind::StorageFull, "{op:?}");
        assert!(j.is_dirty());
        j.append(q, &stored(2, b"after")).unwrap();
        j.flush().unwrap();
        drop(j);
        let (_, r) = open(&storage, JournalConfig::default());
        let expected = if op == Op::Create { 2 } else { 3 };
        assert_eq!(state_of(&r)["q"].len(), expected, "{op:?}");
    }
}

#[test]
fn a_short_write_is_cut_back_and_written_whole() {
    let storage = MemStorage::new();
    let (mut j, _) = open(&storage, JournalConfig::default());
    let q = j.queue("q");
    j.append(q, &stored(0, &[1u8; 500])).unwrap();
    storage.fail_short_write(100, ErrorKind::Interrupted);
    assert!(j.flush().is_err());
    // A crash now finds a torn tail and nothing accepted.
    let crashed = storage.crash(|_, unsynced| unsynced);
    let (_, r) = open(&crashed, JournalConfig::default());
    assert!(r.queues.is_empty());
    j.flush().unwrap();
    let (_, r) = open(&storage.crash(|_, _| 0), JournalConfig::default());
    assert_eq!(r.queues["q"].len(), 1);
}

#[test]
fn a_full_disk_fails_every_flush_until_space_returns() {
    let storage = MemStorage::new();
    let (mut j, _) = open(&storage, JournalConfig::default());
    let q = j.queue("q");
    storage.fail_until_healed(Op::Write, ErrorKind::StorageFull);
    for id in 0..5 {
        j.append(q, &stored(id, b"m")).unwrap();
        assert!(j.flush().unwrap_err().is_disk_full());
    }
    storage.heal();
    j.flush().unwrap();
    let (_, r) = open(&storage.crash(|_, _| 0), JournalConfig::default());
    assert_eq!(r.queues["q"].len(), 5);
}

#[test]
fn danger_never_syncs_only_finished_segments() {
    let storage = MemStorage::new();
    let config = JournalConfig {
        sync: SyncPolicy::DangerNever,
        segment_bytes: 300,
        ..JournalConfig::default()
    };
    let (mut j, _) = open(&storage, config);
    let q = j.queue("q");
    j.append(q, &stored(0, &[0u8; 200])).unwrap();
    j.flush().unwrap();
    assert_eq!(storage.counts().1, 0);
    j.append(q, &stored(1, &[0u8; 200])).unwrap();
    j.flush().unwrap();
    assert_eq!(storage.counts().1, 1, "the finished segment is synced");
    j.close().unwrap();
    let (_, r) = open(&storage.crash(|_, _| 0), config);
    assert_eq!(r.queues["q"].len(), 2, "close syncs");
}

#[test]
fn a_message_too_big_for_a_record_is_refused() {
    let storage = MemStorage::new();
    let config = JournalConfig {
        record_bytes_max: 100,
        ..JournalConfig::default()
    };
    let (mut j, _) = open(&storage, config);
    let q = j.queue("q");
    assert!(matches!(
        j.append(q, &stored(0, &[0u8; 100])),
        Err(JournalError::TooLarge { .. })
    ));
    assert!(!j.is_dirty());
}

#[test]
fn the_files_on_disk_work_as_the_memory_ones() {
    let dir = std::env::temp_dir().join(format!("sluice-journal-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    {
        let (mut j, _) = Journal::open(FsStorage::new(&dir).unwrap(), small(512)).unwrap();
        let q = j.queue("q");
        for id in 0..20 {
            j.append(q, &stored(id, &[9u8; 64])).unwrap();
        }
        for id in 0..10 {
            j.append(q, &removed(id)).unwrap();
        }
        j.flush().unwrap();
        while j.compact().unwrap() {}
        j.close().unwrap();
    }
    let (j, r) = Journal::open(FsStorage::new(&dir).unwrap(), small(512)).unwrap();
    assert_eq!(
        r.queues["q"].iter().map(|m| m.id.0).collect::<Vec<_>>(),
        (10..20).collect::<Vec<_>>()
    );
    assert_eq!(j.stats().segments, j.storage().list_len());
    std::fs::remove_dir_all(&dir).unwrap();
}

impl FsStorage {
    fn list_len(&self) -> usize {
        std::fs::read_dir(self.dir()).unwrap().count()
    }
}

/// A step of the model test.
#[derive(Debug, Clone)]
enum Step {
    Store {
        queue: usize,
        len: usize,
        /// A paged (non-durable) message rather than a stored one.
        paged: bool,
    },
    /// Read back a live message, durable or paged, once everything is flushed.
    Read {
        pick: usize,
    },
    Count {
        pick: usize,
        count: u32,
    },
    Remove {
        pick: usize,
    },
    Flush,
    Compact,
    /// Fail the next write or sync.
    Fault {
        sync: bool,
    },
    /// A crash keeping this share (in 1/4) of each segment's unsynced bytes, then reopen.
    Crash {
        keep: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..3usize, 0..300usize, prop::bool::weighted(0.25))
            .prop_map(|(queue, len, paged)| Step::Store { queue, len, paged }),
        1 => any::<usize>().prop_map(|pick| Step::Read { pick }),
        1 => (any::<usize>(), 1..5u32).prop_map(|(pick, count)| Step::Count { pick, count }),
        3 => any::<usize>().prop_map(|pick| Step::Remove { pick }),
        3 => Just(Step::Flush),
        1 => Just(Step::Compact),
        1 => any::<bool>().prop_map(|sync| Step::Fault { sync }),
        1 => (0..=4usize).prop_map(|keep| Step::Crash { keep }),
    ]
}

const QUEUES: [&str; 3] = ["a", "b/c", "d"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// After any run, a crash and a reopen find the state after some prefix of the changes at
    /// least as long as every flush that succeeded: nothing synced is lost, nothing unasked for
    /// appears, and order is kept.
    #[test]
    fn crashes_keep_every_synced_change(steps in proptest::collection::vec(step(), 1..80)) {
        let config = small(700);
        let mut storage = MemStorage::new();
        let (mut j, _) = open(&storage, config);
        let mut refs: Vec<QueueRef> = QUEUES.iter().map(|q| j.queue(q)).collect();
        // Every change appended since the state was last known exactly, and that state.
        let mut known = State::new();
        let mut log: Vec<(usize, Change)> = Vec::new();
        let mut synced = 0usize;
        let mut next_id = 0u64;
        // Paged messages live in this run: (queue, id) → payload.
        let mut paged_live: BTreeMap<(usize, u64), Vec<u8>> = BTreeMap::new();
        for step in steps {
            let mut current = known.clone();
            for (q, c) in &log {
                apply(&mut current, QUEUES[*q], c);
            }
            let live: Vec<(usize, u64)> = current
                .iter()
                .flat_map(|(name, m)| {
                    let q = QUEUES.iter().position(|n| n == name).unwrap_or(0);
                    m.keys().map(move |id| (q, *id))
                })
                .collect();
            let removable: Vec<(usize, u64)> =
                live.iter().copied().chain(paged_live.keys().copied()).collect();
            match step {
                Step::Store { queue, len, paged } => {
                    let payload: Vec<u8> = (0..len).map(|i| (i as u64 + next_id) as u8).collect();
                    let c = if paged {
                        paged_live.insert((queue, next_id), payload.clone());
                        Change::Paged { id: MessageId(next_id), payload: Bytes::from(payload) }
                    } else {
                        stored(next_id, &payload)
                    };
                    next_id += 1;
                    j.append(refs[queue], &c).unwrap();
                    log.push((queue, c));
                }
                Step::Read { pick } if !removable.is_empty() && !j.is_dirty() => {
                    let (q, id) = removable[pick % removable.len()];
                    let want = paged_live.get(&(q, id)).cloned().unwrap_or_else(|| {
                        current[QUEUES[q]][&id].0.clone()
                    });
                    let got = j.read(refs[q], &[MessageId(id)]).unwrap();
                    prop_assert_eq!(got.len(), 1);
                    prop_assert_eq!(&got[0].1[..], &want[..]);
                }
                Step::Read { .. } => {}
                Step::Count { pick, count: n } if !live.is_empty() => {
                    let (q, id) = live[pick % live.len()];
                    let c = count(id, n);
                    j.append(refs[q], &c).unwrap();
                    log.push((q, c));
                }
                Step::Remove { pick } if !removable.is_empty() => {
                    let (q, id) = removable[pick % removable.len()];
                    paged_live.remove(&(q, id));
                    let c = removed(id);
                    j.append(refs[q], &c).unwrap();
                    log.push((q, c));
                }
                Step::Count { .. } | Step::Remove { .. } => {}
                Step::Flush => {
                    if j.flush().is_ok() {
                        synced = log.len();
                    }
                }
                Step::Compact => {
                    let _ = j.compact();
                }
                Step::Fault { sync } => {
                    storage.fail_once(if sync { Op::Sync } else { Op::Write }, ErrorKind::Other);
                }
                Step::Crash { keep } => {
                    storage.heal();
                    let crashed = storage.crash(|_, unsynced| unsynced * keep / 4);
                    // Sometimes with a load budget: what recovery leaves on disk reads back.
                    let budget = JournalConfig {
                        load_bytes_per_queue: if keep % 2 == 0 { u64::MAX } else { 400 },
                        ..config
                    };
                    let (mut j2, r) = open(&crashed, budget);
                    let found = state_with_paged(&mut j2, &r);
                    paged_live.clear();
                    let mut candidate = known.clone();
                    let mut matched = None;
                    for k in 0..=log.len() {
                        if k > 0 {
                            let (q, c) = &log[k - 1];
                            apply(&mut candidate, QUEUES[*q], c);
                        }
                        if k >= synced && candidate == found {
                            matched = Some(k);
                            break;
                        }
                    }
                    prop_assert!(
                        matched.is_some(),
                        "recovered {found:?}; synced {synced} of {} changes", log.len()
                    );
                    known = found;
                    log.clear();
                    synced = 0;
                    storage = crashed;
                    j = j2;
                    refs = QUEUES.iter().map(|q| j.queue(q)).collect();
                }
            }
        }
    }
}
