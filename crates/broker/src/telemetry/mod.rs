//! What operators see of the broker: metrics in the Prometheus text format, readiness, and
//! the status document. The HTTP server that serves them is the binary's; this holds the
//! state and renders it.
//!
//! Live counts (connections, links, authentications, the journal, reloads) are atomics the
//! tasks update as things happen ([`metrics`]). What the core holds is asked of the core's
//! driver when a scrape or status request comes, over its own small channel ([`StatsTx`]), so
//! the core never does work for an operator nobody asked for, and a scrape never blocks a
//! message.

mod collect;
pub(crate) mod metrics;
mod status;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::sync::oneshot;

use crate::driver::{Control, CoreTx, ToCore};

use sluice_config::ResolvedAddressSpace;

use crate::core::CoreStats;
pub(crate) use status::SpaceView;
pub use status::{
    AddressStatus, EndpointStatus, Phase, PlanStatus, ServicePort, SpaceStatus, Status,
};

/// How long a scrape or status request waits for the core's figures before answering
/// without them.
const STATS_WAIT: Duration = Duration::from_secs(2);

/// What `/readyz` waits for.
#[derive(Debug, Default, Clone, Copy)]
struct Readiness {
    config: bool,
    journal: bool,
    listeners: bool,
}

/// The broker's telemetry: cloned into every task that reports.
#[derive(Debug, Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    metrics: metrics::Metrics,
    snapshot: Arc<collect::Snapshot>,
    space: Mutex<Arc<SpaceView>>,
    ready: Mutex<Readiness>,
    /// Whether ready, for those who wait for it.
    ready_tx: tokio::sync::watch::Sender<bool>,
    core: Mutex<Option<CoreTx>>,
    ports: Mutex<Vec<ServicePort>>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::new()
    }
}

impl Telemetry {
    /// Telemetry with nothing loaded yet: not ready.
    pub fn new() -> Self {
        let metrics = metrics::Metrics::default();
        let snapshot = Arc::new(collect::Snapshot::default());
        let mut registry = Registry::with_prefix("sluice");
        metrics.register(&mut registry);
        registry.register_collector(Box::new(Arc::clone(&snapshot)));
        metrics.authentication_service_ready.set(1);
        metrics.zero(&[]);
        Telemetry {
            inner: Arc::new(Inner {
                registry,
                metrics,
                snapshot,
                space: Mutex::new(Arc::default()),
                ready: Mutex::new(Readiness::default()),
                ready_tx: tokio::sync::watch::Sender::new(false),
                core: Mutex::new(None),
                ports: Mutex::new(Vec::new()),
            }),
        }
    }

