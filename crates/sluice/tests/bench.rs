//! Black-box tests of `sluice bench` against a running `sluice serve` and peer to peer: every
//! message sent is received; nothing here asserts a speed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::process::Command;

use serde_json::Value;
use support::*;

/// Runs `sluice bench ARGS --json`; its exit code and report.
fn bench(args: &[&str]) -> (Option<i32>, Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("bench")
        .args(args)
        .args(["--json", "--timeout", "20"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "bench printed no JSON ({e}): stdout {stdout:?}, stderr {:?}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code(), report)
}

fn assert_all_received(code: Option<i32>, report: &Value, sent: u64, received: u64) {
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["sent"], sent, "{report}");
    assert_eq!(report["received"], received, "{report}");
    assert_eq!(report["errors"].as_array().unwrap().len(), 0, "{report}");
    assert!(report["latency_us"]["p50"].as_u64().is_some(), "{report}");
}

#[test]
fn bench_through_a_queue_receives_every_message_sent() {
    let server = Server::start("bench-queue");
    let url = format!("{}/myqueue", server.url);
    let (code, report) = bench(&[&url, "--count", "3000"]);
    assert_all_received(code, &report, 3000, 3000);
    assert_eq!(
        report["accepted"], 3000,
        "every unsettled send accepted: {report}"
    );
    assert_queue_empty(&server);
}

/// `--select 4`: each of four receivers selects its quarter (`slot = r`), so together they
/// take every message; and the messages carry the `slot` a selector reads, which a pyamqp
/// receiver selecting `slot = 3` shows.
#[test]
fn bench_receivers_that_select_a_slot_each_take_every_message_together() {
    let server = Server::start("bench-select");
    let url = format!("{}/myqueue", server.url);
    let (code, report) = bench(&[&url, "--count", "1000", "--receivers", "4", "--select", "4"]);
    assert_all_received(code, &report, 1000, 1000);
    assert_queue_empty(&server);

    let (code, report) = bench(&[&url, "--count", "40", "--receivers", "0", "--select", "4"]);
    assert_eq!(code, Some(0), "{report}");
    let what = "pyamqp receive myqueue 10 --selector 'slot = 3'";
    let args = ["receive", "myqueue", "10", "--selector", "slot = 3"];
    let third = ok(&server, server.run_with(Peer::Pyamqp, &args), what);
    assert_eq!(third["received"], 10, "{third}");
    let more = server
        .spawn_peer(
            Peer::Pyamqp,
            &server.url,
            &["receive", "myqueue", "1", "--selector", "slot = 3"],
            "1",
        )
        .finish(&server);
    assert_eq!(
        more.code(),
        Some(2),
        "no eleventh message in slot 3: {more:?}"
    );
    let rest = ok(
        &server,
        server.run_with(Peer::Pyamqp, &["receive", "myqueue", "30"]),
        "rest",
    );
    assert_eq!(rest["received"], 30, "{rest}");
    assert_queue_empty(&server);
}

/// `--txn-batch 10`: each sender declares, sends ten, commits; the last transaction holds
/// the five left over.
#[test]
fn bench_sends_in_transactions_and_counts_the_commits() {
    let server = Server::start("bench-txn");
    let url = format!("{}/myqueue", server.url);
    let (code, report) = bench(&[&url, "--count", "205", "--txn-batch", "10"]);
    assert_all_received(code, &report, 205, 205);
    assert_eq!(report["accepted"], 205, "{report}");
    assert_eq!(report["commits"], 21, "{report}");
    assert_queue_empty(&server);
}

#[test]
fn bench_pairs_on_several_queues_and_a_topic_with_fanout() {
    let server = Server::start("bench-pairs");
    // Three subscribers each get every message of the topic.
    let url = format!("{}/mytopic", server.url);
    let (code, report) = bench(&[&url, "--count", "1000", "--receivers", "3", "--fanout"]);
    assert_all_received(code, &report, 1000, 3000);

    let url = format!("{}/myqueue", server.url);
    let (code, report) = bench(&[&url, "--count", "500", "--pairs", "2", "--presettled"]);
    // Two senders on one queue, two receivers sharing it.
    assert_all_received(code, &report, 1000, 1000);
}

#[test]
fn bench_peer_to_peer_needs_no_broker() {
    let (code, report) = bench(&["--count", "5000", "--body-size", "1024", "--pairs", "2"]);
    assert_all_received(code, &report, 10_000, 10_000);
}

#[test]
fn bench_at_a_fixed_rate_sends_at_that_rate() {
    let server = Server::start("bench-rate");
    let url = format!("{}/myanycast", server.url);
    // 200 messages at 1,000 a second take about 0.2 s; only the count is asserted.
    let (code, report) = bench(&[&url, "--count", "200", "--rate", "1000"]);
    assert_all_received(code, &report, 200, 200);
}

#[test]
fn bench_on_an_undefined_address_reports_the_refusal_and_exits_1() {
    let server = Server::start("bench-refused");
    let url = format!("{}/nowhere", server.url);
    let (code, report) = bench(&[&url, "--count", "10"]);
    assert_eq!(code, Some(1), "{report}");
    let errors = report["errors"].to_string();
    assert!(errors.contains("amqp:not-found"), "{report}");
}

#[test]
fn bench_refuses_bad_options_with_a_clear_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["bench", "amqps://h/q", "--count", "1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("only amqp:// URLs"), "{stderr}");
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["bench", "--body-size", "8", "--count", "1"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("at least 16"));
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["bench", "--txn-batch", "10", "--count", "1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--txn-batch needs a broker URL"),
        "{stderr}"
    );
}
