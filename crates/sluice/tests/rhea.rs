//! Black-box interop tests of `sluice serve` with a second, independent AMQP 1.0 client: rhea
//! (the npm package, pinned in `tests/rhea/package-lock.json`), driven through
//! `tests/rhea/client.js` on Node. One test also hands messages from rhea to Qpid Proton's
//! Python client (`tests/interop/proton_client.py`, as in `serve.rs`).
//!
//! rhea must be installed first: `npm ci` in `crates/sluice/tests/rhea` (`scripts/test.sh` does
//! it). Without it these tests fail, never skip. rhea has no transaction API: the `tx`
//! subcommand of `client.js` speaks part 4 itself (a coordinator target, declare and discharge
//! bodies, transactional-state on transfers and dispositions).
//!
//! Every test writes its own address space into a fresh temp folder, starts its own server on
//! `127.0.0.1:0` and kills it when done (`Server`'s `Drop`); every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use support::*;

fn numbered(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("msg-{i}")).collect()
}

#[test]
fn rhea_round_trips_100_messages_through_a_queue_in_order() {
    let server = Server::start("order");
    let sent = ok(
        &server,
        server.run_with(Peer::Rhea, &["send", "myqueue", "100"]),
        "rhea send 100",
    );
    assert_eq!(sent["sent"], 100, "{sent}");
    assert_eq!(sent["accepted"], 100, "every message accepted: {sent}");
    assert_eq!(sent["outcomes"]["accepted"], 100, "{sent}");

    let received = ok(
        &server,
        server.run_with(Peer::Rhea, &["receive", "myqueue", "100"]),
        "rhea receive 100",
    );
    assert_eq!(bodies(&received), numbered(100), "in the order sent");
    assert_eq!(
        received["presettled"], 0,
        "queue deliveries arrive unsettled, for the receiver to accept: {received}"
    );
    assert_queue_empty_with(&server, Peer::Rhea);
}

#[test]
fn a_rhea_receiver_gets_every_message_a_rhea_sender_multicasts() {
    let server = Server::start("multicast");
    // Multicast stores nothing: the sender starts only once the broker has the credit.
    let mut receiver = server.spawn_with(
        Peer::Rhea,
        &["receive", "mymulticast", "10", "--name", "rhea-mc"],
    );
    receiver.wait_ready(&server);

    let sent = ok(
        &server,
        server.run_with(Peer::Rhea, &["send", "mymulticast", "10"]),
        "rhea send 10 to mymulticast",
    );
    assert_eq!(sent["accepted"], 10, "{sent}");

    let received = ok(&server, receiver.finish(&server), "rhea receive 10");
    assert_eq!(bodies(&received), numbered(10), "every message, in order");
    assert_eq!(
        received["presettled"], 10,
        "multicast deliveries go out settled: {received}"
    );
}

#[test]
fn rhea_attaching_to_an_undefined_address_is_refused_with_not_found() {
    let server = Server::start("notfound");
    for role in ["sender", "receiver"] {
        let outcome = server.run_with(Peer::Rhea, &["attach", "nowhere", "--role", role]);
        assert_eq!(
            outcome.status.code(),
            Some(3),
            "a rhea {role} to `nowhere` should be refused: {outcome:?}\nserver stderr:\n{}",
            server.log()
        );
        assert_eq!(outcome.json["attached"], false, "{}", outcome.json);
        assert_eq!(
            outcome.json["condition"], "amqp:not-found",
            "{}",
            outcome.json
        );
        assert_eq!(
            outcome.json["closed"], "link",
            "the link is refused, not the connection: {}",
            outcome.json
        );

        // A defined address attaches on the same server.
        let good = ok(
            &server,
            server.run_with(Peer::Rhea, &["attach", "myqueue", "--role", role]),
            "rhea attach to myqueue",
        );
        assert_eq!(good["attached"], true, "{good}");
        assert_eq!(good["address"], "myqueue", "{good}");
    }
}

#[test]
fn what_rhea_sends_proton_receives() {
    let server = Server::start("cross");
    require_proton();
    let sent = ok(
        &server,
        server.run_with(Peer::Rhea, &["send", "myqueue", "20"]),
        "rhea send 20",
    );
    assert_eq!(sent["accepted"], 20, "{sent}");

    let received = ok(
        &server,
        server.run_with(Peer::Proton, &["receive", "myqueue", "20"]),
        "Proton receive 20",
    );
    assert_eq!(
        bodies(&received),
        numbered(20),
        "Proton reads rhea's string bodies, in order"
    );
    assert_queue_empty_with(&server, Peer::Rhea);
}

