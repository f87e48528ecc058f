//! `sluice render PATH... --out DIR`: the Kubernetes manifests that run each address space.
//!
//! For every address space of a valid configuration it writes `DIR/<namespace>/<space>/`
//! (`DIR/_default/<space>/` for a space written without a namespace, whose manifests then
//! name none either and go where `kubectl apply` puts them): a StatefulSet running
//! `sluice serve` with a volume for the journal, the ConfigMap with exactly that space's
//! resources and the plans, infra config and authentication service they use, a Secret with
//! its MessagingUsers (passwords are secrets), the Service, a ServiceMonitor, a NetworkPolicy,
//! the endpoints' exports, and a ServiceAccount (with the TokenReview binding when a user is a
//! service account). Nothing is written when `sluice check` would report an error, or a
//! setting cannot be rendered: the diagnostics are printed and the exit code is 1.
//!
//! Output is deterministic: the same manifests give byte-identical files (maps are sorted,
//! nothing depends on time or the machine), so the result can be committed and diffed.

mod config;
mod endpoints;
pub(crate) mod flags;
mod infra;
pub(crate) mod monitor;
mod network;
mod workload;
mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sluice_config::{Checked, Diagnostic, Manifests, ResolvedAddressSpace};

/// The directory of the spaces written without a namespace (`_` is not allowed in a
/// namespace's name, so it cannot be one).
pub(crate) const NO_NAMESPACE_DIR: &str = "_default";

/// Arguments of `sluice render`.
#[derive(Debug, clap::Args)]
pub(crate) struct RenderArgs {
    /// YAML files or directories of them, as `sluice check` takes them.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Where to write `<namespace>/<space>/*.yaml`; files of a space's folder that are no
    /// longer rendered are removed, other folders are left alone.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The container image the StatefulSets run.
    #[arg(long, value_name = "IMAGE", default_value = concat!("sluice:", env!("CARGO_PKG_VERSION")))]
    image: String,
    /// The namespace Prometheus scrapes from: the NetworkPolicy lets it reach the metrics port.
    #[arg(long, value_name = "NAME", default_value = "monitoring")]
    monitoring_namespace: String,
}

/// What one address space is rendered for, and its common labels.
pub(super) struct Target<'a> {
    space: &'a ResolvedAddressSpace,
    manifests: &'a Manifests,
    image: &'a str,
    monitoring_namespace: &'a str,
}

impl<'a> Target<'a> {
    fn name(&self) -> &'a str {
        &self.space.name
    }

    fn namespace(&self) -> Option<&'a str> {
        self.space.namespace.as_deref()
    }

    /// The labels that pick the space's pods.
    fn selector(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".to_owned(), "sluice".to_owned()),
            (
                "app.kubernetes.io/instance".to_owned(),
                self.name().to_owned(),
            ),
        ])
    }

    /// The labels of every object rendered for the space.
    fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.selector();
        labels.insert(
            "app.kubernetes.io/component".to_owned(),
            "address-space".to_owned(),
        );
        labels.insert(
            "app.kubernetes.io/managed-by".to_owned(),
            "sluice-render".to_owned(),
        );
        labels.insert(
            "app.kubernetes.io/version".to_owned(),
            env!("CARGO_PKG_VERSION").to_owned(),
        );
        labels.insert(
            "enmasse.io/address-space-type".to_owned(),
            self.space.space_type.to_string(),
        );
        labels
    }

    /// Metadata of an object called `name` in the space's namespace, with its labels.
    fn meta(&self, name: impl Into<String>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: self.namespace().map(str::to_owned),
            labels: Some(self.labels()),
            ..ObjectMeta::default()
        }
    }

    /// The folder under `--out`.
    fn dir(&self) -> PathBuf {
        Path::new(self.namespace().unwrap_or(NO_NAMESPACE_DIR)).join(self.name())
    }
}

/// One rendered file: its name in the space's folder and its text.
pub(super) type File = (String, String);

