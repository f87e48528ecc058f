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
fn check_on_the_examples_exits_0_with_a_summary() {
    let (code, out) = sluice(&["check", &examples(), "--address-space", "myspace"]);
    assert_eq!(code, 0, "{out}");
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
