//! A whole run: receivers first (so a topic's subscribers exist before anything is sent),
//! then senders, a progress line, the wait for what is still in flight, and the report.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_codec::types::Symbol;
use sluice_engine::{Config, Connection, SaslConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::driver::drive;
use crate::message::{SLOT_PROPERTY, TRAILER_BYTES, Template};
use crate::options::BenchArgs;
use crate::pace::Pacer;
use crate::procstat::{SAMPLE_INTERVAL, Usage, Watch};
use crate::receiver::{Mode, Receiver, ReceiverStats};
use crate::report::{BrokerUsage, Latency, Report, latency_histogram, thousands};
use crate::sender::{Sender, SenderStats, Until};
use crate::syncprobe::{PROBE_BUDGET, PROBE_SYNCS, probe};
use crate::url::BenchUrl;

/// How long the end of a run waits with nothing arriving before it calls the rest lost.
const IDLE_END: Duration = Duration::from_secs(5);
/// The end of a run waits at most this many `--timeout`s for a backlog to drain.
const DRAIN_MAX_FACTOR: u32 = 4;
/// How often the progress line is redrawn.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// Counters every connection of a run shares, updated once per wake-up, not per message.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) sent: AtomicU64,
    pub(crate) received: AtomicU64,
    /// Sent messages the peer has settled, whatever the outcome.
    pub(crate) settled: AtomicU64,
    /// Receivers whose link is attached.
    pub(crate) ready: AtomicUsize,
    /// Receivers that failed (refused, disconnected).
    pub(crate) failed: AtomicUsize,
    /// The end of the warm-up, nanoseconds since the run's epoch (until set: never).
    pub(crate) warm_end_ns: AtomicU64,
}

/// Runs the benchmark `args` describe; an error is a run that could not start.
pub fn run(args: &BenchArgs) -> Result<Report, String> {
    let url = args
        .url
        .as_deref()
        .map(BenchUrl::parse)
        .transpose()
        .map_err(|e| e.to_string())?;
    if args.body_size < TRAILER_BYTES {
        return Err(format!(
            "--body-size must be at least {TRAILER_BYTES}: the sequence number and send time travel in the body"
        ));
    }
    if !(args.duration > 0.0 && args.duration.is_finite()) {
        return Err("--duration must be a positive number of seconds".into());
    }
    if args.txn_batch.is_some() && (args.presettled || url.is_none()) {
        return Err("--txn-batch needs a broker URL and unsettled sends (not --presettled)".into());
    }
    if args.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        return Err("--rate must be a positive number of messages a second".into());
    }
    // The disk first, while nothing else runs.
    let disk_sync = args
        .sync_probe
        .as_deref()
        .map(|dir| {
            probe(dir, PROBE_SYNCS, PROBE_BUDGET)
                .map_err(|e| format!("--sync-probe {}: {e}", dir.display()))
        })
        .transpose()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads(args))
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let mut report = runtime.block_on(run_async(args, url))?;
    report.disk_sync = disk_sync;
    Ok(report)
}

