//! `selectors`: receivers on a queue whose sources carry the largest selector the broker
//! takes, and which grant no credit.
//!
//! A selector is compiled once at attach and kept with its consumer for as long as the link
//! lasts: what a hostile client can make the broker hold this way is a compiled selector per
//! link, bounded by the selector's size limit (4096 bytes of text, 256 `IN` items) times the
//! links it may attach. The scenario attaches `--links` such receivers on each of
//! `--connections` connections, reads the broker, closes them all and reads it again:
//! `rss_per_link_bytes` is the cost of one selecting consumer, and the reading after closing
//! shows the memory comes back.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::CommonArgs;
use super::clients::Clients;
use super::measure::Measure;
use super::quiet::Quiet;
use crate::run::Shared;

/// Arguments of `sluice hostile selectors`.
#[derive(Debug, Clone, clap::Args)]
pub struct SelectorsArgs {
    /// amqp://host:port/QUEUE: the queue the selecting receivers attach to.
    #[arg(value_name = "URL", default_value = "amqp://127.0.0.1:5672/queue")]
    pub url: String,
    /// Connections (one session each).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub connections: u32,
    /// Selecting receivers per connection.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub links: u32,
    /// Bytes of each selector's text: an `IN` list of as many items as fit (at most 256).
    #[arg(long, default_value_t = 4_000, value_parser = clap::value_parser!(u32).range(16..=65_536))]
    pub selector_bytes: u32,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}

/// Most `IN` items the broker takes (`SELECTOR_IN_ITEMS_MAX`).
const IN_ITEMS: usize = 256;

/// A selector of about `bytes` bytes: `s IN ('v00000', 'v00001', ...)`, with items as long
/// as they need to be for `IN_ITEMS` of them to fill it.
pub(crate) fn large_selector(bytes: usize) -> String {
    let head = "s IN ()";
    // Each item is quoted and followed by ", ".
    let width = ((bytes.saturating_sub(head.len())) / IN_ITEMS)
        .saturating_sub(4)
        .max(1);
    let items: Vec<String> = (0..IN_ITEMS)
        .map(|i| format!("'{i:0width$}'"))
        .take_while({
            let mut used = head.len();
            move |item| {
                used += item.len() + 2;
                used <= bytes
            }
        })
        .collect();
    format!("s IN ({})", items.join(", "))
}

/// Runs the scenario.
pub(crate) async fn run(args: &SelectorsArgs, m: &mut Measure) -> Result<(), String> {
    let pid = std::process::id();
    let selector = large_selector(args.selector_bytes as usize);
    m.report.figure("selector_bytes", selector.len() as f64);
    m.read("start", "start").await;
    let shared = Arc::new(Shared::default());
    let mut clients = Clients::new();
    m.start_peak();
    for c in 0..args.connections {
        let first = c * args.links;
        let role =
            Quiet::new(&m.url.address, first, args.links, &shared).selecting(selector.clone());
        let name = format!("sluice-hostile-{pid}-selectors-{c}");
        if let Err(e) = clients.open(&m.url, name, role, m.connect_timeout()).await {
            m.report.errors.push(format!("connection {c}: {e}"));
            break;
        }
    }
    let wanted = clients.opened * args.links as usize;
    m.wait("the selecting receivers attached", || {
        shared.ready.load(Ordering::Relaxed) + shared.failed.load(Ordering::Relaxed) >= wanted
    })
    .await;
    let attached = shared.ready.load(Ordering::Relaxed);
    m.read("attached", format!("{attached} selecting receivers"))
        .await;
    m.peak("peak", "peak");
    let roles = clients.close().await;
    if let Some(e) = roles.iter().find_map(|r| r.errors.first()) {
        let failed = shared.failed.load(Ordering::Relaxed);
        m.report
            .notes
            .push(format!("{failed} receivers failed, e.g. {e}"));
    }
    m.read("closed", "all closed").await;
    m.report.figure("links", attached as f64);
    if let Some(held) = m.report.growth_bytes("start", "attached") {
        m.report
            .figure("rss_per_link_bytes", held / attached.max(1) as f64);
    }
    if let Some(kept) = m.report.growth_bytes("start", "closed") {
        m.report
            .figure("closed_above_start_mib", kept / (1024.0 * 1024.0));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_large_selector_fills_its_size_with_at_most_256_items() {
        for bytes in [64, 1_000, 4_000, 4_096] {
            let text = large_selector(bytes);
            assert!(text.len() <= bytes, "{bytes}: {}", text.len());
            // Short of the size asked for by less than one byte per item.
            assert!(text.len() + IN_ITEMS >= bytes, "{bytes}: {}", text.len());
            assert!(text.matches(", ").count() < IN_ITEMS);
        }
    }
}
