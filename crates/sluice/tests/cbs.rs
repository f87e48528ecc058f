//! Black-box tests of claims-based security (`$cbs`) with the Azure Service Bus SDK for Python
//! (PyPI's azure-servicebus, pinned in `tests/interop/pyamqp-requirements.txt`), driven by
//! `tests/interop/servicebus_client.py` on the virtualenv `target/pyamqp-venv`.
//!
//! `sluice serve` runs a standard space (queues `orders` and `payroll`, no MessagingUser) with
//! `--sas-key RootManageSharedAccessKey=FILE`: the SDK logs in with SASL ANONYMOUS, which gives
//! no right, and then puts a SAS token signed with that key on `$cbs` for each entity it uses.
//! The client is made from the connection string
//! `Endpoint=sb://127.0.0.1:PORT/;SharedAccessKeyName=..;SharedAccessKey=..;UseDevelopmentEmulator=true`:
//! the pinned SDK (7.15.0) supports the emulator flag (`_base_handler._parse_conn_str`), which
//! turns TLS off and keeps the port, so nothing of the SDK is patched for that.
//!
//! Two things the shipped SDK does that Sluice does not understand (see the client's module
//! doc) each have a client option that works around it, so the rest of the flow is tested too:
//! `--declare-sastoken` (the SDK puts SAS tokens with type `jwt`) and `--bare-address` (its
//! links name `amqps://HOST:PORT/QUEUE`). The tests of the shipped SDK use neither.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use serde_json::Value;
use support::*;

/// The key's name, as Azure names a namespace's root key.
const KEY_NAME: &str = "RootManageSharedAccessKey";
/// The key itself (any string: Service Bus keys are base64 text, used as bytes).
const KEY: &str = "c2x1aWNlLXRlc3Qta2V5LWZvci1jYnMtdGVzdHM=";
/// The client's own bound on a run (`--timeout`), in seconds.
const CLIENT_TIMEOUT_S: &str = "20";
/// How long a run may take before the test kills it and fails.
const RUN_DEADLINE: Duration = Duration::from_secs(60);
/// Workarounds for the two shipped-SDK behaviours (module doc).
const WORKED_AROUND: [&str; 2] = ["--declare-sastoken", "--bare-address"];

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
metadata: {name: myspace.orders}
spec: {address: orders, type: queue, plan: standard-small-queue}
---
apiVersion: enmasse.io/v1beta1
kind: Address
metadata: {name: myspace.payroll}
spec: {address: payroll, type: queue, plan: standard-small-queue}
";

/// `sluice serve` with the SAS key [`KEY`] (written to a file beside the test's config).
fn serve(tag: &str) -> (Server, KeyFile) {
    let key = KeyFile::new();
    let sas_key = format!("{KEY_NAME}={}", key.path.display());
    let server = Server::start_config(
        tag,
        SPACE,
        &["--sas-key", &sas_key, "--auth-failure-delay-ms", "50"],
    );
    (server, key)
}

/// The SAS key's file; removed on drop.
struct KeyFile {
    dir: PathBuf,
    path: PathBuf,
}

