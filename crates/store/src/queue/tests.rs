use bytes::Bytes;
use sluice_codec::Encode;
use sluice_codec::messaging::{Body, Header, Message, Properties, ScannedMessage};
use sluice_codec::transport::conditions;
use sluice_codec::types::Timestamp;

use super::*;
use crate::policy::TtlPolicy;

const NOW: i64 = 1_700_000_000_000;
const A: ConsumerId = ConsumerId(1);
const B: ConsumerId = ConsumerId(2);
const FAILED: Outcome = Outcome::Modified {
    delivery_failed: true,
    undeliverable_here: false,
};

fn encoded(header: Option<Header>, properties: Option<Properties>, body: &'static [u8]) -> Bytes {
    Message {
        header,
        properties,
        body: Body::Data(vec![Bytes::from_static(body)]),
        ..Default::default()
    }
    .to_bytes()
    .freeze()
}

fn msg(body: &'static [u8]) -> ScannedMessage {
    ScannedMessage::scan(encoded(None, None, body)).unwrap()
}

fn msg_with_ttl(body: &'static [u8], ttl: u32) -> ScannedMessage {
    let header = Header {
        ttl: Some(ttl),
        ..Default::default()
    };
    ScannedMessage::scan(encoded(Some(header), None, body)).unwrap()
}

fn body_of(payload: &Bytes) -> Bytes {
    match Message::decode(payload).unwrap().body {
        Body::Data(mut data) => data.remove(0),
        other => panic!("unexpected body {other:?}"),
    }
}

fn header_of(payload: &Bytes) -> Header {
    Message::decode(payload).unwrap().header.unwrap_or_default()
}

/// A queue with consumers attached, each with `credit`.
fn queue(policy: QueuePolicy, consumers: &[ConsumerId], credit: u32) -> Queue {
    let mut q = Queue::new(policy);
    for &c in consumers {
        q.add_consumer(c).unwrap();
        q.set_credit(c, credit).unwrap();
    }
    q
}

fn bodies(deliveries: &[Delivery]) -> Vec<(ConsumerId, Bytes)> {
    deliveries
        .iter()
        .map(|d| (d.consumer, body_of(&d.payload)))
        .collect()
}

/// Hands `id` to consumer A, settles it `modified{delivery-failed}`, and hands it out again.
fn fail_and_redeliver(q: &mut Queue, id: MessageId) -> Vec<Delivery> {
    q.next_deliveries(NOW);
    q.settle(A, id, FAILED).unwrap();
    q.set_credit(A, 1).unwrap();
    q.next_deliveries(NOW)
}

fn assert_conserved(q: &Queue) {
    let c = q.counters();
    assert_eq!(
        c.enqueued,
        c.acknowledged + c.dead_lettered + c.expired + c.dropped + c.moved + q.depth() as u64,
        "{c:?}"
    );
}

#[test]
fn a_first_delivery_is_the_bytes_that_arrived() {
    let mut q = queue(QueuePolicy::default(), &[A], 10);
    let m = msg(b"one");
    let raw = m.raw().clone();
    let id = q.enqueue(m, NOW).unwrap();
    let out = q.next_deliveries(NOW);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].consumer, A);
    assert_eq!(out[0].message, id);
    assert_eq!(out[0].payload, raw);
    assert_eq!(out[0].payload.as_ptr(), raw.as_ptr(), "not copied");
    assert_eq!((q.available(), q.in_flight(), q.depth()), (0, 1, 1));
    assert_eq!(q.counters().delivered, 1);
    assert_eq!(q.bytes(), raw.len());
}

#[test]
fn nothing_is_handed_out_without_credit_and_credit_is_spent() {
    let mut q = queue(QueuePolicy::default(), &[A], 0);
    q.enqueue(msg(b"1"), NOW).unwrap();
    q.enqueue(msg(b"2"), NOW).unwrap();
    assert!(q.next_deliveries(NOW).is_empty());
    q.set_credit(A, 1).unwrap();
    assert_eq!(q.next_deliveries(NOW).len(), 1);
    assert_eq!(q.credit(A), Some(0));
    assert!(q.next_deliveries(NOW).is_empty());
    assert_eq!(q.available(), 1);
}

