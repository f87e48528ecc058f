//! The EnMasse resources as they are written in YAML, field for field (camelCase as in the CRDs).
//!
//! Only `metadata`, `spec` and `status` are deserialized here; `apiVersion` and `kind` pick the
//! type (see `load`). Fields Sluice does not model yet but EnMasse users write (network
//! policies, pod templates, connector TLS secrets) are kept as raw JSON values so that they are
//! neither lost nor reported as unknown. `status` is written by a controller, never read by
//! Sluice; it is accepted so that `kubectl get -o yaml` output can be checked as is.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

/// Kubernetes object metadata. Fields other than these four (`uid`, `resourceVersion`,
/// `ownerReferences`, ...) are kept in `other` without a warning.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// `metadata.name`; for an Address or MessagingUser, `<addressspace>.<name>`.
    #[serde(default)]
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: Option<String>,
    /// `metadata.labels`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations` (e.g. `enmasse.io/realm-name`).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Every other metadata field, as written.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `AddressSpace.spec.type`, also an AddressSpacePlan's `addressSpaceType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressSpaceType {
    /// Router mesh plus brokers: all six address types.
    Standard,
    /// A single broker: queue, topic, deadletter.
    Brokered,
}

impl AddressSpaceType {
    /// The address types this kind of space serves, as the EnMasse API allowed them.
    pub fn allowed_address_types(self) -> &'static [AddressType] {
        match self {
            AddressSpaceType::Standard => &[
                AddressType::Queue,
                AddressType::Topic,
                AddressType::Subscription,
                AddressType::Anycast,
                AddressType::Multicast,
                AddressType::Deadletter,
            ],
            AddressSpaceType::Brokered => &[
                AddressType::Queue,
                AddressType::Topic,
                AddressType::Deadletter,
            ],
        }
    }

    /// The infra config kind a plan of this type refers to.
    pub fn infra_config_kind(self) -> &'static str {
        match self {
            AddressSpaceType::Standard => "StandardInfraConfig",
            AddressSpaceType::Brokered => "BrokeredInfraConfig",
        }
    }
}

impl fmt::Display for AddressSpaceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressSpaceType::Standard => "standard",
            AddressSpaceType::Brokered => "brokered",
        })
    }
}

/// `Address.spec.type`, also an AddressPlan's `addressType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressType {
    /// Stored, competing consumers.
    Queue,
    /// Stored publish/subscribe.
    Topic,
    /// A named durable subscription on a topic.
    Subscription,
    /// Routed to one receiver, never stored.
    Anycast,
    /// Routed to all receivers, pre-settled.
    Multicast,
    /// A queue used as a dead-letter or expiry target; consume only.
    Deadletter,
}

impl AddressType {
    /// Every address type, in the order summaries list them.
    pub const ALL: [AddressType; 6] = [
        AddressType::Queue,
        AddressType::Topic,
        AddressType::Subscription,
        AddressType::Anycast,
        AddressType::Multicast,
        AddressType::Deadletter,
    ];
}

impl fmt::Display for AddressType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressType::Queue => "queue",
            AddressType::Topic => "topic",
            AddressType::Subscription => "subscription",
            AddressType::Anycast => "anycast",
            AddressType::Multicast => "multicast",
            AddressType::Deadletter => "deadletter",
        })
    }
}

/// A reference to a Secret (`{name, namespace}`).
#[derive(Clone, Debug, Deserialize)]
pub struct SecretRef {
    /// The Secret's name.
    pub name: String,
    /// Its namespace, when not the resource's own.
    pub namespace: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// AddressSpace (enmasse.io/v1beta1)

/// `AddressSpace` (enmasse.io/v1beta1).
#[derive(Clone, Debug, Deserialize)]
pub struct AddressSpace {
    /// Its metadata; `metadata.name` is the address space's name.
    pub metadata: ObjectMeta,
    /// Its spec.
    pub spec: AddressSpaceSpec,
    /// Controller-written status, accepted and ignored.
    pub status: Option<Value>,
}

/// `AddressSpace.spec`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddressSpaceSpec {
    /// `standard` or `brokered`.
    #[serde(rename = "type")]
    pub space_type: AddressSpaceType,
    /// The AddressSpacePlan's name.
    pub plan: String,
    /// The AuthenticationService; EnMasse filled in a default when absent.
    pub authentication_service: Option<AuthenticationServiceRef>,
    /// Endpoints (default: `messaging` and `messaging-wss`).
    #[serde(default)]
    pub endpoints: Vec<EndpointSpec>,
    /// Copied into a Kubernetes NetworkPolicy; kept as written.
    pub network_policy: Option<Value>,
    /// Connectors to remote AMQP peers (standard only).
    #[serde(default)]
    pub connectors: Vec<ConnectorSpec>,
}

