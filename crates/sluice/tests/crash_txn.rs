//! The transaction crash test: a committed transaction survives `kill -9` whole, and no
//! transaction is ever partly there.
//!
//! Each cycle starts `sluice serve --data-dir` on the same directory, runs two Proton clients
//! (`proton_client.py tx`) that commit transactions of ten durable messages each to a durable
//! queue, one after another, kills the broker with SIGKILL at a random moment, starts it again
//! and drains the queue. Over every cycle, grouping the messages received by transaction:
//! - every transaction whose commit the broker answered is there with all ten messages;
//! - every transaction is there with ten messages or with none.
//!
//! `TXN_CRASH_CYCLES` sets the cycles (default 5); the moments of the kills come from a seed
//! printed at the start (`CRASH_SEED` repeats it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::{Server, require_proton, temp_dir};

const CLIENTS: usize = 2;
/// Messages in each transaction.
const PER_TXN: usize = 10;

fn start(data: &Path) -> Server {
    Server::start_with("crash-txn", &["--data-dir", data.to_str().unwrap()])
}

/// A transaction's name, "c<cycle>p<client>-t<index>", from one of its bodies ("...-<j>").
fn txn_of(body: &str) -> &str {
    body.rsplit_once('-').map_or(body, |(txn, _)| txn)
}

/// Every body in `myqueue`, taken and accepted until none comes for a few seconds.
fn drain(server: &Server) -> Vec<String> {
    let outcome = server
        .spawn_at(&server.url, &["receive", "myqueue", "1000000"], "3")
        .finish(server);
    assert_eq!(outcome.code(), Some(2), "the drain: {outcome:?}");
    outcome.json["bodies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_committed_transaction_survives_kill_9_whole_and_none_is_ever_partly_there() {
    require_proton();
    let cycles: usize = std::env::var("TXN_CRASH_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(5);
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("transaction crash test: {cycles} cycles, CRASH_SEED={seed}");
    let mut rng = seed | 1;
    let data = temp_dir("crash-txn-data").join("journal");
    // Every transaction whose commit was answered, and every message received.
    let mut committed: BTreeSet<String> = BTreeSet::new();
    let mut received: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for cycle in 0..cycles {
        let server = start(&data);
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let prefix = format!("c{cycle}p{c}-t");
                server.spawn(&[
                    "tx",
                    "myqueue",
                    "--send",
                    &PER_TXN.to_string(),
                    "--durable",
                    "--transactions",
                    "100000",
                    "--prefix",
                    &prefix,
                ])
            })
            .collect();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // Between a moment after the start and two seconds in.
        thread::sleep(Duration::from_millis(300 + rng % 1700));
        drop(server); // SIGKILL
        for (c, client) in clients.into_iter().enumerate() {
            let outcome = client.kill();
            // What it printed before the broker went: "committed <i>" once each answered.
            for line in outcome.stderr.lines() {
                if let Some(i) = line.strip_prefix("committed ") {
                    committed.insert(format!("c{cycle}p{c}-t{i}"));
                }
            }
        }
        let server = start(&data);
        for body in drain(&server) {
            let txn = txn_of(&body).to_string();
            received.entry(txn).or_default().insert(body);
        }
        drop(server);
    }
    eprintln!(
        "transaction crash test: {} commits answered, {} transactions found",
        committed.len(),
        received.len()
    );
    assert!(
        !committed.is_empty(),
        "no commit was answered: the test tested nothing"
    );
    let partial: Vec<(&String, usize)> = received
        .iter()
        .map(|(txn, bodies)| (txn, bodies.len()))
        .filter(|(_, n)| *n != PER_TXN)
        .collect();
    assert!(partial.is_empty(), "transactions partly there: {partial:?}");
    let lost: Vec<&String> = committed
        .iter()
        .filter(|t| !received.contains_key(*t))
        .collect();
    assert!(lost.is_empty(), "committed and not there: {lost:?}");
}
