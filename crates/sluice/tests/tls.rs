//! Black-box tests of TLS: `sluice serve` with `--amqps` (and `--amqp-wss`) on a test PKI made
//! in the test (`sluice_transport::testing::TestPki`: a CA, a server certificate for
//! `localhost` and 127.0.0.1, a client certificate), driven by Qpid Proton
//! (`tests/interop/proton_client.py`), rhea (`tests/rhea/client.js`, also over WebSockets)
//! and, for the AMQP TLS header upgrade that neither client speaks, raw bytes and rustls.
//!
//! Proton verifies the host name as a DNS name only (OpenSSL's host check does not match an
//! IP address SAN), so it connects to 127.0.0.1 with `--hostname localhost`; rhea (Node)
//! verifies the IP address itself. Every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sluice_transport::testing::{SERVER_DNS_NAME, TestPki};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ALICE_PASSWORD: &str = "alice-secret";
/// The subject CN of the test client certificate, and the MessagingUser it maps to.
const CLIENT_CN: &str = "app-one";
/// The longest a raw socket read may wait.
const READ_WAIT: Duration = Duration::from_secs(10);
/// The broker re-reads certificate files every 10 s; a new one must be served within this.
const CERT_RELOAD_WAIT: Duration = Duration::from_secs(30);

/// The AMQP protocol header of the TLS layer (id 2), part 5 §5.2.1.
const TLS_HEADER: [u8; 8] = *b"AMQP\x02\x01\x00\x00";
/// The AMQP protocol header of the SASL layer (id 3), part 5 §5.3.1.
const SASL_HEADER: [u8; 8] = *b"AMQP\x03\x01\x00\x00";
/// The plain AMQP protocol header (id 0).
const AMQP_HEADER: [u8; 8] = *b"AMQP\x00\x01\x00\x00";

/// A standard space with queue `myqueue`: alice (password) may send and receive on it,
/// [`CLIENT_CN`] (a certificate user; its password is never used) may only send.
fn space() -> String {
    format!(
        "\
apiVersion: admin.enmasse.io/v1beta1
kind: AuthenticationService
metadata: {{name: standard-authservice}}
spec: {{type: standard}}
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
  authenticationService: {{name: standard-authservice}}
---
apiVersion: enmasse.io/v1beta1
kind: Address
metadata: {{name: myspace.myqueue}}
spec: {{address: myqueue, type: queue, plan: standard-small-queue}}
---
apiVersion: user.enmasse.io/v1beta1
kind: MessagingUser
metadata: {{name: myspace.alice}}
spec:
  username: alice
  authentication: {{type: password, password: {alice}}}
  authorization:
  - {{addresses: [myqueue], operations: [send, recv]}}
---
apiVersion: user.enmasse.io/v1beta1
kind: MessagingUser
metadata: {{name: myspace.{CLIENT_CN}}}
spec:
  username: {CLIENT_CN}
  authentication: {{type: password, password: {unused}}}
  authorization:
  - {{addresses: [myqueue], operations: [send]}}
",
        alice = STANDARD.encode(ALICE_PASSWORD),
        unused = STANDARD.encode("never-used-by-the-certificate")
    )
}

/// A folder of test files, removed on drop.
struct Folder(PathBuf);