/// `AddressSpace.spec.authenticationService`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationServiceRef {
    /// The AuthenticationService's name.
    pub name: String,
    /// `external` together with `overrides`, for a service with `allowOverride`.
    #[serde(rename = "type")]
    pub service_type: Option<AuthenticationServiceType>,
    /// `{host, port, realm, caCertSecret, clientCertSecret}` overrides; kept as written.
    pub overrides: Option<Value>,
}

/// `AddressSpace.spec.endpoints[]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSpec {
    /// Endpoint name (`status.endpointStatuses[].name`).
    pub name: String,
    /// `messaging` (or the retired `mqtt` / `console`).
    pub service: String,
    /// Certificate provider.
    pub cert: Option<CertSpec>,
    /// How the endpoint is exposed outside the cluster.
    pub expose: Option<ExposeSpec>,
    /// ConfigMaps, Secrets or Services the endpoint's coordinates are exported to.
    #[serde(default)]
    pub exports: Vec<ExportSpec>,
}

/// `endpoints[].cert`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertSpec {
    /// `selfsigned | certBundle | openshift | wildcard`.
    pub provider: String,
    /// Secret holding the certificate.
    pub secret_name: Option<String>,
    /// Base64 PEM key (certBundle).
    pub tls_key: Option<String>,
    /// Base64 PEM certificate (certBundle).
    pub tls_cert: Option<String>,
}

/// `endpoints[].expose`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExposeSpec {
    /// `loadbalancer | route`.
    #[serde(rename = "type")]
    pub expose_type: String,
    /// Route host name.
    pub route_host: Option<String>,
    /// `amqps | https | secure-mqtt`.
    pub route_service_port: Option<String>,
    /// `passthrough | reencrypt`.
    pub route_tls_termination: Option<String>,
    /// Ports a load balancer exposes.
    #[serde(default)]
    pub load_balancer_ports: Vec<String>,
    /// Source ranges a load balancer accepts.
    #[serde(default)]
    pub load_balancer_source_ranges: Vec<String>,
    /// Annotations for the Service or Route.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// `endpoints[].exports[]`.
#[derive(Clone, Debug, Deserialize)]
pub struct ExportSpec {
    /// `ConfigMap | Secret | Service`.
    pub kind: String,
    /// The exported object's name.
    pub name: String,
}

/// `AddressSpace.spec.connectors[]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorSpec {
    /// Connector name; remote addresses appear as `<name>/<address>`.
    pub name: String,
    /// Hosts to connect to, first the primary, then the failovers.
    #[serde(default)]
    pub endpoint_hosts: Vec<EndpointHost>,
    /// `normal | route-container | edge`.
    pub role: Option<String>,
    /// Idle timeout in seconds, 0 disables.
    pub idle_timeout: Option<u32>,
    /// Maximum frame size (at least 512).
    pub max_frame_size: Option<u32>,
    /// TLS settings (secrets); kept as written until TLS lands.
    pub tls: Option<Value>,
    /// SASL PLAIN credentials (values or secrets); kept as written.
    pub credentials: Option<Value>,
    /// Link-routed address patterns.
    #[serde(default)]
    pub addresses: Vec<ConnectorAddress>,
}

