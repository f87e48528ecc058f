//! What a scenario found: the broker's resident memory at each step, the figures derived from
//! it, what the broker did (refusals, detaches) and what kept the scenario from finishing; as a
//! table for people or one JSON object for the before-and-after records.

use serde_json::{Map, Value, json};

use crate::report::thousands;

/// One reading of the broker's resident set size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RssReading {
    /// Stable name for scripts (`round_1_peak`).
    pub key: String,
    /// What had just happened, for people.
    pub label: String,
    /// VmRSS, KiB.
    pub kib: u64,
}

/// A scenario's results.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostileReport {
    /// The scenario's name, as on the command line.
    pub scenario: String,
    /// The endpoint it drove.
    pub url: String,
    /// The broker's process id.
    pub pid: u32,
    /// RSS readings in the order taken.
    pub rss: Vec<RssReading>,
    /// Derived figures in the order computed, each named with its unit last
    /// (`rss_per_connection_bytes`).
    pub figures: Vec<(String, f64)>,
    /// What the broker did that the scenario observed (refused links, closed connections).
    pub notes: Vec<String>,
    /// What kept the scenario from finishing as described (a timeout, a lost connection).
    pub errors: Vec<String>,
}

impl HostileReport {
    /// An empty report for `scenario` against `url` and broker `pid`.
    pub fn new(scenario: &str, url: &str, pid: u32) -> Self {
        HostileReport {
            scenario: scenario.to_string(),
            url: url.to_string(),
            pid,
            ..Default::default()
        }
    }

    /// Records a reading.
    pub fn reading(&mut self, key: &str, label: impl Into<String>, kib: u64) {
        self.rss.push(RssReading {
            key: key.to_string(),
            label: label.into(),
            kib,
        });
    }

    /// Records a figure.
    pub fn figure(&mut self, key: impl Into<String>, value: f64) {
        self.figures.push((key.into(), value));
    }

    /// The key of the latest reading ("" before any).
    pub fn last_key(&self) -> String {
        self.rss.last().map(|r| r.key.clone()).unwrap_or_default()
    }

    /// The reading named `key`, KiB.
    pub fn kib(&self, key: &str) -> Option<u64> {
        self.rss.iter().find(|r| r.key == key).map(|r| r.kib)
    }

    /// Bytes by which reading `to` exceeds reading `from` (negative when it fell).
    pub fn growth_bytes(&self, from: &str, to: &str) -> Option<f64> {
        Some((self.kib(to)? as f64 - self.kib(from)? as f64) * 1024.0)
    }

    /// The report as one JSON object (the field names are stable: scripts read them).
    pub fn to_json(&self) -> Value {
        let rss: Vec<Value> = self
            .rss
            .iter()
            .map(|r| json!({ "key": r.key, "label": r.label, "kib": r.kib }))
            .collect();
        let figures: Map<String, Value> = self
            .figures
            .iter()
            .map(|(k, v)| (k.clone(), json_number(*v)))
            .collect();
        json!({
            "scenario": self.scenario,
            "url": self.url,
            "pid": self.pid,
            "rss": rss,
            "figures": figures,
            "notes": self.notes,
            "errors": self.errors,
        })
    }

    /// The report as a table for a terminal: each reading in MiB with its change from the
    /// first, then the figures, notes and errors.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{} against {} (broker pid {})\n",
            self.scenario, self.url, self.pid
        );
        let width = self.rss.iter().map(|r| r.label.len()).max().unwrap_or(0);
        let first = self.rss.first().map_or(0, |r| r.kib);
        out.push_str(&format!(
            "{:width$}  {:>10}  {:>10}\n",
            "broker RSS", "MiB", "change"
        ));
        for r in &self.rss {
            let change = (r.kib as f64 - first as f64) / 1024.0;
            out.push_str(&format!(
                "{:width$}  {:>10.1}  {:>+10.1}\n",
                r.label,
                r.kib as f64 / 1024.0,
                change
            ));
        }
        let width = self.figures.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (key, value) in &self.figures {
            out.push_str(&format!("{key:width$}  {:>14}\n", number(*value)));
        }
        for n in &self.notes {
            out.push_str(&format!("note   {n}\n"));
        }
        for e in &self.errors {
            out.push_str(&format!("error  {e}\n"));
        }
        out
    }
}

/// A count as a JSON integer, anything else to three decimals.
fn json_number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9e15 {
        json!(x as i64)
    } else {
        json!((x * 1000.0).round() / 1000.0)
    }
}

/// A whole number with thousands separators; anything else with one decimal.
fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        let sign = if x < 0.0 { "-" } else { "" };
        format!("{sign}{}", thousands(x.abs() as u64))
    } else {
        format!("{x:.1}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn readings_figures_and_notes_reach_the_table_and_the_json() {
        let mut r = HostileReport::new("idle-connections", "amqp://h/q", 42);
        r.reading("start", "start", 10 * 1024);
        r.reading("open", "1,000 open", 64 * 1024);
        r.figure("rss_per_connection_bytes", 55_705.6);
        r.figure("connections", 1000.0);
        r.notes.push("the broker closed 3".into());
        assert_eq!(
            r.growth_bytes("start", "open"),
            Some(54.0 * 1024.0 * 1024.0)
        );
        assert_eq!(r.growth_bytes("start", "nothing"), None);
        let table = r.table();
        assert!(table.contains("1,000 open"), "{table}");
        assert!(table.contains("+54.0"), "{table}");
        assert!(table.contains("55705.6"), "{table}");
        assert!(table.contains("1,000\n"), "{table}");
        assert!(table.contains("note   the broker closed 3"), "{table}");
        let j = r.to_json();
        assert_eq!(j["scenario"], "idle-connections");
        assert_eq!(j["rss"][1]["key"], "open");
        assert_eq!(j["rss"][1]["kib"], 64 * 1024);
        assert_eq!(j["figures"]["rss_per_connection_bytes"], 55_705.6);
        assert_eq!(j["figures"]["connections"].as_u64(), Some(1000));
        assert_eq!(j["errors"].as_array().unwrap().len(), 0);
    }
}
