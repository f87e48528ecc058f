//! Held messages: the redelivery delay and scheduled delivery.

use bytes::Bytes;
use sluice_codec::Encode;
use sluice_codec::messaging::{Body, Header, Message, ScannedMessage};
use sluice_codec::types::{Symbol, Timestamp, Value};

use super::*;

const NOW: i64 = 1_700_000_000_000;
const A: ConsumerId = ConsumerId(1);
const FAILED: Outcome = Outcome::Modified {
    delivery_failed: true,
    undeliverable_here: false,
};

fn annotated(annotations: Vec<(&'static str, Value)>, ttl: Option<u32>) -> ScannedMessage {
    let message_annotations = (!annotations.is_empty()).then(|| {
        annotations
            .into_iter()
            .map(|(k, v)| (Value::Symbol(Symbol::from_static(k)), v))
            .collect()
    });
    let raw = Message {
        header: ttl.map(|ttl| Header {
            ttl: Some(ttl),
            ..Default::default()
        }),
        message_annotations,
        body: Body::Data(vec![Bytes::from_static(b"m")]),
        ..Default::default()
    }
    .to_bytes()
    .freeze();
    ScannedMessage::scan(raw).unwrap()
}

fn plain() -> ScannedMessage {
    annotated(Vec::new(), None)
}

fn delivered(q: &mut Queue, now_ms: i64) -> Vec<MessageId> {
    q.next_deliveries(now_ms)
        .iter()
        .map(|d| d.message)
        .collect()
}

fn delayed_queue() -> Queue {
    let mut q = Queue::new(QueuePolicy {
        redelivery_delay_ms: 100,
        redelivery_multiplier: 2.0,
        redelivery_delay_max_ms: Some(300),
        ..QueuePolicy::default()
    });
    q.add_consumer(A).unwrap();
    q.set_credit(A, 100).unwrap();
    q
}

#[test]
fn a_failed_delivery_waits_the_delay_growing_by_the_multiplier_up_to_the_cap() {
    let mut q = delayed_queue();
    let id = q.enqueue(plain(), NOW).unwrap();
    let mut at = NOW;
    for wait in [100, 200, 300, 300] {
        assert_eq!(delivered(&mut q, at), vec![id]);
        q.settle_at(A, id, FAILED, at).unwrap();
        assert_eq!(q.next_due_ms(), Some(at + wait));
        assert_eq!((q.depth(), q.held(), q.available()), (1, 1, 0));
        assert!(
            delivered(&mut q, at + wait - 1).is_empty(),
            "held until due"
        );
        at += wait;
    }
    assert_eq!(delivered(&mut q, at), vec![id]);
    assert_eq!(q.held(), 0);
}

#[test]
fn released_is_not_an_attempt_and_waits_no_delay() {
    let mut q = delayed_queue();
    let id = q.enqueue(plain(), NOW).unwrap();
    assert_eq!(delivered(&mut q, NOW), vec![id]);
    q.settle_at(A, id, Outcome::Released, NOW).unwrap();
    assert_eq!(q.next_due_ms(), None);
    assert_eq!(delivered(&mut q, NOW), vec![id]);
}

#[test]
fn a_consumer_gone_with_a_delivery_delays_it_and_order_returns_when_due() {
    let mut q = delayed_queue();
    let first = q.enqueue(plain(), NOW).unwrap();
    q.set_credit(A, 1).unwrap();
    assert_eq!(delivered(&mut q, NOW), vec![first]);
    q.remove_consumer_at(A, NOW + 10).unwrap();
    let second = q.enqueue(plain(), NOW + 20).unwrap();
    q.add_consumer(A).unwrap();
    q.set_credit(A, 1).unwrap();
    assert_eq!(
        delivered(&mut q, NOW + 20),
        vec![second],
        "the later one flows"
    );
    q.set_credit(A, 10).unwrap();
    assert_eq!(q.release_due(NOW + 110), 1);
    assert_eq!(delivered(&mut q, NOW + 110), vec![first]);
}

#[test]
fn a_scheduled_message_is_held_until_its_time_or_delay() {
    let mut q = Queue::new(QueuePolicy::default());
    q.add_consumer(A).unwrap();
    q.set_credit(A, 10).unwrap();
    let at = q
        .enqueue(
            annotated(
                vec![(
                    "x-opt-delivery-time",
                    Value::Timestamp(Timestamp(NOW + 500)),
                )],
                None,
            ),
            NOW,
        )
        .unwrap();
    let after = q
        .enqueue(
            annotated(vec![("x-opt-delivery-delay", Value::Long(200))], None),
            NOW,
        )
        .unwrap();
    let both = q
        .enqueue(
            annotated(
                vec![
                    ("x-opt-delivery-delay", Value::Long(10)),
                    ("x-opt-delivery-time", Value::Long(NOW + 300)),
                ],
                None,
            ),
            NOW,
        )
        .unwrap();
    let now = q.enqueue(plain(), NOW).unwrap();
    assert_eq!(q.depth(), 4);
    assert_eq!(q.stats().depth, 4);
    assert_eq!(delivered(&mut q, NOW), vec![now]);
    assert_eq!(q.next_due_ms(), Some(NOW + 200));
    assert_eq!(delivered(&mut q, NOW + 200), vec![after]);
    assert_eq!(delivered(&mut q, NOW + 299), vec![]);
    assert_eq!(
        delivered(&mut q, NOW + 300),
        vec![both],
        "the time wins over the delay"
    );
    assert_eq!(delivered(&mut q, NOW + 500), vec![at]);
}

#[test]
fn a_held_message_may_expire_and_purge_removes_held_ones() {
    let mut q = Queue::new(QueuePolicy {
        expiry_target: true,
        ..QueuePolicy::default()
    });
    let expiring = q
        .enqueue(
            annotated(
                vec![("x-opt-delivery-delay", Value::Long(1_000))],
                Some(100),
            ),
            NOW,
        )
        .unwrap();
    q.enqueue(
        annotated(vec![("x-opt-delivery-delay", Value::Long(1_000))], None),
        NOW,
    )
    .unwrap();
    assert_eq!(q.next_expiry_ms(), Some(NOW + 100));
    assert_eq!(q.next_timer_ms(), Some(NOW + 100));
    assert_eq!(q.expire_messages(NOW + 100), 1);
    let forward = q.poll_forward().unwrap();
    assert_eq!(
        (forward.id, forward.reason),
        (expiring, ForwardReason::Expired)
    );
    assert_eq!(q.depth(), 1);
    assert_eq!(q.purge(), 1);
    assert_eq!((q.depth(), q.bytes(), q.next_due_ms()), (0, 0, None));
    assert_eq!(q.counters().dropped, 1);
}

#[test]
fn a_durable_scheduled_message_is_journaled_at_enqueue() {
    let mut q = Queue::new(QueuePolicy {
        durable: true,
        ..QueuePolicy::default()
    });
    let raw = Message {
        header: Some(Header {
            durable: true,
            ..Default::default()
        }),
        message_annotations: Some(vec![(
            Value::Symbol(Symbol::from_static("x-opt-delivery-delay")),
            Value::Long(50),
        )]),
        body: Body::Data(vec![Bytes::from_static(b"d")]),
        ..Default::default()
    }
    .to_bytes()
    .freeze();
    let id = q.enqueue(ScannedMessage::scan(raw).unwrap(), NOW).unwrap();
    let changes: Vec<Change> = q.take_changes().collect();
    assert!(matches!(changes.as_slice(), [Change::Stored { id: stored, .. }] if *stored == id));
    assert_eq!(q.held(), 1);
}
