//! The crash test: durable messages survive `kill -9`.
//!
//! Each cycle starts `sluice serve --data-dir` on the same directory, runs several producers
//! sending durable messages to a queue (each waits for its message's outcome) and a consumer
//! taking and accepting some, kills the broker with SIGKILL at a random moment, starts it
//! again and drains the queue. A Jepsen-style tally over every cycle then checks:
//! - **lost = 0**: every message the broker answered `accepted` was delivered, before the crash
//!   or after;
//! - **unexpected = 0**: nothing was delivered that no producer sent;
//! - duplicates only of messages delivered before a crash (their accept may not have reached
//!   the journal), never of one delivered only after.
//!
//! CI runs 20 cycles; `CRASH_CYCLES=200 cargo nextest run -p sluice --test crash` runs more.
//! The moment of each kill comes from a seed printed at the start (`CRASH_SEED` repeats it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fe2o3_amqp::types::messaging::{AmqpValue, Header, Message, Outcome};
use fe2o3_amqp::{Connection, Receiver, Sender, Session};
use support::{Server, temp_dir};

const PRODUCERS: usize = 3;
const QUEUE: &str = "myqueue";
/// How long a drain waits for another message before it concludes the queue is empty.
const QUIET: Duration = Duration::from_millis(1500);
/// The longest one step may take before the test gives up on it.
const WAIT: Duration = Duration::from_secs(30);

/// What the clients saw over every cycle.
#[derive(Default)]
struct Tally {
    /// Sent and answered `accepted`.
    accepted: HashSet<String>,
    /// Sent, whatever came of it.
    sent: HashSet<String>,
    /// Every delivery, with the cycle and whether it came before that cycle's crash.
    delivered: Vec<(String, usize, bool)>,
}

/// A small generator for the moments of the kills, so a failing run can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn durable(body: &str) -> Message<AmqpValue<String>> {
    Message::builder()
        .header(Header {
            durable: true,
            ..Default::default()
        })
        .value(body.to_string())
        .build()
}

async fn produce(url: String, producer: usize, cycle: usize, tally: Arc<Mutex<Tally>>) {
    let Ok(mut connection) = Connection::open(format!("crash-p{producer}"), url.as_str()).await
    else {
        return;
    };
    let Ok(mut session) = Session::begin(&mut connection).await else {
        return;
    };
    let Ok(mut sender) = Sender::attach(&mut session, format!("p{producer}"), QUEUE).await else {
        return;
    };
    for n in 0.. {
        let body = format!("c{cycle}-p{producer}-{n}");
        tally.lock().unwrap().sent.insert(body.clone());
        match tokio::time::timeout(WAIT, sender.send(durable(&body))).await {
            Ok(Ok(Outcome::Accepted(_))) => {
                tally.lock().unwrap().accepted.insert(body);
            }
            // The broker went away (or answered otherwise): this producer is done.
            _ => return,
        }
    }
}

async fn consume(url: String, cycle: usize, before_crash: bool, tally: Arc<Mutex<Tally>>) {
    let Ok(mut connection) = Connection::open(format!("crash-c{cycle}"), url.as_str()).await else {
        return;
    };
    let Ok(mut session) = Session::begin(&mut connection).await else {
        return;
    };
    let Ok(mut receiver) = Receiver::attach(&mut session, "consumer", QUEUE).await else {
        return;
    };
    loop {
        let wait = if before_crash { WAIT } else { QUIET };
        let Ok(Ok(delivery)) = tokio::time::timeout(wait, receiver.recv::<String>()).await else {
            break;
        };
        let body = delivery.body().clone();
        tally
            .lock()
            .unwrap()
            .delivered
            .push((body, cycle, before_crash));
        if receiver.accept(&delivery).await.is_err() {
            break;
        }
        if before_crash {
            // Slower than the producers together, so a backlog waits in the queue at the crash.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    if !before_crash {
        let _ = receiver.close().await;
        let _ = session.end().await;
        let _ = connection.close().await;
    }
}

fn start(data: &Path) -> Server {
    Server::start_with("crash", &["--data-dir", data.to_str().unwrap()])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_durable_messages_survive_kill_9() {
    let cycles: usize = std::env::var("CRASH_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(20);
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    eprintln!("crash test: {cycles} cycles, CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let data = temp_dir("crash-data").join("journal");
    let tally = Arc::new(Mutex::new(Tally::default()));
    for cycle in 0..cycles {
        let server = start(&data);
        let mut tasks = Vec::new();
        for producer in 0..PRODUCERS {
            tasks.push(tokio::spawn(produce(
                server.url.clone(),
                producer,
                cycle,
                tally.clone(),
            )));
        }
        tasks.push(tokio::spawn(consume(
            server.url.clone(),
            cycle,
            true,
            tally.clone(),
        )));
        // Somewhere between a moment after the start and a second and a half in.
        let run = Duration::from_millis(100 + rng.next() % 1400);
        tokio::time::sleep(run).await;
        drop(server); // SIGKILL
        // The clients of the killed broker are done; what they were waiting for never comes.
        tokio::time::sleep(Duration::from_millis(200)).await;
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
        // The broker comes back and gives everything it kept.
        let server = start(&data);
        tokio::time::timeout(
            WAIT * 4,
            consume(server.url.clone(), cycle, false, tally.clone()),
        )
        .await
        .expect("the drain after the restart did not finish");
        drop(server);
    }
    let tally = tally.lock().unwrap();
    let mut seen: HashMap<&str, Vec<(usize, bool)>> = HashMap::new();
    for (body, cycle, before) in &tally.delivered {
        seen.entry(body).or_default().push((*cycle, *before));
    }
    let lost: Vec<&String> = tally
        .accepted
        .iter()
        .filter(|b| !seen.contains_key(b.as_str()))
        .collect();
    let unexpected: Vec<&&str> = seen.keys().filter(|b| !tally.sent.contains(**b)).collect();
    // A duplicate is allowed only where the first delivery came before a crash.
    let bad_duplicates: Vec<(&&str, &Vec<(usize, bool)>)> = seen
        .iter()
        .filter(|(_, times)| times.len() > 1 && !times.first().is_some_and(|(_, before)| *before))
        .collect();
    let duplicates = seen.values().filter(|t| t.len() > 1).count();
    eprintln!(
        "crash test: {} sent, {} accepted, {} delivered, lost {}, duplicates {duplicates}, \
         unexpected {}",
        tally.sent.len(),
        tally.accepted.len(),
        seen.len(),
        lost.len(),
        unexpected.len()
    );
    assert!(
        tally.accepted.len() > cycles,
        "too little was accepted to mean anything"
    );
    let backlog = tally
        .delivered
        .iter()
        .filter(|(_, _, before)| !before)
        .count();
    assert!(
        backlog > 0,
        "nothing waited in the queue at any crash: the test tested nothing"
    );
    assert!(lost.is_empty(), "accepted and never delivered: {lost:?}");
    assert!(
        unexpected.is_empty(),
        "delivered but never sent: {unexpected:?}"
    );
    assert!(
        bad_duplicates.is_empty(),
        "delivered twice though not before a crash: {bad_duplicates:?}"
    );
}
