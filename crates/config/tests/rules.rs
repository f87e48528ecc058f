//! One test per validation rule, on small manifests written here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use sluice_config::{Checked, Severity, Source, check};

/// Plans and an auth service every test can use: a standard space plan allowing small queue,
/// topic, subscription, anycast and deadletter plans with a tight quota.
const PLANS: &str = r#"
apiVersion: admin.enmasse.io/v1beta2
kind: AddressSpacePlan
metadata: {name: small}
spec:
  addressSpaceType: standard
  resourceLimits: {router: 1.0, broker: 0.25, aggregate: 2.0}
  addressPlans: [queue, topic, subscription, anycast, deadletter]
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressSpacePlan
metadata: {name: broker}
spec:
  addressSpaceType: brokered
  addressPlans: [queue]
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressPlan
metadata: {name: queue}
spec: {addressType: queue, resources: {router: 0.01, broker: 0.1}}
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressPlan
metadata: {name: topic}
spec: {addressType: topic, resources: {broker: 0.1}}
---
apiVersion: admin.enmasse.io/v1beta1
kind: AddressPlan
metadata: {name: subscription}
spec: {addressType: subscription}
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressPlan
metadata: {name: anycast}
spec: {addressType: anycast, resources: {router: 0.01}}
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressPlan
metadata: {name: deadletter}
spec: {addressType: deadletter}
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressPlan
metadata: {name: multicast}
spec: {addressType: multicast}
---
apiVersion: admin.enmasse.io/v1beta1
kind: AuthenticationService
metadata: {name: none}
spec: {type: none}
---
apiVersion: enmasse.io/v1beta1
kind: AddressSpace
metadata: {name: s}
spec: {type: standard, plan: small, authenticationService: {name: none}}
"#;

fn run(manifest: &str) -> Checked {
    check(&[
        Source::new("plans.yaml", PLANS),
        Source::new("test.yaml", manifest),
    ])
}

fn address(name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: enmasse.io/v1beta1\nkind: Address\nmetadata:\n  name: {name}\nspec:\n{spec}"
    )
}

/// Asserts that the only error is `expected` (its Display), and returns the check.
fn only_error(manifest: &str, expected: &str) -> Checked {
    let checked = run(manifest);
    let errors: Vec<String> = checked
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errors,
        vec![expected.to_owned()],
        "{:#?}",
        checked.diagnostics
    );
    assert!(!checked.is_valid());
    checked
}

#[test]
fn a_valid_manifest_resolves() {
    let manifest = address("s.q", "  address: q\n  type: queue\n  plan: queue\n");
    let checked = run(&manifest);
    assert!(checked.is_valid(), "{:#?}", checked.diagnostics);
    let space = checked.config.address_space("s").unwrap();
    assert_eq!(space.addresses.len(), 1);
    assert_eq!(space.addresses[0].plan.metadata.name, "queue");
}

#[test]
fn address_name_must_be_prefixed_by_its_space() {
    only_error(
        &address("q", "  address: q\n  type: queue\n  plan: queue\n"),
        "test.yaml: document 1 (line 5): metadata.name: \"q\" must be \"<addressspace>.<name>\", each part lower-case letters, digits and '-'",
    );
}

#[test]
fn address_space_of_an_address_must_exist() {
    only_error(
        &address("other.q", "  address: q\n  type: queue\n  plan: queue\n"),
        "test.yaml: document 1 (line 5): metadata.name: no AddressSpace named \"other\"",
    );
}

#[test]
fn address_must_not_contain_whitespace() {
    only_error(
        &address(
            "s.q",
            "  address: \"my queue\"\n  type: queue\n  plan: queue\n",
        ),
        "test.yaml: document 1 (line 7): spec.address: address \"my queue\" must be non-empty and contain no whitespace",
    );
}

#[test]
fn address_must_not_use_the_temporary_queue_prefix() {
    only_error(
        &address(
            "s.q",
            "  address: _sluice.tmp.1.1\n  type: queue\n  plan: queue\n",
        ),
        "test.yaml: document 1 (line 7): spec.address: address \"_sluice.tmp.1.1\" must not start with \"_sluice.tmp.\": Sluice names dynamic receivers' temporary queues so",
    );
}

