//! The metrics the IO shell counts as things happen: connections, sessions, links,
//! authentications, the journal and reloads. Each is an atomic that the task it concerns
//! updates; what the core holds is read at scrape time instead (`collect`).
//!
//! Every label value is bounded by the configuration, never chosen by a client: a link is
//! labelled with the configured address it resolved to, a mechanism with one Sluice offers.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// A link's configured address and which way its messages flow (`in`: to the broker).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct LinkLabels {
    pub(crate) address: String,
    pub(crate) direction: &'static str,
}

/// A SASL mechanism (`none` for a client without SASL).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct MechanismLabels {
    pub(crate) mechanism: &'static str,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabels {
    pub(crate) reason: &'static str,
}

/// The live metrics.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) connections: Gauge,
    pub(crate) connections_opened: Counter,
    pub(crate) connections_refused: Family<ReasonLabels, Counter>,
    pub(crate) sessions: Gauge,
    pub(crate) links: Family<LinkLabels, Gauge>,
    pub(crate) auth_successes: Family<MechanismLabels, Counter>,
    pub(crate) auth_failures: Family<MechanismLabels, Counter>,
    pub(crate) journal_sync: JournalSync,
    pub(crate) journal_written: Counter,
    pub(crate) journal_segments: Gauge,
    pub(crate) reloads: Counter,
    pub(crate) reload_failures: Counter,
    pub(crate) last_reload_success: Gauge,
    pub(crate) ready: Gauge,
    pub(crate) authentication_service_ready: Gauge,
}

/// The journal's fsync times, in seconds.
#[derive(Debug)]
pub(crate) struct JournalSync(pub(crate) Histogram);

impl Default for JournalSync {
    fn default() -> Self {
        // 100 µs to about 3 s: a local SSD syncs in well under a millisecond, a network
        // volume in tens, and a disk in trouble in seconds.
        let buckets = prometheus_client::metrics::histogram::exponential_buckets(0.0001, 2.0, 15);
        JournalSync(Histogram::new(buckets))
    }
}

impl Metrics {
    /// Registers every family under `registry` (prefixed `sluice_` by the caller).
    pub(crate) fn register(&self, registry: &mut Registry) {
        registry.register(
            "connections",
            "Open AMQP connections",
            self.connections.clone(),
        );
        registry.register(
            "connections_opened",
            "AMQP connections accepted",
            self.connections_opened.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections refused by a connection limit",
            self.connections_refused.clone(),
        );
        registry.register("sessions", "Open AMQP sessions", self.sessions.clone());
        registry.register(
            "links",
            "Attached links by configured address and direction (in: to the broker)",
            self.links.clone(),
        );
        registry.register(
            "auth_successes",
            "Authentications that succeeded, by SASL mechanism",
            self.auth_successes.clone(),
        );
        registry.register(
            "auth_failures",
            "Authentications that failed, by SASL mechanism",
            self.auth_failures.clone(),
        );
        registry.register(
            "journal_sync_duration_seconds",
            "Time of each journal fsync",
            self.journal_sync.0.clone(),
        );
        registry.register(
            "journal_written_bytes",
            "Bytes written to the journal",
            self.journal_written.clone(),
        );
        registry.register(
            "journal_segments",
            "Journal segment files",
            self.journal_segments.clone(),
        );
        registry.register(
            "config_reloads",
            "Configuration reloads applied",
            self.reloads.clone(),
        );
        registry.register(
            "config_reload_failures",
            "Configuration reloads refused (the configuration was invalid)",
            self.reload_failures.clone(),
        );
        registry.register(
            "config_last_reload_success_timestamp_seconds",
            "Unix time the configuration in force was applied",
            self.last_reload_success.clone(),
        );
        registry.register("ready", "1 when /readyz answers ready", self.ready.clone());
        registry.register(
            "authentication_service_ready",
            "1 when the authentication service answers (always 1 for none and standard)",
            self.authentication_service_ready.clone(),
        );
    }

    /// The gauge of links of `direction` on `address`, to hold for the link's life.
    pub(crate) fn link(&self, address: &str, send: bool) -> LinkGauge {
        let labels = LinkLabels {
            address: address.to_string(),
            direction: if send { "in" } else { "out" },
        };
        let gauge = self.links.get_or_create(&labels).clone();
        gauge.inc();
        LinkGauge(gauge)
    }
}

