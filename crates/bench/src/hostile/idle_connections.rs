//! `idle-connections`: connections that complete the handshake, begin a session and then do
//! nothing but answer heartbeats.
//!
//! What an idle connection costs the broker is what every connection costs before it carries a
//! message: its task, its engine, its buffers. Each round opens `--connections` of them, reads
//! the broker once all have their session, closes them all and reads it again. Two figures per
//! round: `rss_per_connection_bytes`, the broker's size with the connections open above its
//! size at the start, per connection; and `growth_per_connection_bytes`, the same above its
//! size just before the round.
//!
//! The first round runs on a cold heap and understates the cost: a buffer the allocator takes
//! fresh from the system is resident only where it has been written, and an idle connection's
//! read buffer is barely written. Once those buffers have been freed and are handed out
//! again, they are zeroed (or written) in full. So the figure to record is a later round's
//! `rss_per_connection_bytes`, the heap warm; its `growth_per_connection_bytes` then falls
//! towards 0, as the connections reuse what the previous round left. The readings after
//! closing show whether the memory comes back after the spike.
//!
//! Each connection is a socket in this process and one in the broker: the scenario checks both
//! processes' open-file limits first (raise them with `ulimit -n`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::CommonArgs;
use super::clients::Clients;
use super::measure::Measure;
use super::quiet::Quiet;
use crate::procstat::open_files_max;
use crate::run::Shared;

/// Arguments of `sluice hostile idle-connections`.
#[derive(Debug, Clone, clap::Args)]
pub struct IdleConnectionsArgs {
    /// amqp://host:port/ADDRESS (the address is not used: idle connections attach nothing).
    #[arg(value_name = "URL", default_value = "amqp://127.0.0.1:5672/queue")]
    pub url: String,
    /// Idle connections per round.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub connections: u32,
    /// Rounds of opening and closing them (the first warms the broker's heap).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
}

/// File descriptors either process needs besides the connections (listeners, the runtime's,
/// `/proc` files read while measuring).
const FD_MARGIN: u64 = 64;

/// Refuses a count of connections that either process's open-file limit cannot hold.
fn check_limits(connections: u32, broker: u32) -> Result<(), String> {
    let need = u64::from(connections) + FD_MARGIN;
    for (who, pid) in [("this process", std::process::id()), ("the broker", broker)] {
        if let Some(max) = open_files_max(pid)
            && max < need
        {
            return Err(format!(
                "{connections} connections need about {need} open files in {who}, whose limit \
                 is {max}: raise it (`ulimit -n {need}` in the shell that starts it) or use \
                 fewer --connections"
            ));
        }
    }
    Ok(())
}

/// Runs the scenario.
pub(crate) async fn run(args: &IdleConnectionsArgs, m: &mut Measure) -> Result<(), String> {
    check_limits(args.connections, m.pid())?;
    let pid = std::process::id();
    let n = args.connections as usize;
    let mut before = "start".to_string();
    m.read(&before, "start").await;
    for round in 1..=args.rounds {
        if m.expired() {
            break;
        }
        let shared = Arc::new(Shared::default());
        let mut clients = Clients::new();
        m.start_peak();
        for i in 0..n {
            let role = Quiet::new(&m.url.address, 0, 0, &shared);
            let name = format!("sluice-hostile-{pid}-idle-{round}-{i}");
            if let Err(e) = clients.open(&m.url, name, role, m.connect_timeout()).await {
                m.report
                    .errors
                    .push(format!("round {round}: connection {i}: {e}"));
                break;
            }
        }
        let opened = clients.opened;
        let all_in = |s: &Shared| {
            s.ready.load(Ordering::Relaxed) + s.failed.load(Ordering::Relaxed) >= opened
        };
        m.wait(&format!("round {round}'s sessions began"), || {
            all_in(&shared)
        })
        .await;
        let idle = shared.ready.load(Ordering::Relaxed);
        let open_key = format!("round_{round}_open");
        m.read(&open_key, format!("round {round}: {idle} idle connections"))
            .await;
        m.peak(
            &format!("round_{round}_peak"),
            format!("round {round}: peak"),
        );
        m.sockets(&format!("round_{round}_broker_sockets_open"));
        let roles = clients.close().await;
        if let Some(e) = roles.iter().find_map(|r| r.errors.first()) {
            let failed = shared.failed.load(Ordering::Relaxed);
            m.report.notes.push(format!(
                "round {round}: {failed} connections failed, e.g. {e}"
            ));
        }
        let closed_key = format!("round_{round}_closed");
        m.read(&closed_key, format!("round {round}: all closed"))
            .await;
        m.report
            .figure(format!("round_{round}_idle_connections"), idle as f64);
        let per = idle.max(1) as f64;
        if let Some(grown) = m.report.growth_bytes(&before, &open_key) {
            m.report.figure(
                format!("round_{round}_growth_per_connection_bytes"),
                grown / per,
            );
        }
        if let Some(held) = m.report.growth_bytes("start", &open_key) {
            m.report.figure(
                format!("round_{round}_rss_per_connection_bytes"),
                held / per,
            );
        }
        if let Some(kept) = m.report.growth_bytes("start", &closed_key) {
            m.report.figure(
                format!("round_{round}_closed_above_start_mib"),
                kept / (1024.0 * 1024.0),
            );
        }
        before = closed_key;
    }
    m.sockets("broker_sockets_at_end");
    Ok(())
}
