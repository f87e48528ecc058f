//! `topic-subscribers`: topic receivers that never grant credit, then a burst published to
//! the topic.
//!
//! Every receiver of a topic is its own subscription; one that grants no credit takes nothing,
//! so the topic buffers each message for it. What is measured is what attaching such receivers
//! costs, what each message buffered for each of them costs, and what the burst does to an
//! unrelated client meanwhile: a separate connection sending one message at a time to a queue
//! (`--probe-address`) and receiving it back, every `--probe-interval-ms`, whose worst round
//! trip is reported per step.
//!
//! Steps: the probe starts; `--receivers` receivers attach on `--connections` connections
//! (one session each) and grant nothing; one publisher sends `--count` unsettled messages of
//! `--body-size` to the topic and waits for their outcomes; the broker is read once settled;
//! then everything closes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use std::time::Instant;

use sluice_codec::messaging::{Source, Target};
use sluice_codec::transport::{
    Accepted, Attach, AttachTarget, DeliveryTag, Role as LinkRole, SenderSettleMode,
};
use sluice_engine::{Connection, Event, LinkId};

use super::CommonArgs;
use super::clients::Clients;
use super::measure::{Measure, Progress};
use super::quiet::{Quiet, receiver_attach};
use crate::driver::{Role, describe};
use crate::message::{TRAILER_BYTES, Template};
use crate::run::Shared;
use crate::sender::{Sender, Until};

/// Arguments of `sluice hostile topic-subscribers`.
#[derive(Debug, Clone, clap::Args)]
pub struct TopicSubscribersArgs {
    /// amqp://host:port/TOPIC: the topic to subscribe to and publish to.
    #[arg(value_name = "URL", default_value = "amqp://127.0.0.1:5672/topic")]
    pub url: String,
    /// Receivers that grant no credit.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub receivers: u32,
    /// Connections the receivers share (one session each; at most 4,096 links a session).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub connections: u32,
    /// Messages published to the topic.
    #[arg(long, default_value_t = 2_000)]
    pub count: u64,
    /// Body size of each, bytes.
    #[arg(long, default_value_t = 1_024)]
    pub body_size: usize,
    /// The queue the unrelated client's round trips go through (on the same host).
    #[arg(long, default_value = "queue")]
    pub probe_address: String,
    /// Milliseconds from one of the probe's round trips to the next: paced, so the probe
    /// itself costs the broker next to nothing.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub probe_interval_ms: u64,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}

/// The probe's record, shared with the scenario: its worst round trip since the last look.
#[derive(Debug, Default)]
struct ProbeStats {
    round_trips: AtomicU64,
    worst_us: AtomicU64,
    /// When the round trip in flight was sent, microseconds since `epoch` plus one (0: none).
    in_flight_since_us: AtomicU64,
    /// The probe could not attach or was detached: the scenario runs without it.
    failed: AtomicBool,
}

impl ProbeStats {
    /// The worst round trip since the last call, counting one still in flight as lasting
    /// until now; starts over.
    fn take_worst_us(&self, epoch: Instant) -> u64 {
        let since = self.in_flight_since_us.load(Ordering::Relaxed);
        let waiting = match since {
            0 => 0,
            s => (epoch.elapsed().as_micros() as u64).saturating_sub(s - 1),
        };
        self.worst_us.swap(0, Ordering::Relaxed).max(waiting)
    }
}

/// The unrelated client: one message at a time to a queue and back, each round trip timed,
/// one every `interval`.
struct Probe {
    address: String,
    message: Vec<u8>,
    interval: Duration,
    next_at: Instant,
    epoch: Instant,
    stats: Arc<ProbeStats>,
    sender: Option<LinkId>,
    receiver: Option<LinkId>,
    sent_at: Option<Instant>,
    next_tag: u64,
    errors: Vec<String>,
    stopped: bool,
}

/// Credit the probe's receiver keeps: it only ever has one message in flight.
const PROBE_CREDIT: u32 = 10;

impl Role for Probe {
    fn on_event(&mut self, engine: &mut Connection, event: Event, now: Instant) {
        match event {
            Event::Opened { .. } => {
                let session = match engine.begin(now) {
                    Ok(s) => s,
                    Err(e) => return self.error(format!("cannot begin a session: {e}")),
                };
                let send = Attach {
                    name: "sluice-hostile-probe-sender".into(),
                    role: LinkRole::Sender,
                    snd_settle_mode: SenderSettleMode::Unsettled,
                    source: Some(Source::default()),
                    target: Some(AttachTarget::Target(Target {
                        address: Some(self.address.as_str().into()),
                        ..Default::default()
                    })),
                    ..Default::default()
                };
                let receive = receiver_attach("sluice-hostile-probe-receiver", &self.address);
                match (
                    engine.attach(session, send, now),
                    engine.attach(session, receive, now),
                ) {
                    (Ok(s), Ok(r)) => {
                        self.sender = Some(s);
                        self.receiver = Some(r);
                    }
                    (Err(e), _) | (_, Err(e)) => self.error(format!("cannot attach: {e}")),
                }
            }
            Event::LinkAttached {
                link,
                remote_first: false,
                ..
            } if Some(link) == self.receiver => {
                engine.grant_credit(link, PROBE_CREDIT, false, now);
            }
            Event::Delivery {
                link, delivery_id, ..
            } if Some(link) == self.receiver => {
                engine.disposition(
                    link.session,
                    LinkRole::Receiver,
                    delivery_id,
                    delivery_id,
                    true,
                    Some(Accepted {}.into()),
                    now,
                );
                if engine.credit(link) < PROBE_CREDIT / 2 {
                    engine.grant_credit(link, PROBE_CREDIT, false, now);
                }
                if let Some(at) = self.sent_at.take() {
                    let us = now.duration_since(at).as_micros() as u64;
                    self.stats.worst_us.fetch_max(us, Ordering::Relaxed);
                    self.stats.round_trips.fetch_add(1, Ordering::Relaxed);
                    self.stats.in_flight_since_us.store(0, Ordering::Relaxed);
                }
            }
            Event::LinkDetached { error, .. } => {
                let why = error.as_ref().map_or("no reason given".into(), describe);
                self.error(format!("the probe was detached: {why}"));
            }
            _ => {}
        }
    }

