//! What the journal is told, and the answers that wait for it.
use super::topic::rejected_with;
use super::*;

fn durable_policy() -> QueuePolicy {
    QueuePolicy {
        durable: true,
        ..QueuePolicy::default()
    }
}

pub(super) fn changes(h: &Harness) -> Vec<(NodeId, String)> {
    h.journal
        .iter()
        .map(|r| {
            let what = match &r.change {
                Change::Stored { payload, .. } => format!("stored {}", text(payload)),
                Change::DeliveryCount { count, .. } => format!("count {count}"),
                Change::Removed { .. } => "removed".to_string(),
                Change::Paged { payload, .. } => format!("paged {}", text(payload)),
                Change::Atomic { records } => format!("unit of {records}"),
                Change::Remembered { id, .. } => format!("remembered {:?}", id.message_id),
            };
            (r.node, what)
        })
        .collect()
}

#[test]
fn a_durable_publish_is_journaled_and_its_answer_waits_for_the_journal() {
    let mut h = Harness::new(vec![queue("q", durable_policy())]);
    let q = at(0);
    h.conn(1);
    h.publish_bytes(1, 9, Route::to(q), durable_body("kept"), 0);
    h.publish(1, 9, Route::to(q), "fleeting", 1);
    assert_eq!(changes(&h), vec![(q, "stored kept".to_string())]);
    assert_eq!(h.journal[0].seq, 1);
    // The durable message's answer waits for record 1; the other's goes at once.
    assert_eq!(h.afters[&1], vec![Some(1), None]);
    assert_eq!(
        published(&h.answers(1)),
        vec![(0, "accepted".into()), (1, "accepted".into())]
    );
}

#[test]
fn a_message_that_is_not_durable_or_on_a_node_that_is_not_skips_the_journal() {
    let mut h = Harness::new(vec![queue("q", QueuePolicy::default())]);
    h.conn(1);
    h.publish_bytes(1, 9, Route::to(at(0)), durable_body("x"), 0);
    assert!(h.journal.is_empty());
    assert_eq!(h.afters[&1], vec![None]);
}

#[test]
fn an_acknowledged_durable_message_is_journaled_as_removed() {
    let mut h = Harness::new(vec![queue("q", durable_policy())]);
    let q = at(0);
    h.conn(1);
    h.conn(2);
    h.publish_bytes(1, 9, Route::to(q), durable_body("m"), 0);
    h.receive(2, 1, from(q, Filter::All), 10);
    let got = h.delivered(2);
    h.settle(
        2,
        1,
        got[0].1,
        DeliveryState::Modified(sluice_codec::transport::Modified {
            delivery_failed: true,
            ..Default::default()
        }),
    );
    let again = h.delivered(2);
    h.accept(2, &again);
    assert_eq!(
        changes(&h),
        vec![
            (q, "stored m".to_string()),
            (q, "count 1".to_string()),
            (q, "removed".to_string())
        ]
    );
}

#[test]
fn a_dead_lettered_durable_message_is_stored_by_its_target_before_its_source_lets_go() {
    let source = QueuePolicy {
        dead_letter_target: true,
        ..durable_policy()
    };
    let mut h = Harness::new(vec![
        queue_with("q", source, Some(at(1)), None),
        queue("dlq", durable_policy()),
    ]);
    let (q, dlq) = (at(0), at(1));
    h.conn(1);
    h.conn(2);
    h.publish_bytes(1, 9, Route::to(q), durable_body("bad"), 0);
    h.receive(2, 1, from(q, Filter::All), 10);
    let got = h.delivered(2);
    h.settle(2, 1, got[0].1, rejected_with("app:no"));
    assert_eq!(
        changes(&h),
        vec![
            (q, "stored bad".to_string()),
            (dlq, "stored bad".to_string()),
            (q, "removed".to_string())
        ]
    );
    let seqs: Vec<u64> = h.journal.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
}

#[test]
fn a_topic_publish_with_a_durable_subscription_waits_for_the_journal() {
    let sub = Node::Queue(QueueNode::new(QueuePlan {
        address: "sub".into(),
        policy: durable_policy(),
        dead_letter: None,
        expiry: None,
        max_consumers: Some(1),
        full: AddressFullPolicy::Block,
        reject_retries: false,
    }));
    let mut h = Harness::new(vec![topic("t", vec![at(1)]), sub]);
    h.conn(1);
    h.publish_bytes(1, 9, Route::to(at(0)), durable_body("m"), 0);
    assert_eq!(changes(&h), vec![(at(1), "stored m".to_string())]);
    assert_eq!(h.afters[&1], vec![Some(1)]);
}
