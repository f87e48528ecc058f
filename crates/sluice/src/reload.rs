//! Hot reload: `sluice serve --config` watches its paths (a directory recursively, a file
//! through its directory, so a mounted ConfigMap's `..data` symlink swap is seen) and reloads
//! on SIGHUP too. A new configuration is checked as a whole: with any error it is refused,
//! its diagnostics are logged, and the old one keeps serving. A valid one gives the
//! connections its users (changed rights apply to new attaches, links that lost theirs are
//! detached) and the broker its addresses and limits.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use notify::Watcher as _;
use sluice_config::{ResolvedAddressSpace, Source};
use tokio::sync::{mpsc, watch};

/// How long a burst of file events settles before the configuration is read (a ConfigMap
/// update is several renames; an editor's save is a write and a rename).
const SETTLE: Duration = Duration::from_millis(300);

/// What a reload needs.
pub(crate) struct Reloading {
    pub(crate) paths: Vec<PathBuf>,
    /// The address space served, as `sluice serve` chose it.
    pub(crate) space: String,
    pub(crate) settings: sluice_auth::AuthSettings,
    pub(crate) users: watch::Sender<Arc<sluice_auth::Users>>,
    pub(crate) spaces: mpsc::Sender<ResolvedAddressSpace>,
    pub(crate) telemetry: sluice_broker::Telemetry,
}

/// Starts watching (when there are paths) and reloading; runs for the life of the process.
pub(crate) fn spawn(r: Reloading, first: &[Source]) {
    let (events_tx, events) = mpsc::channel(1);
    let watcher = if r.paths.is_empty() {
        None
    } else {
        match watch_paths(&r.paths, events_tx.clone()) {
            Ok(w) => {
                // A change made between the first read and the watch is caught by reading
                // once more now (nothing happens when the text is the same).
                let _due = events_tx.try_send(());
                Some(w)
            }
            Err(e) => {
                tracing::warn!("the configuration is not watched ({e:#}): only SIGHUP reloads it");
                None
            }
        }
    };
    let last = fingerprint(first);
    tokio::spawn(async move {
        // Held here: the watcher stops when dropped.
        let _watcher = watcher;
        run(r, events, last).await;
    });
}

fn watch_paths(
    paths: &[PathBuf],
    events: mpsc::Sender<()>,
) -> anyhow::Result<notify::RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            // Full means a reload is already due: this event joins it.
            let _due = events.try_send(());
        }
    })?;
    for path in paths {
        let (dir, mode) = if path.is_dir() {
            (path.clone(), notify::RecursiveMode::Recursive)
        } else {
            let parent = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), PathBuf::from);
            (parent, notify::RecursiveMode::NonRecursive)
        };
        watcher
            .watch(&dir, mode)
            .with_context(|| format!("watching {}", dir.display()))?;
    }
    Ok(watcher)
}

async fn run(r: Reloading, mut events: mpsc::Receiver<()>, mut last: u64) {
    let mut hup = hangups();
    loop {
        let forced = tokio::select! {
            Some(()) = events.recv() => false,
            Some(()) = hup.recv() => true,
            else => return,
        };
        if r.paths.is_empty() {
            tracing::info!("SIGHUP: the embedded configuration has nothing to reload");
            continue;
        }
        tokio::time::sleep(SETTLE).await;
        while events.try_recv().is_ok() {}
        match load(&r, last, forced) {
            Ok(None) => {}
            Ok(Some((space, users, print))) => {
                last = print;
                tracing::info!(users = users.len(), "configuration read: applying it");
                r.users.send_replace(Arc::new(users));
                if r.spaces.send(space).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::error!(
                    "the configuration is not reloaded: {e:#}; the one before keeps serving"
                );
                r.telemetry.reloaded(false);
            }
        }
    }
}

/// Reads and checks the configuration: `None` when nothing changed since `last` (and the
/// reload was not asked for).
fn load(
    r: &Reloading,
    last: u64,
    forced: bool,
) -> anyhow::Result<Option<(ResolvedAddressSpace, sluice_auth::Users, u64)>> {
    let sources = sluice_config::read_paths(&r.paths).context("reading the configuration")?;
    let print = fingerprint(&sources);
    if print == last && !forced {
        return Ok(None);
    }
    let checked = sluice_config::check(&sources);
    if !checked.is_valid() {
        for d in checked.diagnostics.iter().filter(|d| d.is_error()) {
            tracing::error!("{d}");
        }
        bail!(
            "it has {} errors (logged above)",
            checked.count(sluice_config::Severity::Error)
        );
    }
    let space = checked
        .config
        .address_space(&r.space)
        .with_context(|| format!("the address space {:?} is no longer defined", r.space))?;
    let users = crate::secure::users(space, &r.settings)?;
    Ok(Some((space.clone(), users, print)))
}

/// What identifies a configuration's text: file names and contents.
fn fingerprint(sources: &[Source]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for s in sources {
        s.name.hash(&mut h);
        s.contents.hash(&mut h);
    }
    h.finish()
}

/// SIGHUPs, as a channel (none where there are no signals).
fn hangups() -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel(1);
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            if tx.send(()).await.is_err() {
                return;
            }
        }
    });
    #[cfg(not(unix))]
    drop(tx);
    rx
}
