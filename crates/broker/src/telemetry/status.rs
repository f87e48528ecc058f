//! The status document (`GET /status`): the address space and each address as EnMasse's
//! status showed them (`isReady`, `phase`, `messages`, `planStatus`), with what the broker
//! holds and did for each.

use std::collections::BTreeMap;

use serde::Serialize;

use sluice_config::ResolvedAddressSpace;
use sluice_config::resources::AddressType;

use crate::core::NodeStats;

/// EnMasse's phases of an address space or address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Phase {
    /// Valid but not served (over quota).
    Pending,
    /// Being set up.
    Configuring,
    /// Served.
    Active,
    /// Cannot be served.
    Failed,
    /// Removed from the configuration; its stored messages wait out the grace period.
    Terminating,
}

/// An address as the configuration describes it, before the broker's figures.
#[derive(Debug, Clone)]
pub(crate) struct AddressView {
    pub(crate) name: String,
    pub(crate) address: String,
    pub(crate) address_type: String,
    pub(crate) plan: String,
    pub(crate) partitions: u32,
    pub(crate) resources: BTreeMap<String, f64>,
    pub(crate) phase: Phase,
    pub(crate) messages: Vec<String>,
    stored: bool,
}

/// The address space as the configuration describes it.
#[derive(Debug, Clone, Default)]
pub(crate) struct SpaceView {
    pub(crate) name: String,
    pub(crate) namespace: Option<String>,
    pub(crate) space_type: String,
    pub(crate) plan: String,
    pub(crate) endpoints: Vec<String>,
    pub(crate) addresses: Vec<AddressView>,
}

impl SpaceView {
    /// What `space` says, with the addresses removed from it whose messages are kept.
    /// A queue removed from the configuration, kept for its messages for `left_ms` more.
    pub(crate) fn retiring(address: &str, left_ms: i64) -> AddressView {
        AddressView {
            name: String::new(),
            address: address.to_string(),
            address_type: "queue".into(),
            plan: String::new(),
            partitions: 1,
            resources: BTreeMap::new(),
            phase: Phase::Terminating,
            messages: vec![format!(
                "removed from the configuration: its messages are kept for {} s more, or until the address is configured again",
                left_ms.max(0) / 1000
            )],
            stored: true,
        }
    }

    pub(crate) fn of(space: &ResolvedAddressSpace) -> Self {
        let view = |a: &sluice_config::ResolvedAddress, phase, messages| {
            let t = a.address_type();
            let spec = &a.address.resource.spec;
            let mut resources = BTreeMap::new();
            if let Some(v) = a.plan.spec.resources.broker {
                resources.insert("broker".to_string(), v);
            }
            if let Some(v) = a.plan.spec.resources.router {
                resources.insert("router".to_string(), v);
            }
            AddressView {
                name: a.address.resource.metadata.name.clone(),
                address: spec.address.clone(),
                address_type: t.to_string(),
                plan: spec.plan.clone(),
                partitions: a.plan.spec.partitions.unwrap_or(1),
                resources,
                phase,
                messages,
                stored: !matches!(t, AddressType::Anycast | AddressType::Multicast),
            }
        };
        let mut addresses: Vec<AddressView> = space
            .addresses
            .iter()
            .map(|a| view(a, Phase::Active, Vec::new()))
            .collect();
        addresses.extend(
            space
                .pending
                .iter()
                .map(|p| view(&p.address, Phase::Pending, vec![p.reason.clone()])),
        );
        let meta = &space.space.resource.metadata;
        SpaceView {
            name: space.name.clone(),
            namespace: meta.namespace.clone(),
            space_type: space.space_type.to_string(),
            plan: space.space.resource.spec.plan.clone(),
            endpoints: space
                .space
                .resource
                .spec
                .endpoints
                .iter()
                .map(|e| e.name.clone())
                .collect(),
            addresses,
        }
    }

    /// Addresses served, and those configured but not ready.
    pub(crate) fn counts(&self) -> (u64, u64) {
        let active = self
            .addresses
            .iter()
            .filter(|a| a.phase == Phase::Active)
            .count() as u64;
        (active, self.addresses.len() as u64 - active)
    }
}

