//! Black-box tests of hot reload: `sluice serve --config DIR` watches DIR (recursively, a
//! ConfigMap's `..data` symlink swap included) and reloads on SIGHUP; a valid configuration is
//! applied in place (new addresses served, removed ones detach their links with
//! `amqp:not-found` while their connections stay, stored queues with messages kept for
//! `--removed-address-grace`, users' new rights enforced), an invalid one is refused whole.
//! Seen as a user sees it: Qpid Proton clients (`tests/interop/proton_client.py`), the log,
//! `/metrics` and `/status`. The limits a reload applies are in `reload_limits.rs`.
//!
//! Edits are written to the folder in one rename and waited for by the reload counter, never
//! by a fixed sleep; every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod reload_support;
mod support;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reload_support::*;
use serde_json::{Value, json};
use support::*;

/// The detach description of a link whose address left the configuration.
fn removed(address: &str) -> String {
    format!("the address '{address}' was removed from the configuration")
}

/// The harness's space without the Address documents of `addresses`.
fn space_without(addresses: &[&str]) -> String {
    let docs: Vec<&str> = ADDRESS_SPACE
        .split("\n---\n")
        .filter(|doc| {
            !addresses.iter().any(|a| {
                doc.contains("kind: Address\n") && doc.contains(&format!("\n  address: {a}\n"))
            })
        })
        .collect();
    let yaml = docs.join("\n---\n");
    assert_eq!(
        ADDRESS_SPACE.matches("kind: Address\n").count() - addresses.len(),
        yaml.matches("kind: Address\n").count(),
        "every address named must be removed once"
    );
    yaml
}

/// Asserts a `watch` report: the links on `address` were detached with `amqp:not-found` and
/// the removal's description, the others were not.
fn assert_detached_not_found(report: &Value, addresses: &[&str]) {
    for link in report["links"].as_array().unwrap() {
        let address = link["address"].as_str().unwrap();
        if addresses.contains(&address) {
            assert_eq!(link["detached"], true, "{link} in {report}");
            assert_eq!(link["condition"], "amqp:not-found", "{link}");
            assert_eq!(link["description"], removed(address), "{link}");
        } else {
            assert_eq!(link["detached"], false, "{link} in {report}");
        }
    }
}

#[test]
fn sighup_reloads_even_an_unchanged_configuration() {
    let server = Server::start("reload-sighup");
    wait_serving(&server);
    wait_metric(&server, "sluice_config_reloads_total", &[], Some(0.0));
    server.reload();
    wait_counter(&server, "sluice_config_reloads_total", 1.0);
    wait_log(&server, RELOADED, 1);
    assert_eq!(metric(&server, "sluice_config_reload_failures_total"), 0.0);
    send(&server, "myqueue", 1);
    assert_eq!(receive(&server, "myqueue", 1), numbered(1));
}

#[test]
fn a_change_made_as_soon_as_the_broker_listens_is_not_lost() {
    // `Server::start_config` returns once the broker prints `listening on`; the edit follows
    // at once. A broker that reads its configuration, then starts watching, misses an edit
    // made in between, and never applies it (it is not even a pending event). Several
    // servers, since one may win the race by chance.
    let servers: Vec<Server> = (0..10)
        .map(|_| {
            let server = Server::start("reload-early");
            write_config(&server, "space.yaml", &space_with_queues(&["early"]));
            server
        })
        .collect();
    for server in &servers {
        wait_counter(server, "sluice_config_reloads_total", 1.0);
        assert_attaches(server, "early", "sender");
    }
}