/// The harness's threads. A paced run uses one: its load is a fraction of what one thread
/// drives, and a second thread on a machine the broker shares only competes with the broker for
/// the CPUs, its preemptions adding milliseconds to the latencies measured.
fn worker_threads(args: &BenchArgs) -> usize {
    match (args.threads, args.rate) {
        (Some(n), _) => usize::from(n),
        (None, Some(_)) => 1,
        (None, None) => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

pub(crate) fn client_config(name: String, url: Option<&BenchUrl>, host: &str) -> Config {
    let sasl = match url.and_then(|u| u.credentials.as_ref()) {
        Some((user, password)) => SaslConfig::Client {
            mechanism: Symbol::from_static("PLAIN"),
            initial_response: Some(Bytes::from(format!("\0{user}\0{password}"))),
        },
        None => SaslConfig::Client {
            mechanism: Symbol::from_static("ANONYMOUS"),
            initial_response: Some(Bytes::from_static(b"anonymous")),
        },
    };
    let mut config = Config::client(name, sasl);
    config.hostname = Some(host.to_string());
    config
}

pub(crate) async fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, String> {
    match tokio::time::timeout(timeout, TcpStream::connect((host, port))).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(format!("cannot connect to {host}:{port}: {e}")),
        Err(_) => Err(format!("connecting to {host}:{port} timed out")),
    }
}

/// Peer-to-peer: accepts `pairs` sender connections and receives on each, until stopped.
fn serve_peers(
    listener: TcpListener,
    pairs: usize,
    window: u32,
    epoch: Instant,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<ReceiverStats> {
    tokio::spawn(async move {
        let mut tasks = JoinSet::new();
        for n in 0..pairs {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop.changed() => break,
            };
            let Ok((stream, _)) = accepted else { break };
            let mut config = Config::server(format!("sluice-bench-peer-{n}"));
            config.sasl = SaslConfig::Server {
                mechanisms: vec![Symbol::from_static("ANONYMOUS")],
                allow_no_sasl: true,
            };
            let mut role = Receiver::new(Mode::Server, window, epoch, shared.clone());
            let stop = stop.clone();
            tasks.spawn(async move {
                drive(
                    stream,
                    Connection::server(config, Instant::now()),
                    &mut role,
                    stop,
                )
                .await;
                role.stats
            });
        }
        merge(tasks).await
    })
}

async fn merge(mut tasks: JoinSet<ReceiverStats>) -> ReceiverStats {
    let mut all = ReceiverStats::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok(stats) = joined {
            all.merge(&stats);
        }
    }
    all
}

