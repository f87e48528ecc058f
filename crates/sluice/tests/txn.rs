//! Black-box tests of local transactions (AMQP 1.0 part 4): Qpid Proton's own transaction
//! examples (`/usr/share/proton/examples/python/tx_send.py` and `tx_recv.py`, Debian package
//! `libqpid-proton11-dev-examples`) run unchanged against `sluice serve`; and the `tx`
//! subcommand of `interop/proton_client.py` (Proton's reactor API): rollback and commit of
//! sends and acknowledgements, a connection lost mid-transaction, discharges of unknown or
//! discharged transactions, and commits refused whole.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use support::*;

/// Runs one of Proton's examples against `server`'s `myqueue`, 50 messages in transactions of
/// 10; its stdout.
fn tx_example(server: &Server, script: &str) -> String {
    let address = example_address(server, "myqueue");
    example(script, &["-a", &address, "-m", "50", "-b", "10"])
}

#[test]
fn proton_tx_send_commits_50_messages_that_tx_recv_takes_in_transactions() {
    require_proton();
    let server = Server::start("txn-proton");
    let sent = tx_example(&server, "tx_send.py");
    assert!(sent.contains("all messages committed"), "tx_send: {sent}");
    let received = tx_example(&server, "tx_recv.py");
    let bodies: Vec<&str> = received
        .lines()
        .filter(|l| l.contains("sequence"))
        .collect();
    assert_eq!(bodies.len(), 50, "tx_recv: {received}");
    for i in 1..=50 {
        let want = format!("'sequence': {i}}}");
        assert_eq!(
            bodies.iter().filter(|b| b.ends_with(&want)).count(),
            1,
            "message {i} exactly once: {received}"
        );
    }
}

/// The outcomes of the transactions a `tx` run discharged, with their conditions.
fn outcomes(json: &serde_json::Value) -> Vec<(String, Option<String>)> {
    json["transactions"]
        .as_array()
        .unwrap_or_else(|| panic!("no transactions in {json}"))
        .iter()
        .map(|t| {
            let outcome = t["outcome"].as_str().unwrap().to_string();
            (outcome, t["condition"].as_str().map(str::to_string))
        })
        .collect()
}

fn committed(n: usize) -> Vec<(String, Option<String>)> {
    vec![("committed".to_string(), None); n]
}