#[test]
fn rhea_topic_subscribers_each_get_every_message() {
    let server = Server::start("rhea-topic");
    let mut receivers: Vec<Client> = ["rhea-sub-1", "rhea-sub-2"]
        .iter()
        .map(|name| server.spawn_with(Peer::Rhea, &["receive", "mytopic", "10", "--name", name]))
        .collect();
    for receiver in &mut receivers {
        receiver.wait_ready(&server);
    }
    let sent = ok(
        &server,
        server.run_with(Peer::Rhea, &["send", "mytopic", "10"]),
        "rhea send 10 to mytopic",
    );
    assert_eq!(sent["accepted"], 10, "{sent}");
    for receiver in receivers {
        let received = ok(&server, receiver.finish(&server), "rhea topic receive");
        assert_eq!(
            bodies(&received),
            numbered(10),
            "every subscriber, every message, in order"
        );
        assert_eq!(
            received["presettled"], 0,
            "topic deliveries are settled by the receiver"
        );
    }
}

#[test]
fn a_proton_sender_reaches_a_rhea_receiver_over_anycast() {
    let server = Server::start("rhea-anycast");
    require_proton();
    // Anycast stores nothing: the sender gets credit once the receiver has granted its own.
    let mut receiver = server.spawn_with(
        Peer::Rhea,
        &["receive", "myanycast", "10", "--name", "rhea-any"],
    );
    receiver.wait_ready(&server);
    let sent = ok(
        &server,
        server.run_with(Peer::Proton, &["send", "myanycast", "10"]),
        "Proton send 10 to myanycast",
    );
    assert_eq!(
        sent["accepted"], 10,
        "the receiver's accepts reach the sender: {sent}"
    );
    let received = ok(&server, receiver.finish(&server), "rhea anycast receive");
    assert_eq!(bodies(&received), numbered(10));
}

/// Two rhea receivers on one queue, each with a JMS selector: each gets the messages it
/// selects, in order, and the attach reply says the selector is in force.
#[test]
fn rhea_receivers_with_selectors_split_a_queue_between_them() {
    let server = Server::start("rhea-selectors");
    // Message i has the application properties index i and colour green (even) or red (odd).
    let mut green = server.spawn_with(
        Peer::Rhea,
        &["receive", "myqueue", "5", "--selector", "colour = 'green'"],
    );
    let mut high = server.spawn_with(
        Peer::Rhea,
        &[
            "receive",
            "myqueue",
            "3",
            "--selector",
            "colour <> 'green' AND index BETWEEN 3 AND 7",
        ],
    );
    green.wait_ready(&server);
    high.wait_ready(&server);
    let sent = ok(
        &server,
        server.run_with(Peer::Rhea, &["send", "myqueue", "10"]),
        "rhea send 10",
    );
    assert_eq!(sent["accepted"], 10, "{sent}");

    let green = ok(&server, green.finish(&server), "the green receiver");
    assert_eq!(
        bodies(&green),
        ["msg-0", "msg-2", "msg-4", "msg-6", "msg-8"],
        "{green}"
    );
    assert_eq!(
        green["filters"],
        serde_json::json!(["jms-selector"]),
        "rhea's filter key is echoed: {green}"
    );
    let high = ok(&server, high.finish(&server), "the red 3..7 receiver");
    assert_eq!(bodies(&high), ["msg-3", "msg-5", "msg-7"], "{high}");
    // msg-1 and msg-9 matched neither and wait for a plain consumer.
    let rest = ok(
        &server,
        server.run_with(Peer::Rhea, &["receive", "myqueue", "2"]),
        "the rest",
    );
    assert_eq!(bodies(&rest), ["msg-1", "msg-9"], "{rest}");
    assert_queue_empty_with(&server, Peer::Rhea);
}

/// A rhea `tx` run's outcome ("committed", "aborted" or "failed").
fn rhea_tx(server: &Server, count: &str, mode: &str, end: &str) -> serde_json::Value {
    let args = ["tx", "myqueue", count, "--mode", mode, "--end", end];
    ok(server, server.run_with(Peer::Rhea, &args), "rhea tx")
}

#[test]
fn rhea_transactional_sends_appear_at_commit_only() {
    let server = Server::start("rhea-txn-send");
    assert_eq!(rhea_tx(&server, "3", "send", "abort")["outcome"], "aborted");
    assert_queue_empty_with(&server, Peer::Rhea);
    assert_eq!(
        rhea_tx(&server, "3", "send", "commit")["outcome"],
        "committed"
    );
    let received = ok(
        &server,
        server.run_with(Peer::Rhea, &["receive", "myqueue", "3"]),
        "rhea receive 3",
    );
    assert_eq!(bodies(&received), ["tx-0", "tx-1", "tx-2"]);
    assert_queue_empty_with(&server, Peer::Rhea);
}

#[test]
fn rhea_transactional_acks_take_effect_at_commit_only() {
    let server = Server::start("rhea-txn-ack");
    ok(
        &server,
        server.run_with(Peer::Rhea, &["send", "myqueue", "2"]),
        "rhea send 2",
    );
    let aborted = rhea_tx(&server, "2", "accept", "abort");
    assert_eq!(aborted["outcome"], "aborted");
    assert_eq!(bodies(&aborted), numbered(2));
    // Rolled back: both are there again.
    let committed = rhea_tx(&server, "2", "accept", "commit");
    assert_eq!(committed["outcome"], "committed");
    assert_eq!(bodies(&committed), numbered(2));
    assert_queue_empty_with(&server, Peer::Rhea);
}