impl Metrics {
    /// Counts a connection refused by a limit.
    pub(crate) fn refused(&self, reason: &'static str) {
        self.connections_refused
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Counts an authentication's outcome with the mechanism the client chose.
    pub(crate) fn authenticated(&self, mechanism: Option<&str>, ok: bool) {
        let labels = MechanismLabels {
            mechanism: mechanism_label(mechanism),
        };
        let family = if ok {
            &self.auth_successes
        } else {
            &self.auth_failures
        };
        family.get_or_create(&labels).inc();
    }
}

impl Metrics {
    /// Makes every labelled family's samples exist at 0 (Prometheus encodes no family
    /// without a sample, and a dashboard or alert should see 0, not nothing): each refusal
    /// reason and mechanism, and both directions of every address in `addresses`.
    pub(crate) fn zero(&self, addresses: &[&str]) {
        for reason in ["total", "host", "user", "unauthenticated"] {
            drop(
                self.connections_refused
                    .get_or_create(&ReasonLabels { reason }),
            );
        }
        for mechanism in MECHANISMS.into_iter().chain(["none", "other"]) {
            let labels = MechanismLabels { mechanism };
            drop(self.auth_successes.get_or_create(&labels));
            drop(self.auth_failures.get_or_create(&labels));
        }
        // Relay senders have no address, and are always possible.
        drop(self.links.get_or_create(&LinkLabels {
            address: RELAY_LABEL.to_string(),
            direction: "in",
        }));
        for address in addresses {
            for direction in ["in", "out"] {
                drop(self.links.get_or_create(&LinkLabels {
                    address: (*address).to_string(),
                    direction,
                }));
            }
        }
    }
}

/// The address anonymous-relay senders are counted under (no configured address starts
/// with `$`).
pub(crate) const RELAY_LABEL: &str = "$relay";

/// The SASL mechanisms Sluice knows.
const MECHANISMS: [&str; 5] = [
    "ANONYMOUS",
    "PLAIN",
    "SCRAM-SHA-256",
    "SCRAM-SHA-512",
    "EXTERNAL",
];

/// The label of a mechanism a client named: one Sluice knows, or `other`, so a client
/// inventing names cannot add label values.
fn mechanism_label(mechanism: Option<&str>) -> &'static str {
    match mechanism {
        None => "none",
        Some(m) => MECHANISMS
            .into_iter()
            .find(|k| k.eq_ignore_ascii_case(m))
            .unwrap_or("other"),
    }
}

/// The journal writer's metrics, moved to its thread.
#[derive(Debug, Clone)]
pub(crate) struct JournalMetrics {
    pub(crate) sync: Histogram,
    pub(crate) written: Counter,
    pub(crate) segments: Gauge,
}

impl Metrics {
    pub(crate) fn journal(&self) -> JournalMetrics {
        JournalMetrics {
            sync: self.journal_sync.0.clone(),
            written: self.journal_written.clone(),
            segments: self.journal_segments.clone(),
        }
    }
}

/// A link counted in [`Metrics::links`]: uncounted when dropped, so it leaves with the link
/// whichever way the link goes.
#[derive(Debug)]
pub(crate) struct LinkGauge(Gauge);

impl Drop for LinkGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A connection counted in [`Metrics::connections`], with its sessions: both uncounted when
/// the connection's task ends.
#[derive(Debug)]
pub(crate) struct ConnectionGauge {
    connections: Gauge,
    sessions: Gauge,
    open_sessions: i64,
}

impl ConnectionGauge {
    pub(crate) fn new(metrics: &Metrics) -> Self {
        metrics.connections.inc();
        metrics.connections_opened.inc();
        ConnectionGauge {
            connections: metrics.connections.clone(),
            sessions: metrics.sessions.clone(),
            open_sessions: 0,
        }
    }

    /// A session began (`+1`) or ended (`-1`).
    pub(crate) fn session(&mut self, delta: i64) {
        self.open_sessions += delta;
        self.sessions.inc_by(delta);
    }
}

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        self.connections.dec();
        self.sessions.dec_by(self.open_sessions);
    }
}
