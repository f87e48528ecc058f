//! Queue management for operators against the real binary: `$management` requests (AMQP
//! Management's conventions) from Qpid Proton and rhea, and the `sluice queue` subcommands,
//! purging a queue and moving dead-lettered messages back to where they came from.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use support::{ADDRESS_SPACE, Peer, Server, assert_empty, bodies, ok, with_broker_infra};

/// [`ADDRESS_SPACE`] plus `orders`, a queue whose dead-letter address is `mydlq`, with
/// rejection final (so one `rejected` dead-letters a message at once).
fn space() -> String {
    let orders = "---
apiVersion: enmasse.io/v1beta1
kind: Address
metadata:
  name: myspace.orders
spec:
  address: orders
  type: queue
  plan: standard-small-queue
  deadletter: mydlq
";
    with_broker_infra(
        &format!("{ADDRESS_SPACE}{orders}"),
        "{treatRejectAsUnmodifiedDeliveryFailed: false}",
    )
}

/// A `$management` request from `peer`: `manage URL ADDRESS --operation OP rest...`.
fn manage(server: &Server, peer: Peer, address: &str, op: &str, rest: &[&str]) -> Value {
    let mut args = vec!["manage", address, "--operation", op];
    args.extend_from_slice(rest);
    ok(server, server.run_with(peer, &args), "a management request")
}

fn assert_status(answer: &Value, code: i64) {
    assert_eq!(answer["status"], code, "{answer}");
    assert_eq!(answer["correlation_id"], "req-1", "{answer}");
}

/// Sends `count` messages to `orders` and rejects them all: they go to `mydlq`.
fn dead_letter_orders(server: &Server, count: usize) {
    let n = count.to_string();
    let sent = ok(
        server,
        server.run(&["send", "orders", &n]),
        "send to orders",
    );
    assert_eq!(sent["accepted"], count, "{sent}");
    let rejected = ok(
        server,
        server.run(&["receive", "orders", &n, "--outcome", "reject"]),
        "reject them",
    );
    assert_eq!(rejected["received"], count, "{rejected}");
}

fn receive(server: &Server, address: &str, count: usize) -> Vec<String> {
    let got = ok(
        server,
        server.run(&["receive", address, &count.to_string()]),
        "receive",
    );
    bodies(&got)
}

fn expected(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("msg-{i}")).collect()
}

#[test]
fn proton_purges_a_queue_and_moves_dead_letters_back_to_their_origin() {
    let server = Server::start_config("manage-proton", &space(), &[]);
    let sent = ok(&server, server.run(&["send", "myqueue", "5"]), "send");
    assert_eq!(sent["accepted"], 5);
    let purged = manage(&server, Peer::Proton, "myqueue", "PURGE", &[]);
    assert_status(&purged, 200);
    assert_eq!(purged["body"]["count"], 5, "{purged}");
    assert_empty(&server, "myqueue");

    dead_letter_orders(&server, 3);
    let read = manage(&server, Peer::Proton, "mydlq", "READ", &[]);
    assert_status(&read, 200);
    assert_eq!(read["body"]["depth"], 3, "{read}");
    // The answer may go to a dynamic receiver named by reply-to, too.
    let moved = manage(
        &server,
        Peer::Proton,
        "mydlq",
        "MOVE",
        &["--reply", "dynamic"],
    );
    assert_status(&moved, 200);
    assert_eq!(moved["body"]["count"], 3, "{moved}");
    assert_eq!(receive(&server, "orders", 3), expected(3));
    assert_empty(&server, "mydlq");
}

#[test]
fn a_move_takes_at_most_max_and_only_messages_from_the_address_named() {
    let server = Server::start_config("manage-max", &space(), &[]);
    dead_letter_orders(&server, 3);
    let first = manage(&server, Peer::Proton, "mydlq", "MOVE", &["--max", "2"]);
    assert_eq!(first["body"]["count"], 2, "{first}");
    // None of them came from myqueue: nothing moves.
    let none = manage(&server, Peer::Proton, "mydlq", "MOVE", &["--to", "myqueue"]);
    assert_status(&none, 200);
    assert_eq!(none["body"]["count"], 0, "{none}");
    let rest = manage(&server, Peer::Proton, "mydlq", "MOVE", &["--to", "orders"]);
    assert_eq!(rest["body"]["count"], 1, "{rest}");
    assert_eq!(receive(&server, "orders", 3), expected(3));
}