#[test]
fn address_type_must_be_allowed_in_the_space_type() {
    let manifest = "apiVersion: enmasse.io/v1beta1\nkind: AddressSpace\nmetadata: {name: b}\nspec: {type: brokered, plan: broker}\n"
        .to_owned()
        + &address("b.a", "  address: a\n  type: anycast\n  plan: anycast\n");
    let checked = run(&manifest);
    let errors: Vec<String> = checked
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errors[0],
        "test.yaml: document 2 (line 12): spec.type: address type anycast is not allowed in a brokered address space (allowed: queue, topic, deadletter)"
    );
}

#[test]
fn unknown_address_type_is_refused_with_its_path() {
    let checked = run(&address(
        "s.q",
        "  address: q\n  type: fifo\n  plan: queue\n",
    ));
    let error = checked.diagnostics.iter().find(|d| d.is_error()).unwrap();
    assert_eq!(
        (error.path.as_str(), error.line, error.document),
        ("spec.type", Some(8), Some(1))
    );
    assert!(error.message.contains("unknown variant `fifo`"), "{error}");
}

#[test]
fn plan_must_exist() {
    only_error(
        &address(
            "s.q",
            "  address: q\n  type: queue\n  plan: standard-xl-queue\n",
        ),
        "test.yaml: document 1 (line 9): spec.plan: no AddressPlan named \"standard-xl-queue\"",
    );
}

#[test]
fn plan_must_be_for_the_address_type() {
    only_error(
        &address("s.q", "  address: q\n  type: queue\n  plan: topic\n"),
        "test.yaml: document 1 (line 9): spec.plan: AddressPlan \"topic\" is for addresses of type topic, not queue",
    );
}

#[test]
fn plan_must_be_allowed_by_the_space_plan() {
    only_error(
        &address(
            "s.m",
            "  address: m\n  type: multicast\n  plan: multicast\n",
        ),
        "test.yaml: document 1 (line 9): spec.plan: AddressPlan \"multicast\" is not allowed by AddressSpacePlan \"small\" of address space \"s\"",
    );
}

#[test]
fn space_plan_must_exist_and_match_the_space_type() {
    only_error(
        "apiVersion: enmasse.io/v1beta1\nkind: AddressSpace\nmetadata: {name: t}\nspec: {type: standard, plan: broker}\n",
        "test.yaml: document 1 (line 4): spec.plan: AddressSpacePlan \"broker\" is for brokered address spaces, not standard",
    );
    only_error(
        "apiVersion: enmasse.io/v1beta1\nkind: AddressSpace\nmetadata: {name: t}\nspec:\n  type: standard\n  plan: huge\n",
        "test.yaml: document 1 (line 6): spec.plan: no AddressSpacePlan named \"huge\"",
    );
}

#[test]
fn authentication_service_must_exist() {
    only_error(
        "apiVersion: enmasse.io/v1beta1\nkind: AddressSpace\nmetadata: {name: t}\nspec:\n  type: standard\n  plan: small\n  authenticationService:\n    name: keycloak\n",
        "test.yaml: document 1 (line 8): spec.authenticationService.name: no AuthenticationService named \"keycloak\"",
    );
}

#[test]
fn subscription_topic_must_name_a_topic() {
    let manifest = address("s.q", "  address: q\n  type: queue\n  plan: queue\n")
        + &address(
            "s.sub",
            "  address: sub\n  type: subscription\n  plan: subscription\n  topic: q\n",
        );
    only_error(
        &manifest,
        "test.yaml: document 2 (line 19): spec.topic: address \"q\" is of type queue, not topic",
    );
    only_error(
        &address(
            "s.sub",
            "  address: sub\n  type: subscription\n  plan: subscription\n  topic: nope\n",
        ),
        "test.yaml: document 1 (line 10): spec.topic: no topic address \"nope\" in address space \"s\"",
    );
}

