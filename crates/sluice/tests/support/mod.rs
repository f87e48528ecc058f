//! The harness the black-box tests share: a `sluice serve` on an ephemeral loopback port with
//! a test address space, and client processes of three independent AMQP 1.0 implementations
//! (Qpid Proton's Python binding, rhea on Node, and pyamqp, the Azure SDKs' pure-Python stack)
//! that print one JSON line each. Every wait is bounded; a missing client fails the test, never
//! skips it.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

const PYTHON: &str = "/usr/bin/python3";
const NODE: &str = "node";
/// How long the server may take to print `listening on`.
const STARTUP: Duration = Duration::from_secs(20);
/// How long one client run may take before it is killed and the test fails.
const CLIENT_DEADLINE: Duration = Duration::from_secs(60);
/// The client's own timeout for the broker (`--timeout`), below `CLIENT_DEADLINE`.
pub const CLIENT_TIMEOUT: &str = "30";

/// The address space: one standard space on `standard-unlimited`, authentication `none`, and
/// these addresses (the plans are the EnMasse defaults cut to what this needs,
/// ../shared/enmasse-examples/plans, plus `standard-small-queue-ttl`):
/// - `myqueue`: a queue, no TTL clamp, no dead-letter or expiry target;
/// - `mymulticast`: a multicast address;
/// - `mytopic`: a topic; `mysub`: a subscription to it with `maxConsumers: 1`;
/// - `myanycast`: an anycast address;
/// - `mydlq`: a deadletter address;
/// - `myqueue-dl`: a queue on `standard-small-queue-ttl` (`messageTtl.maximum` 1000 ms, so a
///   message without a TTL expires after 1 s) with `deadletter` and `expiry` both `mydlq` and
///   `messageRedelivery.maximumDeliveryAttempts` 2.
pub const ADDRESS_SPACE: &str = "\
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
    - standard-small-queue-ttl
    - standard-small-topic
    - standard-small-subscription
    - standard-small-anycast
    - standard-deadletter
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
apiVersion: admin.enmasse.io/v1beta2
kind: AddressPlan
metadata:
  name: standard-small-queue-ttl
spec:
  addressType: queue
  resources:
    router: 0.001
    broker: 0.01
  messageTtl:
    maximum: 1000
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressPlan
metadata:
  name: standard-small-topic
spec:
  addressType: topic
  resources:
    router: 0.001
    broker: 0.01
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressPlan
metadata:
  name: standard-small-subscription
spec:
  addressType: subscription
  resources:
    router: 0.001
    broker: 0.01
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressPlan
metadata:
  name: standard-small-anycast
spec:
  addressType: anycast
  resources:
    router: 0.001
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressPlan
metadata:
  name: standard-deadletter
spec:
  addressType: deadletter
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
---
apiVersion: enmasse.io/v1beta1
kind: Address
metadata:
  name: myspace.mytopic
spec:
  address: mytopic
  type: topic
  plan: standard-small-topic
---
apiVersion: enmasse.io/v1beta1
kind: Address
metadata:
  name: myspace.mysub
spec:
  address: mysub
  type: subscription
  plan: standard-small-subscription
  topic: mytopic
  subscription:
    maxConsumers: 1
---
apiVersion: enmasse.io/v1beta1
kind: Address
metadata:
  name: myspace.myanycast
spec:
  address: myanycast
  type: anycast
  plan: standard-small-anycast
---
apiVersion: enmasse.io/v1beta1
kind: Address
metadata:
  name: myspace.mydlq
spec:
  address: mydlq
  type: deadletter
  plan: standard-deadletter
---
apiVersion: enmasse.io/v1beta1
kind: Address
metadata:
  name: myspace.myqueue-dl
spec:
  address: myqueue-dl
  type: queue
  plan: standard-small-queue-ttl
  deadletter: mydlq
  expiry: mydlq
  messageRedelivery:
    maximumDeliveryAttempts: 2
";

