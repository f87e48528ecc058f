//! Black-box tests of authentication and authorization: `sluice serve` on a standard (or
//! brokered) address space whose MessagingUsers are password users, driven by Qpid Proton
//! (`tests/interop/proton_client.py`), rhea (`tests/rhea/client.js`) and fe2o3-amqp (in this
//! process, for SCRAM: Proton's built-in SASL has no SCRAM).
//!
//! Tests about rights rather than TLS use `--danger-plain-without-tls`, so SASL PLAIN goes over
//! plain TCP; `--auth-failure-delay-ms 50` keeps failures quick. Every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use fe2o3_amqp::connection::OpenError;
use fe2o3_amqp::sasl_profile::{SaslProfile, SaslScramSha256, SaslScramSha512};
use fe2o3_amqp::types::messaging::Outcome as Fe2o3Outcome;
use fe2o3_amqp::types::sasl::SaslCode;
use fe2o3_amqp::{Connection, Receiver, Sender, Session};
use serde_json::Value;
use support::*;

/// A failed authentication answers after this (the default 1 s would only slow the tests).
const FAILURE_DELAY_MS: &str = "50";
/// The longest one fe2o3 step may take.
const WAIT: Duration = Duration::from_secs(30);
/// How long the server may take to log a reload.
const RELOAD_WAIT: Duration = Duration::from_secs(10);

const ALICE_PASSWORD: &str = "alice-secret";
const BOB_PASSWORD: &str = "bob-secret";
const CAROL_PASSWORD: &str = "carol-secret";
const VIEWER_PASSWORD: &str = "viewer-secret";