/// `GET /status`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// The address space.
    pub address_space: SpaceStatus,
    /// Open AMQP connections.
    pub connections: i64,
    /// Every address: served, pending, or removed and terminating.
    pub addresses: Vec<AddressStatus>,
}

/// The address space's status.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpaceStatus {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: Option<String>,
    /// `standard` or `brokered`.
    #[serde(rename = "type")]
    pub space_type: String,
    /// Its AddressSpacePlan.
    pub plan: String,
    /// Whether it serves.
    pub is_ready: bool,
    /// Its phase.
    pub phase: Phase,
    /// Why it is not ready.
    pub messages: Vec<String>,
    /// Its endpoints and the ports they are served on.
    pub endpoint_statuses: Vec<EndpointStatus>,
}

/// An endpoint of the address space.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointStatus {
    /// The endpoint's name.
    pub name: String,
    /// The ports this broker serves.
    pub service_ports: Vec<ServicePort>,
}

/// A port served.
#[derive(Debug, Clone, Serialize)]
pub struct ServicePort {
    /// `amqp`, `amqps`, `amqp-wss` or `http`.
    pub name: String,
    /// The port.
    pub port: u16,
}

/// An address's status.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AddressStatus {
    /// `metadata.name` (`<space>.<name>`).
    pub name: String,
    /// `spec.address`.
    pub address: String,
    /// `spec.type`.
    #[serde(rename = "type")]
    pub address_type: String,
    /// `spec.plan`.
    pub plan: String,
    /// Whether it is served.
    pub is_ready: bool,
    /// Its phase.
    pub phase: Phase,
    /// Why it is not ready.
    pub messages: Vec<String>,
    /// Its plan as applied.
    pub plan_status: PlanStatus,
    /// Messages stored (stored types only).
    pub depth: Option<u64>,
    /// Their bytes.
    pub bytes: Option<u64>,
    /// The age of the oldest, in seconds.
    pub oldest_message_age_seconds: Option<f64>,
    /// How many the journal holds.
    pub durable_messages: Option<u64>,
    /// Receiving links.
    pub consumers: u64,
    /// Sending links.
    pub senders: u64,
    /// Messages received from publishers.
    pub deliveries_in: u64,
    /// Deliveries sent to receivers.
    pub deliveries_out: u64,
}

/// `status.planStatus`.
#[derive(Debug, Clone, Serialize)]
pub struct PlanStatus {
    /// The plan's name.
    pub name: String,
    /// Queue partitions.
    pub partitions: u32,
    /// The credits it uses.
    pub resources: BTreeMap<String, f64>,
}

impl AddressView {
    /// This address's status, with the broker's figures for it and its links.
    pub(crate) fn status(
        &self,
        stats: Option<&NodeStats>,
        links: (u64, u64),
        now_ms: i64,
    ) -> AddressStatus {
        let held = stats.and_then(|s| s.held.as_ref()).filter(|_| self.stored);
        AddressStatus {
            name: self.name.clone(),
            address: self.address.clone(),
            address_type: self.address_type.clone(),
            plan: self.plan.clone(),
            is_ready: self.phase == Phase::Active,
            phase: self.phase,
            messages: self.messages.clone(),
            plan_status: PlanStatus {
                name: self.plan.clone(),
                partitions: self.partitions,
                resources: self.resources.clone(),
            },
            depth: held.map(|h| h.depth),
            bytes: held.map(|h| h.bytes),
            oldest_message_age_seconds: held.map(|h| {
                h.oldest_ms
                    .map_or(0.0, |at| now_ms.saturating_sub(at).max(0) as f64 / 1000.0)
            }),
            durable_messages: held.map(|h| h.durable),
            consumers: links.1,
            senders: links.0,
            deliveries_in: stats.map_or(0, |s| s.counts.deliveries_in),
            deliveries_out: stats.map_or(0, |s| s.counts.deliveries_out),
        }
    }
}
