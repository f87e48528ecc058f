//! The `duplicateDetection` field of AddressPlans and Addresses: its rules and how an
//! address's effective setting is made from its own field and its plan's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use sluice_config::{
    Checked, DUPLICATE_IDS_DEFAULT, DUPLICATE_WINDOW_DEFAULT_MS, DuplicateDetection, Source, check,
};

/// A space `t` whose plan allows `dd-queue` (with `plan_extra` in its spec), a plain `topic`
/// plan and `deadletter`.
fn manifest(plan_extra: &str, addresses: &str) -> String {
    format!(
        "apiVersion: admin.enmasse.io/v1beta2\nkind: AddressSpacePlan\nmetadata: {{name: dd-space}}\nspec:\n  addressSpaceType: standard\n  addressPlans: [dd-queue, topic, deadletter]\n---\napiVersion: admin.enmasse.io/v1beta2\nkind: AddressPlan\nmetadata: {{name: dd-queue}}\nspec:\n  addressType: queue\n{plan_extra}---\napiVersion: admin.enmasse.io/v1beta2\nkind: AddressPlan\nmetadata: {{name: topic}}\nspec: {{addressType: topic}}\n---\napiVersion: admin.enmasse.io/v1beta2\nkind: AddressPlan\nmetadata: {{name: deadletter}}\nspec: {{addressType: deadletter}}\n---\napiVersion: enmasse.io/v1beta1\nkind: AddressSpace\nmetadata: {{name: t}}\nspec: {{type: standard, plan: dd-space}}\n{addresses}"
    )
}

fn address(name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: enmasse.io/v1beta1\nkind: Address\nmetadata:\n  name: t.{name}\nspec:\n  address: {name}\n{spec}"
    )
}

fn run(manifest: &str) -> Checked {
    check(&[Source::new("dd.yaml", manifest)])
}

fn errors(checked: &Checked) -> Vec<String> {
    checked
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect()
}

/// The effective setting of queue `q`, with `plan_extra` on its plan and `address_extra` on
/// the address.
fn effective(plan_extra: &str, address_extra: &str) -> Option<DuplicateDetection> {
    let m = manifest(
        plan_extra,
        &address(
            "q",
            &format!("  type: queue\n  plan: dd-queue\n{address_extra}"),
        ),
    );
    let checked = run(&m);
    assert!(checked.is_valid(), "{:#?}", checked.diagnostics);
    checked
        .config
        .address_space("t")
        .unwrap()
        .address("q")
        .unwrap()
        .duplicate_detection()
}

#[test]
fn duplicate_detection_is_off_unless_the_plan_or_the_address_writes_it() {
    assert_eq!(effective("", ""), None);
    let defaults = Some(DuplicateDetection {
        window_ms: DUPLICATE_WINDOW_DEFAULT_MS,
        ids_max: DUPLICATE_IDS_DEFAULT,
    });
    assert_eq!(effective("  duplicateDetection: {}\n", ""), defaults);
    assert_eq!(effective("", "  duplicateDetection: {}\n"), defaults);
}

#[test]
fn the_address_wins_over_its_plan_field_by_field() {
    let both = effective(
        "  duplicateDetection: {window: 1h, maximumIds: 500}\n",
        "  duplicateDetection: {window: 30s}\n",
    );
    assert_eq!(
        both,
        Some(DuplicateDetection {
            window_ms: 30_000,
            ids_max: 500
        })
    );
    let address_only = effective("", "  duplicateDetection: {window: 500ms, maximumIds: 7}\n");
    assert_eq!(
        address_only,
        Some(DuplicateDetection {
            window_ms: 500,
            ids_max: 7
        })
    );
}

#[test]
fn a_bad_window_or_count_on_an_address_names_its_file_document_and_field() {
    let m = manifest(
        "",
        &address(
            "q",
            "  type: queue\n  plan: dd-queue\n  duplicateDetection: {window: 600, maximumIds: 2000000}\n",
        ),
    );
    let checked = run(&m);
    let errors = errors(&checked);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].starts_with("dd.yaml: document 6 (line ")
            && errors[0].contains(
                "spec.duplicateDetection.window: \"600\" is not a duration: it has no unit"
            ),
        "{errors:#?}"
    );
    assert!(
        errors[1]
            .contains("spec.duplicateDetection.maximumIds: 2000000 is not between 1 and 1000000"),
        "{errors:#?}"
    );
    // The address is not served.
    assert!(
        checked
            .config
            .address_space("t")
            .unwrap()
            .address("q")
            .is_none()
    );
}

#[test]
fn a_bad_window_on_a_plan_is_an_error_on_the_plan() {
    let checked = run(&manifest(
        "  duplicateDetection: {window: 10 minutes}\n",
        "",
    ));
    let errors = errors(&checked);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].starts_with("dd.yaml: document 2 (line ")
            && errors[0]
                .contains("spec.duplicateDetection.window: \"10 minutes\" is not a duration"),
        "{errors:#?}"
    );
}

#[test]
fn duplicate_detection_is_refused_on_topics_and_deadletters() {
    let m = manifest(
        "",
        &(address(
            "events",
            "  type: topic\n  plan: topic\n  duplicateDetection: {window: 1m}\n",
        ) + &address(
            "dlq",
            "  type: deadletter\n  plan: deadletter\n  duplicateDetection: {}\n",
        )),
    );
    let errors = errors(&run(&m));
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].contains(
            "spec.duplicateDetection: duplicate detection is for queue and subscription addresses, not topic"
        ),
        "{errors:#?}"
    );
    assert!(errors[1].contains("not deadletter"), "{errors:#?}");
}
