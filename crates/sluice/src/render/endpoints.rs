//! The space's endpoints: the Service and its ports, the certificate, the ServiceMonitor, the
//! load balancers and the exports of the endpoints' coordinates.
//!
//! Ports: an endpoint of service `messaging` named `messaging-wss`, or exposed through the
//! `https` route port, names `amqp-wss` (8443); any other `messaging` endpoint names `amqp`
//! (5672) and `amqps` (5671). Without endpoints a space gets EnMasse's defaults, `messaging`
//! and `messaging-wss`, in both space types (EnMasse's brokered spaces had no WebSocket port;
//! Sluice serves one for both). `mqtt` and `console` endpoints are not served. `http` (8080,
//! metrics and probes) is always there.
//!
//! Certificates (`endpoints[].cert`; one for the whole pod, since it serves one): `selfsigned`
//! or none: the pod makes its own at start for the Service's names and writes the CA to its
//! export directory; `certBundle`: a Secret of type `kubernetes.io/tls` is rendered from the
//! bundle; `openshift`: the Service asks OpenShift's service CA for the Secret; `wildcard`
//! and anything else: the operator provides the Secret. The Secret is `cert.secretName`, or
//! `<space>-tls`, mounted at `/etc/sluice/tls`.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;
use sluice_config::resources::EndpointSpec;
use sluice_config::{Diagnostic, ResolvedAddressSpace, Severity};

use super::Target;
use super::flags::{self, AMQP, AMQP_WSS, AMQPS, HTTP, Port};
use super::monitor::{self, ServiceMonitor, ServiceMonitorSpec};

/// The ports the space's endpoints name, then `http`, in [`flags::PORTS`] order.
pub(super) fn service_ports(space: &ResolvedAddressSpace) -> Vec<Port> {
    let endpoints = &space.space.resource.spec.endpoints;
    let mut named = vec![HTTP];
    if endpoints.is_empty() {
        named.extend([AMQP, AMQPS, AMQP_WSS]);
    }
    for endpoint in endpoints.iter().filter(|e| e.service == "messaging") {
        if is_websocket(endpoint) {
            named.push(AMQP_WSS);
        } else {
            named.extend([AMQP, AMQPS]);
        }
    }
    flags::PORTS
        .into_iter()
        .filter(|p| named.contains(p))
        .collect()
}

fn is_websocket(endpoint: &EndpointSpec) -> bool {
    endpoint.name == "messaging-wss"
        || endpoint
            .expose
            .as_ref()
            .and_then(|e| e.route_service_port.as_deref())
            == Some("https")
}

/// Where the pod's certificate comes from.
#[derive(Clone, Debug)]
pub(super) enum Tls {
    /// Made by the pod at start for these names.
    SelfSigned(Vec<String>),
    /// From a mounted Secret.
    Secret {
        /// The Secret's name.
        name: String,
        /// `certBundle`: the certificate and key, rendered as the Secret.
        bundle: Option<(Vec<u8>, Vec<u8>)>,
        /// `openshift`: the service CA writes the Secret.
        openshift: bool,
    },
}

impl Tls {
    /// The Secret to mount, if any.
    pub(super) fn secret_name(&self) -> Option<&str> {
        match self {
            Tls::SelfSigned(_) => None,
            Tls::Secret { name, .. } => Some(name),
        }
    }

    /// The `kubernetes.io/tls` Secret of a `certBundle`.
    pub(super) fn bundle_secret(&self, target: &Target<'_>) -> Option<Secret> {
        let Tls::Secret {
            name,
            bundle: Some((cert, key)),
            ..
        } = self
        else {
            return None;
        };
        Some(Secret {
            metadata: target.meta(name.clone()),
            type_: Some("kubernetes.io/tls".to_owned()),
            data: Some(BTreeMap::from([
                ("tls.crt".to_owned(), ByteString(cert.clone())),
                ("tls.key".to_owned(), ByteString(key.clone())),
            ])),
            ..Secret::default()
        })
    }
}

/// The Service's host name, `<space>.<namespace>.svc` (just `<space>` without a namespace:
/// it resolves in the pod's own).
pub(super) fn service_host(target: &Target<'_>) -> String {
    match target.namespace() {
        Some(ns) => format!("{}.{ns}.svc", target.name()),
        None => target.name().to_owned(),
    }
}

