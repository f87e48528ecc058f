//! The connection limits of an address space: from its infra config's `spec.router.policy`
//! and `spec.router.handshakeTimeout` where EnMasse had them (qdrouterd's vhost policy), and
//! Sluice's named defaults where a field is unset or the space is brokered (Artemis had none).
//! Every limit is a count a hostile client would otherwise raise at will.

use std::time::Duration;

use crate::model::ResolvedAddressSpace;

/// Connections in all, when the infra config does not say (`maxConnections`).
pub const CONNECTIONS_MAX_DEFAULT: u32 = 10_000;
/// Connections from one source host (`maxConnectionsPerHost`).
pub const CONNECTIONS_PER_HOST_MAX_DEFAULT: u32 = 2_000;
/// Connections of one authenticated user (`maxConnectionsPerUser`).
pub const CONNECTIONS_PER_USER_MAX_DEFAULT: u32 = 2_000;
/// Connections that have not finished authenticating: what a flood of idle sockets can hold.
pub const UNAUTHENTICATED_CONNECTIONS_MAX_DEFAULT: u32 = 1_000;
/// Sessions per connection (`maxSessionsPerConnection`): the engine's default channel max.
pub const SESSIONS_PER_CONNECTION_MAX_DEFAULT: u32 = 256;
/// Sending links per connection (`maxSendersPerConnection`).
pub const SENDERS_PER_CONNECTION_MAX_DEFAULT: u32 = 4_096;
/// Receiving links per connection (`maxReceiversPerConnection`).
pub const RECEIVERS_PER_CONNECTION_MAX_DEFAULT: u32 = 4_096;
/// Time from accepting a socket to the end of the SASL exchange and the open
/// (`handshakeTimeout`).
pub const HANDSHAKE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);

/// The limits on links and messages from the infra config's router section that a reload
/// applies (the connection limits above are fixed at start): each `None` when not set (or
/// 0), so the broker's own default holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkLimits {
    /// `router.policy.maxMessageSize`: the largest message accepted, in bytes.
    pub message_size_max: Option<u64>,
    /// `router.linkCapacity`: the credit a sending client is given on each link.
    pub link_capacity: Option<u32>,
    /// `router.idleTimeout`: a connection silent this long is closed (and it is asked to
    /// send heartbeats at half of it).
    pub idle_timeout: Option<Duration>,
}

/// How many connections, sessions and links the address space admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections in all.
    pub connections_max: u32,
    /// Connections from one source IP address.
    pub connections_per_host_max: u32,
    /// Connections of one user.
    pub connections_per_user_max: u32,
    /// Connections still authenticating.
    pub unauthenticated_max: u32,
    /// Sessions per connection.
    pub sessions_per_connection_max: u32,
    /// Links the client sends on, per connection.
    pub senders_per_connection_max: u32,
    /// Links the client receives on, per connection.
    pub receivers_per_connection_max: u32,
    /// From accept to the end of authentication and the open exchange.
    pub handshake_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            connections_max: CONNECTIONS_MAX_DEFAULT,
            connections_per_host_max: CONNECTIONS_PER_HOST_MAX_DEFAULT,
            connections_per_user_max: CONNECTIONS_PER_USER_MAX_DEFAULT,
            unauthenticated_max: UNAUTHENTICATED_CONNECTIONS_MAX_DEFAULT,
            sessions_per_connection_max: SESSIONS_PER_CONNECTION_MAX_DEFAULT,
            senders_per_connection_max: SENDERS_PER_CONNECTION_MAX_DEFAULT,
            receivers_per_connection_max: RECEIVERS_PER_CONNECTION_MAX_DEFAULT,
            handshake_timeout: HANDSHAKE_TIMEOUT_DEFAULT,
        }
    }
}

