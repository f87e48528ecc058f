//! Black-box interop tests of `sluice serve` with a second, independent AMQP 1.0 client: rhea
//! (the npm package, pinned in `tests/rhea/package-lock.json`), driven through
//! `tests/rhea/client.js` on Node. One test also hands messages from rhea to Qpid Proton's
//! Python client (`tests/interop/proton_client.py`, as in `serve.rs`).
//!
//! rhea must be installed first: `npm ci` in `crates/sluice/tests/rhea` (`scripts/test.sh` does
//! it). Without it these tests fail, never skip.
//!
//! Every test writes its own address space into a fresh temp folder, starts its own server on
//! `127.0.0.1:0` and kills it when done (`Server`'s `Drop`); every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

const NODE: &str = "node";
const PYTHON: &str = "/usr/bin/python3";
/// How long the server may take to print `listening on`.
const STARTUP: Duration = Duration::from_secs(20);
/// How long one client run may take before it is killed and the test fails.
const CLIENT_DEADLINE: Duration = Duration::from_secs(60);
/// The client's own timeout for the broker (`--timeout`), below `CLIENT_DEADLINE`.
const CLIENT_TIMEOUT: &str = "30";

/// The address space: one standard space on `standard-unlimited`, authentication `none`, the
/// queue `myqueue` and the multicast address `mymulticast` (the same as `serve.rs`'s).
const ADDRESS_SPACE: &str = "\
apiVersion: admin.enmasse.io/v1beta1
kind: AuthenticationService
metadata:
  name: none-authservice
spec:
  type: none
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressSpacePlan
metadata:
  name: standard-unlimited
spec:
  addressSpaceType: standard
  resourceLimits:
    router: 10000.0
    broker: 10000.0
    aggregate: 10000.0
  addressPlans:
    - standard-small-queue
    - standard-small-multicast
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressPlan
metadata:
  name: standard-small-queue
spec:
  addressType: queue
  resources:
    router: 0.001
    broker: 0.01
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressPlan
metadata:
  name: standard-small-multicast
spec:
  addressType: multicast
  resources:
    router: 0.001
---
apiVersion: enmasse.io/v1beta1
kind: AddressSpace
metadata:
  name: myspace
spec:
  type: standard
  plan: standard-unlimited
  authenticationService:
    name: none-authservice
---
apiVersion: enmasse.io/v1beta1
kind: Address
metadata:
  name: myspace.myqueue
spec:
  address: myqueue
  type: queue
  plan: standard-small-queue
---
apiVersion: enmasse.io/v1beta1
kind: Address
metadata:
  name: myspace.mymulticast
spec:
  address: mymulticast
  type: multicast
  plan: standard-small-multicast
";

/// The AMQP client a run uses.
#[derive(Clone, Copy, Debug)]
enum Peer {
    /// `tests/rhea/client.js` on Node.
    Rhea,
    /// `tests/interop/proton_client.py` on Debian's Python.
    Proton,
}

fn rhea_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/rhea")
}

/// Fails (never skips) when Node or the installed rhea package is missing.
fn require_rhea() {
    let dir = rhea_dir();
    assert!(
        dir.join("node_modules/rhea/package.json").is_file(),
        "these tests need rhea installed in {}: node_modules is missing there. Run `npm ci` in \
         that folder (./scripts/test.sh does)",
        dir.display()
    );
    let node = Command::new(NODE)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        node,
        "these tests need Node.js: `{NODE} --version` failed. Install it (e.g. `sudo apt-get \
         install nodejs npm`), then run `npm ci` in {}",
        dir.display()
    );
}