/// `connectors[].endpointHosts[]`.
#[derive(Clone, Debug, Deserialize)]
pub struct EndpointHost {
    /// Host name.
    pub host: String,
    /// Port (5672, or 5671 with TLS, when absent).
    pub port: Option<u16>,
}

/// `connectors[].addresses[]`.
#[derive(Clone, Debug, Deserialize)]
pub struct ConnectorAddress {
    /// Rule name.
    pub name: String,
    /// Pattern: `*` one token, `#` zero or more, `/` separator.
    pub pattern: String,
}

// ---------------------------------------------------------------------------------------------
// Address (enmasse.io/v1beta1)

/// `Address` (enmasse.io/v1beta1).
#[derive(Clone, Debug, Deserialize)]
pub struct Address {
    /// Its metadata; `metadata.name` is `<addressspace>.<name>`.
    pub metadata: ObjectMeta,
    /// Its spec.
    pub spec: AddressSpec,
    /// Controller-written status, accepted and ignored.
    pub status: Option<Value>,
}

/// `Address.spec`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddressSpec {
    /// The AMQP address clients attach to; no whitespace.
    pub address: String,
    /// The address type.
    #[serde(rename = "type")]
    pub address_type: AddressType,
    /// The AddressPlan's name.
    pub plan: String,
    /// Subscription only: the topic address it subscribes to.
    pub topic: Option<String>,
    /// Subscription only: its settings.
    pub subscription: Option<SubscriptionSpec>,
    /// The dead-letter target, an address of type deadletter.
    pub deadletter: Option<String>,
    /// The expiry target, an address of type deadletter.
    pub expiry: Option<String>,
    /// TTL bounds in milliseconds; can only narrow the plan's.
    pub message_ttl: Option<MessageTtl>,
    /// Redelivery policy; wins field by field over the plan's.
    pub message_redelivery: Option<MessageRedelivery>,
    /// Duplicate detection (Sluice's own field); wins field by field over the plan's.
    pub duplicate_detection: Option<DuplicateDetectionSpec>,
    /// Forwarders to or from a connector (standard queue and subscription only).
    #[serde(default)]
    pub forwarders: Vec<Forwarder>,
    /// Deprecated legacy field, accepted and ignored.
    pub address_space: Option<String>,
}

/// `Address.spec.subscription`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionSpec {
    /// How many consumers may attach at once; EnMasse's default is 1.
    pub max_consumers: Option<u32>,
}

/// `messageTtl` (milliseconds).
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub struct MessageTtl {
    /// Lower bound.
    pub minimum: Option<u64>,
    /// Upper bound; also the TTL of messages that carry none.
    pub maximum: Option<u64>,
}

/// `messageRedelivery`.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageRedelivery {
    /// Deliveries before dead-lettering; -1 is infinite.
    pub maximum_delivery_attempts: Option<i64>,
    /// Delay before a redelivery, ms.
    pub redelivery_delay: Option<i64>,
    /// Factor the delay grows by on each redelivery.
    pub redelivery_delay_multiplier: Option<f64>,
    /// Largest delay, ms; 0 is no maximum.
    pub maximum_delivery_delay: Option<i64>,
}

/// `duplicateDetection`, as Artemis's duplicate-id cache and Azure Service Bus's duplicate
/// detection window: a message whose `message-id` was accepted within the window is accepted
/// again but not stored twice. Writing the field turns it on; see `crate::duplicates`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DuplicateDetectionSpec {
    /// How long an id is remembered: a duration such as `10m`, `30s` or `500ms`.
    #[serde(default, deserialize_with = "text_or_number")]
    pub window: Option<String>,
    /// The most ids remembered; the oldest is forgotten first.
    pub maximum_ids: Option<i64>,
}

/// `Address.spec.forwarders[]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Forwarder {
    /// Forwarder name.
    pub name: String,
    /// `<connector>/<address>` on the remote peer.
    pub remote_address: String,
    /// `in` (remote to local) or `out`.
    pub direction: ForwarderDirection,
    /// Consumer priority (outgoing only).
    pub priority: Option<i32>,
}

