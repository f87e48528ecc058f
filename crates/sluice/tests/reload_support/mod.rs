//! What the hot-reload tests share: editing a running server's config folder the way an
//! operator (or a ConfigMap update) does, waiting for the broker to say it reloaded, reading
//! `/metrics` and `/status`, and the client runs that check what a reload changed.
//!
//! The HTTP GET is a few lines of its own (as in monitoring.rs), not `sluice status`'s client:
//! a black-box test should not share a bug with what it tests. Every wait is bounded by
//! [`WAIT`].
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{ADDRESS_SPACE, Outcome, Server};

/// How long an eventual state may take (a reload is due within about a second).
pub const WAIT: Duration = Duration::from_secs(10);

/// The log line of an applied reload.
pub const RELOADED: &str = "configuration reloaded";
/// The log line of a refused one.
pub const NOT_RELOADED: &str = "the configuration is not reloaded";

/// An Address document of space `myspace`: `address` of `kind` on `plan`.
pub fn address_doc(address: &str, kind: &str, plan: &str) -> String {
    format!(
        "---\napiVersion: enmasse.io/v1beta1\nkind: Address\nmetadata: {{name: \
         myspace.{address}}}\nspec: {{address: {address}, type: {kind}, plan: {plan}}}\n"
    )
}

/// A queue of the harness's space (plan `standard-small-queue`).
pub fn queue_doc(address: &str) -> String {
    address_doc(address, "queue", "standard-small-queue")
}

/// The harness's space ([`ADDRESS_SPACE`]) with these queues added.
pub fn space_with_queues(queues: &[&str]) -> String {
    let mut yaml = ADDRESS_SPACE.to_owned();
    for q in queues {
        yaml.push_str(&queue_doc(q));
    }
    yaml
}

/// Writes `contents` to `config/<name>` (sub-folders created) in one rename, so the watcher
/// never reads a half-written file: the temporary file is outside the watched folder.
pub fn write_config(server: &Server, name: &str, contents: &str) {
    let path = server.dir().join("config").join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let temp = server
        .dir()
        .join(format!(".edit-{}", name.replace('/', "-")));
    std::fs::write(&temp, contents).unwrap();
    std::fs::rename(&temp, &path).unwrap();
}

/// One HTTP/1.1 GET of `path` on the server's HTTP endpoint: the status code and the body.
pub fn get(server: &Server, path: &str) -> (u16, String) {
    let url = server
        .http_url
        .clone()
        .expect("the test server has no HTTP endpoint");
    crate::support::http_get(&url, path)
}

/// The server's `/metrics`.
pub fn metrics(server: &Server) -> String {
    let (code, body) = get(server, "/metrics");
    assert_eq!(code, 200, "GET /metrics: {body}");
    body
}

/// The value of the sample `name{labels}` in an exposition (label values unescaped only as
/// far as these tests need: plain names); `None` when there is none.
pub fn sample(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = match line.find('}') {
                Some(close) => (&line[..=close], line[close + 1..].trim()),
                None => line.split_once(' ')?,
            };
            let (metric, label_text) = match series.split_once('{') {
                Some((m, l)) => (m, l.trim_end_matches('}')),
                None => (series.trim(), ""),
            };
            if metric != name {
                return None;
            }
            let have: Vec<(&str, &str)> = label_text
                .split(',')
                .filter(|p| !p.is_empty())
                .filter_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    Some((k.trim(), v.trim().trim_matches('"')))
                })
                .collect();
            // The exact series: the same labels, no more.
            let same = have.len() == labels.len() && labels.iter().all(|l| have.contains(l));
            same.then(|| value.split_whitespace().next()?.parse().ok())
                .flatten()
        })
}

/// A counter or gauge without labels (0 when absent).
pub fn metric(server: &Server, name: &str) -> f64 {
    sample(&metrics(server), name, &[]).unwrap_or(0.0)
}

