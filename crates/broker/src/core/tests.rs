//! The core without sockets: commands in, answers read from each connection's channel, time
//! passed in.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::HashMap;

use bytes::Bytes;
use sluice_codec::Encode;
use sluice_codec::messaging::{Body, Message, Properties};
use sluice_codec::transport::Rejected;
use sluice_router::TopicPattern;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::*;

const NOW: i64 = 1_700_000_000_000;

fn link(handle: u32) -> LinkId {
    LinkId {
        session: SessionId(0),
        handle,
    }
}

fn body(text: &str) -> Bytes {
    Message {
        properties: Some(Properties::default()),
        body: Body::Data(vec![Bytes::copy_from_slice(text.as_bytes())]),
        ..Default::default()
    }
    .to_bytes()
    .freeze()
}

fn text(payload: &Bytes) -> String {
    let m = Message::decode(payload).unwrap();
    match m.body {
        Body::Data(d) => String::from_utf8(d[0].to_vec()).unwrap(),
        other => panic!("{other:?}"),
    }
}

struct Harness {
    core: Core,
    rx: HashMap<ConnId, UnboundedReceiver<Vec<ToConn>>>,
}

impl Harness {
    fn new(topics: &[&str], anycast: &[&str], stored: Vec<StoredNode>) -> Self {
        let core = Core::new(
            stored,
            topics
                .iter()
                .map(|t| (t.to_string(), QueuePolicy::default()))
                .collect(),
            Vec::new(),
            anycast.iter().map(|a| a.to_string()).collect(),
        );
        Harness {
            core,
            rx: HashMap::new(),
        }
    }

    fn conn(&mut self, conn: ConnId) {
        let (tx, rx) = unbounded_channel();
        self.core.apply(Command::Register { conn, tx }, NOW);
        self.rx.insert(conn, rx);
    }

    fn run(&mut self, command: Command) {
        self.core.apply(command, NOW);
        self.core.pump(NOW);
        self.core.out.flush();
    }

    fn answers(&mut self, conn: ConnId) -> Vec<ToConn> {
        let rx = self.rx.get_mut(&conn).unwrap();
        let mut out = Vec::new();
        while let Ok(batch) = rx.try_recv() {
            out.extend(batch);
        }
        out
    }

    fn receive(&mut self, conn: ConnId, handle: u32, source: Subscribe, credit: u32) {
        self.run(Command::AttachReceiver {
            conn,
            link: link(handle),
            source,
        });
        match self.answers(conn).as_slice() {
            [ToConn::Attached { result: Ok(()), .. }] => {}
            other => panic!("attach answered {other:?}"),
        }
        self.run(Command::Credit {
            conn,
            link: link(handle),
            credit,
            drain: false,
        });
    }

    fn publish(&mut self, conn: ConnId, handle: u32, route: Route, text: &str, settle: u32) {
        self.run(Command::Publish {
            conn,
            link: link(handle),
            route,
            message: ScannedMessage::scan(body(text)).unwrap(),
            settle: Some((SessionId(0), settle)),
        });
    }

    /// Accepts deliveries `delivered` returned.
    fn accept(&mut self, conn: ConnId, deliveries: &[(u32, MessageId, String)]) {
        for (handle, message, _) in deliveries {
            self.core.apply(
                Command::Settle {
                    conn,
                    link: link(*handle),
                    messages: vec![*message],
                    state: DeliveryState::Accepted(Accepted {}),
                },
                NOW,
            );
        }
        self.core.pump(NOW);
        self.core.out.flush();
    }

    /// The bodies delivered to `conn`, with their links and message ids.
    fn delivered(&mut self, conn: ConnId) -> Vec<(u32, MessageId, String)> {
        self.answers(conn)
            .into_iter()
            .filter_map(|a| match a {
                ToConn::Deliver {
                    link,
                    message,
                    payload,
                    ..
                } => Some((link.handle, message, text(&payload))),
                _ => None,
            })
            .collect()
    }
}

fn topic(topic: &str, name: &str) -> Route {
    Route::Topic {
        topic: topic.into(),
        name: name.into(),
    }
}

