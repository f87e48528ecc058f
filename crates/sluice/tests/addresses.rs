//! Black-box tests of the address types beyond queue and multicast: topics (names and `+`/`#`
//! patterns), named subscriptions, anycast, and a queue's TTL clamp, redelivery limit and
//! dead-letter/expiry targets. The real `sluice serve` on a loopback port, driven by Qpid
//! Proton's Python binding (`tests/interop/proton_client.py`), with the address space in
//! `support::ADDRESS_SPACE`.
//!
//! `myqueue-dl` expires a message 1 s after it arrives (its plan's `messageTtl.maximum`), into
//! `mydlq`, the same place dead-lettered messages go. So the tests of its outcomes attach every
//! receiver before the message is sent (the broker acts on it within milliseconds, long before
//! it expires), and show that nothing else happened through a receiver with one credit more
//! than it should use: a redelivery would reach it at once, so it must time out instead.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::thread;
use std::time::Duration;

use serde_json::Value;
use support::*;

/// `count` bodies `<prefix><i>`, as `send --prefix` makes them.
fn expected(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}{i}")).collect()
}

/// Each received message's `(delivery_count, first_acquirer)`.
fn headers(json: &Value) -> Vec<(u64, bool)> {
    json["headers"]
        .as_array()
        .unwrap_or_else(|| panic!("no headers in {json}"))
        .iter()
        .map(|h| {
            (
                h["delivery_count"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("no delivery_count in {h}")),
                h["first_acquirer"]
                    .as_bool()
                    .unwrap_or_else(|| panic!("no first_acquirer in {h}")),
            )
        })
        .collect()
}

/// Each received message's `delivery_count`. (`first_acquirer` of a first delivery says
/// little: a message sent without a header section has the default, false.)
fn delivery_counts(json: &Value) -> Vec<u64> {
    headers(json).into_iter().map(|(count, _)| count).collect()
}

/// A receive that must time out (exit 2) after getting exactly `want` (a receiver given more
/// credit than it should use: the extra credit shows that nothing more came).
fn timed_out_with(server: &Server, outcome: Outcome, want: &[String], what: &str) -> Value {
    assert_eq!(
        outcome.code(),
        Some(2),
        "{what}: expected exactly {want:?} and then a timeout: {outcome:?}\nserver stderr:\n{}",
        server.log()
    );
    assert_eq!(bodies(&outcome.json), want, "{what}: {}", outcome.json);
    outcome.json
}

/// A `role` link to `address` is refused (the link, not the connection) with `condition`.
fn assert_refused(server: &Server, role: &str, address: &str, condition: &str) {
    let outcome = server.run(&["attach", address, "--role", role]);
    assert_eq!(
        outcome.code(),
        Some(3),
        "a {role} on {address:?} should be refused with {condition}: {outcome:?}\nserver \
         stderr:\n{}",
        server.log()
    );
    assert_eq!(outcome.json["attached"], false, "{}", outcome.json);
    assert_eq!(
        outcome.json["condition"], condition,
        "a {role} on {address:?}: {}",
        outcome.json
    );
    assert_eq!(
        outcome.json["closed"], "link",
        "a {role} on {address:?}: the link is refused, not the connection: {}",
        outcome.json
    );
}

/// A `role` link to `address` attaches.
fn assert_attaches(server: &Server, role: &str, address: &str) {
    let attached = ok(
        server,
        server.run(&["attach", address, "--role", role]),
        &format!("attach a {role} to {address}"),
    );
    assert_eq!(attached["attached"], true, "{attached}");
    assert_eq!(attached["address"], address, "{attached}");
}

// --- topics ---------------------------------------------------------------------------------

#[test]
fn every_receiver_on_a_topic_gets_every_message_in_order() {
    let server = Server::start("topic");
    fan_out_to_two(&server, "mytopic", 20, "topic");
}