#[test]
fn competing_consumers_are_served_round_robin_by_credit() {
    let mut q = queue(QueuePolicy::default(), &[A, B], 2);
    for body in [&b"1"[..], b"2", b"3", b"4", b"5"] {
        q.enqueue(msg(body), NOW).unwrap();
    }
    let out = bodies(&q.next_deliveries(NOW));
    assert_eq!(
        out,
        vec![
            (A, Bytes::from_static(b"1")),
            (B, Bytes::from_static(b"2")),
            (A, Bytes::from_static(b"3")),
            (B, Bytes::from_static(b"4")),
        ]
    );
    // Only B gets more credit: it takes the rest.
    q.set_credit(B, 5).unwrap();
    assert_eq!(
        bodies(&q.next_deliveries(NOW)),
        vec![(B, Bytes::from_static(b"5"))]
    );
}

#[test]
fn accepted_removes_the_message() {
    let mut q = queue(QueuePolicy::default(), &[A], 1);
    let id = q.enqueue(msg(b"x"), NOW).unwrap();
    q.next_deliveries(NOW);
    q.settle(A, id, Outcome::Accepted).unwrap();
    assert_eq!((q.depth(), q.bytes()), (0, 0));
    assert_eq!(q.counters().acknowledged, 1);
    assert_eq!(q.unsettled(A).count(), 0);
    assert_conserved(&q);
}

#[test]
fn released_returns_to_its_place_without_counting_a_delivery() {
    let mut q = queue(QueuePolicy::default(), &[A], 1);
    let first = q.enqueue(msg(b"1"), NOW).unwrap();
    q.enqueue(msg(b"2"), NOW).unwrap();
    q.next_deliveries(NOW);
    q.settle(A, first, Outcome::Released).unwrap();
    assert_eq!(q.available_ids().next(), Some(first), "back at the head");
    q.set_credit(A, 1).unwrap();
    let out = q.next_deliveries(NOW);
    assert_eq!(out[0].message, first);
    let header = header_of(&out[0].payload);
    assert_eq!(header.delivery_count, 0);
    assert!(!header.first_acquirer);
    assert_eq!(q.counters().released, 1);
}

#[test]
fn an_unsent_delivery_goes_out_again_as_it_arrived() {
    let mut q = queue(QueuePolicy::default(), &[A], 1);
    let raw = encoded(None, None, b"1");
    let first = q
        .enqueue(ScannedMessage::scan(raw.clone()).unwrap(), NOW)
        .unwrap();
    q.enqueue(msg(b"2"), NOW).unwrap();
    assert_eq!(q.next_deliveries(NOW)[0].payload, raw);
    assert_eq!(
        q.unsend(B, first),
        Err(StoreError::NotInFlight {
            consumer: B,
            message: first
        })
    );
    q.unsend(A, first).unwrap();
    assert_eq!(q.available_ids().next(), Some(first), "back at the head");
    q.set_credit(A, 1).unwrap();
    let out = q.next_deliveries(NOW);
    assert_eq!(out[0].message, first);
    assert_eq!(
        out[0].payload, raw,
        "the bytes it came in, not a new header"
    );
    assert_eq!(q.counters().delivered, 1);
    assert_eq!(q.counters().released, 0);
    // Once it was really delivered, a later unsent attempt keeps first-acquirer false.
    q.settle(A, first, Outcome::Released).unwrap();
    q.set_credit(A, 1).unwrap();
    q.next_deliveries(NOW);
    q.unsend(A, first).unwrap();
    q.set_credit(A, 1).unwrap();
    let again = q.next_deliveries(NOW);
    assert!(!header_of(&again[0].payload).first_acquirer);
}