async fn run_async(args: &BenchArgs, url: Option<BenchUrl>) -> Result<Report, String> {
    let timeout = Duration::from_secs_f64(args.timeout.max(0.1));
    let warmup = Duration::from_secs_f64(
        args.warmup
            .unwrap_or(if args.count.is_some() { 0.0 } else { 1.0 })
            .max(0.0),
    );
    let pairs = args.pairs as usize;
    let epoch = Instant::now();
    let shared = Arc::new(Shared::default());
    shared.warm_end_ns.store(u64::MAX, Ordering::Relaxed);
    let (stop_tx, stop_rx) = watch::channel(false);

    // Receivers first, attached before anything is sent.
    let (host, port, receivers_per, receivers) = match &url {
        Some(u) => {
            let per = args.receivers as usize;
            let mut tasks = JoinSet::new();
            for i in 0..pairs {
                for r in 0..per {
                    let stream = connect(&u.host, u.port, timeout).await?;
                    let name = format!("sluice-bench-{}-receiver-{i}-{r}", std::process::id());
                    let engine =
                        Connection::client(client_config(name, Some(u), &u.host), Instant::now());
                    let mode = Mode::Client {
                        address: u.address_for(i),
                        index: i * per + r,
                        selector: args
                            .select
                            .map(|n| format!("{SLOT_PROPERTY} = {}", r as u32 % n)),
                    };
                    let mut role = Receiver::new(mode, args.credit, epoch, shared.clone());
                    let stop = stop_rx.clone();
                    tasks.spawn(async move {
                        drive(stream, engine, &mut role, stop).await;
                        role.stats
                    });
                }
            }
            let total = pairs * per;
            let deadline = Instant::now() + timeout;
            loop {
                let ready = shared.ready.load(Ordering::Relaxed);
                let failed = shared.failed.load(Ordering::Relaxed);
                if ready + failed >= total || Instant::now() >= deadline {
                    if ready < total {
                        let _ = stop_tx.send(true);
                        let stats = merge(tasks).await;
                        let mut errors = stats.errors;
                        if errors.is_empty() {
                            errors.push(format!(
                                "only {ready} of {total} receivers attached within {timeout:?}"
                            ));
                        }
                        return Ok(Report {
                            errors,
                            ..Report::default()
                        });
                    }
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let handle = tokio::spawn(merge(tasks));
            (u.host.clone(), u.port, per, handle)
        }
        None => {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| format!("cannot listen for the peer-to-peer run: {e}"))?;
            let port = listener.local_addr().map_err(|e| e.to_string())?.port();
            let handle = serve_peers(
                listener,
                pairs,
                args.credit,
                epoch,
                shared.clone(),
                stop_rx.clone(),
            );
            ("127.0.0.1".to_string(), port, 1, handle)
        }
    };

    // The clock starts now.
    let start = Instant::now();
    let warm_end = start + warmup;
    shared.warm_end_ns.store(
        warm_end.duration_since(epoch).as_nanos() as u64,
        Ordering::Relaxed,
    );
    let until = match args.count {
        Some(n) => Until::Count(n),
        None => Until::Time(warm_end + Duration::from_secs_f64(args.duration)),
    };
    let watch = args
        .pid
        .map(|pid| watch_broker(pid, warm_end, stop_rx.clone()));
    let template = Template::slotted(args.body_size, args.durable, args.select)
        .ok_or_else(|| format!("--body-size must be at least {TRAILER_BYTES}"))?;
    let mut senders: JoinSet<SenderStats> = JoinSet::new();
    for i in 0..pairs {
        let stream = connect(&host, port, timeout).await?;
        let name = format!("sluice-bench-{}-sender-{i}", std::process::id());
        let engine = Connection::client(client_config(name, url.as_ref(), &host), Instant::now());
        let address = match &url {
            Some(u) => u.address_for(i),
            None => format!("peer-to-peer/{i}"),
        };
        let pacer = args.rate.and_then(|r| Pacer::new(r / pairs as f64, start));
        let mut role = Sender::new(
            address,
            i as u64,
            args.presettled,
            template.clone(),
            pacer,
            epoch,
            warm_end,
            until,
            shared.clone(),
        )
        .transactional(args.txn_batch);
        let stop = stop_rx.clone();
        senders.spawn(async move {
            drive(stream, engine, &mut role, stop).await;
            role.stats
        });
    }
    let progress = (!args.json && std::io::stderr().is_terminal())
        .then(|| tokio::spawn(show_progress(shared.clone(), start, stop_rx.clone())));

    let mut sent_stats = Vec::new();
    while let Some(joined) = senders.join_next().await {
        if let Ok(stats) = joined {
            sent_stats.push(stats);
        }
    }
    let sent: u64 = sent_stats.iter().map(|s| s.sent).sum();
    let fanout = match (receivers_per, args.fanout) {
        (0, _) => 0,
        (n, true) => n as u64,
        (_, false) => 1,
    };
    let expected = sent * fanout;

    // What is still in flight arrives, or nothing more comes for a while.
    let idle_limit = IDLE_END.min(timeout);
    let mut last_count = shared.received.load(Ordering::Relaxed);
    let mut last_change = Instant::now();
    // A backlog that trickles out for ever still ends: at most this long after sending.
    let drain_deadline = last_change + DRAIN_MAX_FACTOR * timeout;
    loop {
        let now_count = shared.received.load(Ordering::Relaxed);
        if now_count >= expected || shared.failed.load(Ordering::Relaxed) > 0 {
            break;
        }
        if now_count != last_count {
            last_count = now_count;
            last_change = Instant::now();
        } else if last_change.elapsed() >= idle_limit {
            break;
        }
        if Instant::now() >= drain_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = stop_tx.send(true);
    let received = receivers.await.unwrap_or_else(|_| ReceiverStats::new());
    let usage = match watch {
        Some(w) => w.await.ok().flatten(),
        None => None,
    };
    if let Some(p) = progress {
        let _ = p.await;
    }
    Ok(report(
        &sent_stats,
        &received,
        expected,
        args.presettled,
        warm_end,
        usage,
    ))
}

fn report(
    senders: &[SenderStats],
    received: &ReceiverStats,
    expected: u64,
    presettled: bool,
    warm_end: Instant,
    usage: Option<Usage>,
) -> Report {
    let secs = |from: Instant, to: Option<Instant>| {
        to.map_or(0.0, |to| to.saturating_duration_since(from).as_secs_f64())
    };
    let per_second = |n: u64, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
    let sent: u64 = senders.iter().map(|s| s.sent).sum();
    let measured_sent: u64 = senders.iter().map(|s| s.measured).sum();
    let last_send = senders.iter().filter_map(|s| s.last_send).max();
    let accepted: u64 = senders.iter().map(|s| s.accepted).sum();
    let commits: u64 = senders.iter().map(|s| s.commits).sum();
    let mut confirm = latency_histogram();
    for s in senders {
        let _ = confirm.add(&s.confirm);
    }
    let mut errors: Vec<String> = senders.iter().flat_map(|s| s.errors.clone()).collect();
    errors.extend(received.errors.iter().cloned());
    if !presettled {
        let mut refused: Vec<(String, u64)> = Vec::new();
        for (name, count) in senders.iter().flat_map(|s| s.refused.iter()) {
            match refused.iter_mut().find(|(n, _)| n == name) {
                Some((_, c)) => *c += count,
                None => refused.push((name.clone(), *count)),
            }
        }
        for (name, count) in refused {
            errors.push(format!("{} sends were {name}", thousands(count)));
        }
    }
    if received.received < expected {
        errors.push(format!(
            "received {} of the {} messages expected",
            thousands(received.received),
            thousands(expected)
        ));
    }
    let e2e_secs = secs(warm_end, received.last_received);
    Report {
        sent,
        received: received.received,
        accepted,
        commits,
        sender_rate: per_second(measured_sent, secs(warm_end, last_send)),
        receiver_rate: received.first_measured.map_or(0.0, |first| {
            per_second(received.measured, secs(first, received.last_received))
        }),
        end_to_end_rate: per_second(received.measured, e2e_secs),
        latency: Latency::from_histogram(&received.latency),
        confirm: Latency::from_histogram(&confirm),
        presettled,
        disk_sync: None,
        broker: usage.map(|u| BrokerUsage {
            cpu_percent: u.cpu_percent,
            peak_rss_mib: u.peak_rss_kib as f64 / 1024.0,
        }),
        duration_s: e2e_secs,
        errors,
    }
}

/// Samples the broker every [`SAMPLE_INTERVAL`] from the end of the warm-up until the run
/// stops.
fn watch_broker(
    pid: u32,
    warm_end: Instant,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<Option<Usage>> {
    tokio::spawn(async move {
        let mut w = Watch::new(pid);
        tokio::time::sleep_until(warm_end.into()).await;
        w.restart();
        loop {
            tokio::select! {
                () = tokio::time::sleep(SAMPLE_INTERVAL) => w.tick(),
                _ = stop.changed() => {
                    w.tick();
                    return w.usage();
                }
            }
        }
    })
}

/// A progress line on a terminal: elapsed time, messages sent and received, rates.
async fn show_progress(shared: Arc<Shared>, start: Instant, mut stop: watch::Receiver<bool>) {
    let mut err = std::io::stderr();
    let mut last = (0u64, Instant::now());
    loop {
        tokio::select! {
            () = tokio::time::sleep(PROGRESS_INTERVAL) => {}
            _ = stop.changed() => break,
        }
        let received = shared.received.load(Ordering::Relaxed);
        let now = Instant::now();
        let rate = (received - last.0.min(received)) as f64
            / now.duration_since(last.1).as_secs_f64().max(1e-3);
        last = (received, now);
        let _ = write!(
            err,
            "\r{:>6.1} s  sent {:>12}  received {:>12}  {:>10} msg/s ",
            start.elapsed().as_secs_f64(),
            thousands(shared.sent.load(Ordering::Relaxed)),
            thousands(received),
            thousands(rate as u64)
        );
        let _ = err.flush();
    }
    let _ = write!(err, "\r{:80}\r", "");
    let _ = err.flush();
}
