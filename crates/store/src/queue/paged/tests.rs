//! Paging against what it promises: memory bounded by the budget, order kept across memory and
//! disk, the journal told about every paged message, and reads that lose nothing silently.

use std::collections::HashMap;

use bytes::Bytes;
use sluice_codec::Encode;
use sluice_codec::messaging::{Body, Header, Message, ScannedMessage};

use super::super::*;
use crate::change::Change;

const NOW: i64 = 1_700_000_000_000;
const C: ConsumerId = ConsumerId(1);

fn message(n: u32, durable: bool, ttl: Option<u32>) -> Box<ScannedMessage> {
    let raw = Message {
        header: Some(Header {
            durable,
            ttl,
            ..Default::default()
        }),
        body: Body::Data(vec![Bytes::from(vec![n as u8; 100])]),
        ..Default::default()
    }
    .to_bytes()
    .freeze();
    Box::new(ScannedMessage::scan(raw).unwrap())
}

fn size() -> usize {
    message(0, true, None).raw().len()
}

/// A queue that pages past room for three messages, and a stand-in journal.
struct Fixture {
    q: Queue,
    disk: HashMap<MessageId, Bytes>,
}

impl Fixture {
    fn new(memory_messages: usize) -> Self {
        let policy = QueuePolicy {
            durable: true,
            paging: true,
            memory_max: memory_messages * size(),
            ..QueuePolicy::default()
        };
        Fixture {
            q: Queue::new(policy),
            disk: HashMap::new(),
        }
    }

    /// Takes the queue's changes into the journal; returns them.
    fn sync(&mut self) -> Vec<Change> {
        let changes: Vec<Change> = self.q.take_changes().collect();
        for c in &changes {
            match c {
                Change::Stored { id, payload } | Change::Paged { id, payload } => {
                    self.disk.insert(*id, payload.clone());
                }
                Change::Removed { id } => {
                    self.disk.remove(id);
                }
                Change::DeliveryCount { .. }
                | Change::Atomic { .. }
                | Change::Remembered { .. } => {}
            }
        }
        changes
    }

    /// Serves the queue's page-in request, if it has one; returns how many came back.
    fn serve_read(&mut self) -> usize {
        self.sync();
        let Some(ids) = self.q.poll_page_in() else {
            return 0;
        };
        let found: Vec<_> = ids
            .iter()
            .filter_map(|id| self.disk.get(id).map(|p| (*id, p.clone())))
            .map(|(id, p)| (id, ScannedMessage::scan(p).ok().map(Box::new)))
            .collect();
        let n = found.len();
        self.q.page_in(found, NOW);
        n
    }

    /// Delivers and accepts everything, paging in as needed; returns the bodies' first bytes.
    fn drain(&mut self) -> Vec<u8> {
        self.q.add_consumer(C).unwrap_or(());
        let mut got = Vec::new();
        for _ in 0..1000 {
            self.q.set_credit(C, 2).unwrap();
            let deliveries = self.q.next_deliveries(NOW);
            if deliveries.is_empty() && self.serve_read() == 0 {
                break;
            }
            for d in deliveries {
                let m = Message::decode(&d.payload).unwrap();
                if let Body::Data(data) = m.body {
                    got.push(data[0][0]);
                }
                self.q.settle(C, d.message, Outcome::Accepted).unwrap();
            }
        }
        self.sync();
        got
    }
}

#[test]
fn past_its_budget_a_queue_keeps_new_messages_on_disk_and_delivers_all_in_order() {
    let mut f = Fixture::new(3);
    for n in 0..10 {
        f.q.enqueue(message(n, n % 2 == 0, None), NOW).unwrap();
        assert!(f.q.memory_bytes() <= 3 * size(), "memory over the budget");
    }
    assert_eq!(f.q.depth(), 10);
    assert_eq!(f.q.paged(), 7);
    let bytes: usize = (0..10)
        .map(|n| message(n, n % 2 == 0, None).raw().len())
        .sum();
    assert_eq!(f.q.bytes(), bytes);
    let changes = f.sync();
    // Durable ones are stored; the paged one that is not durable is written as paged; the
    // ones in memory that are not durable are not written at all.
    let kinds: Vec<&str> = changes
        .iter()
        .map(|c| match c {
            Change::Stored { .. } => "stored",
            Change::Paged { .. } => "paged",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "stored", "stored", "paged", "stored", "paged", "stored", "paged", "stored", "paged"
        ]
    );
    assert_eq!(f.drain(), (0..10).collect::<Vec<u8>>());
    assert_eq!(f.q.depth(), 0);
    assert_eq!(f.q.bytes(), 0);
    assert!(
        f.disk.is_empty(),
        "every journaled message was logged removed"
    );
}

#[test]
fn arrivals_while_messages_are_paged_are_paged_too_so_order_holds() {
    let mut f = Fixture::new(2);
    for n in 0..4 {
        f.q.enqueue(message(n, true, None), NOW).unwrap();
    }
    f.q.add_consumer(C).unwrap();
    f.q.set_credit(C, 2).unwrap();
    let first: Vec<_> = f.q.next_deliveries(NOW);
    for d in first {
        f.q.settle(C, d.message, Outcome::Accepted).unwrap();
    }
    // Memory has room again, but two are paged: the next one joins them.
    f.q.enqueue(message(4, true, None), NOW).unwrap();
    assert_eq!(f.q.paged(), 3);
    assert_eq!(f.drain(), vec![2, 3, 4]);
}