/// `space` (a copy of [`ADDRESS_SPACE`]) with a StandardInfraConfig `test-infra` whose
/// `spec.broker` is `broker` (a YAML flow mapping such as
/// `{treatRejectAsUnmodifiedDeliveryFailed: false}`), named by the `standard-unlimited` plan.
#[allow(dead_code)]
pub fn with_broker_infra(space: &str, broker: &str) -> String {
    let plan = "  name: standard-unlimited\nspec:\n";
    assert!(
        space.contains(plan),
        "the space has the standard-unlimited plan"
    );
    let space = space.replacen(plan, &format!("{plan}  infraConfigRef: test-infra\n"), 1);
    format!(
        "apiVersion: admin.enmasse.io/v1beta1\nkind: StandardInfraConfig\nmetadata:\n  \
         name: test-infra\nspec:\n  broker: {broker}\n---\n{space}"
    )
}

/// Fails (never skips) when Proton's Python binding is missing.
pub fn require_proton() {
    let found = Command::new(PYTHON)
        .args(["-c", "import proton"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "these tests need Qpid Proton's Python binding: `{PYTHON} -c \"import proton\"` failed. \
         Install it with `sudo apt-get install python3-qpid-proton` (./scripts/test.sh does)"
    );
}

/// The AMQP client a run uses: three independent implementations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// `tests/interop/proton_client.py` on Debian's Python (Qpid Proton).
    Proton,
    /// `tests/rhea/client.js` on Node (rhea).
    Rhea,
    /// `tests/interop/pyamqp_client.py` on the virtualenv `scripts/test.sh` installs
    /// azure-servicebus into (its `azure.servicebus._pyamqp`).
    Pyamqp,
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

/// The Python of the virtualenv that `scripts/test.sh` installs the pinned azure-servicebus
/// (and so pyamqp) into: `target/pyamqp-venv` at the top of the workspace, wherever
/// `CARGO_TARGET_DIR` points.
fn pyamqp_python() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/pyamqp-venv/bin/python")
}

