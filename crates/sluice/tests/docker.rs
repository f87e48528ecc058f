//! docker/: the Dockerfile and the checked-in manifests of docker/k8s/ (rendered from
//! config/ by docker/render-k8s.sh). No container engine is needed: the files are read.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod k8s;

use k8s::{Object, flags};

/// The release build: the Dockerfile's `RUN` line and scripts/build-release.sh run exactly
/// this.
const BUILD_COMMAND: &str = "cargo build --release --locked -p sluice";

fn docker() -> std::path::PathBuf {
    k8s::repo().join("docker")
}

#[test]
fn every_manifest_is_a_kubernetes_object_with_no_field_its_type_lacks() {
    let files = k8s::files(&docker().join("k8s"));
    assert!(!files.is_empty());
    let mut kinds = Vec::new();
    for (name, text) in &files {
        let documents = k8s::documents(text);
        assert!(!documents.is_empty(), "{name}");
        for document in &documents {
            kinds.push(Object::read(document).kind());
        }
    }
    for kind in [
        "StatefulSet",
        "ConfigMap",
        "Service",
        "ServiceMonitor",
        "NetworkPolicy",
    ] {
        assert!(kinds.contains(&kind), "no {kind} in docker/k8s: {kinds:?}");
    }
}

#[test]
fn the_manifests_expose_the_four_ports_probe_and_keep_a_journal() {
    let objects = k8s::objects(&docker().join("k8s"));
    let ports = k8s::service_ports(k8s::service(&objects, "orders"));
    let expected: Vec<(String, i32)> = flags::PORTS
        .iter()
        .map(|p| (p.name.to_owned(), p.number))
        .collect();
    assert_eq!(ports, expected);
    let numbers: Vec<i32> = ports.iter().map(|p| p.1).collect();
    assert_eq!(numbers, [5672, 5671, 8443, 8080]);
    let set = k8s::stateful_set(&objects);
    k8s::assert_probes(set);
    let pod = set.spec.template.spec.as_ref().unwrap();
    let container = &pod.containers[0];
    assert_eq!(
        container.command.as_deref(),
        Some(&[flags::BINARY.to_owned()][..])
    );
    k8s::assert_serve_accepts(container.args.as_ref().unwrap());
    // The journal on a persistent volume, the config from the ConfigMap.
    let claims = set.spec.volume_claim_templates.as_ref().unwrap();
    let claim = claims[0].metadata.name.clone().unwrap();
    let mounts = container.volume_mounts.as_ref().unwrap();
    let mounted_at = |name: &str| {
        mounts
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.mount_path.clone())
    };
    assert_eq!(mounted_at(&claim).as_deref(), Some(flags::DATA_DIR));
    assert_eq!(mounted_at("config").as_deref(), Some(flags::CONFIG_DIR));
    let config = pod
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == "config")
        .unwrap();
    let sources = config.projected.as_ref().unwrap().sources.as_ref().unwrap();
    assert_eq!(
        sources[0].config_map.as_ref().map(|c| c.name.as_str()),
        Some("orders-config")
    );
}

#[test]
fn docker_k8s_is_what_render_writes_today() {
    let out = tempfile::tempdir().unwrap();
    let config = k8s::repo().join("config");
    let (code, text) = k8s::sluice(&[
        "render",
        &config.display().to_string(),
        "--out",
        &out.path().display().to_string(),
    ]);
    assert_eq!(code, 0, "{text}");
    let rendered = k8s::files(&out.path().join("team-orders/orders"));
    let checked_in = k8s::files(&docker().join("k8s"));
    assert_eq!(
        rendered.keys().collect::<Vec<_>>(),
        checked_in.keys().collect::<Vec<_>>(),
        "docker/k8s/ has drifted from `sluice render`: run docker/render-k8s.sh"
    );
    for (name, text) in &rendered {
        assert!(
            checked_in[name] == *text,
            "docker/k8s/{name} has drifted from `sluice render`: run docker/render-k8s.sh"
        );
    }
}

/// The Dockerfile's stages: (the `FROM` line, the instructions after it), with `\`
/// continuations joined and comments left out.
fn stages() -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(docker().join("Dockerfile")).unwrap();
    let mut lines = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                lines.push(std::mem::take(&mut current));
            }
        }
    }
    let mut stages: Vec<(String, Vec<String>)> = Vec::new();
    for line in lines {
        if line.starts_with("FROM ") {
            stages.push((line, Vec::new()));
        } else if let Some(stage) = stages.last_mut() {
            stage.1.push(line);
        }
    }
    stages
}

#[test]
fn the_dockerfile_builds_as_the_scripts_do() {
    let stages = stages();
    assert_eq!(stages.len(), 2, "{stages:?}");
    let (from, builder) = &stages[0];
    // The builder is the official Rust image pinned to a version.
    let image = from.split_whitespace().nth(1).unwrap();
    let tag = image.strip_prefix("rust:").unwrap();
    assert!(tag.chars().next().unwrap().is_ascii_digit(), "{from}");
    let builds: Vec<&String> = builder
        .iter()
        .filter(|l| l.starts_with("RUN cargo "))
        .collect();
    assert_eq!(builds.len(), 1, "{builder:?}");
    assert_eq!(builds[0].trim_start_matches("RUN "), BUILD_COMMAND);
    let script = std::fs::read_to_string(k8s::repo().join("scripts/build-release.sh")).unwrap();
    let script_builds: Vec<&str> = script
        .lines()
        .filter(|l| l.trim_start().starts_with("cargo "))
        .collect();
    assert_eq!(script_builds, [BUILD_COMMAND]);
    // CI runs that script, so the image's build is the one CI proves.
    let ci = std::fs::read_to_string(k8s::repo().join(".ci/run")).unwrap();
    assert!(
        ci.lines().any(|l| l.trim() == "./scripts/build-release.sh"),
        ".ci/run does not run scripts/build-release.sh:\n{ci}"
    );
}

#[test]
fn the_runtime_stage_runs_as_non_root_and_exposes_the_four_ports() {
    let stages = stages();
    let (_, runtime) = stages.last().unwrap();
    let user = runtime
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER in the runtime stage");
    let uid = user.split(':').next().unwrap();
    assert_ne!(uid, "0");
    assert_ne!(uid, "root");
    assert_eq!(uid.parse::<i64>().ok(), Some(flags::RUN_AS_ID));
    let exposed: Vec<i32> = runtime
        .iter()
        .filter_map(|l| l.strip_prefix("EXPOSE "))
        .flat_map(|l| l.split_whitespace().map(|p| p.parse::<i32>().unwrap()))
        .collect();
    let expected: Vec<i32> = flags::PORTS.iter().map(|p| p.number).collect();
    assert_eq!(exposed, expected);
    assert!(
        runtime
            .iter()
            .any(|l| l.starts_with("COPY ") && l.ends_with(&format!(" {}", flags::BINARY))),
        "{runtime:?}"
    );
    let entrypoint = runtime
        .iter()
        .find_map(|l| l.strip_prefix("ENTRYPOINT "))
        .unwrap();
    assert_eq!(entrypoint, format!("[\"{}\"]", flags::BINARY));
    // The default command's flags are the pods' flags.
    let cmd = runtime.iter().find_map(|l| l.strip_prefix("CMD ")).unwrap();
    let cmd: Vec<String> = serde_json::from_str(cmd).unwrap();
    assert_eq!(cmd[0], flags::SERVE);
    k8s::assert_serve_accepts(&cmd);
    assert!(runtime.iter().any(|l| l.starts_with("HEALTHCHECK ")));
}
