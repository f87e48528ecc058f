//! Qpid Proton's own Python examples (Debian's `libqpid-proton11-dev-examples`, under
//! /usr/share/proton/examples/python), run unchanged against the real binary: `colour_send.py`
//! and `selected_recv.py` (a JMS selector, `colour = 'green'`), and `queue_browser.py` (a
//! receiver with `distribution-mode: copy`). The browser example connects to
//! `localhost:5672/examples` and cannot be told otherwise, so that one test serves on the
//! fixed port 5672 of the loopback interface.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// Where Debian's package puts the examples.
const EXAMPLES: &str = "/usr/share/proton/examples/python";
/// The most a run of one example may take.
const EXAMPLE_DEADLINE: Duration = Duration::from_secs(60);

/// The test space, with the queue `examples` that the examples use by default.
fn space() -> String {
    format!(
        "{ADDRESS_SPACE}---
apiVersion: enmasse.io/v1beta1
kind: Address
metadata:
  name: myspace.examples
spec:
  address: examples
  type: queue
  plan: standard-small-queue
"
    )
}

/// Runs `script` (one of Proton's examples) with `args` to its end, bounded by
/// [`EXAMPLE_DEADLINE`]; returns its standard output, or fails with its output.
fn example(script: &str, args: &[&str]) -> String {
    require_proton();
    let path = PathBuf::from(EXAMPLES).join(script);
    assert!(
        path.exists(),
        "{} is missing: install Debian's libqpid-proton11-dev-examples (./scripts/test.sh does)",
        path.display()
    );
    let out_file = temp_dir("example-out").join("stdout");
    let mut child = Command::new("/usr/bin/python3")
        .arg(&path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_file).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + EXAMPLE_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{script} {args:?} did not finish in {EXAMPLE_DEADLINE:?}; it printed:\n{}",
                std::fs::read_to_string(&out_file).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
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
fn example_address(server: &Server, address: &str) -> String {
    format!("{}/{address}", server.url.trim_start_matches("amqp://"))
}

#[test]
fn selected_recv_gets_only_the_green_messages_and_leaves_the_red_ones() {
    let server = Server::start_config("proton-selected", &space(), &[]);
    let address = example_address(&server, "examples");
    let sent = example("colour_send.py", &["-a", &address, "-m", "10"]);
    assert!(sent.contains("all messages confirmed"), "{sent}");

    // Five of the ten are green (the odd-numbered ones): the selector's receiver gets exactly
    // those, in order.
    let green = example("selected_recv.py", &["-a", &address, "-m", "5"]);
    let lines: Vec<&str> = green.lines().collect();
    assert_eq!(
        lines,
        ["green 1", "green 3", "green 5", "green 7", "green 9"],
        "{green}"
    );

    // The red ones stayed for other consumers.
    let rest = ok(
        &server,
        server.run(&["receive", "examples", "5"]),
        "receive the rest",
    );
    let bodies = bodies(&rest);
    assert_eq!(
        bodies,
        ["red 2", "red 4", "red 6", "red 8", "red 10"],
        "{rest}"
    );
    assert_empty(&server, "examples");
}

#[test]
fn queue_browser_sees_every_message_and_consumes_none() {
    // The example connects to localhost:5672 and nothing else.
    let server = Server::start_config("proton-browser", &space(), &["--amqp", "127.0.0.1:5672"]);
    let address = example_address(&server, "examples");
    let sent = example("colour_send.py", &["-a", &address, "-m", "4"]);
    assert!(sent.contains("all messages confirmed"), "{sent}");

    // It prints each message and stops once its receiver has been drained at the end of the
    // queue.
    let browsed = example("queue_browser.py", &[]);
    for n in 1..=4 {
        let colour = if n % 2 == 1 { "green" } else { "red" };
        assert!(
            browsed.contains(&format!("{colour} {n}")),
            "the browser saw message {n}: {browsed}"
        );
    }
    assert_eq!(browsed.lines().count(), 4, "each message once: {browsed}");

    // A second browse sees them again; then a consumer takes all four.
    let again = example("queue_browser.py", &[]);
    assert_eq!(again.lines().count(), 4, "{again}");
    let taken = ok(
        &server,
        server.run(&["receive", "examples", "4"]),
        "consume after browsing",
    );
    assert_eq!(
        bodies(&taken),
        ["green 1", "red 2", "green 3", "red 4"],
        "{taken}"
    );
    assert_empty(&server, "examples");
}
