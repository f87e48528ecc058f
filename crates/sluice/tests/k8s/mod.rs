//! What the render and docker tests share: running the binary, reading rendered YAML into
//! k8s-openapi's types exactly (a field the type drops fails), and the renderer's own
//! constants (`src/render/flags.rs`, `src/render/monitor.rs`, included as they are).
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

#[path = "../../src/render/flags.rs"]
pub mod flags;
#[path = "../../src/render/monitor.rs"]
pub mod monitor;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Runs `sluice ARGS`: the exit code and stdout + stderr.
pub fn sluice(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8(output.stdout).unwrap() + &String::from_utf8(output.stderr).unwrap();
    (output.status.code().unwrap(), text)
}

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.yaml` file under `dir`, by path relative to it, with its text.
pub fn files(dir: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                let rel = path.strip_prefix(base).unwrap().display().to_string();
                out.insert(rel, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The documents of a YAML stream as JSON values.
pub fn documents(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text)
        .unwrap()
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}

/// `value` read as `T`; fails when `T` drops a field of it (k8s-openapi's types ignore
/// unknown fields, so this is what tells that Kubernetes lacks a field that was written).
pub fn exact<T: DeserializeOwned + Serialize>(value: &Value) -> T {
    let typed: T = serde_json::from_value(value.clone()).unwrap_or_else(|e| {
        panic!("{e}: {value:#}");
    });
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(
        normalise(value.clone()),
        normalise(back),
        "a field was dropped by the type"
    );
    typed
}

/// Numbers written as strings where Kubernetes takes either (int-or-string) compare equal.
fn normalise(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, normalise(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(normalise).collect()),
        Value::Number(n) => Value::String(n.to_string()),
        other => other,
    }
}

/// A rendered object, typed by its kind.
#[derive(Debug)]
pub enum Object {
    StatefulSet(Box<StatefulSet>),
    Service(Box<Service>),
    ConfigMap(Box<ConfigMap>),
    Secret(Box<Secret>),
    NetworkPolicy(Box<NetworkPolicy>),
    ServiceAccount(Box<ServiceAccount>),
    ClusterRoleBinding(Box<ClusterRoleBinding>),
    ServiceMonitor(Box<monitor::ServiceMonitor>),
}

impl Object {
    /// Reads a document into the type of its `kind`, exactly.
    pub fn read(value: &Value) -> Object {
        let kind = value["kind"].as_str().unwrap_or("");
        let api = value["apiVersion"].as_str().unwrap_or("");
        match (api, kind) {
            ("apps/v1", "StatefulSet") => Object::StatefulSet(Box::new(exact(value))),
            ("v1", "Service") => Object::Service(Box::new(exact(value))),
            ("v1", "ConfigMap") => Object::ConfigMap(Box::new(exact(value))),
            ("v1", "Secret") => Object::Secret(Box::new(exact(value))),
            ("v1", "ServiceAccount") => Object::ServiceAccount(Box::new(exact(value))),
            ("networking.k8s.io/v1", "NetworkPolicy") => {
                Object::NetworkPolicy(Box::new(exact(value)))
            }
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                Object::ClusterRoleBinding(Box::new(exact(value)))
            }
            (monitor::API_VERSION, monitor::KIND) => {
                let typed: monitor::ServiceMonitor = serde_json::from_value(value.clone())
                    .unwrap_or_else(|e| panic!("{e}: {value:#}"));
                Object::ServiceMonitor(Box::new(typed))
            }
            other => panic!("unexpected kind {other:?}"),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Object::StatefulSet(_) => "StatefulSet",
            Object::Service(_) => "Service",
            Object::ConfigMap(_) => "ConfigMap",
            Object::Secret(_) => "Secret",
            Object::NetworkPolicy(_) => "NetworkPolicy",
            Object::ServiceAccount(_) => "ServiceAccount",
            Object::ClusterRoleBinding(_) => "ClusterRoleBinding",
            Object::ServiceMonitor(_) => "ServiceMonitor",
        }
    }
}

/// Every object of a space's folder, typed.
pub fn objects(dir: &Path) -> Vec<Object> {
    files(dir)
        .values()
        .flat_map(|text| documents(text))
        .map(|v| Object::read(&v))
        .collect()
}

/// The one StatefulSet among `objects`.
pub fn stateful_set(objects: &[Object]) -> &StatefulSet {
    let mut sets = objects.iter().filter_map(|o| match o {
        Object::StatefulSet(s) => Some(s.as_ref()),
        _ => None,
    });
    let set = sets.next().expect("a StatefulSet");
    assert!(sets.next().is_none(), "one StatefulSet");
    set
}

/// The Service called `name`.
pub fn service<'a>(objects: &'a [Object], name: &str) -> &'a Service {
    objects
        .iter()
        .find_map(|o| match o {
            Object::Service(s) if s.metadata.name.as_deref() == Some(name) => Some(s.as_ref()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("a Service {name}"))
}

/// The Service's ports as (name, number).
pub fn service_ports(service: &Service) -> Vec<(String, i32)> {
    service
        .spec
        .as_ref()
        .unwrap()
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| (p.name.clone().unwrap(), p.port))
        .collect()
}

/// Asserts the pod's probes: readiness on /readyz and liveness on /healthz, port 8080.
pub fn assert_probes(set: &StatefulSet) {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let container = &set.spec.template.spec.as_ref().unwrap().containers[0];
    for (probe, path) in [
        (&container.readiness_probe, "/readyz"),
        (&container.liveness_probe, "/healthz"),
    ] {
        let get = probe.as_ref().unwrap().http_get.as_ref().unwrap();
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(get.port, IntOrString::Int(8080));
    }
}

/// The flags of `sluice serve --help`.
pub fn serve_help() -> String {
    let (code, help) = sluice(&["serve", "--help"]);
    assert_eq!(code, 0, "{help}");
    help
}

/// Asserts that every `--flag` of `args` is one `sluice serve --help` lists.
pub fn assert_serve_accepts(args: &[String]) {
    let help = serve_help();
    let listed = |flag: &str| {
        help.lines()
            .any(|l| l.trim_start().split([' ', ',']).any(|word| word == flag))
    };
    for flag in args.iter().filter(|a| a.starts_with("--")) {
        if listed(flag) {
            continue;
        }
        panic!("`sluice serve --help` has no {flag}:\n{help}");
    }
}