/// `forwarders[].direction`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwarderDirection {
    /// From the remote address into this one.
    In,
    /// From this address to the remote one.
    Out,
}

// ---------------------------------------------------------------------------------------------
// MessagingUser (user.enmasse.io/v1beta1)

/// `MessagingUser` (user.enmasse.io/v1beta1).
#[derive(Clone, Debug, Deserialize)]
pub struct MessagingUser {
    /// Its metadata; `metadata.name` is `<addressspace>.<name>`.
    pub metadata: ObjectMeta,
    /// Its spec.
    pub spec: MessagingUserSpec,
    /// Controller-written status, accepted and ignored.
    pub status: Option<Value>,
}

/// `MessagingUser.spec`.
#[derive(Clone, Debug, Deserialize)]
pub struct MessagingUserSpec {
    /// Lower-case user name; `system:serviceaccount:<ns>:<name>` for service accounts.
    pub username: String,
    /// How the user authenticates.
    pub authentication: UserAuthentication,
    /// What the user may do.
    #[serde(default)]
    pub authorization: Vec<AuthorizationRule>,
}

/// `MessagingUser.spec.authentication`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserAuthentication {
    /// `password | serviceaccount | federated`.
    #[serde(rename = "type")]
    pub auth_type: UserAuthenticationType,
    /// Base64 of the password (`password` users).
    pub password: Option<String>,
    /// Identity provider (`federated`).
    pub provider: Option<String>,
    /// Federated user id.
    pub federated_userid: Option<String>,
    /// Federated user name.
    pub federated_username: Option<String>,
}

/// `authentication.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserAuthenticationType {
    /// A password (SASL PLAIN or SCRAM).
    Password,
    /// A Kubernetes service-account token, checked by TokenReview.
    Serviceaccount,
    /// An identity-provider link (a no-op in EnMasse 0.31+).
    Federated,
}

/// `MessagingUser.spec.authorization[]`.
#[derive(Clone, Debug, Deserialize)]
pub struct AuthorizationRule {
    /// Address patterns; a trailing `*` is a prefix match.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// The operations granted on them.
    pub operations: Vec<Operation>,
}

/// `authorization[].operations[]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// Attach senders.
    Send,
    /// Attach receivers.
    Recv,
    /// Console: view (no AMQP rights).
    View,
    /// Console: manage (no AMQP rights).
    Manage,
}

// ---------------------------------------------------------------------------------------------
// Plans (admin.enmasse.io/v1beta2, v1beta1)

/// `AddressSpacePlan` (admin.enmasse.io/v1beta2).
#[derive(Clone, Debug, Deserialize)]
pub struct AddressSpacePlan {
    /// Its metadata.
    pub metadata: ObjectMeta,
    /// Its spec.
    pub spec: AddressSpacePlanSpec,
    /// Controller-written status, accepted and ignored.
    pub status: Option<Value>,
}

/// `AddressSpacePlan.spec`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddressSpacePlanSpec {
    /// Console display name.
    pub display_name: Option<String>,
    /// Console display order.
    pub display_order: Option<i64>,
    /// The infra config (of the space type's kind) this plan runs on.
    pub infra_config_ref: Option<String>,
    /// One-line description.
    pub short_description: Option<String>,
    /// Long description.
    pub long_description: Option<String>,
    /// The address space type this plan is for.
    pub address_space_type: AddressSpaceType,
    /// The quota: limits on the sum of the addresses' plan resources.
    #[serde(default)]
    pub resource_limits: ResourceLimits,
    /// The AddressPlans addresses in a space with this plan may use.
    #[serde(default)]
    pub address_plans: Vec<String>,
}

/// `AddressSpacePlan.spec.resourceLimits`; an absent limit is no limit.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub struct ResourceLimits {
    /// Router credits.
    pub router: Option<f64>,
    /// Broker credits.
    pub broker: Option<f64>,
    /// Router plus broker credits.
    pub aggregate: Option<f64>,
}

