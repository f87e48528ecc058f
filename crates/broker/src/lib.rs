//! Sluice's broker: the IO shell around the protocol engine and the broker core.
//!
//! Owns: the listener, one task per connection (a stream + [`sluice_engine::Connection`]), and
//! the core, a sans-IO state machine holding every node of the address space, run by its
//! driver task. Connections resolve addresses against an immutable address table they share
//! (to node ids, once, at attach), and talk to the core over channels; no lock is held across
//! an await and no state has two owners. A reload (`reload.rs`) has the core re-plan its
//! nodes in place, then gives connections a new table: the old one is never changed.
//! Operators read the broker through [`Telemetry`]: metrics, readiness, status.
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
//! queues, for request/reply); authentication `none`. Operators purge queues and move
//! dead-lettered messages back to their origin over `$management` (AMQP Management).
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
mod reload;
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

/// What operators get from a running broker, and what they can change while it runs.
#[derive(Debug)]
pub struct Operations {
    /// Metrics, readiness and status.
    pub telemetry: Telemetry,
    /// New configurations of the address space, each valid as a whole: served on arrival.
    pub reloads: mpsc::Receiver<ResolvedAddressSpace>,
    /// How long a queue removed from the configuration keeps its messages, waiting for its
    /// address to come back (also for journaled queues the configuration no longer names at
    /// start).
    pub removed_address_grace: Duration,
}

/// How long a removed queue keeps its messages unless told otherwise: a day, so a
/// configuration change reverted the next morning loses nothing.
pub const REMOVED_ADDRESS_GRACE_DEFAULT: Duration = Duration::from_secs(24 * 3600);

/// What connections get from `space`'s configuration.
fn serving(
    space: &ResolvedAddressSpace,
    table: sluice_router::AddressTable,
    container_id: &str,
) -> connection::Serving {
    let limits = space.connection_limits();
    let links = space.link_limits();
    let mut config = Config::server(container_id);
    // Senders with a null target route each message by its `to` (part 2 of the AMQP
    // addressing draft; what every client library looks for).
    config.offered_capabilities = vec![sluice_codec::types::Symbol::from_static("ANONYMOUS-RELAY")];
    config.handshake_timeout = limits.handshake_timeout;
    config.channel_max =
        u16::try_from(limits.sessions_per_connection_max.saturating_sub(1)).unwrap_or(u16::MAX);
    if let Some(max) = links.message_size_max {
        config.message_size_max = max;
        // A message of the largest size must fit what partial deliveries may hold.
        config.partial_bytes_max = config
            .partial_bytes_max
            .max(usize::try_from(max.saturating_mul(2)).unwrap_or(usize::MAX));
    }
    if let Some(idle) = links.idle_timeout {
        config.idle_timeout = Some(idle);
    }
    connection::Serving {
        table,
        config,
        link_capacity: links.link_capacity.map_or(connection::PUBLISH_CREDIT, |c| {
            c.min(connection::LINK_CAPACITY_MAX)
        }),
    }
}

/// Serves `space` on `listeners` until `shutdown` completes, letting in whom `security`
/// says, and serving each configuration `ops` sends. With a data directory, the journal is
/// replayed into the durable queues first, and synced and closed last.
pub async fn serve(
    listeners: Listeners,
    space: &ResolvedAddressSpace,
    container_id: String,
    durability: Durability,
    security: Security,
    ops: Operations,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let Operations {
        telemetry,
        reloads,
        removed_address_grace,
    } = ops;
    let grace_ms = i64::try_from(removed_address_grace.as_millis()).unwrap_or(i64::MAX);
    telemetry.set_space(space);
    telemetry.loaded(driver::now_ms());
    let storage = durability.storage();
    let plan =
        plan::plan(space, storage).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut core = Core::new(plan.nodes);
    core.set_configured(plan.specs);
    if let Some(max) = durability.max_memory {
        core.set_memory_max(max);
    }
    let (core, journal) = match durability.data_dir {
        Some(dir) => {
            let load = storage.queue_memory_max as u64;
            let metrics = telemetry.metrics().journal();
            let (core, disk) = tokio::task::spawn_blocking(move || {
                recover(&dir, durability.sync, load, core, metrics, grace_ms)
            })
            .await
            .map_err(io::Error::other)??;
            (core, AnyJournal::Disk(disk))
        }
        None => (core, AnyJournal::Memory(NoJournal::default())),
    };
    let (core_tx, core_rx) = mpsc::channel(CORE_CHANNEL);
    telemetry.set_core(Some(core_tx.clone()));
    let driver = tokio::spawn(driver::run(core, core_rx, journal));
    let container_id: Arc<str> = container_id.into();
    let (serving_tx, serving_rx) =
        tokio::sync::watch::channel(Arc::new(serving(space, plan.table, &container_id)));
    let limits = space.connection_limits();
    let external_mechanisms = security::probe_external(
        &security,
        telemetry.metrics().authentication_service_ready.clone(),
    )
    .await;
    let shared = connection::Shared {
        serving: serving_rx,
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
    let reloading = tokio::spawn(reload::run(reload::Reloader {
        reloads,
        core: shared.core.clone(),
        serving: serving_tx,
        telemetry: telemetry.clone(),
        storage,
        grace_ms,
        container_id,
    }));
    telemetry.set_serving();
    let stopping = async {
        shutdown.await;
        telemetry.set_stopping();
    };
    listen::accept(listeners, gate::Gate::new(limits), shared, stopping).await;
    // The last senders to the core but the connections', which have gone.
    telemetry.set_core(None);
    reloading.abort();
    let _stopped = reloading.await;
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
    grace_ms: i64,
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
    let mut queues: Vec<_> = recovery.queues.into_iter().collect();
    // A queue whose messages were all left on disk has none in memory.
    let only_paged: Vec<String> = paged
        .keys()
        .filter(|a| !queues.iter().any(|(q, _)| q == *a))
        .cloned()
        .collect();
    queues.extend(only_paged.into_iter().map(|a| (a, Vec::new())));
    for (address, messages) in queues {
        let on_disk = paged.remove(&address).unwrap_or_default();
        let count = messages.len() + on_disk.len();
        if !core.durable_queues().iter().any(|(_, a)| **a == *address) {
            tracing::warn!(%address, messages = count, grace_s = grace_ms / 1000, "the journal holds messages of a queue this configuration does not name: they are kept for the grace period (--removed-address-grace), and served again if the address is configured within it");
            core.retire_unconfigured(&address, grace_ms, now);
        }
        match core.restore(&address, messages, on_disk, now) {
            Ok(undecodable) => {
                for (id, reason) in undecodable {
                    tracing::error!(%address, id = id.0, %reason, "a journaled message does not decode: it is not served, and stays in the journal");
                }
            }
            Err(e) => {
                tracing::error!(%address, messages = count, "{e}: its messages stay in the journal")
            }
        }
    }
    for (address, ids) in recovery.duplicates {
        if !core.restore_duplicates(&address, ids, now) {
            tracing::debug!(%address, "the journal holds remembered message ids of a queue this configuration does not name as durable: they are not restored");
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
