//! The broker's CPU time and memory, read from `/proc/PID` (Linux), so a run reports what
//! the broker process spent while the harness drove it.

use std::time::{Duration, Instant};

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sample {
    /// User plus system CPU time, in clock ticks.
    pub(crate) cpu_ticks: u64,
    /// Resident set size, KiB.
    pub(crate) rss_kib: u64,
}

/// `utime + stime` from the text of `/proc/PID/stat`. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted from the last `)`.
pub(crate) fn parse_stat(text: &str) -> Option<u64> {
    let after = text.get(text.rfind(')')? + 1..)?;
    // After ")": state is field 3; utime and stime are fields 14 and 15.
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A `Name:   N kB` line of `/proc/PID/status`, in KiB.
pub(crate) fn parse_status_kib(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Reads process `pid` now; `None` if it is gone or unreadable.
pub(crate) fn sample(pid: u32) -> Option<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(Sample {
        cpu_ticks: parse_stat(&stat)?,
        rss_kib: parse_status_kib(&status, "VmRSS:")?,
    })
}

/// The resident set size of process `pid` now, KiB; `None` if it is gone or unreadable.
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&status, "VmRSS:")
}

/// How many sockets process `pid` holds open (its listeners and connections), from
/// `/proc/PID/fd`; `None` if that cannot be read.
pub(crate) fn open_sockets(pid: u32) -> Option<usize> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(
        fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .filter(|target| target.to_string_lossy().starts_with("socket:"))
            .count(),
    )
}

/// The soft limit on open files of process `pid` (`Max open files` in `/proc/PID/limits`);
/// `None` if unreadable or unlimited.
pub(crate) fn open_files_max(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    parse_open_files_max(&limits)
}

fn parse_open_files_max(limits: &str) -> Option<u64> {
    limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|soft| soft.parse().ok())
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 where it cannot be asked, Linux's value).
pub(crate) fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|t| *t > 0)
        .unwrap_or(100)
}

/// How often the resident size is sampled for its peak.
pub(crate) const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// What a process spent between two readings: CPU as a percentage of one core, and the peak
/// resident size seen in between.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Usage {
    pub(crate) cpu_percent: f64,
    pub(crate) peak_rss_kib: u64,
}

/// Watches a process from `start` on.
#[derive(Debug)]
pub(crate) struct Watch {
    pid: u32,
    ticks_per_second: u64,
    first: Option<(Instant, Sample)>,
    last: Option<(Instant, Sample)>,
    peak_rss_kib: u64,
}

impl Watch {
    pub(crate) fn new(pid: u32) -> Self {
        Watch {
            pid,
            ticks_per_second: clock_ticks(),
            first: None,
            last: None,
            peak_rss_kib: 0,
        }
    }

    /// Takes a reading; the first one starts the measured interval.
    pub(crate) fn tick(&mut self) {
        if let Some(s) = sample(self.pid) {
            let now = Instant::now();
            self.peak_rss_kib = self.peak_rss_kib.max(s.rss_kib);
            if self.first.is_none() {
                self.first = Some((now, s));
            }
            self.last = Some((now, s));
        }
    }

    /// Starts the measured interval again (after the warm-up).
    pub(crate) fn restart(&mut self) {
        self.first = None;
        self.peak_rss_kib = 0;
        self.tick();
    }

    /// The usage between the first and the last reading.
    pub(crate) fn usage(&self) -> Option<Usage> {
        let ((t0, s0), (t1, s1)) = (self.first?, self.last?);
        let wall = t1.duration_since(t0).as_secs_f64();
        let cpu = s1.cpu_ticks.saturating_sub(s0.cpu_ticks) as f64 / self.ticks_per_second as f64;
        Some(Usage {
            cpu_percent: if wall > 0.0 { 100.0 * cpu / wall } else { 0.0 },
            peak_rss_kib: self.peak_rss_kib,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat = "1234 (a (weird) name) S 1 1234 1234 0 -1 4194560 500 0 0 0 731 269 0 0 20 0 3 0 100 1000000 2000 18446744073709551615";
        assert_eq!(parse_stat(stat), Some(1000));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn status_lines_give_kibibytes() {
        let status = "Name:\tsluice\nVmHWM:\t   40960 kB\nVmRSS:\t   30720 kB\n";
        assert_eq!(parse_status_kib(status, "VmRSS:"), Some(30720));
        assert_eq!(parse_status_kib(status, "VmHWM:"), Some(40960));
        assert_eq!(parse_status_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn the_open_files_limit_is_the_soft_one() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             95000                95000                processes \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(parse_open_files_max(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files     \n";
        assert_eq!(parse_open_files_max(unlimited), None);
        assert!(open_files_max(std::process::id()).is_some());
        assert!(rss_kib(std::process::id()).is_some_and(|kib| kib > 0));
    }

    #[test]
    fn this_process_can_be_watched() {
        let mut w = Watch::new(std::process::id());
        w.tick();
        // Burn a little CPU so the interval has some.
        let mut x = 0u64;
        for i in 0..3_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        w.tick();
        let u = w.usage().unwrap();
        assert!(u.peak_rss_kib > 0);
        assert!(u.cpu_percent >= 0.0);
    }
}