    fn pump(&mut self, engine: &mut Connection, now: Instant) -> Option<Instant> {
        let link = self.sender?;
        if self.stopped || self.sent_at.is_some() || engine.sendable(link) == 0 {
            return None;
        }
        if now < self.next_at {
            return Some(self.next_at);
        }
        let tag = DeliveryTag::from_u64(self.next_tag);
        if engine.send(link, tag, &self.message, false, now).is_ok() {
            self.next_tag += 1;
            self.sent_at = Some(now);
            self.next_at = now + self.interval;
            let since = now.duration_since(self.epoch).as_micros() as u64 + 1;
            self.stats
                .in_flight_since_us
                .store(since, Ordering::Relaxed);
        }
        None
    }

    fn finished(&self) -> bool {
        self.stopped
    }

    fn stop(&mut self) {
        self.stopped = true;
    }

    fn error(&mut self, what: String) {
        self.stats.failed.store(true, Ordering::Relaxed);
        if self.errors.len() < 3 {
            self.errors.push(what);
        }
    }
}

/// How long the publisher may go without an answer before the topic is taken to be holding
/// it back (past its buffer for the slowest receiver).
const PUBLISH_STALL: Duration = Duration::from_secs(10);

/// Runs the scenario.
pub(crate) async fn run(args: &TopicSubscribersArgs, m: &mut Measure) -> Result<(), String> {
    let template = Template::new(args.body_size, false)
        .ok_or_else(|| format!("--body-size must be at least {TRAILER_BYTES}"))?;
    let pid = std::process::id();
    m.read("start", "start").await;

    let epoch = Instant::now();
    let probe_stats = Arc::new(ProbeStats::default());
    let mut probe = Clients::new();
    let mut message =
        Template::new(TRAILER_BYTES, false).ok_or("the probe's message has a trailer")?;
    let role = Probe {
        address: args.probe_address.clone(),
        message: message.fill(0, 0).to_vec(),
        interval: Duration::from_millis(args.probe_interval_ms),
        next_at: epoch,
        epoch,
        stats: probe_stats.clone(),
        sender: None,
        receiver: None,
        sent_at: None,
        next_tag: 0,
        errors: Vec::new(),
        stopped: false,
    };
    probe
        .open(
            &m.url,
            format!("sluice-hostile-{pid}-probe"),
            role,
            m.connect_timeout(),
        )
        .await?;
    let probing = |s: &ProbeStats| {
        s.round_trips.load(Ordering::Relaxed) > 0 || s.failed.load(Ordering::Relaxed)
    };
    m.wait("the probe made its first round trip", || {
        probing(&probe_stats)
    })
    .await;
    probe_stats.take_worst_us(epoch);

    // The receivers, as evenly as they go over the connections.
    let shared = Arc::new(Shared::default());
    let mut subscribers = Clients::new();
    let (per, extra) = (
        args.receivers / args.connections,
        args.receivers % args.connections,
    );
    let mut first = 0;
    for c in 0..args.connections {
        let links = per + u32::from(c < extra);
        let role = Quiet::new(&m.url.address, first, links, &shared);
        first += links;
        let name = format!("sluice-hostile-{pid}-subscribers-{c}");
        subscribers
            .open(&m.url, name, role, m.connect_timeout())
            .await?;
    }
    let total = args.receivers as usize;
    let settled =
        |s: &Shared| s.ready.load(Ordering::Relaxed) + s.failed.load(Ordering::Relaxed) >= total;
    m.wait("the receivers attached", || settled(&shared)).await;
    let attached = shared.ready.load(Ordering::Relaxed);
    m.read(
        "subscribed",
        format!("{attached} receivers attached, no credit"),
    )
    .await;
    m.report.figure("receivers_attached", attached as f64);
    m.report.figure(
        "probe_worst_rtt_while_attaching_ms",
        probe_stats.take_worst_us(epoch) as f64 / 1000.0,
    );

    // The burst.
    m.start_peak();
    let published = Arc::new(Shared::default());
    let mut publisher = Clients::new();
    let role = Sender::new(
        m.url.address.clone(),
        0,
        false,
        template,
        None,
        epoch,
        epoch,
        Until::Count(args.count),
        published.clone(),
    );
    publisher
        .open(
            &m.url,
            format!("sluice-hostile-{pid}-publisher"),
            role,
            m.connect_timeout(),
        )
        .await?;
    let answered = || published.settled.load(Ordering::Relaxed);
    let progress = m
        .wait_progress(
            "the publishes were answered",
            answered,
            args.count,
            PUBLISH_STALL,
        )
        .await;
    let answered = answered();
    if progress == Progress::Stalled {
        m.report.notes.push(format!(
            "the topic answered {answered} of {} publishes and then held the publisher back",
            args.count
        ));
    }
    m.read(
        "published",
        format!("{answered} published, {attached} receivers"),
    )
    .await;
    m.peak("publish_peak", "publishing: peak");
    m.report.figure(
        "probe_worst_rtt_while_publishing_ms",
        probe_stats.take_worst_us(epoch) as f64 / 1000.0,
    );
    m.report.figure("published_messages", answered as f64);
    if let Some(grown) = m.report.growth_bytes("start", "subscribed") {
        m.report
            .figure("rss_per_receiver_bytes", grown / attached.max(1) as f64);
    }
    if let Some(grown) = m.report.growth_bytes("subscribed", "published") {
        m.report
            .figure("publish_growth_mib", grown / (1024.0 * 1024.0));
        let entries = answered as f64 * attached as f64;
        m.report
            .figure("rss_per_buffered_entry_bytes", grown / entries.max(1.0));
    }

    for s in publisher.close().await {
        for e in s.stats.errors.iter().take(1) {
            m.report.notes.push(format!("publisher: {e}"));
        }
    }
    for s in subscribers.close().await {
        m.report.notes.extend(s.errors.into_iter().take(1));
    }
    m.read("unsubscribed", "receivers and publisher closed")
        .await;
    m.report.figure(
        "probe_worst_rtt_while_closing_ms",
        probe_stats.take_worst_us(epoch) as f64 / 1000.0,
    );
    m.report.figure(
        "probe_round_trips",
        probe_stats.round_trips.load(Ordering::Relaxed) as f64,
    );
    for p in probe.close().await {
        m.report.notes.extend(p.errors.into_iter().take(1));
    }
    m.sockets("broker_sockets_at_end");
    Ok(())
}
