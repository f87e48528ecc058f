//! Black-box tests of password guessing against `sluice serve`: a standard space with the
//! password user alice, SASL PLAIN offered without TLS (`--danger-plain-without-tls`) and the
//! default failure delay (1 s, `--auth-failure-delay-ms` unset).
//!
//! The attackers are raw sockets on tokio speaking just the SASL layer (part 5 §5.3) by hand,
//! so each attempt is timed from the sasl-init written to the outcome read; the honest client
//! is fe2o3-amqp (an independent AMQP 1.0 client), and Qpid Proton
//! (`tests/interop/proton_client.py`) confirms the outcome codes. Every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fe2o3_amqp::sasl_profile::SaslProfile;
use fe2o3_amqp::types::messaging::{Message, Outcome};
use fe2o3_amqp::{Connection, Receiver, Sender, Session};
use support::{Peer, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// The longest one step (connect, a frame, attach, send) may take.
const WAIT: Duration = Duration::from_secs(30);
/// alice's password; the MessagingUser has it base64-encoded.
const ALICE_PASSWORD: &str = "alice-secret";
/// How long the attack runs.
const ATTACK: Duration = Duration::from_secs(10);
/// Attackers guessing at once, each on a connection of its own.
const ATTACKERS: usize = 50;
/// The broker's default failure delay: no failed attempt is answered sooner.
const FAILURE_DELAY: Duration = Duration::from_secs(1);
/// The bound this test states for the honest client's connect-to-authenticated-and-open
/// time under attack: generous, the attack must not starve it.
const HONEST_OPEN_MAX: Duration = Duration::from_secs(5);

const SASL_HEADER: &[u8; 8] = b"AMQP\x03\x01\x00\x00";
const SASL_MECHANISMS: u8 = 0x40;
const SASL_INIT: u8 = 0x41;
const SASL_CHALLENGE: u8 = 0x42;
const SASL_RESPONSE: u8 = 0x43;
const SASL_OUTCOME: u8 = 0x44;
/// SASL outcome codes (part 5 §5.3.3.6).
const CODE_OK: u8 = 0;
const CODE_AUTH: u8 = 1;

/// A standard space with the queue `myqueue` and the password user alice, who may send to
/// and receive from it.
const SPACE: &str = "\
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
---
apiVersion: enmasse.io/v1beta1
kind: Address
metadata: {name: myspace.myqueue}
spec: {address: myqueue, type: queue, plan: standard-small-queue}
---
apiVersion: user.enmasse.io/v1beta1
kind: MessagingUser
metadata: {name: myspace.alice}
spec:
  username: alice
  authentication: {type: password, password: YWxpY2Utc2VjcmV0}
  authorization:
  - {addresses: [myqueue], operations: [send, recv]}
";

fn address(server: &Server) -> SocketAddr {
    server
        .url
        .strip_prefix("amqp://")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("not an amqp://IP:PORT url: {}", server.url))
}

/// A SASL frame (type 1, channel 0) holding the performative `code` with a symbol and a
/// binary: sasl-init's mechanism and initial response, or (with `mechanism` None) a
/// sasl-response's response alone.
fn sasl_frame(code: u8, mechanism: Option<&str>, data: &[u8]) -> Vec<u8> {
    let mut fields = Vec::new();
    if let Some(mechanism) = mechanism {
        fields.push(0xb3); // sym32
        fields.extend(u32::try_from(mechanism.len()).unwrap().to_be_bytes());
        fields.extend(mechanism.as_bytes());
    }
    fields.push(0xb0); // vbin32
    fields.extend(u32::try_from(data.len()).unwrap().to_be_bytes());
    fields.extend(data);
    let count: u32 = if mechanism.is_some() { 2 } else { 1 };
    let mut body = vec![0x00, 0x53, code, 0xd0]; // described list32
    body.extend(u32::try_from(fields.len() + 4).unwrap().to_be_bytes());
    body.extend(count.to_be_bytes());
    body.extend(fields);
    let mut frame = u32::try_from(8 + body.len())
        .unwrap()
        .to_be_bytes()
        .to_vec();
    frame.extend([2, 1, 0, 0]);
    frame.extend(body);
    frame
}

/// One raw connection at the SASL layer.
struct Sasl {
    stream: TcpStream,
}

