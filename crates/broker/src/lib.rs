//! Sluice's broker: the IO shell around the protocol engine and the broker core.
//!
//! Owns: the listener, one task per connection (a stream + [`sluice_engine::Connection`]), and
//! the core, a sans-IO state machine holding every node of the address space, run by its
//! driver task. Connections resolve addresses against an immutable [`AddressTable`] they share
//! (to node ids, once, at attach), and talk to the core over channels; no lock is held across
//! an await and no state has two owners.
//!
//! ```text
//!  listener ──▶ connection task (engine, links) ──batches──▶ driver ──▶ core (nodes)
//!                       ▲                                      │  ▲
//!                       └──────────── answers, deliveries ─────┘  └── journal: durable up to N
//! ```
//!
//! Serves every EnMasse address type: `queue` (and consuming from `deadletter`) with competing
//! consumers, every outcome, requeue on consumer loss, TTL clamps, expiry and dead-lettering;
//! `topic` (one shared, bounded log its receivers read from the moment they attach,
//! hierarchical names and `+`/`#` patterns, slow subscribers holding publishers back through
//! credit); `subscription` (named, durable, `maxConsumers`); `anycast` (routed to one receiver,
//! never stored, sender credit from receiver credit, outcomes passed back); `multicast`
//! (pre-settled fan-out); anonymous relay (routing by `to`); dynamic receivers (temporary
//! queues, for request/reply); authentication `none`.
//!
//! Must not depend on: the `sluice` binary (CLI, logging setup). Nothing under `core/` uses
//! tokio, a socket, a file or the clock.

mod connection;
mod core;
mod disk;
mod driver;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod gate;
mod journal;
mod listen;
mod plan;
mod security;
mod telemetry;

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_config::ResolvedAddressSpace;
use sluice_engine::Config;
use tokio::sync::mpsc;

use sluice_store::journal::JournalConfig;
pub use sluice_store::journal::SyncPolicy;

use crate::core::Core;
use crate::disk::DiskJournal;
use crate::journal::{AnyJournal, NoJournal};
pub use listen::Listeners;
pub use security::{AUTH_FAILURE_DELAY, EXTERNAL_PROBE_INTERVAL, Security};
pub use telemetry::{
    AddressStatus, EndpointStatus, Phase, PlanStatus, ServicePort, SpaceStatus, Status, Telemetry,
};

/// How long a shutdown waits for the core to hand the journal back.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Command batches (one per connection wake-up) queued for the core before connections wait.
const CORE_CHANNEL: usize = 1024;

/// Where and how the broker keeps durable messages.
#[derive(Debug, Clone, Default)]
pub struct Durability {
    /// The data directory: its `journal/` holds the durable queues' messages. Without one,
    /// durable messages are kept in memory only.
    pub data_dir: Option<PathBuf>,
    /// When the journal syncs.
    pub sync: SyncPolicy,
    /// The memory budget: the most bytes of messages all queues hold in memory together.
    /// Above it, queues with a journal keep new messages on disk and publishers to the others
    /// wait for credit. `None`: no budget.
    pub max_memory: Option<usize>,
}

/// The most bytes of messages one queue that pages holds in memory: as Artemis pages an
/// address past its `max-size-bytes`, so a long backlog costs its references, not its bodies.
pub const QUEUE_MEMORY_DEFAULT: usize = 32 << 20;

impl Durability {
    /// How the plan stores messages.
    fn storage(&self) -> plan::Storage {
        let budget = self.max_memory.map_or(usize::MAX, |m| m / 4);
        plan::Storage {
            paging: self.data_dir.is_some(),
            queue_memory_max: QUEUE_MEMORY_DEFAULT.min(budget).max(1 << 20),
        }
    }
}