#[test]
fn dead_letter_and_expiry_must_name_deadletter_addresses() {
    let manifest = address("s.q", "  address: q\n  type: queue\n  plan: queue\n")
        + &address(
            "s.r",
            "  address: r\n  type: queue\n  plan: queue\n  deadletter: q\n  expiry: dlq\n",
        );
    let checked = run(&manifest);
    let errors: Vec<String> = checked
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errors,
        vec![
            "test.yaml: document 2 (line 19): spec.deadletter: address \"q\" is of type queue, not deadletter",
            "test.yaml: document 2 (line 20): spec.expiry: no deadletter address \"dlq\" in address space \"s\"",
        ]
    );
}

#[test]
fn anycast_cannot_have_a_dead_letter_address() {
    let manifest = address(
        "s.dlq",
        "  address: dlq\n  type: deadletter\n  plan: deadletter\n",
    ) + &address(
        "s.a",
        "  address: a\n  type: anycast\n  plan: anycast\n  deadletter: dlq\n",
    );
    only_error(
        &manifest,
        "test.yaml: document 2 (line 19): spec.deadletter: an address of type anycast cannot have a deadletter address",
    );
}

#[test]
fn duplicate_addresses_are_refused() {
    let manifest = address("s.q1", "  address: q\n  type: queue\n  plan: queue\n")
        + &address("s.q2", "  address: q\n  type: queue\n  plan: queue\n");
    let checked = only_error(
        &manifest,
        "test.yaml: document 2 (line 16): spec.address: address \"q\" already exists with resource name \"s.q1\" (test.yaml document 1)",
    );
    assert_eq!(
        checked.config.address_space("s").unwrap().addresses.len(),
        1
    );
}

#[test]
fn messaging_user_name_and_username_are_checked() {
    let manifest = "apiVersion: user.enmasse.io/v1beta1\nkind: MessagingUser\nmetadata: {name: s.Bob}\nspec:\n  username: Bob\n  authentication: {type: password, password: eA==}\n";
    let checked = run(manifest);
    let errors: Vec<String> = checked
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].starts_with("test.yaml: document 1 (line 3): metadata.name: \"s.Bob\" must be"),
        "{}",
        errors[0]
    );
    let ok = "apiVersion: user.enmasse.io/v1beta1\nkind: MessagingUser\nmetadata: {name: s.bob}\nspec:\n  username: \"system:serviceaccount:ns:bob\"\n  authentication: {type: serviceaccount}\n";
    let checked = run(ok);
    assert!(checked.is_valid(), "{:#?}", checked.diagnostics);
    assert_eq!(checked.config.address_space("s").unwrap().users.len(), 1);
}

#[test]
fn a_password_user_needs_a_base64_password_and_the_error_never_quotes_it() {
    for (password, why) in [
        (
            "authentication: {type: password, password: 'not base64!'}",
            "not valid base64",
        ),
        ("authentication: {type: password, password: ''}", "empty"),
    ] {
        let manifest = format!(
            "apiVersion: user.enmasse.io/v1beta1\nkind: MessagingUser\nmetadata: {{name: s.bob}}\nspec:\n  username: bob\n  {password}\n"
        );
        let checked = run(&manifest);
        let errors: Vec<String> = checked
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(ToString::to_string)
            .collect();
        let [error] = errors.as_slice() else {
            panic!("one error expected: {errors:#?}");
        };
        assert!(
            error.contains("spec.authentication.password") && error.contains(why),
            "{error}"
        );
        assert!(!error.contains("base64!"), "the password leaked: {error}");
        assert!(checked.config.address_space("s").unwrap().users.is_empty());
    }
    let manifest = "apiVersion: user.enmasse.io/v1beta1\nkind: MessagingUser\nmetadata: {name: s.bob}\nspec:\n  username: bob\n  authentication: {type: password}\n";
    let checked = run(manifest);
    assert!(checked.is_valid(), "{:#?}", checked.diagnostics);
    assert!(
        checked
            .diagnostics
            .iter()
            .any(|d| d.to_string().contains("cannot log in")),
        "{:#?}",
        checked.diagnostics
    );
}