#[test]
fn a_queue_added_to_the_watched_folder_is_served_and_leaves_when_removed() {
    let server = Server::start("reload-add");
    wait_metric(&server, "sluice_addresses", &[], Some(7.0));
    assert_attach_not_found(&server, "newqueue", "sender");

    // No SIGHUP: the watcher sees the file change.
    apply(&server, &space_with_queues(&["newqueue"]));
    wait_metric(&server, "sluice_addresses", &[], Some(8.0));
    wait_address(
        &server,
        "newqueue",
        &[
            ("phase", "Active".into()),
            ("isReady", true.into()),
            ("type", "queue".into()),
        ],
    );
    send(&server, "newqueue", 3);
    assert_eq!(receive(&server, "newqueue", 3), numbered(3));
    // The addresses that were there serve as before.
    send(&server, "myqueue", 1);
    assert_eq!(receive(&server, "myqueue", 1), numbered(1));

    // Removed again (empty): gone from the status and the count, and from new attaches.
    apply(&server, ADDRESS_SPACE);
    wait_address_gone(&server, "newqueue");
    wait_metric(&server, "sluice_addresses", &[], Some(7.0));
    assert_attach_not_found(&server, "newqueue", "receiver");
    assert_attach_not_found(&server, "newqueue", "sender");
}

#[test]
fn a_file_in_a_subfolder_is_read_and_its_removal_too() {
    let server = Server::start("reload-subfolder");
    wait_serving(&server);
    applied(&server, || {
        write_config(&server, "team-a/addresses.yaml", &queue_doc("deepqueue"));
    });
    wait_address(&server, "deepqueue", &[("phase", "Active".into())]);
    send(&server, "deepqueue", 2);
    assert_eq!(receive(&server, "deepqueue", 2), numbered(2));

    applied(&server, || {
        std::fs::remove_file(config_dir(&server).join("team-a/addresses.yaml")).unwrap();
    });
    wait_address_gone(&server, "deepqueue");
    assert_attach_not_found(&server, "deepqueue", "sender");
}

#[test]
fn an_invalid_configuration_is_refused_whole_and_the_old_one_keeps_serving() {
    let server = Server::start("reload-invalid");
    wait_serving(&server);
    // A new queue, and an address on a plan that does not exist: nothing of it applies.
    let broken = format!(
        "{}{}",
        space_with_queues(&["newqueue"]),
        address_doc("broken", "queue", "no-such-plan")
    );
    refuse(&server, &broken);
    assert_attach_not_found(&server, "newqueue", "sender");
    wait_metric(&server, "sluice_addresses", &[], Some(7.0));
    assert!(status_entry(&status(&server), "newqueue").is_none());
    send(&server, "myqueue", 1);
    assert_eq!(receive(&server, "myqueue", 1), numbered(1));

    // YAML that does not parse, in a second file: refused too.
    let failures = metric(&server, "sluice_config_reload_failures_total");
    let logged = server.log().matches(NOT_RELOADED).count();
    write_config(&server, "broken.yaml", "kind: [Address\n  spec: {\n");
    wait_log(&server, NOT_RELOADED, logged + 1);
    wait_counter(
        &server,
        "sluice_config_reload_failures_total",
        failures + 1.0,
    );
    // space.yaml made valid while broken.yaml is there: the whole folder is still refused.
    let failures = metric(&server, "sluice_config_reload_failures_total");
    let logged = server.log().matches(NOT_RELOADED).count();
    write_config(&server, "space.yaml", &space_with_queues(&["newqueue"]));
    wait_log(&server, NOT_RELOADED, logged + 1);
    wait_counter(
        &server,
        "sluice_config_reload_failures_total",
        failures + 1.0,
    );
    assert_eq!(metric(&server, "sluice_config_reloads_total"), 0.0);
    assert_attach_not_found(&server, "newqueue", "sender");

    // Fixed: the same queue is served.
    applied(&server, || {
        std::fs::remove_file(config_dir(&server).join("broken.yaml")).unwrap();
    });
    wait_address(&server, "newqueue", &[("phase", "Active".into())]);
    send(&server, "newqueue", 1);
    assert_eq!(receive(&server, "newqueue", 1), numbered(1));
}