#[test]
fn topic_receivers_get_exactly_what_their_patterns_match() {
    let server = Server::start("topic-patterns");
    // Each receiver takes what its pattern matches plus the final `end-0`, sent last to
    // `mytopic/eu/de`, which all three match: once it arrives, everything sent before it has
    // been routed, so a receiver that got anything else would have it before `end-0`.
    let mut eu_any = server.spawn(&["receive", "mytopic/eu/+", "4", "--name", "eu-any"]);
    let mut all = server.spawn(&["receive", "mytopic/#", "6", "--name", "all"]);
    let mut eu_de = server.spawn(&["receive", "mytopic/eu/de", "4", "--name", "eu-de"]);
    for receiver in [&mut eu_any, &mut all, &mut eu_de] {
        receiver.wait_ready(&server);
    }

    for (address, count, prefix) in [
        ("mytopic/eu/de", "3", "de-"),
        ("mytopic/us", "2", "us-"),
        ("mytopic/eu/de", "1", "end-"),
    ] {
        let sent = ok(
            &server,
            server.run(&["send", address, count, "--prefix", prefix]),
            &format!("send {count} to {address}"),
        );
        assert_eq!(sent["accepted"], count.parse::<u64>().unwrap(), "{sent}");
    }

    let de_then_end = ["de-0", "de-1", "de-2", "end-0"];
    let received = ok(&server, eu_any.finish(&server), "receiver on mytopic/eu/+");
    assert_eq!(
        bodies(&received),
        de_then_end,
        "mytopic/eu/+ matches mytopic/eu/de, not mytopic/us"
    );
    let received = ok(&server, all.finish(&server), "receiver on mytopic/#");
    assert_eq!(
        bodies(&received),
        ["de-0", "de-1", "de-2", "us-0", "us-1", "end-0"],
        "mytopic/# matches both names, in the order they were published"
    );
    let received = ok(&server, eu_de.finish(&server), "receiver on mytopic/eu/de");
    assert_eq!(
        bodies(&received),
        de_then_end,
        "mytopic/eu/de matches only itself"
    );
}

#[test]
fn a_malformed_topic_pattern_and_a_sender_to_a_pattern_are_refused() {
    let server = Server::start("topic-refused");
    // `#` may only be the last level.
    assert_refused(&server, "receiver", "mytopic/#/x", "amqp:invalid-field");
    // A pattern is something to receive from, not a name to publish to.
    assert_refused(&server, "sender", "mytopic/+", "amqp:not-allowed");
    // The well-formed counterparts attach on the same server.
    assert_attaches(&server, "receiver", "mytopic/+/x");
    assert_attaches(&server, "sender", "mytopic/eu");
}

// --- subscriptions --------------------------------------------------------------------------

/// Sends 5 messages to `mytopic` with nobody consuming, then takes them from `from` (a name of
/// `mysub`): the subscription kept them, and accepting removed them from it.
fn subscription_keeps_messages_for(server_name: &str, from: &str) {
    let server = Server::start(server_name);
    let sent = ok(
        &server,
        server.run(&["send", "mytopic", "5"]),
        "send 5 to mytopic",
    );
    assert_eq!(sent["accepted"], 5, "{sent}");

    let received = ok(
        &server,
        server.run(&["receive", from, "5"]),
        &format!("receive 5 from {from}"),
    );
    assert_eq!(bodies(&received), expected("msg-", 5));
    // The same subscription under either name: what was taken is gone from `mysub`.
    assert_empty(&server, "mysub");
}

#[test]
fn a_subscription_keeps_topic_messages_until_a_consumer_attaches() {
    subscription_keeps_messages_for("subscription", "mysub");
}

#[test]
fn a_subscription_is_also_reachable_as_topic_colon_colon_name() {
    subscription_keeps_messages_for("subscription-fqqn", "mytopic::mysub");
}

#[test]
fn a_subscription_refuses_a_consumer_beyond_max_consumers() {
    let server = Server::start("subscription-max");
    let idle_sockets = server.open_sockets();
    // One consumer attached (`hold` says "ready" once the broker answered its attach).
    let mut holder = server.spawn(&["hold", "mysub", "1"]);
    holder.wait_ready(&server);

    assert_refused(&server, "receiver", "mysub", "amqp:resource-limit-exceeded");
    assert_refused(
        &server,
        "receiver",
        "mytopic::mysub",
        "amqp:resource-limit-exceeded",
    );

    // The place frees up with the first consumer gone.
    holder.kill();
    server.wait_open_sockets(idle_sockets);
    assert_attaches(&server, "receiver", "mysub");
}