/// The certificate of the space's endpoints; two endpoints with different certificates are
/// an error, since the pod serves one.
pub(super) fn tls(target: &Target<'_>) -> Result<Tls, Diagnostic> {
    let space = &target.space.space;
    let certs: Vec<(usize, &sluice_config::resources::CertSpec)> = space
        .resource
        .spec
        .endpoints
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.cert.as_ref().map(|c| (i, c)))
        .collect();
    let Some(&(at, cert)) = certs.first() else {
        return Ok(self_signed(target));
    };
    let error =
        |path: String, message: String| space.origin.diagnostic(Severity::Error, path, message);
    if let Some((i, other)) = certs
        .iter()
        .find(|(_, c)| c.provider != cert.provider || c.secret_name != cert.secret_name)
    {
        return Err(error(
            format!("spec.endpoints[{i}].cert"),
            format!(
                "the {} certificate differs from spec.endpoints[{at}].cert ({}): a Sluice pod serves one certificate on all its ports",
                other.provider, cert.provider
            ),
        ));
    }
    let name = cert
        .secret_name
        .clone()
        .unwrap_or_else(|| format!("{}-tls", target.name()));
    match cert.provider.as_str() {
        "selfsigned" => Ok(self_signed(target)),
        "certBundle" => {
            let decode = |field: &str, value: &Option<String>| {
                use base64::Engine as _;
                let path = format!("spec.endpoints[{at}].cert.{field}");
                let value = value
                    .as_deref()
                    .ok_or_else(|| error(path.clone(), "a certBundle needs it".to_owned()))?;
                base64::engine::general_purpose::STANDARD
                    .decode(value.trim())
                    .map_err(|_| error(path, "not valid base64 (of a PEM file)".to_owned()))
            };
            let cert_pem = decode("tlsCert", &cert.tls_cert)?;
            let key_pem = decode("tlsKey", &cert.tls_key)?;
            Ok(Tls::Secret {
                name,
                bundle: Some((cert_pem, key_pem)),
                openshift: false,
            })
        }
        "openshift" => Ok(Tls::Secret {
            name,
            bundle: None,
            openshift: true,
        }),
        _ => Ok(Tls::Secret {
            name,
            bundle: None,
            openshift: false,
        }),
    }
}

fn self_signed(target: &Target<'_>) -> Tls {
    let mut names = vec![target.name().to_owned()];
    if let Some(ns) = target.namespace() {
        let name = target.name();
        names.extend([
            format!("{name}.{ns}"),
            format!("{name}.{ns}.svc"),
            format!("{name}.{ns}.svc.cluster.local"),
        ]);
    }
    names.push("localhost".to_owned());
    Tls::SelfSigned(names)
}

fn service_port(port: Port) -> ServicePort {
    ServicePort {
        name: Some(port.name.to_owned()),
        port: port.number,
        target_port: Some(IntOrString::String(port.name.to_owned())),
        protocol: Some("TCP".to_owned()),
        ..ServicePort::default()
    }
}