impl Folder {
    fn new(tag: &str) -> Folder {
        Folder(temp_dir(tag))
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh PKI in a folder of its own.
fn fresh_pki(tag: &str) -> (Folder, TestPki) {
    let folder = Folder::new(tag);
    let pki = TestPki::generate(&folder.0, CLIENT_CN).unwrap();
    (folder, pki)
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `sluice serve` on [`space`] with `--amqps` and `extra` arguments.
fn serve(tag: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--amqps", "127.0.0.1:0", "--auth-failure-delay-ms", "50"];
    args.extend_from_slice(extra);
    let server = Server::start_config(tag, &space(), &args);
    assert!(server.amqps_url.is_some(), "no `amqps on` line");
    server
}

/// A server with the PKI's server certificate files.
fn serve_with(tag: &str, pki: &TestPki, extra: &[&str]) -> Server {
    let mut args = vec![
        "--tls-cert",
        path(&pki.server_cert),
        "--tls-key",
        path(&pki.server_key),
    ];
    args.extend_from_slice(extra);
    serve(tag, &args)
}

/// Runs `peer` against `url` with `args` (a subcommand, its arguments and options).
fn run_at(server: &Server, peer: Peer, url: &str, args: &[&str]) -> Outcome {
    server
        .spawn_peer(peer, url, args, CLIENT_TIMEOUT)
        .finish(server)
}

/// `args` plus alice's credentials and trust in `ca`; Proton also verifies `localhost`.
fn as_alice<'a>(peer: Peer, ca: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.extend(["--user", "alice", "--password", ALICE_PASSWORD, "--ca", ca]);
    if peer == Peer::Proton {
        all.extend(["--hostname", SERVER_DNS_NAME]);
    }
    all
}

/// Sends `count` messages with `sender` and receives them with `receiver`, both as alice over
/// `url` trusting `ca`.
fn round_trip(server: &Server, url: &str, ca: &str, sender: Peer, receiver: Peer, count: usize) {
    let n = count.to_string();
    let sent = ok(
        server,
        run_at(
            server,
            sender,
            url,
            &as_alice(sender, ca, &["send", "myqueue", &n]),
        ),
        &format!("{sender:?} send over {url}"),
    );
    assert_eq!(sent["accepted"], count, "{sent}");
    let received = ok(
        server,
        run_at(
            server,
            receiver,
            url,
            &as_alice(receiver, ca, &["receive", "myqueue", &n]),
        ),
        &format!("{receiver:?} receive over {url}"),
    );
    let expected: Vec<String> = (0..count).map(|i| format!("msg-{i}")).collect();
    assert_eq!(bodies(&received), expected, "{received}");
}

/// Asserts that a client refused the server's certificate: exit 1, nothing sent, and the TLS
/// error (`want` in the description for Proton, in the code for rhea).
fn assert_tls_refused(server: &Server, peer: Peer, outcome: &Outcome, want: &[&str]) {
    assert_eq!(
        outcome.code(),
        Some(1),
        "{peer:?} should refuse the certificate: {outcome:?}\nserver stderr:\n{}",
        server.log()
    );
    let json = &outcome.json;
    assert!(
        json["sent"].is_null() || json["sent"] == 0,
        "nothing may be sent: {json}"
    );
    let text = match peer {
        Peer::Rhea => json["code"].as_str(),
        _ => json["description"].as_str(),
    }
    .unwrap_or_default();
    assert!(
        want.iter().any(|w| text.contains(w)),
        "{peer:?}: expected one of {want:?} in {json}"
    );
}

#[test]
fn amqps_serves_proton_and_rhea_that_verify_the_ca_and_the_host_name() {
    let (_folder, pki) = fresh_pki("tls-bundle");
    let server = serve_with("tls-bundle", &pki, &[]);
    let url = server.amqps_url.clone().unwrap();
    let ca = path(&pki.ca_cert);
    // PLAIN is offered over TLS without any danger setting.
    round_trip(&server, &url, ca, Peer::Proton, Peer::Rhea, 3);
    round_trip(&server, &url, ca, Peer::Rhea, Peer::Proton, 2);
}

#[test]
fn a_wrong_host_name_and_an_untrusted_ca_are_refused_by_the_client() {
    let (_folder, pki) = fresh_pki("tls-refused");
    let (_other_folder, other) = fresh_pki("tls-other");
    let server = serve_with("tls-refused", &pki, &[]);
    let url = server.amqps_url.clone().unwrap();
    let ca = path(&pki.ca_cert);
    let send = ["send", "myqueue", "1"];

    let mut args = as_alice(Peer::Proton, ca, &send);
    args.extend(["--hostname", "wrong.example"]); // the last --hostname wins
    let outcome = run_at(&server, Peer::Proton, &url, &args);
    assert_tls_refused(
        &server,
        Peer::Proton,
        &outcome,
        &["certificate verify failed"],
    );
    let mut args = as_alice(Peer::Rhea, ca, &send);
    args.extend(["--hostname", "wrong.example"]);
    let outcome = run_at(&server, Peer::Rhea, &url, &args);
    assert_tls_refused(
        &server,
        Peer::Rhea,
        &outcome,
        &["ERR_TLS_CERT_ALTNAME_INVALID"],
    );

    // Trusting another CA: the server's certificate does not verify.
    let untrusted = path(&other.ca_cert);
    for peer in [Peer::Proton, Peer::Rhea] {
        let outcome = run_at(&server, peer, &url, &as_alice(peer, untrusted, &send));
        let want = [
            "certificate verify failed",
            "SELF_SIGNED_CERT_IN_CHAIN",
            "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
        ];
        assert_tls_refused(&server, peer, &outcome, &want);
    }
    // The refusals left the server serving.
    round_trip(&server, &url, ca, Peer::Proton, Peer::Proton, 1);
}

#[test]
fn the_self_signed_provider_writes_a_ca_that_clients_trust() {
    let folder = Folder::new("tls-selfsigned");
    let ca_out = folder.0.join("ca.pem");
    let server = serve(
        "tls-selfsigned",
        &[
            "--tls-ca-out",
            path(&ca_out),
            "--tls-hostname",
            "localhost",
            "--tls-hostname",
            "127.0.0.1",
        ],
    );
    assert!(ca_out.is_file(), "no CA written to {}", ca_out.display());
    let url = server.amqps_url.clone().unwrap();
    round_trip(&server, &url, path(&ca_out), Peer::Proton, Peer::Rhea, 2);
}

#[test]
fn a_client_certificate_authenticates_with_external_as_the_user_of_its_cn() {
    let (_folder, pki) = fresh_pki("tls-external");
    let server = serve_with(
        "tls-external",
        &pki,
        &["--tls-client-ca", path(&pki.ca_cert)],
    );
    let url = server.amqps_url.clone().unwrap();
    let certificate = [
        "--ca",
        path(&pki.ca_cert),
        "--cert",
        path(&pki.client_cert),
        "--key",
        path(&pki.client_key),
        "--mech",
        "EXTERNAL",
    ];
    let with_cert = |peer: Peer, args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(certificate);
        if peer == Peer::Proton {
            all.extend(["--hostname", SERVER_DNS_NAME]);
        }
        run_at(&server, peer, &url, &all)
    };
    // app-one may send...
    for peer in [Peer::Proton, Peer::Rhea] {
        let sent = ok(
            &server,
            with_cert(peer, &["send", "myqueue", "1"]),
            &format!("{peer:?}: send as {CLIENT_CN} with EXTERNAL"),
        );
        assert_eq!(sent["accepted"], 1, "{sent}");
    }
    assert!(
        server
            .log()
            .contains(&format!("user={CLIENT_CN} mechanism=\"EXTERNAL\"")),
        "the log should name the certificate's user:\n{}",
        server.log()
    );
    // ...but not receive: its rights apply.
    let outcome = with_cert(Peer::Proton, &["attach", "myqueue", "--role", "receiver"]);
    assert_eq!(outcome.code(), Some(3), "{outcome:?}");
    assert_eq!(
        outcome.json["condition"], "amqp:unauthorized-access",
        "{}",
        outcome.json
    );
    assert_eq!(
        outcome.json["description"],
        format!("user '{CLIENT_CN}' may not receive from 'myqueue'"),
        "{}",
        outcome.json
    );
    // The two messages are there for alice.
    let received = ok(
        &server,
        run_at(
            &server,
            Peer::Proton,
            &url,
            &as_alice(
                Peer::Proton,
                path(&pki.ca_cert),
                &["receive", "myqueue", "2"],
            ),
        ),
        "alice receives what app-one sent",
    );
    assert_eq!(bodies(&received), ["msg-0", "msg-0"]);
}

/// Reads exactly `buf.len()` bytes from a blocking socket, bounded by [`READ_WAIT`].
fn read_exact(stream: &mut TcpStream, buf: &mut [u8]) {
    stream.set_read_timeout(Some(READ_WAIT)).unwrap();
    stream.read_exact(buf).unwrap();
}

#[test]
fn plain_amqp_sent_to_the_tls_port_fails_cleanly() {
    let (_folder, pki) = fresh_pki("tls-plain");
    let mut server = serve_with("tls-plain", &pki, &[]);
    let url = server.amqps_url.clone().unwrap();
    let port = url.rsplit(':').next().unwrap().to_owned();

    // Raw: the AMQP header gets the TLS header back (the one the port speaks), then EOF.
    let mut raw = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    raw.write_all(&AMQP_HEADER).unwrap();
    let mut answer = [0u8; 8];
    read_exact(&mut raw, &mut answer);
    assert_eq!(
        answer, TLS_HEADER,
        "the TLS port answers with the TLS header"
    );
    // Then it closes (a reset is as good as a FIN here): nothing else comes.
    let mut rest = Vec::new();
    raw.set_read_timeout(Some(READ_WAIT)).unwrap();
    match raw.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "nothing after the header: {rest:?}"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }

    // Proton without TLS to the TLS port fails, saying so.
    let plain_url = url.replace("amqps://", "amqp://");
    let outcome = run_at(
        &server,
        Peer::Proton,
        &plain_url,
        &[
            "send",
            "myqueue",
            "1",
            "--user",
            "alice",
            "--password",
            ALICE_PASSWORD,
        ],
    );
    assert_eq!(outcome.code(), Some(1), "{outcome:?}");
    let description = outcome.json["description"].as_str().unwrap_or_default();
    assert!(description.contains("TLS"), "{}", outcome.json);

    // The server is up and serves TLS clients.
    assert!(server.is_running());
    round_trip(
        &server,
        &url,
        path(&pki.ca_cert),
        Peer::Proton,
        Peer::Rhea,
        1,
    );
}

/// Reads one SASL frame (its 4-byte size first, at most 64 KiB) from `stream`.
async fn read_frame<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> Vec<u8> {
    let mut size = [0u8; 4];
    tokio::time::timeout(READ_WAIT, stream.read_exact(&mut size))
        .await
        .unwrap()
        .unwrap();
    let size = u32::from_be_bytes(size) as usize;
    assert!((8..=64 * 1024).contains(&size), "frame size {size}");
    let mut frame = vec![0u8; size - 4];
    tokio::time::timeout(READ_WAIT, stream.read_exact(&mut frame))
        .await
        .unwrap()
        .unwrap();
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plain_port_upgrades_to_tls_after_the_amqp_tls_header() {
    let (_folder, pki) = fresh_pki("tls-upgrade");
    let server = serve_with("tls-upgrade", &pki, &[]);
    let addr = server.url.trim_start_matches("amqp://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(&TLS_HEADER).await.unwrap();
    let mut answer = [0u8; 8];
    tokio::time::timeout(READ_WAIT, tcp.read_exact(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer, TLS_HEADER, "the server agrees to TLS");

    let config = Arc::new(pki.client_config(false).unwrap());
    let connector = tokio_rustls::TlsConnector::from(config);
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from(SERVER_DNS_NAME).unwrap();
    let mut tls = tokio::time::timeout(READ_WAIT, connector.connect(name, tcp))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("TLS handshake: {e}\nserver stderr:\n{}", server.log()));
    // Inside TLS: the SASL layer, and the mechanisms (PLAIN is offered: this is TLS).
    tls.write_all(&SASL_HEADER).await.unwrap();
    tokio::time::timeout(READ_WAIT, tls.read_exact(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer, SASL_HEADER);
    let frame = read_frame(&mut tls).await;
    assert_eq!(frame[1], 1, "a SASL frame (type 1): {frame:?}");
    let text = String::from_utf8_lossy(&frame);
    assert!(
        text.contains("SCRAM-SHA-512") && text.contains("PLAIN"),
        "sasl-mechanisms over TLS offer PLAIN: {text:?}"
    );
}

/// The broker must answer the SASL header over the WebSocket as it does over TCP; a broker
/// that writes its output without flushing it leaves the bytes in the WebSocket layer (which
/// sends a message per flush) and the client waits until the handshake deadline.
#[test]
fn rhea_over_websockets_with_tls_sends_and_receives() {
    let (_folder, pki) = fresh_pki("tls-wss");
    let server = serve_with("tls-wss", &pki, &["--amqp-wss", "127.0.0.1:0"]);
    let url = server.wss_url.clone().expect("no `amqp-wss on` line");
    let ca = path(&pki.ca_cert);
    let sent = ok(
        &server,
        run_at(
            &server,
            Peer::Rhea,
            &url,
            &as_alice(Peer::Rhea, ca, &["send", "myqueue", "3"]),
        ),
        "rhea send over wss",
    );
    assert_eq!(sent["accepted"], 3, "{sent}");
    let received = ok(
        &server,
        run_at(
            &server,
            Peer::Rhea,
            &url,
            &as_alice(Peer::Rhea, ca, &["receive", "myqueue", "3"]),
        ),
        "rhea receive over wss",
    );
    assert_eq!(bodies(&received), ["msg-0", "msg-1", "msg-2"]);
}

/// Replaces `to` with `from` by a rename, so the broker never reads half a file.
fn replace_file(from: &Path, to: &Path) {
    let staging = to.with_extension("new");
    std::fs::copy(from, &staging).unwrap();
    std::fs::rename(&staging, to).unwrap();
}

#[test]
fn replaced_certificate_files_are_served_to_new_clients() {
    let (_old_folder, old) = fresh_pki("tls-rotate-old");
    let (_new_folder, new) = fresh_pki("tls-rotate-new");
    // The served files, in a folder of their own.
    let files = Folder::new("tls-rotate-files");
    let cert = files.0.join("tls.crt");
    let key = files.0.join("tls.key");
    std::fs::copy(&old.server_cert, &cert).unwrap();
    std::fs::copy(&old.server_key, &key).unwrap();
    let server = serve(
        "tls-rotate",
        &["--tls-cert", path(&cert), "--tls-key", path(&key)],
    );
    let url = server.amqps_url.clone().unwrap();
    round_trip(
        &server,
        &url,
        path(&old.ca_cert),
        Peer::Proton,
        Peer::Proton,
        1,
    );

    replace_file(&new.server_key, &key);
    replace_file(&new.server_cert, &cert);
    let started = Instant::now();
    let send = as_alice(Peer::Proton, path(&new.ca_cert), &["send", "myqueue", "1"]);
    loop {
        let outcome = server
            .spawn_peer(Peer::Proton, &url, &send, "5")
            .finish(&server);
        if outcome.code() == Some(0) {
            break;
        }
        assert!(
            started.elapsed() < CERT_RELOAD_WAIT,
            "a client trusting only the new CA still cannot connect after {CERT_RELOAD_WAIT:?}: \
             {outcome:?}\nserver stderr:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // The old CA no longer verifies the server.
    let outcome = run_at(
        &server,
        Peer::Proton,
        &url,
        &as_alice(Peer::Proton, path(&old.ca_cert), &["send", "myqueue", "1"]),
    );
    assert_tls_refused(
        &server,
        Peer::Proton,
        &outcome,
        &["certificate verify failed"],
    );
}

#[test]
fn a_connection_past_the_limit_on_the_tls_port_is_told_why() {
    let (_folder, pki) = fresh_pki("tls-limit");
    // The same space, with an infra config admitting one connection.
    let yaml = space().replace(
        "  addressSpaceType: standard\n",
        "  addressSpaceType: standard\n  infraConfigRef: one-connection\n",
    ) + "---
apiVersion: admin.enmasse.io/v1beta1
kind: StandardInfraConfig
metadata: {name: one-connection}
spec:
  router:
    policy: {maxConnections: 1}
";
    let args = [
        "--amqps",
        "127.0.0.1:0",
        "--auth-failure-delay-ms",
        "50",
        "--tls-cert",
        path(&pki.server_cert),
        "--tls-key",
        path(&pki.server_key),
    ];
    let server = Server::start_config("tls-limit", &yaml, &args);
    let url = server.amqps_url.clone().unwrap();
    let ca = path(&pki.ca_cert);
    let mut holder = server.spawn_peer(
        Peer::Proton,
        &url,
        &as_alice(Peer::Proton, ca, &["hold", "myqueue", "1"]),
        CLIENT_TIMEOUT,
    );
    holder.wait_line(&server, "ready");
    // The second TLS client completes its handshake and hears the refusal in SASL.
    let refused = run_at(
        &server,
        Peer::Proton,
        &url,
        &as_alice(Peer::Proton, ca, &["send", "myqueue", "1"]),
    );
    assert_ne!(refused.code(), Some(0), "{refused:?}");
    assert_eq!(
        refused.json["sasl_outcome"],
        "sys-temp",
        "{:?}\n{}",
        refused,
        server.log()
    );
    assert!(
        server.log().contains("limit of 1 connections"),
        "{}",
        server.log()
    );
    drop(holder);
}