#[test]
fn modified_delivery_failed_raises_the_count_in_the_redelivered_header() {
    let mut q = queue(QueuePolicy::default(), &[A], 1);
    let original = ScannedMessage::scan(encoded(
        Some(Header {
            durable: true,
            first_acquirer: true,
            ..Default::default()
        }),
        Some(Properties {
            subject: Some("s".into()),
            ..Default::default()
        }),
        b"payload",
    ))
    .unwrap();
    let bare = original.bare();
    let id = q.enqueue(original, NOW).unwrap();
    let out = fail_and_redeliver(&mut q, id);
    let header = header_of(&out[0].payload);
    assert_eq!(header.delivery_count, 1);
    assert!(!header.first_acquirer);
    assert!(header.durable, "other header fields kept");
    assert_eq!(
        ScannedMessage::scan(out[0].payload.clone()).unwrap().bare(),
        bare
    );
    assert_eq!(q.counters().modified, 1);
}

#[test]
fn a_message_without_a_header_gets_one_when_redelivered() {
    let mut q = queue(QueuePolicy::default(), &[A], 1);
    let id = q.enqueue(msg(b"x"), NOW).unwrap();
    let out = fail_and_redeliver(&mut q, id);
    assert_eq!(header_of(&out[0].payload).delivery_count, 1);
    assert_eq!(body_of(&out[0].payload), Bytes::from_static(b"x"));
}

#[test]
fn the_count_continues_from_the_header_that_arrived() {
    let mut q = queue(QueuePolicy::default(), &[A], 1);
    let header = Header {
        delivery_count: 3,
        ..Default::default()
    };
    let id = q
        .enqueue(
            ScannedMessage::scan(encoded(Some(header), None, b"x")).unwrap(),
            NOW,
        )
        .unwrap();
    q.next_deliveries(NOW);
    q.remove_consumer(A).unwrap();
    q.add_consumer(B).unwrap();
    q.set_credit(B, 1).unwrap();
    let out = q.next_deliveries(NOW);
    assert_eq!(out[0].message, id);
    assert_eq!(header_of(&out[0].payload).delivery_count, 4);
}

#[test]
fn modified_undeliverable_here_is_not_offered_to_that_consumer_again() {
    let mut q = queue(QueuePolicy::default(), &[A], 1);
    let refused = q.enqueue(msg(b"1"), NOW).unwrap();
    q.enqueue(msg(b"2"), NOW).unwrap();
    q.next_deliveries(NOW);
    let here = Outcome::Modified {
        delivery_failed: false,
        undeliverable_here: true,
    };
    q.settle(A, refused, here).unwrap();
    q.set_credit(A, 5).unwrap();
    // A skips the refused message and gets the next one.
    assert_eq!(
        bodies(&q.next_deliveries(NOW)),
        vec![(A, Bytes::from_static(b"2"))]
    );
    assert_eq!(q.available_ids().collect::<Vec<_>>(), vec![refused]);
    // Another consumer gets it, its delivery count unchanged.
    q.add_consumer(B).unwrap();
    q.set_credit(B, 1).unwrap();
    let out = q.next_deliveries(NOW);
    assert_eq!((out[0].consumer, out[0].message), (B, refused));
    assert_eq!(header_of(&out[0].payload).delivery_count, 0);
}

