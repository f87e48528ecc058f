//! Black-box tests of `sluice check` on the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::PathBuf;
use std::process::Command;

fn sluice(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8(output.stdout).unwrap() + &String::from_utf8(output.stderr).unwrap();
    (output.status.code().unwrap(), text)
}

fn examples() -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/enmasse-examples");
    assert!(
        dir.is_dir(),
        "the EnMasse examples are missing: expected the folder {} (../shared/enmasse-examples beside the repository)",
        dir.display()
    );
    dir.display().to_string()
}

#[test]
fn check_on_the_examples_reports_the_one_forwarder_without_a_connector() {
    // Applied in file order, the last `myspace` (status-examples.yaml) has no connectors, so
    // the forwarder example in addresses-standard.yaml is refused, as EnMasse refused it.
    let (code, out) = sluice(&["check", &examples(), "--address-space", "myspace"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("addresses-standard.yaml: document 8 (line 94): spec.forwarders: Unable to create forwarders: There are no connectors configured for address space \"myspace\""),
        "{out}"
    );
    assert!(
        out.contains("address space myspace: type standard, plan standard-unlimited"),
        "{out}"
    );
    assert!(
        out.contains("address space mybrokered: type brokered, plan brokered-single-broker"),
        "{out}"
    );
    assert!(out.contains("subscription (1): mysub"), "{out}");
    assert!(
        out.contains("invalid: 2 address space(s), 1 error(s)"),
        "{out}"
    );
}

#[test]
fn check_on_a_consistent_set_of_the_examples_exits_0_with_a_summary() {
    let dir = examples();
    let files: Vec<String> = [
        "plans",
        "authenticationservices.yaml",
        "addressspace-standard-full.yaml",
        "addresses-standard.yaml",
        "addressspace-brokered-minimal.yaml",
        "addresses-brokered.yaml",
        "messagingusers.yaml",
    ]
    .iter()
    .map(|f| format!("{dir}/{f}"))
    .collect();
    let mut args = vec!["check"];
    args.extend(files.iter().map(String::as_str));
    let (code, out) = sluice(&args);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("queue (3): myqueue, myqueue2, fwdqueue"),
        "{out}"
    );
    assert!(
        out.contains("valid: 2 address space(s), 0 error(s)"),
        "{out}"
    );
}

#[test]
fn check_on_a_broken_folder_exits_1_with_the_diagnostics() {
    let dir = std::env::temp_dir().join(format!("sluice-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("space.yaml"),
        "apiVersion: enmasse.io/v1beta1\nkind: AddressSpace\nmetadata: {name: s}\nspec: {type: standard, plan: nope}\n---\napiVersion: enmasse.io/v1beta1\nkind: Address\nmetadata: {name: s.q}\nspec: {address: q, type: queue, plan: nope}\n",
    )
    .unwrap();
    std::fs::write(dir.join("notes.txt"), "not yaml: [").unwrap();
    let (code, out) = sluice(&["check", dir.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "space.yaml: document 1 (line 4): spec.plan: no AddressSpacePlan named \"nope\""
        ),
        "{out}"
    );
    assert!(
        out.contains("space.yaml: document 2 (line 9): spec.plan: no AddressPlan named \"nope\""),
        "{out}"
    );
    assert!(
        out.contains("invalid: 0 address space(s), 2 error(s)"),
        "{out}"
    );
}

#[test]
fn check_of_a_missing_path_fails() {
    let (code, out) = sluice(&["check", "/nonexistent/sluice.yaml"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("cannot read /nonexistent/sluice.yaml"),
        "{out}"
    );
}

#[test]
fn check_of_an_unknown_address_space_fails() {
    let (code, out) = sluice(&["check", &examples(), "--address-space", "nope"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("no valid address space named \"nope\""),
        "{out}"
    );
}