#[test]
fn no_read_is_asked_for_without_credit_and_only_one_at_a_time() {
    let mut f = Fixture::new(1);
    for n in 0..5 {
        f.q.enqueue(message(n, true, None), NOW).unwrap();
    }
    f.q.add_consumer(C).unwrap();
    assert_eq!(f.q.poll_page_in(), None, "no consumer wants anything");
    f.q.set_credit(C, 10).unwrap();
    // The one in memory is available: above half the budget, nothing is read yet.
    assert_eq!(f.q.poll_page_in(), None);
    assert_eq!(f.q.next_deliveries(NOW).len(), 1);
    let ids = f.q.poll_page_in().unwrap();
    assert_eq!(ids.first(), Some(&MessageId(1)));
    assert_eq!(f.q.poll_page_in(), None, "a read is outstanding");
}

#[test]
fn a_message_the_read_does_not_find_is_dropped_and_counted() {
    let mut f = Fixture::new(1);
    for n in 0..3 {
        f.q.enqueue(message(n, true, None), NOW).unwrap();
    }
    f.sync();
    f.disk.remove(&MessageId(1));
    f.q.add_consumer(C).unwrap();
    f.q.set_credit(C, 10).unwrap();
    let _first = f.q.next_deliveries(NOW);
    assert_eq!(
        f.serve_read(),
        0,
        "the read asks for the oldest, which is gone"
    );
    assert_eq!(f.q.counters().dropped, 1);
    assert_eq!(f.q.paged(), 1);
    assert_eq!(f.serve_read(), 1, "the next read goes on from there");
    assert_eq!(f.q.available(), 1);
}

#[test]
fn a_message_that_expired_on_disk_leaves_when_read_back() {
    let mut f = Fixture::new(1);
    f.q.enqueue(message(0, true, None), NOW).unwrap();
    f.q.enqueue(message(1, true, Some(10)), NOW).unwrap();
    f.q.enqueue(message(2, true, None), NOW).unwrap();
    f.sync();
    f.q.add_consumer(C).unwrap();
    f.q.set_credit(C, 10).unwrap();
    let _first = f.q.next_deliveries(NOW);
    let ids = f.q.poll_page_in().unwrap();
    let found: Vec<_> = ids
        .iter()
        .map(|id| {
            let p = f.disk[id].clone();
            (*id, Some(Box::new(ScannedMessage::scan(p).unwrap())))
        })
        .collect();
    f.q.page_in(found, NOW + 20);
    assert_eq!(f.q.counters().dropped, 1, "expired with no expiry target");
    assert_eq!(f.q.available(), 1);
}

#[test]
fn the_brokers_memory_pressure_pages_every_new_message() {
    let mut f = Fixture::new(1000);
    f.q.enqueue(message(0, true, None), NOW).unwrap();
    f.q.set_memory_pressure(true);
    f.q.enqueue(message(1, false, None), NOW).unwrap();
    assert_eq!(f.q.paged(), 1);
    f.q.set_memory_pressure(false);
    assert_eq!(f.drain(), vec![0, 1]);
}

#[test]
fn a_queue_without_paging_never_pages() {
    let mut q = Queue::new(QueuePolicy {
        memory_max: 1,
        ..QueuePolicy::default()
    });
    q.set_memory_pressure(true);
    q.enqueue(message(0, true, None), NOW).unwrap();
    assert_eq!(q.paged(), 0);
    assert_eq!(q.memory_bytes(), size());
}

#[test]
fn recovered_references_follow_the_restored_messages() {
    let mut f = Fixture::new(1);
    let m0 = message(0, true, None);
    let m1 = message(1, true, None);
    f.disk.insert(MessageId(7), m1.raw().clone());
    f.q.restore(MessageId(3), m0, 0, NOW);
    f.q.restore_paged(MessageId(7), size() as u32, 2, 0);
    assert_eq!(f.q.depth(), 2);
    f.q.enqueue(message(2, true, None), NOW).unwrap();
    assert_eq!(f.q.paged(), 2, "a new message goes after the paged one");
    assert_eq!(f.drain(), vec![0, 1, 2]);
}

#[test]
fn dropping_the_oldest_makes_room_from_memory_then_from_disk() {
    let mut f = Fixture::new(2);
    f.q.set_policy(QueuePolicy {
        bytes_max: 4 * size(),
        ..*f.q.policy()
    });
    for n in 0..4 {
        f.q.enqueue(message(n, true, None), NOW).unwrap();
    }
    assert!(!f.q.has_room(size()));
    assert!(f.q.drop_oldest_for(3 * size()));
    assert_eq!(f.q.counters().dropped, 3);
    f.q.enqueue(message(4, true, None), NOW).unwrap();
    assert_eq!(f.drain(), vec![3, 4]);
}