#[test]
fn rejected_goes_to_the_dead_letter_target_or_is_dropped_and_counted() {
    for dead_letter_target in [true, false] {
        let policy = QueuePolicy {
            dead_letter_target,
            ..Default::default()
        };
        let mut q = queue(policy, &[A], 1);
        let id = q.enqueue(msg(b"bad"), NOW).unwrap();
        q.next_deliveries(NOW);
        q.settle(A, id, Outcome::Rejected).unwrap();
        if dead_letter_target {
            let forward = q.poll_forward().unwrap();
            assert_eq!((forward.id, forward.reason), (id, ForwardReason::Rejected));
            assert!(!forward.reason.is_expiry());
            assert_eq!(body_of(&forward.payload), Bytes::from_static(b"bad"));
        }
        assert_eq!(q.poll_forward(), None);
        let c = q.counters();
        let (forwarded, dropped) = if dead_letter_target { (1, 0) } else { (0, 1) };
        assert_eq!(
            (c.rejected, c.dead_lettered, c.dropped),
            (1, forwarded, dropped)
        );
        assert_eq!((q.depth(), q.bytes()), (0, 0));
        assert_conserved(&q);
    }
}

#[test]
fn a_removed_consumers_deliveries_are_requeued_at_the_head_in_order() {
    let mut q = queue(QueuePolicy::default(), &[A], 3);
    let ids: Vec<MessageId> = [&b"1"[..], b"2", b"3", b"4"]
        .into_iter()
        .map(|body| q.enqueue(msg(body), NOW).unwrap())
        .collect();
    q.next_deliveries(NOW);
    assert_eq!(q.unsettled(A).collect::<Vec<_>>(), ids[..3]);
    q.settle(A, ids[1], Outcome::Accepted).unwrap();
    q.remove_consumer(A).unwrap();
    assert_eq!(
        q.available_ids().collect::<Vec<_>>(),
        vec![ids[0], ids[2], ids[3]]
    );
    assert_eq!(q.in_flight(), 0);
    q.add_consumer(B).unwrap();
    q.set_credit(B, 10).unwrap();
    let out = q.next_deliveries(NOW);
    let order: Vec<MessageId> = out.iter().map(|d| d.message).collect();
    assert_eq!(order, vec![ids[0], ids[2], ids[3]]);
    for d in &out[..2] {
        let header = header_of(&d.payload);
        assert_eq!(header.delivery_count, 1);
        assert!(!header.first_acquirer);
    }
    assert_eq!(
        out[2].payload,
        encoded(None, None, b"4"),
        "never delivered: untouched"
    );
    assert_conserved(&q);
}

#[test]
fn removing_a_consumer_keeps_round_robin_going() {
    let c = ConsumerId(3);
    let mut q = queue(QueuePolicy::default(), &[A, B, c], 10);
    for body in [&b"1"[..], b"2"] {
        q.enqueue(msg(body), NOW).unwrap();
    }
    let out = q.next_deliveries(NOW);
    assert_eq!((out[0].consumer, out[1].consumer), (A, B));
    q.remove_consumer(A).unwrap();
    for body in [&b"3"[..], b"4"] {
        q.enqueue(msg(body), NOW).unwrap();
    }
    let out = q.next_deliveries(NOW);
    let who: Vec<ConsumerId> = out.iter().map(|d| d.consumer).collect();
    // A's message 1 came back first; the cursor continues after B.
    assert_eq!(who, vec![c, B, c]);
}

#[test]
fn an_expired_message_is_never_delivered_and_goes_to_the_expiry_target() {
    let policy = QueuePolicy {
        expiry_target: true,
        ..Default::default()
    };
    let mut q = queue(policy, &[A], 10);
    let old = q.enqueue(msg_with_ttl(b"old", 100), NOW).unwrap();
    q.enqueue(msg(b"fresh"), NOW).unwrap();
    let out = q.next_deliveries(NOW + 100);
    assert_eq!(bodies(&out), vec![(A, Bytes::from_static(b"fresh"))]);
    let forward = q.poll_forward().unwrap();
    assert_eq!((forward.id, forward.reason), (old, ForwardReason::Expired));
    assert!(forward.reason.is_expiry());
    assert_eq!(q.counters().expired, 1);
    assert_eq!(q.credit(A), Some(9), "no credit spent on it");
    assert_conserved(&q);
}