impl Sasl {
    /// Connects, sends the SASL header and reads the broker's header and mechanisms; returns
    /// them with the connection.
    async fn start(to: SocketAddr) -> (Sasl, Vec<u8>) {
        let stream = within("connect", TcpStream::connect(to)).await.unwrap();
        let mut sasl = Sasl { stream };
        sasl.stream.write_all(SASL_HEADER).await.unwrap();
        let header = sasl.exact(8).await;
        assert_eq!(header, SASL_HEADER, "the broker's SASL header");
        let (code, body) = sasl.frame().await;
        assert_eq!(code, SASL_MECHANISMS, "{body:?}");
        (sasl, body)
    }

    async fn exact(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        within("read", self.stream.read_exact(&mut buf))
            .await
            .unwrap_or_else(|e| panic!("reading {n} bytes: {e}"));
        buf
    }

    /// The next SASL frame: its performative code and its whole body.
    async fn frame(&mut self) -> (u8, Vec<u8>) {
        let size = u32::from_be_bytes(self.exact(4).await.try_into().unwrap());
        let size = usize::try_from(size).unwrap();
        assert!((8..=65_536).contains(&size), "a SASL frame of {size} bytes");
        let rest = self.exact(size - 4).await;
        assert_eq!(rest[1], 1, "a SASL frame (type 1)");
        let body = rest[usize::from(rest[0]) * 4 - 4..].to_vec();
        assert_eq!(
            body[..2],
            [0x00, 0x53],
            "a described performative: {body:?}"
        );
        (body[2], body)
    }

    async fn send(&mut self, frame: &[u8]) {
        self.stream.write_all(frame).await.unwrap();
    }

    /// Reads the sasl-outcome: its code.
    async fn outcome(&mut self) -> u8 {
        let (code, body) = self.frame().await;
        assert_eq!(code, SASL_OUTCOME, "{body:?}");
        outcome_code(&body)
    }

    /// Whether the broker closes the socket within `wait` without another frame.
    async fn closed_within(&mut self, wait: Duration) -> bool {
        let mut buf = [0; 64];
        match tokio::time::timeout(wait, self.stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => true,
            Ok(Ok(_)) | Err(_) => false,
        }
    }
}

/// A sasl-outcome body's code: after the descriptor, a list8 or list32, its first field a
/// ubyte.
fn outcome_code(body: &[u8]) -> u8 {
    let field = match body[3] {
        0xc0 => 6,
        0xd0 => 12,
        other => panic!("a sasl-outcome that is not a list: 0x{other:02x} in {body:?}"),
    };
    assert_eq!(body[field], 0x50, "the code is a ubyte: {body:?}");
    body[field + 1]
}

/// A sasl-challenge body's binary (its first field, vbin8 or vbin32).
fn challenge_data(body: &[u8]) -> Vec<u8> {
    let field = match body[3] {
        0xc0 => 6,
        0xd0 => 12,
        other => panic!("a sasl-challenge that is not a list: 0x{other:02x} in {body:?}"),
    };
    let (len, start) = match body[field] {
        0xa0 => (usize::from(body[field + 1]), field + 2),
        0xb0 => (
            usize::try_from(u32::from_be_bytes(
                body[field + 1..field + 5].try_into().unwrap(),
            ))
            .unwrap(),
            field + 5,
        ),
        other => panic!("a challenge that is not a binary: 0x{other:02x}"),
    };
    body[start..start + len].to_vec()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// One SASL PLAIN attempt on a fresh connection: (outcome code, time from the sasl-init
/// written to the outcome read, whether the broker then closed the connection without
/// answering a second sasl-init).
async fn plain_attempt(to: SocketAddr, user: &str, password: &str) -> (u8, Duration, bool) {
    let (mut sasl, mechanisms) = Sasl::start(to).await;
    assert!(
        contains(&mechanisms, b"PLAIN"),
        "PLAIN offered: {mechanisms:?}"
    );
    let response = format!("\0{user}\0{password}");
    let init = sasl_frame(SASL_INIT, Some("PLAIN"), response.as_bytes());
    sasl.send(&init).await;
    let sent = Instant::now();
    let code = sasl.outcome().await;
    let took = sent.elapsed();
    // A second guess on the same connection is never answered: the socket closes.
    let _ = sasl.stream.write_all(&init).await;
    let closed = sasl.closed_within(WAIT).await;
    (code, took, closed)
}

/// What the attackers did.
#[derive(Debug, Default)]
struct Attacks {
    attempts: usize,
    succeeded: usize,
    /// Outcome codes other than auth.
    other_codes: Vec<u8>,
    /// Attempts answered sooner than the failure delay.
    too_fast: Vec<Duration>,
    /// Connections that stayed open after their failed attempt.
    not_closed: usize,
}

/// One attacker: wrong passwords for alice, a fresh connection each, until `stop`.
async fn attacker(to: SocketAddr, index: usize, stop: Arc<AtomicBool>) -> Attacks {
    let mut attacks = Attacks::default();
    while !stop.load(Ordering::Relaxed) {
        let guess = format!("guess-{index}-{}", attacks.attempts);
        let (code, took, closed) = plain_attempt(to, "alice", &guess).await;
        attacks.attempts += 1;
        match code {
            CODE_OK => attacks.succeeded += 1,
            CODE_AUTH => {}
            other => attacks.other_codes.push(other),
        }
        // Timer resolution is a millisecond: allow one below.
        if took + Duration::from_millis(1) < FAILURE_DELAY {
            attacks.too_fast.push(took);
        }
        if !closed {
            attacks.not_closed += 1;
        }
    }
    attacks
}

/// Runs `step`, failing the test when it takes longer than [`WAIT`].
async fn within<T>(what: &str, step: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, step)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer from the broker within {WAIT:?}"))
}

