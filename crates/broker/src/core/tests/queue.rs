//! Stored nodes: limits, expiry, dead-lettering, answers in ranges, temporary queues.

use sluice_codec::transport::conditions;
use sluice_store::TtlPolicy;

use super::topic::rejected_with;
use super::*;

#[test]
fn a_queue_message_expires_on_time_without_a_consumer() {
    let policy = QueuePolicy {
        ttl: TtlPolicy {
            minimum_ms: None,
            maximum_ms: Some(100),
        },
        expiry_target: true,
        ..QueuePolicy::default()
    };
    let mut h = Harness::new(vec![
        queue_with("q", policy, None, Some(at(1))),
        queue("dlq", QueuePolicy::default()),
    ]);
    h.conn(1);
    h.publish(1, 9, Route::to(at(0)), "ttl", 0);
    // The plan's maximum gave it 100 ms: the core's timer is set for then.
    assert_eq!(h.core.poll_timeout(), Some(NOW + 100));
    h.core.handle_timeout(NOW + 100);
    h.flush();
    assert_eq!(h.core.poll_timeout(), None);
    assert_eq!(h.queue(at(0)).queue().depth(), 0);
    assert_eq!(h.queue(at(1)).queue().depth(), 1);
}

#[test]
fn a_full_queue_holds_publishes_until_a_consumer_makes_room() {
    let policy = QueuePolicy {
        messages_max: 2,
        ..QueuePolicy::default()
    };
    let mut h = Harness::new(vec![queue("q", policy)]);
    let q = at(0);
    h.conn(1);
    h.conn(2);
    for i in 0..4 {
        h.publish(1, 9, Route::to(q), &format!("m{i}"), i);
    }
    // Two fit; two wait, unanswered, so the publisher's credit waits too.
    assert_eq!(published(&h.answers(1)), accepted(2));
    h.receive(2, 1, from(q, Filter::All), 10);
    let first = h.delivered(2);
    assert_eq!(first.len(), 2);
    // Accepting one makes room for one, in order.
    h.accept(2, &first[..1]);
    assert_eq!(published(&h.answers(1)), vec![(2, "accepted".into())]);
    h.accept(2, &first[1..]);
    assert_eq!(published(&h.answers(1)), vec![(3, "accepted".into())]);
    assert_eq!(h.texts(2), vec!["m2", "m3"]);
}

#[test]
fn a_message_larger_than_a_queue_can_ever_hold_is_refused() {
    let policy = QueuePolicy {
        bytes_max: 10,
        ..QueuePolicy::default()
    };
    let mut h = Harness::new(vec![queue("q", policy)]);
    h.conn(1);
    h.publish(1, 9, Route::to(at(0)), "far too large for ten bytes", 0);
    assert_eq!(
        published(&h.answers(1)),
        vec![(0, "rejected amqp:resource-limit-exceeded".into())]
    );
}

#[test]
fn a_dead_letter_queue_at_its_limit_holds_what_is_moved_to_it() {
    let node = |address: &str, messages_max: usize, dead_letter: Option<NodeId>| {
        let policy = QueuePolicy {
            messages_max,
            dead_letter_target: dead_letter.is_some(),
            ..QueuePolicy::default()
        };
        queue_with(address, policy, dead_letter, None)
    };
    let mut h = Harness::new(vec![node("q", 100, Some(at(1))), node("dlq", 1, None)]);
    let (q, dlq) = (at(0), at(1));
    h.conn(1);
    h.conn(2);
    for i in 0..3 {
        h.publish(1, 9, Route::to(q), &format!("m{i}"), i);
    }
    h.receive(2, 1, from(q, Filter::All), 10);
    for (_, message, _) in h.delivered(2) {
        h.settle(2, 1, message, rejected_with("app:no"));
    }
    // One fits the dead-letter queue; the other two wait for room instead of being dropped.
    assert_eq!(h.queue(q).queue().depth(), 0);
    assert_eq!(h.queue(dlq).queue().depth(), 1);
    assert_eq!(h.queue(dlq).waiting.len(), 2);
    h.receive(2, 2, from(dlq, Filter::All), 10);
    let mut drained = Vec::new();
    for _ in 0..3 {
        let got = h.delivered(2);
        h.accept(2, &got);
        drained.extend(got.into_iter().map(|(_, _, t)| t));
    }
    assert_eq!(drained, vec!["m0", "m1", "m2"]);
    assert!(h.queue(dlq).waiting.is_empty());
}

#[test]
fn a_wake_up_of_accepted_publishes_is_answered_with_ranges() {
    let mut h = Harness::new(vec![queue("q", QueuePolicy::default())]);
    h.conn(1);
    let publish = |handle: u32, id: u32, node: NodeId| Command::Publish {
        link: link(handle),
        route: Route::to(node),
        message: Box::new(ScannedMessage::scan(body("m")).unwrap()),
        settle: Some((SessionId(0), id)),
    };
    // Ids 0-2 on link 9 form one range; link 8's id 3 and the gap to 5 start new ones; the
    // node that does not exist's rejection is answered on its own.
    let nowhere = NodeId {
        index: 7,
        generation: 3,
    };
    for command in [
        publish(9, 0, at(0)),
        publish(9, 1, at(0)),
        publish(9, 2, at(0)),
        publish(8, 3, at(0)),
        publish(9, 5, nowhere),
    ] {
        h.apply(1, command);
    }
    h.flush();
    let answers = h.answers(1);
    let shape: Vec<(u32, Option<u32>, u32, bool)> = answers
        .iter()
        .filter_map(|a| match a {
            ToConn::Published {
                link,
                settle,
                count,
                state,
            } => Some((
                link.handle,
                settle.map(|(_, id)| id),
                *count,
                matches!(state, DeliveryState::Accepted(_)),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            (9, Some(0), 3, true),
            (8, Some(3), 1, true),
            (9, Some(5), 1, false)
        ]
    );
    assert_eq!(published(&answers).len(), 5);
}

#[test]
fn a_dynamic_receiver_gets_a_temporary_queue_that_goes_with_it() {
    let mut h = Harness::new(vec![]);
    h.conn(1);
    h.conn(2);
    h.run(
        2,
        Command::AttachReceiver {
            link: link(1),
            source: Source::Temporary {
                consumer: sluice_store::ConsumerOptions::default(),
            },
        },
    );
    let address = match h.answers(2).as_slice() {
        [ToConn::Attached { result: Ok(a), .. }] => a.address.clone().unwrap(),
        other => panic!("{other:?}"),
    };
    let node = temporary_node(&address).unwrap();
    assert_eq!(temporary_address(node), &*address);
    h.credit(2, 1, 10);
    h.publish(1, 9, Route::to(node), "reply", 0);
    assert_eq!(published(&h.answers(1)), accepted(1));
    assert_eq!(h.texts(2), vec!["reply"]);
    // The receiver goes, and its queue with it: a late reply finds nothing, even when a new
    // temporary queue takes the same slot.
    h.run(2, Command::Detach { link: link(1) });
    h.run(
        2,
        Command::AttachReceiver {
            link: link(2),
            source: Source::Temporary {
                consumer: sluice_store::ConsumerOptions::default(),
            },
        },
    );
    h.answers(2);
    h.publish(1, 9, Route::to(node), "late", 1);
    assert_eq!(
        published(&h.answers(1)),
        vec![(1, format!("rejected {}", conditions::NOT_FOUND.as_str()))]
    );
}