#[test]
fn an_expired_message_without_an_expiry_target_is_dropped() {
    let mut q = queue(QueuePolicy::default(), &[A], 10);
    q.enqueue(msg_with_ttl(b"old", 100), NOW).unwrap();
    assert!(q.next_deliveries(NOW + 101).is_empty());
    assert_eq!(q.poll_forward(), None);
    let c = q.counters();
    assert_eq!((c.expired, c.dropped), (0, 1));
    assert_eq!((q.depth(), q.bytes()), (0, 0));
}

#[test]
fn not_yet_expired_messages_are_delivered() {
    let mut q = queue(QueuePolicy::default(), &[A], 10);
    q.enqueue(msg_with_ttl(b"x", 100), NOW).unwrap();
    assert_eq!(q.next_deliveries(NOW + 99).len(), 1);
}

#[test]
fn absolute_expiry_time_expires_a_message() {
    let mut q = queue(QueuePolicy::default(), &[A], 10);
    let properties = Properties {
        absolute_expiry_time: Some(Timestamp(NOW + 10)),
        ..Default::default()
    };
    let m = ScannedMessage::scan(encoded(None, Some(properties), b"x")).unwrap();
    q.enqueue(m, NOW).unwrap();
    assert!(q.next_deliveries(NOW + 10).is_empty());
    assert_eq!(q.counters().dropped, 1);
}

#[test]
fn the_ttl_policy_bounds_message_lifetimes() {
    let policy = QueuePolicy {
        ttl: TtlPolicy {
            minimum_ms: Some(1_000),
            maximum_ms: Some(5_000),
        },
        ..Default::default()
    };
    let mut q = Queue::new(policy);
    q.enqueue(msg(b"no ttl"), NOW).unwrap();
    q.enqueue(msg_with_ttl(b"short", 10), NOW).unwrap();
    q.enqueue(msg_with_ttl(b"long", 60_000), NOW).unwrap();
    assert_eq!(
        q.expire_messages(NOW + 999),
        0,
        "minimum raised the short TTL"
    );
    assert_eq!(q.expire_messages(NOW + 1_000), 1);
    assert_eq!(
        q.expire_messages(NOW + 5_000),
        2,
        "maximum for none and for long"
    );
    assert_eq!(q.depth(), 0);
}

#[test]
fn the_expiry_scan_works_without_credit_and_spares_in_flight_messages() {
    let mut q = queue(QueuePolicy::default(), &[A], 1);
    let taken = q.enqueue(msg_with_ttl(b"taken", 10), NOW).unwrap();
    q.enqueue(msg_with_ttl(b"waiting", 10), NOW).unwrap();
    q.next_deliveries(NOW);
    assert_eq!(q.expire_messages(NOW + 10), 1);
    assert_eq!(q.in_flight(), 1);
    // Released after its expiry: it expires instead of going out again.
    q.settle(A, taken, Outcome::Released).unwrap();
    q.set_credit(A, 1).unwrap();
    assert!(q.next_deliveries(NOW + 10).is_empty());
    assert_eq!(q.counters().dropped, 2);
    assert_conserved(&q);
}

#[test]
fn a_forwarded_message_does_not_carry_its_expiry_along() {
    let mut q = queue(QueuePolicy::default(), &[A], 1);
    q.enqueue_forwarded(msg_with_ttl(b"dead", 10), NOW).unwrap();
    assert_eq!(q.expire_messages(NOW + 1_000_000), 0);
    assert_eq!(q.next_deliveries(NOW + 1_000_000).len(), 1);
}

#[test]
fn the_message_limit_refuses_enqueue() {
    let policy = QueuePolicy {
        messages_max: 2,
        ..Default::default()
    };
    let mut q = queue(policy, &[A], 1);
    let first = q.enqueue(msg(b"1"), NOW).unwrap();
    q.enqueue(msg(b"2"), NOW).unwrap();
    q.next_deliveries(NOW);
    let err = q.enqueue(msg(b"3"), NOW).unwrap_err();
    assert_eq!(err, StoreError::DepthLimit { messages_max: 2 });
    assert_eq!(err.condition(), conditions::RESOURCE_LIMIT_EXCEEDED);
    assert_eq!(q.counters().enqueued, 2);
    q.settle(A, first, Outcome::Accepted).unwrap();
    q.enqueue(msg(b"3"), NOW).unwrap();
}

