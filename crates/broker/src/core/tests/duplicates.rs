//! Duplicate detection: a publish whose message-id the node accepted within its window is
//! accepted and not stored, and a durable node journals each id with its message.
use sluice_codec::messaging::MessageId as AmqpId;
use sluice_codec::types::Str;
use sluice_store::DuplicateLimits;

use super::durable::changes;
use super::*;

const LIMITS: DuplicateLimits = DuplicateLimits {
    window_ms: 60_000,
    ids_max: 100,
};

/// A message with `text` as its body and `id` (a string) as its message-id.
fn with_id(text: &str, id: Option<&str>, durable: bool) -> Bytes {
    Message {
        header: durable.then(|| Header {
            durable: true,
            ..Default::default()
        }),
        properties: Some(Properties {
            message_id: id.map(|id| AmqpId::String(Str::from(id))),
            ..Properties::default()
        }),
        body: Body::Data(vec![Bytes::copy_from_slice(text.as_bytes())]),
        ..Default::default()
    }
    .to_bytes()
    .freeze()
}

fn detecting(address: &str, policy: QueuePolicy, limits: DuplicateLimits) -> Node {
    Node::Queue(detecting_queue(address, policy, limits))
}

fn detecting_queue(address: &str, policy: QueuePolicy, limits: DuplicateLimits) -> QueueNode {
    match queue(address, policy) {
        Node::Queue(q) => q.with_duplicates(Some(limits)),
        other => panic!("{other:?}"),
    }
}

/// Publishes `(text, id)` pairs on link 9 of connection 1, settle ids from 0.
fn publish_all(h: &mut Harness, to: NodeId, messages: &[(&str, Option<&str>)], durable: bool) {
    for (i, (text, id)) in messages.iter().enumerate() {
        h.publish_bytes(1, 9, Route::to(to), with_id(text, *id, durable), i as u32);
    }
}

fn all_accepted(n: u32) -> Vec<(u32, String)> {
    (0..n).map(|i| (i, "accepted".to_string())).collect()
}

#[test]
fn a_message_id_seen_within_the_window_is_accepted_and_not_stored_again() {
    let mut h = Harness::new(vec![detecting("q", QueuePolicy::default(), LIMITS)]);
    h.conn(1);
    h.conn(2);
    let messages = [
        ("first", Some("a")),
        ("retry of first", Some("a")),
        ("second", Some("b")),
        ("no id", None),
        ("no id again", None),
    ];
    publish_all(&mut h, at(0), &messages, false);
    assert_eq!(published(&h.answers(1)), all_accepted(5));
    h.receive(2, 1, from(at(0), Filter::All), 10);
    assert_eq!(
        h.texts(2),
        vec!["first", "second", "no id", "no id again"],
        "a message without an id is never a duplicate"
    );
}

#[test]
fn without_duplicate_detection_the_same_id_is_stored_twice() {
    let mut h = Harness::new(vec![queue("q", QueuePolicy::default())]);
    h.conn(1);
    h.conn(2);
    publish_all(
        &mut h,
        at(0),
        &[("one", Some("a")), ("two", Some("a"))],
        false,
    );
    h.receive(2, 1, from(at(0), Filter::All), 10);
    assert_eq!(h.texts(2), vec!["one", "two"]);
}

#[test]
fn an_id_is_forgotten_once_its_window_has_passed_or_past_the_count() {
    let limits = DuplicateLimits {
        window_ms: 1000,
        ids_max: 2,
    };
    let mut h = Harness::new(vec![detecting("q", QueuePolicy::default(), limits)]);
    h.conn(1);
    h.conn(2);
    publish_all(&mut h, at(0), &[("a1", Some("a"))], false);
    h.now += 1000;
    // The window has passed: stored again. Then "b" and "c" push "a" out by count.
    publish_all(
        &mut h,
        at(0),
        &[("a2", Some("a")), ("b", Some("b")), ("c", Some("c"))],
        false,
    );
    publish_all(
        &mut h,
        at(0),
        &[("a3", Some("a")), ("c again", Some("c"))],
        false,
    );
    h.receive(2, 1, from(at(0), Filter::All), 10);
    assert_eq!(h.texts(2), vec!["a1", "a2", "b", "c", "a3"]);
}