impl KeyFile {
    fn new() -> KeyFile {
        let dir = temp_dir("cbs-key");
        let path = dir.join("sas-key");
        std::fs::write(&path, KEY).unwrap();
        KeyFile { dir, path }
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The virtualenv's Python, as the harness finds it for pyamqp.
fn venv_python() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/pyamqp-venv/bin/python")
}

/// What one client run printed (`stderr` is read through `Debug` in failure messages).
#[derive(Debug)]
#[allow(dead_code)]
struct Run {
    code: Option<i32>,
    json: Value,
    stderr: String,
}

/// Runs `servicebus_client.py SUBCOMMAND 127.0.0.1:PORT QUEUE COUNT --key-name .. --key KEY
/// extra..` to completion (bounded by [`RUN_DEADLINE`]).
fn sdk(
    server: &Server,
    subcommand: &str,
    queue: &str,
    count: usize,
    key: &str,
    extra: &[&str],
) -> Run {
    let python = venv_python();
    let found = Command::new(&python)
        .args(["-c", "import azure.servicebus"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "these tests need azure-servicebus in the virtualenv {}: run ./scripts/test.sh, which \
         creates it from tests/interop/pyamqp-requirements.txt",
        python.display()
    );
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/servicebus_client.py");
    let host = server.url.strip_prefix("amqp://").unwrap();
    let mut child = Command::new(&python)
        .arg(script)
        .args([subcommand, host, queue, &count.to_string()])
        .args([
            "--key-name",
            KEY_NAME,
            "--key",
            key,
            "--timeout",
            CLIENT_TIMEOUT_S,
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let Some(status) = wait_or_kill(&mut child, RUN_DEADLINE) else {
        panic!(
            "servicebus_client.py {subcommand} {queue} did not finish within {RUN_DEADLINE:?}\n\
             server stderr:\n{}",
            server.log()
        );
    };
    let stdout = out.join().unwrap();
    let json = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    Run {
        code: status.code(),
        json,
        stderr: err.join().unwrap(),
    }
}

/// Asserts the run exited 0; its report.
fn sdk_ok(server: &Server, run: Run, what: &str) -> Value {
    assert_eq!(
        run.code,
        Some(0),
        "{what} failed: {run:?}\nserver stderr:\n{}",
        server.log()
    );
    run.json
}

/// Asserts the SDK failed with one of its authentication or authorization errors.
fn assert_auth_error(server: &Server, run: &Run, what: &str) {
    assert_eq!(
        run.code,
        Some(1),
        "{what} should fail: {run:?}\nserver stderr:\n{}",
        server.log()
    );
    assert_eq!(
        run.json["auth_error"], true,
        "{what} should fail with an authentication error: {run:?}"
    );
}

fn numbered(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("msg-{i}")).collect()
}

fn bodies_of(json: &Value) -> Vec<String> {
    json["bodies"]
        .as_array()
        .unwrap_or_else(|| panic!("no bodies in {json}"))
        .iter()
        .map(|b| b.as_str().unwrap().to_owned())
        .collect()
}

/// Receives whatever `queue` holds within 2 s (up to `count`), with both workarounds, in the
/// SDK's RECEIVE_AND_DELETE mode (nothing to complete); the bodies. What one drain reports is
/// what the queue held; whether it is then gone is another matter
/// ([`a_receive_and_delete_receiver_gets_each_message_once`]).
fn drain(server: &Server, queue: &str, count: usize) -> Vec<String> {
    let mut extra = WORKED_AROUND.to_vec();
    extra.extend(["--receive-and-delete", "--wait", "2"]);
    let run = sdk(server, "receive", queue, count, KEY, &extra);
    assert!(
        matches!(run.code, Some(0 | 2)),
        "draining {queue}: {run:?}\nserver stderr:\n{}",
        server.log()
    );
    bodies_of(&run.json)
}

/// The test: the SDK as shipped sends 10 messages to a queue and receives and
/// completes them.
#[test]
fn the_azure_sdk_sends_10_messages_and_receives_and_completes_them() {
    let (server, _key) = serve("cbs-sdk");
    let sent = sdk_ok(
        &server,
        sdk(&server, "send", "orders", 10, KEY, &[]),
        "SDK send 10",
    );
    assert_eq!(sent["sent"], 10, "{sent}");
    let received = sdk_ok(
        &server,
        sdk(&server, "receive", "orders", 10, KEY, &[]),
        "SDK receive 10",
    );
    assert_eq!(bodies_of(&received), numbered(10));
    assert_eq!(received["completed"], 10, "{received}");
    assert!(
        drain(&server, "orders", 1).is_empty(),
        "completed means gone"
    );
}

/// The SDK's pyamqp transport puts a SAS token on `$cbs` with type `jwt` (Azure Service Bus
/// judges a token by its form, `SharedAccessSignature sr=..`): Sluice must take it as the SAS
/// token it is, not send it to a TokenReview.
#[test]
fn a_sas_token_put_with_type_jwt_is_taken_as_a_sas_token() {
    let (server, _key) = serve("cbs-jwt-type");
    let run = sdk(&server, "send", "orders", 1, KEY, &["--bare-address"]);
    let sent = sdk_ok(&server, run, "SDK send with its own token type");
    assert_eq!(sent["sent"], 1, "{sent}");
}

/// The SDK's links name their entity `amqps://HOST:PORT/QUEUE` (its sender's target, its
/// receiver's source), and the token's audience is `sb://HOST:PORT/QUEUE`: both name the
/// queue.
#[test]
fn the_sdks_uri_addresses_name_their_queue() {
    let (server, _key) = serve("cbs-uri");
    let run = sdk(&server, "send", "orders", 3, KEY, &["--declare-sastoken"]);
    let sent = sdk_ok(&server, run, "SDK send to amqps://HOST:PORT/orders");
    assert_eq!(sent["sent"], 3, "{sent}");
    let run = sdk(
        &server,
        "receive",
        "orders",
        3,
        KEY,
        &["--declare-sastoken", "--receive-and-delete"],
    );
    let received = sdk_ok(&server, run, "SDK receive from amqps://HOST:PORT/orders");
    assert_eq!(bodies_of(&received), numbered(3));
}

/// The SDK's peek-lock receiver attaches with `rcv-settle-mode: second` and completes a
/// message with an unsettled `accepted` disposition, then waits for the broker to settle it
/// (part 2 §2.7.3: the receiver's mode is the one in use). Each complete must come back.
#[test]
fn a_completed_message_is_settled_by_the_broker() {
    let (server, _key) = serve("cbs-complete");
    let sent = sdk_ok(
        &server,
        sdk(&server, "send", "orders", 10, KEY, &WORKED_AROUND),
        "SDK send 10",
    );
    assert_eq!(sent["sent"], 10, "{sent}");
    // A complete that is never settled blocks the SDK: its run stops after 8 s.
    let mut extra = WORKED_AROUND.to_vec();
    extra.extend(["--timeout", "8"]);
    let run = sdk(&server, "receive", "orders", 10, KEY, &extra);
    let received = sdk_ok(&server, run, "SDK receive and complete 10");
    assert_eq!(bodies_of(&received), numbered(10));
    assert_eq!(received["completed"], 10, "{received}");
}

#[test]
fn with_its_token_type_and_addresses_worked_around_the_sdk_round_trips_10_messages() {
    let (server, _key) = serve("cbs-round-trip");
    let sent = sdk_ok(
        &server,
        sdk(&server, "send", "orders", 10, KEY, &WORKED_AROUND),
        "SDK send 10",
    );
    assert_eq!(sent["sent"], 10, "{sent}");
    assert!(
        server.log().contains("$cbs: SAS token accepted"),
        "the SDK's token went through $cbs:\n{}",
        server.log()
    );
    assert_eq!(drain(&server, "orders", 10), numbered(10));
}

/// The SDK's RECEIVE_AND_DELETE receiver attaches with `snd-settle-mode: settled` and never
/// settles what it gets: a broker that answers `mixed` and sends unsettled deliveries has
/// them released when the receiver leaves, and the next receiver gets them again.
#[test]
fn a_receive_and_delete_receiver_gets_each_message_once() {
    let (server, _key) = serve("cbs-receive-and-delete");
    let sent = sdk_ok(
        &server,
        sdk(&server, "send", "orders", 3, KEY, &WORKED_AROUND),
        "SDK send 3",
    );
    assert_eq!(sent["sent"], 3, "{sent}");
    assert_eq!(drain(&server, "orders", 3), numbered(3));
    let again = drain(&server, "orders", 3);
    assert!(
        again.is_empty(),
        "received and deleted, yet delivered again: {again:?}"
    );
}

#[test]
fn a_wrong_key_fails_with_an_auth_error_and_nothing_is_sent() {
    let (server, _key) = serve("cbs-wrong-key");
    let wrong = "d3Jvbmcta2V5LWZvci10aGUtc2FtZS1uYW1lLXh4eHg=";
    let run = sdk(&server, "send", "orders", 10, wrong, &WORKED_AROUND);
    assert_auth_error(&server, &run, "sending with a wrong key");
    assert_eq!(run.json["sent"], 0, "{run:?}");
    assert!(
        server.log().contains("$cbs: SAS token refused"),
        "the refusal is the token's:\n{}",
        server.log()
    );
    // The SDK as shipped is refused too.
    let run = sdk(&server, "send", "orders", 10, wrong, &[]);
    assert_auth_error(&server, &run, "sending with a wrong key (shipped SDK)");
    // And nothing reached the queue.
    assert!(drain(&server, "orders", 1).is_empty());
}

#[test]
fn a_token_for_one_queue_does_not_let_it_receive_from_another() {
    let (server, _key) = serve("cbs-audience");
    let sent = sdk_ok(
        &server,
        sdk(&server, "send", "payroll", 1, KEY, &WORKED_AROUND),
        "SDK send 1 to payroll",
    );
    assert_eq!(sent["sent"], 1, "{sent}");

    // One token, signed with the key but for `orders`: good for orders ...
    let for_orders = ["--sas-for", "orders"];
    let mut extra = WORKED_AROUND.to_vec();
    extra.extend(for_orders);
    let sent = sdk_ok(
        &server,
        sdk(&server, "send", "orders", 2, KEY, &extra),
        "SDK send 2 to orders with a token for orders",
    );
    assert_eq!(sent["sent"], 2, "{sent}");

    // ... not for payroll.
    extra.extend(["--receive-and-delete", "--wait", "2"]);
    let run = sdk(&server, "receive", "payroll", 1, KEY, &extra);
    assert_auth_error(
        &server,
        &run,
        "receiving from payroll with a token for orders",
    );
    assert_eq!(run.json["received"], 0, "{run:?}");
    assert!(
        server.log().contains("is signed for"),
        "the log says the token is for another entity:\n{}",
        server.log()
    );

    // Its message is still there, and orders has its two.
    assert_eq!(drain(&server, "payroll", 1), ["msg-0"]);
    assert_eq!(drain(&server, "orders", 2), numbered(2));
}
