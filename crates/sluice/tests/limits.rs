//! Black-box tests of the connection limits: `sluice serve` on a standard space whose
//! StandardInfraConfig sets `spec.router.policy` (maxConnections, maxConnectionsPerHost,
//! maxConnectionsPerUser, maxSessionsPerConnection, maxSendersPerConnection,
//! maxReceiversPerConnection) and `spec.router.handshakeTimeout`, and the cap on connections
//! still authenticating (1,000, `UNAUTHENTICATED_CONNECTIONS_MAX_DEFAULT`).
//!
//! Clients: fe2o3-amqp (an independent AMQP 1.0 client on tokio) for connections that must
//! work, bound to a chosen loopback source address (Linux routes all of 127.0.0.0/8 to
//! loopback, so 127.0.0.2 is another "host"); Qpid Proton (`tests/interop/proton_client.py`)
//! for a password user's refused connection; and raw sockets speaking just enough AMQP
//! ([`wire`]) where a test needs the exact frames: an open without SASL, a begin on a channel
//! past channel-max, a socket that sends nothing or only the SASL header.
//!
//! Every wait is bounded ([`WAIT`]); servers listen on 127.0.0.1 port 0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use fe2o3_amqp::connection::{ConnectionHandle, OpenError};
use fe2o3_amqp::link::{ReceiverAttachError, SenderAttachError};
use fe2o3_amqp::sasl_profile::SaslProfile;
use fe2o3_amqp::session::{BeginError, SessionHandle};
use fe2o3_amqp::types::definitions::{AmqpError, ErrorCondition};
use fe2o3_amqp::types::messaging::Outcome;
use fe2o3_amqp::types::sasl::SaslCode;
use fe2o3_amqp::{Connection, Receiver, Sender, Session};
use support::{Peer, Server};
use tokio::net::{TcpSocket, TcpStream};
use wire::Value;

/// The longest any one step (connect, a frame, attach, send) may take.
const WAIT: Duration = Duration::from_secs(30);
/// How long a socket the handshake deadline (2 s here) must close may stay open.
const CLOSED_WITHIN: Duration = Duration::from_secs(10);
/// A failed authentication answers after this (the default 1 s would only slow the tests).
const FAILURE_DELAY_MS: &str = "50";

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const SECOND_HOST: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const THIRD_HOST: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

/// `alice`'s password; the MessagingUser has it base64-encoded (`YWxpY2Utc2VjcmV0`).
const ALICE_PASSWORD: &str = "alice-secret";
/// `bob`'s password (`Ym9iLXNlY3JldA==`).
const BOB_PASSWORD: &str = "bob-secret";

/// A standard space with the queue `myqueue` on a plan whose StandardInfraConfig has
/// `handshakeTimeout: {handshake_s}` and `policy: {policy}` (a YAML flow map), authenticated
/// by the service `auth` (`none` or `standard`); under `standard`, the password users alice
/// and bob may send to and receive from `myqueue`.
fn space(auth: &str, handshake_s: u32, policy: &str) -> String {
    let mut yaml = format!(
        "\
apiVersion: admin.enmasse.io/v1beta1
kind: StandardInfraConfig
metadata: {{name: limited}}
spec:
  router:
    handshakeTimeout: {handshake_s}
    policy: {policy}
---
apiVersion: admin.enmasse.io/v1beta1
kind: AuthenticationService
metadata: {{name: auth}}
spec: {{type: {auth}}}
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressSpacePlan
metadata: {{name: standard-limited}}
spec:
  addressSpaceType: standard
  infraConfigRef: limited
  resourceLimits: {{router: 10000.0, broker: 10000.0, aggregate: 10000.0}}
  addressPlans: [standard-small-queue]
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressPlan
metadata: {{name: standard-small-queue}}
spec:
  addressType: queue
  resources: {{router: 0.001, broker: 0.01}}
---
apiVersion: enmasse.io/v1beta1
kind: AddressSpace
metadata: {{name: myspace}}
spec:
  type: standard
  plan: standard-limited
  authenticationService: {{name: auth}}
---
apiVersion: enmasse.io/v1beta1
kind: Address
metadata: {{name: myspace.myqueue}}
spec: {{address: myqueue, type: queue, plan: standard-small-queue}}
"
    );
    if auth == "standard" {
        for (user, password) in [("alice", "YWxpY2Utc2VjcmV0"), ("bob", "Ym9iLXNlY3JldA==")] {
            yaml.push_str(&format!(
                "\
---
apiVersion: user.enmasse.io/v1beta1
kind: MessagingUser
metadata: {{name: myspace.{user}}}
spec:
  username: {user}
  authentication: {{type: password, password: {password}}}
  authorization:
  - {{addresses: [myqueue], operations: [send, recv]}}
"
            ));
        }
    }
    yaml
}

/// Runs `step`, failing the test when it takes longer than [`WAIT`].
async fn within<T>(what: &str, step: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, step)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer from the broker within {WAIT:?}"))
}

/// The server's plain AMQP address.
fn address(server: &Server) -> SocketAddr {
    server
        .url
        .strip_prefix("amqp://")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("not an amqp://IP:PORT url: {}", server.url))
}

/// A TCP connection to the server from the loopback address `from`.
async fn tcp_from(server: &Server, from: IpAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(from, 0))
        .unwrap_or_else(|e| panic!("binding a client socket to {from}: {e}"));
    within("connect", socket.connect(address(server)))
        .await
        .unwrap_or_else(|e| panic!("connecting from {from} to {}: {e}", server.url))
}

/// An fe2o3 connection attempt from `from`.
async fn try_open(
    server: &Server,
    from: IpAddr,
    id: &str,
    sasl: SaslProfile,
) -> Result<ConnectionHandle<()>, OpenError> {
    let stream = tcp_from(server, from).await;
    within(
        "open",
        Connection::builder()
            .container_id(id)
            .sasl_profile(sasl)
            .open_with_stream(stream),
    )
    .await
}

