//! The journal seen from outside, with the real binary: a paged backlog that outlives a
//! restart in order, a corrupt journal refused with its position, and a real full disk (a
//! small tmpfs) that withholds `accepted` until space is freed and loses nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use fe2o3_amqp::types::messaging::{AmqpValue, Header, Message, Outcome};
use fe2o3_amqp::{Connection, Receiver, Sender, Session};
use support::{Server, temp_dir};

const QUEUE: &str = "myqueue";
const WAIT: Duration = Duration::from_secs(30);

fn message(body: String, durable: bool) -> Message<AmqpValue<String>> {
    Message::builder()
        .header(Header {
            durable,
            ..Default::default()
        })
        .value(body)
        .build()
}

fn start(data: &Path, extra: &[&str]) -> Server {
    let mut args = vec!["--data-dir", data.to_str().unwrap()];
    args.extend_from_slice(extra);
    Server::start_with("journal", &args)
}

/// Sends `bodies` (with their durability) one at a time, each waiting for `accepted`.
async fn send_all(url: &str, bodies: &[(String, bool)]) {
    let mut connection = Connection::open("journal-p", url).await.unwrap();
    let mut session = Session::begin(&mut connection).await.unwrap();
    let mut sender = Sender::attach(&mut session, "p", QUEUE).await.unwrap();
    for (body, durable) in bodies {
        let outcome = tokio::time::timeout(WAIT, sender.send(message(body.clone(), *durable)))
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(matches!(outcome, Outcome::Accepted(_)), "{outcome:?}");
    }
    sender.close().await.unwrap();
    session.end().await.unwrap();
    connection.close().await.unwrap();
}

/// Receives and accepts up to `max` messages, stopping after a quiet second.
async fn receive(url: &str, max: usize) -> Vec<String> {
    let mut connection = Connection::open("journal-c", url).await.unwrap();
    let mut session = Session::begin(&mut connection).await.unwrap();
    let mut receiver = Receiver::attach(&mut session, "c", QUEUE).await.unwrap();
    let mut got = Vec::new();
    while got.len() < max {
        let quiet = Duration::from_secs(if got.is_empty() { 10 } else { 1 });
        let Ok(delivery) = tokio::time::timeout(quiet, receiver.recv::<String>()).await else {
            break;
        };
        let delivery = delivery.unwrap();
        got.push(delivery.body().clone());
        receiver.accept(&delivery).await.unwrap();
    }
    receiver.close().await.unwrap();
    session.end().await.unwrap();
    connection.close().await.unwrap();
    got
}

