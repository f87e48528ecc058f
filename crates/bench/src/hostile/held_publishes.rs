//! `held-publishes`: publishes the broker parks, unanswered, because their queue is full, from
//! publishers that then go away.
//!
//! A full queue holds further publishes until a consumer makes room, answering none of them:
//! each publisher waits through its credit. What is measured is what those parked publishes
//! cost while their publishers are connected, and whether the broker lets go of them when the
//! publishers disconnect. Steps:
//!
//! 1. Fill the queue: one connection publishes up to `--fill` messages and stops when they
//!    stop being answered (the queue is full; the few it sent past that stay parked) or all
//!    are. The default, 4,400 of 60 KiB, is just over the default queue limit of 256 MiB.
//! 2. A round: `--links` publishers, each on its own connection, send up to `--count`
//!    unsettled messages (the broker's credit may stop them sooner), reading the broker once
//!    it has taken them all; then they disconnect and the broker is read again.
//! 3. `--rounds` rounds, then the fill connection closes too.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::CommonArgs;
use super::clients::Clients;
use super::measure::{Measure, Progress};
use crate::message::{TRAILER_BYTES, Template};
use crate::run::Shared;
use crate::sender::{Sender, Until};

/// Arguments of `sluice hostile held-publishes`.
#[derive(Debug, Clone, clap::Args)]
pub struct HeldPublishesArgs {
    /// amqp://host:port/QUEUE: the queue to fill and publish to.
    #[arg(value_name = "URL", default_value = "amqp://127.0.0.1:5672/queue")]
    pub url: String,
    /// Most messages sent to fill the queue first; the fill stops as soon as publishes go
    /// unanswered. 0: no fill.
    #[arg(long, default_value_t = 4_400)]
    pub fill: u64,
    /// Publisher links per round, each on its own connection.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub links: u32,
    /// Unsettled messages each publisher sends per round, at most.
    #[arg(long, default_value_t = 1_000)]
    pub count: u64,
    /// Body size of every message, bytes (60 KiB: one transfer frame each).
    #[arg(long, default_value_t = 61_440)]
    pub body_size: usize,
    /// Rounds of publishing and disconnecting.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
    /// Seconds without progress after which the broker is taken to be holding the rest (the
    /// fill: no answer; a round: no credit to send more).
    #[arg(long, default_value_t = 2.0)]
    pub stall: f64,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}

/// A publisher of up to `count` unsettled messages to the URL's queue.
fn publisher(
    m: &Measure,
    index: u64,
    count: u64,
    template: &Template,
    shared: &Arc<Shared>,
) -> Sender {
    let now = Instant::now();
    Sender::new(
        m.url.address.clone(),
        index,
        false,
        template.clone(),
        None,
        now,
        now,
        Until::Count(count),
        shared.clone(),
    )
}

/// What the broker did with a group's publishes, from the senders' own records: outcomes
/// other than accepted and errors become notes.
fn outcomes(m: &mut Measure, what: &str, senders: &[Sender]) -> u64 {
    let mut accepted = 0;
    let mut refused: Vec<(String, u64)> = Vec::new();
    for s in senders {
        accepted += s.stats.accepted;
        for (name, n) in &s.stats.refused {
            match refused.iter_mut().find(|(r, _)| r == name) {
                Some((_, c)) => *c += n,
                None => refused.push((name.clone(), *n)),
            }
        }
        for e in s.stats.errors.iter().take(1) {
            m.report.notes.push(format!("{what}: {e}"));
        }
    }
    for (name, n) in refused {
        m.report.notes.push(format!("{what}: {n} publishes {name}"));
    }
    accepted
}

/// Runs the scenario.
pub(crate) async fn run(args: &HeldPublishesArgs, m: &mut Measure) -> Result<(), String> {
    let template = Template::new(args.body_size, false)
        .ok_or_else(|| format!("--body-size must be at least {TRAILER_BYTES}"))?;
    let stall = super::seconds("--stall", args.stall)?;
    m.read("start", "start").await;

    let fill_shared = Arc::new(Shared::default());
    let mut fill = Clients::new();
    if args.fill > 0 {
        let name = format!("sluice-hostile-{}-fill", std::process::id());
        let sender = publisher(m, 0, args.fill, &template, &fill_shared);
        fill.open(&m.url, name, sender, m.connect_timeout()).await?;
        let answered = || fill_shared.settled.load(Ordering::Relaxed);
        let progress = m
            .wait_progress("filling the queue", answered, args.fill, stall)
            .await;
        let (sent, answered) = (fill_shared.sent.load(Ordering::Relaxed), answered());
        m.report.figure("fill_sent_messages", sent as f64);
        m.report.figure("fill_answered_messages", answered as f64);
        if progress == Progress::Reached {
            m.report.notes.push(format!(
                "the queue took all {answered} fill messages: it is not full, so the rounds' \
                 publishes may be answered rather than held (raise --fill)"
            ));
        }
        let label = format!(
            "queue filled: {answered} answered, {} held",
            sent - answered
        );
        m.read("filled", label).await;
    }

    let mut before = m.report.last_key();
    for round in 1..=args.rounds {
        if m.expired() {
            break;
        }
        let shared = Arc::new(Shared::default());
        let mut publishers = Clients::new();
        m.start_peak();
        for i in 0..args.links {
            let name = format!("sluice-hostile-{}-round-{round}-{i}", std::process::id());
            let sender = publisher(m, u64::from(i), args.count, &template, &shared);
            publishers
                .open(&m.url, name, sender, m.connect_timeout())
                .await?;
        }
        let target = u64::from(args.links) * args.count;
        let sent = || shared.sent.load(Ordering::Relaxed);
        m.wait_progress(
            &format!("round {round} was publishing"),
            sent,
            target,
            stall,
        )
        .await;
        let (sent, answered) = (sent(), shared.settled.load(Ordering::Relaxed));
        let label = format!("round {round}: {sent} sent, {answered} answered");
        m.read(&format!("round_{round}_held"), label).await;
        m.peak(
            &format!("round_{round}_peak"),
            format!("round {round}: peak"),
        );
        let senders = publishers.close().await;
        let accepted = outcomes(m, &format!("round {round}"), &senders);
        let after = format!("round_{round}_after");
        m.read(&after, format!("round {round}: publishers disconnected"))
            .await;
        m.report
            .figure(format!("round_{round}_sent_messages"), sent as f64);
        let held = sent - answered.min(sent);
        m.report
            .figure(format!("round_{round}_held_messages"), held as f64);
        m.report
            .figure(format!("round_{round}_accepted_messages"), accepted as f64);
        if let Some(grown) = m
            .report
            .growth_bytes(&before, &format!("round_{round}_held"))
        {
            m.report
                .figure(format!("round_{round}_held_mib"), grown / MIB);
            if held > 0 {
                m.report.figure(
                    format!("round_{round}_rss_per_held_message_bytes"),
                    grown / held as f64,
                );
            }
        }
        if let Some(kept) = m.report.growth_bytes(&before, &after) {
            m.report.figure(
                format!("round_{round}_kept_after_disconnect_mib"),
                kept / MIB,
            );
        }
        before = after;
    }

    let senders = fill.close().await;
    outcomes(m, "fill", &senders);
    m.read("end", "every connection closed").await;
    m.sockets("broker_sockets_at_end");
    Ok(())
}

const MIB: f64 = 1024.0 * 1024.0;