#[test]
fn a_configmap_style_symlink_swap_is_picked_up() {
    let server = Server::start("reload-configmap");
    wait_serving(&server);
    let dir = config_dir(&server);
    // The layout kubelet mounts: space.yaml -> ..data/space.yaml, ..data -> ..2026_x.
    applied(&server, || {
        std::fs::create_dir(dir.join("..2026_x")).unwrap();
        std::fs::write(
            dir.join("..2026_x/space.yaml"),
            space_with_queues(&["first"]),
        )
        .unwrap();
        swap_symlink(&dir, "..data", "..data_tmp", "..2026_x");
        swap_symlink(&dir, "space.yaml", ".space.yaml.tmp", "..data/space.yaml");
    });
    send(&server, "first", 1);
    assert_eq!(receive(&server, "first", 1), numbered(1));

    // An update: a new timestamped folder, a new `..data_tmp` renamed over `..data`, the old
    // folder removed. space.yaml itself is not touched.
    applied(&server, || {
        std::fs::create_dir(dir.join("..2026_y")).unwrap();
        std::fs::write(
            dir.join("..2026_y/space.yaml"),
            space_with_queues(&["second"]),
        )
        .unwrap();
        swap_symlink(&dir, "..data", "..data_tmp", "..2026_y");
        std::fs::remove_dir_all(dir.join("..2026_x")).unwrap();
    });
    send(&server, "second", 1);
    assert_eq!(receive(&server, "second", 1), numbered(1));
    assert_attach_not_found(&server, "first", "sender");
    // The hidden folders are not read as configuration of their own: one space, once.
    wait_metric(&server, "sluice_addresses", &[], Some(8.0));
}

#[test]
fn a_removed_queue_detaches_its_links_and_the_connection_stays() {
    let server = Server::start_config("reload-detach", &space_with_queues(&["gone"]), &[]);
    let mut watch = server.spawn(&[
        "watch",
        "--sender",
        "gone",
        "--receiver",
        "gone",
        "--keep",
        "myqueue",
        "--detached",
        "2",
    ]);
    watch.wait_ready(&server);
    wait_metric(&server, "sluice_connections", &[], Some(1.0));

    apply(&server, ADDRESS_SPACE);
    watch.wait_line(&server, "detached");
    // The connection is still there: the one client, nothing closed.
    wait_metric(&server, "sluice_connections", &[], Some(1.0));
    // The receiver on myqueue, on that same connection, still receives.
    send(&server, "myqueue", 1);
    let report = ok(&server, watch.finish(&server), "watch");
    assert_detached_not_found(&report, &["gone"]);
    assert_eq!(report["kept"], "msg-0", "{report}");
    assert_eq!(report["connection_open"], true, "{report}");
    wait_address_gone(&server, "gone");
    assert_attach_not_found(&server, "gone", "receiver");
}

#[test]
fn removed_topic_anycast_and_multicast_addresses_detach_their_links() {
    let server = Server::start("reload-detach-routed");
    let mut watch = server.spawn(&[
        "watch",
        "--sender",
        "mytopic",
        "--receiver",
        "mytopic",
        "--sender",
        "myanycast",
        "--receiver",
        "myanycast",
        "--sender",
        "mymulticast",
        "--receiver",
        "mymulticast",
        "--receiver",
        "mysub",
        "--keep",
        "myqueue",
        "--detached",
        "7",
    ]);
    watch.wait_ready(&server);
    apply(
        &server,
        &space_without(&["mytopic", "mysub", "myanycast", "mymulticast"]),
    );
    watch.wait_line(&server, "detached");
    send(&server, "myqueue", 1);
    let report = ok(&server, watch.finish(&server), "watch");
    assert_detached_not_found(&report, &["mytopic", "mysub", "myanycast", "mymulticast"]);
    assert_eq!(report["kept"], "msg-0", "{report}");
    assert_eq!(report["connection_open"], true, "{report}");
    wait_metric(&server, "sluice_addresses", &[], Some(3.0));
}

