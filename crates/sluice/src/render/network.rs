//! The NetworkPolicy of a space's pods.
//!
//! With `spec.networkPolicy` on the AddressSpace (or else on its infra config), its `ingress`
//! and `egress` rules are used as written, read exactly into Kubernetes' types (a field
//! Kubernetes does not know is an error, not dropped). Without one, the messaging ports the
//! Service names are open to anyone. Either way the metrics port is open to the monitoring
//! namespace (`--monitoring-namespace`), so that the ServiceMonitor rendered beside it works.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;
use sluice_config::{Diagnostic, Origin, Severity};

use super::Target;
use super::flags::{HTTP, Port};
use super::yaml::exact;

fn policy_port(port: Port) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(port.number)),
        protocol: Some("TCP".to_owned()),
        ..NetworkPolicyPort::default()
    }
}

/// The policy, or an error naming the field of `networkPolicy` that cannot be rendered.
pub(super) fn policy(target: &Target<'_>, ports: &[Port]) -> Result<NetworkPolicy, Diagnostic> {
    let space = &target.space.space;
    let given: Option<(&Value, &Origin, &str)> = match &space.resource.spec.network_policy {
        Some(policy) => Some((policy, &space.origin, "spec.networkPolicy")),
        None => target.space.infra_config.as_ref().and_then(|infra| {
            infra
                .resource
                .spec
                .network_policy
                .as_ref()
                .map(|policy| (policy, &infra.origin, "spec.networkPolicy"))
        }),
    };
    let metrics = NetworkPolicyIngressRule {
        from: Some(vec![NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    "kubernetes.io/metadata.name".to_owned(),
                    target.monitoring_namespace.to_owned(),
                )])),
                ..LabelSelector::default()
            }),
            ..NetworkPolicyPeer::default()
        }]),
        ports: Some(vec![policy_port(HTTP)]),
    };
    let (mut ingress, egress) = match given {
        None => {
            let messaging: Vec<NetworkPolicyPort> = ports
                .iter()
                .filter(|p| **p != HTTP)
                .copied()
                .map(policy_port)
                .collect();
            (
                vec![NetworkPolicyIngressRule {
                    from: None,
                    ports: Some(messaging),
                }],
                None,
            )
        }
        Some((value, origin, path)) => {
            let error = |message: String| origin.diagnostic(Severity::Error, path, message);
            let field_error =
                |(at, message): (String, String)| origin.diagnostic(Severity::Error, at, message);
            let Value::Object(map) = value else {
                return Err(error(
                    "must be a mapping of `ingress` and `egress` rules".to_owned(),
                ));
            };
            if let Some(key) = map.keys().find(|k| *k != "ingress" && *k != "egress") {
                return Err(field_error((
                    format!("{path}.{key}"),
                    "only `ingress` and `egress` rules are rendered".to_owned(),
                )));
            }
            let ingress = match map.get("ingress") {
                Some(rules) => {
                    exact::<Vec<NetworkPolicyIngressRule>>(rules, &format!("{path}.ingress"))
                        .map_err(field_error)?
                }
                None => Vec::new(),
            };
            let egress = match map.get("egress") {
                Some(rules) => Some(
                    exact::<Vec<NetworkPolicyEgressRule>>(rules, &format!("{path}.egress"))
                        .map_err(field_error)?,
                ),
                None => None,
            };
            (ingress, egress)
        }
    };
    ingress.push(metrics);
    let mut types = vec!["Ingress".to_owned()];
    if egress.is_some() {
        types.push("Egress".to_owned());
    }
    Ok(NetworkPolicy {
        metadata: target.meta(target.name()),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(target.selector()),
                ..LabelSelector::default()
            }),
            ingress: Some(ingress),
            egress,
            policy_types: Some(types),
        }),
    })
}