#[test]
fn a_sender_to_a_subscription_is_refused() {
    let server = Server::start("subscription-sender");
    assert_refused(&server, "sender", "mysub", "amqp:not-allowed");
    assert_refused(&server, "sender", "mytopic::mysub", "amqp:not-allowed");
}

// --- anycast --------------------------------------------------------------------------------

#[test]
fn anycast_delivers_to_a_receiver_with_credit() {
    let server = Server::start("anycast");
    let mut receiver = server.spawn(&["receive", "myanycast", "10"]);
    receiver.wait_ready(&server);

    let sent = ok(
        &server,
        server.run(&["send", "myanycast", "10"]),
        "send 10 to myanycast",
    );
    assert_eq!(sent["accepted"], 10, "{sent}");
    assert_eq!(sent["outcomes"]["accepted"], 10, "{sent}");

    let received = ok(&server, receiver.finish(&server), "receive 10 on myanycast");
    assert_eq!(bodies(&received), expected("msg-", 10));
}

#[test]
fn anycast_gives_each_message_to_one_receiver() {
    let server = Server::start("anycast-split");
    // Five credits each, ten messages: between them they take all ten, each exactly once.
    let mut first = server.spawn(&["receive", "myanycast", "5", "--name", "any-first"]);
    let mut second = server.spawn(&["receive", "myanycast", "5", "--name", "any-second"]);
    first.wait_ready(&server);
    second.wait_ready(&server);

    let sent = ok(
        &server,
        server.run(&["send", "myanycast", "10"]),
        "send 10 to myanycast",
    );
    assert_eq!(sent["accepted"], 10, "{sent}");

    let first = bodies(&ok(&server, first.finish(&server), "first receiver"));
    let second = bodies(&ok(&server, second.finish(&server), "second receiver"));
    assert_eq!(first.len(), 5, "{first:?}");
    assert_eq!(second.len(), 5, "{second:?}");
    let mut all: Vec<usize> = first.iter().chain(&second).map(|b| index_of(b)).collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..10).collect::<Vec<_>>(),
        "every message exactly once"
    );
}

#[test]
fn an_anycast_sender_waits_for_credit_until_a_receiver_attaches() {
    let server = Server::start("anycast-credit");
    // No receiver: no credit, so the message never leaves and the send times out.
    let lonely = server
        .spawn_at(
            &server.url,
            &["send", "myanycast", "1", "--prefix", "lonely-"],
            "2",
        )
        .finish(&server);
    assert_eq!(
        lonely.code(),
        Some(1),
        "a sender on myanycast without receivers should get no credit and time out: \
         {lonely:?}\nserver stderr:\n{}",
        server.log()
    );
    let error = lonely.json["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("Timeout") && error.contains("dispositions"),
        "the send should time out waiting for its disposition: {lonely:?}"
    );

    // A sender attached first gets its credit once a receiver attaches.
    let mut sender = server.spawn(&["send", "myanycast", "1", "--announce"]);
    sender.wait_line(&server, "attached");
    let receiver = server.spawn(&["receive", "myanycast", "1"]);
    let received = ok(&server, receiver.finish(&server), "receive 1 on myanycast");
    assert_eq!(
        bodies(&received),
        ["msg-0"],
        "the waiting sender's message, and nothing of the one that timed out"
    );
    let sent = ok(&server, sender.finish(&server), "the waiting sender");
    assert_eq!(sent["accepted"], 1, "{sent}");
}

