//! Consumer filters and message groups.

use std::sync::Arc;

use bytes::Bytes;
use sluice_codec::Encode;
use sluice_codec::messaging::{Body, Message, Properties, ScannedMessage};
use sluice_codec::types::Str;

use super::*;

const NOW: i64 = 1_700_000_000_000;
const A: ConsumerId = ConsumerId(1);
const B: ConsumerId = ConsumerId(2);
const C: ConsumerId = ConsumerId(3);

/// A message with `subject` (what the test filter reads) and `group-id`, either optional.
fn message(subject: Option<&str>, group: Option<&str>) -> ScannedMessage {
    let raw = Message {
        properties: Some(Properties {
            subject: subject.map(Str::from),
            group_id: group.map(Str::from),
            ..Default::default()
        }),
        body: Body::Data(vec![Bytes::from_static(b"m")]),
        ..Default::default()
    }
    .to_bytes()
    .freeze();
    ScannedMessage::scan(raw).unwrap()
}

/// Matches messages whose subject is the one given; counts its tests.
#[derive(Debug)]
struct Subject(&'static str, std::sync::atomic::AtomicUsize);

impl MessageFilter for Subject {
    fn matches(&self, message: &ScannedMessage) -> bool {
        self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let properties = message.properties().ok().flatten();
        properties
            .and_then(|p| p.subject)
            .is_some_and(|s| s.as_str() == self.0)
    }
}

fn subject(s: &'static str) -> Arc<Subject> {
    Arc::new(Subject(s, Default::default()))
}

fn filtered(q: &mut Queue, id: ConsumerId, filter: Arc<Subject>, credit: u32) {
    let options = ConsumerOptions {
        filter: Some(filter),
        ..Default::default()
    };
    q.add_consumer_with(id, options).unwrap();
    q.set_credit(id, credit).unwrap();
}

fn plain(q: &mut Queue, id: ConsumerId, credit: u32) {
    q.add_consumer(id).unwrap();
    q.set_credit(id, credit).unwrap();
}

fn to(q: &mut Queue) -> Vec<(ConsumerId, MessageId)> {
    q.next_deliveries(NOW)
        .iter()
        .map(|d| (d.consumer, d.message))
        .collect()
}

#[test]
fn two_filtered_consumers_split_a_queue_in_order() {
    let mut q = Queue::new(QueuePolicy::default());
    filtered(&mut q, A, subject("red"), 10);
    filtered(&mut q, B, subject("blue"), 10);
    let ids: Vec<MessageId> = ["red", "blue", "blue", "red", "red"]
        .iter()
        .map(|s| q.enqueue(message(Some(s), None), NOW).unwrap())
        .collect();
    let got = to(&mut q);
    let of = |c| {
        got.iter()
            .filter(|d| d.0 == c)
            .map(|d| d.1)
            .collect::<Vec<_>>()
    };
    assert_eq!(of(A), vec![ids[0], ids[3], ids[4]]);
    assert_eq!(of(B), vec![ids[1], ids[2]]);
}

#[test]
fn a_message_nobody_matches_stays_for_a_later_matching_consumer() {
    let mut q = Queue::new(QueuePolicy::default());
    filtered(&mut q, A, subject("red"), 10);
    let green = q.enqueue(message(Some("green"), None), NOW).unwrap();
    let red = q.enqueue(message(Some("red"), None), NOW).unwrap();
    assert_eq!(to(&mut q), vec![(A, red)]);
    assert_eq!(q.available_ids().collect::<Vec<_>>(), vec![green]);
    filtered(&mut q, B, subject("green"), 10);
    assert_eq!(to(&mut q), vec![(B, green)]);
}

#[test]
fn a_walk_past_unmatched_messages_is_bounded_and_resumes() {
    let mut q = Queue::new(QueuePolicy::default());
    let filter = subject("red");
    filtered(&mut q, A, filter.clone(), 10);
    for _ in 0..(2 * DISPATCH_SKIPS_MAX + 10) {
        q.enqueue(message(Some("green"), None), NOW).unwrap();
    }
    let red = q.enqueue(message(Some("red"), None), NOW).unwrap();
    assert!(to(&mut q).is_empty());
    assert!(q.dispatch_pending(), "stopped at the limit");
    assert_eq!(
        filter.1.load(std::sync::atomic::Ordering::Relaxed),
        DISPATCH_SKIPS_MAX
    );
    assert!(to(&mut q).is_empty());
    assert_eq!(to(&mut q), vec![(A, red)]);
    assert!(!q.dispatch_pending());
}

#[test]
fn a_group_stays_with_one_consumer_while_it_has_messages() {
    let mut q = Queue::new(QueuePolicy::default());
    for c in [A, B, C] {
        plain(&mut q, c, 10);
    }
    // Interleaved groups x, y and ungrouped messages.
    let order = [
        Some("x"),
        Some("y"),
        None,
        Some("x"),
        Some("y"),
        Some("x"),
        None,
    ];
    let ids: Vec<MessageId> = order
        .iter()
        .map(|g| q.enqueue(message(None, *g), NOW).unwrap())
        .collect();
    let got = to(&mut q);
    assert_eq!(got.len(), 7);
    let consumer_of = |id: MessageId| got.iter().find(|d| d.1 == id).map(|d| d.0);
    let x = consumer_of(ids[0]);
    assert_eq!(consumer_of(ids[3]), x);
    assert_eq!(consumer_of(ids[5]), x);
    let y = consumer_of(ids[1]);
    assert_eq!(consumer_of(ids[4]), y);
    assert_ne!(x, y);
    assert_eq!(q.groups.len(), 2);
    for (c, id) in got {
        q.settle(c, id, Outcome::Accepted).unwrap();
    }
    assert!(q.groups.is_empty(), "no messages held, no groups");
}

#[test]
fn a_groups_messages_wait_for_its_consumers_credit_while_others_flow() {
    let mut q = Queue::new(QueuePolicy::default());
    plain(&mut q, A, 1);
    plain(&mut q, B, 0);
    let x1 = q.enqueue(message(None, Some("x")), NOW).unwrap();
    let x2 = q.enqueue(message(None, Some("x")), NOW).unwrap();
    let other = q.enqueue(message(None, None), NOW).unwrap();
    assert_eq!(to(&mut q), vec![(A, x1)]);
    q.set_credit(B, 5).unwrap();
    assert_eq!(to(&mut q), vec![(B, other)], "x2 waits for A");
    // Released, x1 returns ahead of x2, and both go to A in order.
    q.settle(A, x1, Outcome::Released).unwrap();
    q.set_credit(A, 5).unwrap();
    assert_eq!(to(&mut q), vec![(A, x1), (A, x2)]);
}

#[test]
fn a_group_moves_on_when_its_consumer_leaves_and_keeps_its_order() {
    let mut q = Queue::new(QueuePolicy::default());
    plain(&mut q, A, 1);
    plain(&mut q, B, 0);
    let x1 = q.enqueue(message(None, Some("x")), NOW).unwrap();
    let x2 = q.enqueue(message(None, Some("x")), NOW).unwrap();
    assert_eq!(to(&mut q), vec![(A, x1)]);
    q.remove_consumer(A).unwrap();
    q.set_credit(B, 5).unwrap();
    assert_eq!(to(&mut q), vec![(B, x1), (B, x2)]);
    assert_eq!(
        q.groups.get("x").map(|g| (g.consumer, g.held)),
        Some((Some(B), 2))
    );
}

#[test]
fn a_group_stays_with_its_filtered_consumer_until_it_leaves() {
    let mut q = Queue::new(QueuePolicy::default());
    filtered(&mut q, A, subject("red"), 10);
    plain(&mut q, B, 10);
    let red = q.enqueue(message(Some("red"), Some("g")), NOW).unwrap();
    let blue = q.enqueue(message(Some("blue"), Some("g")), NOW).unwrap();
    // The group went to A with its first message; its blue one, which A's filter refuses,
    // waits while the group is A's: until A leaves (or the group has nothing else held).
    assert_eq!(to(&mut q), vec![(A, red)]);
    q.settle(A, red, Outcome::Accepted).unwrap();
    assert!(to(&mut q).is_empty());
    q.remove_consumer(A).unwrap();
    assert_eq!(to(&mut q), vec![(B, blue)]);
}
