//! Namespaces: a gitops folder with several teams' address spaces. AddressSpaces, Addresses
//! and MessagingUsers are namespaced; plans, infra configs and authentication services are
//! shared.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use sluice_config::{Checked, Source, check};

/// Shared plans, written in an infra namespace of their own: that namespace is not looked at.
const PLANS: &str = r#"
apiVersion: admin.enmasse.io/v1beta2
kind: AddressSpacePlan
metadata: {name: small, namespace: enmasse-infra}
spec:
  addressSpaceType: standard
  addressPlans: [queue]
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressPlan
metadata: {name: queue, namespace: enmasse-infra}
spec: {addressType: queue}
---
apiVersion: admin.enmasse.io/v1beta1
kind: AuthenticationService
metadata: {name: standard}
spec: {type: standard}
"#;

fn space(namespace: Option<&str>, name: &str) -> String {
    let ns = namespace.map_or(String::new(), |ns| format!("\n  namespace: {ns}"));
    format!(
        "---\napiVersion: enmasse.io/v1beta1\nkind: AddressSpace\nmetadata:\n  name: {name}{ns}\nspec: {{type: standard, plan: small, authenticationService: {{name: standard}}}}\n"
    )
}

fn address(namespace: Option<&str>, name: &str, address: &str) -> String {
    let ns = namespace.map_or(String::new(), |ns| format!("\n  namespace: {ns}"));
    format!(
        "---\napiVersion: enmasse.io/v1beta1\nkind: Address\nmetadata:\n  name: {name}{ns}\nspec: {{address: {address}, type: queue, plan: queue}}\n"
    )
}

fn user(namespace: Option<&str>, name: &str, username: &str) -> String {
    let ns = namespace.map_or(String::new(), |ns| format!("\n  namespace: {ns}"));
    format!(
        "---\napiVersion: user.enmasse.io/v1beta1\nkind: MessagingUser\nmetadata:\n  name: {name}{ns}\nspec:\n  username: {username}\n  authentication: {{type: password, password: cGFzc3dvcmQ=}}\n  authorization: [{{addresses: ['*'], operations: [send, recv]}}]\n"
    )
}

fn run(manifest: &str) -> Checked {
    check(&[
        Source::new("plans.yaml", PLANS),
        Source::new("teams.yaml", manifest),
    ])
}

fn errors(checked: &Checked) -> Vec<String> {
    checked
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect()
}

#[test]
fn two_spaces_of_one_name_in_two_namespaces_are_both_valid() {
    let manifest = [
        space(Some("team-a"), "orders"),
        address(Some("team-a"), "orders.q", "q"),
        user(Some("team-a"), "orders.alice", "alice"),
        space(Some("team-b"), "orders"),
        address(Some("team-b"), "orders.q", "q"),
        address(Some("team-b"), "orders.r", "r"),
    ]
    .concat();
    let checked = run(&manifest);
    assert!(checked.is_valid(), "{:#?}", checked.diagnostics);
    // No "defined again" warning: they are different resources.
    assert!(checked.diagnostics.is_empty(), "{:#?}", checked.diagnostics);

    let keys: Vec<&String> = checked.config.address_spaces.keys().collect();
    assert_eq!(keys, ["team-a/orders", "team-b/orders"]);
    let a = checked.config.address_space("team-a/orders").unwrap();
    assert_eq!(a.namespace.as_deref(), Some("team-a"));
    assert_eq!(a.name, "orders");
    assert_eq!(a.qualified_name(), "team-a/orders");
    assert_eq!(a.addresses.len(), 1);
    assert_eq!(a.users.len(), 1);
    let b = checked.config.address_space("team-b/orders").unwrap();
    assert_eq!(b.addresses.len(), 2);
    assert!(b.users.is_empty());

    // A bare name is ambiguous here.
    assert!(checked.config.address_space("orders").is_none());
    assert_eq!(checked.config.address_spaces_named("orders").count(), 2);
    let spaces: Vec<(Option<&str>, &str)> = checked
        .config
        .spaces()
        .map(|(ns, s)| (ns, s.name.as_str()))
        .collect();
    assert_eq!(
        spaces,
        [(Some("team-a"), "orders"), (Some("team-b"), "orders")]
    );
    assert!(checked.config.is_namespaced());
}