/// Serves `space` on `listeners` until `shutdown` completes, letting in whom `security`
/// says. With a data directory, the journal is replayed into the durable queues first, and
/// synced and closed last.
pub async fn serve(
    listeners: Listeners,
    space: &ResolvedAddressSpace,
    container_id: String,
    durability: Durability,
    security: Security,
    telemetry: Telemetry,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    telemetry.set_space(space, &[]);
    telemetry.loaded(driver::now_ms());
    let storage = durability.storage();
    let plan =
        plan::plan(space, storage).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut core = Core::new(plan.nodes);
    if let Some(max) = durability.max_memory {
        core.set_memory_max(max);
    }
    let (core, journal) = match durability.data_dir {
        Some(dir) => {
            let load = storage.queue_memory_max as u64;
            let metrics = telemetry.metrics().journal();
            let (core, disk) = tokio::task::spawn_blocking(move || {
                recover(&dir, durability.sync, load, core, metrics)
            })
            .await
            .map_err(io::Error::other)??;
            (core, AnyJournal::Disk(disk))
        }
        None => (core, AnyJournal::Memory(NoJournal::default())),
    };
    let (core_tx, core_rx) = mpsc::channel(CORE_CHANNEL);
    let (stats_tx, stats_rx) = mpsc::channel(telemetry::STATS_REQUESTS_MAX);
    telemetry.set_core(stats_tx);
    let driver = tokio::spawn(driver::run(core, core_rx, stats_rx, journal));
    let limits = space.connection_limits();
    let mut config = Config::server(container_id);
    // Senders with a null target route each message by its `to` (part 2 of the AMQP
    // addressing draft; what every client library looks for).
    config.offered_capabilities = vec![sluice_codec::types::Symbol::from_static("ANONYMOUS-RELAY")];
    config.handshake_timeout = limits.handshake_timeout;
    config.channel_max =
        u16::try_from(limits.sessions_per_connection_max.saturating_sub(1)).unwrap_or(u16::MAX);
    let external_mechanisms = security::probe_external(
        &security,
        telemetry.metrics().authentication_service_ready.clone(),
    )
    .await;
    let shared = connection::Shared {
        config,
        table: Arc::new(plan.table),
        core: core_tx,
        security: Arc::new(security),
        hashing: Arc::new(tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(1, |n| n.get()),
        )),
        external_mechanisms,
        senders_max: limits.senders_per_connection_max,
        receivers_max: limits.receivers_per_connection_max,
        telemetry: telemetry.clone(),
    };
    telemetry.set_serving();
    let stopping = async {
        shutdown.await;
        telemetry.set_stopping();
    };
    listen::accept(listeners, gate::Gate::new(limits), shared, stopping).await;
    // Every connection is gone, so the driver ends and hands the journal back.
    match tokio::time::timeout(SHUTDOWN_GRACE, driver).await {
        Ok(Ok(AnyJournal::Disk(disk))) => {
            tokio::task::spawn_blocking(move || disk.close())
                .await
                .map_err(io::Error::other)?
                .map_err(|e| io::Error::other(format!("closing the journal: {e}")))?;
            tracing::info!("journal synced and closed");
        }
        Ok(Ok(AnyJournal::Memory(_))) => {}
        Ok(Err(e)) => return Err(io::Error::other(e)),
        Err(_) => tracing::warn!("the core did not stop within the shutdown grace period"),
    }
    Ok(())
}

/// Replays the journal under `dir` into `core`'s durable queues and starts its writer.
/// Blocking.
fn recover(
    dir: &Path,
    sync: SyncPolicy,
    load_bytes_per_queue: u64,
    mut core: Core,
    metrics: telemetry::metrics::JournalMetrics,
) -> io::Result<(Core, DiskJournal)> {
    let started = Instant::now();
    let config = JournalConfig {
        sync,
        load_bytes_per_queue,
        ..JournalConfig::default()
    };
    let (journal, recovery) = disk::open(dir, config).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the journal in {}: {e}",
                dir.join(disk::JOURNAL_DIR).display()
            ),
        )
    })?;
    let now = driver::now_ms();
    let mut paged = recovery.paged;
    for (address, messages) in recovery.queues {
        let count = messages.len();
        let on_disk = paged.remove(&address).unwrap_or_default();
        match core.restore(&address, messages, on_disk, now) {
            Ok(undecodable) => {
                for (id, reason) in undecodable {
                    tracing::error!(%address, id = id.0, %reason, "a journaled message does not decode: it is not served, and stays in the journal");
                }
            }
            Err(e) => {
                tracing::warn!(%address, messages = count, "{e}: its messages stay in the journal until the address is configured again")
            }
        }
    }
    if let Some(t) = &recovery.report.truncated {
        tracing::warn!(segment = t.segment, offset = t.offset, dropped = t.dropped, reason = %t.reason, "the journal's last write was cut short by a crash: its torn tail was cut (no message in it had been accepted)");
    }
    tracing::info!(
        data_dir = %dir.display(),
        messages = recovery.report.messages,
        bytes = recovery.report.bytes,
        records = recovery.report.records,
        segments = recovery.report.segments,
        left_on_disk = recovery.report.paged,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "journal recovered"
    );
    let disk = DiskJournal::start(journal, &core.durable_queues(), metrics)?;
    Ok((core, disk))
}