fn subscribe(topic: &str, filter: Filter) -> Subscribe {
    Subscribe::Topic {
        topic: topic.into(),
        filter,
    }
}

/// Each publish answered, as (delivery id, outcome): a range answer counts once per publish.
/// A queue node with `policy` and no dead-letter, expiry or subscription.
fn stored(address: &str, policy: QueuePolicy) -> StoredNode {
    StoredNode {
        address: address.into(),
        policy,
        dead_letter: None,
        expiry: None,
        subscription: None,
    }
}

fn published(answers: &[ToConn]) -> Vec<(u32, String)> {
    answers
        .iter()
        .filter_map(|a| match a {
            ToConn::Published {
                settle: Some((_, id)),
                count,
                state,
                ..
            } => Some((
                (*id, *count),
                match state {
                    DeliveryState::Accepted(_) => "accepted".to_string(),
                    DeliveryState::Released(_) => "released".to_string(),
                    DeliveryState::Modified(_) => "modified".to_string(),
                    DeliveryState::Rejected(Rejected { error }) => format!(
                        "rejected {}",
                        error.as_ref().map(|e| e.condition.as_str()).unwrap_or("")
                    ),
                    other => format!("{other:?}"),
                },
            )),
            _ => None,
        })
        .flat_map(|((first, count), state)| {
            (0..count).map(move |k| (first.wrapping_add(k), state.clone()))
        })
        .collect()
}

#[test]
fn every_topic_receiver_gets_the_names_its_filter_matches() {
    let mut h = Harness::new(&["orders"], &[], Vec::new());
    h.conn(1);
    h.conn(2);
    h.receive(2, 1, subscribe("orders", Filter::All), 100);
    h.receive(
        2,
        2,
        subscribe("orders", Filter::Name("orders/eu/de".into())),
        100,
    );
    let eu_any = TopicPattern::parse("orders/eu/+").unwrap();
    h.receive(2, 3, subscribe("orders", Filter::Pattern(eu_any)), 100);
    let all_below = TopicPattern::parse("orders/#").unwrap();
    h.receive(2, 4, subscribe("orders", Filter::Pattern(all_below)), 100);

    for (i, name) in ["orders", "orders/eu/de", "orders/eu/fr", "orders/us"]
        .iter()
        .enumerate()
    {
        h.publish(1, 9, topic("orders", name), name, i as u32);
    }
    assert_eq!(
        published(&h.answers(1)),
        (0..4)
            .map(|i| (i, "accepted".to_string()))
            .collect::<Vec<_>>()
    );
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
    let mut h = Harness::new(&["news"], &[], Vec::new());
    h.conn(1);
    h.conn(2);
    h.publish(1, 9, topic("news", "news"), "before", 0);
    assert_eq!(published(&h.answers(1)), vec![(0, "accepted".into())]);
    h.receive(2, 1, subscribe("news", Filter::All), 10);
    h.publish(1, 9, topic("news", "news"), "after", 1);
    let got: Vec<String> = h.delivered(2).into_iter().map(|(_, _, t)| t).collect();
    assert_eq!(got, vec!["after"]);
}