fn plain(user: &str, password: &str) -> SaslProfile {
    SaslProfile::Plain {
        username: user.into(),
        password: password.into(),
    }
}

/// An fe2o3 connection that works: one session, one sender on `myqueue`.
struct Client {
    id: String,
    connection: ConnectionHandle<()>,
    session: SessionHandle<()>,
    sender: Sender,
}

impl Client {
    async fn open(server: &Server, from: IpAddr, id: &str, sasl: SaslProfile) -> Client {
        let mut connection = try_open(server, from, id, sasl)
            .await
            .unwrap_or_else(|e| panic!("{id}: connection refused: {e:?}\n{}", server.log()));
        let mut session = begin(&mut connection).await;
        let sender = attach_sender(&mut session, &format!("{id}-sender")).await;
        Client {
            id: id.to_owned(),
            connection,
            session,
            sender,
        }
    }

    /// Sends one message and expects it accepted: the connection still works.
    async fn still_works(&mut self) {
        send_accepted(&mut self.sender, &format!("from {}", self.id)).await;
    }

    async fn close(mut self) {
        within("close sender", self.sender.close()).await.unwrap();
        within("end", self.session.end()).await.unwrap();
        within("close", self.connection.close()).await.unwrap();
    }
}

async fn begin(connection: &mut ConnectionHandle<()>) -> SessionHandle<()> {
    within("begin", Session::begin(connection))
        .await
        .unwrap_or_else(|e| panic!("begin refused: {e:?}"))
}

async fn attach_sender(session: &mut SessionHandle<()>, name: &str) -> Sender {
    within("attach sender", Sender::attach(session, name, "myqueue"))
        .await
        .unwrap_or_else(|e| panic!("attaching sender {name}: {e:?}"))
}

async fn attach_receiver(session: &mut SessionHandle<()>, name: &str) -> Receiver {
    within(
        "attach receiver",
        Receiver::attach(session, name, "myqueue"),
    )
    .await
    .unwrap_or_else(|e| panic!("attaching receiver {name}: {e:?}"))
}

async fn send_accepted(sender: &mut Sender, body: &str) {
    let message = fe2o3_amqp::types::messaging::Message::builder()
        .value(body.to_owned())
        .build();
    let outcome = within("send", sender.send(message))
        .await
        .unwrap_or_else(|e| panic!("sending {body:?}: {e:?}"));
    assert!(
        matches!(outcome, Outcome::Accepted(_)),
        "the broker settled {body:?} with {outcome:?}, expected accepted"
    );
}