/// One honest round: connect and authenticate as alice (timed), send a message to myqueue
/// and receive it back. Returns the connect-to-open time.
async fn honest_round(server: &Server, round: usize) -> Duration {
    let started = Instant::now();
    let open = Connection::builder()
        .container_id(format!("honest-{round}"))
        .sasl_profile(SaslProfile::Plain {
            username: "alice".into(),
            password: ALICE_PASSWORD.into(),
        })
        .open(server.url.as_str());
    let mut connection = within("alice's open", open)
        .await
        .unwrap_or_else(|e| panic!("honest round {round}: refused: {e:?}"));
    let opened = started.elapsed();
    let mut session = within("begin", Session::begin(&mut connection))
        .await
        .unwrap();
    let mut sender = within(
        "attach",
        Sender::attach(&mut session, "honest-s", "myqueue"),
    )
    .await
    .unwrap();
    let body = format!("honest-{round}");
    let message = Message::builder().value(body.clone()).build();
    let outcome = within("send", sender.send(message)).await.unwrap();
    assert!(matches!(outcome, Outcome::Accepted(_)), "{outcome:?}");
    let mut receiver = within(
        "attach",
        Receiver::attach(&mut session, "honest-r", "myqueue"),
    )
    .await
    .unwrap();
    let delivery = within("receive", receiver.recv::<String>()).await.unwrap();
    assert_eq!(delivery.body(), &body, "the honest round trip");
    within("accept", receiver.accept(&delivery)).await.unwrap();
    within("detach", receiver.close()).await.unwrap();
    within("detach", sender.close()).await.unwrap();
    within("end", session.end()).await.unwrap();
    within("close", connection.close()).await.unwrap();
    opened
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_guessers_never_get_in_are_held_to_the_failure_delay_and_alice_still_works() {
    let server = Server::start_config("bruteforce", SPACE, &["--danger-plain-without-tls"]);
    let to = address(&server);
    let stop = Arc::new(AtomicBool::new(false));
    let mut attackers = JoinSet::new();
    for index in 0..ATTACKERS {
        attackers.spawn(attacker(to, index, Arc::clone(&stop)));
    }

    // Meanwhile alice connects, authenticates and round-trips a message about every second.
    let started = Instant::now();
    let mut opens = Vec::new();
    while started.elapsed() < ATTACK {
        let round_started = Instant::now();
        opens.push(honest_round(&server, opens.len()).await);
        tokio::time::sleep(Duration::from_secs(1).saturating_sub(round_started.elapsed())).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = Attacks::default();
    while let Some(done) = tokio::time::timeout(WAIT, attackers.join_next())
        .await
        .expect("the attackers stop within their last attempt")
    {
        let done = done.unwrap();
        total.attempts += done.attempts;
        total.succeeded += done.succeeded;
        total.other_codes.extend(done.other_codes);
        total.too_fast.extend(done.too_fast);
        total.not_closed += done.not_closed;
    }
    let elapsed = started.elapsed();
    eprintln!(
        "{} attempts by {ATTACKERS} attackers in {elapsed:?} ({:.1}/s); alice's {} opens: {opens:?}",
        total.attempts,
        total.attempts as f64 / elapsed.as_secs_f64(),
        opens.len()
    );

    assert_eq!(total.succeeded, 0, "a wrong password got in: {total:?}");
    assert!(
        total.other_codes.is_empty(),
        "every failure is `auth`: {total:?}"
    );
    assert!(
        total.too_fast.is_empty(),
        "failures answered before the {FAILURE_DELAY:?} delay: {:?}",
        total.too_fast
    );
    assert_eq!(total.not_closed, 0, "one attempt per connection: {total:?}");
    // Each attacker waits the delay per attempt: at most one attempt per second each, plus
    // the one under way when the attack stopped.
    let bound = ATTACKERS * (elapsed.as_secs() as usize + 1);
    assert!(
        total.attempts <= bound,
        "{} attempts in {elapsed:?} by {ATTACKERS} attackers: more than the failure delay allows ({bound})",
        total.attempts
    );
    assert!(
        total.attempts >= ATTACKERS,
        "every attacker made attempts: {total:?}"
    );

    // alice: every round succeeded (honest_round panics otherwise), about one a second.
    assert!(opens.len() >= 5, "alice's rounds: {opens:?}");
    for (round, opened) in opens.iter().enumerate() {
        assert!(
            *opened < HONEST_OPEN_MAX,
            "alice's round {round} took {opened:?} to connect and authenticate (bound \
             {HONEST_OPEN_MAX:?}): {opens:?}"
        );
    }
}

/// A SCRAM-SHA-256 exchange for `user` up to the outcome, with a proof that cannot be
/// right: whether the broker sent a challenge (server-first message), and the outcome code.
async fn scram_attempt(to: SocketAddr, user: &str) -> (bool, u8) {
    let (mut sasl, mechanisms) = Sasl::start(to).await;
    assert!(contains(&mechanisms, b"SCRAM-SHA-256"), "{mechanisms:?}");
    let client_nonce = "rOprNGfwEbeRWgbNEkqO";
    let first = format!("n,,n={user},r={client_nonce}");
    sasl.send(&sasl_frame(
        SASL_INIT,
        Some("SCRAM-SHA-256"),
        first.as_bytes(),
    ))
    .await;
    let (code, body) = sasl.frame().await;
    if code == SASL_OUTCOME {
        return (false, outcome_code(&body));
    }
    assert_eq!(code, SASL_CHALLENGE, "{body:?}");
    let server_first = String::from_utf8(challenge_data(&body)).unwrap();
    let nonce = server_first
        .split(',')
        .find_map(|a| a.strip_prefix("r="))
        .unwrap_or_else(|| panic!("no nonce in {server_first:?}"));
    assert!(nonce.starts_with(client_nonce), "{server_first:?}");
    // A well-formed client-final message with a proof of 32 zero bytes.
    let proof = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let last = format!("c=biws,r={nonce},p={proof}");
    sasl.send(&sasl_frame(SASL_RESPONSE, None, last.as_bytes()))
        .await;
    (true, sasl.outcome().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_user_and_a_wrong_password_get_the_same_outcome() {
    let server = Server::start_config(
        "bruteforce-same",
        SPACE,
        &[
            "--danger-plain-without-tls",
            "--auth-failure-delay-ms",
            "50",
        ],
    );
    let to = address(&server);

    // PLAIN, raw: both `auth`.
    let (wrong, _, _) = plain_attempt(to, "alice", "not-her-password").await;
    let (unknown, _, _) = plain_attempt(to, "mallory", "anything").await;
    assert_eq!((wrong, unknown), (CODE_AUTH, CODE_AUTH), "PLAIN outcomes");

    // SCRAM-SHA-256, raw: both get a challenge (an unknown user is not told apart at the
    // first step), then `auth`.
    let alice = scram_attempt(to, "alice").await;
    let mallory = scram_attempt(to, "mallory").await;
    assert_eq!(
        alice,
        (true, CODE_AUTH),
        "SCRAM for alice with a wrong proof"
    );
    assert_eq!(mallory, alice, "SCRAM for an unknown user");

    // Proton, an independent client, reports the same outcome for both.
    let outcomes: Vec<serde_json::Value> = [("alice", "not-her-password"), ("mallory", "anything")]
        .into_iter()
        .map(|(user, password)| {
            let url = format!("amqp://{user}:{password}@{to}");
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
            assert_ne!(outcome.code(), Some(0), "{user} got in: {outcome:?}");
            outcome.json["sasl_outcome"].clone()
        })
        .collect();
    assert_eq!(outcomes, ["auth", "auth"], "Proton's SASL outcomes");
}
