//! Duplicate detection with the real binary: a message sent again with the same message-id
//! is accepted both times and stored once; with `--data-dir` the window outlives a `kill -9`,
//! so a producer's retry after the crash is still not stored twice; after the window, the
//! same id is stored again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::path::Path;
use std::time::Duration;

use fe2o3_amqp::types::messaging::{AmqpValue, Header, Message, Outcome, Properties};
use fe2o3_amqp::{Connection, Receiver, Sender, Session};
use support::{ADDRESS_SPACE, Server, temp_dir};

const WAIT: Duration = Duration::from_secs(30);
/// The window of `dedup-short`.
const SHORT_WINDOW: Duration = Duration::from_millis(1500);

/// The test space with two queues that detect duplicates: `dedup` (a 10 minute window) and
/// `dedup-short` (1.5 s).
fn space() -> String {
    let queue = |name: &str, window: &str| {
        format!(
            "---\napiVersion: enmasse.io/v1beta1\nkind: Address\nmetadata:\n  name: myspace.{name}\nspec:\n  address: {name}\n  type: queue\n  plan: standard-small-queue\n  duplicateDetection:\n    window: {window}\n    maximumIds: 1000\n"
        )
    };
    format!(
        "{ADDRESS_SPACE}{}{}",
        queue("dedup", "10m"),
        queue("dedup-short", "1500ms")
    )
}

fn start(data: &Path) -> Server {
    Server::start_config(
        "duplicates",
        &space(),
        &["--data-dir", data.to_str().unwrap()],
    )
}

fn message(body: &str, id: &str) -> Message<AmqpValue<String>> {
    Message::builder()
        .header(Header {
            durable: true,
            ..Default::default()
        })
        .properties(Properties::builder().message_id(id.to_string()).build())
        .value(body.to_string())
        .build()
}

/// Sends each `(body, message-id)` to `address`, one at a time; asserts each is accepted.
async fn send_all(url: &str, address: &str, messages: &[(&str, &str)]) {
    let mut connection = Connection::open("dup-p", url).await.unwrap();
    let mut session = Session::begin(&mut connection).await.unwrap();
    let mut sender = Sender::attach(&mut session, "p", address).await.unwrap();
    for (body, id) in messages {
        let outcome = tokio::time::timeout(WAIT, sender.send(message(body, id)))
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(
            matches!(outcome, Outcome::Accepted(_)),
            "{body}: {outcome:?}"
        );
    }
    sender.close().await.unwrap();
    session.end().await.unwrap();
    connection.close().await.unwrap();
}

/// Takes and accepts everything in `address`, stopping after a quiet second.
async fn drain(url: &str, address: &str) -> Vec<String> {
    let mut connection = Connection::open("dup-c", url).await.unwrap();
    let mut session = Session::begin(&mut connection).await.unwrap();
    let mut receiver = Receiver::attach(&mut session, "c", address).await.unwrap();
    let mut got = Vec::new();
    while let Ok(delivery) =
        tokio::time::timeout(Duration::from_secs(1), receiver.recv::<String>()).await
    {
        let delivery = delivery.unwrap();
        got.push(delivery.body().clone());
        receiver.accept(&delivery).await.unwrap();
    }
    receiver.close().await.unwrap();
    session.end().await.unwrap();
    connection.close().await.unwrap();
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_message_id_is_accepted_and_stored_once_even_across_a_kill_9() {
    let data = temp_dir("duplicates-data").join("journal");
    let server = start(&data);
    send_all(
        &server.url,
        "dedup",
        &[
            ("first", "order-1"),
            ("retry", "order-1"),
            ("second", "order-2"),
        ],
    )
    .await;
    // A queue without detection stores both.
    send_all(
        &server.url,
        "myqueue",
        &[("one", "order-1"), ("two", "order-1")],
    )
    .await;
    assert_eq!(drain(&server.url, "myqueue").await, vec!["one", "two"]);
    drop(server); // SIGKILL

    // The producer never heard (say) and retries both after the restart: still one each. The
    // first was consumed before the crash, too: its id is remembered all the same.
    let server = start(&data);
    send_all(
        &server.url,
        "dedup",
        &[("retry after crash", "order-1"), ("retry", "order-2")],
    )
    .await;
    assert_eq!(drain(&server.url, "dedup").await, vec!["first", "second"]);
    send_all(&server.url, "dedup", &[("consumed, retried", "order-1")]).await;
    drop(server);

    let server = start(&data);
    send_all(
        &server.url,
        "dedup",
        &[("again", "order-2"), ("new", "order-3")],
    )
    .await;
    assert_eq!(drain(&server.url, "dedup").await, vec!["new"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_its_window_the_same_message_id_is_stored_again() {
    let data = temp_dir("duplicates-window").join("journal");
    let server = start(&data);
    send_all(&server.url, "dedup-short", &[("first", "x")]).await;
    tokio::time::sleep(SHORT_WINDOW + Duration::from_millis(200)).await;
    send_all(&server.url, "dedup-short", &[("after the window", "x")]).await;
    assert_eq!(
        drain(&server.url, "dedup-short").await,
        vec!["first", "after the window"]
    );
    // And a window restored after a restart has forgotten what was out of it by then.
    send_all(&server.url, "dedup-short", &[("kept", "y")]).await;
    drop(server);
    tokio::time::sleep(SHORT_WINDOW + Duration::from_millis(200)).await;
    let server = start(&data);
    send_all(&server.url, "dedup-short", &[("later", "y")]).await;
    assert_eq!(
        drain(&server.url, "dedup-short").await,
        vec!["kept", "later"]
    );
}

#[test]
fn sluice_check_names_the_file_document_and_field_of_a_bad_duplicate_detection() {
    let dir = temp_dir("duplicates-check");
    std::fs::create_dir_all(&dir).unwrap();
    let bad = space().replace("window: 10m", "window: 600");
    // `dedup` is the second to last document.
    let documents = bad.lines().filter(|l| *l == "---").count() + 1;
    let file = dir.join("space.yaml");
    std::fs::write(&file, &bad).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["check", file.to_str().unwrap()])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!("space.yaml: document {} (line ", documents - 1))
            && out.contains(
                "spec.duplicateDetection.window: \"600\" is not a duration: it has no unit"
            ),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