#[test]
fn quota_exceeded_addresses_are_pending_with_a_warning() {
    // broker limit 0.25: two queues (0.1 each) fit, the third is pending.
    let manifest = address("s.q1", "  address: q1\n  type: queue\n  plan: queue\n")
        + &address("s.q2", "  address: q2\n  type: queue\n  plan: queue\n")
        + &address("s.q3", "  address: q3\n  type: queue\n  plan: queue\n");
    let checked = run(&manifest);
    assert!(
        checked.is_valid(),
        "quota is a warning: {:#?}",
        checked.diagnostics
    );
    let space = checked.config.address_space("s").unwrap();
    assert_eq!(space.addresses.len(), 2);
    assert_eq!(space.pending.len(), 1);
    assert_eq!(space.pending[0].reason, "Quota exceeded");
    let warning = checked
        .diagnostics
        .iter()
        .find(|d| d.severity == Severity::Warning)
        .unwrap();
    assert_eq!(
        warning.to_string(),
        "test.yaml: document 3 (line 27): spec.plan: Quota exceeded: address \"q3\" is pending; AddressSpacePlan \"small\" allows broker 0.25, the addresses would need 0.3"
    );
}

#[test]
fn unknown_fields_are_warnings() {
    let checked = run(&address(
        "s.q",
        "  address: q\n  type: queue\n  plan: queue\n  colour: blue\n",
    ));
    assert!(checked.is_valid());
    assert_eq!(
        checked.diagnostics[0].to_string(),
        "test.yaml: document 1 (line 10): spec.colour: unknown field, ignored"
    );
    assert_eq!(checked.diagnostics[0].severity, Severity::Warning);
}

#[test]
fn missing_fields_and_wrong_api_versions_are_errors() {
    let checked = run(&address("s.q", "  address: q\n  type: queue\n"));
    assert_eq!(
        checked.diagnostics[0].to_string(),
        "test.yaml: document 1 (line 6): spec: missing field `plan`"
    );
    let checked = run("apiVersion: enmasse.io/v1alpha9\nkind: Address\nmetadata: {name: s.q}\n");
    assert_eq!(
        checked.diagnostics[0].to_string(),
        "test.yaml: document 1 (line 1): apiVersion: Address is not served at \"enmasse.io/v1alpha9\" (expected enmasse.io/v1beta1)"
    );
}

#[test]
fn yaml_syntax_errors_name_the_file_and_line() {
    let checked = run("apiVersion: enmasse.io/v1beta1\nkind: [Address\n");
    let error = &checked.diagnostics[0];
    assert_eq!(
        (error.file.as_str(), error.line, error.document),
        ("test.yaml", Some(2), None)
    );
    assert!(
        error
            .to_string()
            .starts_with("test.yaml: line 2: invalid YAML: "),
        "{error}"
    );
}

#[test]
fn every_error_is_reported_at_once() {
    let manifest = address("q", "  address: q\n  type: queue\n  plan: queue\n")
        + &address("s.a", "  address: \"a b\"\n  type: queue\n  plan: nope\n")
        + &address(
            "s.c",
            "  address: c\n  type: subscription\n  plan: subscription\n  topic: zz\n",
        )
        + "---\napiVersion: enmasse.io/v1beta1\nkind: AddressSpace\nmetadata: {name: t}\nspec: {type: standard, plan: huge}\n";
    let checked = run(&manifest);
    let errors: Vec<String> = checked
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect();
    assert_eq!(errors.len(), 5, "{errors:#?}");
    for expected in [
        "document 1 (line 5): metadata.name:",
        "document 2 (line 16): spec.address:",
        "document 2 (line 18): spec.plan: no AddressPlan named \"nope\"",
        "document 3 (line 28): spec.topic: no topic address \"zz\"",
        "document 4 (line 33): spec.plan: no AddressSpacePlan named \"huge\"",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "missing {expected:?} in {errors:#?}"
        );
    }
}