/// Connects (fe2o3) until the broker admits the connection: a place given back when another
/// connection closed is free once the broker has noticed, a moment after the close. Bounded.
async fn open_when_admitted(server: &Server, from: IpAddr, id: &str, sasl: SaslProfile) -> Client {
    let deadline = Instant::now() + CLOSED_WITHIN;
    loop {
        match try_open(server, from, id, sasl.clone()).await {
            Ok(mut connection) => {
                let mut session = begin(&mut connection).await;
                let sender = attach_sender(&mut session, &format!("{id}-sender")).await;
                return Client {
                    id: id.to_owned(),
                    connection,
                    session,
                    sender,
                };
            }
            Err(e) => assert!(
                Instant::now() < deadline,
                "{id} still refused {CLOSED_WITHIN:?} after a place was given back: {e:?}\n{}",
                server.log()
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn is_resource_limit(condition: &ErrorCondition) -> bool {
    *condition == ErrorCondition::AmqpError(AmqpError::ResourceLimitExceeded)
}

/// Asserts fe2o3's attempt was refused in SASL with `sys-temp` ("try again later").
fn assert_sys_temp(result: Result<ConnectionHandle<()>, OpenError>, what: &str, server: &Server) {
    match result {
        Err(OpenError::SaslError {
            code: SaslCode::SysTemp,
            ..
        }) => {}
        other => panic!(
            "{what}: expected the SASL outcome sys-temp, got {other:?}\n{}",
            server.log()
        ),
    }
}

/// A raw connection without SASL from `from`: AMQP header and open, the broker's open read;
/// then the close it must send. Returns the close's (condition, description).
async fn refused_without_sasl(server: &Server, from: IpAddr) -> (String, String) {
    let mut raw = wire::Raw::connect(address(server), from).await;
    let open = raw.open_without_sasl("raw-refused").await;
    assert!(
        open[0].as_str().is_some(),
        "the broker's open names its container: {open:?}"
    );
    let error = raw.until_close().await;
    let refusal = wire::condition(&error)
        .unwrap_or_else(|| panic!("expected a close with an error, got {error:?}"));
    assert!(
        raw.ends_within(CLOSED_WITHIN).await.is_ok(),
        "the broker drops a refused connection after its close"
    );
    refusal
}

/// A raw connection from `from` that starts SASL and offers `mechanism` with `response`:
/// the outcome code (0 ok, 1 auth, 2 sys, 3 sys-perm, 4 sys-temp).
async fn sasl_outcome(server: &Server, from: IpAddr, mechanism: &str, response: &[u8]) -> u8 {
    let mut raw = wire::Raw::connect(address(server), from).await;
    raw.sasl(mechanism, response).await
}

/// Waits (bounded) until the server log has at least `count` lines containing `needle`.
async fn wait_log(server: &Server, needle: &str, count: usize) {
    let deadline = Instant::now() + CLOSED_WITHIN;
    loop {
        let log = server.log();
        let found = log.lines().filter(|l| l.contains(needle)).count();
        if found >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected {count} log lines with {needle:?}, found {found}:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_refuses_the_next_one_until_one_closes() {
    let server = Server::start_config(
        "limits-total",
        &space("none", 10, "{maxConnections: 3}"),
        &[],
    );
    let mut clients = Vec::new();
    for i in 0..3 {
        clients
            .push(Client::open(&server, LOCALHOST, &format!("c{i}"), SaslProfile::Anonymous).await);
    }

    // The fourth, without SASL: its open is answered, then closed with the reason.
    let (condition, description) = refused_without_sasl(&server, LOCALHOST).await;
    assert_eq!(condition, "amqp:resource-limit-exceeded", "{description}");
    assert!(
        description.contains("limit of 3 connections"),
        "the close says which limit: {description:?}"
    );
    // With SASL: the outcome sys-temp, from a raw client and from fe2o3.
    assert_eq!(
        sasl_outcome(&server, LOCALHOST, "ANONYMOUS", b"").await,
        4,
        "sys-temp"
    );
    let fourth = try_open(&server, LOCALHOST, "c3", SaslProfile::Anonymous).await;
    assert_sys_temp(fourth, "a fourth connection", &server);

    // The first three keep working.
    for client in &mut clients {
        client.still_works().await;
    }
    // One closes: its place is given back, and a new connection is admitted and works.
    clients.remove(0).close().await;
    let mut admitted = open_when_admitted(&server, LOCALHOST, "c4", SaslProfile::Anonymous).await;
    admitted.still_works().await;
    for client in &mut clients {
        client.still_works().await;
    }
    wait_log(
        &server,
        "connection refused: the broker already has its limit of 3 connections",
        3,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_per_host_refuses_127_0_0_1_past_it_while_127_0_0_2_connects() {
    let server = Server::start_config(
        "limits-host",
        &space("none", 10, "{maxConnectionsPerHost: 2}"),
        &[],
    );
    let mut local = Vec::new();
    for i in 0..2 {
        local.push(
            Client::open(
                &server,
                LOCALHOST,
                &format!("local{i}"),
                SaslProfile::Anonymous,
            )
            .await,
        );
    }
    let (condition, description) = refused_without_sasl(&server, LOCALHOST).await;
    assert_eq!(condition, "amqp:resource-limit-exceeded", "{description}");
    assert!(
        description.contains("127.0.0.1 already has its limit of 2 connections"),
        "the close names the host and the limit: {description:?}"
    );
    let third = try_open(&server, LOCALHOST, "local2", SaslProfile::Anonymous).await;
    assert_sys_temp(third, "a third connection from 127.0.0.1", &server);

    // Another source host has its own count: two from 127.0.0.2 get in, a third does not;
    // 127.0.0.3 still gets in.
    let mut second = Vec::new();
    for i in 0..2 {
        second.push(
            Client::open(
                &server,
                SECOND_HOST,
                &format!("second{i}"),
                SaslProfile::Anonymous,
            )
            .await,
        );
    }
    let refused = try_open(&server, SECOND_HOST, "second2", SaslProfile::Anonymous).await;
    assert_sys_temp(refused, "a third connection from 127.0.0.2", &server);
    let mut third_host = Client::open(&server, THIRD_HOST, "third0", SaslProfile::Anonymous).await;

    for client in local.iter_mut().chain(&mut second) {
        client.still_works().await;
    }
    third_host.still_works().await;
    wait_log(
        &server,
        "connection refused: 127.0.0.1 already has its limit of 2 connections",
        2,
    )
    .await;
    wait_log(
        &server,
        "connection refused: 127.0.0.2 already has its limit of 2 connections",
        1,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_per_user_closes_alices_extra_connection_while_bob_connects() {
    let server = Server::start_config(
        "limits-user",
        &space("standard", 10, "{maxConnectionsPerUser: 2}"),
        &[
            "--danger-plain-without-tls",
            "--auth-failure-delay-ms",
            FAILURE_DELAY_MS,
        ],
    );
    let mut alice = Vec::new();
    for i in 0..2 {
        alice.push(
            Client::open(
                &server,
                LOCALHOST,
                &format!("alice{i}"),
                plain("alice", ALICE_PASSWORD),
            )
            .await,
        );
    }

    // A third of alice's: authenticated (SASL outcome ok), its open answered, then closed.
    let mut raw = wire::Raw::connect(address(&server), LOCALHOST).await;
    let response = format!("\0alice\0{ALICE_PASSWORD}");
    assert_eq!(raw.sasl("PLAIN", response.as_bytes()).await, 0, "SASL ok");
    raw.open_without_sasl("alice-raw").await;
    let error = raw.until_close().await;
    let (condition, description) = wire::condition(&error)
        .unwrap_or_else(|| panic!("expected a close with an error, got {error:?}"));
    assert_eq!(condition, "amqp:resource-limit-exceeded", "{description}");
    assert!(
        description.contains("user 'alice' already has its limit of 2 connections"),
        "the close names the user and the limit: {description:?}"
    );

    // Proton sees the same: SASL ok, then its connection closed with the condition.
    let url = format!("amqp://alice:{ALICE_PASSWORD}@{}", address(&server));
    let outcome = tokio::task::block_in_place(|| {
        server
            .spawn_peer(
                Peer::Proton,
                &url,
                &["attach", "myqueue", "--role", "sender"],
                "20",
            )
            .finish(&server)
    });
    assert_ne!(outcome.code(), Some(0), "refused: {outcome:?}");
    assert_eq!(outcome.json["sasl_outcome"], "ok", "{}", outcome.json);
    assert_eq!(
        outcome.json["condition"], "amqp:resource-limit-exceeded",
        "{}",
        outcome.json
    );

    // bob is another user: he connects and works; alice's two keep working.
    let mut bob = Client::open(&server, LOCALHOST, "bob0", plain("bob", BOB_PASSWORD)).await;
    bob.still_works().await;
    for client in &mut alice {
        client.still_works().await;
    }
    // One of alice's closes: she may connect again.
    alice.remove(0).close().await;
    let mut again =
        open_when_admitted(&server, LOCALHOST, "alice2", plain("alice", ALICE_PASSWORD)).await;
    again.still_works().await;
    wait_log(
        &server,
        "connection refused: user 'alice' already has its limit of 2 connections",
        2,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_sessions_per_connection_is_the_channel_max_and_a_begin_past_it_closes_the_connection()
{
    let server = Server::start_config(
        "limits-sessions",
        &space("none", 10, "{maxSessionsPerConnection: 2}"),
        &[],
    );
    // A raw client: the broker's open says channel-max 1 (channels 0 and 1: two sessions).
    let mut raw = wire::Raw::connect(address(&server), LOCALHOST).await;
    let open = raw.open_without_sasl("raw-sessions").await;
    assert_eq!(
        open.get(3).and_then(Value::as_u64),
        Some(1),
        "channel-max: {open:?}"
    );
    for channel in [0, 1] {
        raw.send(&wire::begin(channel)).await;
        let (on, code, fields) = raw.performative().await;
        assert_eq!(
            (on, code),
            (channel, wire::BEGIN),
            "a begin answers: {fields:?}"
        );
        assert_eq!(
            fields[0].as_u64(),
            Some(u64::from(channel)),
            "remote-channel"
        );
    }
    // A third session on channel 2, past channel-max: the connection is closed with an error.
    raw.send(&wire::begin(2)).await;
    let error = raw.until_close().await;
    let (condition, description) = wire::condition(&error)
        .unwrap_or_else(|| panic!("expected a close with an error, got {error:?}"));
    eprintln!("a begin on channel 2 past channel-max 1: close with {condition}: {description}");
    assert_eq!(condition, "amqp:not-allowed", "{description}");
    assert!(description.contains("channel-max 1"), "{description}");

    // fe2o3 honours the channel-max: its third begin fails locally, the first two work.
    let mut connection = try_open(&server, LOCALHOST, "fe2o3-sessions", SaslProfile::Anonymous)
        .await
        .unwrap();
    let mut first = begin(&mut connection).await;
    let mut second = begin(&mut connection).await;
    let third = within("third begin", Session::begin(&mut connection)).await;
    assert!(
        matches!(third, Err(BeginError::LocalChannelMaxReached)),
        "fe2o3's third session: {third:?}"
    );
    for (i, session) in [&mut first, &mut second].into_iter().enumerate() {
        let mut sender = attach_sender(session, &format!("session-{i}")).await;
        send_accepted(&mut sender, &format!("on session {i}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_senders_and_receivers_per_connection_refuse_the_extra_attach() {
    let server = Server::start_config(
        "limits-links",
        &space(
            "none",
            10,
            "{maxSendersPerConnection: 2, maxReceiversPerConnection: 2}",
        ),
        &[],
    );
    let mut connection = try_open(&server, LOCALHOST, "fe2o3-links", SaslProfile::Anonymous)
        .await
        .unwrap();
    let mut session = begin(&mut connection).await;
    let mut senders = vec![
        attach_sender(&mut session, "sender-0").await,
        attach_sender(&mut session, "sender-1").await,
    ];
    let mut receivers = vec![
        attach_receiver(&mut session, "receiver-0").await,
        attach_receiver(&mut session, "receiver-1").await,
    ];

    // Each refusal on a session of its own (fe2o3 0.18.4 answers a refusal's detach twice,
    // which may end the session it is on; see tests/fe2o3.rs): the limit is the connection's.
    let mut other = begin(&mut connection).await;
    let third = within(
        "third sender",
        Sender::attach(&mut other, "sender-2", "myqueue"),
    )
    .await;
    match third {
        Err(SenderAttachError::RemoteClosedWithError(error)) => {
            assert!(is_resource_limit(&error.condition), "{error:?}");
            let description = error.description.unwrap_or_default();
            assert!(description.contains("senders"), "{description}");
        }
        other => panic!("a third sender should be refused: {other:?}"),
    }
    let mut other = begin(&mut connection).await;
    let third = within(
        "third receiver",
        Receiver::attach(&mut other, "receiver-2", "myqueue"),
    )
    .await;
    match third {
        Err(ReceiverAttachError::RemoteClosedWithError(error)) => {
            assert!(is_resource_limit(&error.condition), "{error:?}");
            let description = error.description.unwrap_or_default();
            assert!(description.contains("receivers"), "{description}");
        }
        other => panic!("a third receiver should be refused: {other:?}"),
    }

    // The earlier links keep working: two sent, two received (a receiver each).
    for (i, sender) in senders.iter_mut().enumerate() {
        send_accepted(sender, &format!("msg-{i}")).await;
    }
    let mut got = Vec::new();
    for receiver in &mut receivers {
        let delivery = within("receive", receiver.recv::<String>()).await.unwrap();
        within("accept", receiver.accept(&delivery)).await.unwrap();
        got.push(delivery.into_body());
    }
    got.sort();
    assert_eq!(got, ["msg-0", "msg-1"]);

    // A detached sender gives its place back: a new one attaches.
    within("close sender", senders.remove(0).close())
        .await
        .unwrap();
    let mut replacement = attach_sender(&mut session, "sender-3").await;
    send_accepted(&mut replacement, "after a detach").await;

    // Proton, on a connection of its own: the third of three pipelined senders is refused.
    let outcome = tokio::task::block_in_place(|| server.run(&["links", "myqueue", "3"]));
    assert_ne!(outcome.code(), Some(0), "{outcome:?}");
    assert_eq!(
        outcome.json["condition"], "amqp:resource-limit-exceeded",
        "{outcome:?}"
    );
    assert_eq!(
        outcome.json["description"], "the connection already has its limit of 2 senders",
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handshake_deadline_closes_a_silent_socket_and_one_that_sent_only_the_sasl_header() {
    let server = Server::start_config("limits-handshake", &space("standard", 2, "{}"), &[]);
    let mut silent = wire::Raw::connect(address(&server), LOCALHOST).await;
    let mut sasl_only = wire::Raw::connect(address(&server), LOCALHOST).await;
    sasl_only.send(wire::SASL_HEADER).await;
    assert_eq!(&sasl_only.header().await, wire::SASL_HEADER);
    let (_, code, _) = sasl_only.sasl_frame().await;
    assert_eq!(code, wire::SASL_MECHANISMS);

    // Not closed before the deadline (2 s)...
    let early = Duration::from_secs(1);
    assert!(
        silent.ends_within(early).await.is_err(),
        "a silent socket closed before the 2 s deadline"
    );
    // ...and closed after it, within a bounded wait.
    let started = Instant::now();
    let silent_got = silent
        .ends_within(CLOSED_WITHIN)
        .await
        .unwrap_or_else(|got| {
            panic!("a socket that sent nothing is still open after {CLOSED_WITHIN:?} (got {got:?})")
        });
    assert!(silent_got.is_empty(), "a silent socket got {silent_got:?}");
    let sasl_got = sasl_only
        .ends_within(CLOSED_WITHIN)
        .await
        .unwrap_or_else(|got| {
            panic!(
                "a socket that sent only the SASL header is still open {:?} later (got {got:?})",
                started.elapsed()
            )
        });
    eprintln!("after the SASL header alone, the broker sent {sasl_got:?} before closing");

    // The silent socket's closure has its log line (the other's: see
    // `refused_links_and_sessions_and_a_deadline_in_sasl_are_logged`).
    wait_log(&server, "transport handshake timed out", 1).await;
}

/// Every refusal has a log line, as the connection-level ones do: a link past the
/// per-connection limit, a session past channel-max, and a handshake deadline reached in the
/// SASL exchange. Each refusal itself is checked in the tests above; here only its line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_links_and_sessions_and_a_deadline_in_sasl_are_logged() {
    let server = Server::start_config(
        "limits-logged",
        &space(
            "none",
            2,
            "{maxSessionsPerConnection: 2, maxSendersPerConnection: 1}",
        ),
        &[],
    );
    let mut connection = try_open(&server, LOCALHOST, "fe2o3-logged", SaslProfile::Anonymous)
        .await
        .unwrap();
    let mut session = begin(&mut connection).await;
    let _sender = attach_sender(&mut session, "only").await;
    let mut other = begin(&mut connection).await;
    let refused = within(
        "second sender",
        Sender::attach(&mut other, "extra", "myqueue"),
    )
    .await;
    assert!(refused.is_err(), "a second sender is refused: {refused:?}");

    let mut raw = wire::Raw::connect(address(&server), LOCALHOST).await;
    raw.open_without_sasl("raw-logged").await;
    raw.send(&wire::begin(2)).await;
    let error = raw.until_close().await;
    assert!(wire::condition(&error).is_some(), "{error:?}");

    let mut sasl_only = wire::Raw::connect(address(&server), LOCALHOST).await;
    sasl_only.send(wire::SASL_HEADER).await;
    assert!(
        sasl_only.ends_within(CLOSED_WITHIN).await.is_ok(),
        "closed by the deadline"
    );

    // Logging is asynchronous: give it a moment, then look for every line.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let log = server.log();
    let missing: Vec<&str> = [
        "already has its limit of 1 senders",
        "channel 2 is above channel-max 1",
        "handshake timed out",
    ]
    .into_iter()
    .filter(|line| !log.contains(line))
    .collect();
    assert!(
        missing.is_empty(),
        "refusals without a log line: {missing:?}\n{log}"
    );
}

/// Raw sockets (`count`) from 127.0.0.1 that each send the SASL header and read the broker's
/// header and mechanisms, then sit idle: connections still authenticating.
async fn idle_in_sasl(server: &Server, count: usize) -> Vec<wire::Raw> {
    let mut sockets = Vec::with_capacity(count);
    for _ in 0..count {
        let mut raw = wire::Raw::connect(address(server), LOCALHOST).await;
        raw.send(wire::SASL_HEADER).await;
        sockets.push(raw);
    }
    let mut read = tokio::task::JoinSet::new();
    for mut raw in sockets {
        read.spawn(async move {
            assert_eq!(&raw.header().await, wire::SASL_HEADER);
            let (_, code, _) = raw.sasl_frame().await;
            assert_eq!(code, wire::SASL_MECHANISMS);
            raw
        });
    }
    let mut sockets = Vec::with_capacity(count);
    while let Some(raw) = read.join_next().await {
        sockets.push(raw.unwrap());
    }
    sockets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_sockets_in_sasl_fill_the_unauthenticated_cap_not_the_broker() {
    // A long handshake deadline, so the idle sockets stay for the whole test.
    let server = Server::start_config("limits-flood", &space("none", 120, "{}"), &[]);
    // An honest client, authenticated before the flood.
    let mut honest = Client::open(&server, LOCALHOST, "honest", SaslProfile::Anonymous).await;
    let before = server.open_sockets();

    let mut idle = idle_in_sasl(&server, 1_000).await;
    // All 1,000 are admitted and held: none was refused and dropped.
    assert_eq!(server.open_sockets(), before + 1_000);

    // The 1,001st is refused with sys-temp, in SASL: raw, and fe2o3 from another host.
    assert_eq!(
        sasl_outcome(&server, LOCALHOST, "ANONYMOUS", b"").await,
        4,
        "sys-temp"
    );
    let late = try_open(&server, SECOND_HOST, "late", SaslProfile::Anonymous).await;
    assert_sys_temp(late, "the 1,001st unauthenticated connection", &server);
    // The honest client, already authenticated, keeps working through the flood.
    for _ in 0..3 {
        honest.still_works().await;
    }

    // One idle socket goes: a new honest connection gets its place.
    drop(idle.pop());
    let mut second =
        open_when_admitted(&server, SECOND_HOST, "honest-2", SaslProfile::Anonymous).await;
    second.still_works().await;
    drop(idle);
    server.wait_open_sockets(before + 1);
    honest.still_works().await;
    wait_log(
        &server,
        "connection refused: 1000 connections are already authenticating",
        2,
    )
    .await;
}

/// The broker's resident set in KiB, from /proc/PID/status.
fn vm_rss_kib(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{}/status:\n{status}", server.pid()))
}

/// Measures (prints, does not assert) the broker's RSS before, with 1,000 idle sockets in
/// SASL and after they close; run with `--no-capture` to see it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rss_with_a_thousand_idle_unauthenticated_sockets() {
    let server = Server::start_config("limits-rss", &space("none", 120, "{}"), &[]);
    // Warm up: one connection and one message through, so the core and its queue exist.
    let mut honest = open_when_admitted(&server, LOCALHOST, "warm", SaslProfile::Anonymous).await;
    honest.still_works().await;
    // The listener, the broker's own (its signal handling's) and this connection's.
    let idle_sockets = server.open_sockets() - 1;
    honest.close().await;
    server.wait_open_sockets(idle_sockets);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = vm_rss_kib(&server);

    let idle = idle_in_sasl(&server, 1_000).await;
    assert_eq!(
        server.open_sockets(),
        idle_sockets + 1_000,
        "every idle socket is held"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let with = vm_rss_kib(&server);

    drop(idle);
    server.wait_open_sockets(idle_sockets);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = vm_rss_kib(&server);
    // jemalloc hands freed pages back after its decay time (10 s by default).
    tokio::time::sleep(Duration::from_secs(11)).await;
    let later = vm_rss_kib(&server);
    eprintln!(
        "broker VmRSS: {before} KiB before, {with} KiB with 1,000 idle sockets in SASL \
         ({:+} KiB, {:.1} KiB each), {after} KiB when they had closed, {later} KiB 11 s later",
        i128::from(with) - i128::from(before),
        (with as f64 - before as f64) / 1000.0,
    );
}

/// Just enough of AMQP 1.0's type encoding (part 1) and framing (part 2 §2.3) to write the
/// frames these tests send by hand and to read every frame the broker answers with.
mod wire {
    use std::io;
    use std::net::{IpAddr, SocketAddr};
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpSocket, TcpStream};

    use super::WAIT;

    pub(super) const AMQP_HEADER: &[u8; 8] = b"AMQP\x00\x01\x00\x00";
    pub(super) const SASL_HEADER: &[u8; 8] = b"AMQP\x03\x01\x00\x00";
    pub(super) const OPEN: u64 = 0x10;
    pub(super) const BEGIN: u64 = 0x11;
    pub(super) const CLOSE: u64 = 0x18;
    const ERROR: u64 = 0x1d;
    pub(super) const SASL_MECHANISMS: u64 = 0x40;
    const SASL_INIT: u8 = 0x41;
    const SASL_OUTCOME: u64 = 0x44;
    const FRAME_AMQP: u8 = 0;
    const FRAME_SASL: u8 = 1;
    /// The largest frame the tests read (the broker's are far smaller before any transfer).
    const FRAME_MAX: usize = 1 << 20;

    /// A decoded AMQP value; numbers of every width in one variant each.
    #[derive(Debug, Clone, PartialEq)]
    pub(super) enum Value {
        Null,
        Bool(bool),
        Uint(u64),
        Int(i64),
        Symbol(String),
        Text(String),
        Binary(Vec<u8>),
        List(Vec<Value>),
        Map(Vec<(Value, Value)>),
        Array(Vec<Value>),
        Described(Box<Value>, Box<Value>),
        /// A float, char, decimal, timestamp or uuid: skipped, never needed here.
        Opaque,
    }

    impl Value {
        pub(super) fn as_u64(&self) -> Option<u64> {
            match self {
                Value::Uint(n) => Some(*n),
                _ => None,
            }
        }

        pub(super) fn as_str(&self) -> Option<&str> {
            match self {
                Value::Symbol(s) | Value::Text(s) => Some(s),
                _ => None,
            }
        }
    }

    /// An AMQP error (part 2 §2.8.14) as (condition, description).
    pub(super) fn condition(error: &Value) -> Option<(String, String)> {
        let Value::Described(code, fields) = error else {
            return None;
        };
        let Value::List(fields) = fields.as_ref() else {
            return None;
        };
        if code.as_u64() != Some(ERROR) {
            return None;
        }
        let condition = fields.first()?.as_str()?.to_owned();
        let description = fields
            .get(1)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Some((condition, description))
    }

    /// A field of a performative the tests write.
    pub(super) enum Field<'a> {
        Null,
        Uint(u32),
        Text(&'a str),
        Symbol(&'a str),
        Binary(&'a [u8]),
    }

    /// A described list: the performative `code` with `fields` (list32, 32-bit strings).
    fn performative(code: u8, fields: &[Field<'_>]) -> Vec<u8> {
        let mut items = Vec::new();
        for field in fields {
            let (constructor, bytes): (u8, &[u8]) = match field {
                Field::Null => {
                    items.push(0x40);
                    continue;
                }
                Field::Uint(n) => {
                    items.push(0x70);
                    items.extend(n.to_be_bytes());
                    continue;
                }
                Field::Text(s) => (0xb1, s.as_bytes()),
                Field::Symbol(s) => (0xb3, s.as_bytes()),
                Field::Binary(b) => (0xb0, b),
            };
            items.push(constructor);
            items.extend(u32::try_from(bytes.len()).unwrap().to_be_bytes());
            items.extend(bytes);
        }
        let mut out = vec![0x00, 0x53, code, 0xd0];
        out.extend(u32::try_from(items.len() + 4).unwrap().to_be_bytes());
        out.extend(u32::try_from(fields.len()).unwrap().to_be_bytes());
        out.extend(items);
        out
    }

    fn frame(kind: u8, channel: u16, body: &[u8]) -> Vec<u8> {
        let mut out = u32::try_from(8 + body.len())
            .unwrap()
            .to_be_bytes()
            .to_vec();
        out.extend([2, kind]);
        out.extend(channel.to_be_bytes());
        out.extend(body);
        out
    }

    pub(super) fn open(container: &str) -> Vec<u8> {
        frame(
            FRAME_AMQP,
            0,
            &performative(0x10, &[Field::Text(container)]),
        )
    }

    /// A begin on `channel`: next-outgoing-id 0, windows of 100.
    pub(super) fn begin(channel: u16) -> Vec<u8> {
        let fields = [
            Field::Null,
            Field::Uint(0),
            Field::Uint(100),
            Field::Uint(100),
        ];
        frame(FRAME_AMQP, channel, &performative(0x11, &fields))
    }

    pub(super) fn sasl_init(mechanism: &str, response: &[u8]) -> Vec<u8> {
        let fields = [Field::Symbol(mechanism), Field::Binary(response)];
        frame(FRAME_SASL, 0, &performative(SASL_INIT, &fields))
    }

    /// Reads values from a frame body; panics on a truncated or unknown encoding (the
    /// broker's frames must decode).
    struct Reader<'a> {
        bytes: &'a [u8],
    }

    impl<'a> Reader<'a> {
        fn take(&mut self, n: usize) -> &'a [u8] {
            assert!(n <= self.bytes.len(), "a truncated value: {n} bytes wanted");
            let (head, rest) = self.bytes.split_at(n);
            self.bytes = rest;
            head
        }

        fn u8(&mut self) -> u8 {
            self.take(1)[0]
        }

        fn uint(&mut self, width: usize) -> u64 {
            self.take(width)
                .iter()
                .fold(0, |n, b| (n << 8) | u64::from(*b))
        }

        fn int(&mut self, width: usize) -> i64 {
            let shift = 64 - 8 * width;
            ((self.uint(width) << shift) as i64) >> shift
        }

        fn text(&mut self, width: usize) -> String {
            let n = usize::try_from(self.uint(width)).unwrap();
            String::from_utf8(self.take(n).to_vec()).unwrap()
        }

        fn value(&mut self) -> Value {
            let constructor = self.u8();
            self.body(constructor)
        }

        /// A compound's count (after its size), 1 or 4 bytes wide.
        fn count(&mut self, width: usize) -> usize {
            let _size = self.uint(width);
            usize::try_from(self.uint(width)).unwrap()
        }

        fn body(&mut self, constructor: u8) -> Value {
            match constructor {
                0x00 => {
                    let descriptor = self.value();
                    let value = self.value();
                    Value::Described(Box::new(descriptor), Box::new(value))
                }
                0x40 => Value::Null,
                0x41 => Value::Bool(true),
                0x42 => Value::Bool(false),
                0x56 => Value::Bool(self.u8() != 0),
                0x43 | 0x44 => Value::Uint(0),
                0x50 | 0x52 | 0x53 => Value::Uint(self.uint(1)),
                0x51 | 0x54 | 0x55 => Value::Int(self.int(1)),
                0x60 => Value::Uint(self.uint(2)),
                0x61 => Value::Int(self.int(2)),
                0x70 => Value::Uint(self.uint(4)),
                0x71 => Value::Int(self.int(4)),
                0x80 => Value::Uint(self.uint(8)),
                0x81 => Value::Int(self.int(8)),
                0x72..=0x74 => {
                    self.take(4);
                    Value::Opaque
                }
                0x82..=0x84 => {
                    self.take(8);
                    Value::Opaque
                }
                0x94 | 0x98 => {
                    self.take(16);
                    Value::Opaque
                }
                0xa0 | 0xb0 => {
                    let width = if constructor == 0xa0 { 1 } else { 4 };
                    let n = usize::try_from(self.uint(width)).unwrap();
                    Value::Binary(self.take(n).to_vec())
                }
                0xa1 => Value::Text(self.text(1)),
                0xb1 => Value::Text(self.text(4)),
                0xa3 => Value::Symbol(self.text(1)),
                0xb3 => Value::Symbol(self.text(4)),
                0x45 => Value::List(Vec::new()),
                0xc0 | 0xd0 => {
                    let count = self.count(if constructor == 0xc0 { 1 } else { 4 });
                    Value::List((0..count).map(|_| self.value()).collect())
                }
                0xc1 | 0xd1 => {
                    let count = self.count(if constructor == 0xc1 { 1 } else { 4 });
                    Value::Map(
                        (0..count / 2)
                            .map(|_| (self.value(), self.value()))
                            .collect(),
                    )
                }
                0xe0 | 0xf0 => {
                    let count = self.count(if constructor == 0xe0 { 1 } else { 4 });
                    let element = self.u8();
                    if element == 0x00 {
                        let descriptor = self.value();
                        let inner = self.u8();
                        Value::Array(
                            (0..count)
                                .map(|_| {
                                    Value::Described(
                                        Box::new(descriptor.clone()),
                                        Box::new(self.body(inner)),
                                    )
                                })
                                .collect(),
                        )
                    } else {
                        Value::Array((0..count).map(|_| self.body(element)).collect())
                    }
                }
                other => panic!("an unknown constructor 0x{other:02x}"),
            }
        }
    }

    /// A performative as (descriptor code, fields).
    fn decode(body: &[u8]) -> (u64, Vec<Value>) {
        let mut reader = Reader { bytes: body };
        match reader.value() {
            Value::Described(code, fields) => {
                let code = code
                    .as_u64()
                    .unwrap_or_else(|| panic!("a performative with descriptor {code:?}"));
                match *fields {
                    Value::List(fields) => (code, fields),
                    other => panic!("performative 0x{code:x} is not a list: {other:?}"),
                }
            }
            other => panic!("a frame body that is not a performative: {other:?}"),
        }
    }

    fn closed(e: &io::Error) -> bool {
        matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
        )
    }

    /// One raw TCP connection to the broker.
    pub(super) struct Raw {
        stream: TcpStream,
    }

    impl Raw {
        /// Connects to `to` from the loopback address `from`.
        pub(super) async fn connect(to: SocketAddr, from: IpAddr) -> Raw {
            let socket = TcpSocket::new_v4().unwrap();
            socket.bind(SocketAddr::new(from, 0)).unwrap();
            let stream = tokio::time::timeout(WAIT, socket.connect(to))
                .await
                .expect("connect timed out")
                .unwrap_or_else(|e| panic!("connecting from {from} to {to}: {e}"));
            Raw { stream }
        }

        pub(super) async fn send(&mut self, bytes: &[u8]) {
            self.stream.write_all(bytes).await.unwrap();
        }

        async fn exact(&mut self, n: usize) -> Vec<u8> {
            let mut buf = vec![0; n];
            tokio::time::timeout(WAIT, self.stream.read_exact(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("no {n} bytes from the broker within {WAIT:?}"))
                .unwrap_or_else(|e| panic!("reading {n} bytes: {e}"));
            buf
        }

        /// The protocol header the broker answers with.
        pub(super) async fn header(&mut self) -> [u8; 8] {
            self.exact(8).await.try_into().unwrap()
        }

        /// The next frame with a body, skipping empty (heartbeat) frames: (frame type,
        /// channel, performative code, fields).
        async fn frame(&mut self) -> (u8, u16, u64, Vec<Value>) {
            loop {
                let size = u32::from_be_bytes(self.exact(4).await.try_into().unwrap());
                let size = usize::try_from(size).unwrap();
                assert!((8..=FRAME_MAX).contains(&size), "a frame of {size} bytes");
                let rest = self.exact(size - 4).await;
                let doff = usize::from(rest[0]) * 4;
                assert!(
                    doff >= 8 && doff <= size,
                    "doff {doff} in a frame of {size}"
                );
                let kind = rest[1];
                let channel = u16::from_be_bytes([rest[2], rest[3]]);
                let body = &rest[doff - 4..];
                if body.is_empty() {
                    continue;
                }
                let (code, fields) = decode(body);
                return (kind, channel, code, fields);
            }
        }

        /// The next AMQP performative: (channel, code, fields).
        pub(super) async fn performative(&mut self) -> (u16, u64, Vec<Value>) {
            let (kind, channel, code, fields) = self.frame().await;
            assert_eq!(kind, FRAME_AMQP, "an AMQP frame, got type {kind}");
            (channel, code, fields)
        }

        /// The next SASL frame: (channel, code, fields).
        pub(super) async fn sasl_frame(&mut self) -> (u16, u64, Vec<Value>) {
            let (kind, channel, code, fields) = self.frame().await;
            assert_eq!(kind, FRAME_SASL, "a SASL frame, got type {kind}");
            (channel, code, fields)
        }

        /// Sends the AMQP header and an open (no SASL before, or after a SASL exchange);
        /// reads the broker's header and open and returns the open's fields.
        pub(super) async fn open_without_sasl(&mut self, container: &str) -> Vec<Value> {
            self.send(AMQP_HEADER).await;
            self.send(&open(container)).await;
            let header = self.header().await;
            assert_eq!(&header, AMQP_HEADER, "the broker's protocol header");
            let (channel, code, fields) = self.performative().await;
            assert_eq!((channel, code), (0, OPEN), "an open first: {fields:?}");
            fields
        }

        /// Reads frames until a close; returns its error field.
        pub(super) async fn until_close(&mut self) -> Value {
            loop {
                let (_, code, mut fields) = self.performative().await;
                if code == CLOSE {
                    return if fields.is_empty() {
                        Value::Null
                    } else {
                        fields.swap_remove(0)
                    };
                }
            }
        }

        /// A SASL exchange with `mechanism` and its initial `response` (the mechanism must be
        /// offered); the outcome code.
        pub(super) async fn sasl(&mut self, mechanism: &str, response: &[u8]) -> u8 {
            self.send(SASL_HEADER).await;
            assert_eq!(&self.header().await, SASL_HEADER, "the SASL header");
            let (_, code, fields) = self.sasl_frame().await;
            assert_eq!(code, SASL_MECHANISMS, "{fields:?}");
            let offered: Vec<&str> = match &fields[0] {
                Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
                one => one.as_str().into_iter().collect(),
            };
            assert!(
                offered.contains(&mechanism),
                "{mechanism} is not offered: {offered:?}"
            );
            self.send(&sasl_init(mechanism, response)).await;
            let (_, code, fields) = self.sasl_frame().await;
            assert_eq!(code, SASL_OUTCOME, "{fields:?}");
            u8::try_from(fields[0].as_u64().unwrap()).unwrap()
        }

        /// Reads (and keeps) whatever comes until the broker closes the socket: Ok(the bytes)
        /// if it closed within `wait`, else Err(the bytes so far).
        pub(super) async fn ends_within(&mut self, wait: Duration) -> Result<Vec<u8>, Vec<u8>> {
            let mut got = Vec::new();
            let deadline = tokio::time::Instant::now() + wait;
            let mut buf = [0; 4096];
            loop {
                match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                    Err(_) => return Err(got),
                    Ok(Ok(0)) => return Ok(got),
                    Ok(Ok(n)) => got.extend(&buf[..n]),
                    Ok(Err(e)) if closed(&e) => return Ok(got),
                    Ok(Err(e)) => panic!("reading: {e}"),
                }
            }
        }
    }
}
