//! Paging, the memory budget and the address-full policies, through the core: what a queue
//! pages, that reads come back in order, and who waits or is refused when memory or room runs
//! out.

use sluice_codec::transport::conditions;

use super::*;
use crate::core::AddressFullPolicy;

fn size() -> usize {
    durable_body("m0").len()
}

/// A durable queue that pages past room for `memory_messages` messages.
fn paging(memory_messages: usize) -> QueuePolicy {
    QueuePolicy {
        durable: true,
        paging: true,
        memory_max: memory_messages * size(),
        ..QueuePolicy::default()
    }
}

fn with_policy(policy: QueuePolicy, full: AddressFullPolicy) -> Node {
    Node::Queue(QueueNode::new(QueuePlan {
        address: "q".into(),
        policy,
        dead_letter: None,
        expiry: None,
        max_consumers: None,
        full,
        reject_retries: false,
    }))
}

#[test]
fn a_backlog_past_the_budget_is_paged_and_read_back_in_order() {
    let mut h = Harness::new(vec![queue("q", paging(4))]);
    let q = at(0);
    h.conn(1);
    h.conn(2);
    for i in 0..40 {
        h.publish_bytes(1, 1, Route::to(q), durable_body(&format!("m{i}")), i);
    }
    assert_eq!(published(&h.answers(1)).len(), 40, "every one accepted");
    assert!(h.queue(q).memory_bytes() <= 4 * size());
    assert_eq!(h.queue(q).queue().paged(), 36);
    // A consumer with room for all reads them back, a few at a time, in order.
    h.receive(2, 1, from(q, Filter::All), 100);
    let mut got = Vec::new();
    for _ in 0..100 {
        let d = h.delivered(2);
        if d.is_empty() {
            break;
        }
        got.extend(d.iter().map(|(_, _, t)| t.clone()));
        h.accept(2, &d);
    }
    let want: Vec<String> = (0..40).map(|i| format!("m{i}")).collect();
    assert_eq!(got, want);
    assert!(h.reads > 1, "read back in more than one read");
    assert!(h.disk.is_empty(), "every message logged removed");
}

#[test]
fn over_the_memory_budget_a_paging_queue_keeps_accepting_on_disk() {
    let mut h = Harness::new(vec![queue("q", paging(1000))]);
    h.core.set_memory_max(2 * size());
    h.conn(1);
    for i in 0..10 {
        h.publish_bytes(1, 1, Route::to(at(0)), durable_body(&format!("m{i}")), i);
    }
    assert_eq!(published(&h.answers(1)).len(), 10);
    let (over, used, _) = h.core.memory();
    assert!(over);
    // One wake-up's arrival may pass the budget before the pressure is on: that is the margin.
    assert!(used <= 3 * size(), "{used}");
}

#[test]
fn over_the_memory_budget_publishers_to_a_queue_that_cannot_page_wait_for_room() {
    let mut h = Harness::new(vec![queue("q", QueuePolicy::default())]);
    h.core.set_memory_max(2 * size());
    h.conn(1);
    h.conn(2);
    for i in 0..6 {
        h.publish(1, 1, Route::to(at(0)), &format!("m{i}"), i);
    }
    let answered = published(&h.answers(1)).len();
    assert!(answered < 6, "publishers are held back");
    assert!(!h.queue(at(0)).waiting.is_empty());
    // A consumer drains it; memory falls and the waiting publishes are placed and answered.
    h.receive(2, 1, from(at(0), Filter::All), 100);
    for _ in 0..20 {
        let d = h.delivered(2);
        if d.is_empty() {
            break;
        }
        h.accept(2, &d);
    }
    assert_eq!(published(&h.answers(1)).len(), 6 - answered);
    assert!(h.queue(at(0)).waiting.is_empty());
    assert!(!h.core.memory().0);
}

#[test]
fn a_full_queue_with_policy_fail_refuses_with_resource_limit_exceeded() {
    let policy = QueuePolicy {
        messages_max: 2,
        ..QueuePolicy::default()
    };
    let bytes_policy = QueuePolicy {
        bytes_max: 2 * body("m0").len(),
        ..policy
    };
    let mut h = Harness::new(vec![with_policy(bytes_policy, AddressFullPolicy::Fail)]);
    h.conn(1);
    for i in 0..3 {
        h.publish(1, 1, Route::to(at(0)), &format!("m{i}"), i);
    }
    let answers = h.answers(1);
    let outcomes = published(&answers);
    assert_eq!(outcomes.len(), 3);
    assert_eq!(&outcomes[..2], &accepted(2)[..]);
    assert!(
        outcomes[2]
            .1
            .contains(conditions::RESOURCE_LIMIT_EXCEEDED.as_str()),
        "{outcomes:?}"
    );
    assert!(h.queue(at(0)).waiting.is_empty());
}

#[test]
fn a_full_queue_with_policy_drop_drops_the_oldest() {
    let policy = QueuePolicy {
        bytes_max: 2 * body("m0").len(),
        ..QueuePolicy::default()
    };
    let mut h = Harness::new(vec![with_policy(policy, AddressFullPolicy::Drop)]);
    h.conn(1);
    h.conn(2);
    for i in 0..4 {
        h.publish(1, 1, Route::to(at(0)), &format!("m{i}"), i);
    }
    assert_eq!(published(&h.answers(1)), accepted(4));
    assert_eq!(h.queue(at(0)).queue().counters().dropped, 2);
    h.receive(2, 1, from(at(0), Filter::All), 10);
    assert_eq!(h.texts(2), vec!["m2", "m3"]);
}

#[test]
fn recovered_messages_left_on_disk_are_read_back_after_the_loaded_ones() {
    let mut h = Harness::new(vec![queue("q", paging(2))]);
    let q = at(0);
    let loaded = vec![sluice_store::journal::RecoveredMessage {
        id: MessageId(5),
        payload: durable_body("first"),
        delivery_count: 0,
    }];
    let on_disk = vec![sluice_store::journal::PagedMessage {
        id: MessageId(6),
        size: durable_body("second").len() as u32,
        delivery_count: 1,
    }];
    h.disk.insert((q, MessageId(6)), durable_body("second"));
    let undecodable = h.core.restore("q", loaded, on_disk, NOW).unwrap();
    assert!(undecodable.is_empty());
    h.flush();
    h.conn(2);
    h.receive(2, 1, from(q, Filter::All), 10);
    let mut got = h.delivered(2);
    h.accept(2, &got);
    got.extend(h.delivered(2));
    let texts: Vec<&str> = got.iter().map(|(_, _, t)| t.as_str()).collect();
    assert_eq!(texts, ["first", "second"]);
}
