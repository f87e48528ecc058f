//! `partial-deliveries`: deliveries whose transfers all say `more`, so none ever finishes.
//!
//! A receiver joins a delivery's transfers into one message, so it holds what has arrived of
//! an unfinished one; a per-link message size limit (100 MiB by default in Sluice's engine,
//! counted in payload bytes) bounds each. Two parts, each on a connection of its own, written
//! frame by frame (`wire`) within the broker's session window:
//!
//! 1. Large: `--links` links on one session each start a delivery and send up to
//!    `--link-bytes` of payload in frames as large as the broker allows, round robin, never
//!    finishing. Reported: the peak, whether (and after how much) the broker refused each
//!    link (a detach with an error), and what it holds once it is done with them.
//! 2. Tiny: one link sends one delivery as `--tiny-frames` transfer frames of one payload
//!    byte each. Reported: what the broker holds per payload byte, far more than the byte,
//!    since each frame is kept as a piece of its own.
//!
//! Each part's connection closes before the next reading, so every reading after it shows
//! whether the broker gave the memory back. The tiny part's per-byte figure is only clean on a
//! fresh broker: after the large part it grows into the memory the large part left behind, so
//! record the two parts separately (`--tiny-frames 0`, then `--links 0` on a new broker).

use std::time::Duration;

use super::CommonArgs;
use super::measure::Measure;
use super::wire::{Detached, RawClient};

/// Arguments of `sluice hostile partial-deliveries`.
#[derive(Debug, Clone, clap::Args)]
pub struct PartialDeliveriesArgs {
    /// amqp://host:port/ADDRESS: where the deliveries are sent.
    #[arg(value_name = "URL", default_value = "amqp://127.0.0.1:5672/queue")]
    pub url: String,
    /// Links sending one large unfinished delivery each, on one session (0: skip this part).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub links: u32,
    /// Payload bytes each large delivery sends before it stops, unfinished (140 MiB).
    #[arg(long, default_value_t = 140 * 1024 * 1024)]
    pub link_bytes: u64,
    /// One-byte transfer frames of one unfinished delivery on one more link (0: skip).
    #[arg(long, default_value_t = 8_000_000)]
    pub tiny_frames: u64,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}

/// Output buffered before it is written and the broker's answers are read: a detach is
/// noticed within this much of it.
const WRITE_CHUNK: usize = 1024 * 1024;
/// How long a poll waits for a flow when the window is shut.
const WINDOW_WAIT: Duration = Duration::from_millis(10);
/// How long a closing connection waits for the broker's close.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
const MIB: f64 = 1024.0 * 1024.0;

/// Runs the scenario.
pub(crate) async fn run(args: &PartialDeliveriesArgs, m: &mut Measure) -> Result<(), String> {
    m.read("start", "start").await;
    if args.links > 0 {
        large(args, m).await?;
    }
    if args.tiny_frames > 0 && !m.expired() {
        tiny(args, m).await?;
    }
    m.sockets("broker_sockets_at_end");
    Ok(())
}

/// Connects and attaches `links` senders, waiting until the broker has granted each credit.
async fn attached(m: &mut Measure, tag: &str, links: u32) -> Result<RawClient, String> {
    let name = format!("sluice-hostile-{}-{tag}", std::process::id());
    let mut c = RawClient::connect(&m.url, &name, m.connect_timeout()).await?;
    for handle in 0..links {
        c.attach_sender(handle, &m.url.address)?;
    }
    loop {
        c.poll(WINDOW_WAIT).await?;
        let refused = c.take_detached();
        if let Some(d) = refused.first() {
            return Err(format!(
                "the broker refused the link to '{}': {}",
                m.url.address,
                d.why()
            ));
        }
        if (0..links).all(|h| c.credit(h) > 0) {
            return Ok(c);
        }
        if let Some(why) = &c.ended {
            return Err(why.clone());
        }
        if m.expired() {
            return Err("--timeout ran out before the broker granted credit".into());
        }
    }
}

/// One large link's progress.
#[derive(Debug, Default, Clone)]
struct Large {
    sent: u64,
    started: bool,
    /// It sent all it would, or the broker detached it.
    done: bool,
}

