//! Black-box tests of `sluice hostile` against a running `sluice serve`: each scenario, at a
//! tiny size, completes, closes what it opened and reports its readings. What the figures
//! are is the benchmarks' business, never asserted here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::process::Command;

use serde_json::Value;
use support::*;

/// Runs `sluice hostile SCENARIO URL --pid PID ARGS --json` against `server`; its report,
/// after checking that it exited 0 with readings and the figures named in `figures`.
fn hostile(server: &Server, scenario: &str, address: &str, args: &[&str], figures: &[&str]) {
    let url = format!("{}/{address}", server.url);
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "hostile",
            scenario,
            &url,
            "--pid",
            &server.pid().to_string(),
        ])
        .args(args)
        .args(["--json", "--timeout", "60", "--settle", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "hostile printed no JSON ({e}): stdout {stdout:?}, stderr {:?}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert_eq!(report["scenario"], scenario, "{report}");
    assert_eq!(report["errors"].as_array().unwrap().len(), 0, "{report}");
    let rss = report["rss"].as_array().unwrap();
    assert!(rss.len() >= 3, "{report}");
    assert!(rss.iter().all(|r| r["kib"].as_u64() > Some(0)), "{report}");
    for figure in figures {
        assert!(report["figures"][figure].is_number(), "{figure}: {report}");
    }
    // Everything it opened is closed again (the broker has noticed within 10 s).
    let sockets_at_start = report["figures"]["broker_sockets_at_start"]
        .as_u64()
        .unwrap();
    server.wait_open_sockets(sockets_at_start as usize);
}

#[test]
fn held_publishes_runs_at_a_tiny_size() {
    let server = Server::start("hostile-held");
    let args = [
        "--fill",
        "20",
        "--links",
        "2",
        "--count",
        "5",
        "--body-size",
        "1000",
    ];
    let figures = ["round_2_held_mib", "round_2_kept_after_disconnect_mib"];
    hostile(&server, "held-publishes", "myqueue", &args, &figures);
}

#[test]
fn topic_subscribers_runs_at_a_tiny_size() {
    let server = Server::start("hostile-topic");
    let args = [
        "--receivers",
        "20",
        "--count",
        "10",
        "--probe-address",
        "myqueue",
    ];
    let figures = [
        "rss_per_buffered_entry_bytes",
        "probe_worst_rtt_while_publishing_ms",
    ];
    hostile(&server, "topic-subscribers", "mytopic", &args, &figures);
}

#[test]
fn partial_deliveries_runs_at_a_tiny_size() {
    let server = Server::start("hostile-partial");
    let args = [
        "--links",
        "2",
        "--link-bytes",
        "300000",
        "--tiny-frames",
        "5000",
    ];
    let figures = ["large_peak_mib", "tiny_rss_per_payload_byte_bytes"];
    hostile(&server, "partial-deliveries", "myqueue", &args, &figures);
}

#[test]
fn idle_connections_runs_at_a_tiny_size() {
    let server = Server::start("hostile-idle");
    let args = ["--connections", "10"];
    let figures = [
        "round_2_rss_per_connection_bytes",
        "round_2_growth_per_connection_bytes",
        "round_2_closed_above_start_mib",
    ];
    hostile(&server, "idle-connections", "myqueue", &args, &figures);
}
