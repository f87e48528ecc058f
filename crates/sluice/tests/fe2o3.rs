//! Black-box interop tests of `sluice serve` driven by fe2o3-amqp, an independent AMQP 1.0
//! client written in Rust on tokio (crates.io, a dev-dependency): the real binary on a loopback
//! port (`support::Server`), the client in this process.
//!
//! Each test starts its own server and every wait is bounded by `WAIT`, so a broker that stops
//! answering fails the test instead of hanging it; message counts are fixed and small.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::future::Future;
use std::time::Duration;

use fe2o3_amqp::connection::ConnectionHandle;
use fe2o3_amqp::link::{CreditMode, ReceiverAttachError, SenderAttachError};
use fe2o3_amqp::sasl_profile::SaslProfile;
use fe2o3_amqp::session::SessionHandle;
use fe2o3_amqp::types::definitions::{AmqpError, ErrorCondition, SenderSettleMode};
use fe2o3_amqp::types::messaging::{
    Data, Header, Message, Modified, Outcome, Properties, Source, Target,
};
use fe2o3_amqp::types::primitives::Binary;
use fe2o3_amqp::{Connection, Delivery, Receiver, Sender, Session};
use support::{ADDRESS_SPACE, Server, with_broker_infra};
use tokio::sync::mpsc;

/// The longest any one step (connect, attach, send, receive, detach) may take.
const WAIT: Duration = Duration::from_secs(30);
/// How long a receiver with credit waits to conclude that nothing is coming.
const QUIET: Duration = Duration::from_secs(1);

/// Runs `step`, failing the test when it takes longer than `WAIT`.
async fn within<T>(what: &str, step: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, step)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer from the broker within {WAIT:?}"))
}

/// One fe2o3 connection with one session.
struct Client {
    connection: ConnectionHandle<()>,
    session: SessionHandle<()>,
}

impl Client {
    /// Connects with SASL ANONYMOUS.
    async fn open(server: &Server, id: &str) -> Client {
        Client::open_as(server, id, SaslProfile::Anonymous).await
    }

    async fn open_as(server: &Server, id: &str, sasl: SaslProfile) -> Client {
        let mut connection = within(
            "open",
            Connection::builder()
                .container_id(id)
                .sasl_profile(sasl)
                .open(server.url.as_str()),
        )
        .await
        .unwrap_or_else(|e| panic!("{id}: connection refused: {e:?}"));
        let session = begin(&mut connection).await;
        Client {
            connection,
            session,
        }
    }

    async fn sender(&mut self, name: &str, address: &str) -> Sender {
        within(
            "attach sender",
            Sender::attach(&mut self.session, name, address),
        )
        .await
        .unwrap_or_else(|e| panic!("attaching sender {name} to {address}: {e:?}"))
    }

    /// A receiver that grants credit only when the test calls `set_credit`.
    async fn manual_receiver(&mut self, name: &str, address: &str) -> Receiver {
        within(
            "attach receiver",
            Receiver::builder()
                .name(name)
                .source(address)
                .credit_mode(CreditMode::Manual)
                .attach(&mut self.session),
        )
        .await
        .unwrap_or_else(|e| panic!("attaching receiver {name} to {address}: {e:?}"))
    }

    /// A receiver that keeps its credit topped up (fe2o3's default, 200).
    async fn receiver(&mut self, name: &str, address: &str) -> Receiver {
        within(
            "attach receiver",
            Receiver::attach(&mut self.session, name, address),
        )
        .await
        .unwrap_or_else(|e| panic!("attaching receiver {name} to {address}: {e:?}"))
    }

    /// Ends the session and closes the connection cleanly.
    async fn close(mut self) {
        within("end", self.session.end())
            .await
            .expect("end session");
        within("close", self.connection.close())
            .await
            .expect("close connection");
    }
}

async fn begin(connection: &mut ConnectionHandle<()>) -> SessionHandle<()> {
    within("begin", Session::begin(connection))
        .await
        .unwrap_or_else(|e| panic!("begin refused: {e:?}"))
}