/// A plan `ttl-plan` with the given `messageTtl`/`messageRedelivery` YAML, allowed by space `t`,
/// and address `t.q` with its own spec lines.
fn effective(plan_extra: &str, address_extra: &str) -> sluice_config::ResolvedAddress {
    let manifest = format!(
        "apiVersion: admin.enmasse.io/v1beta2\nkind: AddressSpacePlan\nmetadata: {{name: ttl-space}}\nspec:\n  addressSpaceType: standard\n  addressPlans: [ttl-plan, deadletter]\n---\napiVersion: admin.enmasse.io/v1beta2\nkind: AddressPlan\nmetadata: {{name: ttl-plan}}\nspec:\n  addressType: queue\n{plan_extra}---\napiVersion: enmasse.io/v1beta1\nkind: AddressSpace\nmetadata: {{name: t}}\nspec: {{type: standard, plan: ttl-space, authenticationService: {{name: none}}}}\n{}{}",
        address(
            "t.dlq",
            "  address: dlq\n  type: deadletter\n  plan: deadletter\n"
        ),
        address(
            "t.q",
            &format!("  address: q\n  type: queue\n  plan: ttl-plan\n{address_extra}")
        ),
    );
    let checked = run(&manifest);
    assert!(checked.is_valid(), "{:#?}", checked.diagnostics);
    checked
        .config
        .address_space("t")
        .unwrap()
        .address("q")
        .unwrap()
        .clone()
}

#[test]
fn an_address_can_only_narrow_its_plans_ttl_range() {
    let a = effective(
        "  messageTtl: {minimum: 100, maximum: 60000}\n",
        "  messageTtl: {minimum: 50, maximum: 30000}\n",
    );
    let ttl = a.message_ttl();
    assert_eq!((ttl.minimum, ttl.maximum), (Some(100), Some(30000)));
    let plan_only = effective("  messageTtl: {maximum: 5000}\n", "").message_ttl();
    assert_eq!((plan_only.minimum, plan_only.maximum), (None, Some(5000)));
}

#[test]
fn a_ttl_range_whose_maximum_is_not_above_its_minimum_is_ignored() {
    let ttl = effective(
        "  messageTtl: {minimum: 1000}\n",
        "  messageTtl: {maximum: 500}\n",
    )
    .message_ttl();
    assert_eq!((ttl.minimum, ttl.maximum), (None, None));
    let zero = effective("  messageTtl: {minimum: 0, maximum: 0}\n", "").message_ttl();
    assert_eq!((zero.minimum, zero.maximum), (None, None), "values below 1");
}

#[test]
fn delivery_attempts_come_from_the_address_then_the_plan_then_the_dead_letter_default() {
    let both = effective(
        "  messageRedelivery: {maximumDeliveryAttempts: 5}\n",
        "  messageRedelivery: {maximumDeliveryAttempts: 3}\n",
    );
    assert_eq!(both.maximum_delivery_attempts(), Some(3));
    let plan = effective("  messageRedelivery: {maximumDeliveryAttempts: 5}\n", "");
    assert_eq!(plan.maximum_delivery_attempts(), Some(5));
    let infinite = effective(
        "",
        "  messageRedelivery: {maximumDeliveryAttempts: -1}\n  deadletter: dlq\n",
    );
    assert_eq!(infinite.maximum_delivery_attempts(), None);
    assert_eq!(effective("", "").maximum_delivery_attempts(), None);
    assert_eq!(
        effective("", "  deadletter: dlq\n").maximum_delivery_attempts(),
        Some(sluice_config::DEAD_LETTER_DELIVERY_ATTEMPTS_DEFAULT)
    );
}