#[test]
fn a_durable_node_journals_the_id_just_before_its_message_and_a_retry_waits_for_it() {
    let durable = QueuePolicy {
        durable: true,
        ..QueuePolicy::default()
    };
    let mut h = Harness::new(vec![detecting("q", durable, LIMITS)]);
    let q = at(0);
    h.conn(1);
    publish_all(
        &mut h,
        q,
        &[
            ("kept", Some("a")),
            ("retry", Some("a")),
            ("fleeting", Some("b")),
        ],
        true,
    );
    // A message that is not durable leaves no record; its id is remembered in memory only.
    h.publish_bytes(1, 9, Route::to(q), with_id("fleeting", Some("c"), false), 3);
    h.publish_bytes(1, 9, Route::to(q), with_id("again", Some("c"), false), 4);
    let a = Bytes::from_static(b"\xa1\x01a");
    let b = Bytes::from_static(b"\xa1\x01b");
    assert_eq!(
        changes(&h),
        vec![
            (q, format!("remembered {a:?}")),
            (q, "stored kept".to_string()),
            (q, format!("remembered {b:?}")),
            (q, "stored fleeting".to_string()),
        ]
    );
    match &h.journal[0].change {
        Change::Remembered {
            message, limits, ..
        } => {
            assert_eq!((*message, *limits), (Some(MessageId(0)), LIMITS));
        }
        other => panic!("{other:?}"),
    }
    // The retry's answer waits for the journal too: the original may not be on disk yet.
    assert_eq!(h.afters[&1][..2], [Some(2), Some(2)]);
    assert_eq!(published(&h.answers(1)), all_accepted(5));
}

#[test]
fn a_restored_window_still_knows_the_ids_and_drops_those_out_of_it() {
    let durable = QueuePolicy {
        durable: true,
        ..QueuePolicy::default()
    };
    let mut h = Harness::new(vec![detecting("q", durable, LIMITS)]);
    let remembered = |ordinal, id: &'static [u8], at_ms| sluice_store::RememberedId {
        ordinal,
        message_id: Bytes::from_static(id),
        at_ms,
    };
    let restored = h.core.restore_duplicates(
        "q",
        vec![
            remembered(0, b"\xa1\x03old", NOW - 60_000),
            remembered(1, b"\xa1\x01a", NOW - 1000),
        ],
        NOW,
    );
    assert!(restored);
    assert!(!h.core.restore_duplicates("elsewhere", Vec::new(), NOW));
    h.conn(1);
    h.conn(2);
    publish_all(
        &mut h,
        at(0),
        &[("retry", Some("a")), ("old", Some("old"))],
        true,
    );
    assert_eq!(published(&h.answers(1)), all_accepted(2));
    h.receive(2, 1, from(at(0), Filter::All), 10);
    assert_eq!(h.texts(2), vec!["old"]);
}

#[test]
fn a_subscription_with_detection_keeps_one_copy_of_a_topic_message() {
    let mut h = Harness::new(vec![
        topic("t", vec![at(1)]),
        detecting("sub", QueuePolicy::default(), LIMITS),
    ]);
    h.conn(1);
    h.conn(2);
    for (i, text) in ["once", "twice"].iter().enumerate() {
        h.publish_bytes(
            1,
            9,
            named(at(0), "t"),
            with_id(text, Some("x"), false),
            i as u32,
        );
    }
    assert_eq!(published(&h.answers(1)), all_accepted(2));
    h.receive(2, 1, from(at(1), Filter::All), 10);
    assert_eq!(h.texts(2), vec!["once"]);
}

#[test]
fn a_reload_keeps_the_ids_and_takes_the_new_limits() {
    let mut node = detecting_queue("q", QueuePolicy::default(), LIMITS);
    let mut ctx_h = Harness::new(Vec::new());
    let (_, mut ctx) = ctx_h.core.ctx();
    for (i, id) in ["a", "b", "c"].iter().enumerate() {
        let message = ScannedMessage::scan(with_id("m", Some(id), false)).unwrap();
        let arrival = Arrival {
            message: Box::new(message),
            answer: Answer::Nobody,
            via: Via::Publish,
        };
        node.arrive(at(i as u32), arrival, &mut ctx);
    }
    let narrower = DuplicateLimits {
        window_ms: 60_000,
        ids_max: 1,
    };
    node.reconfigure(detecting_queue("q", QueuePolicy::default(), narrower));
    assert_eq!(node.duplicates_len(), Some(1));
}
