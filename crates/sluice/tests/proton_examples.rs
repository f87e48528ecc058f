//! Qpid Proton's own Python examples (Debian's `libqpid-proton11-dev-examples`, under
//! /usr/share/proton/examples/python), run unchanged against the real binary: `colour_send.py`
//! and `selected_recv.py` (a JMS selector, `colour = 'green'`), and `queue_browser.py` (a
//! receiver with `distribution-mode: copy`). The browser example connects to
//! `localhost:5672/examples` and cannot be told otherwise, so that one test serves on the
//! fixed port 5672 of the loopback interface.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use support::*;

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