/// `AddressPlan` (admin.enmasse.io/v1beta2).
#[derive(Clone, Debug, Deserialize)]
pub struct AddressPlan {
    /// Its metadata.
    pub metadata: ObjectMeta,
    /// Its spec.
    pub spec: AddressPlanSpec,
    /// Controller-written status, accepted and ignored.
    pub status: Option<Value>,
}

/// `AddressPlan.spec`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddressPlanSpec {
    /// Console display name.
    pub display_name: Option<String>,
    /// Console display order.
    pub display_order: Option<i64>,
    /// One-line description.
    pub short_description: Option<String>,
    /// Long description.
    pub long_description: Option<String>,
    /// The address type this plan is for.
    pub address_type: AddressType,
    /// Credits an address with this plan uses.
    #[serde(default)]
    pub resources: PlanResources,
    /// Queue partitions (standard).
    pub partitions: Option<u32>,
    /// TTL bounds for addresses with this plan.
    pub message_ttl: Option<MessageTtl>,
    /// Redelivery defaults for addresses with this plan.
    pub message_redelivery: Option<MessageRedelivery>,
    /// Duplicate detection for addresses with this plan (Sluice's own field).
    pub duplicate_detection: Option<DuplicateDetectionSpec>,
}

/// `AddressPlan.spec.resources`; absent is 0.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub struct PlanResources {
    /// Router credits.
    pub router: Option<f64>,
    /// Broker credits.
    pub broker: Option<f64>,
}

// ---------------------------------------------------------------------------------------------
// AuthenticationService (admin.enmasse.io/v1beta1)

/// `AuthenticationService` (admin.enmasse.io/v1beta1).
#[derive(Clone, Debug, Deserialize)]
pub struct AuthenticationService {
    /// Its metadata.
    pub metadata: ObjectMeta,
    /// Its spec.
    pub spec: AuthenticationServiceSpec,
    /// Controller-written status, accepted and ignored.
    pub status: Option<Value>,
}

/// `AuthenticationService.spec.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthenticationServiceType {
    /// Anyone, any credentials: SASL ANONYMOUS or PLAIN.
    None,
    /// Users from MessagingUser resources.
    Standard,
    /// An external SASL server.
    External,
}

impl fmt::Display for AuthenticationServiceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthenticationServiceType::None => "none",
            AuthenticationServiceType::Standard => "standard",
            AuthenticationServiceType::External => "external",
        })
    }
}

/// `AuthenticationService.spec`.
#[derive(Clone, Debug, Deserialize)]
pub struct AuthenticationServiceSpec {
    /// `none | standard | external`.
    #[serde(rename = "type")]
    pub service_type: AuthenticationServiceType,
    /// Realm sent as the SASL hostname (default `<namespace>-<addressspace>`).
    pub realm: Option<String>,
    /// Settings of the `none` service (replicas, image, ...); kept as written.
    pub none: Option<Value>,
    /// Settings of the `standard` service (storage, datasource, ...); kept as written.
    pub standard: Option<Value>,
    /// Settings of the `external` service.
    pub external: Option<ExternalAuthenticationService>,
}

/// `AuthenticationService.spec.external`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalAuthenticationService {
    /// Host of the SASL server.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// CA certificate to trust it with.
    pub ca_cert_secret: Option<SecretRef>,
    /// Client certificate to present.
    pub client_cert_secret: Option<SecretRef>,
    /// Whether address spaces may override host, port and realm.
    #[serde(default)]
    pub allow_override: bool,
}

// ---------------------------------------------------------------------------------------------
// StandardInfraConfig / BrokeredInfraConfig (admin.enmasse.io/v1beta1)

/// `StandardInfraConfig` or `BrokeredInfraConfig` (admin.enmasse.io/v1beta1).
#[derive(Clone, Debug, Deserialize)]
pub struct InfraConfig {
    /// Its metadata.
    pub metadata: ObjectMeta,
    /// Its spec.
    #[serde(default)]
    pub spec: InfraConfigSpec,
    /// Controller-written status, accepted and ignored.
    pub status: Option<Value>,
}