#[test]
fn anycast_passes_the_receivers_outcome_back_to_the_sender() {
    let server = Server::start("anycast-outcomes");
    for (outcome, seen) in [
        ("reject", "rejected"),
        ("release", "released"),
        ("modify-failed", "modified"),
    ] {
        let mut receiver = server.spawn(&["receive", "myanycast", "3", "--outcome", outcome]);
        receiver.wait_ready(&server);

        let sent = server.run(&["send", "myanycast", "3"]);
        // Not all accepted: the sender exits 1, with its summary.
        assert_eq!(
            sent.code(),
            Some(1),
            "the receiver's {outcome}: {sent:?}\nserver stderr:\n{}",
            server.log()
        );
        assert_eq!(sent.json["sent"], 3, "{}", sent.json);
        assert_eq!(
            sent.json["outcomes"],
            serde_json::json!({ seen: 3 }),
            "the receiver settled every message with {outcome}: the sender sees {seen}"
        );

        let received = ok(&server, receiver.finish(&server), outcome);
        assert_eq!(
            bodies(&received),
            expected("msg-", 3),
            "each message went to the receiver once ({outcome})"
        );
    }
}

// --- queue outcomes, dead-letter and expiry -------------------------------------------------

/// One message sent to myqueue-dl while a receiver of mydlq and a consumer of myqueue-dl
/// (`credit` credits, settling each delivery with `outcome`) wait: what mydlq received, and the
/// consumer's run (it times out, wanting more than came).
fn settle_one_into_mydlq(server: &Server, outcome: &str, credit: &str) -> (Value, Outcome) {
    let mut dead = server.spawn(&["receive", "mydlq", "1"]);
    dead.wait_ready(server);
    let mut consumer = server.spawn_at(
        &server.url,
        &["receive", "myqueue-dl", credit, "--outcome", outcome],
        "3",
    );
    consumer.wait_ready(server);
    let sent = ok(
        server,
        server.run(&["send", "myqueue-dl", "1"]),
        "send 1 to myqueue-dl",
    );
    assert_eq!(sent["accepted"], 1, "{sent}");
    let received = ok(server, dead.finish(server), "receive from mydlq");
    assert_eq!(bodies(&received), ["msg-0"]);
    (received, consumer.finish(server))
}

#[test]
fn a_rejected_message_is_retried_until_its_attempts_run_out_by_default() {
    // EnMasse's default treatRejectAsUnmodifiedDeliveryFailed: a rejected message counts as a
    // failed attempt; myqueue-dl allows 2, then the dead-letter address.
    let server = Server::start("reject-retried");
    let (received, rejecter) = settle_one_into_mydlq(&server, "reject", "3");
    assert_eq!(delivery_counts(&received), [2], "{received}");
    let rejected = timed_out_with(
        &server,
        rejecter,
        &["msg-0".to_owned(), "msg-0".to_owned()],
        "rejected twice (maximumDeliveryAttempts 2), then dead-lettered",
    );
    assert_eq!(delivery_counts(&rejected), [0, 1], "{rejected}");
    assert_empty(&server, "myqueue-dl");
}

#[test]
fn a_rejected_message_goes_to_the_dead_letter_address_when_reject_is_final() {
    let space = with_broker_infra(
        ADDRESS_SPACE,
        "{treatRejectAsUnmodifiedDeliveryFailed: false}",
    );
    let server = Server::start_config("reject", &space, &[]);
    // Two credits for one message: a redelivery would reach it at once.
    let (_, rejecter) = settle_one_into_mydlq(&server, "reject", "2");
    timed_out_with(
        &server,
        rejecter,
        &expected("msg-", 1),
        "a rejected message is not redelivered",
    );
    assert_empty(&server, "myqueue-dl");
}

#[test]
fn a_message_that_failed_max_delivery_attempts_goes_to_the_dead_letter_address() {
    let server = Server::start("modify-failed");
    // maximumDeliveryAttempts 2: two deliveries, then the dead-letter address; a third
    // credit shows there is no third delivery.
    let (received, failer) = settle_one_into_mydlq(&server, "modify-failed", "3");
    assert_eq!(
        delivery_counts(&received),
        [2],
        "it reached mydlq after two failed attempts: {received}"
    );
    let failed = timed_out_with(
        &server,
        failer,
        &["msg-0".to_owned(), "msg-0".to_owned()],
        "delivered twice (maximumDeliveryAttempts 2), then dead-lettered",
    );
    assert_eq!(
        delivery_counts(&failed),
        [0, 1],
        "a failed delivery raises the delivery count: {failed}"
    );
    assert_empty(&server, "myqueue-dl");
}

