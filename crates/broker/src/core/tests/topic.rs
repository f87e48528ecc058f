//! Topics: private subscriptions from the topic's log, and named subscriptions fed by steps.

use sluice_codec::transport::conditions;
use sluice_router::TopicPattern;

use super::*;
use crate::core::topic::TOPIC_BUFFER_MESSAGES;

#[test]
fn every_topic_receiver_gets_the_names_its_filter_matches() {
    let mut h = Harness::new(vec![topic("orders", vec![])]);
    let orders = at(0);
    h.conn(1);
    h.conn(2);
    h.receive(2, 1, from(orders, Filter::All), 100);
    h.receive(2, 2, from(orders, Filter::Name("orders/eu/de".into())), 100);
    let eu_any = TopicPattern::parse("orders/eu/+").unwrap();
    h.receive(2, 3, from(orders, Filter::Pattern(eu_any)), 100);
    let all_below = TopicPattern::parse("orders/#").unwrap();
    h.receive(2, 4, from(orders, Filter::Pattern(all_below)), 100);

    for (i, name) in ["orders", "orders/eu/de", "orders/eu/fr", "orders/us"]
        .iter()
        .enumerate()
    {
        h.publish(1, 9, named(orders, name), name, i as u32);
    }
    assert_eq!(published(&h.answers(1)), accepted(4));
    let mut got: Vec<(u32, String)> = h.delivered(2).into_iter().map(|(l, _, t)| (l, t)).collect();
    got.sort();
    let want: Vec<(u32, String)> = [
        (1, "orders"),
        (1, "orders/eu/de"),
        (1, "orders/eu/fr"),
        (1, "orders/us"),
        (2, "orders/eu/de"),
        (3, "orders/eu/de"),
        (3, "orders/eu/fr"),
        (4, "orders"),
        (4, "orders/eu/de"),
        (4, "orders/eu/fr"),
        (4, "orders/us"),
    ]
    .into_iter()
    .map(|(l, t)| (l, t.to_string()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn a_topic_receiver_gets_only_what_is_published_after_it_attaches() {
    let mut h = Harness::new(vec![topic("news", vec![])]);
    let news = at(0);
    h.conn(1);
    h.conn(2);
    h.publish(1, 9, Route::to(news), "before", 0);
    assert_eq!(published(&h.answers(1)), vec![(0, "accepted".into())]);
    h.receive(2, 1, from(news, Filter::All), 10);
    h.publish(1, 9, Route::to(news), "after", 1);
    assert_eq!(h.texts(2), vec!["after"]);
}

#[test]
fn a_full_topic_holds_publishers_back_until_its_slowest_receiver_settles() {
    let mut h = Harness::new(vec![topic("t", vec![])]);
    let t = at(0);
    h.conn(1);
    h.conn(2);
    h.conn(3);
    // A fast receiver with plenty of credit and a slow one with none.
    h.receive(2, 1, from(t, Filter::All), u32::MAX);
    h.receive(3, 1, from(t, Filter::All), 0);
    let total = TOPIC_BUFFER_MESSAGES as u32 + 5;
    for i in 0..total {
        h.publish(1, 9, Route::to(t), &format!("m{i}"), i);
    }
    // The topic's buffer is full for the slow receiver: the last five are held, unanswered,
    // and not even the fast receiver has them yet.
    let answered = published(&h.answers(1));
    assert_eq!(answered.len(), TOPIC_BUFFER_MESSAGES);
    let fast = h.delivered(2);
    assert_eq!(fast.len(), TOPIC_BUFFER_MESSAGES);
    h.accept(2, &fast);
    assert!(
        published(&h.answers(1)).is_empty(),
        "the slow one still needs them all"
    );

    // The slow receiver takes and accepts three: three more are placed and answered.
    h.credit(3, 1, 3);
    let taken = h.delivered(3);
    assert_eq!(taken.len(), 3);
    for (_, message, _) in &taken {
        h.settle(3, 1, *message, DeliveryState::Accepted(Accepted {}));
    }
    let answered = published(&h.answers(1));
    assert_eq!(
        answered.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        (TOPIC_BUFFER_MESSAGES as u32..TOPIC_BUFFER_MESSAGES as u32 + 3).collect::<Vec<_>>()
    );
    let fast = h.delivered(2);
    h.accept(2, &fast);
    let fast: Vec<String> = fast.into_iter().map(|(_, _, t)| t).collect();
    // One buffer for the topic: what is held reaches every receiver when it is placed.
    assert_eq!(fast, vec!["m10000", "m10001", "m10002"]);

    // The slow receiver leaves: its hold on the buffer goes and the rest is placed.
    h.run(3, Command::Detach { link: link(1) });
    assert_eq!(published(&h.answers(1)).len(), 2);
    assert_eq!(h.texts(2), vec!["m10003", "m10004"]);
}

#[test]
fn a_topic_message_is_held_once_however_many_receivers_it_has() {
    let mut h = Harness::new(vec![topic("t", vec![])]);
    let t = at(0);
    h.conn(1);
    h.conn(2);
    for handle in 0..500 {
        h.receive(2, handle, from(t, Filter::All), 0);
    }
    let payload = body(&"x".repeat(1000));
    let size = payload.len();
    for i in 0..20 {
        h.publish_bytes(1, 9, Route::to(t), payload.clone(), i);
    }
    assert_eq!(published(&h.answers(1)).len(), 20);
    // Twenty messages for five hundred receivers: twenty entries, not ten thousand.
    assert_eq!(h.topic(t).log().len(), 20);
    assert_eq!(h.topic(t).log().bytes(), 20 * size);
    // Once every receiver has gone, nothing is held.
    for handle in 0..500 {
        h.apply(2, Command::Detach { link: link(handle) });
    }
    h.flush();
    assert_eq!(h.topic(t).log().len(), 0);
}

#[test]
fn a_receiver_holds_back_only_what_its_filter_wants() {
    let mut h = Harness::new(vec![topic("t", vec![])]);
    let t = at(0);
    h.conn(1);
    h.conn(2);
    // A receiver with no credit for a name nothing is published to, and one taking all.
    h.receive(2, 1, from(t, Filter::Name("t/never".into())), 0);
    h.receive(2, 2, from(t, Filter::All), u32::MAX);
    for i in 0..(TOPIC_BUFFER_MESSAGES as u32 + 100) {
        h.publish(1, 9, Route::to(t), "m", i);
        let delivered = h.delivered(2);
        h.accept(2, &delivered);
    }
    assert_eq!(
        published(&h.answers(1)).len(),
        TOPIC_BUFFER_MESSAGES + 100,
        "the idle receiver wants none of them, so none waits for it"
    );
    assert_eq!(h.topic(t).log().len(), 0);
}

#[test]
fn a_topic_refuses_subscribers_past_its_limit() {
    let mut h = Harness::new(vec![topic("t", vec![])]);
    h.conn(2);
    for handle in 0..crate::core::fanout::SUBSCRIBERS_MAX as u32 {
        h.apply(
            2,
            Command::AttachReceiver {
                link: link(handle),
                source: from(at(0), Filter::All),
            },
        );
    }
    h.flush();
    h.answers(2);
    h.run(
        2,
        Command::AttachReceiver {
            link: link(u32::MAX),
            source: from(at(0), Filter::All),
        },
    );
    match h.answers(2).as_slice() {
        [ToConn::Attached { result: Err(e), .. }] => {
            assert_eq!(e.condition, conditions::RESOURCE_LIMIT_EXCEEDED);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_private_subscriber_gets_a_released_message_again_and_drops_a_rejected_one() {
    let mut h = Harness::new(vec![topic("t", vec![])]);
    let t = at(0);
    h.conn(1);
    h.conn(2);
    h.receive(2, 1, from(t, Filter::All), 10);
    h.publish(1, 9, Route::to(t), "a", 0);
    h.publish(1, 9, Route::to(t), "b", 1);
    let got = h.delivered(2);
    h.settle(2, 1, got[0].1, rejected_with("app:bad"));
    h.settle(2, 1, got[1].1, DeliveryState::Released(Default::default()));
    assert_eq!(h.texts(2), vec!["b"]);
    assert_eq!(
        h.topic(t).log().len(),
        1,
        "only the released one is still held"
    );
}

pub(super) fn rejected_with(condition: &'static str) -> DeliveryState {
    DeliveryState::Rejected(Rejected {
        error: Some(Box::new(sluice_codec::transport::Error::new(
            sluice_codec::types::Symbol::from_static(condition),
            "no",
        ))),
    })
}

#[test]
fn a_named_subscription_keeps_messages_and_limits_its_consumers() {
    let sub = Node::Queue(QueueNode::new(QueuePlan {
        address: "sub".into(),
        policy: QueuePolicy::default(),
        dead_letter: None,
        expiry: None,
        max_consumers: Some(1),
        full: AddressFullPolicy::Block,
        reject_retries: false,
    }));
    let mut h = Harness::new(vec![topic("t", vec![at(1)]), sub]);
    h.conn(1);
    h.conn(2);
    // Published before anyone consumes: the durable subscription keeps it.
    h.publish(1, 9, named(at(0), "t/x"), "kept", 0);
    assert_eq!(published(&h.answers(1)), vec![(0, "accepted".into())]);
    h.receive(2, 1, from(at(1), Filter::All), 10);
    assert_eq!(h.texts(2), vec!["kept"]);
    // maxConsumers 1: a second receiver is refused.
    h.run(
        2,
        Command::AttachReceiver {
            link: link(2),
            source: from(at(1), Filter::All),
        },
    );
    match h.answers(2).as_slice() {
        [ToConn::Attached { result: Err(e), .. }] => {
            assert_eq!(e.condition, conditions::RESOURCE_LIMIT_EXCEEDED);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_topic_publish_is_answered_once_every_named_subscription_has_it() {
    let small = QueuePolicy {
        messages_max: 1,
        ..QueuePolicy::default()
    };
    let sub = |name: &str, policy| {
        Node::Queue(QueueNode::new(QueuePlan {
            address: name.into(),
            policy,
            dead_letter: None,
            expiry: None,
            max_consumers: Some(1),
            full: AddressFullPolicy::Block,
            reject_retries: false,
        }))
    };
    let mut h = Harness::new(vec![
        topic("t", vec![at(1), at(2)]),
        sub("roomy", QueuePolicy::default()),
        sub("small", small),
    ]);
    h.conn(1);
    h.conn(2);
    h.publish(1, 9, Route::to(at(0)), "one", 0);
    h.publish(1, 9, Route::to(at(0)), "two", 1);
    // The small subscription holds one: the second waits there, and so does its answer.
    assert_eq!(published(&h.answers(1)), vec![(0, "accepted".into())]);
    h.receive(2, 1, from(at(2), Filter::All), 10);
    let first = h.delivered(2);
    h.accept(2, &first);
    assert_eq!(published(&h.answers(1)), vec![(1, "accepted".into())]);
    assert_eq!(h.texts(2), vec!["two"]);
}
