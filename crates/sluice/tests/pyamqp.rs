//! Black-box interop tests of `sluice serve` with a third independent AMQP 1.0 client: pyamqp,
//! the pure-Python stack inside PyPI's azure-servicebus (`azure.servicebus._pyamqp`, which the
//! Azure SDKs for Python run on), driven through `tests/interop/pyamqp_client.py` with its own
//! `Connection`, `Session` and link classes (no Service Bus specifics such as CBS).
//!
//! pyamqp must be installed first: `scripts/test.sh` puts the pinned azure-servicebus into the
//! virtualenv `target/pyamqp-venv`. Without it these tests fail, never skip.
//!
//! Besides a round trip and a topic, these pin down three faults pyamqp found: a sender asking
//! for `rcv-settle-mode: second` was refused; a receiver's selector filter was echoed back
//! although none is applied; and the anonymous-relay sender never became ready, since the
//! attach reply's target was an empty list, which pyamqp reads as no target.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use serde_json::Value;
use support::*;

const SELECTOR_FILTER: &str = "apache.org:selector-filter:string";

fn numbered(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("msg-{i}")).collect()
}

/// Sends `count` messages with pyamqp (`extra` after the count) and asserts every one was
/// accepted; returns the client's report.
fn send_accepted(server: &Server, address: &str, count: usize, extra: &[&str]) -> Value {
    let n = count.to_string();
    let mut args = vec!["send", address, n.as_str()];
    args.extend_from_slice(extra);
    let what = format!("pyamqp {}", args.join(" "));
    let sent = ok(server, server.run_with(Peer::Pyamqp, &args), &what);
    assert_eq!(sent["sent"], count, "{sent}");
    assert_eq!(sent["accepted"], count, "every message accepted: {sent}");
    assert_eq!(sent["outcomes"]["accepted"], count, "{sent}");
    sent
}

/// Receives (and accepts) `count` messages from `address` with pyamqp; returns its report.
fn receive(server: &Server, address: &str, count: usize, extra: &[&str]) -> Value {
    let n = count.to_string();
    let mut args = vec!["receive", address, n.as_str()];
    args.extend_from_slice(extra);
    let what = format!("pyamqp {}", args.join(" "));
    ok(server, server.run_with(Peer::Pyamqp, &args), &what)
}

#[test]
fn pyamqp_round_trips_100_messages_through_a_queue_in_order() {
    let server = Server::start("pyamqp-order");
    let sent = send_accepted(&server, "myqueue", 100, &[]);
    assert_eq!(
        sent["remote"]["target"][0], "myqueue",
        "the attach reply names the queue: {sent}"
    );

    let received = receive(&server, "myqueue", 100, &[]);
    assert_eq!(bodies(&received), numbered(100), "in the order sent");
    assert_eq!(
        received["presettled"], 0,
        "queue deliveries arrive unsettled, for the receiver to accept: {received}"
    );
    assert_queue_empty_with(&server, Peer::Pyamqp);
}

#[test]
fn what_pyamqp_sends_proton_receives_and_back() {
    let server = Server::start("pyamqp-cross");
    send_accepted(&server, "myqueue", 10, &[]);
    let received = ok(
        &server,
        server.run_with(Peer::Proton, &["receive", "myqueue", "10"]),
        "Proton receive 10",
    );
    assert_eq!(
        bodies(&received),
        numbered(10),
        "Proton reads pyamqp's amqp-value string bodies, in order"
    );

    let sent = ok(
        &server,
        server.run_with(Peer::Proton, &["send", "myqueue", "10"]),
        "Proton send 10",
    );
    assert_eq!(sent["accepted"], 10, "{sent}");
    let received = receive(&server, "myqueue", 10, &[]);
    assert_eq!(bodies(&received), numbered(10), "pyamqp reads Proton's");
    assert_queue_empty(&server);
}

/// The Azure SDKs' senders ask for `rcv-settle-mode: second` by default. Sluice settles first
/// and must say so in its attach (part 2 §2.7.3: the receiver's mode is the one in force),
/// not refuse the link with `amqp:not-implemented`.
#[test]
fn a_pyamqp_sender_asking_to_settle_second_is_attached_and_its_messages_accepted() {
    let server = Server::start("pyamqp-second");
    let sent = send_accepted(&server, "myqueue", 10, &["--settle-second"]);
    assert_eq!(
        sent["remote"]["rcv_settle_mode"], 0,
        "the reply answers with rcv-settle-mode first (0), the mode Sluice settles in: {sent}"
    );

    let received = receive(&server, "myqueue", 10, &[]);
    assert_eq!(
        bodies(&received),
        numbered(10),
        "stored once each, in order"
    );
    assert_queue_empty_with(&server, Peer::Pyamqp);
}