#[test]
fn a_removed_queue_with_messages_is_kept_and_served_again_when_it_returns() {
    let server = Server::start_config("reload-retire", &space_with_queues(&["keepq"]), &[]);
    send(&server, "keepq", 3);
    apply(&server, ADDRESS_SPACE);
    wait_address(
        &server,
        "keepq",
        &[("phase", "Terminating".into()), ("isReady", false.into())],
    );
    wait_metric(&server, "sluice_addresses", &[], Some(7.0));
    assert_attach_not_found(&server, "keepq", "receiver");
    assert_attach_not_found(&server, "keepq", "sender");

    // Another reload that leaves it out: still kept, still listed.
    apply(&server, &space_with_queues(&["other"]));
    wait_address(
        &server,
        "keepq",
        &[("phase", "Terminating".into()), ("isReady", false.into())],
    );
    assert_attach_not_found(&server, "keepq", "receiver");

    // Configured again within the grace: its messages are there.
    apply(&server, &space_with_queues(&["keepq"]));
    wait_address(
        &server,
        "keepq",
        &[("phase", "Active".into()), ("isReady", true.into())],
    );
    assert_eq!(receive(&server, "keepq", 3), numbered(3));
    assert_empty(&server, "keepq");
}

#[test]
fn after_the_grace_a_removed_queue_comes_back_empty() {
    let server = Server::start_config(
        "reload-grace",
        &space_with_queues(&["keepq"]),
        &["--removed-address-grace", "1s"],
    );
    send(&server, "keepq", 3);
    apply(&server, ADDRESS_SPACE);
    assert_attach_not_found(&server, "keepq", "receiver");
    // The broker logs when the grace ended and the messages went.
    wait_log(&server, "the grace period of a removed address ended", 1);
    apply(&server, &space_with_queues(&["keepq"]));
    assert_empty(&server, "keepq");
    // The queue itself works.
    send(&server, "keepq", 1);
    assert_eq!(receive(&server, "keepq", 1), numbered(1));
}

#[test]
fn the_grace_takes_seconds_and_minutes() {
    for grace in ["2s", "1m"] {
        let server = Server::start_config(
            "reload-grace-units",
            &space_with_queues(&["keepq"]),
            &["--removed-address-grace", grace],
        );
        send(&server, "keepq", 1);
        apply(&server, ADDRESS_SPACE);
        wait_address(&server, "keepq", &[("phase", "Terminating".into())]);
        apply(&server, &space_with_queues(&["keepq"]));
        assert_eq!(receive(&server, "keepq", 1), numbered(1), "grace {grace}");
    }
}

