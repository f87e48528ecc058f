//! Black-box tests of local transactions (AMQP 1.0 part 4): Qpid Proton's own transaction
//! examples (`/usr/share/proton/examples/python/tx_send.py` and `tx_recv.py`, Debian package
//! `libqpid-proton11-dev-examples`) run unchanged against `sluice serve`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::process::Command;

use support::*;

const EXAMPLES: &str = "/usr/share/proton/examples/python";

/// Runs one of Proton's examples against `server`'s `myqueue`; its stdout.
fn example(server: &Server, script: &str, extra: &[&str]) -> String {
    let address = format!("{}/myqueue", server.url.trim_start_matches("amqp://"));
    let output = Command::new("/usr/bin/python3")
        .arg(format!("{EXAMPLES}/{script}"))
        .args(["-a", &address, "-m", "50", "-b", "10"])
        .args(extra)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{script} failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        server.log()
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn proton_tx_send_commits_50_messages_that_tx_recv_takes_in_transactions() {
    require_proton();
    let server = Server::start("txn-proton");
    let sent = example(&server, "tx_send.py", &[]);
    assert!(sent.contains("all messages committed"), "tx_send: {sent}");
    let received = example(&server, "tx_recv.py", &[]);
    let bodies: Vec<&str> = received
        .lines()
        .filter(|l| l.contains("sequence"))
        .collect();
    assert_eq!(bodies.len(), 50, "tx_recv: {received}");
    for i in 1..=50 {
        let want = format!("'sequence': {i}}}");
        assert_eq!(
            bodies.iter().filter(|b| b.ends_with(&want)).count(),
            1,
            "message {i} exactly once: {received}"
        );
    }
}