/// Fails (never skips) when Proton's Python binding is missing.
fn require_proton() {
    let found = Command::new(PYTHON)
        .args(["-c", "import proton"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "this test needs Qpid Proton's Python binding: `{PYTHON} -c \"import proton\"` failed. \
         Install it with `sudo apt-get install python3-qpid-proton` (./scripts/test.sh does)"
    );
}

/// A fresh, empty folder under the system temp dir, unique across tests and runs.
fn temp_dir(tag: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "sluice-rhea-{tag}-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running `sluice serve`; killed, and its folder removed, on drop. Its stderr goes to a
/// file that is printed when the test fails.
struct Server {
    child: Child,
    /// Held open so the server never sees end-of-input on stdin.
    _stdin: Option<ChildStdin>,
    dir: PathBuf,
    url: String,
}

impl Server {
    fn start(tag: &str) -> Server {
        require_rhea();
        let dir = temp_dir(tag);
        let config = dir.join("config");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(config.join("space.yaml"), ADDRESS_SPACE).unwrap();
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .args(["--amqp", "127.0.0.1:0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let mut server = Server {
            child,
            _stdin: stdin,
            dir,
            url: String::new(),
        };

        // Read stdout on a thread (it keeps draining it, so the server never blocks on it).
        let (lines, first) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = lines.send(line);
            }
        });
        let line = match first.recv_timeout(STARTUP) {
            Ok(line) => line,
            Err(_) => panic!(
                "sluice serve printed no `listening on` line within {STARTUP:?}; exit status: {:?}; \
                 stderr:\n{}",
                server.child.try_wait().ok().flatten(),
                server.log()
            ),
        };
        let port = line
            .strip_prefix("listening on 127.0.0.1:")
            .and_then(|p| p.trim().parse::<u16>().ok())
            .unwrap_or_else(|| {
                panic!("expected `listening on 127.0.0.1:PORT` as the first line, got {line:?}")
            });
        assert_ne!(port, 0, "{line}");
        server.url = format!("amqp://127.0.0.1:{port}");
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Runs a client to completion (bounded by `CLIENT_DEADLINE`).
    fn run(&self, peer: Peer, args: &[&str]) -> Outcome {
        self.spawn(peer, args).finish(self)
    }

    /// Starts a client in the background: `subcommand URL rest... --timeout SECONDS`.
    fn spawn(&self, peer: Peer, args: &[&str]) -> Client {
        self.spawn_with_timeout(peer, args, CLIENT_TIMEOUT)
    }

    fn spawn_with_timeout(&self, peer: Peer, args: &[&str], timeout: &str) -> Client {
        let (sub, rest) = args.split_first().unwrap();
        let mut command = match peer {
            Peer::Rhea => {
                let mut c = Command::new(NODE);
                c.arg(rhea_dir().join("client.js"));
                c
            }
            Peer::Proton => {
                require_proton();
                let mut c = Command::new(PYTHON);
                c.arg(
                    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                        .join("tests/interop/proton_client.py"),
                );
                c
            }
        };
        let mut child = command
            .arg(sub)
            .arg(&self.url)
            .args(rest)
            .args(["--timeout", timeout])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let out = thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        });
        let stderr = child.stderr.take().unwrap();
        let (lines, stderr_lines) = mpsc::channel();
        let err = thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                text.push_str(&line);
                text.push('\n');
                let _ = lines.send(line);
            }
            text
        });
        Client {
            child,
            description: format!("{peer:?} {}", args.join(" ")),
            out: Some(out),
            err: Some(err),
            stderr_lines,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "--- sluice serve stderr ---\n{}", self.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A client process; killed on drop if still running.
struct Client {
    child: Child,
    description: String,
    out: Option<thread::JoinHandle<String>>,
    err: Option<thread::JoinHandle<String>>,
    stderr_lines: mpsc::Receiver<String>,
}

/// What a client run printed (`stdout`/`stderr` are read through `Debug` in failure messages).
#[derive(Debug)]
#[allow(dead_code)]
struct Outcome {
    status: ExitStatus,
    json: Value,
    stdout: String,
    stderr: String,
}

impl Client {
    /// Waits until the receiver says `ready` on stderr (attached, credit read by the broker).
    fn wait_ready(&mut self, server: &Server) {
        let deadline = Instant::now() + CLIENT_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) if line.trim() == "ready" => return,
                Ok(_) => continue,
                Err(_) => {
                    let _ = self.child.kill();
                    let outcome = self.collect();
                    panic!(
                        "`{}` never printed \"ready\": {outcome:?}\nserver stderr:\n{}",
                        self.description,
                        server.log()
                    );
                }
            }
        }
    }

    fn finish(mut self, server: &Server) -> Outcome {
        let deadline = Instant::now() + CLIENT_DEADLINE;
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let outcome = self.collect();
                panic!(
                    "`{}` did not finish within {CLIENT_DEADLINE:?}: {outcome:?}\nserver stderr:\n{}",
                    self.description,
                    server.log()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.collect()
    }

    fn collect(&mut self) -> Outcome {
        let status = self.child.wait().unwrap();
        let stdout = self
            .out
            .take()
            .map(|t| t.join().unwrap())
            .unwrap_or_default();
        let stderr = self
            .err
            .take()
            .map(|t| t.join().unwrap())
            .unwrap_or_default();
        let json = stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or(Value::Null);
        Outcome {
            status,
            json,
            stdout,
            stderr,
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts a run exited 0, showing everything when it did not.
fn ok(server: &Server, outcome: Outcome, what: &str) -> Value {
    assert_eq!(
        outcome.status.code(),
        Some(0),
        "{what} failed: {outcome:?}\nserver stderr:\n{}",
        server.log()
    );
    outcome.json
}

fn bodies(json: &Value) -> Vec<String> {
    json["bodies"]
        .as_array()
        .unwrap_or_else(|| panic!("no bodies in {json}"))
        .iter()
        .map(|b| {
            b.as_str()
                .unwrap_or_else(|| panic!("not a string body: {b}"))
                .to_owned()
        })
        .collect()
}

fn numbered(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("msg-{i}")).collect()
}

/// After a test drained the queue: a rhea receiver gets nothing within a second (its
/// timeout, exit 2), so accepting removed the messages.
fn assert_queue_empty(server: &Server) {
    let outcome = server
        .spawn_with_timeout(Peer::Rhea, &["receive", "myqueue", "1"], "1")
        .finish(server);
    assert_eq!(
        outcome.status.code(),
        Some(2),
        "expected the queue to be empty (the receive to time out): {outcome:?}\nserver stderr:\n{}",
        server.log()
    );
    assert_eq!(outcome.json["received"], 0, "{}", outcome.json);
}

#[test]
fn rhea_round_trips_100_messages_through_a_queue_in_order() {
    let server = Server::start("order");
    let sent = ok(
        &server,
        server.run(Peer::Rhea, &["send", "myqueue", "100"]),
        "rhea send 100",
    );
    assert_eq!(sent["sent"], 100, "{sent}");
    assert_eq!(sent["accepted"], 100, "every message accepted: {sent}");
    assert_eq!(sent["outcomes"]["accepted"], 100, "{sent}");

    let received = ok(
        &server,
        server.run(Peer::Rhea, &["receive", "myqueue", "100"]),
        "rhea receive 100",
    );
    assert_eq!(bodies(&received), numbered(100), "in the order sent");
    assert_eq!(
        received["presettled"], 0,
        "queue deliveries arrive unsettled, for the receiver to accept: {received}"
    );
    assert_queue_empty(&server);
}

#[test]
fn a_rhea_receiver_gets_every_message_a_rhea_sender_multicasts() {
    let server = Server::start("multicast");
    // Multicast stores nothing: the sender starts only once the broker has the credit.
    let mut receiver = server.spawn(
        Peer::Rhea,
        &["receive", "mymulticast", "10", "--name", "rhea-mc"],
    );
    receiver.wait_ready(&server);

    let sent = ok(
        &server,
        server.run(Peer::Rhea, &["send", "mymulticast", "10"]),
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
        let outcome = server.run(Peer::Rhea, &["attach", "nowhere", "--role", role]);
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
            server.run(Peer::Rhea, &["attach", "myqueue", "--role", role]),
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
        server.run(Peer::Rhea, &["send", "myqueue", "20"]),
        "rhea send 20",
    );
    assert_eq!(sent["accepted"], 20, "{sent}");

    let received = ok(
        &server,
        server.run(Peer::Proton, &["receive", "myqueue", "20"]),
        "Proton receive 20",
    );
    assert_eq!(
        bodies(&received),
        numbered(20),
        "Proton reads rhea's string bodies, in order"
    );
    assert_queue_empty(&server);
}