#[test]
fn the_byte_limit_refuses_enqueue() {
    let size = msg(b"12345678").raw().len();
    let policy = QueuePolicy {
        bytes_max: 2 * size,
        ..Default::default()
    };
    let mut q = Queue::new(policy);
    q.enqueue(msg(b"12345678"), NOW).unwrap();
    q.enqueue(msg(b"12345678"), NOW).unwrap();
    assert_eq!(q.bytes(), 2 * size);
    let err = q.enqueue(msg(b"1"), NOW).unwrap_err();
    assert!(matches!(err, StoreError::BytesLimit { bytes_max, .. } if bytes_max == 2 * size));
    assert_eq!(err.condition(), conditions::RESOURCE_LIMIT_EXCEEDED);
    assert!(err.to_string().contains("queue full"), "{err}");
}

#[test]
fn past_the_redelivery_limit_a_message_is_dead_lettered() {
    let policy = QueuePolicy {
        delivery_attempts_max: Some(2),
        dead_letter_target: true,
        ..Default::default()
    };
    let mut q = queue(policy, &[A], 10);
    let id = q.enqueue(msg(b"poison"), NOW).unwrap();
    q.next_deliveries(NOW);
    q.settle(A, id, FAILED).unwrap();
    assert_eq!(q.poll_forward(), None, "one failure is below the limit");
    q.next_deliveries(NOW);
    q.settle(A, id, FAILED).unwrap();
    let forward = q.poll_forward().unwrap();
    assert_eq!(forward.reason, ForwardReason::DeliveryAttemptsExceeded);
    assert_eq!(header_of(&forward.payload).delivery_count, 2);
    assert_eq!(q.counters().dead_lettered, 1);
    assert_eq!(q.depth(), 0);
    assert_conserved(&q);
}

#[test]
fn consumer_loss_counts_toward_the_redelivery_limit_and_drops_without_a_target() {
    let policy = QueuePolicy {
        delivery_attempts_max: Some(1),
        ..Default::default()
    };
    let mut q = queue(policy, &[A], 1);
    q.enqueue(msg(b"x"), NOW).unwrap();
    q.next_deliveries(NOW);
    q.remove_consumer(A).unwrap();
    assert_eq!(q.poll_forward(), None);
    assert_eq!(q.counters().dropped, 1);
    assert_eq!((q.depth(), q.bytes()), (0, 0));
}

#[test]
fn released_never_reaches_the_redelivery_limit() {
    let policy = QueuePolicy {
        delivery_attempts_max: Some(1),
        ..Default::default()
    };
    let mut q = queue(policy, &[A], 10);
    let id = q.enqueue(msg(b"x"), NOW).unwrap();
    for _ in 0..5 {
        assert_eq!(q.next_deliveries(NOW).len(), 1);
        q.settle(A, id, Outcome::Released).unwrap();
    }
    assert_eq!(q.available(), 1);
}

#[test]
fn consumer_bookkeeping_errors_are_typed() {
    let mut q = queue(QueuePolicy::default(), &[A, B], 1);
    assert_eq!(q.add_consumer(A), Err(StoreError::DuplicateConsumer(A)));
    let stranger = ConsumerId(9);
    assert_eq!(
        q.set_credit(stranger, 1),
        Err(StoreError::UnknownConsumer(stranger))
    );
    assert_eq!(
        q.remove_consumer(stranger),
        Err(StoreError::UnknownConsumer(stranger))
    );
    let id = q.enqueue(msg(b"x"), NOW).unwrap();
    let out = q.next_deliveries(NOW);
    assert_eq!(out[0].consumer, A);
    let wrong = StoreError::NotInFlight {
        consumer: B,
        message: id,
    };
    assert_eq!(q.settle(B, id, Outcome::Accepted), Err(wrong.clone()));
    assert_eq!(wrong.condition(), conditions::INTERNAL_ERROR);
    q.settle(A, id, Outcome::Accepted).unwrap();
    assert!(q.settle(A, id, Outcome::Accepted).is_err(), "settled twice");
}