#[test]
fn a_full_subscription_holds_publishers_back_until_its_receiver_settles() {
    let mut h = Harness::new(&["t"], &[], Vec::new());
    h.conn(1);
    h.conn(2);
    h.conn(3);
    // A fast receiver with plenty of credit and a slow one with none.
    h.receive(2, 1, subscribe("t", Filter::All), u32::MAX);
    h.receive(3, 1, subscribe("t", Filter::All), 0);
    let total = SUBSCRIPTION_BUFFER_MESSAGES as u32 + 5;
    for i in 0..total {
        h.publish(1, 9, topic("t", "t"), &format!("m{i}"), i);
    }
    // The slow subscription filled up: the last five are held, unanswered, and not even the
    // fast receiver, whose own buffer is full of unsettled messages, has them yet.
    let answered = published(&h.answers(1));
    assert_eq!(answered.len(), SUBSCRIPTION_BUFFER_MESSAGES);
    let fast = h.delivered(2);
    assert_eq!(fast.len(), SUBSCRIPTION_BUFFER_MESSAGES);
    h.accept(2, &fast);

    // The slow receiver takes and accepts three: three more are placed and answered.
    h.run(Command::Credit {
        conn: 3,
        link: link(1),
        credit: 3,
        drain: false,
    });
    let taken = h.delivered(3);
    assert_eq!(taken.len(), 3);
    for (_, message, _) in &taken {
        h.run(Command::Settle {
            conn: 3,
            link: link(1),
            messages: vec![*message],
            state: DeliveryState::Accepted(Accepted {}),
        });
    }
    let answered = published(&h.answers(1));
    assert_eq!(
        answered.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        (SUBSCRIPTION_BUFFER_MESSAGES as u32..SUBSCRIPTION_BUFFER_MESSAGES as u32 + 3)
            .collect::<Vec<_>>()
    );
    let fast = h.delivered(2);
    h.accept(2, &fast);
    let fast: Vec<String> = fast.into_iter().map(|(_, _, t)| t).collect();
    // The first held message is placed wherever there is room as soon as there is; only what
    // follows it waits.
    assert_eq!(fast, vec!["m10000", "m10001", "m10002", "m10003"]);

    // The slow receiver leaves: its subscription goes and the rest is released to the topic.
    h.run(Command::Detach {
        conn: 3,
        link: link(1),
    });
    assert_eq!(published(&h.answers(1)).len(), 2);
    let last: Vec<String> = h.delivered(2).into_iter().map(|(_, _, t)| t).collect();
    assert_eq!(last, vec!["m10004"]);
}