#[test]
fn a_released_message_is_redelivered_with_its_delivery_count_unchanged() {
    let server = Server::start("release");
    // Release the first delivery, accept the second.
    let mut receiver = server.spawn(&["receive", "myqueue-dl", "2", "--outcome", "release,accept"]);
    receiver.wait_ready(&server);

    let sent = ok(
        &server,
        server.run(&["send", "myqueue-dl", "1"]),
        "send 1 to myqueue-dl",
    );
    assert_eq!(sent["accepted"], 1, "{sent}");

    let received = ok(&server, receiver.finish(&server), "release, then accept");
    assert_eq!(
        bodies(&received),
        ["msg-0", "msg-0"],
        "the released message comes back on the same queue"
    );
    assert_eq!(
        delivery_counts(&received),
        [0, 0],
        "a release is not a failed attempt: delivery_count stays 0 ({received})"
    );
    assert!(
        !headers(&received)[1].1,
        "the redelivery is not to the first acquirer: {received}"
    );
    // Accepted the second time: neither on the queue nor dead-lettered (nor expired).
    assert_empty(&server, "myqueue-dl");
    assert_empty(&server, "mydlq");
}

#[test]
fn a_message_expires_after_the_plans_maximum_ttl_into_the_expiry_address() {
    let server = Server::start("expiry");
    // myqueue-dl's plan caps TTL at 1 s: a message without a TTL gets 1 s, and so does one
    // that asks for a minute.
    for (prefix, ttl) in [("no-ttl-", None), ("long-ttl-", Some("60000"))] {
        let mut args = vec!["send", "myqueue-dl", "1", "--prefix", prefix];
        if let Some(ttl) = ttl {
            args.extend(["--ttl", ttl]);
        }
        let sent = ok(&server, server.run(&args), &format!("send {prefix}0"));
        assert_eq!(sent["accepted"], 1, "{sent}");
    }

    let expired = ok(
        &server,
        server
            .spawn_at(&server.url, &["receive", "mydlq", "2"], "10")
            .finish(&server),
        "receive the expired messages from mydlq",
    );
    assert_eq!(
        bodies(&expired),
        ["no-ttl-0", "long-ttl-0"],
        "both expired into mydlq, in the order they expired"
    );
    assert_empty(&server, "myqueue-dl");
}

#[test]
fn a_message_past_its_ttl_is_never_delivered() {
    let server = Server::start("ttl");
    // myqueue has no expiry target: an expired message is dropped.
    let sent = ok(
        &server,
        server.run(&["send", "myqueue", "1", "--ttl", "200", "--prefix", "short-"]),
        "send 1 with a 200 ms TTL",
    );
    assert_eq!(sent["accepted"], 1, "{sent}");
    let sent = ok(
        &server,
        server.run(&["send", "myqueue", "1"]),
        "send 1 without a TTL",
    );
    assert_eq!(sent["accepted"], 1, "{sent}");
    thread::sleep(Duration::from_secs(1));

    // The queue is first in, first out: had `short-0` survived, it would come first.
    let received = ok(
        &server,
        server.run(&["receive", "myqueue", "1"]),
        "receive 1 from myqueue",
    );
    assert_eq!(bodies(&received), ["msg-0"], "the expired message is gone");
    let late = server
        .spawn_at(&server.url, &["receive", "myqueue", "1"], "2")
        .finish(&server);
    timed_out_with(&server, late, &[], "nothing is left on myqueue");
}

#[test]
fn a_deadletter_address_refuses_senders_and_accepts_receivers() {
    let server = Server::start("deadletter");
    assert_refused(&server, "sender", "mydlq", "amqp:not-allowed");
    assert_attaches(&server, "receiver", "mydlq");
}