/// Waits until `/metrics` has `name{labels}` = `want` (`None`: no such series).
pub fn wait_metric(server: &Server, name: &str, labels: &[(&str, &str)], want: Option<f64>) {
    let deadline = Instant::now() + WAIT;
    loop {
        let exposition = metrics(server);
        let got = sample(&exposition, name, labels);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "after {WAIT:?}, {name}{labels:?} = {got:?}, want {want:?}\n/metrics:\n{exposition}\n\
             server stderr:\n{}",
            server.log()
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// The server's `/status` document.
pub fn status(server: &Server) -> Value {
    let (code, body) = get(server, "/status");
    assert_eq!(code, 200, "GET /status: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("/status is not JSON ({e}): {body}"))
}

/// `/status`'s entry for `address`, if it lists it.
pub fn status_entry(status: &Value, address: &str) -> Option<Value> {
    status["addresses"]
        .as_array()
        .unwrap_or_else(|| panic!("/status has no addresses array: {status:#}"))
        .iter()
        .find(|a| a["address"] == address)
        .cloned()
}

/// Waits until `check` accepts `/status` (it says what is wrong); the document it accepted.
pub fn wait_status(server: &Server, check: impl Fn(&Value) -> Result<(), String>) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let doc = status(server);
        match check(&doc) {
            Ok(()) => return doc,
            Err(wrong) => assert!(
                Instant::now() < deadline,
                "after {WAIT:?}: {wrong}\n/status: {doc:#}\nserver stderr:\n{}",
                server.log()
            ),
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until `/status` lists `address` with these field values.
pub fn wait_address(server: &Server, address: &str, want: &[(&str, Value)]) -> Value {
    wait_status(server, |s| {
        let entry = status_entry(s, address).ok_or_else(|| format!("no address {address}"))?;
        for (field, value) in want {
            if &entry[*field] != value {
                return Err(format!(
                    "{address}.{field} = {}, want {value}",
                    entry[*field]
                ));
            }
        }
        Ok(())
    })
}

/// Waits until `/status` no longer lists `address`.
pub fn wait_address_gone(server: &Server, address: &str) {
    wait_status(server, |s| match status_entry(s, address) {
        None => Ok(()),
        Some(e) => Err(format!("{address} is still listed: {e}")),
    });
}

/// Waits until the counter `name` (no labels) is at least `at_least`; its value then.
pub fn wait_counter(server: &Server, name: &str, at_least: f64) -> f64 {
    let deadline = Instant::now() + WAIT;
    loop {
        let value = metric(server, name);
        if value >= at_least {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "after {WAIT:?}, {name} = {value}, want at least {at_least}\nserver stderr:\n{}",
            server.log()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the log has `line` at least `count` times.
pub fn wait_log(server: &Server, line: &str, count: usize) {
    let deadline = Instant::now() + WAIT;
    while server.log().matches(line).count() < count {
        assert!(
            Instant::now() < deadline,
            "the server did not log {line:?} ({count}x) within {WAIT:?}:\n{}",
            server.log()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Does `edit` (a change in the config folder) and waits, without a SIGHUP, until the broker
/// has applied a new configuration: `sluice_config_reloads_total` went up and the log says
/// `configuration reloaded` once more; no refusal was logged meanwhile.
pub fn applied(server: &Server, edit: impl FnOnce()) {
    let before = metric(server, "sluice_config_reloads_total");
    let logged = server.log().matches(RELOADED).count();
    let refused = server.log().matches(NOT_RELOADED).count();
    edit();
    wait_counter(server, "sluice_config_reloads_total", before + 1.0);
    wait_log(server, RELOADED, logged + 1);
    assert_eq!(
        server.log().matches(NOT_RELOADED).count(),
        refused,
        "a valid configuration was refused:\n{}",
        server.log()
    );
}

/// Writes `yaml` as `config/space.yaml` and waits until it is applied ([`applied`]).
pub fn apply(server: &Server, yaml: &str) {
    applied(server, || write_config(server, "space.yaml", yaml));
}

/// Writes `yaml` as `config/space.yaml` and waits until the broker refused it: the log says
/// `the configuration is not reloaded` once more and `sluice_config_reload_failures_total`
/// went up, while `sluice_config_reloads_total` did not.
pub fn refuse(server: &Server, yaml: &str) {
    let applied = metric(server, "sluice_config_reloads_total");
    let before = metric(server, "sluice_config_reload_failures_total");
    let logged = server.log().matches(NOT_RELOADED).count();
    write_config(server, "space.yaml", yaml);
    wait_log(server, NOT_RELOADED, logged + 1);
    wait_counter(server, "sluice_config_reload_failures_total", before + 1.0);
    assert_eq!(
        metric(server, "sluice_config_reloads_total"),
        applied,
        "an invalid configuration counted as applied:\n{}",
        server.log()
    );
}

/// Asserts `outcome` is an `attach` the broker refused on the link with `amqp:not-found`.
pub fn assert_not_found(server: &Server, outcome: &Outcome, address: &str) {
    assert_eq!(
        outcome.code(),
        Some(3),
        "expected the attach to {address} to be refused: {outcome:?}\nserver stderr:\n{}",
        server.log()
    );
    assert_eq!(outcome.json["closed"], "link", "{}", outcome.json);
    assert_eq!(
        outcome.json["condition"], "amqp:not-found",
        "{}",
        outcome.json
    );
}

/// Waits until the broker serves AMQP (a sender attaches to `myqueue`). A test whose first
/// step is an edit or a signal does this first, so that what it checks is the reload, not how
/// soon after `listening on` the folder is watched (that is what
/// `a_change_made_as_soon_as_the_broker_listens_is_not_lost` in reload.rs checks).
pub fn wait_serving(server: &Server) {
    assert_attaches(server, "myqueue", "sender");
}

/// Attaches a `role` link to `address` and asserts the broker accepts it.
pub fn assert_attaches(server: &Server, address: &str, role: &str) {
    let outcome = server.run(&["attach", address, "--role", role]);
    assert_eq!(
        outcome.code(),
        Some(0),
        "a {role} on {address} should attach: {outcome:?}\nserver stderr:\n{}",
        server.log()
    );
}

/// Attaches a `role` link to `address` and asserts it is refused with `amqp:not-found`.
pub fn assert_attach_not_found(server: &Server, address: &str, role: &str) {
    let outcome = server.run(&["attach", address, "--role", role]);
    assert_not_found(server, &outcome, address);
}

/// Sends `count` messages to `address` and asserts every one was accepted.
pub fn send(server: &Server, address: &str, count: usize) {
    let outcome = server.run(&["send", address, &count.to_string()]);
    let json = crate::support::ok(server, outcome, &format!("send {count} to {address}"));
    assert_eq!(json["accepted"], count, "{json}");
}

/// Receives (and accepts) `count` messages from `address`; their bodies.
pub fn receive(server: &Server, address: &str, count: usize) -> Vec<String> {
    let outcome = server.run(&["receive", address, &count.to_string()]);
    let json = crate::support::ok(server, outcome, &format!("receive {count} from {address}"));
    crate::support::bodies(&json)
}

/// `msg-0` .. `msg-<count-1>`.
pub fn numbered(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("msg-{i}")).collect()
}

/// The config folder of `server`.
pub fn config_dir(server: &Server) -> std::path::PathBuf {
    server.dir().join("config")
}

/// Replaces `link` (a symlink or file) by a symlink to `target`, in one rename, as kubelet
/// does: the new link is made beside it under `temp`, then renamed over it.
pub fn swap_symlink(dir: &Path, link: &str, temp: &str, target: &str) {
    let temp_path = dir.join(temp);
    let _ = std::fs::remove_file(&temp_path);
    std::os::unix::fs::symlink(target, &temp_path).unwrap();
    std::fs::rename(&temp_path, dir.join(link)).unwrap();
}
