//! Operators' `$management` work in the core: purge, the move back to a message's origin
//! and how it is journaled, and the answers.
use super::topic::rejected_with;
use super::*;
use crate::core::manage::{
    MOVE_MESSAGES_MAX, ORIG_ADDRESS, Operation, ReplyTo, Request, Status, origin_of,
};
use sluice_codec::types::Value;
use sluice_router::{NodeKind, NodeSpec};

fn durable() -> QueuePolicy {
    QueuePolicy {
        durable: true,
        ..QueuePolicy::default()
    }
}

/// `orders` (at 0, dead-letter target `dlq`), `other` (at 1), `dlq` (at 2), all durable and
/// configured; connection 1 publishes, 2 consumes, 3 operates.
fn harness() -> Harness {
    let orders = QueuePolicy {
        dead_letter_target: true,
        ..durable()
    };
    let mut h = Harness::new(vec![
        queue_with("orders", orders, Some(at(2)), None),
        queue("other", durable()),
        queue("dlq", durable()),
    ]);
    let spec = |i: u32, address: &str, kind| NodeSpec {
        id: at(i),
        address: address.into(),
        kind,
    };
    h.core.set_configured(vec![
        spec(0, "orders", NodeKind::Queue),
        spec(1, "other", NodeKind::Queue),
        spec(2, "dlq", NodeKind::Deadletter),
    ]);
    for conn in 1..=3 {
        h.conn(conn);
    }
    h
}

/// Publishes `bodies` to `orders` and rejects each: they go to `dlq`.
fn dead_letter(h: &mut Harness, bodies: &[&str]) {
    for (i, b) in bodies.iter().enumerate() {
        h.publish_bytes(1, 9, Route::to(at(0)), durable_body(b), i as u32);
    }
    h.receive(2, 1, from(at(0), Filter::All), 100);
    for (_, id, _) in h.delivered(2) {
        h.settle(2, 1, id, rejected_with("app:no"));
    }
    h.run(2, Command::Detach { link: link(1) });
}

/// Runs `operation` for connection 3, its answer on link 7; returns (statusCode, count).
fn operate(h: &mut Harness, operation: Result<Operation, Status>) -> (i32, Option<u64>) {
    let request = Request {
        operation,
        reply: ReplyTo::Link(link(7)),
        correlation: Some(sluice_codec::messaging::MessageId::Ulong(42)),
    };
    h.run(3, Command::Manage(Box::new(request)));
    let answers = h.answers(3);
    let [
        ToConn::Managed {
            answer: Some((to, payload)),
        },
    ] = answers.as_slice()
    else {
        panic!("answered {answers:?}");
    };
    assert_eq!(*to, link(7));
    let m = Message::decode(payload).unwrap();
    assert_eq!(
        m.properties.and_then(|p| p.correlation_id),
        Some(sluice_codec::messaging::MessageId::Ulong(42))
    );
    let props = m.application_properties.unwrap();
    let code = match &props[0] {
        (k, Value::Int(code)) if *k == Value::from("statusCode") => *code,
        other => panic!("{other:?}"),
    };
    let count = match m.body {
        Body::Value(Value::Map(entries)) => entries.into_iter().find_map(|(k, v)| match v {
            Value::Ulong(n) if k == Value::from("count") => Some(n),
            _ => None,
        }),
        _ => None,
    };
    (code, count)
}

#[test]
fn a_dead_lettered_message_carries_the_address_it_came_from() {
    let mut h = harness();
    dead_letter(&mut h, &["a"]);
    h.receive(2, 2, from(at(2), Filter::All), 10);
    let answers = h.answers(2);
    let payload = answers
        .iter()
        .find_map(|a| match a {
            ToConn::Deliver { payload, .. } => Some(payload.clone()),
            _ => None,
        })
        .unwrap();
    let message = ScannedMessage::scan(payload.clone()).unwrap();
    assert_eq!(origin_of(&message), Some("orders"), "{ORIG_ADDRESS}");
    assert_eq!(text(&payload), "a", "the bare message is untouched");
}

#[test]
fn a_move_stores_each_message_at_its_origin_before_the_dead_letter_queue_lets_go() {
    let mut h = harness();
    dead_letter(&mut h, &["a", "b", "c"]);
    let before = h.journal.len();
    let (code, count) = operate(
        &mut h,
        Ok(Operation::Move {
            from: at(2),
            only: None,
            max: 2,
        }),
    );
    assert_eq!((code, count), (200, Some(2)));
    let moves: Vec<(NodeId, bool)> = h.journal[before..]
        .iter()
        .map(|r| (r.node, matches!(r.change, Change::Stored { .. })))
        .collect();
    let (orders, dlq) = (at(0), at(2));
    assert_eq!(
        moves,
        [(orders, true), (dlq, false), (orders, true), (dlq, false)],
        "stored at the origin, then removed from the dead-letter queue, one by one"
    );
    // The answer waits for those records.
    assert_eq!(
        h.afters[&3].last(),
        Some(&Some(h.journal.last().unwrap().seq))
    );
    assert_eq!(h.queue(orders).queue().depth(), 2);
    assert_eq!(h.queue(dlq).queue().depth(), 1);
    // Only from `other`: none came from there.
    let only = Operation::Move {
        from: dlq,
        only: Some("other".into()),
        max: MOVE_MESSAGES_MAX,
    };
    assert_eq!(operate(&mut h, Ok(only)), (200, Some(0)));
    assert_eq!(h.queue(dlq).queue().depth(), 1);
}

#[test]
fn a_purge_leaves_in_flight_messages_with_their_consumer() {
    let mut h = harness();
    for i in 0..4 {
        h.publish(1, 9, Route::to(at(1)), &format!("m{i}"), i);
    }
    h.receive(2, 1, from(at(1), Filter::All), 1);
    assert_eq!(h.texts(2), ["m0"]);
    let purge = Operation::Purge { node: at(1) };
    assert_eq!(operate(&mut h, Ok(purge)), (200, Some(3)));
    assert_eq!(h.queue(at(1)).queue().depth(), 1, "the one in flight stays");
}

#[test]
fn a_refusal_is_answered_as_the_connection_said() {
    let mut h = harness();
    let refused = Err(Status::new(403, "user 'x' may not manage 'orders'"));
    assert_eq!(operate(&mut h, refused), (403, None));
    // A node that is gone.
    let gone = Operation::Purge { node: at(9) };
    assert_eq!(operate(&mut h, Ok(gone)).0, 404);
}