#[test]
fn kept_messages_of_a_removed_queue_survive_a_restart_with_a_data_dir() {
    let data = DataDir(temp_dir("reload-data"));
    let data_arg = data.0.to_str().unwrap();
    {
        let mut first = Server::start_config(
            "reload-restart-1",
            &space_with_queues(&["keepq"]),
            &["--data-dir", data_arg],
        );
        let filled = ok(
            &first,
            first.run(&["fill", "keepq", "3", "--size", "100", "--durable"]),
            "fill keepq",
        );
        assert_eq!(filled["accepted"], 3, "{filled}");
        apply(&first, ADDRESS_SPACE);
        wait_address(&first, "keepq", &[("phase", "Terminating".into())]);
        assert!(
            first
                .terminate(std::time::Duration::from_secs(20))
                .is_some()
        );
    }
    // Restarted without the address: the messages wait for it, as at the first broker.
    let second = Server::start_config("reload-restart-2", ADDRESS_SPACE, &["--data-dir", data_arg]);
    wait_address(
        &second,
        "keepq",
        &[("phase", "Terminating".into()), ("isReady", false.into())],
    );
    assert_attach_not_found(&second, "keepq", "receiver");
    apply(&second, &space_with_queues(&["keepq"]));
    // A shorter client timeout than the harness's, to keep a failure within the test's bound.
    let received = ok(
        &second,
        second
            .spawn_at(&second.url, &["receive", "keepq", "3"], "10")
            .finish(&second),
        "receive the kept messages",
    );
    assert_eq!(received["received"], 3, "{received}");
    let sizes: Vec<&Value> = received["bodies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| &b["size"])
        .collect();
    assert_eq!(sizes, vec![&json!(100); 3], "{received}");
}

/// A data directory shared by two servers in turn; removed at the end, pass or fail.
struct DataDir(std::path::PathBuf);

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A password MessagingUser of `myspace` with `rules` (address list, operation list).
fn user(name: &str, password: &str, rules: &[(&str, &str)]) -> String {
    let mut yaml = format!(
        "---\napiVersion: user.enmasse.io/v1beta1\nkind: MessagingUser\nmetadata: {{name: \
         myspace.{name}}}\nspec:\n  username: {name}\n  authentication: {{type: password, \
         password: {}}}\n  authorization:\n",
        STANDARD.encode(password)
    );
    for (addresses, operations) in rules {
        yaml.push_str(&format!(
            "  - {{addresses: [{addresses}], operations: [{operations}]}}\n"
        ));
    }
    yaml
}

/// The harness's space under the `standard` authentication service, with `users`.
fn standard_space(users: &str) -> String {
    let space = ADDRESS_SPACE
        .replace(
            "name: none-authservice\nspec:\n  type: none",
            "name: standard-authservice\nspec:\n  type: standard",
        )
        .replace(
            "name: none-authservice\n---",
            "name: standard-authservice\n---",
        );
    assert!(space.contains("type: standard\n---") && !space.contains("none-authservice"));
    format!("{space}{users}")
}

/// A Proton run as `name` (password `<name>-secret`).
fn as_user(name: &str, args: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    all.extend([
        "--user".into(),
        name.into(),
        "--password".into(),
        format!("{name}-secret"),
    ]);
    all
}

fn run_as(server: &Server, name: &str, args: &[&str]) -> Outcome {
    let all = as_user(name, args);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    server.run(&all)
}

fn spawn_as(server: &Server, name: &str, args: &[&str]) -> Client {
    let all = as_user(name, args);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    server.spawn(&all)
}

/// Asserts the link in a `watch` report was detached with `amqp:unauthorized-access`.
fn assert_lost_right(report: &Value, description: &str) {
    let link = &report["links"][0];
    assert_eq!(link["detached"], true, "{report}");
    assert_eq!(link["condition"], "amqp:unauthorized-access", "{report}");
    assert_eq!(link["description"], description, "{report}");
}

#[test]
fn changed_rights_detach_the_links_that_lost_them_and_rule_new_attaches() {
    let before = [
        user("alice", "alice-secret", &[("myqueue", "send, recv")]),
        user("bob", "bob-secret", &[("myqueue", "recv")]),
        user("carol", "carol-secret", &[("myqueue", "send")]),
    ]
    .concat();
    let server = Server::start_config(
        "reload-rights",
        &standard_space(&before),
        &[
            "--danger-plain-without-tls",
            "--auth-failure-delay-ms",
            "50",
        ],
    );
    let mut bob = spawn_as(
        &server,
        "bob",
        &["watch", "--receiver", "myqueue", "--detached", "1"],
    );
    let mut carol = spawn_as(
        &server,
        "carol",
        &["watch", "--sender", "myqueue", "--detached", "1"],
    );
    let mut alice = spawn_as(
        &server,
        "alice",
        &[
            "watch",
            "--sender",
            "myqueue",
            "--keep",
            "myqueue",
            "--detached",
            "1",
        ],
    );
    for client in [&mut bob, &mut carol, &mut alice] {
        client.wait_ready(&server);
    }

    // alice keeps only recv, bob may now only send, carol only to mytopic; dave is new.
    let after = [
        user("alice", "alice-secret", &[("myqueue", "recv")]),
        user("bob", "bob-secret", &[("myqueue", "send")]),
        user("carol", "carol-secret", &[("mytopic", "send")]),
        user("dave", "dave-secret", &[("myqueue", "send, recv")]),
    ]
    .concat();
    apply(&server, &standard_space(&after));
    bob.wait_line(&server, "detached");
    carol.wait_line(&server, "detached");
    alice.wait_line(&server, "detached");
    // bob's new right: he sends, and alice's receiver (which kept its right) gets it.
    let sent = ok(
        &server,
        run_as(&server, "bob", &["send", "myqueue", "1"]),
        "bob sends",
    );
    assert_eq!(sent["accepted"], 1, "{sent}");

    let report = ok(&server, bob.finish(&server), "bob's watch");
    assert_lost_right(&report, "user 'bob' may not receive from 'myqueue'");
    assert_eq!(report["connection_open"], true, "{report}");
    let report = ok(&server, carol.finish(&server), "carol's watch");
    assert_lost_right(&report, "user 'carol' may not send to 'myqueue'");
    let report = ok(&server, alice.finish(&server), "alice's watch");
    assert_lost_right(&report, "user 'alice' may not send to 'myqueue'");
    assert_eq!(report["kept"], "msg-0", "{report}");

    // New attaches follow the new rights.
    let refused = run_as(&server, "bob", &["attach", "myqueue", "--role", "receiver"]);
    assert_eq!(refused.code(), Some(3), "{refused:?}");
    assert_eq!(
        refused.json["condition"], "amqp:unauthorized-access",
        "{}",
        refused.json
    );
    let refused = run_as(&server, "carol", &["attach", "myqueue", "--role", "sender"]);
    assert_eq!(
        refused.json["condition"], "amqp:unauthorized-access",
        "{}",
        refused.json
    );
    for (name, address, role) in [
        ("carol", "mytopic", "sender"),
        ("dave", "myqueue", "receiver"),
        ("dave", "myqueue", "sender"),
    ] {
        let attached = run_as(&server, name, &["attach", address, "--role", role]);
        assert_eq!(
            attached.code(),
            Some(0),
            "{name} may now attach a {role} to {address}: {attached:?}\nserver stderr:\n{}",
            server.log()
        );
    }
}

#[test]
fn no_connection_is_dropped_by_reloads() {
    let server = Server::start("reload-keeps-connections");
    let mut receiver = server.spawn(&["receive", "myqueue", "1"]);
    receiver.wait_ready(&server);
    let mut holder = server.spawn_at(&server.url, &["hold", "mytopic", "1"], "60");
    holder.wait_ready(&server);
    wait_metric(&server, "sluice_connections", &[], Some(2.0));
    let opened = metric(&server, "sluice_connections_opened_total");

    let invalid = format!(
        "{ADDRESS_SPACE}{}",
        address_doc("x", "queue", "no-such-plan")
    );
    apply(&server, &space_with_queues(&["q1"]));
    wait_metric(&server, "sluice_connections", &[], Some(2.0));
    apply(&server, &space_with_queues(&["q2"]));
    wait_metric(&server, "sluice_connections", &[], Some(2.0));
    refuse(&server, &invalid);
    wait_metric(&server, "sluice_connections", &[], Some(2.0));
    apply(&server, ADDRESS_SPACE);
    let reloads = metric(&server, "sluice_config_reloads_total");
    server.reload();
    wait_counter(&server, "sluice_config_reloads_total", reloads + 1.0);
    wait_metric(&server, "sluice_connections", &[], Some(2.0));
    // No connection was opened meanwhile (none was dropped and opened again).
    assert_eq!(metric(&server, "sluice_connections_opened_total"), opened);

    // Both still receive on the connections they opened before the reloads.
    send(&server, "myqueue", 1);
    let received = ok(&server, receiver.finish(&server), "the receiver");
    assert_eq!(bodies(&received), numbered(1));
    send(&server, "mytopic", 1);
    holder.wait_line(&server, "held");
    let held = holder.kill();
    assert_eq!(held.json["held"], 1, "{held:?}");
}
