//! Sluice's broker: the IO shell around the protocol engine and the stores.
//!
//! Owns: the listener, one task per connection (socket + [`sluice_engine::Connection`]), and the
//! core task that owns every queue of the address space. Connections resolve addresses against
//! an immutable [`AddressTable`] they share, and talk to the core over channels; no lock is held
//! across an await and no state has two owners.
//!
//! Serves every EnMasse address type: `queue` (and consuming from `deadletter`) with competing
//! consumers, every outcome, requeue on consumer loss, TTL clamps, expiry and dead-lettering;
//! `topic` (a private, bounded subscription per receiver, hierarchical names and `+`/`#`
//! patterns, slow subscribers holding publishers back through credit); `subscription` (named,
//! durable, `maxConsumers`); `anycast` (routed to one receiver, never stored, sender credit
//! from receiver credit, outcomes passed back); `multicast` (pre-settled fan-out); anonymous
//! relay (routing by `to`); dynamic receivers (temporary queues, for request/reply);
//! authentication `none`.
//!
//! Must not depend on: the `sluice` binary (CLI, logging setup).

mod connection;
mod core;

use std::future::Future;
use std::io;
use std::sync::Arc;

use sluice_config::ResolvedAddressSpace;
use sluice_config::resources::AddressType;
use sluice_engine::Config;
use sluice_router::{AddressTable, NodeKind, NodeSpec};
use sluice_store::{QueuePolicy, TtlPolicy};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// How long a shutdown waits for connections to finish closing.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Command batches (one per connection wake-up) queued for the core before connections wait.
const CORE_CHANNEL: usize = 1024;

/// The nodes of an address space, as the router sees them.
pub fn nodes(space: &ResolvedAddressSpace) -> Vec<NodeSpec> {
    space
        .addresses
        .iter()
        .map(|a| {
            let spec = &a.address.resource.spec;
            let kind = match a.address_type() {
                AddressType::Queue => NodeKind::Queue,
                AddressType::Topic => NodeKind::Topic,
                AddressType::Subscription => NodeKind::Subscription {
                    topic: spec.topic.clone().unwrap_or_default(),
                    max_consumers: spec
                        .subscription
                        .as_ref()
                        .and_then(|s| s.max_consumers)
                        .unwrap_or(1),
                },
                AddressType::Anycast => NodeKind::Anycast,
                AddressType::Multicast => NodeKind::Multicast,
                AddressType::Deadletter => NodeKind::Deadletter,
            };
            NodeSpec {
                address: spec.address.clone(),
                kind,
                dead_letter: spec.deadletter.clone(),
                expiry: spec.expiry.clone(),
            }
        })
        .collect()
}

/// The store policy of an address: its plan's and its own TTL clamp and redelivery limit, and
/// whether it has dead-letter and expiry targets.
fn policy(address: &sluice_config::ResolvedAddress) -> QueuePolicy {
    let spec = &address.address.resource.spec;
    let ttl = address.message_ttl();
    QueuePolicy {
        delivery_attempts_max: address.maximum_delivery_attempts(),
        ttl: TtlPolicy {
            minimum_ms: ttl.minimum,
            maximum_ms: ttl.maximum,
        },
        dead_letter_target: spec.deadletter.is_some(),
        expiry_target: spec.expiry.is_some(),
        ..QueuePolicy::default()
    }
}

/// The core's nodes for a space. A named subscription takes its topic's dead-letter and expiry
/// targets when it has none of its own, and its topic's TTL clamp (EnMasse applied a topic's
/// `deadletter`, `expiry` and `messageTtl` to its subscriptions).
fn core_for(space: &ResolvedAddressSpace) -> core::Core {
    let mut stored = Vec::new();
    let mut topics = Vec::new();
    let mut multicast = Vec::new();
    let mut anycast = Vec::new();
    for a in &space.addresses {
        let spec = &a.address.resource.spec;
        let address = spec.address.clone();
        let mut node = core::StoredNode {
            address: address.clone(),
            policy: policy(a),
            dead_letter: spec.deadletter.clone(),
            expiry: spec.expiry.clone(),
            subscription: None,
        };
        match a.address_type() {
            AddressType::Topic => topics.push((address, policy(a))),
            AddressType::Multicast => multicast.push(address),
            AddressType::Anycast => anycast.push(address),
            AddressType::Queue | AddressType::Deadletter => stored.push(node),
            AddressType::Subscription => {
                let Some(topic) = spec.topic.as_deref().and_then(|t| space.address(t)) else {
                    continue;
                };
                let topic_spec = &topic.address.resource.spec;
                node.dead_letter = node.dead_letter.or_else(|| topic_spec.deadletter.clone());
                node.expiry = node.expiry.or_else(|| topic_spec.expiry.clone());
                node.policy.ttl = policy(topic).ttl;
                node.policy.dead_letter_target = node.dead_letter.is_some();
                node.policy.expiry_target = node.expiry.is_some();
                let max = spec
                    .subscription
                    .as_ref()
                    .and_then(|s| s.max_consumers)
                    .unwrap_or(1);
                node.subscription = Some((topic_spec.address.clone(), max));
                stored.push(node);
            }
        }
    }
    core::Core::new(stored, topics, multicast, anycast)
}

/// Serves `space` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    space: &ResolvedAddressSpace,
    container_id: String,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let table = AddressTable::new(nodes(space))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let (core_tx, core_rx) = mpsc::channel(CORE_CHANNEL);
    tokio::spawn(core_for(space).run(core_rx));
    let table = Arc::new(table);
    let mut engine_config = Config::server(container_id);
    // Senders with a null target route each message by its `to` (part 2 of the AMQP
    // addressing draft; what every client library looks for).
    engine_config.offered_capabilities =
        vec![sluice_codec::types::Symbol::from_static("ANONYMOUS-RELAY")];
    tokio::pin!(shutdown);
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut next_conn: u64 = 0;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                };
                next_conn += 1;
                tracing::debug!(%peer, conn = next_conn, "connection accepted");
                connections.spawn(connection::run(
                    stream,
                    next_conn,
                    engine_config.clone(),
                    table.clone(),
                    core_tx.clone(),
                    stopping.clone(),
                ));
            }
            // Reap finished connections as we go, so the set holds only live ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = &mut shutdown => break,
        }
    }
    // Every connection closes with `amqp:connection:forced` and waits for its peer's close;
    // those that do not finish within the grace period are dropped.
    drop(listener);
    let _ = stop.send(true);
    let open = connections.len();
    let all_closed = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, all_closed)
        .await
        .is_err()
    {
        tracing::warn!(
            open,
            "connections still open after the shutdown grace period"
        );
    }
    Ok(())
}