#[test]
fn next_expiry_follows_the_available_messages_only() {
    let mut q = queue(QueuePolicy::default(), &[A], 1);
    assert_eq!(q.next_expiry_ms(), None);
    q.enqueue(msg(b"forever"), NOW).unwrap();
    assert_eq!(q.next_expiry_ms(), None);
    let soon = q.enqueue(msg_with_ttl(b"soon", 10), NOW).unwrap();
    q.enqueue(msg_with_ttl(b"later", 50), NOW).unwrap();
    assert_eq!(q.next_expiry_ms(), Some(NOW + 10));
    // Credit 1 takes "forever", the oldest: "soon" still waits.
    q.next_deliveries(NOW);
    assert_eq!(q.next_expiry_ms(), Some(NOW + 10));
    q.set_credit(A, 1).unwrap();
    assert_eq!(q.next_deliveries(NOW)[0].message, soon);
    // In flight, it is not the queue's to expire.
    assert_eq!(q.next_expiry_ms(), Some(NOW + 50));
    q.settle(A, soon, Outcome::Released).unwrap();
    assert_eq!(
        q.next_expiry_ms(),
        Some(NOW + 10),
        "released, it counts again"
    );
    assert_eq!(q.expire_messages(NOW + 10), 1);
    assert_eq!(q.next_expiry_ms(), Some(NOW + 50));
    assert_eq!(q.expire_messages(NOW + 49), 0);
    assert_eq!(q.expire_messages(NOW + 50), 1);
    assert_eq!(q.next_expiry_ms(), None);
    assert_conserved(&q);
}

fn durable_msg(body: &'static [u8]) -> ScannedMessage {
    let header = Header {
        durable: true,
        ..Default::default()
    };
    ScannedMessage::scan(encoded(Some(header), None, body)).unwrap()
}

#[test]
fn a_durable_queue_logs_every_change_to_its_durable_messages_and_nothing_else() {
    let policy = QueuePolicy {
        durable: true,
        delivery_attempts_max: Some(2),
        ..QueuePolicy::default()
    };
    let mut q = queue(policy, &[A], 10);
    let kept = q.enqueue(durable_msg(b"kept"), NOW).unwrap();
    let fleeting = q.enqueue(msg(b"fleeting"), NOW).unwrap();
    let stored: Vec<Change> = q.take_changes().collect();
    assert!(
        matches!(stored.as_slice(), [Change::Stored { id, payload }] if *id == kept && body_of(payload) == "kept"),
        "{stored:?}"
    );
    let ids: Vec<MessageId> = q.next_deliveries(NOW).iter().map(|d| d.message).collect();
    assert_eq!(ids, vec![kept, fleeting]);
    q.settle(A, kept, FAILED).unwrap();
    q.settle(A, fleeting, Outcome::Accepted).unwrap();
    assert_eq!(
        q.take_changes().collect::<Vec<_>>(),
        vec![Change::DeliveryCount { id: kept, count: 1 }]
    );
    q.next_deliveries(NOW);
    // The second failure reaches the limit; with no dead-letter target it is dropped.
    q.settle(A, kept, FAILED).unwrap();
    assert_eq!(
        q.take_changes().collect::<Vec<_>>(),
        vec![Change::Removed { id: kept }]
    );
    assert!(!q.has_changes());
}