    pub(crate) fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }

    /// The address space now served (at start and after each reload), with the removed
    /// addresses whose messages are kept and why.
    pub(crate) fn set_space(&self, space: &ResolvedAddressSpace) {
        let view = Arc::new(SpaceView::of(space));
        let addresses: Vec<&str> = space
            .addresses
            .iter()
            .map(|a| a.address.resource.spec.address.as_str())
            .collect();
        self.inner.metrics.zero(&addresses);
        if let Ok(mut s) = self.inner.space.lock() {
            *s = view;
        }
        self.update_ready(|r| r.config = true);
    }

    /// The ports the listeners are bound to, for the status's endpoints.
    pub fn set_ports(&self, ports: &[(&str, u16)]) {
        if let Ok(mut p) = self.inner.ports.lock() {
            *p = ports
                .iter()
                .map(|(name, port)| ServicePort {
                    name: (*name).to_string(),
                    port: *port,
                })
                .collect();
        }
    }

    /// The channel to the core while it runs (`None` from shutdown on).
    pub(crate) fn set_core(&self, tx: Option<CoreTx>) {
        if let Ok(mut c) = self.inner.core.lock() {
            *c = tx;
        }
    }

    /// The journal is recovered and the listeners accept.
    pub(crate) fn set_serving(&self) {
        self.update_ready(|r| {
            r.journal = true;
            r.listeners = true;
        });
    }

    /// Shutting down: no longer ready, so a load balancer stops sending new clients.
    pub(crate) fn set_stopping(&self) {
        self.update_ready(|r| r.listeners = false);
    }

    fn update_ready(&self, f: impl FnOnce(&mut Readiness)) {
        if let Ok(mut r) = self.inner.ready.lock() {
            f(&mut r);
            let ready = r.config && r.journal && r.listeners;
            self.inner.metrics.ready.set(i64::from(ready));
            self.inner.ready_tx.send_replace(ready);
        }
    }

    /// Completes once the broker is ready (at once if it is).
    pub async fn wait_ready(&self) {
        let mut rx = self.inner.ready_tx.subscribe();
        // Err: the sender went with the telemetry; nothing to wait for.
        let _ = rx.wait_for(|ready| *ready).await;
    }

    /// Whether the broker serves: `Err` says what it waits for.
    pub fn readiness(&self) -> Result<(), &'static str> {
        let r = self.inner.ready.lock().map(|r| *r).unwrap_or_default();
        if !r.config {
            Err("the configuration is not loaded")
        } else if !r.journal {
            Err("the journal is being recovered")
        } else if !r.listeners {
            Err("the listeners are not accepting")
        } else {
            Ok(())
        }
    }

    /// A configuration reload was applied (`true`) or refused.
    pub fn reloaded(&self, applied: bool) {
        let now_ms = crate::driver::now_ms();
        let m = &self.inner.metrics;
        if applied {
            m.reloads.inc();
            m.last_reload_success.set(now_ms / 1000);
        } else {
            m.reload_failures.inc();
        }
    }

    /// Marks the configuration first loaded at `now_ms`.
    pub(crate) fn loaded(&self, now_ms: i64) {
        self.inner.metrics.last_reload_success.set(now_ms / 1000);
    }

    /// Asks the core for its figures; `None` before it runs, after it stops, or when it does
    /// not answer in time.
    async fn core_stats(&self) -> Option<CoreStats> {
        let tx = self.inner.core.lock().ok()?.clone()?;
        let (answer, rx) = oneshot::channel();
        let asked = async {
            tx.send(ToCore::Control(Control::Stats(answer)))
                .await
                .ok()?;
            rx.await.ok()
        };
        tokio::time::timeout(STATS_WAIT, asked).await.ok()?
    }

    fn space(&self) -> Arc<SpaceView> {
        self.inner
            .space
            .lock()
            .map(|s| Arc::clone(&s))
            .unwrap_or_default()
    }

    /// The metrics, in the Prometheus text format.
    pub async fn metrics_text(&self) -> String {
        let core = self.core_stats().await;
        let space = self.space();
        let (addresses, mut not_ready) = space.counts();
        not_ready += core.as_ref().map_or(0, |c| c.retired.len() as u64);
        self.inner.snapshot.set(collect::Scrape {
            core,
            now_ms: crate::driver::now_ms(),
            address_space: space.name.clone(),
            space_type: space.space_type.clone(),
            addresses,
            not_ready,
            space_ready: self.readiness().is_ok(),
            resident_bytes: resident_bytes(),
        });
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry) {
            tracing::error!(error = %e, "encoding the metrics failed");
        }
        out
    }

    /// The status document.
    pub async fn status(&self) -> Status {
        let core = self.core_stats().await;
        let space = self.space();
        let now_ms = crate::driver::now_ms();
        let links = self.links_by_address();
        let ready = self.readiness();
        // By address once, not searched per address: a space may have thousands.
        let by_address: std::collections::HashMap<&str, &crate::core::NodeStats> = core
            .iter()
            .flat_map(|c| &c.nodes)
            .map(|n| (&*n.address, n))
            .collect();
        let mut addresses: Vec<AddressStatus> = space
            .addresses
            .iter()
            .map(|a| {
                let stats = by_address.get(a.address.as_str()).copied();
                let l = links.get(a.address.as_str()).copied().unwrap_or_default();
                a.status(stats, l, now_ms)
            })
            .collect();
        for (address, until) in core.iter().flat_map(|c| &c.retired) {
            let stats = by_address.get(&**address).copied();
            let view = SpaceView::retiring(address, until.saturating_sub(now_ms));
            addresses.push(view.status(stats, (0, 0), now_ms));
        }
        let ports = self
            .inner
            .ports
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default();
        Status {
            address_space: SpaceStatus {
                name: space.name.clone(),
                namespace: space.namespace.clone(),
                space_type: space.space_type.clone(),
                plan: space.plan.clone(),
                is_ready: ready.is_ok(),
                phase: if ready.is_ok() {
                    Phase::Active
                } else {
                    Phase::Configuring
                },
                messages: ready.err().map(str::to_string).into_iter().collect(),
                endpoint_statuses: endpoints(&space.endpoints, &ports),
            },
            connections: self.inner.metrics.connections.get(),
            addresses,
        }
    }

    /// Senders and receivers attached, per configured address.
    fn links_by_address(&self) -> std::collections::HashMap<String, (u64, u64)> {
        let mut by = std::collections::HashMap::<String, (u64, u64)>::new();
        // The family is read through its encoding: it offers no iteration.
        let mut text = String::new();
        let mut registry = Registry::default();
        registry.register("l", "", self.inner.metrics.links.clone());
        if prometheus_client::encoding::text::encode(&mut text, &registry).is_err() {
            return by;
        }
        for line in text.lines().filter(|l| l.starts_with("l{")) {
            let Some((labels, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let value: u64 = value.parse::<f64>().map_or(0, |v| v.max(0.0) as u64);
            let address = label(labels, "address").unwrap_or_default();
            let entry = by.entry(address).or_default();
            if label(labels, "direction").as_deref() == Some("in") {
                entry.0 += value;
            } else {
                entry.1 += value;
            }
        }
        by
    }
}

/// A label's value in an encoded sample's `{a="x",b="y"}`.
fn label(labels: &str, name: &str) -> Option<String> {
    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = labels.get(start..)?;
    let mut value = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => value.extend(chars.next()),
            '"' => return Some(value),
            c => value.push(c),
        }
    }
    None
}

/// The endpoints the address space names, each with the ports served (EnMasse's default
/// endpoints when it names none).
fn endpoints(names: &[String], ports: &[ServicePort]) -> Vec<EndpointStatus> {
    let names = if names.is_empty() {
        vec!["messaging".to_string()]
    } else {
        names.to_vec()
    };
    names
        .into_iter()
        .map(|name| {
            let wss = name.contains("wss");
            let service_ports = ports
                .iter()
                .filter(|p| (p.name == "amqp-wss") == wss && p.name != "http")
                .cloned()
                .collect();
            EndpointStatus {
                name,
                service_ports,
            }
        })
        .collect()
}

/// The process's resident memory, from `/proc/self/statm` (Linux; `None` elsewhere).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