#[test]
fn a_named_subscription_keeps_messages_and_limits_its_consumers() {
    let sub = StoredNode {
        address: "sub".into(),
        policy: QueuePolicy::default(),
        dead_letter: None,
        expiry: None,
        subscription: Some(("t".into(), 1)),
    };
    let mut h = Harness::new(&["t"], &[], vec![sub]);
    h.conn(1);
    h.conn(2);
    // Published before anyone consumes: the durable subscription keeps it.
    h.publish(1, 9, topic("t", "t/x"), "kept", 0);
    h.receive(2, 1, Subscribe::Queue("sub".into()), 10);
    let got: Vec<String> = h.delivered(2).into_iter().map(|(_, _, t)| t).collect();
    assert_eq!(got, vec!["kept"]);
    // maxConsumers 1: a second receiver is refused.
    h.run(Command::AttachReceiver {
        conn: 2,
        link: link(2),
        source: Subscribe::Queue("sub".into()),
    });
    match h.answers(2).as_slice() {
        [ToConn::Attached { result: Err(e), .. }] => {
            assert_eq!(e.condition, conditions::RESOURCE_LIMIT_EXCEEDED);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn anycast_grants_senders_only_what_receivers_granted() {
    let mut h = Harness::new(&[], &["a"], Vec::new());
    h.conn(1);
    h.conn(2);
    h.run(Command::AttachAnycastSender {
        conn: 1,
        link: link(9),
        address: "a".into(),
    });
    assert!(h.answers(1).is_empty(), "no receiver, no credit");
    h.receive(2, 1, Subscribe::Anycast("a".into()), 3);
    match h.answers(1).as_slice() {
        [ToConn::Credit { more: 3, .. }] => {}
        other => panic!("{other:?}"),
    }
    h.publish(1, 9, Route::Anycast("a".into()), "one", 0);
    h.publish(1, 9, Route::Anycast("a".into()), "two", 1);
    let got = h.delivered(2);
    assert_eq!(
        got.iter().map(|(_, _, t)| t.as_str()).collect::<Vec<_>>(),
        vec!["one", "two"]
    );
    assert!(
        published(&h.answers(1)).is_empty(),
        "outcomes wait for the receiver"
    );

    // The receiver's outcomes go back to the sender as they are.
    h.run(Command::Settle {
        conn: 2,
        link: link(1),
        messages: vec![got[0].1],
        state: DeliveryState::Accepted(Accepted {}),
    });
    h.run(Command::Settle {
        conn: 2,
        link: link(1),
        messages: vec![got[1].1],
        state: rejected(Symbol::from_static("app:bad"), "no".into()),
    });
    assert_eq!(
        published(&h.answers(1)),
        vec![(0, "accepted".into()), (1, "rejected app:bad".into())]
    );
}

#[test]
fn anycast_round_robins_and_returns_what_a_leaving_receiver_held() {
    let mut h = Harness::new(&[], &["a"], Vec::new());
    h.conn(1);
    h.conn(2);
    h.conn(3);
    h.run(Command::AttachAnycastSender {
        conn: 1,
        link: link(9),
        address: "a".into(),
    });
    h.receive(2, 1, Subscribe::Anycast("a".into()), 10);
    h.receive(3, 1, Subscribe::Anycast("a".into()), 10);
    for i in 0..4 {
        h.publish(1, 9, Route::Anycast("a".into()), &format!("m{i}"), i);
    }
    let to_two = h.delivered(2);
    let to_three = h.delivered(3);
    assert_eq!((to_two.len(), to_three.len()), (2, 2));
    // Receiver 3's connection goes with both unsettled: the sender hears they failed.
    h.answers(1);
    h.run(Command::Unregister { conn: 3 });
    let answers = published(&h.answers(1));
    assert_eq!(answers.len(), 2);
    assert!(answers.iter().all(|(_, s)| s == "modified"), "{answers:?}");
    // With no receiver left, a relayed message is released back to its sender.
    h.run(Command::Detach {
        conn: 2,
        link: link(1),
    });
    h.answers(1);
    h.publish(1, 5, Route::Anycast("a".into()), "nobody", 7);
    assert_eq!(published(&h.answers(1)), vec![(7, "released".into())]);
}

#[test]
fn a_message_a_connection_could_not_send_goes_to_the_next_anycast_receiver() {
    let mut h = Harness::new(&[], &["a"], Vec::new());
    h.conn(1);
    h.conn(2);
    h.conn(3);
    h.receive(2, 1, Subscribe::Anycast("a".into()), 1);
    h.publish(1, 5, Route::Anycast("a".into()), "x", 0);
    let (_, message, _) = h.delivered(2)[0].clone();
    h.receive(3, 1, Subscribe::Anycast("a".into()), 1);
    h.run(Command::Unsent {
        conn: 2,
        link: link(1),
        message,
    });
    let got: Vec<String> = h.delivered(3).into_iter().map(|(_, _, t)| t).collect();
    assert_eq!(got, vec!["x"]);
}

#[test]
fn a_queue_message_expires_on_time_without_a_consumer() {
    let q = StoredNode {
        address: "q".into(),
        policy: QueuePolicy {
            ttl: sluice_store::TtlPolicy {
                minimum_ms: None,
                maximum_ms: Some(100),
            },
            expiry_target: true,
            ..QueuePolicy::default()
        },
        dead_letter: None,
        expiry: Some("dlq".into()),
        subscription: None,
    };
    let dlq = stored("dlq", QueuePolicy::default());
    let mut h = Harness::new(&[], &[], vec![q, dlq]);
    h.conn(1);
    h.publish(1, 9, Route::Queue("q".into()), "ttl", 0);
    // The plan's maximum gave it 100 ms: the core's timer is set for then.
    assert_eq!(h.core.expiring.values().min().copied(), Some(NOW + 100));
    h.core.expire(NOW + 100);
    h.core.pump(NOW + 100);
    assert!(h.core.expiring.is_empty());
    assert_eq!(h.core.queues["q"].depth(), 0);
    assert_eq!(h.core.queues["dlq"].depth(), 1);
}

#[test]
fn a_full_queue_holds_publishes_until_a_consumer_makes_room() {
    let q = stored(
        "q",
        QueuePolicy {
            messages_max: 2,
            ..QueuePolicy::default()
        },
    );
    let mut h = Harness::new(&[], &[], vec![q]);
    h.conn(1);
    h.conn(2);
    for i in 0..4 {
        h.publish(1, 9, Route::Queue("q".into()), &format!("m{i}"), i);
    }
    // Two fit; two wait, unanswered, so the publisher's credit waits too.
    assert_eq!(
        published(&h.answers(1)),
        vec![(0, "accepted".into()), (1, "accepted".into())]
    );
    h.receive(2, 1, Subscribe::Queue("q".into()), 10);
    let first = h.delivered(2);
    assert_eq!(first.len(), 2);
    // Accepting one makes room for one, in order.
    h.accept(2, &first[..1]);
    assert_eq!(published(&h.answers(1)), vec![(2, "accepted".into())]);
    h.accept(2, &first[1..]);
    assert_eq!(published(&h.answers(1)), vec![(3, "accepted".into())]);
    let rest: Vec<String> = h.delivered(2).into_iter().map(|(_, _, t)| t).collect();
    assert_eq!(rest, vec!["m2", "m3"]);
}

#[test]
fn a_message_larger_than_a_queue_can_ever_hold_is_refused() {
    let q = stored(
        "q",
        QueuePolicy {
            bytes_max: 10,
            ..QueuePolicy::default()
        },
    );
    let mut h = Harness::new(&[], &[], vec![q]);
    h.conn(1);
    h.publish(
        1,
        9,
        Route::Queue("q".into()),
        "far too large for ten bytes",
        0,
    );
    assert_eq!(
        published(&h.answers(1)),
        vec![(0, "rejected amqp:resource-limit-exceeded".into())]
    );
}

#[test]
fn a_dead_letter_queue_at_its_limit_holds_what_is_moved_to_it() {
    let node = |address: &str, messages_max: usize, dead_letter: Option<&str>| StoredNode {
        address: address.into(),
        policy: QueuePolicy {
            messages_max,
            dead_letter_target: dead_letter.is_some(),
            ..QueuePolicy::default()
        },
        dead_letter: dead_letter.map(Into::into),
        expiry: None,
        subscription: None,
    };
    let mut h = Harness::new(
        &[],
        &[],
        vec![node("q", 100, Some("dlq")), node("dlq", 1, None)],
    );
    h.conn(1);
    h.conn(2);
    for i in 0..3 {
        h.publish(1, 9, Route::Queue("q".into()), &format!("m{i}"), i);
    }
    h.receive(2, 1, Subscribe::Queue("q".into()), 10);
    for (_, message, _) in h.delivered(2) {
        h.run(Command::Settle {
            conn: 2,
            link: link(1),
            messages: vec![message],
            state: rejected(Symbol::from_static("app:no"), "no".into()),
        });
    }
    // One fits the dead-letter queue; the other two wait for room instead of being dropped.
    assert_eq!(h.core.queues["q"].depth(), 0);
    assert_eq!(h.core.queues["dlq"].depth(), 1);
    assert_eq!(h.core.held["dlq"].len(), 2);
    h.receive(2, 2, Subscribe::Queue("dlq".into()), 10);
    let mut drained = Vec::new();
    for _ in 0..3 {
        let got = h.delivered(2);
        h.accept(2, &got);
        drained.extend(got.into_iter().map(|(_, _, t)| t));
    }
    assert_eq!(drained, vec!["m0", "m1", "m2"]);
    assert!(h.core.held.is_empty());
}

#[test]
fn a_wake_up_of_accepted_publishes_is_answered_with_ranges() {
    let q = stored("q", QueuePolicy::default());
    let mut h = Harness::new(&[], &[], vec![q]);
    h.conn(1);
    let publish = |handle: u32, id: u32, route: &str| Command::Publish {
        conn: 1,
        link: link(handle),
        route: Route::Queue(route.into()),
        message: ScannedMessage::scan(body("m")).unwrap(),
        settle: Some((SessionId(0), id)),
    };
    // Ids 0-2 on link 9 form one range; link 8's id 3 and the gap to 5 start new ones; the
    // unknown queue's rejection is answered on its own.
    for command in [
        publish(9, 0, "q"),
        publish(9, 1, "q"),
        publish(9, 2, "q"),
        publish(8, 3, "q"),
        publish(9, 5, "nowhere"),
    ] {
        h.core.apply(command, NOW);
    }
    h.core.out.flush();
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
