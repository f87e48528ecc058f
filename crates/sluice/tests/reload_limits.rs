//! Black-box tests of the limits a hot reload applies, from the StandardInfraConfig that the
//! AddressSpacePlan names (`spec.infraConfigRef`): `router.linkCapacity` (the credit a new
//! sender gets), `router.policy.maxMessageSize`, `router.idleTimeout` (advertised in the
//! broker's open) and `broker.globalMaxSize` with `addressFullPolicy: FAIL` (a queue's size
//! limit, globalMaxSize × its plan's broker credit). Each is seen by a Qpid Proton client
//! (`tests/interop/proton_client.py`) on a connection opened after the reload, and in
//! `/metrics`. An invalid limit is refused with the rest of its configuration.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod reload_support;
mod support;

use reload_support::*;
use serde_json::Value;
use support::*;

/// The plan's broker credit for `myqueue`: its size limit is half the globalMaxSize.
const BROKER_CREDIT: f64 = 0.5;

/// A standard space, authentication `none`, with the queue `myqueue` on a plan of broker
/// credit [`BROKER_CREDIT`], whose infra config `limited` has `router: {router}` and
/// `broker: {broker}` (YAML flow maps).
fn space(router: &str, broker: &str) -> String {
    format!(
        "\
apiVersion: admin.enmasse.io/v1beta1
kind: StandardInfraConfig
metadata: {{name: limited}}
spec:
  router: {router}
  broker: {broker}
---
apiVersion: admin.enmasse.io/v1beta1
kind: AuthenticationService
metadata: {{name: none-authservice}}
spec: {{type: none}}
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressSpacePlan
metadata: {{name: standard-limited}}
spec:
  addressSpaceType: standard
  infraConfigRef: limited
  resourceLimits: {{router: 10000.0, broker: 10000.0, aggregate: 10000.0}}
  addressPlans: [standard-half-queue]
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressPlan
metadata: {{name: standard-half-queue}}
spec:
  addressType: queue
  resources: {{router: 0.001, broker: {BROKER_CREDIT}}}
---
apiVersion: enmasse.io/v1beta1
kind: AddressSpace
metadata: {{name: myspace}}
spec:
  type: standard
  plan: standard-limited
  authenticationService: {{name: none-authservice}}
---
apiVersion: enmasse.io/v1beta1
kind: Address
metadata: {{name: myspace.myqueue}}
spec: {{address: myqueue, type: queue, plan: standard-half-queue}}
"
    )
}

/// The credit a sender attached to `myqueue` now is given.
fn credit(server: &Server) -> u64 {
    let json = ok(server, server.run(&["credit", "myqueue"]), "credit");
    json["credit"]
        .as_u64()
        .unwrap_or_else(|| panic!("no credit in {json}"))
}

/// Sends up to `count` messages of `size` bytes to `myqueue`, one at a time, until one is not
/// accepted: the `fill` report.
fn fill(server: &Server, count: usize, size: usize) -> Value {
    ok(
        server,
        server.run(&[
            "fill",
            "myqueue",
            &count.to_string(),
            "--size",
            &size.to_string(),
        ]),
        "fill",
    )
}

#[test]
fn link_capacity_is_the_credit_of_senders_attached_after_a_reload() {
    let server = Server::start_config("limits-capacity", &space("{}", "{}"), &[]);
    assert_eq!(credit(&server), 1000, "the default credit");

    apply(&server, &space("{linkCapacity: 250}", "{}"));
    assert_eq!(credit(&server), 250);

    apply(&server, &space("{linkCapacity: 20000}", "{}"));
    assert_eq!(credit(&server), 10_000, "capped at 10000");

    apply(&server, &space("{}", "{}"));
    assert_eq!(credit(&server), 1000, "back to the default");
}

#[test]
fn max_message_size_refuses_a_larger_message_after_a_reload() {
    let server = Server::start_config("limits-message-size", &space("{}", "{}"), &[]);
    let before = fill(&server, 1, 20_000);
    assert_eq!(before["accepted"], 1, "no limit yet: {before}");

    apply(&server, &space("{policy: {maxMessageSize: 8192}}", "{}"));
    let after = fill(&server, 1, 20_000);
    assert_eq!(after["accepted"], 0, "{after}");
    assert_eq!(
        after["refused"]["condition"], "amqp:link:message-size-exceeded",
        "{after}"
    );
    assert_eq!(after["refused"]["detached"], true, "{after}");
    // Below the limit still goes.
    let small = fill(&server, 1, 4000);
    assert_eq!(small["accepted"], 1, "{small}");

    apply(&server, &space("{}", "{}"));
    let again = fill(&server, 1, 20_000);
    assert_eq!(again["accepted"], 1, "the limit is lifted: {again}");
}