impl ResolvedAddressSpace {
    /// The space's link and message limits (see [`LinkLimits`]).
    pub fn link_limits(&self) -> LinkLimits {
        let router = self
            .infra_config
            .as_ref()
            .and_then(|i| i.resource.spec.router.as_ref());
        let policy = router.and_then(|r| r.policy).unwrap_or_default();
        LinkLimits {
            message_size_max: policy.max_message_size.filter(|n| *n > 0),
            link_capacity: router.and_then(|r| r.link_capacity).filter(|n| *n > 0),
            idle_timeout: router
                .and_then(|r| r.idle_timeout)
                .filter(|n| *n > 0)
                .map(|s| Duration::from_secs(u64::from(s))),
        }
    }

    /// The space's connection limits: its infra config's router policy, field by field over
    /// the defaults. A value of 0 is taken as "not set", as qdrouterd's policy did (0 there
    /// meant unlimited; Sluice keeps a limit on everything, so the default applies).
    pub fn connection_limits(&self) -> ConnectionLimits {
        let router = self
            .infra_config
            .as_ref()
            .and_then(|i| i.resource.spec.router.as_ref());
        let policy = router.and_then(|r| r.policy).unwrap_or_default();
        let pick = |v: Option<u32>, default: u32| v.filter(|n| *n > 0).unwrap_or(default);
        let d = ConnectionLimits::default();
        ConnectionLimits {
            connections_max: pick(policy.max_connections, d.connections_max),
            connections_per_host_max: pick(
                policy.max_connections_per_host,
                d.connections_per_host_max,
            ),
            connections_per_user_max: pick(
                policy.max_connections_per_user,
                d.connections_per_user_max,
            ),
            unauthenticated_max: d.unauthenticated_max,
            sessions_per_connection_max: pick(
                policy.max_sessions_per_connection,
                d.sessions_per_connection_max,
            )
            .min(u32::from(u16::MAX) + 1),
            senders_per_connection_max: pick(
                policy.max_senders_per_connection,
                d.senders_per_connection_max,
            ),
            receivers_per_connection_max: pick(
                policy.max_receivers_per_connection,
                d.receivers_per_connection_max,
            ),
            handshake_timeout: router
                .and_then(|r| r.handshake_timeout)
                .filter(|s| *s > 0)
                .map_or(d.handshake_timeout, |s| Duration::from_secs(u64::from(s))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(infra: &str) -> ResolvedAddressSpace {
        let yaml = format!(
            "{infra}---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressSpacePlan
metadata:
  name: plan
spec:
  addressSpaceType: standard
  infraConfigRef: infra
  resourceLimits:
    router: 1.0
    broker: 1.0
    aggregate: 1.0
  addressPlans: []
---
apiVersion: enmasse.io/v1beta1
kind: AddressSpace
metadata:
  name: space
spec:
  type: standard
  plan: plan
"
        );
        let checked = crate::check(&[crate::Source::new("space.yaml", &yaml)]);
        assert!(checked.is_valid(), "{:?}", checked.diagnostics);
        checked.config.address_space("space").unwrap().clone()
    }

    #[test]
    fn the_router_policy_sets_the_limits_and_unset_fields_keep_the_defaults() {
        let s = space(
            "apiVersion: admin.enmasse.io/v1beta1
kind: StandardInfraConfig
metadata:
  name: infra
spec:
  router:
    handshakeTimeout: 3
    policy:
      maxConnections: 50
      maxConnectionsPerUser: 5
      maxConnectionsPerHost: 0
      maxSessionsPerConnection: 4
      maxReceiversPerConnection: 7
",
        );
        let limits = s.connection_limits();
        assert_eq!(
            limits,
            ConnectionLimits {
                connections_max: 50,
                connections_per_user_max: 5,
                sessions_per_connection_max: 4,
                receivers_per_connection_max: 7,
                handshake_timeout: Duration::from_secs(3),
                ..ConnectionLimits::default()
            }
        );
    }

    #[test]
    fn without_a_router_policy_every_limit_is_the_named_default() {
        let s = space(
            "apiVersion: admin.enmasse.io/v1beta1
kind: StandardInfraConfig
metadata:
  name: infra
spec: {}
",
        );
        assert_eq!(s.connection_limits(), ConnectionLimits::default());
    }
}