/// `InfraConfig.spec` (a brokered one has no `router`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InfraConfigSpec {
    /// Infra version.
    pub version: Option<String>,
    /// Admin pod settings; kept as written.
    pub admin: Option<Value>,
    /// Broker settings.
    pub broker: Option<BrokerInfra>,
    /// Router settings (standard only).
    pub router: Option<RouterInfra>,
    /// Whether a global dead-letter queue `!!GLOBAL_DLQ` exists.
    #[serde(rename = "globalDLQ")]
    pub global_dlq: Option<bool>,
    /// Network policy; kept as written.
    pub network_policy: Option<Value>,
}

/// `InfraConfig.spec.broker`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerInfra {
    /// `PAGE | BLOCK | FAIL | DROP`.
    pub address_full_policy: Option<String>,
    /// Memory for all addresses, e.g. `64Mb`.
    #[serde(default, deserialize_with = "text_or_number")]
    pub global_max_size: Option<String>,
    /// `{memory, storage}`; kept as written.
    pub resources: Option<Value>,
    /// PodDisruptionBudget (int or percentage).
    pub min_available: Option<Value>,
    /// PodDisruptionBudget (int or percentage).
    pub max_unavailable: Option<Value>,
    /// Storage class of the broker volume.
    pub storage_class_name: Option<String>,
    /// Whether to resize the volume claim.
    pub update_persistent_volume_claim: Option<bool>,
    /// Idle timeout of broker connectors.
    pub connector_idle_timeout: Option<u32>,
    /// Worker threads of broker connectors.
    pub connector_worker_threads: Option<u32>,
    /// Treat `rejected` as `modified{delivery-failed}` (EnMasse default true).
    pub treat_reject_as_unmodified_delivery_failed: Option<bool>,
    /// Answer transient errors with `modified` (EnMasse default true).
    pub use_modified_for_transient_delivery_errors: Option<bool>,
    /// Large-message threshold, -1 never.
    pub min_large_message_size: Option<i64>,
    /// JVM options (not used by Sluice).
    pub java_opts: Option<String>,
    /// Pod template; kept as written.
    pub pod_template: Option<Value>,
}

/// A field written as text or as a plain number (`globalMaxSize: 1048576`), kept as text.
fn text_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum TextOrNumber {
        Text(String),
        Unsigned(u64),
        Signed(i64),
        Float(f64),
    }
    Ok(Option::<TextOrNumber>::deserialize(d)?.map(|v| match v {
        TextOrNumber::Text(t) => t,
        TextOrNumber::Unsigned(n) => n.to_string(),
        TextOrNumber::Signed(n) => n.to_string(),
        TextOrNumber::Float(n) => n.to_string(),
    }))
}

/// `InfraConfig.spec.router`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterInfra {
    /// Default link credit.
    pub link_capacity: Option<u32>,
    /// Idle timeout, seconds.
    pub idle_timeout: Option<u32>,
    /// Initial handshake timeout, seconds.
    pub handshake_timeout: Option<u32>,
    /// Worker threads.
    pub worker_threads: Option<u32>,
    /// Replicas.
    pub min_replicas: Option<u32>,
    /// PodDisruptionBudget (int or percentage).
    pub min_available: Option<Value>,
    /// PodDisruptionBudget (int or percentage).
    pub max_unavailable: Option<Value>,
    /// `{memory}`; kept as written.
    pub resources: Option<Value>,
    /// Connection and link limits.
    pub policy: Option<RouterPolicy>,
    /// Pod template; kept as written.
    pub pod_template: Option<Value>,
}

/// `InfraConfig.spec.router.policy`.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterPolicy {
    /// Connections in all.
    pub max_connections: Option<u32>,
    /// Connections per user.
    pub max_connections_per_user: Option<u32>,
    /// Connections per host.
    pub max_connections_per_host: Option<u32>,
    /// Sessions per connection.
    pub max_sessions_per_connection: Option<u32>,
    /// Senders per connection.
    pub max_senders_per_connection: Option<u32>,
    /// Receivers per connection.
    pub max_receivers_per_connection: Option<u32>,
    /// Largest message in bytes; 0 is no limit.
    pub max_message_size: Option<u64>,
}
