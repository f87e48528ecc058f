//! The Prometheus operator's `ServiceMonitor` (monitoring.coreos.com/v1), which k8s-openapi
//! does not have: only the fields Sluice writes, each a real field of the CRD, and unknown
//! fields refused when read back. Self-contained (no `crate::` paths) so that the tests can
//! include this file and read the manifests with it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::{Deserialize, Serialize};

/// `apiVersion` of a ServiceMonitor.
pub(crate) const API_VERSION: &str = "monitoring.coreos.com/v1";
/// `kind` of a ServiceMonitor.
pub(crate) const KIND: &str = "ServiceMonitor";

/// A ServiceMonitor: scrape the endpoints of the Services its selector picks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ServiceMonitor {
    /// [`API_VERSION`].
    pub(crate) api_version: String,
    /// [`KIND`].
    pub(crate) kind: String,
    /// Its metadata.
    pub(crate) metadata: ObjectMeta,
    /// Its spec.
    pub(crate) spec: ServiceMonitorSpec,
}

/// `ServiceMonitor.spec`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ServiceMonitorSpec {
    /// The Services to scrape (in the ServiceMonitor's own namespace).
    pub(crate) selector: LabelSelector,
    /// Their ports to scrape.
    pub(crate) endpoints: Vec<Endpoint>,
}

/// `ServiceMonitor.spec.endpoints[]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Endpoint {
    /// The Service port's name.
    pub(crate) port: String,
    /// The HTTP path.
    pub(crate) path: String,
    /// How often, e.g. `30s`.
    pub(crate) interval: String,
    /// `http` or `https`.
    pub(crate) scheme: String,
}