/// Fails (never skips) when the pyamqp virtualenv is missing or cannot import pyamqp.
fn require_pyamqp() {
    let python = pyamqp_python();
    let found = Command::new(&python)
        .args(["-c", "import azure.servicebus._pyamqp"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "these tests need pyamqp (PyPI's azure-servicebus) in the virtualenv {}: `{} -c \"import \
         azure.servicebus._pyamqp\"` failed. Run ./scripts/test.sh, which creates it",
        python.display(),
        python.display()
    );
}

/// The command that runs `peer`'s client script, after checking the peer is installed.
fn client_command(peer: Peer) -> Command {
    match peer {
        Peer::Proton => {
            require_proton();
            let mut c = Command::new(PYTHON);
            c.arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/proton_client.py"));
            c
        }
        Peer::Rhea => {
            require_rhea();
            let mut c = Command::new(NODE);
            c.arg(rhea_dir().join("client.js"));
            c
        }
        Peer::Pyamqp => {
            require_pyamqp();
            let mut c = Command::new(pyamqp_python());
            c.arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/pyamqp_client.py"));
            c
        }
    }
}

/// A fresh, empty folder under the system temp dir, unique across tests and runs.
pub fn temp_dir(tag: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "sluice-serve-{tag}-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running `sluice serve`; killed, and its folder removed, on drop. Its stderr goes to a
/// file that is printed when the test fails.
pub struct Server {
    child: Child,
    /// Held open so the server never sees end-of-input on stdin.
    _stdin: Option<ChildStdin>,
    dir: PathBuf,
    pub url: String,
    /// With `--amqps`: `amqps://127.0.0.1:PORT`.
    pub amqps_url: Option<String>,
    /// With `--amqp-wss`: `wss://127.0.0.1:PORT`.
    pub wss_url: Option<String>,
    /// The HTTP endpoint: `http://127.0.0.1:PORT` (every server gets one on an ephemeral
    /// port, unless `extra` says `--no-http`).
    pub http_url: Option<String>,
}

impl Server {
    pub fn start(tag: &str) -> Server {
        Server::start_with(tag, &[])
    }

    /// A server started with `extra` arguments after the usual ones.
    pub fn start_with(tag: &str, extra: &[&str]) -> Server {
        Server::start_config(tag, ADDRESS_SPACE, extra)
    }

    /// A server of the address space in `yaml` (written to `config/space.yaml` in its
    /// folder, [`Server::dir`]), started with `extra` arguments.
    pub fn start_config(tag: &str, yaml: &str, extra: &[&str]) -> Server {
        let dir = temp_dir(tag);
        let config = dir.join("config");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(config.join("space.yaml"), yaml).unwrap();
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .args(if extra.contains(&"--amqp") {
                &[][..]
            } else {
                &["--amqp", "127.0.0.1:0"][..]
            })
            .args(
                if extra.contains(&"--no-http") || extra.contains(&"--http") {
                    &[][..]
                } else {
                    &["--http", "127.0.0.1:0"][..]
                },
            )
            .args(extra)
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
            amqps_url: None,
            wss_url: None,
            http_url: None,
        };

        // Read stdout on a thread (it keeps draining it, so the server never blocks on it).
        let (lines, first) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // After the first line nobody listens: the send fails and we keep draining.
                let _ = lines.send(line);
            }
        });
        // The TLS listeners' lines (`amqps on ADDR`, `amqp-wss on ADDR`) come first.
        let deadline = Instant::now() + STARTUP;
        let line = loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            let line = match first.recv_timeout(wait) {
                Ok(line) => line,
                Err(_) => panic!(
                    "sluice serve printed no `listening on` line within {STARTUP:?}; exit status: {:?}; \
                     stderr:\n{}",
                    server.child.try_wait().ok().flatten(),
                    server.log()
                ),
            };
            if let Some(addr) = line.strip_prefix("amqps on ") {
                server.amqps_url = Some(format!("amqps://{}", addr.trim()));
            } else if let Some(addr) = line.strip_prefix("amqp-wss on ") {
                server.wss_url = Some(format!("wss://{}", addr.trim()));
            } else if let Some(addr) = line.strip_prefix("http on ") {
                server.http_url = Some(format!("http://{}", addr.trim()));
            } else {
                break line;
            }
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

    /// The server's folder (its config is in `config/`); removed on drop.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Sends the server SIGHUP: it reloads its users from its config folder.
    pub fn reload(&self) {
        let sent = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -HUP failed");
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How many sockets the server process holds open (its listener plus one per connection),
    /// from `/proc/PID/fd`.
    pub fn open_sockets(&self) -> usize {
        let fds = std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).unwrap();
        fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .filter(|target| target.to_string_lossy().starts_with("socket:"))
            .count()
    }

    /// Waits (bounded) until the server holds exactly `count` sockets: after a client died,
    /// that is when the server has noticed and ended its connection.
    pub fn wait_open_sockets(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let open = self.open_sockets();
            if open == count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the server still holds {open} sockets after 10 s, expected {count}: it did not \
                 notice that a connection ended\nserver stderr:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the server process is still running (it never exits on its own in these tests).
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Sends the server SIGTERM and waits (at most `within`) for it to exit; its exit status, or
    /// `None` if it is still running.
    pub fn terminate(&mut self, within: Duration) -> Option<ExitStatus> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM failed");
        wait_within(&mut self.child, within)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Runs the Proton client to completion (bounded by `CLIENT_DEADLINE`).
    pub fn run(&self, args: &[&str]) -> Outcome {
        self.run_with(Peer::Proton, args)
    }

    /// Runs `peer`'s client to completion (bounded by `CLIENT_DEADLINE`).
    pub fn run_with(&self, peer: Peer, args: &[&str]) -> Outcome {
        self.spawn_with(peer, args).finish(self)
    }

    /// Starts the Proton client in the background: `subcommand URL rest... --timeout 30`.
    pub fn spawn(&self, args: &[&str]) -> Client {
        self.spawn_with(Peer::Proton, args)
    }

    /// Starts `peer`'s client in the background.
    pub fn spawn_with(&self, peer: Peer, args: &[&str]) -> Client {
        self.spawn_peer(peer, &self.url, args, CLIENT_TIMEOUT)
    }

    /// Starts the Proton client with another URL (e.g. with credentials) or client timeout.
    pub fn spawn_at(&self, url: &str, args: &[&str], timeout: &str) -> Client {
        self.spawn_peer(Peer::Proton, url, args, timeout)
    }

    /// Starts `peer`'s client with this URL and client timeout.
    pub fn spawn_peer(&self, peer: Peer, url: &str, args: &[&str], timeout: &str) -> Client {
        let (sub, rest) = args.split_first().unwrap();
        let mut child = client_command(peer)
            .arg(sub)
            .arg(url)
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

/// A client process (any peer's); killed on drop if still running.
pub struct Client {
    child: Child,
    description: String,
    out: Option<thread::JoinHandle<String>>,
    err: Option<thread::JoinHandle<String>>,
    stderr_lines: mpsc::Receiver<String>,
}

/// What a client run printed (`stdout`/`stderr` are read through `Debug` in failure messages).
#[derive(Debug)]
#[allow(dead_code)]
pub struct Outcome {
    pub status: ExitStatus,
    pub json: Value,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

impl Client {
    /// Waits until the receiver says `ready` on stderr (attached, credit granted).
    pub fn wait_ready(&mut self, server: &Server) {
        self.wait_line(server, "ready");
    }

    /// Waits until the client prints the line `want` on stderr.
    pub fn wait_line(&mut self, server: &Server, want: &str) {
        let deadline = Instant::now() + CLIENT_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) if line.trim() == want => return,
                Ok(_) => continue,
                Err(_) => {
                    let _ = self.child.kill();
                    let outcome = self.collect();
                    panic!(
                        "`{}` never printed {want:?}: {outcome:?}\nserver stderr:\n{}",
                        self.description,
                        server.log()
                    );
                }
            }
        }
    }

    /// Kills the client with SIGKILL (no AMQP close, no FIN from a clean shutdown: the kernel
    /// just drops the socket) and returns what it printed so far.
    pub fn kill(mut self) -> Outcome {
        self.child.kill().unwrap();
        self.collect()
    }

    pub fn finish(mut self, server: &Server) -> Outcome {
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

    pub fn collect(&mut self) -> Outcome {
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

/// Asserts `address` has no message: a receiver gets none within its 1 s timeout (exit 2).
pub fn assert_empty(server: &Server, address: &str) {
    let outcome = server
        .spawn_at(&server.url, &["receive", address, "1"], "1")
        .finish(server);
    assert_eq!(
        outcome.code(),
        Some(2),
        "expected {address} to be empty (the receive to time out): {outcome:?}\nserver stderr:\n{}",
        server.log()
    );
    assert_eq!(outcome.json["received"], 0, "{}", outcome.json);
}

/// Asserts a run exited 0, showing everything when it did not.
pub fn ok(server: &Server, outcome: Outcome, what: &str) -> Value {
    assert_eq!(
        outcome.code(),
        Some(0),
        "{what} failed: {outcome:?}\nserver stderr:\n{}",
        server.log()
    );
    outcome.json
}

pub fn bodies(json: &Value) -> Vec<String> {
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

pub fn index_of(body: &str) -> usize {
    body.strip_prefix("msg-")
        .and_then(|i| i.parse().ok())
        .unwrap_or_else(|| panic!("unexpected body {body:?}"))
}

/// After a test drained the queue: a receiver gets nothing within a second (its timeout,
/// exit 2), so accepting removed the messages.
pub fn assert_queue_empty(server: &Server) {
    assert_queue_empty_with(server, Peer::Proton);
}

/// [`assert_queue_empty`] with `peer`'s receiver.
pub fn assert_queue_empty_with(server: &Server, peer: Peer) {
    let outcome = server
        .spawn_peer(peer, &server.url, &["receive", "myqueue", "1"], "1")
        .finish(server);
    assert_eq!(
        outcome.code(),
        Some(2),
        "expected the queue to be empty (the receive to time out): {outcome:?}\nserver stderr:\n{}",
        server.log()
    );
    assert_eq!(outcome.json["received"], 0, "{}", outcome.json);
}

/// Two receivers (distinct link names) on `address`, both attached and credited before one
/// sender sends `count` messages, which the broker accepts; returns each receiver's report,
/// having asserted that each got every message (`msg-0`..) in order.
pub fn fan_out_to_two(server: &Server, address: &str, count: usize, tag: &str) -> Vec<Value> {
    fan_out_to_two_with(server, Peer::Proton, address, count, tag)
}

/// [`fan_out_to_two`] with `peer`'s receivers and sender.
pub fn fan_out_to_two_with(
    server: &Server,
    peer: Peer,
    address: &str,
    count: usize,
    tag: &str,
) -> Vec<Value> {
    let n = count.to_string();
    let mut receivers: Vec<Client> = ["first", "second"]
        .iter()
        .map(|which| {
            let name = format!("{tag}-{which}");
            server.spawn_with(peer, &["receive", address, &n, "--name", &name])
        })
        .collect();
    // `ready` comes once the broker has read each receiver's credit, so every subscription
    // exists before the first publish.
    for receiver in &mut receivers {
        receiver.wait_ready(server);
    }
    let sent = ok(
        server,
        server.run_with(peer, &["send", address, &n]),
        &format!("{peer:?} send {n} to {address}"),
    );
    assert_eq!(sent["accepted"], count, "{sent}");
    assert_eq!(sent["outcomes"]["accepted"], count, "{sent}");
    let expected: Vec<String> = (0..count).map(|i| format!("msg-{i}")).collect();
    receivers
        .into_iter()
        .zip(["first", "second"])
        .map(|(receiver, which)| {
            let received = ok(server, receiver.finish(server), which);
            assert_eq!(
                bodies(&received),
                expected,
                "the {which} receiver gets every message, in order"
            );
            received
        })
        .collect()
}

/// One HTTP/1.1 GET of `path` at `url` (`http://HOST:PORT`): the status code and the body
/// (a chunked body put together). The tests' own small client, so what they check does not
/// rest on the broker's.
pub fn http_get(url: &str, path: &str) -> (u16, String) {
    let authority = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream =
        std::net::TcpStream::connect(authority).unwrap_or_else(|e| panic!("{url}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("GET {path}: no HTTP head in {raw:?}"));
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("GET {path}: bad status line in {head:?}"));
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if !chunked {
        return (code, body.to_owned());
    }
    let mut out = String::new();
    let mut rest = body;
    loop {
        let (size, after) = rest.split_once("\r\n").expect("a chunk size line");
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return (code, out);
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}

/// Waits at most `within` for `child` to exit: its exit status, or `None` if it still runs.
pub fn wait_within(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// As [`wait_within`], but a child still running at the deadline is killed (and reaped).
pub fn wait_or_kill(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let status = wait_within(child, within);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    status
}

// --- Qpid Proton's own examples --------------------------------------------------------------

/// Where Debian's `libqpid-proton11-dev-examples` puts Proton's Python examples.
pub const EXAMPLES: &str = "/usr/share/proton/examples/python";
/// The most a run of one example may take.
pub const EXAMPLE_DEADLINE: Duration = Duration::from_secs(60);

/// Runs `script` (one of Proton's examples) with `args` to its end, bounded by
/// [`EXAMPLE_DEADLINE`]; returns its standard output, or fails with its output.
pub fn example(script: &str, args: &[&str]) -> String {
    require_proton();
    let path = std::path::Path::new(EXAMPLES).join(script);
    assert!(
        path.exists(),
        "{} is missing: install Debian's libqpid-proton11-dev-examples (./scripts/test.sh does)",
        path.display()
    );
    let out_file = temp_dir("example-out").join("stdout");
    let mut child = Command::new(PYTHON)
        .arg(&path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_file).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let Some(status) = wait_or_kill(&mut child, EXAMPLE_DEADLINE) else {
        panic!(
            "{script} {args:?} did not finish in {EXAMPLE_DEADLINE:?}; it printed:\n{}",
            std::fs::read_to_string(&out_file).unwrap_or_default()
        );
    };
    let stdout = std::fs::read_to_string(&out_file).unwrap_or_default();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(
        status.success(),
        "{script} {args:?} failed ({status}):\n{stdout}\n{stderr}"
    );
    stdout
}

/// `host:port/address`, as the examples' `-a` takes it.
pub fn example_address(server: &Server, address: &str) -> String {
    format!("{}/{address}", server.url.trim_start_matches("amqp://"))
}