/// A rule of a MessagingUser: addresses and operations.
type Rule<'a> = (&'a [&'a str], &'a [&'a str]);

/// A password MessagingUser of space `space` in YAML.
fn user(space: &str, username: &str, password: &str, rules: &[Rule<'_>]) -> String {
    let mut yaml = format!(
        "---\napiVersion: user.enmasse.io/v1beta1\nkind: MessagingUser\nmetadata: {{name: \
         {space}.{username}}}\nspec:\n  username: {username}\n  authentication: {{type: \
         password, password: {}}}\n  authorization:\n",
        STANDARD.encode(password)
    );
    for (addresses, operations) in rules {
        yaml.push_str(&format!(
            "  - {{addresses: [{}], operations: [{}]}}\n",
            quoted(addresses),
            operations.join(", ")
        ));
    }
    yaml
}

fn quoted(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("\"{i}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A standard space `myspace` of queues `myqueue`, `myqueue2`, `orders-eu` and `other`, with
/// the AuthenticationService `standard`, and `users` (YAML documents) appended.
fn standard_space(users: &str) -> String {
    let mut yaml = String::from(
        "\
apiVersion: admin.enmasse.io/v1beta1
kind: AuthenticationService
metadata: {name: standard-authservice}
spec: {type: standard}
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressSpacePlan
metadata: {name: standard-unlimited}
spec:
  addressSpaceType: standard
  resourceLimits: {router: 10000.0, broker: 10000.0, aggregate: 10000.0}
  addressPlans: [standard-small-queue]
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressPlan
metadata: {name: standard-small-queue}
spec:
  addressType: queue
  resources: {router: 0.001, broker: 0.01}
---
apiVersion: enmasse.io/v1beta1
kind: AddressSpace
metadata: {name: myspace}
spec:
  type: standard
  plan: standard-unlimited
  authenticationService: {name: standard-authservice}
",
    );
    for address in ["myqueue", "myqueue2", "orders-eu", "other"] {
        yaml.push_str(&format!(
            "---\napiVersion: enmasse.io/v1beta1\nkind: Address\nmetadata: {{name: \
             myspace.{address}}}\nspec: {{address: {address}, type: queue, plan: \
             standard-small-queue}}\n"
        ));
    }
    yaml.push_str(users);
    yaml
}

/// The users most tests share: alice may send and receive on `myqueue` and send to `orders*`;
/// bob may only receive from `myqueue`, carol only send to it; viewer has `view` and `manage`
/// on everything.
fn team() -> String {
    [
        user(
            "myspace",
            "alice",
            ALICE_PASSWORD,
            &[(&["myqueue"], &["send", "recv"]), (&["orders*"], &["send"])],
        ),
        user("myspace", "bob", BOB_PASSWORD, &[(&["myqueue"], &["recv"])]),
        user(
            "myspace",
            "carol",
            CAROL_PASSWORD,
            &[(&["myqueue"], &["send"])],
        ),
        user(
            "myspace",
            "viewer",
            VIEWER_PASSWORD,
            &[(&["*"], &["view", "manage"])],
        ),
    ]
    .concat()
}

/// A server of [`standard_space`] with [`team`], PLAIN allowed without TLS.
fn team_server(tag: &str) -> Server {
    Server::start_config(
        tag,
        &standard_space(&team()),
        &[
            "--danger-plain-without-tls",
            "--auth-failure-delay-ms",
            FAILURE_DELAY_MS,
        ],
    )
}

/// Runs `peer`'s client as `username` with `password`: `args` then the credentials.
fn run_as(server: &Server, peer: Peer, username: &str, password: &str, args: &[&str]) -> Outcome {
    let mut all = args.to_vec();
    all.extend(["--user", username, "--password", password]);
    server.run_with(peer, &all)
}

/// Asserts that `outcome` is an attach refused with `amqp:unauthorized-access` on the link
/// (the connection goes on), its description containing `reason`.
fn assert_unauthorized(server: &Server, outcome: &Outcome, reason: &str) {
    assert_eq!(
        outcome.code(),
        Some(3),
        "expected a refusal: {outcome:?}\nserver stderr:\n{}",
        server.log()
    );
    let json = &outcome.json;
    assert_eq!(json["attached"], false, "{json}");
    assert_eq!(json["closed"], "link", "only the link is refused: {json}");
    assert_eq!(json["condition"], "amqp:unauthorized-access", "{json}");
    let description = json["description"].as_str().unwrap_or_default();
    assert!(
        description.contains(reason),
        "the refusal should say {reason:?}: {json}"
    );
}

/// Asserts that `username` may attach a `role` link to `address`.
fn assert_attaches(server: &Server, username: &str, password: &str, address: &str, role: &str) {
    let json = ok(
        server,
        run_as(
            server,
            Peer::Proton,
            username,
            password,
            &["attach", address, "--role", role],
        ),
        &format!("{username}: attach a {role} to {address}"),
    );
    assert_eq!(json["attached"], true, "{json}");
}

/// Asserts that `username` may not attach a `role` link to `address`.
fn assert_refused(server: &Server, username: &str, password: &str, address: &str, role: &str) {
    let outcome = run_as(
        server,
        Peer::Proton,
        username,
        password,
        &["attach", address, "--role", role],
    );
    let verb = if role == "sender" {
        "send to"
    } else {
        "receive from"
    };
    assert_unauthorized(
        server,
        &outcome,
        &format!("user '{username}' may not {verb} '{address}'"),
    );
}

/// Asserts a client failed to authenticate: exit 1, SASL outcome `auth`, and
/// `amqp:unauthorized-access`.
fn assert_auth_failed(server: &Server, outcome: &Outcome) {
    assert_eq!(
        outcome.code(),
        Some(1),
        "expected an authentication failure: {outcome:?}\nserver stderr:\n{}",
        server.log()
    );
    assert_eq!(outcome.json["sasl_outcome"], "auth", "{}", outcome.json);
    assert_eq!(
        outcome.json["condition"], "amqp:unauthorized-access",
        "{}",
        outcome.json
    );
    assert!(outcome.json.get("sent").is_none(), "{}", outcome.json);
}

/// Waits (bounded) until the server's log has `line` `count` times.
fn wait_log(server: &Server, line: &str, count: usize) {
    let deadline = Instant::now() + RELOAD_WAIT;
    while server.log().matches(line).count() < count {
        assert!(
            Instant::now() < deadline,
            "the server did not log {line:?} ({count}x) within {RELOAD_WAIT:?}:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn plain_with_the_right_password_sends_and_receives() {
    let server = team_server("auth-plain");
    let sent = ok(
        &server,
        run_as(
            &server,
            Peer::Proton,
            "alice",
            ALICE_PASSWORD,
            &["send", "myqueue", "3"],
        ),
        "alice sends 3",
    );
    assert_eq!(sent["accepted"], 3, "{sent}");
    let received = ok(
        &server,
        run_as(
            &server,
            Peer::Proton,
            "alice",
            ALICE_PASSWORD,
            &["receive", "myqueue", "3"],
        ),
        "alice receives 3",
    );
    assert_eq!(bodies(&received), ["msg-0", "msg-1", "msg-2"]);
    assert!(
        !server.log().contains(ALICE_PASSWORD),
        "the password must never be logged"
    );
}

#[test]
fn a_wrong_password_and_an_unknown_user_fail_alike() {
    let server = team_server("auth-wrong");
    let wrong = run_as(
        &server,
        Peer::Proton,
        "alice",
        "not-her-password",
        &["send", "myqueue", "1"],
    );
    assert_auth_failed(&server, &wrong);
    let unknown = run_as(
        &server,
        Peer::Proton,
        "mallory",
        "whatever",
        &["send", "myqueue", "1"],
    );
    assert_auth_failed(&server, &unknown);
    // Nothing tells the client which of the two it was.
    assert_eq!(
        wrong.json["description"], unknown.json["description"],
        "{} vs {}",
        wrong.json, unknown.json
    );
    assert!(
        !server.log().contains("not-her-password"),
        "a tried password must never be logged"
    );
    // Nothing was sent by either: the queue is empty for alice.
    let outcome = server
        .spawn_peer(
            Peer::Proton,
            &server.url,
            &[
                "receive",
                "myqueue",
                "1",
                "--user",
                "alice",
                "--password",
                ALICE_PASSWORD,
            ],
            "1",
        )
        .finish(&server);
    assert_eq!(outcome.code(), Some(2), "{outcome:?}");
}

#[test]
fn plain_is_not_offered_without_tls_unless_the_danger_setting_allows_it() {
    let strict = Server::start_config(
        "auth-notls",
        &standard_space(&team()),
        &["--auth-failure-delay-ms", FAILURE_DELAY_MS],
    );
    let outcome = run_as(
        &strict,
        Peer::Proton,
        "alice",
        ALICE_PASSWORD,
        &["send", "myqueue", "1", "--mech", "PLAIN"],
    );
    assert_eq!(
        outcome.code(),
        Some(1),
        "PLAIN must not be offered without TLS: {outcome:?}\nserver stderr:\n{}",
        strict.log()
    );
    assert_ne!(outcome.json["sasl_outcome"], "ok", "{}", outcome.json);
    assert_eq!(
        outcome.json["condition"], "amqp:unauthorized-access",
        "{}",
        outcome.json
    );
    // rhea says what the server offered instead.
    let rhea = run_as(
        &strict,
        Peer::Rhea,
        "alice",
        ALICE_PASSWORD,
        &["send", "myqueue", "1"],
    );
    assert_eq!(rhea.code(), Some(1), "{rhea:?}");
    let description = rhea.json["description"].as_str().unwrap_or_default();
    assert!(
        description.contains("SCRAM-SHA-512") && !description.contains("PLAIN"),
        "{}",
        rhea.json
    );

    let lenient = team_server("auth-danger");
    let sent = ok(
        &lenient,
        run_as(
            &lenient,
            Peer::Proton,
            "alice",
            ALICE_PASSWORD,
            &["send", "myqueue", "1", "--mech", "PLAIN"],
        ),
        "PLAIN with --danger-plain-without-tls",
    );
    assert_eq!(sent["accepted"], 1, "{sent}");
}

#[test]
fn rhea_logs_in_with_the_right_password_and_not_with_a_wrong_one() {
    let server = team_server("auth-rhea");
    let sent = ok(
        &server,
        run_as(
            &server,
            Peer::Rhea,
            "alice",
            ALICE_PASSWORD,
            &["send", "myqueue", "2"],
        ),
        "rhea: alice sends 2",
    );
    assert_eq!(sent["accepted"], 2, "{sent}");
    let received = ok(
        &server,
        run_as(
            &server,
            Peer::Rhea,
            "alice",
            ALICE_PASSWORD,
            &["receive", "myqueue", "2"],
        ),
        "rhea: alice receives 2",
    );
    assert_eq!(received["bodies"], serde_json::json!(["msg-0", "msg-1"]));

    for (username, password) in [("alice", "wrong"), ("nobody", ALICE_PASSWORD)] {
        let outcome = run_as(
            &server,
            Peer::Rhea,
            username,
            password,
            &["send", "myqueue", "1"],
        );
        assert_eq!(outcome.code(), Some(1), "{outcome:?}");
        assert_eq!(outcome.json["sent"], 0, "{}", outcome.json);
        assert_eq!(
            outcome.json["condition"], "amqp:unauthorized-access",
            "{}",
            outcome.json
        );
        // rhea reports the SASL outcome code: 1 is `auth`.
        assert_eq!(
            outcome.json["description"], "Failed to authenticate: 1",
            "{}",
            outcome.json
        );
    }
}

/// fe2o3: connects to `server` with `sasl`.
async fn fe2o3_open(
    server: &Server,
    sasl: SaslProfile,
) -> Result<fe2o3_amqp::connection::ConnectionHandle<()>, OpenError> {
    tokio::time::timeout(
        WAIT,
        Connection::builder()
            .container_id("sluice-auth-fe2o3")
            .sasl_profile(sasl)
            .open(server.url.as_str()),
    )
    .await
    .expect("no answer to the open within WAIT")
}

/// fe2o3 as alice with `sasl`: sends `body` to `myqueue` and receives it back.
async fn fe2o3_round_trip(server: &Server, sasl: SaslProfile, body: &str) {
    let mut connection = fe2o3_open(server, sasl)
        .await
        .unwrap_or_else(|e| panic!("open: {e:?}\nserver stderr:\n{}", server.log()));
    let mut session = tokio::time::timeout(WAIT, Session::begin(&mut connection))
        .await
        .unwrap()
        .unwrap();
    let mut sender = tokio::time::timeout(WAIT, Sender::attach(&mut session, "s", "myqueue"))
        .await
        .unwrap()
        .unwrap();
    let outcome = tokio::time::timeout(WAIT, sender.send(body.to_string()))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(outcome, Fe2o3Outcome::Accepted(_)), "{outcome:?}");
    let mut receiver = tokio::time::timeout(WAIT, Receiver::attach(&mut session, "r", "myqueue"))
        .await
        .unwrap()
        .unwrap();
    let delivery = tokio::time::timeout(WAIT, receiver.recv::<String>())
        .await
        .unwrap()
        .unwrap();
    receiver.accept(&delivery).await.unwrap();
    assert_eq!(delivery.body(), body);
    let _ = sender.close().await;
    let _ = receiver.close().await;
    let _ = session.end().await;
    let _ = connection.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_sha_256_and_512_log_in_with_the_right_password_only() {
    // SCRAM needs no TLS, and no danger setting.
    let server = Server::start_config(
        "auth-scram",
        &standard_space(&team()),
        &["--auth-failure-delay-ms", FAILURE_DELAY_MS],
    );
    fe2o3_round_trip(
        &server,
        SaslScramSha256::new("alice", ALICE_PASSWORD).into(),
        "scram-256",
    )
    .await;
    fe2o3_round_trip(
        &server,
        SaslScramSha512::new("alice", ALICE_PASSWORD).into(),
        "scram-512",
    )
    .await;

    let refusals: [(&str, SaslProfile); 4] = [
        ("256 wrong", SaslScramSha256::new("alice", "wrong").into()),
        ("512 wrong", SaslScramSha512::new("alice", "wrong").into()),
        ("256 unknown", SaslScramSha256::new("nobody", "x").into()),
        ("512 unknown", SaslScramSha512::new("nobody", "x").into()),
    ];
    for (what, sasl) in refusals {
        match fe2o3_open(&server, sasl).await {
            Err(OpenError::SaslError { code, .. }) => {
                assert_eq!(code, SaslCode::Auth, "{what}");
            }
            Err(other) => panic!("{what}: expected a SASL auth failure, got {other:?}"),
            Ok(_) => panic!("{what}: logged in!\nserver stderr:\n{}", server.log()),
        }
    }
}

#[test]
fn send_and_receive_refusals_say_unauthorized_access_and_why() {
    let server = team_server("auth-refusals");
    // bob may receive but not send; carol the other way round.
    assert_refused(&server, "bob", BOB_PASSWORD, "myqueue", "sender");
    assert_attaches(&server, "bob", BOB_PASSWORD, "myqueue", "receiver");
    assert_refused(&server, "carol", CAROL_PASSWORD, "myqueue", "receiver");
    assert_attaches(&server, "carol", CAROL_PASSWORD, "myqueue", "sender");
    // rhea sees the same refusal.
    let outcome = run_as(
        &server,
        Peer::Rhea,
        "bob",
        BOB_PASSWORD,
        &["attach", "myqueue", "--role", "sender"],
    );
    assert_unauthorized(&server, &outcome, "user 'bob' may not send to 'myqueue'");
}

#[test]
fn standard_patterns_a_literal_and_a_prefix() {
    let server = team_server("auth-std-patterns");
    // Literal `myqueue`: itself, not `myqueue2`.
    assert_attaches(&server, "alice", ALICE_PASSWORD, "myqueue", "sender");
    assert_refused(&server, "alice", ALICE_PASSWORD, "myqueue2", "sender");
    // Prefix `orders*` (send only): `orders-eu`, not `other`, and no receiving.
    assert_attaches(&server, "alice", ALICE_PASSWORD, "orders-eu", "sender");
    assert_refused(&server, "alice", ALICE_PASSWORD, "other", "sender");
    assert_refused(&server, "alice", ALICE_PASSWORD, "orders-eu", "receiver");
}

/// A brokered space `mybrokered` with a queue of each name in `addresses`, and `users`.
fn brokered_space(addresses: &[&str], users: &str) -> String {
    let mut yaml = String::from(
        "\
apiVersion: admin.enmasse.io/v1beta1
kind: AuthenticationService
metadata: {name: standard-authservice}
spec: {type: standard}
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressSpacePlan
metadata: {name: brokered-single-broker}
spec:
  addressSpaceType: brokered
  resourceLimits: {broker: 1.9}
  addressPlans: [brokered-queue]
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressPlan
metadata: {name: brokered-queue}
spec:
  addressType: queue
  resources: {broker: 0.0}
---
apiVersion: enmasse.io/v1beta1
kind: AddressSpace
metadata: {name: mybrokered}
spec:
  type: brokered
  plan: brokered-single-broker
  authenticationService: {name: standard-authservice}
",
    );
    for (i, address) in addresses.iter().enumerate() {
        yaml.push_str(&format!(
            "---\napiVersion: enmasse.io/v1beta1\nkind: Address\nmetadata: {{name: \
             mybrokered.a{i}}}\nspec: {{address: \"{address}\", type: queue, plan: \
             brokered-queue}}\n"
        ));
    }
    yaml.push_str(users);
    yaml
}

#[test]
fn brokered_patterns_plus_hash_and_star() {
    let addresses = [
        "orders/eu",
        "orders/us",
        "orders/eu/new",
        "logs/app/1",
        "other",
    ];
    let users = [
        user("mybrokered", "one", "one-pw", &[(&["orders/+"], &["send"])]),
        user(
            "mybrokered",
            "hash",
            "hash-pw",
            &[(&["orders/#"], &["send"])],
        ),
        user("mybrokered", "star", "star-pw", &[(&["logs/*"], &["send"])]),
    ]
    .concat();
    let server = Server::start_config(
        "auth-brokered",
        &brokered_space(&addresses, &users),
        &[
            "--danger-plain-without-tls",
            "--auth-failure-delay-ms",
            FAILURE_DELAY_MS,
        ],
    );
    // `+`: exactly one word.
    assert_attaches(&server, "one", "one-pw", "orders/eu", "sender");
    assert_attaches(&server, "one", "one-pw", "orders/us", "sender");
    assert_refused(&server, "one", "one-pw", "orders/eu/new", "sender");
    // `#`: any number of words.
    assert_attaches(&server, "hash", "hash-pw", "orders/eu", "sender");
    assert_attaches(&server, "hash", "hash-pw", "orders/eu/new", "sender");
    assert_refused(&server, "hash", "hash-pw", "logs/app/1", "sender");
    // `*`: any number of words too.
    assert_attaches(&server, "star", "star-pw", "logs/app/1", "sender");
    assert_refused(&server, "star", "star-pw", "other", "sender");
    assert_refused(&server, "star", "star-pw", "orders/eu", "sender");
}

#[test]
fn view_and_manage_grant_no_messaging() {
    let server = team_server("auth-view");
    for role in ["sender", "receiver"] {
        assert_refused(&server, "viewer", VIEWER_PASSWORD, "myqueue", role);
    }
}

#[test]
fn the_anonymous_relay_authorizes_each_message_to() {
    let server = team_server("auth-relay");
    let json = ok(
        &server,
        run_as(
            &server,
            Peer::Proton,
            "alice",
            ALICE_PASSWORD,
            &[
                "relay",
                "--to",
                "myqueue",
                "--to",
                "other",
                "--to",
                "orders-eu",
            ],
        ),
        "alice relays to myqueue, other and orders-eu",
    );
    let deliveries = json["deliveries"].as_array().unwrap();
    let by_to = |to: &str| -> &Value { deliveries.iter().find(|d| d["to"] == to).unwrap() };
    assert_eq!(by_to("myqueue")["outcome"], "accepted", "{json}");
    assert_eq!(by_to("orders-eu")["outcome"], "accepted", "{json}");
    let forbidden = by_to("other");
    assert_eq!(forbidden["outcome"], "rejected", "{json}");
    assert_eq!(forbidden["condition"], "amqp:unauthorized-access", "{json}");
    let description = forbidden["description"].as_str().unwrap_or_default();
    assert!(description.contains("may not send to 'other'"), "{json}");
    // The accepted one is really there.
    let received = ok(
        &server,
        run_as(
            &server,
            Peer::Proton,
            "alice",
            ALICE_PASSWORD,
            &["receive", "myqueue", "1"],
        ),
        "alice receives the relayed message",
    );
    assert_eq!(bodies(&received), ["msg-0"]);
}

#[test]
fn a_temporary_queue_of_another_connection_cannot_be_received_from() {
    let server = team_server("auth-temporary");
    let file = server.dir().join("temporary-address");
    let file_arg = file.to_str().unwrap().to_owned();
    let mut owner = server.spawn_with(
        Peer::Proton,
        &[
            "temporary",
            "1",
            "--address-file",
            &file_arg,
            "--user",
            "alice",
            "--password",
            ALICE_PASSWORD,
        ],
    );
    owner.wait_ready(&server);
    let address = std::fs::read_to_string(&file).unwrap();
    assert!(!address.is_empty());
    // The same user on another connection may not receive from it.
    let outcome = run_as(
        &server,
        Peer::Proton,
        "alice",
        ALICE_PASSWORD,
        &["attach", &address, "--role", "receiver"],
    );
    assert_unauthorized(&server, &outcome, "temporary queue of another link");
    // A reply sent to it still reaches its owner.
    let json = ok(
        &server,
        run_as(
            &server,
            Peer::Proton,
            "bob",
            BOB_PASSWORD,
            &["relay", "--to", &address],
        ),
        "bob replies to the temporary queue",
    );
    assert_eq!(json["deliveries"][0]["outcome"], "accepted", "{json}");
    let received = ok(&server, owner.finish(&server), "the owner receives");
    assert_eq!(received["bodies"], serde_json::json!(["msg-0"]));
}

#[test]
fn sighup_detaches_a_receiver_that_lost_recv_and_refuses_an_invalid_config() {
    let server = team_server("auth-sighup");
    let mut receiver = server.spawn_with(
        Peer::Proton,
        &[
            "receive",
            "myqueue",
            "1",
            "--user",
            "bob",
            "--password",
            BOB_PASSWORD,
        ],
    );
    receiver.wait_ready(&server);

    // bob loses `recv` on myqueue (he gets `send` instead).
    let config = server.dir().join("config/space.yaml");
    let edited = team().replace(
        "addresses: [\"myqueue\"], operations: [recv]",
        "addresses: [\"myqueue\"], operations: [send]",
    );
    assert_ne!(edited, team(), "the edit must change bob's rule");
    std::fs::write(&config, standard_space(&edited)).unwrap();
    server.reload();
    wait_log(&server, "configuration reloaded", 1);
    let outcome = receiver.finish(&server);
    assert_eq!(
        outcome.code(),
        Some(1),
        "the receiver should be detached: {outcome:?}\nserver stderr:\n{}",
        server.log()
    );
    assert_eq!(
        outcome.json["condition"], "amqp:unauthorized-access",
        "{}",
        outcome.json
    );
    assert_eq!(
        outcome.json["description"], "user 'bob' may not receive from 'myqueue'",
        "{}",
        outcome.json
    );
    assert_refused(&server, "bob", BOB_PASSWORD, "myqueue", "receiver");
    assert_attaches(&server, "bob", BOB_PASSWORD, "myqueue", "sender");

    // An invalid config (bob's rights back, but a user of no address space) is refused
    // whole: the rights of the last good one stay.
    let broken = format!(
        "{}{}",
        standard_space(&team()),
        user("nospace", "ghost", "x", &[(&["*"], &["send"])])
    );
    std::fs::write(&config, broken).unwrap();
    server.reload();
    wait_log(&server, "the configuration is not reloaded", 1);
    assert_refused(&server, "bob", BOB_PASSWORD, "myqueue", "receiver");
    assert_attaches(&server, "bob", BOB_PASSWORD, "myqueue", "sender");
}

#[test]
fn service_none_lets_anonymous_in_and_standard_does_not() {
    // The harness's space names the `none` service.
    let open = Server::start("auth-none");
    let sent = ok(
        &open,
        open.run(&["send", "myqueue", "1", "--mech", "ANONYMOUS"]),
        "ANONYMOUS under none",
    );
    assert_eq!(sent["accepted"], 1, "{sent}");
    let received = ok(
        &open,
        open.run_with(Peer::Rhea, &["receive", "myqueue", "1"]),
        "rhea ANONYMOUS under none",
    );
    assert_eq!(received["bodies"], serde_json::json!(["msg-0"]));

    let closed = team_server("auth-standard-anon");
    let outcome = closed.run(&["send", "myqueue", "1", "--mech", "ANONYMOUS"]);
    assert_eq!(
        outcome.code(),
        Some(1),
        "ANONYMOUS is not offered under standard without SAS keys: {outcome:?}"
    );
    assert_ne!(outcome.json["sasl_outcome"], "ok", "{}", outcome.json);
}