#[test]
fn idle_timeout_is_advertised_in_the_open_after_a_reload() {
    let server = Server::start_config("limits-idle", &space("{}", "{}"), &[]);
    let idle = |server: &Server| -> f64 {
        let json = ok(server, server.run(&["open-info"]), "open-info");
        json["remote_idle_timeout"]
            .as_f64()
            .unwrap_or_else(|| panic!("no remote_idle_timeout in {json}"))
    };
    let default = idle(&server);
    assert_ne!(default, 30.0, "the default is not the value set below");

    apply(&server, &space("{idleTimeout: 30}", "{}"));
    assert_eq!(idle(&server), 30.0);
    apply(&server, &space("{idleTimeout: 120}", "{}"));
    assert_eq!(idle(&server), 120.0);
    apply(&server, &space("{}", "{}"));
    assert_eq!(idle(&server), default);
}

/// Asserts a `fill` of `size`-byte messages into a queue limited to `limit` bytes stopped at
/// the limit: some accepted, then one refused with `amqp:resource-limit-exceeded`; the count.
fn assert_filled(report: &Value, size: usize, limit: usize, already: usize) -> usize {
    let accepted = usize::try_from(report["accepted"].as_u64().unwrap()).unwrap();
    assert_eq!(
        report["refused"]["condition"], "amqp:resource-limit-exceeded",
        "{report}"
    );
    let total = already + accepted;
    // The bodies alone fit the limit; with a generous 256 bytes a message for the rest, one
    // more would not.
    assert!(
        total * size <= limit,
        "{total} × {size} B > {limit} B: {report}"
    );
    assert!(
        (total + 1) * (size + 256) > limit,
        "only {total} messages of {size} B in {limit} B: {report}"
    );
    accepted
}

#[test]
fn global_max_size_limits_a_queue_and_a_reload_that_raises_it_lets_more_in() {
    const SIZE: usize = 4096;
    let server = Server::start_config(
        "limits-global-max",
        &space("{}", "{globalMaxSize: 64Kb, addressFullPolicy: FAIL}"),
        &[],
    );
    let q: &[(&str, &str)] = &[("address", "myqueue")];
    wait_metric(&server, "sluice_queue_bytes_max", q, Some(32_768.0));
    let first = assert_filled(&fill(&server, 40, SIZE), SIZE, 32_768, 0);
    assert!(first > 0);

    apply(
        &server,
        &space("{}", "{globalMaxSize: 128Kb, addressFullPolicy: FAIL}"),
    );
    wait_metric(&server, "sluice_queue_bytes_max", q, Some(65_536.0));
    // The same queue, its messages kept.
    wait_metric(&server, "sluice_queue_depth", q, Some(first as f64));
    let second = assert_filled(&fill(&server, 40, SIZE), SIZE, 65_536, first);
    assert!(second > 0, "the raised limit lets more in");

    let total = first + second;
    let received = ok(
        &server,
        server.run(&["receive", "myqueue", &total.to_string()]),
        "receive everything",
    );
    assert_eq!(received["received"], total, "{received}");
}

#[test]
fn an_invalid_limit_is_refused_with_the_rest_and_the_old_limits_stay() {
    let server = Server::start_config(
        "limits-invalid",
        &space("{linkCapacity: 250}", "{globalMaxSize: 64Kb}"),
        &[],
    );
    let q: &[(&str, &str)] = &[("address", "myqueue")];
    assert_eq!(credit(&server), 250);
    wait_metric(&server, "sluice_queue_bytes_max", q, Some(32_768.0));

    refuse(
        &server,
        &space("{linkCapacity: 500}", "{globalMaxSize: 64Zb}"),
    );
    assert_eq!(credit(&server), 250, "the old link capacity stays");
    wait_metric(&server, "sluice_queue_bytes_max", q, Some(32_768.0));

    apply(
        &server,
        &space("{linkCapacity: 500}", "{globalMaxSize: 128Kb}"),
    );
    assert_eq!(credit(&server), 500);
    wait_metric(&server, "sluice_queue_bytes_max", q, Some(65_536.0));
}