pub(crate) fn run(args: &RenderArgs) -> anyhow::Result<ExitCode> {
    let sources = sluice_config::read_paths(&args.paths).context("reading the manifests")?;
    let mut diagnostics = Vec::new();
    let manifests = sluice_config::parse_sources(&sources, &mut diagnostics);
    let config = sluice_config::resolve(&manifests, &mut diagnostics);
    let checked = Checked {
        config,
        diagnostics,
    };
    if !checked.is_valid() {
        print!("{}", crate::check::report(&checked));
        eprintln!("error: nothing rendered: the manifests have errors (listed above)");
        return Ok(ExitCode::FAILURE);
    }
    let mut rendered = Vec::new();
    let mut errors: Vec<Diagnostic> = Vec::new();
    for space in checked.config.address_spaces.values() {
        let target = Target {
            space,
            manifests: &manifests,
            image: &args.image,
            monitoring_namespace: &args.monitoring_namespace,
        };
        match render_space(&target) {
            Ok(files) => rendered.push((target.dir(), files)),
            Err(e) => errors.extend(e),
        }
    }
    if !errors.is_empty() {
        for e in &errors {
            println!("error: {e}");
        }
        eprintln!(
            "error: nothing rendered: {} setting(s) cannot be rendered",
            errors.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    for (dir, files) in &rendered {
        write_space(&args.out.join(dir), files)?;
        println!(
            "rendered {} ({} files)",
            args.out.join(dir).display(),
            files.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Every file of one space, or the settings that cannot be rendered.
fn render_space(target: &Target<'_>) -> Result<Vec<File>, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let ports = endpoints::service_ports(target.space);
    let sizing = infra::sizing(target.space).map_err(|e| errors.push(e)).ok();
    let tls = endpoints::tls(target).map_err(|e| errors.push(e)).ok();
    let policy = network::policy(target, &ports)
        .map_err(|e| errors.push(e))
        .ok();
    let (Some(sizing), Some(tls), Some(policy)) = (sizing, tls, policy) else {
        return Err(errors);
    };
    let config = config::render(target);
    let mut files = vec![
        yaml::file(target, "configmap.yaml", &[yaml::value(&config.config_map)]),
        yaml::file(target, "networkpolicy.yaml", &[yaml::value(&policy)]),
        yaml::file(
            target,
            "service.yaml",
            &[yaml::value(&endpoints::service(target, &ports, &tls))],
        ),
        yaml::file(
            target,
            "servicemonitor.yaml",
            &[yaml::value(&endpoints::monitor(target))],
        ),
        yaml::file(
            target,
            "statefulset.yaml",
            &[yaml::value(&workload::stateful_set(
                target, &sizing, &tls, &config,
            ))],
        ),
        yaml::file(
            target,
            "serviceaccount.yaml",
            &workload::service_account(target),
        ),
    ];
    if let Some(users) = &config.users {
        files.push(yaml::file(
            target,
            "secret-users.yaml",
            &[yaml::value(users)],
        ));
    }
    if let Some(secret) = tls.bundle_secret(target) {
        files.push(yaml::file(
            target,
            "secret-tls.yaml",
            &[yaml::value(&secret)],
        ));
    }
    let exports = endpoints::exports(target, &ports);
    if !exports.is_empty() {
        files.push(yaml::file(target, "exports.yaml", &exports));
    }
    let external = endpoints::external_services(target, &ports);
    if !external.is_empty() {
        let external: Vec<_> = external.iter().map(yaml::value).collect();
        files.push(yaml::file(target, "service-external.yaml", &external));
    }
    files.sort();
    Ok(files)
}

/// Writes `files` into `dir`, leaving files whose text is unchanged untouched and removing the
/// `.yaml` files of an earlier render that are no longer rendered.
fn write_space(dir: &Path, files: &[File]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.extension().is_some_and(|e| e == "yaml") && !files.iter().any(|(f, _)| f == name) {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    for (name, text) in files {
        let path = dir.join(name);
        if std::fs::read_to_string(&path).is_ok_and(|old| old == *text) {
            continue;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