#[test]
fn a_forwarded_durable_message_is_not_logged_as_removed_by_its_queue() {
    let policy = QueuePolicy {
        durable: true,
        dead_letter_target: true,
        ..QueuePolicy::default()
    };
    let mut q = queue(policy, &[A], 10);
    let id = q.enqueue(durable_msg(b"bad"), NOW).unwrap();
    q.take_changes().for_each(drop);
    q.next_deliveries(NOW);
    q.settle(A, id, Outcome::Rejected).unwrap();
    assert!(
        !q.has_changes(),
        "the broker logs it once the target holds it"
    );
    let forward = q.poll_forward().unwrap();
    assert!(forward.journaled);
}

#[test]
fn a_queue_that_is_not_durable_logs_nothing() {
    let mut q = queue(QueuePolicy::default(), &[A], 10);
    let id = q.enqueue(durable_msg(b"x"), NOW).unwrap();
    q.next_deliveries(NOW);
    q.settle(A, id, Outcome::Accepted).unwrap();
    assert!(!q.has_changes());
}

#[test]
fn restored_messages_keep_their_ids_and_counts_and_new_ones_follow() {
    let policy = QueuePolicy {
        durable: true,
        messages_max: 1,
        ..QueuePolicy::default()
    };
    let mut q = queue(policy, &[A], 10);
    q.restore(MessageId(7), durable_msg(b"seven"), 2, NOW);
    q.restore(MessageId(9), durable_msg(b"nine"), 0, NOW);
    assert!(!q.has_changes(), "the journal has them already");
    assert_eq!(
        q.depth(),
        2,
        "restored past the limit: nothing accepted is dropped"
    );
    assert!(!q.has_room(1));
    let out = q.next_deliveries(NOW);
    assert_eq!(
        out.iter().map(|d| d.message).collect::<Vec<_>>(),
        vec![MessageId(7), MessageId(9)]
    );
    assert_eq!(header_of(&out[0].payload).delivery_count, 2);
    assert!(!header_of(&out[0].payload).first_acquirer);
    q.settle(A, MessageId(7), Outcome::Accepted).unwrap();
    q.settle(A, MessageId(9), Outcome::Accepted).unwrap();
    let id = q.enqueue(durable_msg(b"new"), NOW).unwrap();
    assert_eq!(id, MessageId(10));
}

#[test]
fn a_move_takes_only_the_chosen_available_messages_and_counts_them_moved() {
    let durable = QueuePolicy {
        durable: true,
        ..QueuePolicy::default()
    };
    let mut q = queue(durable, &[A], 1);
    let header = Header {
        durable: true,
        ..Default::default()
    };
    let ids: Vec<MessageId> = [b"a" as &'static [u8], b"b", b"c", b"d"]
        .iter()
        .map(|body| {
            let m = ScannedMessage::scan(encoded(Some(header.clone()), None, body)).unwrap();
            q.enqueue(m, NOW).unwrap()
        })
        .collect();
    // One in flight stays with its consumer.
    assert_eq!(q.next_deliveries(NOW).len(), 1);
    let _stored: Vec<_> = q.take_changes().collect();
    let taken = q.take_where(10, 100, |m| (body_of(m.raw()) != "c").then_some(()));
    let moved: Vec<MessageId> = taken.iter().map(|(_, f)| f.id).collect();
    assert_eq!(
        moved,
        [ids[1], ids[3]],
        "b and d; a is in flight, c was not chosen"
    );
    assert!(
        taken
            .iter()
            .all(|(_, f)| f.reason == ForwardReason::Moved && f.journaled)
    );
    assert_eq!(q.counters().moved, 2);
    assert_eq!((q.available(), q.in_flight()), (1, 1));
    assert_eq!(
        q.take_changes().count(),
        0,
        "the source logs no removal: the broker does, once the target stored them"
    );
    assert_conserved(&q);
    // At most `max`.
    let more = q.take_where(0, 100, |_| Some(()));
    assert!(more.is_empty());
}