fn text(body: &str) -> Message<fe2o3_amqp::types::messaging::AmqpValue<String>> {
    Message::builder().value(body.to_string()).build()
}

/// Sends `body` unsettled and expects the broker to accept it.
async fn send_accepted(sender: &mut Sender, body: &str) {
    let outcome = within("send", sender.send(text(body)))
        .await
        .unwrap_or_else(|e| panic!("sending {body:?}: {e:?}"));
    assert!(
        matches!(outcome, Outcome::Accepted(_)),
        "the broker settled {body:?} with {outcome:?}, expected accepted"
    );
}

async fn recv_text(receiver: &mut Receiver) -> Delivery<String> {
    within("receive", receiver.recv::<String>())
        .await
        .unwrap_or_else(|e| panic!("receiving on {}: {e:?}", receiver.name()))
}

/// Asserts that nothing arrives within `QUIET` (the receiver must have credit).
async fn assert_nothing_arrives(receiver: &mut Receiver) {
    if let Ok(got) = tokio::time::timeout(QUIET, receiver.recv::<String>()).await {
        panic!("expected nothing on {}, got {got:?}", receiver.name());
    }
}

/// The header a delivery carried; an absent header means its defaults (part 3 §3.2.1).
fn header(delivery: &Delivery<String>) -> Header {
    delivery.message().header.clone().unwrap_or_default()
}

fn is_not_found(condition: &ErrorCondition) -> bool {
    *condition == ErrorCondition::AmqpError(AmqpError::NotFound)
}