#[test]
fn the_redelivery_delay_comes_field_by_field_from_the_address_then_the_plan() {
    let a = effective(
        "  messageRedelivery: {redeliveryDelay: 100, redeliveryDelayMultiplier: 2.0, maximumDeliveryDelay: 5000}\n",
        "  messageRedelivery: {redeliveryDelay: 250}\n",
    );
    let d = a.redelivery_delay();
    assert_eq!(
        (d.delay_ms, d.multiplier, d.maximum_ms),
        (250, 2.0, Some(5000))
    );
    let none = effective("", "").redelivery_delay();
    assert_eq!(
        (none.delay_ms, none.multiplier, none.maximum_ms),
        (0, 1.0, None)
    );
    // Values that cannot be meant are the defaults: a negative delay, a multiplier below 1, a
    // maximum of 0 (EnMasse's "no maximum").
    let odd = effective(
        "",
        "  messageRedelivery: {redeliveryDelay: -5, redeliveryDelayMultiplier: 0.5, maximumDeliveryDelay: 0}\n",
    )
    .redelivery_delay();
    assert_eq!(
        (odd.delay_ms, odd.multiplier, odd.maximum_ms),
        (0, 1.0, None)
    );
}

/// Space `c` like `s` but with the connector `remote1`.
const CONNECTED_SPACE: &str = "---\napiVersion: enmasse.io/v1beta1\nkind: AddressSpace\nmetadata: {name: c}\nspec:\n  type: standard\n  plan: small\n  authenticationService: {name: none}\n  connectors:\n  - name: remote1\n    endpointHosts: [{host: peer.example}]\n";

fn forwarding(name: &str, spec: &str) -> String {
    format!("{CONNECTED_SPACE}{}", address(name, spec))
}

#[test]
fn forwarders_need_a_connector_on_the_space() {
    only_error(
        &address(
            "s.q",
            "  address: q\n  type: queue\n  plan: queue\n  forwarders:\n  - {name: f, remoteAddress: remote1/x, direction: out}\n",
        ),
        "test.yaml: document 1 (line 10): spec.forwarders: Unable to create forwarders: There are no connectors configured for address space \"s\"",
    );
}

#[test]
fn a_forwarders_remote_address_starts_with_a_connector_name() {
    only_error(
        &forwarding(
            "c.q",
            "  address: q\n  type: queue\n  plan: queue\n  forwarders:\n  - {name: f, remoteAddress: elsewhere/x, direction: out}\n",
        ),
        "test.yaml: document 2 (line 22): spec.forwarders[0].remoteAddress: Unable to create forwarder \"f\": remoteAddress \"elsewhere/x\" is not prefixed with any connector of address space \"c\" (remote1)",
    );
}

#[test]
fn a_subscription_cannot_forward_in() {
    let manifest = format!(
        "{CONNECTED_SPACE}{}{}",
        address("c.t", "  address: t\n  type: topic\n  plan: topic\n"),
        address(
            "c.sub",
            "  address: sub\n  type: subscription\n  plan: subscription\n  topic: t\n  forwarders:\n  - {name: f, remoteAddress: remote1/x, direction: in}\n",
        )
    );
    only_error(
        &manifest,
        "test.yaml: document 3 (line 32): spec.forwarders[0].direction: Unable to create forwarder \"f\": direction 'in' is not allowed on 'subscription' address type",
    );
}

#[test]
fn only_queues_and_subscriptions_forward() {
    only_error(
        &forwarding(
            "c.a",
            "  address: a\n  type: anycast\n  plan: anycast\n  forwarders:\n  - {name: f, remoteAddress: remote1/x, direction: out}\n",
        ),
        "test.yaml: document 2 (line 21): spec.forwarders: forwarders are only for queue and subscription addresses of a standard address space (the address is of type anycast, in a standard address space)",
    );
}

#[test]
fn a_valid_forwarder_is_accepted_with_a_warning_that_it_does_not_run() {
    let checked = run(&forwarding(
        "c.q",
        "  address: q\n  type: queue\n  plan: queue\n  forwarders:\n  - {name: f, remoteAddress: remote1/x, direction: in}\n",
    ));
    assert!(checked.is_valid(), "{:#?}", checked.diagnostics);
    assert!(checked.diagnostics.iter().any(|d| {
        d.severity == Severity::Warning
            && d.to_string()
                .contains("spec.forwarders: forwarders are accepted but not run")
    }));
}
