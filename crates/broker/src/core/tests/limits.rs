//! What the core holds for a client is bounded, and goes when the client goes.

use super::*;
use crate::core::queue::WAITING_BYTES_MAX;

fn full_queue() -> Harness {
    let policy = QueuePolicy {
        messages_max: 1,
        ..QueuePolicy::default()
    };
    let mut h = Harness::new(vec![queue("q", policy)]);
    h.conn(1);
    h.conn(2);
    h.publish(1, 1, Route::to(at(0)), "fills it", 0);
    assert_eq!(published(&h.answers(1)), accepted(1));
    h
}

#[test]
fn publishes_waiting_for_a_full_queue_go_with_their_connection() {
    let mut h = full_queue();
    for i in 0..10 {
        h.publish(2, 1, Route::to(at(0)), "parked", i);
    }
    assert_eq!(h.queue(at(0)).waiting.len(), 10);
    h.run(2, Command::Gone);
    assert!(h.queue(at(0)).waiting.is_empty());
    assert!(h.core.holding.is_empty());
}

#[test]
fn publishes_waiting_for_a_full_queue_go_with_their_link() {
    let mut h = full_queue();
    for i in 0..4 {
        h.publish(2, 1, Route::to(at(0)), "from link 1", i);
        h.publish(2, 2, Route::to(at(0)), "from link 2", 10 + i);
    }
    h.run(2, Command::Detach { link: link(1) });
    assert_eq!(h.queue(at(0)).waiting.len(), 4);
    // Room again: only link 2's publishes are placed and answered.
    h.conn(3);
    h.receive(3, 1, from(at(0), Filter::All), 100);
    for _ in 0..5 {
        let got = h.delivered(3);
        h.accept(3, &got);
    }
    let answered: Vec<u32> = published(&h.answers(2))
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(answered, vec![10, 11, 12, 13]);
}

#[test]
fn a_publish_and_its_link_detaching_in_one_wake_up_leave_nothing_behind() {
    let mut h = full_queue();
    h.apply(
        2,
        Command::Publish {
            link: link(1),
            route: Route::to(at(0)),
            message: Box::new(ScannedMessage::scan(body("parked")).unwrap()),
            settle: Some((SessionId(0), 0)),
        },
    );
    h.apply(2, Command::Detach { link: link(1) });
    h.flush();
    assert!(h.queue(at(0)).waiting.is_empty());
}

#[test]
fn a_full_queue_refuses_publishes_past_what_may_wait() {
    let mut h = full_queue();
    let big = body(&"x".repeat(1024 * 1024));
    let fit = WAITING_BYTES_MAX / big.len();
    for i in 0..(fit as u32 + 3) {
        h.publish_bytes(2, 1, Route::to(at(0)), big.clone(), i);
    }
    let refused = published(&h.answers(2));
    assert_eq!(
        refused,
        (fit as u32..fit as u32 + 3)
            .map(|i| (i, "rejected amqp:resource-limit-exceeded".to_string()))
            .collect::<Vec<_>>(),
        "more links or connections cannot make a full queue hold more"
    );
    assert_eq!(h.queue(at(0)).waiting.len(), fit);
}

#[test]
fn a_full_topic_refuses_publishes_past_what_may_wait_and_forgets_a_gone_publisher() {
    let mut h = Harness::new(vec![topic("t", vec![])]);
    let t = at(0);
    h.conn(1);
    h.conn(2);
    h.receive(2, 1, from(t, Filter::All), 0);
    let big = body(&"x".repeat(1024 * 1024));
    // The topic's own buffer, then what may wait beyond it.
    let buffered = crate::core::topic::TOPIC_BUFFER_BYTES / big.len();
    let waiting = WAITING_BYTES_MAX / big.len();
    let total = (buffered + waiting + 2) as u32;
    for i in 0..total {
        h.publish_bytes(1, 9, Route::to(t), big.clone(), i);
    }
    let answers = published(&h.answers(1));
    let refused = answers
        .iter()
        .filter(|(_, s)| s.starts_with("rejected"))
        .count();
    assert_eq!(answers.len() - refused, buffered);
    assert_eq!(refused, 2);
    h.run(1, Command::Gone);
    assert!(!h.topic(t).is_holding());
}

#[test]
fn an_anycast_address_releases_what_arrives_past_what_may_wait() {
    let mut h = Harness::new(vec![anycast()]);
    h.conn(1);
    h.conn(2);
    h.receive(2, 1, from(at(0), Filter::All), 0);
    let big = body(&"x".repeat(1024 * 1024));
    let fit = WAITING_BYTES_MAX / big.len();
    for i in 0..(fit as u32 + 1) {
        h.publish_bytes(1, 5, Route::to(at(0)), big.clone(), i);
    }
    assert_eq!(
        published(&h.answers(1)),
        vec![(fit as u32, "released".to_string())]
    );
    h.run(1, Command::Detach { link: link(5) });
    h.credit(2, 1, 100);
    assert!(
        h.delivered(2).is_empty(),
        "what the gone sender sent is dropped"
    );
}
