//! Black-box tests of local transactions (AMQP 1.0 part 4): Qpid Proton's own transaction
//! examples (`/usr/share/proton/examples/python/tx_send.py` and `tx_recv.py`, Debian package
//! `libqpid-proton11-dev-examples`) run unchanged against `sluice serve`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use support::*;

/// Runs one of Proton's examples against `server`'s `myqueue`, 50 messages in transactions of
/// 10; its stdout.
fn tx_example(server: &Server, script: &str) -> String {
    let address = example_address(server, "myqueue");
    example(script, &["-a", &address, "-m", "50", "-b", "10"])
}

#[test]
fn proton_tx_send_commits_50_messages_that_tx_recv_takes_in_transactions() {
    require_proton();
    let server = Server::start("txn-proton");
    let sent = tx_example(&server, "tx_send.py");
    assert!(sent.contains("all messages committed"), "tx_send: {sent}");
    let received = tx_example(&server, "tx_recv.py");
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