async fn large(args: &PartialDeliveriesArgs, m: &mut Measure) -> Result<(), String> {
    let before = m.report.last_key();
    let mut c = attached(m, "large", args.links).await?;
    if let Some(max) = c.message_size_max(0) {
        m.report.figure("broker_max_message_size_bytes", max as f64);
    }
    m.start_peak();
    let chunk = vec![b'x'; c.frame_max() as usize];
    let mut links = vec![Large::default(); args.links as usize];
    let mut refused = 0u32;
    let mut next = 0usize;
    while links.iter().any(|l| !l.done) {
        while c.window() > 0 && c.buffered() < WRITE_CHUNK {
            // Round robin over the links still sending.
            let Some(h) = (0..links.len())
                .map(|i| (next + i) % links.len())
                .find(|h| links.get(*h).is_some_and(|l| !l.done))
            else {
                break;
            };
            next = h + 1;
            let Some(link) = links.get_mut(h) else { break };
            let handle = h as u32;
            let id = (!link.started).then_some(handle);
            let want = (args.link_bytes - link.sent).min(chunk.len() as u64) as usize;
            let n = c.transfer(handle, id, chunk.get(..want).unwrap_or_default())?;
            link.sent += n as u64;
            link.started = true;
            link.done = link.sent >= args.link_bytes;
        }
        let (detached, go_on) = turn(&mut c, m, "large").await;
        for d in detached {
            let Some(link) = links.get_mut(d.handle as usize) else {
                continue;
            };
            link.done = true;
            refused += 1;
            m.report.notes.push(format!(
                "large: link {} detached after {:.1} MiB sent: {}",
                d.handle,
                link.sent as f64 / MIB,
                d.why()
            ));
        }
        if !go_on {
            break;
        }
    }
    let sent: u64 = links.iter().map(|l| l.sent).sum();
    let label = format!(
        "large: {} links sent {:.0} MiB, {refused} refused",
        args.links,
        sent as f64 / MIB
    );
    m.read("large_held", label).await;
    m.peak("large_peak", "large: peak");
    c.close(CLOSE_WAIT).await;
    m.read("large_closed", "large: connection closed").await;
    m.report.figure("large_sent_mib", sent as f64 / MIB);
    m.report.figure("large_refused_links", f64::from(refused));
    for (key, reading) in [
        ("large_peak_mib", "large_peak"),
        ("large_held_mib", "large_held"),
    ] {
        if let Some(grown) = m.report.growth_bytes(&before, reading) {
            m.report.figure(key, grown / MIB);
        }
    }
    Ok(())
}

/// After a batch: writes it, handles what the broker sent (waiting for a flow while the
/// window is shut), and returns the links the broker detached, and whether the part goes on
/// (not if the connection ended or the deadline passed: the reason is recorded).
async fn turn(c: &mut RawClient, m: &mut Measure, part: &str) -> (Vec<Detached>, bool) {
    let wait = if c.window() == 0 {
        WINDOW_WAIT
    } else {
        Duration::ZERO
    };
    if let Err(e) = c.poll(wait).await {
        m.report.notes.push(format!("{part}: {e}"));
        return (c.take_detached(), false);
    }
    let detached = c.take_detached();
    if let Some(why) = c.ended.take() {
        m.report.notes.push(format!("{part}: {why}"));
        return (detached, false);
    }
    if m.expired() {
        m.report
            .errors
            .push(format!("--timeout ran out while the {part} part sent"));
        return (detached, false);
    }
    (detached, true)
}

async fn tiny(args: &PartialDeliveriesArgs, m: &mut Measure) -> Result<(), String> {
    let before = m.report.last_key();
    let mut c = attached(m, "tiny", 1).await?;
    m.start_peak();
    let mut frames = 0u64;
    let mut refused = false;
    while frames < args.tiny_frames {
        while c.window() > 0 && c.buffered() < WRITE_CHUNK && frames < args.tiny_frames {
            let id = (frames == 0).then_some(0);
            c.transfer(0, id, b"x")?;
            frames += 1;
        }
        let (detached, go_on) = turn(&mut c, m, "tiny").await;
        if let Some(d) = detached.first() {
            m.report.notes.push(format!(
                "tiny: the link was detached after {frames} frames: {}",
                d.why()
            ));
            refused = true;
            break;
        }
        if !go_on {
            break;
        }
    }
    m.read(
        "tiny_held",
        format!("tiny: {frames} one-byte frames on one link"),
    )
    .await;
    m.peak("tiny_peak", "tiny: peak");
    c.close(CLOSE_WAIT).await;
    m.read("tiny_closed", "tiny: connection closed").await;
    m.report.figure("tiny_frames_sent", frames as f64);
    m.report
        .figure("tiny_refused", f64::from(u8::from(refused)));
    if let Some(grown) = m.report.growth_bytes(&before, "tiny_held") {
        m.report.figure("tiny_held_mib", grown / MIB);
        m.report.figure(
            "tiny_rss_per_payload_byte_bytes",
            grown / frames.max(1) as f64,
        );
    }
    Ok(())
}