/// The log without its colours.
fn plain(log: &str) -> String {
    let mut out = String::new();
    let mut escape = false;
    for c in log.chars() {
        match (escape, c) {
            (_, '\x1b') => escape = true,
            (true, 'm') => escape = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}

fn stop(server: &mut Server) {
    let status = server
        .terminate(Duration::from_secs(20))
        .expect("stops on SIGTERM");
    assert!(status.success(), "{status:?}\n{}", server.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paged_backlog_is_delivered_in_order_across_a_restart() {
    let data = temp_dir("journal-paged");
    // A 4 MiB budget gives each queue 1 MiB in memory: most of 3 MiB of messages is paged.
    let mut server = start(&data, &["--max-memory", "4Mi"]);
    let pad = "x".repeat(1000);
    let bodies: Vec<(String, bool)> = (0..3000)
        .map(|n| (format!("{n:05} {pad}"), n % 3 != 0))
        .collect();
    send_all(&server.url, &bodies).await;
    let first = receive(&server.url, 100).await;
    let want: Vec<String> = bodies.iter().map(|(b, _)| b.clone()).collect();
    assert_eq!(first, want[..100], "in order before the restart");
    stop(&mut server);

    let mut server = start(&data, &["--max-memory", "4Mi"]);
    let rest = receive(&server.url, 5000).await;
    let log = plain(&server.log());
    let on_disk = log
        .split("left_on_disk=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok());
    assert!(
        on_disk.is_some_and(|n| n > 0),
        "recovery left some on disk:\n{log}"
    );
    let durable: Vec<String> = bodies[100..]
        .iter()
        .filter(|(_, d)| *d)
        .map(|(b, _)| b.clone())
        .collect();
    assert_eq!(
        rest.len(),
        durable.len(),
        "every durable one, none of the others"
    );
    assert!(rest == durable, "in order after the restart");
    stop(&mut server);
    let _ = std::fs::remove_dir_all(&data);
}

/// The journal's segment files, oldest first.
fn segments(data: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data.join("journal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "journal"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_corrupt_in_the_middle_is_refused_with_its_position() {
    let data = temp_dir("journal-corrupt");
    let mut server = start(&data, &[]);
    let bodies: Vec<(String, bool)> = (0..50).map(|n| (format!("m{n}"), true)).collect();
    send_all(&server.url, &bodies).await;
    stop(&mut server);
    let files = segments(&data);
    let first = files.first().expect("a segment");
    let mut bytes = std::fs::read(first).unwrap();
    // Inside the tenth record or so: well before the end, with valid records after it.
    let at = bytes.len() / 3;
    bytes[at] ^= 0x40;
    std::fs::write(first, bytes).unwrap();
    let dir = temp_dir("journal-corrupt-config");
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--amqp", "127.0.0.1:0", "--no-http", "--data-dir"])
        .arg(&data)
        .env("XDG_DATA_HOME", &dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "started on a corrupt journal:\n{stderr}"
    );
    let name = first.file_stem().unwrap().to_string_lossy().to_string();
    assert!(
        stderr.contains(&name) && stderr.contains("corrupt at byte"),
        "names the segment and the byte:\n{stderr}"
    );
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A small tmpfs, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = temp_dir("journal-tmpfs");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_withholds_accepted_until_space_is_freed_and_loses_nothing() {
    let Some(disk) = Tmpfs::mount("4m") else {
        eprintln!("skipped: this machine does not let the test mount a tmpfs (needs root)");
        return;
    };
    let data = disk.0.join("data");
    let filler = disk.0.join("filler");
    let mut server = start(&data, &[]);
    // Leave about 200 KiB free.
    std::fs::write(&filler, vec![0u8; 4 * 1024 * 1024 - 200 * 1024 - 64 * 1024]).ok();
    let mut connection = Connection::open("journal-full", server.url.as_str())
        .await
        .unwrap();
    let mut session = Session::begin(&mut connection).await.unwrap();
    let mut sender = Sender::attach(&mut session, "p", QUEUE).await.unwrap();
    let pad = "y".repeat(8 * 1024);
    let mut accepted = Vec::new();
    let mut held = None;
    for n in 0..200 {
        let body = format!("{n:04} {pad}");
        let send = sender.send(message(body.clone(), true));
        match tokio::time::timeout(Duration::from_secs(3), send).await {
            Ok(Ok(Outcome::Accepted(_))) => accepted.push(body),
            Ok(other) => panic!("{other:?}"),
            Err(_) => {
                held = Some(body);
                break;
            }
        }
    }
    let held = held.expect("the disk filled up before 200 messages of 8 KiB");
    assert!(!accepted.is_empty());
    assert!(server.is_running(), "the broker stays up on a full disk");
    assert!(server.log().contains("disk is full"), "{}", server.log());
    // Space again: the held message is written and accepted (it is sent again, as the
    // timed-out send was given up by the client library).
    std::fs::remove_file(&filler).unwrap();
    let again = tokio::time::timeout(WAIT, sender.send(message(held.clone(), true)))
        .await
        .expect("accepted once space is freed")
        .unwrap();
    assert!(matches!(again, Outcome::Accepted(_)), "{again:?}");
    drop(sender);
    drop(session);
    drop(connection);
    stop(&mut server);
    let mut server = start(&data, &[]);
    let got = receive(&server.url, 1000).await;
    for body in &accepted {
        assert!(got.contains(body), "an accepted message was lost");
    }
    assert!(got.contains(&held));
    stop(&mut server);
}

/// Waits (bounded) until the server has logged `line`.
async fn wait_log(server: &Server, line: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    while !plain(&server.log()).contains(line) {
        assert!(
            std::time::Instant::now() < deadline,
            "no {line:?} in the log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The harness's space without `myqueue` (renamed `otherqueue`).
fn space_without_myqueue() -> String {
    support::ADDRESS_SPACE.replace(
        "name: myspace.myqueue\nspec:\n  address: myqueue",
        "name: myspace.otherqueue\nspec:\n  address: otherqueue",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journaled_messages_of_an_address_no_longer_configured_wait_for_it_to_come_back() {
    let data = temp_dir("journal-unconfigured");
    let mut server = start(&data, &[]);
    let bodies: Vec<(String, bool)> = (0..5).map(|n| (format!("kept {n}"), true)).collect();
    send_all(&server.url, &bodies).await;
    stop(&mut server);

    let without = space_without_myqueue();
    assert_ne!(without, support::ADDRESS_SPACE);
    let mut server = Server::start_config(
        "journal-unconfigured",
        &without,
        &["--data-dir", data.to_str().unwrap()],
    );
    wait_log(&server, "does not name: they are kept for the grace period").await;
    // Configured again (the watched folder changes): the same messages, in order.
    let config = server.dir().join("config/space.yaml");
    std::fs::write(&config, support::ADDRESS_SPACE).unwrap();
    wait_log(&server, "configuration reloaded").await;
    let got = receive(&server.url, 10).await;
    let want: Vec<String> = bodies.into_iter().map(|(b, _)| b).collect();
    assert_eq!(got, want);
    stop(&mut server);
    let _ = std::fs::remove_dir_all(&data);
}