/// Part 3 §3.5.3: the sending end of a link sets the filter actually in place, and the
/// receiver checks it. A JMS selector on a queue is applied and echoed: the receiver gets only
/// the messages it selects, in order, and the others stay for other consumers.
#[test]
fn a_pyamqp_receivers_selector_gets_only_what_it_selects_and_is_echoed() {
    let server = Server::start("pyamqp-selector");
    // Message i has colour green for even i, red for odd.
    send_accepted(&server, "myqueue", 6, &[]);

    let red = receive(&server, "myqueue", 3, &["--selector", "colour = 'red'"]);
    let filters = &red["remote"]["filters"];
    assert!(
        filters.get(SELECTOR_FILTER).is_some(),
        "the selector in force is in the attach reply's source: {red}"
    );
    assert_eq!(bodies(&red), ["msg-1", "msg-3", "msg-5"], "{red}");
    let rest = receive(&server, "myqueue", 3, &[]);
    assert_eq!(bodies(&rest), ["msg-0", "msg-2", "msg-4"], "{rest}");
}

/// A selector that does not parse refuses the attach, naming what is wrong.
#[test]
fn a_pyamqp_receiver_with_a_bad_selector_is_refused_with_invalid_field() {
    let server = Server::start("pyamqp-bad-selector");
    let refused = server.run_with(
        Peer::Pyamqp,
        &["receive", "myqueue", "1", "--selector", "colour = "],
    );
    assert_eq!(refused.code(), Some(3), "refused: {refused:?}");
    assert_eq!(
        refused.json["condition"], "amqp:invalid-field",
        "{}",
        refused.json
    );
    let description = refused.json["description"].as_str().unwrap_or_default();
    assert!(
        description.contains("selector"),
        "the description names the selector: {description}"
    );
}

/// A sender with a null target (the anonymous relay, messages routed by their `to`). pyamqp
/// drops an attach whose target decodes as an empty list (`if not frame[6]` in its
/// `Link._incoming_attach`), so the reply's target must keep its (null) address field.
#[test]
fn a_pyamqp_anonymous_relay_sender_becomes_ready_and_its_messages_are_routed_by_to() {
    let server = Server::start("pyamqp-relay");
    let sent = send_accepted(&server, "myqueue", 5, &["--anonymous"]);
    assert_eq!(
        sent["remote"]["target"],
        serde_json::json!([null]),
        "the reply's target is the null-address target, with its address field present: {sent}"
    );

    let received = receive(&server, "myqueue", 5, &[]);
    assert_eq!(bodies(&received), numbered(5), "routed to `to`, in order");
    assert_queue_empty_with(&server, Peer::Pyamqp);
}

#[test]
fn pyamqp_topic_subscribers_each_get_every_message() {
    let server = Server::start("pyamqp-topic");
    for received in fan_out_to_two_with(&server, Peer::Pyamqp, "mytopic", 10, "pyamqp-topic") {
        assert_eq!(
            received["presettled"], 0,
            "topic deliveries are settled by the receiver: {received}"
        );
    }
}

/// A pyamqp receiver whose session takes one transfer at a time (pyamqp's `Session` default)
/// gets everything, in order, from `address`.
fn a_one_transfer_window_gets_everything_in_order(address: &str, tag: &str) {
    let server = Server::start(tag);
    let mut receiver = server.spawn_with(
        Peer::Pyamqp,
        &["receive", address, "5", "--window", "1", "--name", tag],
    );
    receiver.wait_ready(&server);
    let sent = ok(
        &server,
        server.run_with(Peer::Proton, &["send", address, "5"]),
        "proton send",
    );
    assert_eq!(sent["accepted"], 5, "{sent}");
    let received = ok(&server, receiver.finish(&server), "pyamqp receive");
    let expected: Vec<String> = (0..5).map(|i| format!("msg-{i}")).collect();
    assert_eq!(bodies(&received), expected, "{received}");
}

#[test]
fn a_multicast_receiver_with_a_one_transfer_window_loses_nothing() {
    a_one_transfer_window_gets_everything_in_order("mymulticast", "pyamqp-window-multicast");
}

#[test]
fn an_anycast_receiver_with_a_one_transfer_window_gets_messages_in_order() {
    a_one_transfer_window_gets_everything_in_order("myanycast", "pyamqp-window-anycast");
}
