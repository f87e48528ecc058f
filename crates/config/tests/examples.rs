//! Every file in ../shared/enmasse-examples parses; the whole folder validates.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::PathBuf;

use sluice_config::resources::AddressType;
use sluice_config::{Severity, Source, check, load_paths, read_paths};

fn examples() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/enmasse-examples");
    assert!(
        dir.is_dir(),
        "the EnMasse examples are missing: expected the folder {} (../shared/enmasse-examples beside the repository)",
        dir.display()
    );
    dir
}

#[test]
fn every_example_file_parses_on_its_own() {
    let sources = read_paths(&[examples()]).unwrap();
    assert!(sources.len() >= 15, "found only {} files", sources.len());
    for source in sources {
        let mut diagnostics = Vec::new();
        sluice_config::parse_sources(std::slice::from_ref(&source), &mut diagnostics);
        let problems: Vec<String> = diagnostics
            .iter()
            .filter(|d| d.severity != Severity::Note)
            .map(ToString::to_string)
            .collect();
        assert!(problems.is_empty(), "{}: {problems:#?}", source.name);
    }
}

#[test]
fn the_whole_folder_validates() {
    let checked = load_paths(&[examples()]).unwrap();
    let errors: Vec<String> = checked
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect();
    // Applied in file order, the last `myspace` (status-examples.yaml) has no connectors, so
    // the forwarder example is refused as EnMasse refused it; everything else is valid.
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].contains("addresses-standard.yaml")
            && errors[0]
                .contains("There are no connectors configured for address space \"myspace\""),
        "{errors:#?}"
    );
    let standard = checked.config.address_space("myspace").unwrap();
    for t in AddressType::ALL {
        assert!(standard.count(t) >= 1, "no {t} address");
    }
    assert_eq!(standard.plan.resource.metadata.name, "standard-unlimited");
    assert_eq!(standard.users.len(), 4);
    let brokered = checked.config.address_space("mybrokered").unwrap();
    assert_eq!(brokered.addresses.len(), 3);
    assert_eq!(
        brokered
            .authentication_service
            .as_ref()
            .unwrap()
            .resource
            .metadata
            .name,
        "none-authservice"
    );
    let sub = standard.address("mysub").unwrap();
    assert_eq!(sub.plan.metadata.name, "standard-small-subscription");
}

#[test]
fn other_kinds_are_skipped_with_a_note() {
    let checked = check(&[Source::new(
        "mixed.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n",
    )]);
    assert!(checked.is_valid());
    assert_eq!(
        checked.diagnostics[0].to_string(),
        "mixed.yaml: document 1 (line 2): kind: skipped Deployment \"web\" (apps/v1): not a kind Sluice uses"
    );
    assert_eq!(checked.diagnostics[0].severity, Severity::Note);
}

#[test]
fn the_forwarder_example_is_valid_beside_the_space_that_has_its_connector() {
    let dir = examples();
    let checked = load_paths(&[
        dir.join("plans"),
        dir.join("authenticationservices.yaml"),
        dir.join("addressspace-standard-full.yaml"),
        dir.join("addresses-standard.yaml"),
    ])
    .unwrap();
    let errors: Vec<String> = checked
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let space = checked.config.address_space("myspace").unwrap();
    assert!(space.address("fwdqueue").is_some());
    assert!(
        checked
            .diagnostics
            .iter()
            .any(|d| d.severity == Severity::Warning
                && d.to_string()
                    .contains("forwarders are accepted but not run")),
        "{:#?}",
        checked.diagnostics
    );
}