#[test]
fn unknown_addresses_types_and_operations_are_answered_with_their_status() {
    let server = Server::start_config("manage-status", &space(), &[]);
    let unknown = manage(&server, Peer::Proton, "nowhere", "PURGE", &[]);
    assert_status(&unknown, 404);
    let topic = manage(&server, Peer::Proton, "mytopic", "PURGE", &[]);
    assert_status(&topic, 400);
    let operation = manage(&server, Peer::Proton, "myqueue", "DELETE", &[]);
    assert_status(&operation, 501);
    let kind = manage(
        &server,
        Peer::Proton,
        "myqueue",
        "PURGE",
        &["--type", "org.example.thing"],
    );
    assert_status(&kind, 404);
    // One connection carries on past refusals: each answer frees the request link's credit.
    let series = manage(
        &server,
        Peer::Proton,
        "nowhere",
        "PURGE,DELETE,READ",
        &["--reply", "dynamic"],
    );
    assert_eq!(
        series["statuses"],
        serde_json::json!([404, 501, 404]),
        "{series}"
    );
    let read = manage(&server, Peer::Proton, "myqueue", "READ,PURGE,READ", &[]);
    assert_eq!(
        read["statuses"],
        serde_json::json!([200, 200, 200]),
        "{read}"
    );
}

/// A standard space with password users: `worker` may send and receive on every address;
/// `operator` may also manage them; `watcher` may only view.
fn users_space() -> String {
    let user = |name: &str, ops: &str| {
        format!(
            "---\napiVersion: user.enmasse.io/v1beta1\nkind: MessagingUser\nmetadata: {{name: \
             myspace.{name}}}\nspec:\n  username: {name}\n  authentication: {{type: password, \
             password: {}}}\n  authorization:\n  - {{addresses: [\"*\"], operations: [{ops}]}}\n",
            STANDARD.encode(format!("{name}-secret"))
        )
    };
    let space = space().replace(
        "  name: none-authservice\nspec:\n  type: none",
        "  name: none-authservice\nspec:\n  type: standard",
    );
    format!(
        "{space}{}{}{}",
        user("worker", "send, recv"),
        user("operator", "send, recv, manage"),
        user("watcher", "view")
    )
}

fn manage_as(server: &Server, user: &str, address: &str, op: &str) -> Value {
    let password = format!("{user}-secret");
    let args = [
        "manage",
        address,
        "--operation",
        op,
        "--user",
        user,
        "--password",
        &password,
    ];
    ok(server, server.run(&args), "a management request")
}

#[test]
fn purging_needs_the_manage_right_and_reading_the_view_right() {
    let server = Server::start_config(
        "manage-rights",
        &users_space(),
        &["--danger-plain-without-tls"],
    );
    let refused = manage_as(&server, "worker", "myqueue", "PURGE");
    assert_status(&refused, 403);
    assert!(
        refused["description"]
            .as_str()
            .is_some_and(|d| d.contains("worker")),
        "{refused}"
    );
    assert_status(&manage_as(&server, "worker", "myqueue", "READ"), 403);
    assert_status(&manage_as(&server, "watcher", "myqueue", "READ"), 200);
    assert_status(&manage_as(&server, "watcher", "myqueue", "MOVE"), 403);
    // A refusal leaves the links in place: the next request on them is served.
    let after = manage_as(&server, "watcher", "myqueue", "PURGE,READ");
    assert_eq!(after["statuses"], serde_json::json!([403, 200]), "{after}");
    assert_status(&manage_as(&server, "operator", "myqueue", "PURGE"), 200);
    assert_status(&manage_as(&server, "operator", "myqueue", "READ"), 200);
}

/// `sluice queue ARGS... --url URL`.
fn sluice_queue(url: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("queue")
        .args(args)
        .args(["--url", url, "--timeout", "30"])
        .output()
        .unwrap()
}

