//! Black-box tests of authentication service `external`: `sluice serve` relays each client's
//! SASL exchange to an external AMQP authentication server (EnMasse's external
//! authentication service API), here `sluice_extauth::testing::FakeServer` on 127.0.0.1 port
//! 0, run on a tokio runtime of the test; that server's `address-authz` connection property
//! gives the client's rights. Clients are Qpid Proton (`tests/interop/proton_client.py`)
//! with SASL PLAIN.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::net::SocketAddr;

use sluice_extauth::testing::{FakeConfig, FakeServer, FakeUser};
use support::*;

/// A failed authentication answers after this (the default 1 s would only slow the tests).
const FAILURE_DELAY_MS: &str = "50";
/// The realm of the AuthenticationService, which the external server sees as SASL hostname.
const REALM: &str = "tenant-a-realm";

/// A standard space with the queues `myqueue` and `secret`, authenticated by an external
/// server at `addr`.
fn space(addr: SocketAddr) -> String {
    format!(
        "\
apiVersion: admin.enmasse.io/v1beta1
kind: AuthenticationService
metadata: {{name: external-authservice}}
spec:
  type: external
  realm: {REALM}
  external: {{host: \"{host}\", port: {port}}}
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressSpacePlan
metadata: {{name: standard-unlimited}}
spec:
  addressSpaceType: standard
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
  plan: standard-unlimited
  authenticationService: {{name: external-authservice}}
---
apiVersion: enmasse.io/v1beta1
kind: Address
metadata: {{name: myspace.myqueue}}
spec: {{address: myqueue, type: queue, plan: standard-small-queue}}
---
apiVersion: enmasse.io/v1beta1
kind: Address
metadata: {{name: myspace.secret}}
spec: {{address: secret, type: queue, plan: standard-small-queue}}
",
        host = addr.ip(),
        port = addr.port(),
    )
}

/// The fake external server on its own tokio runtime (a worker thread serves it while the
/// test blocks on clients). It knows `alice` (password `alice-pw`, send and receive on
/// `my*`) and `writer` (`writer-pw`, send only on `myqueue`).
struct External {
    fake: Option<FakeServer>,
    addr: SocketAddr,
    runtime: tokio::runtime::Runtime,
}

impl External {
    fn start() -> External {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let config = FakeConfig::default()
            .user(
                "alice",
                FakeUser::new("alice-pw")
                    .group("team-a")
                    .authz("my*", &["send", "recv"]),
            )
            .user(
                "writer",
                FakeUser::new("writer-pw").authz("myqueue", &["send"]),
            );
        let fake = runtime.block_on(FakeServer::start(config)).unwrap();
        External {
            addr: fake.addr(),
            fake: Some(fake),
            runtime,
        }
    }

    fn fake(&self) -> &FakeServer {
        self.fake.as_ref().unwrap()
    }

    /// `sluice serve` on a space authenticated by this server, with `extra` arguments.
    fn serve(&self, tag: &str, extra: &[&str]) -> Server {
        let mut args = vec!["--auth-failure-delay-ms", FAILURE_DELAY_MS];
        args.extend_from_slice(extra);
        Server::start_config(tag, &space(self.addr), &args)
    }

    /// Stops the external server: its listener and every connection close.
    fn stop(&mut self) {
        let fake = self.fake.take();
        // Dropping it aborts its tasks; inside the runtime so they are reaped there.
        self.runtime.block_on(async move { drop(fake) });
    }
}

/// The server's URL with SASL PLAIN credentials.
fn url_as(server: &Server, user: &str, password: &str) -> String {
    server
        .url
        .replace("amqp://", &format!("amqp://{user}:{password}@"))
}

fn run_as(server: &Server, user: &str, password: &str, args: &[&str]) -> Outcome {
    server
        .spawn_at(&url_as(server, user, password), args, CLIENT_TIMEOUT)
        .finish(server)
}

/// Asserts a run as `user` failed SASL authentication (exit 1, an authentication error, and
/// nothing sent).
fn assert_refused(server: &Server, user: &str, password: &str) -> Outcome {
    let outcome = run_as(server, user, password, &["send", "myqueue", "1"]);
    assert_eq!(
        outcome.code(),
        Some(1),
        "{user} should be refused: {outcome:?}\nserver stderr:\n{}",
        server.log()
    );
    // The client's report names the refusal (in its error, or its condition fields).
    let report = &outcome.stdout;
    assert!(
        report.contains("amqp:unauthorized-access") || report.contains("Authentication failed"),
        "the client should report an authentication failure: {outcome:?}"
    );
    assert!(
        outcome.json.get("accepted").is_none(),
        "nothing was sent: {outcome:?}"
    );
    outcome
}

/// Attaches a `role` link to `address` as `user`; the client's report.
fn attach_as(server: &Server, user: &str, password: &str, address: &str, role: &str) -> Outcome {
    run_as(server, user, password, &["attach", address, "--role", role])
}

/// Asserts the attach was refused, the link only, with `amqp:unauthorized-access`.
fn assert_unauthorized(server: &Server, outcome: &Outcome, what: &str) {
    assert_eq!(
        outcome.code(),
        Some(3),
        "{what} should be refused: {outcome:?}\nserver stderr:\n{}",
        server.log()
    );
    assert_eq!(
        outcome.json["condition"], "amqp:unauthorized-access",
        "{what}: {}",
        outcome.json
    );
    assert_eq!(
        outcome.json["closed"], "link",
        "{what}: the link is refused, not the connection: {}",
        outcome.json
    );
}

#[test]
fn the_external_server_decides_who_gets_in() {
    let external = External::start();
    let server = external.serve("ext-plain", &["--danger-plain-without-tls"]);

    let sent = ok(
        &server,
        run_as(&server, "alice", "alice-pw", &["send", "myqueue", "3"]),
        "send as alice",
    );
    assert_eq!(sent["accepted"], 3, "{sent}");
    let received = ok(
        &server,
        run_as(&server, "alice", "alice-pw", &["receive", "myqueue", "3"]),
        "receive as alice",
    );
    assert_eq!(bodies(&received), ["msg-0", "msg-1", "msg-2"]);

    assert_refused(&server, "alice", "wrong-pw");
    assert_refused(&server, "mallory", "alice-pw");
    assert!(
        server.log().contains("authentication failed"),
        "each refusal is logged:\n{}",
        server.log()
    );
    // Every exchange went to the external server (the probe of its mechanisms too).
    assert!(
        external.fake().connections() >= 4,
        "{} connections reached the external server",
        external.fake().connections()
    );
}

#[test]
fn the_external_servers_address_authz_is_enforced() {
    let external = External::start();
    let server = external.serve("ext-authz", &["--danger-plain-without-tls"]);

    // alice: send and receive on `my*`, nothing on `secret`.
    for role in ["sender", "receiver"] {
        let allowed = ok(
            &server,
            attach_as(&server, "alice", "alice-pw", "myqueue", role),
            &format!("alice's {role} on myqueue"),
        );
        assert_eq!(allowed["attached"], true, "{allowed}");
        let refused = attach_as(&server, "alice", "alice-pw", "secret", role);
        assert_unauthorized(&server, &refused, &format!("alice's {role} on secret"));
    }

    // writer: send on `myqueue` only.
    let allowed = ok(
        &server,
        attach_as(&server, "writer", "writer-pw", "myqueue", "sender"),
        "writer's sender on myqueue",
    );
    assert_eq!(allowed["attached"], true, "{allowed}");
    let refused = attach_as(&server, "writer", "writer-pw", "myqueue", "receiver");
    assert_unauthorized(&server, &refused, "writer's receiver on myqueue");

    // Through the anonymous relay each message's `to` is checked: writer may send to
    // myqueue, not to secret.
    let relayed = ok(
        &server,
        run_as(
            &server,
            "writer",
            "writer-pw",
            &["relay", "--to", "myqueue", "--to", "secret"],
        ),
        "writer relays to myqueue and secret",
    );
    let deliveries = relayed["deliveries"].as_array().unwrap();
    assert_eq!(deliveries[0]["outcome"], "accepted", "{relayed}");
    assert_eq!(deliveries[1]["outcome"], "rejected", "{relayed}");
    assert_eq!(
        deliveries[1]["condition"], "amqp:unauthorized-access",
        "{relayed}"
    );
}

#[test]
fn the_realm_arrives_as_the_sasl_hostname() {
    let external = External::start();
    let server = external.serve("ext-realm", &["--danger-plain-without-tls"]);
    let sent = ok(
        &server,
        run_as(&server, "alice", "alice-pw", &["send", "myqueue", "1"]),
        "send as alice",
    );
    assert_eq!(sent["accepted"], 1, "{sent}");
    let hostnames = external.fake().hostnames();
    assert!(
        !hostnames.is_empty(),
        "the external server saw no sasl-init\nserver stderr:\n{}",
        server.log()
    );
    assert!(
        hostnames.iter().all(|h| h.as_deref() == Some(REALM)),
        "every sasl-init carries the realm {REALM:?} as hostname: {hostnames:?}"
    );
}

#[test]
fn when_the_external_server_is_down_clients_are_refused() {
    let mut external = External::start();
    let server = external.serve("ext-down", &["--danger-plain-without-tls"]);
    let sent = ok(
        &server,
        run_as(&server, "alice", "alice-pw", &["send", "myqueue", "1"]),
        "send as alice while the external server is up",
    );
    assert_eq!(sent["accepted"], 1, "{sent}");

    external.stop();
    let logged_before = server.log().len();
    assert_refused(&server, "alice", "alice-pw");
    let log = server.log();
    let new = log.get(logged_before..).unwrap_or_default();
    assert!(
        new.contains("authentication failed") && new.contains("external server"),
        "the log should say the external server could not be asked:\n{log}"
    );
}

/// The issue: "Without TLS, PLAIN is refused unless the service is `none` or a `danger_`
/// setting allows it." That holds for `external` too: the password must not cross the
/// network in clear on its way to Sluice just because Sluice relays it.
#[test]
fn plain_without_tls_is_refused_under_external_without_the_danger_setting() {
    let external = External::start();
    let server = external.serve("ext-notls", &[]);
    assert_refused(&server, "alice", "alice-pw");
    assert_eq!(
        external.fake().hostnames().len(),
        0,
        "the clear-text password must not be relayed to the external server"
    );
}
