//! A transaction's commit: all of it in one step, with one unit in the journal, or none of it.
use sluice_codec::transport::Modified;

use super::*;

fn durable_queue(messages_max: usize) -> Node {
    queue(
        "q",
        QueuePolicy {
            durable: true,
            messages_max,
            ..QueuePolicy::default()
        },
    )
}

fn scanned(payload: Bytes) -> Box<ScannedMessage> {
    Box::new(ScannedMessage::scan(payload).unwrap())
}

/// A commit of durable messages `texts` to `node`, and of `settles`.
fn commit(
    node: NodeId,
    texts: &[&str],
    settles: Vec<(LinkId, Vec<MessageId>, DeliveryState)>,
) -> Command {
    Command::Commit(Box::new(Commit {
        discharge: (SessionId(0), 7),
        publishes: texts
            .iter()
            .map(|t| (Route::to(node), scanned(durable_body(t))))
            .collect(),
        settles,
    }))
}

fn accepted_state() -> DeliveryState {
    DeliveryState::Accepted(Accepted {})
}

/// The commit answers among `answers`: `Ok` or the reason.
fn committed(answers: &[ToConn]) -> Vec<Result<(), String>> {
    answers
        .iter()
        .filter_map(|a| match a {
            ToConn::Committed { discharge, result } => {
                assert_eq!(*discharge, (SessionId(0), 7));
                Some(result.clone())
            }
            _ => None,
        })
        .collect()
}

fn kinds(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| match &r.change {
            Change::Stored { payload, .. } => format!("stored {}", text(payload)),
            Change::Removed { .. } => "removed".to_string(),
            Change::DeliveryCount { count, .. } => format!("count {count}"),
            Change::Paged { .. } => "paged".to_string(),
            Change::Atomic { records } => format!("unit of {records}"),
            Change::Remembered { .. } => "remembered".to_string(),
        })
        .collect()
}

/// A harness whose queue holds "old", delivered to receiver 1 of connection 2.
fn with_delivery(messages_max: usize) -> (Harness, MessageId) {
    let mut h = Harness::new(vec![durable_queue(messages_max)]);
    h.conn(1);
    h.conn(2);
    h.publish_bytes(1, 9, Route::to(at(0)), durable_body("old"), 0);
    h.receive(2, 1, from(at(0), Filter::All), 10);
    let got = h.delivered(2);
    assert_eq!(got.len(), 1);
    (h, got[0].1)
}

#[test]
fn a_commit_applies_its_publishes_and_acks_as_one_unit_answered_after_the_journal() {
    let (mut h, old) = with_delivery(100);
    h.answers(1);
    let before = h.journal.len();
    let acks = vec![(link(1), vec![old], accepted_state())];
    h.run(1, commit(at(0), &["a", "b", "c"], vec![]));
    h.run(2, commit(at(0), &["d"], acks));
    assert_eq!(
        kinds(&h.journal[before..]),
        vec![
            "unit of 3",
            "stored a",
            "stored b",
            "stored c",
            "unit of 2",
            "stored d",
            "removed"
        ]
    );
    // Numbered in order, the markers included.
    let seqs: Vec<u64> = h.journal.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=h.journal.len() as u64).collect::<Vec<_>>());
    assert_eq!(committed(&h.answers(1)), vec![Ok(())]);
    assert_eq!(h.afters[&1].last(), Some(&Some(5)));
    // The receiver now gets the committed messages; the acknowledged one has gone.
    let got: Vec<String> = h.delivered(2).into_iter().map(|d| d.2).collect();
    assert_eq!(got, vec!["a", "b", "c", "d"]);
    assert_eq!(h.queue(at(0)).queue().depth(), 4);
}

#[test]
fn a_commit_without_room_for_all_stores_none_and_gives_the_acks_back() {
    let (mut h, old) = with_delivery(3);
    let before = h.journal.len();
    let acks = vec![(link(1), vec![old], accepted_state())];
    // One held, three more would pass the three the queue takes.
    h.run(2, commit(at(0), &["a", "b", "c"], acks));
    let answers = h.answers(2);
    let result = committed(&answers);
    let reason = result[0].as_ref().unwrap_err();
    assert!(reason.contains("'q' has no room"), "{reason}");
    assert_eq!(h.queue(at(0)).queue().depth(), 1);
    // The acknowledged delivery went back as a failed attempt, and comes again.
    assert_eq!(kinds(&h.journal[before..]), vec!["count 1"]);
    let again: Vec<String> = answers
        .iter()
        .filter_map(|a| match a {
            ToConn::Deliver { payload, .. } => Some(text(payload)),
            _ => None,
        })
        .collect();
    assert_eq!(again, vec!["old"]);
    // Room for two is room for a commit of two.
    h.run(2, commit(at(0), &["a", "b"], vec![]));
    assert_eq!(committed(&h.answers(2)), vec![Ok(())]);
    assert_eq!(h.queue(at(0)).queue().depth(), 3);
}

#[test]
fn a_commit_to_a_topic_or_anycast_address_is_refused_naming_it() {
    let mut h = Harness::new(vec![durable_queue(100), topic("news", vec![]), anycast()]);
    h.conn(1);
    for (node, address) in [(at(1), "news"), (at(2), "anycast")] {
        let mut publishes = vec![(Route::to(at(0)), scanned(durable_body("a")))];
        publishes.push((Route::to(node), scanned(body("b"))));
        h.run(
            1,
            Command::Commit(Box::new(Commit {
                discharge: (SessionId(0), 7),
                publishes,
                settles: vec![],
            })),
        );
        let result = committed(&h.answers(1));
        let reason = result[0].as_ref().unwrap_err();
        assert!(reason.contains(&format!("'{address}'")), "{reason}");
    }
    assert_eq!(h.queue(at(0)).queue().depth(), 0);
    assert!(h.journal.is_empty());
}

#[test]
fn a_commit_whose_receiver_has_detached_is_refused() {
    let (mut h, old) = with_delivery(100);
    h.run(2, Command::Detach { link: link(1) });
    let acks = vec![(link(1), vec![old], accepted_state())];
    h.run(2, commit(at(0), &["a"], acks));
    let result = committed(&h.answers(2));
    assert!(result[0].as_ref().unwrap_err().contains("detached"));
    // The message the detach gave back is still there, and nothing was added.
    assert_eq!(h.queue(at(0)).queue().depth(), 1);
}

#[test]
fn a_commit_of_one_record_needs_no_unit_and_one_of_none_waits_for_nothing() {
    let (mut h, old) = with_delivery(100);
    let before = h.journal.len();
    let failed = DeliveryState::Modified(Modified {
        delivery_failed: true,
        ..Default::default()
    });
    h.run(2, commit(at(0), &[], vec![(link(1), vec![old], failed)]));
    assert_eq!(kinds(&h.journal[before..]), vec!["count 1"]);
    assert_eq!(committed(&h.answers(2)), vec![Ok(())]);
    h.run(1, commit(at(0), &[], vec![]));
    assert_eq!(committed(&h.answers(1)), vec![Ok(())]);
    assert_eq!(h.afters[&1].last(), Some(&None));
}
