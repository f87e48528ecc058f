//! `--sync-probe DIR`: the disk's own sync time, measured in DIR before the run.
//!
//! Why: a broker may accept a durable message only once it is on disk, so the disk's sync time
//! is the floor under a durable queue's confirm latency. The journal's issue sets its target
//! against that floor: confirm latency p50 within 1 ms of the disk's own sync time. The probe
//! puts the floor beside the confirm latency, measured on the same disk in the same run, so
//! the two can be compared without guessing what the disk does.
//!
//! What it measures is a journal's append without the broker: [`PROBE_SYNCS`] times (and for
//! at most [`PROBE_BUDGET`]), 1 KiB appended with one `write()`, then `fdatasync`
//! ([`File::sync_data`]), each timed from the write to the sync's return. The file is new and
//! grows, so each sync also persists the file's size, as a journal's does when it appends to a
//! segment it has not preallocated. The file is removed afterwards, also when a step fails.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::report::{latency_histogram, record_latency};

/// Syncs a probe makes at most.
pub const PROBE_SYNCS: usize = 200;
/// How long a probe goes on at most (a slow disk gives fewer syncs, never a longer wait).
pub const PROBE_BUDGET: Duration = Duration::from_secs(5);
/// Bytes appended before each sync: about one durable message with its framing.
const APPEND_BYTES: usize = 1024;

/// The disk's own sync time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSync {
    /// Median append-and-sync time, microseconds.
    pub p50_us: u64,
    /// 99th percentile, microseconds.
    pub p99_us: u64,
    /// Slowest, microseconds.
    pub max_us: u64,
    /// Syncs measured.
    pub count: u64,
}

/// Measures the sync time of the file system holding `dir`: up to `syncs` appends of 1 KiB,
/// each followed by `fdatasync`, for at most `budget` (at least one is always made).
pub fn probe(dir: &Path, syncs: usize, budget: Duration) -> io::Result<DiskSync> {
    let mut file = ProbeFile::create(dir)?;
    let record = [0xa5u8; APPEND_BYTES];
    let mut latency = latency_histogram();
    let start = Instant::now();
    for _ in 0..syncs.max(1) {
        if !latency.is_empty() && start.elapsed() >= budget {
            break;
        }
        let t = Instant::now();
        file.file.write_all(&record)?;
        file.file.sync_data()?;
        record_latency(&mut latency, t.elapsed().as_micros() as u64);
    }
    file.remove()?;
    Ok(DiskSync {
        p50_us: latency.value_at_quantile(0.50),
        p99_us: latency.value_at_quantile(0.99),
        max_us: latency.max(),
        count: latency.len(),
    })
}

/// The probe's file, removed when dropped (an error on the way out leaves nothing behind).
struct ProbeFile {
    path: PathBuf,
    file: File,
    removed: bool,
}

impl ProbeFile {
    /// A new file in `dir`, never one that exists already.
    fn create(dir: &Path) -> io::Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = dir.join(format!(
            ".sluice-bench-sync-probe-{}-{nanos}",
            std::process::id()
        ));
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)?;
        Ok(ProbeFile {
            path,
            file,
            removed: false,
        })
    }

    fn remove(&mut self) -> io::Result<()> {
        self.removed = true;
        std::fs::remove_file(&self.path)
    }
}

impl Drop for ProbeFile {
    fn drop(&mut self) {
        if !self.removed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_probe_measures_each_sync_and_leaves_nothing_behind() {
        let dir =
            std::env::temp_dir().join(format!("sluice-bench-probe-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let d = probe(&dir, 5, PROBE_BUDGET).unwrap();
        let left = std::fs::read_dir(&dir).unwrap().count();
        std::fs::remove_dir(&dir).unwrap();
        assert_eq!(d.count, 5, "{d:?}");
        assert!(
            d.p50_us >= 1 && d.p50_us <= d.p99_us && d.p99_us <= d.max_us,
            "{d:?}"
        );
        assert_eq!(left, 0, "the probe's file is removed");
    }

    #[test]
    fn a_spent_budget_still_gives_one_sync() {
        let dir = std::env::temp_dir();
        let d = probe(&dir, 100, Duration::ZERO).unwrap();
        assert_eq!(d.count, 1, "{d:?}");
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let dir = std::env::temp_dir().join("sluice-bench-no-such-dir/deeper");
        assert!(probe(&dir, 1, PROBE_BUDGET).is_err());
    }
}