/// Each delivery count a `receive` or `tx` run reported.
fn delivery_counts(json: &serde_json::Value) -> Vec<u64> {
    json["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["delivery_count"].as_u64().unwrap())
        .collect()
}

#[test]
fn committed_sends_all_arrive_and_rolled_back_sends_never_do() {
    require_proton();
    let server = Server::start("txn-sends");
    let run = server.run(&["tx", "myqueue", "--send", "5", "--end", "abort"]);
    let json = ok(&server, run, "an aborted transaction");
    assert_eq!(outcomes(&json), vec![("aborted".to_string(), None)]);
    assert_empty(&server, "myqueue");
    let run = server.run(&["tx", "myqueue", "--send", "5", "--transactions", "2"]);
    assert_eq!(outcomes(&ok(&server, run, "two commits")), committed(2));
    let got = ok(
        &server,
        server.run(&["receive", "myqueue", "10"]),
        "receive",
    );
    let want: Vec<String> = (0..2)
        .flat_map(|t| (0..5).map(move |j| format!("t{t}-{j}")))
        .collect();
    assert_eq!(bodies(&got), want);
    assert_empty(&server, "myqueue");
}

#[test]
fn rolled_back_acks_redeliver_with_the_count_up_and_committed_acks_remove() {
    require_proton();
    let server = Server::start("txn-acks");
    ok(&server, server.run(&["send", "myqueue", "3"]), "send");
    let run = server.run(&["tx", "myqueue", "--accept", "3", "--end", "abort"]);
    let json = ok(&server, run, "an aborted transaction of acks");
    assert_eq!(outcomes(&json), vec![("aborted".to_string(), None)]);
    assert_eq!(delivery_counts(&json), vec![0, 0, 0]);
    let run = server.run(&["tx", "myqueue", "--accept", "3"]);
    let json = ok(&server, run, "a committed transaction of acks");
    assert_eq!(outcomes(&json), committed(1));
    assert_eq!(
        json["received"],
        serde_json::json!(["msg-0", "msg-1", "msg-2"])
    );
    // Given back as failed attempts (modified{delivery-failed}), as Artemis does.
    assert_eq!(delivery_counts(&json), vec![1, 1, 1]);
    assert_empty(&server, "myqueue");
}

#[test]
fn a_connection_lost_mid_transaction_drops_its_sends_and_gives_its_acks_back() {
    require_proton();
    let server = Server::start("txn-lost");
    ok(&server, server.run(&["send", "myqueue", "2"]), "send");
    let sockets = server.open_sockets();
    let mut client = server.spawn(&[
        "tx", "myqueue", "--send", "3", "--accept", "2", "--end", "hold",
    ]);
    client.wait_line(&server, "held");
    client.kill();
    server.wait_open_sockets(sockets);
    let got = ok(&server, server.run(&["receive", "myqueue", "2"]), "receive");
    assert_eq!(bodies(&got), ["msg-0", "msg-1"]);
    assert_eq!(delivery_counts(&got), vec![1, 1]);
    assert_empty(&server, "myqueue");
}

#[test]
fn a_discharge_of_an_unknown_or_discharged_transaction_is_refused() {
    require_proton();
    let server = Server::start("txn-unknown");
    let unknown = Some("amqp:transaction:unknown-id".to_string());
    let run = server.run(&["tx", "myqueue", "--send", "1", "--end", "unknown-id"]);
    let json = ok(&server, run, "an unknown txn-id");
    assert_eq!(
        outcomes(&json),
        vec![("failed".to_string(), unknown.clone())]
    );
    let run = server.run(&["tx", "myqueue", "--send", "1", "--end", "twice"]);
    let json = ok(&server, run, "a second discharge");
    assert_eq!(
        outcomes(&json),
        vec![
            ("committed".to_string(), None),
            ("failed".to_string(), unknown)
        ]
    );
    // The unknown discharge left its transaction open, rolled back with its connection; the
    // twice-discharged one was committed once.
    let got = ok(&server, server.run(&["receive", "myqueue", "1"]), "receive");
    assert_eq!(bodies(&got), ["t0-0"]);
    assert_empty(&server, "myqueue");
}

#[test]
fn a_commit_the_queue_has_no_room_for_rolls_back_whole_naming_the_cause() {
    require_proton();
    // myqueue's plan has 0.01 of the broker: about 10 kB of 1 MB.
    let yaml = with_broker_infra(ADDRESS_SPACE, "{globalMaxSize: 1Mb}");
    let server = Server::start_config("txn-full", &yaml, &[]);
    let run = server.run(&["tx", "myqueue", "--send", "10", "--size", "2000"]);
    let json = ok(&server, run, "a commit too big for the queue");
    let t = &json["transactions"][0];
    assert_eq!(t["outcome"], "failed", "{json}");
    assert_eq!(t["condition"], "amqp:transaction:rollback", "{json}");
    let description = t["description"].as_str().unwrap();
    assert!(
        description.contains("'myqueue' has no room"),
        "{description}"
    );
    assert_empty(&server, "myqueue");
    // What fits commits.
    let run = server.run(&["tx", "myqueue", "--send", "2", "--size", "2000"]);
    assert_eq!(
        outcomes(&ok(&server, run, "a commit that fits")),
        committed(1)
    );
}

/// (An anycast sender gets no credit without a receiver; the core's tests cover its commit.)
#[test]
fn a_transactional_send_to_a_topic_rolls_back_naming_it() {
    require_proton();
    let server = Server::start("txn-topic");
    let run = server.run(&["tx", "mytopic", "--send", "1"]);
    let json = ok(&server, run, "a commit to a topic");
    let t = &json["transactions"][0];
    assert_eq!(t["condition"], "amqp:transaction:rollback", "{json}");
    let description = t["description"].as_str().unwrap();
    assert!(description.contains("'mytopic'"), "{description}");
}
