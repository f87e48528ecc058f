//! Watching the broker while a scenario runs: its resident memory sampled in the background
//! for the peak, readings taken once the broker has settled, and bounded waits.
//!
//! A reading is taken when the broker is quiet: its CPU has stopped (it has read and handled
//! everything sent) and its resident size has stopped moving, or when [`CommonArgs::settle`]
//! runs out. A figure then does not depend on where in a burst of allocations or frees the
//! tool happened to look, so a before and an after run compare.
//!
//! [`CommonArgs::settle`]: super::CommonArgs::settle

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::report::HostileReport;
use crate::procstat::{SAMPLE_INTERVAL, clock_ticks, open_sockets, rss_kib, sample};
use crate::url::BenchUrl;

/// How often a settling broker is read.
const SETTLE_STEP: Duration = Duration::from_millis(250);
/// Readings that must agree for the broker to count as settled: one second's worth.
const SETTLE_READINGS: usize = 5;
/// Resident sizes within this much of each other (or 1 % of the size, if more) agree.
const SETTLE_RSS_SLACK_KIB: u64 = 1024;
/// CPU below this share of one core over the settling window counts as quiet.
const SETTLE_CPU_PERCENT_MAX: f64 = 5.0;
/// How often a bounded wait checks its condition.
const POLL: Duration = Duration::from_millis(10);
/// Longest a single connection attempt may take (within the scenario's deadline).
const CONNECT_TIMEOUT_MAX: Duration = Duration::from_secs(30);

/// The broker's resident size, sampled every [`SAMPLE_INTERVAL`] for its peak.
#[derive(Debug)]
struct Rss {
    pid: u32,
    peak_kib: Arc<AtomicU64>,
    sampler: JoinHandle<()>,
}

impl Rss {
    fn start(pid: u32) -> Result<Self, String> {
        let first = rss_kib(pid).ok_or_else(|| {
            format!("cannot read VmRSS from /proc/{pid}/status: is {pid} the broker's pid?")
        })?;
        let peak_kib = Arc::new(AtomicU64::new(first));
        let peak = peak_kib.clone();
        let sampler = tokio::spawn(async move {
            loop {
                tokio::time::sleep(SAMPLE_INTERVAL).await;
                if let Some(kib) = rss_kib(pid) {
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
            }
        });
        Ok(Rss {
            pid,
            peak_kib,
            sampler,
        })
    }

    /// Now, KiB (0 if the broker is gone).
    fn now_kib(&self) -> u64 {
        let kib = rss_kib(self.pid).unwrap_or(0);
        self.peak_kib.fetch_max(kib, Ordering::Relaxed);
        kib
    }

    /// The largest size since the last call, then starts over from now.
    fn take_peak_kib(&self) -> u64 {
        let now = self.now_kib();
        self.peak_kib.swap(now, Ordering::Relaxed).max(now)
    }
}

impl Drop for Rss {
    fn drop(&mut self) {
        self.sampler.abort();
    }
}

/// Whether a window of (CPU ticks, RSS KiB) readings, [`SETTLE_STEP`] apart, shows a broker
/// at rest.
fn at_rest(window: &[(u64, u64)], ticks_per_second: u64) -> bool {
    let (Some(first), Some(last)) = (window.first(), window.last()) else {
        return false;
    };
    if window.len() < SETTLE_READINGS {
        return false;
    }
    let seconds = SETTLE_STEP.as_secs_f64() * (window.len() - 1) as f64;
    let cpu_seconds = last.0.saturating_sub(first.0) as f64 / ticks_per_second.max(1) as f64;
    let quiet = 100.0 * cpu_seconds / seconds < SETTLE_CPU_PERCENT_MAX;
    let low = window.iter().map(|r| r.1).min().unwrap_or(0);
    let high = window.iter().map(|r| r.1).max().unwrap_or(0);
    let flat = high - low <= SETTLE_RSS_SLACK_KIB.max(high / 100);
    quiet && flat
}

/// How a bounded wait for a count ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// The count reached its target.
    Reached,
    /// The count stopped moving for the stall time: the broker is holding back.
    Stalled,
    /// The scenario's deadline came first.
    TimedOut,
}

/// One scenario's context: where it connects, the broker it watches, its deadline and the
/// report it fills in.
#[derive(Debug)]
pub(crate) struct Measure {
    pub(crate) url: BenchUrl,
    rss: Rss,
    ticks_per_second: u64,
    deadline: Instant,
    settle_max: Duration,
    pub(crate) report: HostileReport,
}