fn printed(output: &std::process::Output) -> String {
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn sluice_queue_purges_and_moves_back_and_fails_clearly_on_a_refusal() {
    let server = Server::start_config("manage-cli", &space(), &[]);
    let sent = ok(&server, server.run(&["send", "myqueue", "4"]), "send");
    assert_eq!(sent["accepted"], 4);
    assert_eq!(
        printed(&sluice_queue(&server.url, &["purge", "myqueue"])),
        "4"
    );
    assert_empty(&server, "myqueue");

    dead_letter_orders(&server, 3);
    let some = sluice_queue(&server.url, &["move", "mydlq", "--max", "1"]);
    assert_eq!(printed(&some), "1");
    let rest = sluice_queue(&server.url, &["move", "mydlq", "--to", "orders"]);
    assert_eq!(printed(&rest), "2");
    assert_eq!(receive(&server, "orders", 3), expected(3));

    let read = printed(&sluice_queue(&server.url, &["read", "mydlq"]));
    assert!(read.contains("depth: 0"), "{read}");
    assert!(read.contains("moved: 3"), "{read}");

    let unknown = sluice_queue(&server.url, &["purge", "nowhere"]);
    assert_eq!(unknown.status.code(), Some(1), "{unknown:?}");
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("404") && stderr.contains("nowhere"),
        "a clear message: {stderr}"
    );
}

#[test]
fn sluice_queue_logs_in_with_the_urls_credentials() {
    let server = Server::start_config(
        "manage-cli-users",
        &users_space(),
        &["--danger-plain-without-tls"],
    );
    let at = |user: &str| {
        server
            .url
            .replace("amqp://", &format!("amqp://{user}:{user}-secret@"))
    };
    let refused = sluice_queue(&at("worker"), &["purge", "myqueue"]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("403"),
        "{refused:?}"
    );
    assert_eq!(
        printed(&sluice_queue(&at("operator"), &["purge", "myqueue"])),
        "0"
    );
}

#[test]
fn rhea_purges_and_moves_dead_letters_back_with_a_dynamic_reply_queue() {
    let server = Server::start_config("manage-rhea", &space(), &[]);
    let sent = ok(&server, server.run(&["send", "myqueue", "2"]), "send");
    assert_eq!(sent["accepted"], 2);
    let purged = manage(&server, Peer::Rhea, "myqueue", "PURGE", &[]);
    assert_status(&purged, 200);
    assert_eq!(purged["body"]["count"], 2, "{purged}");
    assert_empty(&server, "myqueue");

    dead_letter_orders(&server, 2);
    let moved = manage(&server, Peer::Rhea, "mydlq", "MOVE", &["--max", "5"]);
    assert_status(&moved, 200);
    assert_eq!(moved["body"]["count"], 2, "{moved}");
    assert_eq!(receive(&server, "orders", 2), expected(2));
    assert_status(&manage(&server, Peer::Rhea, "nowhere", "MOVE", &[]), 404);
}

#[test]
fn a_purge_and_a_move_of_durable_messages_survive_a_crash() {
    let data = support::temp_dir("manage-durable");
    let data_dir = data.to_str().unwrap();
    let server = Server::start_config("manage-durable", &space(), &["--data-dir", data_dir]);
    for address in ["myqueue", "orders"] {
        let sent = ok(
            &server,
            server.run(&["send", address, "3", "--durable"]),
            "send durable messages",
        );
        assert_eq!(sent["accepted"], 3, "{sent}");
    }
    let rejected = ok(
        &server,
        server.run(&["receive", "orders", "3", "--outcome", "reject"]),
        "reject them into mydlq",
    );
    assert_eq!(rejected["received"], 3, "{rejected}");
    let purged = manage(&server, Peer::Proton, "myqueue", "PURGE", &[]);
    assert_eq!(purged["body"]["count"], 3, "{purged}");
    let moved = manage(&server, Peer::Proton, "mydlq", "MOVE", &["--max", "2"]);
    assert_eq!(moved["body"]["count"], 2, "{moved}");
    // Killed (SIGKILL, no shutdown): the answers waited for the journal.
    drop(server);

    let server = Server::start_config("manage-durable", &space(), &["--data-dir", data_dir]);
    let depth = |address: &str| {
        manage(&server, Peer::Proton, address, "READ", &[])["body"]["depth"].clone()
    };
    assert_eq!(depth("myqueue"), 0, "the purge held");
    assert_eq!(
        depth("orders"),
        2,
        "the moved messages are back at their origin"
    );
    assert_eq!(depth("mydlq"), 1, "and gone from the dead-letter queue");
    // What is left still knows where it came from: its annotation was journaled.
    let moved = manage(&server, Peer::Proton, "mydlq", "MOVE", &[]);
    assert_eq!(moved["body"]["count"], 1, "{moved}");
    assert_eq!(receive(&server, "orders", 3), expected(3));
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
}
