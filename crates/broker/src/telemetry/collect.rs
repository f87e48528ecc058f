//! The metrics read at scrape time: what the core holds and did per address (from its
//! snapshot), the address space's readiness, memory. Encoded straight from the snapshot, so
//! an address that leaves the configuration leaves the metrics with it.

use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::core::CoreStats;

/// What one scrape reads, taken just before it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scrape {
    pub(crate) core: Option<CoreStats>,
    pub(crate) now_ms: i64,
    pub(crate) address_space: String,
    pub(crate) space_type: String,
    pub(crate) addresses: u64,
    pub(crate) not_ready: u64,
    pub(crate) space_ready: bool,
    pub(crate) resident_bytes: Option<u64>,
}

/// The collector registered once; each scrape puts its snapshot in first.
#[derive(Debug, Default)]
pub(crate) struct Snapshot(pub(crate) Mutex<Arc<Scrape>>);

impl Snapshot {
    pub(crate) fn set(&self, scrape: Scrape) {
        if let Ok(mut s) = self.0.lock() {
            *s = Arc::new(scrape);
        }
    }

    fn get(&self) -> Arc<Scrape> {
        self.0.lock().map(|s| Arc::clone(&s)).unwrap_or_default()
    }
}

/// Encodes one family of samples.
fn family<L: EncodeLabelSet, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    samples: impl IntoIterator<Item = (L, M)>,
) -> std::fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in samples {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Encodes a family of one sample without labels.
fn single(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> std::fmt::Result {
    let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(value).encode(metric)
}

const OUTCOMES: [&str; 4] = ["accepted", "rejected", "released", "modified"];

impl Collector for Snapshot {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let s = self.get();
        let nodes = s.core.as_ref().map_or(&[][..], |c| &c.nodes[..]);
        family(
            &mut e,
            "info",
            "Always 1: the version and the address space served",
            MetricType::Gauge,
            [(
                [
                    ("version", env!("CARGO_PKG_VERSION")),
                    ("address_space", s.address_space.as_str()),
                    ("address_space_type", s.space_type.as_str()),
                ],
                ConstGauge::new(1i64),
            )],
        )?;
        let by_address = |f: &dyn Fn(&crate::core::NodeStats) -> Option<i64>| {
            nodes
                .iter()
                .filter_map(|n| Some(([("address", &*n.address)], ConstGauge::new(f(n)?))))
                .collect::<Vec<_>>()
        };
        let counter = |f: &dyn Fn(&crate::core::NodeStats) -> u64| {
            nodes
                .iter()
                .map(|n| ([("address", &*n.address)], ConstCounter::new(f(n))))
                .collect::<Vec<_>>()
        };
        family(
            &mut e,
            "deliveries_in",
            "Messages received from publishers, by address",
            MetricType::Counter,
            counter(&|n| n.counts.deliveries_in),
        )?;
        family(
            &mut e,
            "deliveries_out",
            "Deliveries sent to receivers, by address",
            MetricType::Counter,
            counter(&|n| n.counts.deliveries_out),
        )?;
        family(
            &mut e,
            "deliveries_transit",
            "Messages routed through without being stored (anycast, multicast), by address",
            MetricType::Counter,
            counter(&|n| n.counts.transit),
        )?;
        let outcomes = nodes.iter().flat_map(|n| {
            OUTCOMES.iter().zip(n.counts.outcomes).map(|(o, v)| {
                (
                    [("address", &*n.address), ("outcome", *o)],
                    ConstCounter::new(v),
                )
            })
        });
        family(
            &mut e,
            "outcomes",
            "Receivers' outcomes, by address and outcome",
            MetricType::Counter,
            outcomes.collect::<Vec<_>>(),
        )?;
        let held = |f: fn(&crate::core::Held) -> i64| {
            move |n: &crate::core::NodeStats| n.held.as_ref().map(f)
        };
        family(
            &mut e,
            "queue_depth",
            "Messages stored, by address",
            MetricType::Gauge,
            by_address(&held(|h| h.depth as i64)),
        )?;
        family(
            &mut e,
            "queue_bytes",
            "Bytes of stored messages, by address",
            MetricType::Gauge,
            by_address(&held(|h| h.bytes as i64)),
        )?;
        family(
            &mut e,
            "queue_bytes_max",
            "The size limit of the address, in bytes",
            MetricType::Gauge,
            by_address(&held(|h| i64::try_from(h.bytes_max).unwrap_or(i64::MAX))),
        )?;
        family(
            &mut e,
            "queue_durable_messages",
            "Stored messages the journal holds, by address",
            MetricType::Gauge,
            by_address(&held(|h| h.durable as i64)),
        )?;
        let ages = nodes.iter().filter_map(|n| {
            let held = n.held.as_ref()?;
            let age = held.oldest_ms.map_or(0.0, |at| {
                (s.now_ms.saturating_sub(at)).max(0) as f64 / 1000.0
            });
            Some(([("address", &*n.address)], ConstGauge::new(age)))
        });
        family(
            &mut e,
            "queue_oldest_message_age_seconds",
            "Age of the oldest stored message (0 when empty), by address",
            MetricType::Gauge,
            ages.collect::<Vec<_>>(),
        )?;
        family(
            &mut e,
            "queue_consumers",
            "Receivers attached, by address",
            MetricType::Gauge,
            by_address(&|n| Some(i64::from(n.consumers))),
        )?;
        single(&mut e, "addresses", "Addresses served", s.addresses as i64)?;
        single(
            &mut e,
            "addresses_not_ready",
            "Addresses configured but not ready (over quota, or removed and waiting out their grace period)",
            s.not_ready as i64,
        )?;
        single(
            &mut e,
            "address_space_ready",
            "1 when the address space is ready",
            i64::from(s.space_ready),
        )?;
        let core = s.core.as_ref();
        single(
            &mut e,
            "memory_used_bytes",
            "Bytes of messages all queues hold in memory",
            core.map_or(0, |c| c.memory_used as i64),
        )?;
        single(
            &mut e,
            "memory_max_bytes",
            "The memory budget (--max-memory; 0 when there is none)",
            core.and_then(|c| c.memory_max).map_or(0, |m| m as i64),
        )?;
        single(
            &mut e,
            "process_resident_memory_bytes",
            "The process's resident memory",
            s.resident_bytes.map_or(0, |b| b as i64),
        )?;
        Ok(())
    }
}
