//! The result of a run: counts, rates, latency percentiles and the broker's usage, as a table
//! for people or JSON for machines.

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::syncprobe::DiskSync;

/// Highest latency a histogram holds: 10 minutes, in microseconds.
pub(crate) const LATENCY_MAX_US: u64 = 600_000_000;

/// An empty latency histogram, microseconds: the one kind every latency of a run goes into.
// The bounds are constants that `new_with_bounds` accepts.
#[allow(clippy::expect_used)]
pub(crate) fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("valid histogram bounds")
}

/// Records `micros` in `h`, clamped to what it holds (a latency under 1 µs counts as 1).
pub(crate) fn record_latency(h: &mut Histogram<u64>, micros: u64) {
    let _ = h.record(micros.clamp(1, LATENCY_MAX_US));
}

/// Latency percentiles (end to end, or confirm), microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// 99.99th percentile.
    pub p9999: u64,
    /// Largest.
    pub max: u64,
}

impl Latency {
    /// The percentiles of `h` (microseconds), or `None` when it is empty.
    pub fn from_histogram(h: &Histogram<u64>) -> Option<Self> {
        (!h.is_empty()).then(|| Latency {
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            p9999: h.value_at_quantile(0.9999),
            max: h.max(),
        })
    }

    /// The percentiles as a JSON object (`p50` to `p9999`, and `max`).
    fn to_json(self) -> Value {
        json!({
            "p50": self.p50, "p90": self.p90, "p99": self.p99,
            "p999": self.p999, "p9999": self.p9999, "max": self.max,
        })
    }
}

/// What the broker process spent during the measured interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BrokerUsage {
    /// CPU time over wall time, in percent of one core.
    pub cpu_percent: f64,
    /// Largest resident set size seen, MiB.
    pub peak_rss_mib: f64,
}

/// A run's results.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    /// Messages sent (all, warm-up included).
    pub sent: u64,
    /// Messages received (all, warm-up included).
    pub received: u64,
    /// Messages the broker accepted (unsettled sends only).
    pub accepted: u64,
    /// Transactions committed (`--txn-batch` only).
    pub commits: u64,
    /// Measured messages sent per second.
    pub sender_rate: f64,
    /// Measured messages received per second, from the first to the last received.
    pub receiver_rate: f64,
    /// Measured messages received per second, from the end of the warm-up to the last
    /// received: what a user sees end to end.
    pub end_to_end_rate: f64,
    /// Latency of the measured messages.
    pub latency: Option<Latency>,
    /// Confirm latency of the measured messages: from sending a transfer unsettled to the
    /// peer's settling it accepted (none with pre-settled sends).
    pub confirm: Option<Latency>,
    /// Whether the senders sent pre-settled (then there is nothing to confirm).
    pub presettled: bool,
    /// The disk's own sync time, with `--sync-probe`.
    pub disk_sync: Option<DiskSync>,
    /// The broker's usage, when its pid was given.
    pub broker: Option<BrokerUsage>,
    /// The measured interval, seconds.
    pub duration_s: f64,
    /// What went wrong (refused links, lost messages, rejected sends).
    pub errors: Vec<String>,
}

impl Report {
    /// The report as one JSON object (the field names are stable: scripts read them).
    pub fn to_json(&self) -> Value {
        json!({
            "sent": self.sent,
            "received": self.received,
            "accepted": self.accepted,
            "commits": self.commits,
            "sender_rate": round(self.sender_rate),
            "receiver_rate": round(self.receiver_rate),
            "end_to_end_rate": round(self.end_to_end_rate),
            "latency_us": self.latency.map(Latency::to_json),
            "confirm_us": self.confirm.map(Latency::to_json),
            "disk_sync_p50_us": self.disk_sync.map(|d| d.p50_us),
            "disk_sync_p99_us": self.disk_sync.map(|d| d.p99_us),
            "disk_sync_count": self.disk_sync.map(|d| d.count),
            "broker": self.broker.map(|b| json!({
                "cpu_percent": round(b.cpu_percent * 10.0) / 10.0,
                "peak_rss_mib": round(b.peak_rss_mib * 10.0) / 10.0,
            })),
            "duration_s": round(self.duration_s * 1000.0) / 1000.0,
            "errors": self.errors,
        })
    }