impl Measure {
    pub(crate) fn new(
        scenario: &str,
        url: &str,
        pid: u32,
        timeout: Duration,
        settle_max: Duration,
    ) -> Result<Self, String> {
        let parsed = BenchUrl::parse(url).map_err(|e| e.to_string())?;
        Ok(Measure {
            url: parsed,
            rss: Rss::start(pid)?,
            ticks_per_second: clock_ticks(),
            deadline: Instant::now() + timeout,
            settle_max,
            report: HostileReport::new(scenario, url, pid),
        })
    }

    /// The broker's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.rss.pid
    }

    /// Whether the scenario's deadline has passed.
    pub(crate) fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// How long one connection attempt may take.
    pub(crate) fn connect_timeout(&self) -> Duration {
        self.deadline
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_millis(100), CONNECT_TIMEOUT_MAX)
    }

    /// Waits for the broker to settle, then records its size as `key`; returns it, KiB.
    pub(crate) async fn read(&mut self, key: &str, label: impl Into<String>) -> u64 {
        let kib = self.settled_kib().await;
        self.report.reading(key, label, kib);
        kib
    }

    /// Records the largest size since the last [`Measure::start_peak`] as `key`.
    pub(crate) fn peak(&mut self, key: &str, label: impl Into<String>) -> u64 {
        let kib = self.rss.take_peak_kib();
        self.report.reading(key, label, kib);
        kib
    }

    /// Starts the interval the next [`Measure::peak`] covers.
    pub(crate) fn start_peak(&self) {
        self.rss.take_peak_kib();
    }

    /// Records the sockets the broker holds as figure `key` (its listener counts as one).
    pub(crate) fn sockets(&mut self, key: &str) {
        if let Some(n) = open_sockets(self.pid()) {
            self.report.figure(key, n as f64);
        }
    }

    /// The broker's size once it is at rest, or when the settle time (or the deadline) is up.
    async fn settled_kib(&self) -> u64 {
        let until = (Instant::now() + self.settle_max).min(self.deadline);
        let mut window: Vec<(u64, u64)> = Vec::with_capacity(SETTLE_READINGS);
        loop {
            let Some(s) = sample(self.pid()) else {
                return 0;
            };
            if window.len() == SETTLE_READINGS {
                window.remove(0);
            }
            window.push((s.cpu_ticks, s.rss_kib));
            self.rss.peak_kib.fetch_max(s.rss_kib, Ordering::Relaxed);
            if at_rest(&window, self.ticks_per_second) || Instant::now() >= until {
                return s.rss_kib;
            }
            tokio::time::sleep(SETTLE_STEP).await;
        }
    }

    /// Polls `done` until it holds; at the deadline records that `what` timed out and returns
    /// false.
    pub(crate) async fn wait(&mut self, what: &str, mut done: impl FnMut() -> bool) -> bool {
        loop {
            if done() {
                return true;
            }
            if self.expired() {
                self.timed_out(what);
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `count()` reaches `target` or stops moving for `stall`.
    pub(crate) async fn wait_progress(
        &mut self,
        what: &str,
        count: impl Fn() -> u64,
        target: u64,
        stall: Duration,
    ) -> Progress {
        let mut last = count();
        let mut moved = Instant::now();
        loop {
            let now_count = count();
            if now_count >= target {
                return Progress::Reached;
            }
            if now_count != last {
                last = now_count;
                moved = Instant::now();
            } else if moved.elapsed() >= stall {
                return Progress::Stalled;
            }
            if self.expired() {
                self.timed_out(what);
                return Progress::TimedOut;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn timed_out(&mut self, what: &str) {
        self.report
            .errors
            .push(format!("--timeout ran out while {what}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broker_is_at_rest_when_quiet_and_flat_for_a_second() {
        let flat = [(100, 50_000); SETTLE_READINGS];
        assert!(at_rest(&flat, 100));
        assert!(!at_rest(&flat[..SETTLE_READINGS - 1], 100), "too short");
        let mut busy = flat;
        busy[SETTLE_READINGS - 1].0 = 150; // half a core for a second
        assert!(!at_rest(&busy, 100));
        let mut growing = flat;
        growing[SETTLE_READINGS - 1].1 = 60_000;
        assert!(!at_rest(&growing, 100));
        let mut jitter = flat;
        jitter[2].1 = 50_400; // under 1 MiB
        assert!(at_rest(&jitter, 100));
    }
}