#[test]
fn a_unique_bare_name_still_finds_its_space() {
    let manifest = [
        space(Some("team-a"), "orders"),
        space(Some("team-b"), "billing"),
    ]
    .concat();
    let checked = run(&manifest);
    assert!(checked.is_valid(), "{:#?}", checked.diagnostics);
    assert_eq!(
        checked
            .config
            .address_space("billing")
            .unwrap()
            .qualified_name(),
        "team-b/billing"
    );
    assert!(checked.config.address_space("team-a/billing").is_none());
}

#[test]
fn an_address_cannot_reach_another_namespaces_space() {
    let manifest = [
        space(Some("team-b"), "billing"),
        address(Some("team-a"), "billing.q", "q"),
    ]
    .concat();
    let checked = run(&manifest);
    assert_eq!(
        errors(&checked),
        [
            "teams.yaml: document 2 (line 12): metadata.name: no AddressSpace named \"billing\" in namespace \"team-a\": it exists only in namespace \"team-b\", and an Address belongs to the address space of its own namespace"
        ]
    );
    assert!(
        checked
            .config
            .address_space("team-b/billing")
            .unwrap()
            .addresses
            .is_empty()
    );
}

#[test]
fn a_user_cannot_reach_another_namespaces_space() {
    let manifest = [
        space(Some("team-b"), "billing"),
        user(Some("team-a"), "billing.mallory", "mallory"),
    ]
    .concat();
    let checked = run(&manifest);
    assert_eq!(
        errors(&checked),
        [
            "teams.yaml: document 2 (line 12): metadata.name: no AddressSpace named \"billing\" in namespace \"team-a\": it exists only in namespace \"team-b\", and a MessagingUser belongs to the address space of its own namespace"
        ]
    );
    assert!(
        checked
            .config
            .address_space("billing")
            .unwrap()
            .users
            .is_empty()
    );
}

#[test]
fn no_namespace_matches_no_namespace_only() {
    // An Address without a namespace does not join a namespaced space, nor the other way round.
    let manifest = [
        space(Some("team-a"), "orders"),
        address(None, "orders.q", "q"),
        space(None, "plain"),
        address(Some("team-a"), "plain.q", "q"),
        address(None, "plain.r", "r"),
    ]
    .concat();
    let checked = run(&manifest);
    assert_eq!(
        errors(&checked),
        [
            "teams.yaml: document 2 (line 12): metadata.name: no AddressSpace named \"orders\" without a namespace: it exists only in namespace \"team-a\", and an Address belongs to the address space of its own namespace",
            "teams.yaml: document 4 (line 24): metadata.name: no AddressSpace named \"plain\" in namespace \"team-a\": it exists only without a namespace, and an Address belongs to the address space of its own namespace",
        ]
    );
    let plain = checked.config.address_space("plain").unwrap();
    assert_eq!(plain.namespace, None);
    assert_eq!(plain.qualified_name(), "plain");
    assert_eq!(plain.addresses.len(), 1);
    assert_eq!(plain.addresses[0].address.resource.spec.address, "r");
}

#[test]
fn a_namespace_must_be_a_dns_label() {
    let checked = run(&space(Some("Team_A"), "orders"));
    assert_eq!(
        errors(&checked),
        [
            "teams.yaml: document 1 (line 6): metadata.namespace: \"Team_A\" is not a valid namespace (lower-case letters, digits and '-')"
        ]
    );
    assert!(checked.config.address_spaces.is_empty());
}

#[test]
fn the_same_space_twice_in_one_namespace_is_replaced_with_a_warning() {
    let manifest = [
        space(Some("team-a"), "orders"),
        space(Some("team-a"), "orders"),
    ]
    .concat();
    let checked = run(&manifest);
    assert!(checked.is_valid());
    let warnings: Vec<String> = checked
        .diagnostics
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        warnings,
        [
            "teams.yaml: document 2 (line 12): metadata.name: AddressSpace \"orders\" in namespace \"team-a\" is defined again; this definition replaces the one in teams.yaml document 1"
        ]
    );
}
