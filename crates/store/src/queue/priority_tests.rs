//! Priority: higher first, arrival order within a level, returned messages back at their place.

use bytes::Bytes;
use sluice_codec::Encode;
use sluice_codec::messaging::{Body, Header, Message, ScannedMessage};

use super::*;

const NOW: i64 = 1_700_000_000_000;
const A: ConsumerId = ConsumerId(1);

fn with_priority(priority: Option<u8>, body: &'static [u8]) -> ScannedMessage {
    let header = priority.map(|priority| Header {
        priority,
        ..Default::default()
    });
    let raw = Message {
        header,
        body: Body::Data(vec![Bytes::from_static(body)]),
        ..Default::default()
    }
    .to_bytes()
    .freeze();
    ScannedMessage::scan(raw).unwrap()
}

fn take_all(q: &mut Queue, credit: u32) -> Vec<MessageId> {
    q.set_credit(A, credit).unwrap();
    q.next_deliveries(NOW).iter().map(|d| d.message).collect()
}

#[test]
fn higher_priority_goes_first_and_arrival_order_holds_within_a_level() {
    let mut q = Queue::new(QueuePolicy::default());
    q.add_consumer(A).unwrap();
    let low = q.enqueue(with_priority(Some(1), b"low"), NOW).unwrap();
    let plain = q.enqueue(with_priority(None, b"plain"), NOW).unwrap();
    let high1 = q.enqueue(with_priority(Some(9), b"high1"), NOW).unwrap();
    let four = q.enqueue(with_priority(Some(4), b"four"), NOW).unwrap();
    let high2 = q.enqueue(with_priority(Some(200), b"high2"), NOW).unwrap();
    assert_eq!(
        q.available_ids().collect::<Vec<_>>(),
        vec![high1, high2, plain, four, low]
    );
    assert_eq!(take_all(&mut q, 2), vec![high1, high2]);
    assert_eq!(take_all(&mut q, 10), vec![plain, four, low]);
}

#[test]
fn a_returned_message_goes_back_to_its_place_within_its_level() {
    let mut q = Queue::new(QueuePolicy::default());
    q.add_consumer(A).unwrap();
    let h1 = q.enqueue(with_priority(Some(7), b"h1"), NOW).unwrap();
    let h2 = q.enqueue(with_priority(Some(7), b"h2"), NOW).unwrap();
    let l1 = q.enqueue(with_priority(Some(2), b"l1"), NOW).unwrap();
    assert_eq!(take_all(&mut q, 1), vec![h1]);
    let h3 = q.enqueue(with_priority(Some(7), b"h3"), NOW).unwrap();
    q.settle(A, h1, Outcome::Released).unwrap();
    assert_eq!(q.available_ids().collect::<Vec<_>>(), vec![h1, h2, h3, l1]);
    assert_eq!(take_all(&mut q, 2), vec![h1, h2]);
    // A consumer gone with them unsettled: both back ahead of the later one and of level 2.
    q.remove_consumer(A).unwrap();
    q.add_consumer(A).unwrap();
    assert_eq!(take_all(&mut q, 10), vec![h1, h2, h3, l1]);
}

#[test]
fn expiry_purge_and_drop_oldest_reach_every_level() {
    let mut q = Queue::new(QueuePolicy::default());
    let old_low = q.enqueue(with_priority(Some(0), b"a"), NOW).unwrap();
    q.enqueue(with_priority(Some(9), b"b"), NOW).unwrap();
    q.enqueue(with_priority(Some(5), b"c"), NOW).unwrap();
    let size = q.bytes() / 3;
    q.set_policy(QueuePolicy {
        bytes_max: q.bytes(),
        ..QueuePolicy::default()
    });
    assert!(q.drop_oldest_for(size));
    assert!(
        !q.available_ids().any(|id| id == old_low),
        "the oldest went, not the lowest"
    );
    assert_eq!(q.purge(), 2);
    assert_eq!(q.depth(), 0);
    assert_eq!(q.bytes(), 0);
}