/// The Service `<space>`: the endpoints' ports and `http`.
pub(super) fn service(target: &Target<'_>, ports: &[Port], tls: &Tls) -> Service {
    let mut metadata = target.meta(target.name());
    if let Tls::Secret {
        name,
        openshift: true,
        ..
    } = tls
    {
        metadata.annotations = Some(BTreeMap::from([(
            "service.beta.openshift.io/serving-cert-secret-name".to_owned(),
            name.clone(),
        )]));
    }
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(target.selector()),
            ports: Some(ports.iter().copied().map(service_port).collect()),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// A `LoadBalancer` Service `<space>-<endpoint>-external` for each endpoint exposed with
/// `expose.type: loadbalancer`, with its `loadBalancerPorts` (all of the endpoint's when
/// none are listed; `https` is `amqp-wss`) and source ranges. Routes are OpenShift's and not
/// rendered.
pub(super) fn external_services(target: &Target<'_>, ports: &[Port]) -> Vec<Service> {
    let mut services = Vec::new();
    for endpoint in &target.space.space.resource.spec.endpoints {
        let Some(expose) = endpoint
            .expose
            .as_ref()
            .filter(|e| e.expose_type == "loadbalancer")
        else {
            continue;
        };
        let wanted = |port: &Port| {
            expose.load_balancer_ports.is_empty()
                || expose
                    .load_balancer_ports
                    .iter()
                    .any(|name| name == port.name || (name == "https" && *port == AMQP_WSS))
        };
        let own = if is_websocket(endpoint) {
            vec![AMQP_WSS]
        } else {
            vec![AMQP, AMQPS]
        };
        let chosen: Vec<ServicePort> = ports
            .iter()
            .filter(|p| own.contains(p) && wanted(p))
            .copied()
            .map(service_port)
            .collect();
        if chosen.is_empty() {
            continue;
        }
        let mut metadata = target.meta(format!("{}-{}-external", target.name(), endpoint.name));
        if !expose.annotations.is_empty() {
            metadata.annotations = Some(expose.annotations.clone());
        }
        let ranges = &expose.load_balancer_source_ranges;
        services.push(Service {
            metadata,
            spec: Some(ServiceSpec {
                type_: Some("LoadBalancer".to_owned()),
                selector: Some(target.selector()),
                ports: Some(chosen),
                load_balancer_source_ranges: (!ranges.is_empty()).then(|| ranges.clone()),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        });
    }
    services
}

/// The ServiceMonitor scraping the Service's `http` port.
pub(super) fn monitor(target: &Target<'_>) -> ServiceMonitor {
    ServiceMonitor {
        api_version: monitor::API_VERSION.to_owned(),
        kind: monitor::KIND.to_owned(),
        metadata: target.meta(target.name()),
        spec: ServiceMonitorSpec {
            selector: LabelSelector {
                match_labels: Some(target.selector()),
                ..LabelSelector::default()
            },
            endpoints: vec![monitor::Endpoint {
                port: HTTP.name.to_owned(),
                path: flags::METRICS_PATH.to_owned(),
                interval: "30s".to_owned(),
                scheme: "http".to_owned(),
            }],
        },
    }
}

/// The endpoints' exports, as EnMasse's ExportsController wrote them: a ConfigMap or Secret
/// with `service.host` and `service.port.<name>` for the Service's messaging ports, or an
/// `ExternalName` Service. `ca.crt` is not among them: a self-signed CA is made by the pod at
/// start and written to its export directory, so it is only known at run time.
pub(super) fn exports(target: &Target<'_>, ports: &[Port]) -> Vec<Value> {
    let host = service_host(target);
    let mut data = BTreeMap::from([("service.host".to_owned(), host.clone())]);
    for port in ports.iter().filter(|p| **p != HTTP) {
        data.insert(
            format!("service.port.{}", port.name),
            port.number.to_string(),
        );
    }
    let mut out = Vec::new();
    for endpoint in &target.space.space.resource.spec.endpoints {
        for export in &endpoint.exports {
            let metadata = target.meta(export.name.clone());
            let object = match export.kind.as_str() {
                "ConfigMap" => super::yaml::value(&ConfigMap {
                    metadata,
                    data: Some(data.clone()),
                    ..ConfigMap::default()
                }),
                "Secret" => super::yaml::value(&Secret {
                    metadata,
                    type_: Some("Opaque".to_owned()),
                    string_data: Some(data.clone()),
                    ..Secret::default()
                }),
                // An ExternalName needs the fully qualified name, so a namespace.
                "Service" if target.namespace().is_some() => super::yaml::value(&Service {
                    metadata,
                    spec: Some(ServiceSpec {
                        type_: Some("ExternalName".to_owned()),
                        external_name: Some(format!("{host}.cluster.local")),
                        ports: Some(
                            ports
                                .iter()
                                .filter(|p| **p != HTTP)
                                .map(|p| ServicePort {
                                    name: Some(p.name.to_owned()),
                                    port: p.number,
                                    ..ServicePort::default()
                                })
                                .collect(),
                        ),
                        ..ServiceSpec::default()
                    }),
                    ..Service::default()
                }),
                _ => continue,
            };
            out.push(object);
        }
    }
    out
}