    /// The report as a table for a terminal.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let rate = |r: f64| format!("{:>12} msg/s", thousands(round(r) as u64));
        out.push_str(&format!(
            "messages     {:>12} sent, {} received",
            thousands(self.sent),
            thousands(self.received)
        ));
        if self.accepted > 0 {
            out.push_str(&format!(", {} accepted", thousands(self.accepted)));
        }
        if self.commits > 0 {
            out.push_str(&format!(", {} commits", thousands(self.commits)));
        }
        out.push('\n');
        out.push_str(&format!("sender       {}\n", rate(self.sender_rate)));
        out.push_str(&format!("receiver     {}\n", rate(self.receiver_rate)));
        out.push_str(&format!("end to end   {}\n", rate(self.end_to_end_rate)));
        match self.latency {
            Some(l) => out.push_str(&format!(
                "latency µs   p50 {}  p90 {}  p99 {}  p99.9 {}  p99.99 {}  max {}\n",
                thousands(l.p50),
                thousands(l.p90),
                thousands(l.p99),
                thousands(l.p999),
                thousands(l.p9999),
                thousands(l.max)
            )),
            None => out.push_str("latency µs   (no measured messages)\n"),
        }
        out.push_str(&self.confirm_line());
        if let Some(b) = self.broker {
            out.push_str(&format!(
                "broker       CPU {:.1}% of a core, peak RSS {:.1} MiB\n",
                b.cpu_percent, b.peak_rss_mib
            ));
        }
        out.push_str(&format!("measured     {:.2} s\n", self.duration_s));
        for e in &self.errors {
            out.push_str(&format!("error        {e}\n"));
        }
        out
    }

    /// The confirm latency, and the disk's own sync time beside it when probed.
    fn confirm_line(&self) -> String {
        let mut line = match self.confirm {
            Some(c) => format!(
                "confirm µs   p50 {}  p99 {}  max {}",
                thousands(c.p50),
                thousands(c.p99),
                thousands(c.max)
            ),
            None if self.presettled => "confirm µs   n/a (pre-settled sends)".to_string(),
            None => "confirm µs   (no measured confirms)".to_string(),
        };
        if let Some(d) = self.disk_sync {
            line.push_str(&format!(
                "   disk sync µs p50 {}  p99 {} ({} syncs)",
                thousands(d.p50_us),
                thousands(d.p99_us),
                thousands(d.count)
            ));
        }
        line.push('\n');
        line
    }
}

fn round(x: f64) -> f64 {
    x.round()
}

/// `1234567` as `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn percentiles_come_from_the_histogram() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for v in 1..=10_000u64 {
            h.record(v).unwrap();
        }
        let l = Latency::from_histogram(&h).unwrap();
        assert!((4990..=5010).contains(&l.p50), "{l:?}");
        assert!((9890..=9910).contains(&l.p99), "{l:?}");
        assert!((9990..=10_010).contains(&l.p999), "{l:?}");
        assert!((9990..=10_010).contains(&l.max), "{l:?}");
        assert!(Latency::from_histogram(&Histogram::<u64>::new(3).unwrap()).is_none());
    }

    #[test]
    fn the_json_has_the_documented_fields() {
        let r = Report {
            sent: 10,
            received: 9,
            sender_rate: 1000.4,
            latency: Some(Latency {
                p50: 1,
                p90: 2,
                p99: 3,
                p999: 4,
                p9999: 5,
                max: 6,
            }),
            broker: Some(BrokerUsage {
                cpu_percent: 55.55,
                peak_rss_mib: 12.34,
            }),
            errors: vec!["lost 1".into()],
            ..Default::default()
        };
        let j = r.to_json();
        for field in [
            "sent",
            "received",
            "sender_rate",
            "receiver_rate",
            "end_to_end_rate",
            "latency_us",
            "broker",
            "duration_s",
            "errors",
        ] {
            assert!(j.get(field).is_some(), "{field} missing from {j}");
        }
        assert_eq!(j["sender_rate"], 1000.0);
        assert_eq!(j["latency_us"]["p9999"], 5);
        assert_eq!(j["broker"]["cpu_percent"], 55.6);
        assert_eq!(j["errors"][0], "lost 1");
        assert!(r.table().contains("error        lost 1"));
        assert!(r.table().contains("p99.99 5"));
    }

    #[test]
    fn confirm_latency_and_disk_sync_are_reported_side_by_side() {
        let l = Latency {
            p50: 1200,
            p90: 1500,
            p99: 2500,
            p999: 3000,
            p9999: 3100,
            max: 4000,
        };
        let r = Report {
            confirm: Some(l),
            disk_sync: Some(DiskSync {
                p50_us: 900,
                p99_us: 1800,
                max_us: 2000,
                count: 200,
            }),
            ..Default::default()
        };
        let j = r.to_json();
        assert_eq!(j["confirm_us"]["p50"], 1200);
        assert_eq!(j["confirm_us"]["max"], 4000);
        assert_eq!(j["disk_sync_p50_us"], 900);
        assert_eq!(j["disk_sync_p99_us"], 1800);
        assert!(
            r.table().contains(
                "confirm µs   p50 1,200  p99 2,500  max 4,000   disk sync µs p50 900  p99 1,800"
            ),
            "{}",
            r.table()
        );
        // Pre-settled: nothing to confirm, and no probe asked for.
        let r = Report {
            presettled: true,
            ..Default::default()
        };
        let j = r.to_json();
        assert!(
            j["confirm_us"].is_null() && j["disk_sync_p50_us"].is_null(),
            "{j}"
        );
        assert!(r.table().contains("confirm µs   n/a (pre-settled sends)\n"));
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
