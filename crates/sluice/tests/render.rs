//! Black-box tests of `sluice render` on the real binary: config/'s teams and a two-team
//! folder made here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod k8s;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s::{Object, flags, sluice};
use serde_json::Value;

fn render(paths: &[&Path], out: &Path) -> (i32, String) {
    let mut args: Vec<String> = vec!["render".into()];
    args.extend(paths.iter().map(|p| p.display().to_string()));
    args.extend(["--out".into(), out.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sluice(&args)
}

fn config_dir() -> std::path::PathBuf {
    k8s::repo().join("config")
}

/// The container's arguments after `serve`.
fn container_args(objects: &[Object]) -> Vec<String> {
    let set = k8s::stateful_set(objects);
    let container = &set.spec.template.spec.as_ref().unwrap().containers[0];
    container.args.clone().unwrap()
}

/// Writes the files a space's pod sees in its config directory (the ConfigMap's data and the
/// users Secret's) into `dir`, as the projected volume would.
fn mount_config(objects: &[Object], space: &str, dir: &Path) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    let mut keys = Vec::new();
    for object in objects {
        let data = match object {
            Object::ConfigMap(cm)
                if cm.metadata.name.as_deref() == Some(&format!("{space}-config")) =>
            {
                cm.data.clone().unwrap()
            }
            Object::Secret(s) if s.metadata.name.as_deref() == Some(&format!("{space}-users")) => {
                s.string_data.clone().unwrap()
            }
            _ => continue,
        };
        for (key, text) in data {
            assert!(!keys.contains(&key), "{key} twice in the projected volume");
            std::fs::write(dir.join(&key), text).unwrap();
            keys.push(key);
        }
    }
    keys
}

#[test]
fn config_renders_every_space_with_its_kinds_ports_and_probes() {
    let out = tempfile::tempdir().unwrap();
    let (code, text) = render(&[&config_dir()], out.path());
    assert_eq!(code, 0, "{text}");
    for (dir, space, wss, users) in [
        ("team-orders/orders", "orders", true, true),
        ("team-billing/billing", "billing", true, true),
        ("_default/default", "default", true, false),
    ] {
        let objects = k8s::objects(&out.path().join(dir));
        let mut kinds: Vec<&str> = objects.iter().map(Object::kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        for kind in [
            "ConfigMap",
            "NetworkPolicy",
            "Service",
            "ServiceAccount",
            "ServiceMonitor",
            "StatefulSet",
        ] {
            assert!(kinds.contains(&kind), "{dir}: no {kind} in {kinds:?}");
        }
        assert_eq!(kinds.contains(&"Secret"), users, "{dir}: {kinds:?}");
        // Service-account users need the TokenReview binding.
        assert_eq!(kinds.contains(&"ClusterRoleBinding"), users, "{dir}");

        let ports = k8s::service_ports(k8s::service(&objects, space));
        let mut expected = vec![("amqp".to_owned(), 5672), ("amqps".to_owned(), 5671)];
        if wss {
            expected.push(("amqp-wss".to_owned(), 8443));
        }
        expected.push(("http".to_owned(), 8080));
        assert_eq!(ports, expected, "{dir}");

        let set = k8s::stateful_set(&objects);
        k8s::assert_probes(set);
        let pod = set.spec.template.spec.as_ref().unwrap();
        let security = pod.security_context.as_ref().unwrap();
        assert_eq!(security.run_as_non_root, Some(true));
        assert_eq!(security.run_as_user, Some(flags::RUN_AS_ID));
        let container = &pod.containers[0];
        assert_eq!(
            container
                .security_context
                .as_ref()
                .unwrap()
                .read_only_root_filesystem,
            Some(true)
        );
        let claims = set.spec.volume_claim_templates.as_ref().unwrap();
        assert_eq!(claims.len(), 1);
        let args = container_args(&objects);
        assert_eq!(args[0], "serve");
        k8s::assert_serve_accepts(&args);
        for (flag, value) in flags::SERVE_FLAGS {
            let at = args.iter().position(|a| a == flag).unwrap();
            assert_eq!(args[at + 1], *value);
        }
        let at = args.iter().position(|a| a == "--address-space").unwrap();
        let qualified = if dir.starts_with('_') {
            space.to_owned()
        } else {
            dir.to_owned()
        };
        assert_eq!(args[at + 1], qualified);
    }
    // The infra configs' sizes: brokered 5Gi of journal, standard 2Gi, both 512Mi of memory.
    let objects = k8s::objects(&out.path().join("team-billing/billing"));
    let set = k8s::stateful_set(&objects);
    let claim = &set.spec.volume_claim_templates.as_ref().unwrap()[0];
    let storage = &claim
        .spec
        .as_ref()
        .unwrap()
        .resources
        .as_ref()
        .unwrap()
        .requests;
    assert_eq!(storage.as_ref().unwrap()["storage"].0, "5Gi");
    assert_eq!(set.spec.replicas, Some(1));
    let memory = &set.spec.template.spec.as_ref().unwrap().containers[0]
        .resources
        .as_ref()
        .unwrap()
        .limits;
    assert_eq!(memory.as_ref().unwrap()["memory"].0, "512Mi");
    // The export of team-orders' messaging endpoint.
    let objects = k8s::objects(&out.path().join("team-orders/orders"));
    let export = objects
        .iter()
        .find_map(|o| match o {
            Object::ConfigMap(cm) if cm.metadata.name.as_deref() == Some("orders-messaging") => {
                Some(cm.data.clone().unwrap())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(export["service.host"], "orders.team-orders.svc");
    assert_eq!(export["service.port.amqps"], "5671");
    assert!(!export.contains_key("ca.crt"));
}

#[test]
fn a_pods_mounted_config_passes_check_with_exactly_its_space() {
    let out = tempfile::tempdir().unwrap();
    let (code, text) = render(&[&config_dir()], out.path());
    assert_eq!(code, 0, "{text}");
    for (dir, space, addresses, users) in [
        ("team-orders/orders", "orders", 6, 2),
        ("team-billing/billing", "billing", 3, 2),
        ("_default/default", "default", 5, 0),
    ] {
        let objects = k8s::objects(&out.path().join(dir));
        let mounted = out.path().join("mounted").join(dir);
        let keys = mount_config(&objects, space, &mounted);
        assert!(keys.contains(&"address-space.yaml".to_owned()), "{keys:?}");
        assert_eq!(keys.contains(&"users.yaml".to_owned()), users > 0);
        let qualified = container_args(&objects)
            .windows(2)
            .find(|w| w[0] == "--address-space")
            .map(|w| w[1].clone())
            .unwrap();
        let (code, report) = sluice(&[
            "check",
            &mounted.display().to_string(),
            "--address-space",
            &qualified,
        ]);
        assert_eq!(code, 0, "{report}");
        let spaces: Vec<&str> = report
            .lines()
            .filter(|l| l.starts_with("address space "))
            .collect();
        assert_eq!(spaces.len(), 1, "{report}");
        assert!(
            spaces[0].starts_with(&format!("address space {qualified}:")),
            "{report}"
        );
        assert!(
            report.contains(&format!("  addresses: {addresses}\n")),
            "{report}"
        );
        assert!(report.contains(", 0 warning(s)"), "{report}");
        if users > 0 {
            assert!(report.contains(&format!("  users: {users} (")), "{report}");
        }
        // No other team's resources anywhere in what the pod mounts.
        let other = if dir.starts_with("team-orders") {
            "team-billing"
        } else {
            "team-orders"
        };
        for key in &keys {
            let text = std::fs::read_to_string(mounted.join(key)).unwrap();
            for doc in k8s::documents(&text) {
                assert_ne!(doc["metadata"]["namespace"], Value::from(other), "{key}");
            }
        }
    }
}

/// Serves the mounted configuration of team-orders/orders with the binary, as the pod would
/// (on loopback, ephemeral ports): the projected files load and `--address-space ns/name`
/// picks the space.
#[test]
fn the_mounted_config_is_served() {
    let out = tempfile::tempdir().unwrap();
    let (code, text) = render(&[&config_dir()], out.path());
    assert_eq!(code, 0, "{text}");
    let objects = k8s::objects(&out.path().join("team-orders/orders"));
    let mounted = out.path().join("mounted");
    mount_config(&objects, "orders", &mounted);
    let data = out.path().join("data");
    let args = vec![
        "serve".to_owned(),
        "--config".into(),
        mounted.display().to_string(),
        "--address-space".into(),
        "team-orders/orders".into(),
        "--amqp".into(),
        "127.0.0.1:0".into(),
        "--data-dir".into(),
        data.display().to_string(),
        "--http".into(),
        "127.0.0.1:0".into(),
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut listening = false;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if line.starts_with("listening on ") => {
                listening = true;
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        listening,
        "sluice serve did not start on the rendered configuration"
    );
}

const TEAM_PLANS: &str = r#"
apiVersion: admin.enmasse.io/v1beta2
kind: AddressSpacePlan
metadata: {name: small}
spec: {addressSpaceType: standard, addressPlans: [queue]}
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressPlan
metadata: {name: queue}
spec: {addressType: queue}
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressPlan
metadata: {name: unused-by-team-a}
spec: {addressType: topic}
"#;

fn team(namespace: &str, address: &str) -> String {
    format!(
        r#"
apiVersion: enmasse.io/v1beta1
kind: AddressSpace
metadata: {{name: shared, namespace: {namespace}}}
spec: {{type: standard, plan: small}}
---
apiVersion: enmasse.io/v1beta1
kind: Address
metadata: {{name: shared.{address}, namespace: {namespace}}}
spec: {{address: {address}, type: queue, plan: queue}}
"#
    )
}

/// A folder with the plans and two teams, each with a space called `shared`.
fn two_teams(dir: &Path, extra: &str) {
    std::fs::create_dir_all(dir.join("team-a")).unwrap();
    std::fs::create_dir_all(dir.join("team-b")).unwrap();
    std::fs::write(dir.join("plans.yaml"), TEAM_PLANS).unwrap();
    std::fs::write(
        dir.join("team-a/space.yaml"),
        team("team-a", "apples") + extra,
    )
    .unwrap();
    std::fs::write(dir.join("team-b/space.yaml"), team("team-b", "bananas")).unwrap();
}

#[test]
fn two_teams_each_get_only_their_own_resources() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    two_teams(&input, "");
    let out = tmp.path().join("out");
    let (code, text) = render(&[&input], &out);
    assert_eq!(code, 0, "{text}");
    let rendered: Vec<String> = k8s::files(&out).into_keys().collect();
    assert!(
        rendered
            .iter()
            .all(|f| f.starts_with("team-a/shared/") || f.starts_with("team-b/shared/")),
        "{rendered:?}"
    );
    for (namespace, own, other) in [
        ("team-a", "apples", "bananas"),
        ("team-b", "bananas", "apples"),
    ] {
        let objects = k8s::objects(&out.join(namespace).join("shared"));
        for object in &objects {
            let value = match object {
                Object::ConfigMap(cm) => serde_json::to_value(cm).unwrap(),
                Object::StatefulSet(s) => serde_json::to_value(s).unwrap(),
                _ => continue,
            };
            let text = value.to_string();
            assert!(!text.contains(other), "{namespace}: {text}");
            assert!(!text.contains(if namespace == "team-a" {
                "team-b"
            } else {
                "team-a"
            }));
        }
        let mounted = tmp.path().join("mounted").join(namespace);
        mount_config(&objects, "shared", &mounted);
        let addresses = std::fs::read_to_string(mounted.join("addresses.yaml")).unwrap();
        assert!(
            addresses.contains(&format!("address: {own}")),
            "{addresses}"
        );
        // The space plan's address plans go along, used or not: check requires them.
        let plans = std::fs::read_to_string(mounted.join("plans.yaml")).unwrap();
        assert!(plans.contains("name: queue"), "{plans}");
        assert!(!plans.contains("unused-by-team-a"), "{plans}");
        let (code, report) = sluice(&["check", &mounted.display().to_string()]);
        assert_eq!(code, 0, "{report}");
        assert!(
            report.contains(&format!("address space {namespace}/shared:")),
            "{report}"
        );
        for object in &objects {
            if let Object::StatefulSet(s) = object {
                assert_eq!(s.metadata.namespace.as_deref(), Some(namespace));
            }
        }
    }
}

#[test]
fn an_address_naming_another_teams_space_is_refused_by_check_and_render() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    // team-a writes an Address for the space "billing" that only team-b has.
    let intruder = "---\napiVersion: enmasse.io/v1beta1\nkind: Address\nmetadata: {name: billing.steal, namespace: team-a}\nspec: {address: steal, type: queue, plan: queue}\n";
    two_teams(&input, intruder);
    std::fs::write(
        input.join("team-b/billing.yaml"),
        "apiVersion: enmasse.io/v1beta1\nkind: AddressSpace\nmetadata: {name: billing, namespace: team-b}\nspec: {type: standard, plan: small}\n",
    )
    .unwrap();
    let expected = "team-a/space.yaml: document 3 (line 14): metadata.name: no AddressSpace named \"billing\" in namespace \"team-a\": it exists only in namespace \"team-b\"";
    let (code, report) = sluice(&["check", &input.display().to_string()]);
    assert_eq!(code, 1, "{report}");
    assert!(report.contains(expected), "{report}");
    let out = tmp.path().join("out");
    let (code, report) = render(&[&input], &out);
    assert_eq!(code, 1, "{report}");
    assert!(report.contains(expected), "{report}");
    assert!(report.contains("nothing rendered"), "{report}");
    assert!(
        !out.exists(),
        "render wrote files for a refused configuration"
    );
}

#[test]
fn an_invalid_address_writes_nothing_and_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    let bad = "---\napiVersion: enmasse.io/v1beta1\nkind: Address\nmetadata: {name: shared.bad, namespace: team-a}\nspec: {address: bad, type: queue, plan: no-such-plan}\n";
    two_teams(&input, bad);
    let out = tmp.path().join("out");
    let (code, report) = render(&[&input], &out);
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains("spec.plan: no AddressPlan named \"no-such-plan\""),
        "{report}"
    );
    assert!(!out.exists());
}

#[test]
fn a_network_policy_field_kubernetes_lacks_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    two_teams(&input, "");
    let space = "apiVersion: enmasse.io/v1beta1\nkind: AddressSpace\nmetadata: {name: walled, namespace: team-b}\nspec:\n  type: standard\n  plan: small\n  networkPolicy:\n    ingress:\n    - fromm: []\n";
    std::fs::write(input.join("team-b/walled.yaml"), space).unwrap();
    let out = tmp.path().join("out");
    let (code, report) = render(&[&input], &out);
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains("walled.yaml: document 1 (line 9): spec.networkPolicy.ingress[0].fromm: not a field Kubernetes knows here"),
        "{report}"
    );
    assert!(!out.exists());
}

#[test]
fn rendering_twice_gives_byte_identical_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    assert_eq!(render(&[&config_dir()], &a).0, 0);
    assert_eq!(render(&[&config_dir()], &b).0, 0);
    let (first, second) = (k8s::files(&a), k8s::files(&b));
    assert!(!first.is_empty());
    assert_eq!(first, second);
    // Rendering into the same folder again changes nothing and leaves no stale file.
    std::fs::write(a.join("team-orders/orders/stale.yaml"), "{}").unwrap();
    assert_eq!(render(&[&config_dir()], &a).0, 0);
    assert_eq!(k8s::files(&a), second);
}