fn bodies(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("msg-{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_takes_100_messages_and_gives_them_back_in_order() {
    let server = Server::start("fe2o3-order");
    // The sender logs in with SASL PLAIN (any credentials pass under `none`), the receivers
    // with ANONYMOUS.
    let plain = SaslProfile::Plain {
        username: "alice".into(),
        password: "secret".into(),
    };
    let mut producer = Client::open_as(&server, "fe2o3-producer", plain).await;
    let mut sender = producer.sender("order-sender", "myqueue").await;
    let expected = bodies(100);
    for body in &expected {
        send_accepted(&mut sender, body).await;
    }
    within("close sender", sender.close()).await.unwrap();
    producer.close().await;

    let mut consumer = Client::open(&server, "fe2o3-consumer").await;
    let mut receiver = consumer.receiver("order-receiver", "myqueue").await;
    let mut got = Vec::new();
    for _ in 0..expected.len() {
        let delivery = recv_text(&mut receiver).await;
        within("accept", receiver.accept(&delivery)).await.unwrap();
        got.push(delivery.into_body());
    }
    assert_eq!(got, expected, "the queue's order");
    // Closing the link after the accepts: anything not really settled would go back.
    within("close receiver", receiver.close()).await.unwrap();

    let mut second = consumer.receiver("order-second", "myqueue").await;
    assert_nothing_arrives(&mut second).await;
    consumer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn released_rejected_and_modified_deliveries_go_where_the_outcome_says() {
    // `rejected` as the spec has it: the message is given up (by default, as in EnMasse, a
    // rejected message would be retried as modified{delivery-failed}).
    let space = with_broker_infra(
        ADDRESS_SPACE,
        "{treatRejectAsUnmodifiedDeliveryFailed: false}",
    );
    let server = Server::start_config("fe2o3-outcomes", &space, &[]);
    let mut client = Client::open(&server, "fe2o3-outcomes").await;
    let mut sender = client.sender("outcomes-sender", "myqueue").await;
    for body in ["release-me", "reject-me", "modify-me"] {
        send_accepted(&mut sender, body).await;
    }

    // One credit at a time, so each step sees exactly the queue's head.
    let mut receiver = client.manual_receiver("outcomes-receiver", "myqueue").await;
    receiver.set_credit(1).await.unwrap();
    let first = recv_text(&mut receiver).await;
    assert_eq!(first.body(), "release-me");
    assert_eq!(header(&first).delivery_count, 0, "a first delivery");

    // Released: back at the head, the same message, not counted as a failed attempt (§3.4.4).
    within("release", receiver.release(&first)).await.unwrap();
    receiver.set_credit(1).await.unwrap();
    let again = recv_text(&mut receiver).await;
    assert_eq!(
        again.body(),
        "release-me",
        "a released message is redelivered"
    );
    let h = header(&again);
    assert_eq!(h.delivery_count, 0, "released does not count: {h:?}");
    assert!(!h.first_acquirer, "acquired before: {h:?}");
    within("accept", receiver.accept(&again)).await.unwrap();

    // Rejected: gone (myqueue has no dead-letter target), so the next one is modify-me.
    receiver.set_credit(1).await.unwrap();
    let rejected = recv_text(&mut receiver).await;
    assert_eq!(rejected.body(), "reject-me");
    within("reject", receiver.reject(&rejected, None))
        .await
        .unwrap();

    receiver.set_credit(1).await.unwrap();
    let modified = recv_text(&mut receiver).await;
    assert_eq!(
        modified.body(),
        "modify-me",
        "the rejected message came back"
    );
    assert_eq!(header(&modified).delivery_count, 0);

    // Modified with delivery-failed: redelivered with the count raised (§3.4.5).
    let failed = Modified {
        delivery_failed: Some(true),
        undeliverable_here: None,
        message_annotations: None,
    };
    within("modify", receiver.modify(&modified, failed))
        .await
        .unwrap();
    receiver.set_credit(1).await.unwrap();
    let redelivered = recv_text(&mut receiver).await;
    assert_eq!(redelivered.body(), "modify-me");
    let h = header(&redelivered);
    assert_eq!(h.delivery_count, 1, "delivery-failed counts: {h:?}");
    assert!(!h.first_acquirer, "acquired before: {h:?}");
    within("accept", receiver.accept(&redelivered))
        .await
        .unwrap();

    // Nothing is left: in particular reject-me did not return.
    receiver.set_credit(1).await.unwrap();
    assert_nothing_arrives(&mut receiver).await;
    client.close().await;
}

/// Sends msg-0..msg-9, has a consumer take all ten with credit 10, accept the first three and
/// then `leave` with seven unsettled; another consumer must then get exactly those seven.
async fn unsettled_deliveries_return_when_a_consumer(
    tag: &str,
    leave: impl AsyncFnOnce(Client, Receiver),
) {
    let server = Server::start(tag);
    let mut producer = Client::open(&server, "fe2o3-producer").await;
    let mut sender = producer.sender("requeue-sender", "myqueue").await;
    let all = bodies(10);
    for body in &all {
        send_accepted(&mut sender, body).await;
    }

    let mut first_client = Client::open(&server, "fe2o3-first").await;
    let mut first = first_client
        .manual_receiver("requeue-first", "myqueue")
        .await;
    first.set_credit(10).await.unwrap();
    let mut taken = Vec::new();
    for _ in 0..all.len() {
        taken.push(recv_text(&mut first).await);
    }
    let order: Vec<&str> = taken.iter().map(|d| d.body().as_str()).collect();
    assert_eq!(order, all, "the first consumer gets the queue in order");
    for delivery in &taken[..3] {
        within("accept", first.accept(delivery)).await.unwrap();
    }
    leave(first_client, first).await;

    let mut second_client = Client::open(&server, "fe2o3-second").await;
    let mut second = second_client.receiver("requeue-second", "myqueue").await;
    let mut back = Vec::new();
    for _ in 3..all.len() {
        let delivery = recv_text(&mut second).await;
        let h = header(&delivery);
        assert!(
            h.delivery_count >= 1,
            "{}: a redelivery after the link was lost may be a duplicate, so its count is \
             raised: {h:?}",
            delivery.body()
        );
        assert!(!h.first_acquirer, "{}: {h:?}", delivery.body());
        within("accept", second.accept(&delivery)).await.unwrap();
        back.push(delivery.into_body());
    }
    back.sort_by_key(|b| b.strip_prefix("msg-").and_then(|i| i.parse::<u32>().ok()));
    assert_eq!(back, all[3..], "the seven unsettled messages, none lost");
    // And the three accepted ones stayed gone.
    assert_nothing_arrives(&mut second).await;
    second_client.close().await;
    producer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_detaches_gives_back_its_unsettled_deliveries() {
    unsettled_deliveries_return_when_a_consumer(
        "fe2o3-detach",
        async |client: Client, receiver: Receiver| {
            // A closing detach (§2.6.6) with deliveries unsettled.
            within("close receiver", receiver.close()).await.unwrap();
            client.close().await;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_whose_connection_closes_gives_back_its_unsettled_deliveries() {
    unsettled_deliveries_return_when_a_consumer(
        "fe2o3-conn-close",
        async |mut client: Client, receiver: Receiver| {
            // fe2o3 queues dispositions on the session but a close on the connection, which can
            // overtake them (then the accepts never reach the wire). An attach on the same
            // session goes out after them, so its reply means the broker has read them.
            let flush = client.sender("requeue-flush", "myqueue").await;
            // A close with the links and session still open: no detach, no end.
            within("close connection", client.connection.close())
                .await
                .expect("close connection");
            drop((receiver, flush));
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_multicast_receiver_gets_every_message() {
    let server = Server::start("fe2o3-multicast");
    // Two receivers on their own connections, each forwarding what it gets to a channel.
    let mut inboxes = Vec::new();
    let mut clients = Vec::new();
    for i in 0..2 {
        let mut client = Client::open(&server, &format!("fe2o3-listener-{i}")).await;
        let mut receiver = client
            .receiver(&format!("multicast-{i}"), "mymulticast")
            .await;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(delivery) = receiver.recv::<String>().await {
                if tx.send(delivery.into_body()).is_err() {
                    break;
                }
            }
        });
        inboxes.push(rx);
        clients.push(client);
    }

    let mut producer = Client::open(&server, "fe2o3-broadcaster").await;
    let mut sender = within(
        "attach sender",
        Sender::builder()
            .name("multicast-sender")
            .target("mymulticast")
            .sender_settle_mode(SenderSettleMode::Settled)
            .attach(&mut producer.session),
    )
    .await
    .expect("attach a pre-settled sender to mymulticast");

    // Multicast keeps nothing for a receiver whose credit has not reached the broker yet, so
    // probe until both receivers have heard one (bounded: 50 probes, 100 ms apart).
    let mut heard = [false, false];
    for _ in 0..50 {
        within("send probe", sender.send(text("probe")))
            .await
            .expect("send probe");
        tokio::time::sleep(Duration::from_millis(100)).await;
        for (inbox, heard) in inboxes.iter_mut().zip(heard.iter_mut()) {
            while let Ok(body) = inbox.try_recv() {
                assert_eq!(body, "probe");
                *heard = true;
            }
        }
        if heard == [true, true] {
            break;
        }
    }
    assert_eq!(
        heard,
        [true, true],
        "both receivers hear a probe within 5 s"
    );

    let expected = bodies(20);
    for body in &expected {
        let outcome = within("send", sender.send(text(body)))
            .await
            .expect("send to mymulticast");
        assert!(matches!(outcome, Outcome::Accepted(_)), "{outcome:?}");
    }
    for (i, inbox) in inboxes.iter_mut().enumerate() {
        let mut got = Vec::new();
        while got.len() < expected.len() {
            let body = within("multicast receive", inbox.recv())
                .await
                .unwrap_or_else(|| panic!("receiver {i} stopped after {got:?}"));
            if body != "probe" {
                got.push(body);
            }
        }
        assert_eq!(got, expected, "receiver {i} gets every message, in order");
    }
    producer.close().await;
    for client in clients {
        client.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attaching_to_an_undefined_address_fails_with_not_found() {
    let server = Server::start("fe2o3-not-found");
    let mut client = Client::open(&server, "fe2o3-lost").await;

    // Each refusal on a session of its own: the broker answers attach (null terminus) and
    // detach (§2.6.3), and fe2o3 0.18.4 answers that detach twice when both arrive together
    // (its session echoes it, then the failed link sends its own), so the broker, by §2.8.17
    // rightly, may end that session with amqp:session:unattached-handle afterwards.
    let mut session = begin(&mut client.connection).await;
    let sending = within(
        "attach sender",
        Sender::attach(&mut session, "lost-sender", "nowhere"),
    )
    .await;
    match sending {
        Err(SenderAttachError::RemoteClosedWithError(error)) => assert!(
            is_not_found(&error.condition),
            "a sender to nowhere: {error:?}"
        ),
        other => panic!("a sender to nowhere should be refused with amqp:not-found: {other:?}"),
    }

    let mut session = begin(&mut client.connection).await;
    let receiving = within(
        "attach receiver",
        Receiver::attach(&mut session, "lost-receiver", "nowhere"),
    )
    .await;
    match receiving {
        Err(ReceiverAttachError::RemoteClosedWithError(error)) => assert!(
            is_not_found(&error.condition),
            "a receiver from nowhere: {error:?}"
        ),
        other => panic!("a receiver from nowhere should be refused with amqp:not-found: {other:?}"),
    }

    // A refused link is not a connection error: the connection goes on.
    let mut sender = client.sender("found-sender", "myqueue").await;
    send_accepted(&mut sender, "still-here").await;
    let mut receiver = client.receiver("found-receiver", "myqueue").await;
    let delivery = recv_text(&mut receiver).await;
    assert_eq!(delivery.body(), "still-here");
    within("accept", receiver.accept(&delivery)).await.unwrap();
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_sender_replies_to_a_dynamic_receiver() {
    let server = Server::start("fe2o3-reply");
    let mut requester = Client::open(&server, "fe2o3-requester").await;
    let mut replies = within(
        "attach dynamic receiver",
        Receiver::builder()
            .name("reply-receiver")
            .source(Source::builder().dynamic(true).build())
            .attach(&mut requester.session),
    )
    .await
    .expect("attach a dynamic receiver");
    let reply_to = replies
        .source()
        .as_ref()
        .and_then(|source| source.address.clone())
        .expect("the attach reply names the temporary queue's address");
    assert!(
        !reply_to.is_empty() && reply_to != "myqueue" && reply_to != "mymulticast",
        "a fresh address: {reply_to:?}"
    );

    // The responder: one link with a null target address, routed by each message's `to`.
    let mut responder = Client::open(&server, "fe2o3-responder").await;
    let mut anonymous = within(
        "attach anonymous sender",
        Sender::builder()
            .name("anonymous-sender")
            .target(Target::builder().build())
            .attach(&mut responder.session),
    )
    .await
    .expect("attach an anonymous sender");
    let send_to = |to: &str, body: &str| {
        Message::builder()
            .properties(Properties::builder().to(to).build())
            .value(body.to_string())
            .build()
    };

    let outcome = within("send reply", anonymous.send(send_to(&reply_to, "reply-1")))
        .await
        .expect("send the reply");
    assert!(matches!(outcome, Outcome::Accepted(_)), "{outcome:?}");
    let reply = recv_text(&mut replies).await;
    assert_eq!(reply.body(), "reply-1");
    within("accept", replies.accept(&reply)).await.unwrap();

    // The same link reaches a configured queue by `to` ...
    let outcome = within("send", anonymous.send(send_to("myqueue", "routed")))
        .await
        .expect("send to myqueue");
    assert!(matches!(outcome, Outcome::Accepted(_)), "{outcome:?}");
    let mut queue = requester.receiver("routed-receiver", "myqueue").await;
    let routed = recv_text(&mut queue).await;
    assert_eq!(routed.body(), "routed");
    within("accept", queue.accept(&routed)).await.unwrap();

    // ... and a message to an unknown address is rejected with amqp:not-found.
    let outcome = within("send", anonymous.send(send_to("nowhere", "lost")))
        .await
        .expect("send to nowhere");
    match outcome {
        Outcome::Rejected(rejected) => {
            let error = rejected.error.expect("the rejection says why");
            assert!(is_not_found(&error.condition), "{error:?}");
        }
        other => panic!("a message to nowhere should be rejected: {other:?}"),
    }
    responder.close().await;
    requester.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10_mib_message_round_trips_byte_for_byte() {
    const SIZE: usize = 10 * 1024 * 1024;
    let server = Server::start("fe2o3-large");
    // Bytes that are not a repeating pattern a misplaced frame could hide in.
    let mut state = 0x2545_f491_u32;
    let payload: Vec<u8> = (0..SIZE)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect();

    let mut client = Client::open(&server, "fe2o3-large").await;
    let mut sender = client.sender("large-sender", "myqueue").await;
    let message = Message::builder()
        .data(Binary::from(payload.clone()))
        .build();
    let outcome = within("send 10 MiB", sender.send(message))
        .await
        .expect("send 10 MiB");
    assert!(matches!(outcome, Outcome::Accepted(_)), "{outcome:?}");

    let mut receiver = within(
        "attach receiver",
        Receiver::builder()
            .name("large-receiver")
            .source("myqueue")
            .max_message_size(2 * SIZE as u64)
            .attach(&mut client.session),
    )
    .await
    .expect("attach receiver");
    let delivery = within("receive 10 MiB", receiver.recv::<Data>())
        .await
        .expect("receive 10 MiB");
    within("accept", receiver.accept(&delivery)).await.unwrap();
    let Data(got) = delivery.into_body();
    assert_eq!(got.len(), SIZE, "length");
    assert!(got.as_slice() == payload.as_slice(), "the bytes differ");
    client.close().await;
}

/// A message `body` with a priority and, when given, a group.
fn ranked(
    body: String,
    priority: u8,
    group: Option<&str>,
) -> Message<fe2o3_amqp::types::messaging::AmqpValue<String>> {
    Message::builder()
        .header(Header {
            priority: fe2o3_amqp::types::messaging::Priority(priority),
            ..Header::default()
        })
        .properties(Properties {
            group_id: group.map(str::to_string),
            ..Properties::default()
        })
        .value(body)
        .build()
}

/// Receives until nothing more arrives within `QUIET`, leaving every delivery unsettled.
async fn take_all(receiver: &mut Receiver) -> Vec<Delivery<String>> {
    let mut got = Vec::new();
    while let Ok(delivery) = tokio::time::timeout(QUIET, receiver.recv::<String>()).await {
        got.push(delivery.unwrap_or_else(|e| panic!("receiving: {e:?}")));
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_stays_with_one_of_two_concurrent_consumers_in_order() {
    let server = Server::start("fe2o3-groups");
    let mut producer = Client::open(&server, "fe2o3-group-producer").await;
    let mut sender = producer.sender("group-sender", "myqueue").await;
    let groups = ["g0", "g1", "g2"];
    for i in 0..30 {
        let message = ranked(format!("{}-{i:02}", groups[i % 3]), 4, Some(groups[i % 3]));
        let outcome = within("send", sender.send(message)).await.unwrap();
        assert!(matches!(outcome, Outcome::Accepted(_)), "{outcome:?}");
    }
    producer.close().await;

    let mut a_client = Client::open(&server, "fe2o3-group-a").await;
    let mut b_client = Client::open(&server, "fe2o3-group-b").await;
    let mut a = a_client.manual_receiver("group-a", "myqueue").await;
    let mut b = b_client.manual_receiver("group-b", "myqueue").await;
    // A takes the first message (g0) and holds it; B's first must then be the next group's.
    a.set_credit(1).await.unwrap();
    let first = recv_text(&mut a).await;
    assert_eq!(first.body(), "g0-00");
    b.set_credit(1).await.unwrap();
    let second = recv_text(&mut b).await;
    assert_eq!(second.body(), "g1-01", "g0 is A's while A holds one of it");
    // Then both drain the queue at once.
    a.set_credit(100).await.unwrap();
    b.set_credit(100).await.unwrap();
    let (a_rest, b_rest) = tokio::join!(take_all(&mut a), take_all(&mut b));
    let a_got: Vec<String> = std::iter::once(&first)
        .chain(&a_rest)
        .map(|d| d.body().clone())
        .collect();
    let b_got: Vec<String> = std::iter::once(&second)
        .chain(&b_rest)
        .map(|d| d.body().clone())
        .collect();
    assert_eq!(a_got.len() + b_got.len(), 30, "A {a_got:?}, B {b_got:?}");
    for group in groups {
        let at_a: Vec<&String> = a_got.iter().filter(|b| b.starts_with(group)).collect();
        let at_b: Vec<&String> = b_got.iter().filter(|b| b.starts_with(group)).collect();
        assert!(
            at_a.is_empty() || at_b.is_empty(),
            "{group} went to both consumers while both held it: A {at_a:?}, B {at_b:?}"
        );
        let mut all = if at_a.is_empty() { at_b } else { at_a };
        assert_eq!(all.len(), 10, "{group}");
        let in_order = all.windows(2).all(|w| w[0] < w[1]);
        all.sort();
        assert!(in_order, "{group} out of order: {all:?}");
    }
    assert!(a_got.iter().all(|b| !b.starts_with("g1")));
    assert!(b_got.iter().all(|b| !b.starts_with("g0")));
    for delivery in std::iter::once(&first).chain(&a_rest) {
        within("accept", a.accept(delivery)).await.unwrap();
    }
    for delivery in std::iter::once(&second).chain(&b_rest) {
        within("accept", b.accept(delivery)).await.unwrap();
    }
    a_client.close().await;
    b_client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_consumers_each_see_the_highest_priority_first() {
    let server = Server::start("fe2o3-priority");
    let mut producer = Client::open(&server, "fe2o3-priority-producer").await;
    let mut sender = producer.sender("priority-sender", "myqueue").await;
    // Priorities 0..9 interleaved, three of each, sent before anyone consumes.
    for i in 0..30u8 {
        let priority = (i * 7) % 10;
        let message = ranked(format!("p{priority}-{i:02}"), priority, None);
        let outcome = within("send", sender.send(message)).await.unwrap();
        assert!(matches!(outcome, Outcome::Accepted(_)), "{outcome:?}");
    }
    producer.close().await;

    let mut a_client = Client::open(&server, "fe2o3-priority-a").await;
    let mut b_client = Client::open(&server, "fe2o3-priority-b").await;
    let mut a = a_client.manual_receiver("priority-a", "myqueue").await;
    let mut b = b_client.manual_receiver("priority-b", "myqueue").await;
    a.set_credit(5).await.unwrap();
    b.set_credit(5).await.unwrap();
    let (a_got, b_got) = tokio::join!(take_all(&mut a), take_all(&mut b));
    // The first ten taken are the ten highest (9, 8, 8... by priority), whoever took them.
    let mut taken: Vec<u8> = a_got
        .iter()
        .chain(&b_got)
        .map(|d| header(d).priority.0)
        .collect();
    taken.sort_unstable_by(|x, y| y.cmp(x));
    assert_eq!(
        taken,
        [9, 9, 9, 8, 8, 8, 7, 7, 7, 6],
        "A {a_got:?}, B {b_got:?}"
    );
    for (name, got) in [("A", &a_got), ("B", &b_got)] {
        let seen: Vec<(u8, &String)> = got
            .iter()
            .map(|d| (header(d).priority.0, d.body()))
            .collect();
        // Each consumer's stream: priority never rises, and arrival order within a level.
        assert!(
            seen.windows(2)
                .all(|w| w[0].0 > w[1].0 || (w[0].0 == w[1].0 && w[0].1 < w[1].1)),
            "{name} got {seen:?}"
        );
    }
    a.set_credit(100).await.unwrap();
    b.set_credit(100).await.unwrap();
    let (a_rest, b_rest) = tokio::join!(take_all(&mut a), take_all(&mut b));
    assert_eq!(a_got.len() + b_got.len() + a_rest.len() + b_rest.len(), 30);
    let rest: Vec<u8> = a_rest
        .iter()
        .chain(&b_rest)
        .map(|d| header(d).priority.0)
        .collect();
    assert!(rest.iter().all(|p| *p <= 6), "{rest:?}");
    a_client.close().await;
    b_client.close().await;
}
