//! Black-box interop tests of `sluice serve`: the real binary, on a loopback port, driven by
//! Qpid Proton's Python binding (`tests/interop/proton_client.py`, run with Debian's
//! `/usr/bin/python3` and its package python3-qpid-proton, which `scripts/test.sh` installs).
//!
//! Every test writes its own address space into a fresh temp folder, starts its own server on
//! `127.0.0.1:0` and kills it when done (`Server`'s `Drop`); every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::io::{Read, Write};
use std::thread;
use std::time::Duration;

use serde_json::Value;
use support::*;

#[test]
fn a_queue_stores_100_messages_and_delivers_them_in_order() {
    let server = Server::start("order");
    let sent = ok(&server, server.run(&["send", "myqueue", "100"]), "send 100");
    assert_eq!(sent["accepted"], 100, "{sent}");

    let received = ok(
        &server,
        server.run(&["receive", "myqueue", "100"]),
        "receive 100",
    );
    let expected: Vec<String> = (0..100).map(|i| format!("msg-{i}")).collect();
    assert_eq!(bodies(&received), expected);

    // Accepting removed them: nothing is left.
    assert_queue_empty(&server);
}

#[test]
fn two_receivers_on_a_queue_compete_for_its_messages() {
    let server = Server::start("compete");
    // Each receiver grants exactly 50 credit, so between them they take all 100, 50 each.
    let mut first = server.spawn(&["receive", "myqueue", "50"]);
    let mut second = server.spawn(&["receive", "myqueue", "50"]);
    first.wait_ready(&server);
    second.wait_ready(&server);

    let sent = ok(&server, server.run(&["send", "myqueue", "100"]), "send 100");
    assert_eq!(sent["accepted"], 100, "{sent}");

    let first = bodies(&ok(&server, first.finish(&server), "first receiver"));
    let second = bodies(&ok(&server, second.finish(&server), "second receiver"));
    assert_eq!(first.len(), 50, "{first:?}");
    assert_eq!(second.len(), 50, "{second:?}");
    for share in [&first, &second] {
        let order: Vec<usize> = share.iter().map(|b| index_of(b)).collect();
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "each consumer sees the queue's order: {order:?}"
        );
    }
    let mut all: Vec<usize> = first.iter().chain(&second).map(|b| index_of(b)).collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..100).collect::<Vec<_>>(),
        "every message exactly once"
    );

    assert_queue_empty(&server);
}

#[test]
fn a_link_to_an_undefined_address_is_refused_with_not_found() {
    let server = Server::start("notfound");
    for role in ["sender", "receiver"] {
        let outcome = server.run(&["attach", "nowhere", "--role", role]);
        assert_eq!(
            outcome.code(),
            Some(3),
            "a {role} to `nowhere` should be refused: {outcome:?}\nserver stderr:\n{}",
            server.log()
        );
        assert_eq!(outcome.json["attached"], false, "{}", outcome.json);
        assert_eq!(
            outcome.json["condition"], "amqp:not-found",
            "{}",
            outcome.json
        );
        assert_eq!(
            outcome.json["closed"], "link",
            "the link is refused, not the connection: {}",
            outcome.json
        );

        // A defined address attaches on the same server.
        let good = ok(
            &server,
            server.run(&["attach", "myqueue", "--role", role]),
            "attach to myqueue",
        );
        assert_eq!(good["attached"], true, "{good}");
        assert_eq!(good["address"], "myqueue", "{good}");
    }
}

#[test]
fn a_ten_mebibyte_message_round_trips() {
    let server = Server::start("large");
    let size = 10 * 1024 * 1024;
    let sent = ok(
        &server,
        server.run(&["send", "myqueue", "1", "--size", &size.to_string()]),
        "send 10 MiB",
    );
    assert_eq!(sent["accepted"], 1, "{sent}");
    let digest = sent["sha256"][0].as_str().unwrap().to_owned();

    let received = ok(
        &server,
        server.run(&["receive", "myqueue", "1"]),
        "receive 10 MiB",
    );
    let body = &received["bodies"][0];
    assert_eq!(body["size"], size, "{received}");
    assert_eq!(
        body["sha256"],
        digest.as_str(),
        "the body came back changed"
    );
}

#[test]
fn sasl_plain_with_any_credentials_is_accepted() {
    let server = Server::start("plain");
    let url = server.url.replace("amqp://", "amqp://someone:anything@");
    let sent = server
        .spawn_at(&url, &["send", "myqueue", "1"], CLIENT_TIMEOUT)
        .finish(&server);
    let sent = ok(&server, sent, "send as someone:anything (SASL PLAIN)");
    assert_eq!(sent["accepted"], 1, "{sent}");
    let received = ok(&server, server.run(&["receive", "myqueue", "1"]), "receive");
    assert_eq!(bodies(&received), ["msg-0"]);
}

fn headers(json: &Value) -> Vec<(u64, bool)> {
    json["headers"]
        .as_array()
        .unwrap_or_else(|| panic!("no headers in {json}"))
        .iter()
        .map(|h| {
            (
                h["delivery_count"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("no delivery_count in {h}")),
                h["first_acquirer"]
                    .as_bool()
                    .unwrap_or_else(|| panic!("no first_acquirer in {h}")),
            )
        })
        .collect()
}

#[test]
fn a_consumer_killed_with_unsettled_deliveries_loses_nothing() {
    let server = Server::start("killed");
    let idle_sockets = server.open_sockets();
    let sent = ok(&server, server.run(&["send", "myqueue", "20"]), "send 20");
    assert_eq!(sent["accepted"], 20, "{sent}");

    // A consumer takes the first 10 and never settles them, then dies without a word.
    let mut holder = server.spawn(&["hold", "myqueue", "10"]);
    holder.wait_line(&server, "held");
    let held = holder.kill();
    let expected_held: Vec<String> = (0..10).map(|i| format!("msg-{i}")).collect();
    assert_eq!(bodies(&held.json), expected_held, "{held:?}");
    assert!(
        headers(&held.json).iter().all(|&(count, _)| count == 0),
        "a first delivery has delivery-count 0: {}",
        held.json
    );

    // Once the server has dropped the dead connection, its 10 unsettled messages are back.
    server.wait_open_sockets(idle_sockets);
    let received = ok(
        &server,
        server.run(&["receive", "myqueue", "20"]),
        "receive 20 after the kill",
    );
    let expected: Vec<String> = (0..20).map(|i| format!("msg-{i}")).collect();
    assert_eq!(
        bodies(&received),
        expected,
        "every message exactly once, the 10 released ones first, in the queue's order"
    );
    let headers = headers(&received);
    for (i, &(count, first_acquirer)) in headers.iter().enumerate() {
        if i < 10 {
            assert!(
                count >= 1 && !first_acquirer,
                "msg-{i} was delivered to the killed consumer, so its redelivery must have \
                 delivery-count >= 1 and first-acquirer false; got delivery_count {count}, \
                 first_acquirer {first_acquirer}: {received}"
            );
        } else {
            assert_eq!(
                count, 0,
                "msg-{i} was never delivered before: delivery-count 0: {received}"
            );
        }
    }

    assert_queue_empty(&server);
}

/// Deterministic junk (xorshift64).
fn junk(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

/// What a garbage connection saw: the bytes the server sent, and how the socket ended.
struct Garbage {
    what: &'static str,
    received: Vec<u8>,
    /// `Ok(())` for EOF or a reset (the server closed it), `Err` for a read timeout.
    ended: Result<(), String>,
}

/// Opens a raw TCP connection, writes `prefix` then up to 256 KiB of junk (stopping at the
/// first write error: the server may close at any point) while another thread reads whatever
/// comes back until EOF, a reset, or 10 s without the server closing.
fn send_garbage(
    addr: String,
    what: &'static str,
    prefix: Vec<u8>,
    seed: u64,
) -> thread::JoinHandle<Garbage> {
    thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut reading = stream.try_clone().unwrap();
        let reader = thread::spawn(move || {
            let mut received = Vec::new();
            let mut buf = [0u8; 4096];
            let ended = loop {
                match reading.read(&mut buf) {
                    Ok(0) => break Ok(()),
                    Ok(n) => received.extend_from_slice(&buf[..n]),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        break Err(format!("still open 10 s after the last byte read: {e}"));
                    }
                    // A reset (we kept writing after the server closed) is a close too.
                    Err(_) => break Ok(()),
                }
            };
            (received, ended)
        });
        if stream.write_all(&prefix).is_ok() {
            for chunk in junk(seed, 256 * 1024).chunks(4096) {
                if stream.write_all(chunk).is_err() {
                    break;
                }
            }
        }
        let (received, ended) = reader.join().unwrap();
        Garbage {
            what,
            received,
            ended,
        }
    })
}

#[test]
fn a_garbage_sending_connection_does_not_disturb_a_healthy_one() {
    let mut server = Server::start("garbage");
    let addr = server.url.strip_prefix("amqp://").unwrap().to_owned();

    // A healthy receiver is attached before the junk starts and drains while it flows.
    let mut receiver = server.spawn(&["receive", "myqueue", "50"]);
    receiver.wait_ready(&server);

    let amqp_header = b"AMQP\x00\x01\x00\x00".to_vec();
    let mut huge_frame = amqp_header.clone();
    // A frame header claiming a 4 GiB frame: the server must not try to buffer it.
    huge_frame.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0]);
    let garbage = vec![
        send_garbage(
            addr.clone(),
            "an HTTP request, then junk",
            b"GET / HTTP/1.1\r\nHost: sluice\r\nConnection: keep-alive\r\n\r\n".to_vec(),
            1,
        ),
        send_garbage(addr.clone(), "junk from the first byte", Vec::new(), 2),
        send_garbage(
            addr.clone(),
            "the AMQP header, then junk frames",
            amqp_header,
            3,
        ),
        send_garbage(
            addr.clone(),
            "the SASL header, then junk frames",
            b"AMQP\x03\x01\x00\x00".to_vec(),
            4,
        ),
        send_garbage(
            addr.clone(),
            "the AMQP header, then a 4 GiB frame header and junk",
            huge_frame,
            5,
        ),
    ];

    let sent = ok(&server, server.run(&["send", "myqueue", "50"]), "send 50");
    assert_eq!(sent["accepted"], 50, "{sent}");
    let received = bodies(&ok(&server, receiver.finish(&server), "receive 50"));
    let expected: Vec<String> = (0..50).map(|i| format!("msg-{i}")).collect();
    assert_eq!(received, expected);

    for garbage in garbage {
        let g = garbage.join().unwrap();
        assert!(
            g.ended.is_ok(),
            "the server did not close a connection that sent {}: {}; it sent {:?}\nserver \
             stderr:\n{}",
            g.what,
            g.ended.unwrap_err(),
            String::from_utf8_lossy(&g.received),
            server.log()
        );
        // If anything came back first, it is an AMQP protocol header (8 bytes, "AMQP", id,
        // 1.0.0), maybe followed by a close or SASL outcome frame.
        if !g.received.is_empty() {
            assert!(
                g.received.len() >= 8
                    && g.received.starts_with(b"AMQP")
                    && g.received[5..8] == [1, 0, 0],
                "the server answered {} with {:?}, not an AMQP protocol header",
                g.what,
                g.received
            );
        }
    }

    assert!(
        server.is_running(),
        "the server exited after the garbage\nserver stderr:\n{}",
        server.log()
    );
    // And it still serves new connections.
    let sent = ok(
        &server,
        server.run(&["send", "myqueue", "1"]),
        "send after the garbage",
    );
    assert_eq!(sent["accepted"], 1, "{sent}");
    let received = ok(
        &server,
        server.run(&["receive", "myqueue", "1"]),
        "receive after the garbage",
    );
    assert_eq!(bodies(&received), ["msg-0"]);
    assert_queue_empty(&server);
}

#[test]
fn a_connection_with_a_thousand_links() {
    let server = Server::start("links");
    let links = ok(
        &server,
        server.run(&["links", "myqueue", "1000"]),
        "1000 sender links on one connection",
    );
    assert_eq!(links["attached"], 1000, "{links}");
    assert_eq!(links["accepted"], 1000, "{links}");

    let received = ok(
        &server,
        server.run(&["receive", "myqueue", "1000"]),
        "receive 1000",
    );
    let mut got: Vec<usize> = bodies(&received)
        .iter()
        .map(|b| {
            b.strip_prefix("link-")
                .and_then(|i| i.parse().ok())
                .unwrap_or_else(|| panic!("unexpected body {b:?}"))
        })
        .collect();
    got.sort_unstable();
    assert_eq!(
        got,
        (0..1000).collect::<Vec<_>>(),
        "one message from every link, exactly once"
    );
    assert_queue_empty(&server);
}

#[test]
fn multicast_reaches_every_receiver() {
    let server = Server::start("multicast");
    // Multicast stores nothing: the helper starts the sender only once both have credit.
    for received in fan_out_to_two(&server, "mymulticast", 10, "mc") {
        assert_eq!(
            received["presettled"], 10,
            "multicast deliveries go out settled: {received}"
        );
    }
}

#[test]
fn an_anonymous_sender_routes_each_message_by_its_to() {
    let server = Server::start("relay");
    // One link with a null target: five messages to `myqueue`, then one to `nowhere`.
    let relayed = ok(
        &server,
        server.run(&[
            "relay", "--to", "myqueue", "--count", "5", "--to", "nowhere", "--count", "1",
        ]),
        "relay 5 to myqueue and 1 to nowhere",
    );
    assert_eq!(
        relayed["anonymous_relay"], true,
        "the server's open offers ANONYMOUS-RELAY: {relayed}"
    );
    assert_eq!(relayed["sent"], 6, "{relayed}");
    let deliveries = relayed["deliveries"].as_array().unwrap();
    for (i, d) in deliveries[..5].iter().enumerate() {
        assert_eq!(d["to"], "myqueue", "{relayed}");
        assert_eq!(d["body"], format!("msg-{i}"), "{relayed}");
        assert_eq!(
            d["outcome"], "accepted",
            "a message to myqueue is accepted: {relayed}"
        );
    }
    let lost = &deliveries[5];
    assert_eq!(lost["to"], "nowhere", "{relayed}");
    assert_eq!(
        lost["outcome"], "rejected",
        "a message to an undefined address is rejected: {relayed}"
    );
    assert_eq!(lost["condition"], "amqp:not-found", "{relayed}");

    let received = ok(
        &server,
        server.run(&["receive", "myqueue", "5"]),
        "receive the 5 relayed messages",
    );
    let expected: Vec<String> = (0..5).map(|i| format!("msg-{i}")).collect();
    assert_eq!(bodies(&received), expected);
    assert_queue_empty(&server);
}

#[test]
fn request_reply_over_a_dynamic_receiver_and_anonymous_relay() {
    let server = Server::start("request-reply");
    let answer = ok(
        &server,
        server.run(&["request-reply", "myqueue"]),
        "request/reply through a temporary queue",
    );
    let reply_to = answer["reply_to"].as_str().unwrap_or_default();
    assert!(
        reply_to.starts_with("_sluice.tmp."),
        "the attach reply names a temporary queue: {answer}"
    );
    assert_eq!(answer["request_reply_to"], answer["reply_to"], "{answer}");
    assert_eq!(answer["reply"], "pong for ping", "{answer}");
    assert_eq!(
        answer["late_outcome"], "rejected",
        "the temporary queue goes with its link: {answer}"
    );
    assert_eq!(answer["late_condition"], "amqp:not-found", "{answer}");
    assert_queue_empty(&server);
}

#[test]
fn sigterm_closes_every_connection_with_connection_forced_and_exits_0() {
    let mut server = Server::start("sigterm");
    let mut holders: Vec<Client> = (0..2)
        .map(|_| server.spawn(&["hold", "myqueue", "1"]))
        .collect();
    for holder in &mut holders {
        holder.wait_ready(&server);
    }
    let status = server
        .terminate(Duration::from_secs(15))
        .expect("sluice serve still running 15 s after SIGTERM");
    assert!(status.success(), "exit status {status:?}\n{}", server.log());
    for holder in holders {
        let outcome = holder.finish(&server);
        let error = outcome.json["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            error.contains("amqp:connection:forced"),
            "each client is told why its connection closed: {outcome:?}"
        );
    }
    assert!(server.log().contains("shut down"), "{}", server.log());
}

#[test]
fn a_data_directory_is_created_locked_and_refused_to_a_second_broker() {
    let data = temp_dir("data-dir").join("state");
    let data_arg = data.to_str().unwrap().to_owned();
    let server = Server::start_with("data-dir", &["--data-dir", &data_arg]);
    assert!(data.join("sluice.lock").is_file(), "the lock file is made");
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "serve",
            "--amqp",
            "127.0.0.1:0",
            "--no-http",
            "--data-dir",
            &data_arg,
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is in use by another sluice"),
        "the second broker says why it stops: {stderr}"
    );
    assert!(!stderr.contains("backtrace"), "{stderr}");
    // The first one is unaffected.
    let sent = ok(&server, server.run(&["send", "myqueue", "1"]), "send 1");
    assert_eq!(sent["accepted"], 1, "{sent}");
}

#[test]
fn a_receiver_that_settles_in_bursts_past_the_unsettled_limit_gets_everything() {
    // Proton's blocking receiver settles only when its buffer runs dry, so with credit for
    // 12,000 it holds more than the broker's 10,000 unsettled per link; the broker pauses the
    // link and resumes it once the settlements arrive, rather than stalling for ever.
    let server = Server::start("burst");
    let count = "12000";
    let sent = ok(
        &server,
        server.run(&["send", "myqueue", count]),
        "send 12000",
    );
    assert_eq!(sent["accepted"], 12000, "{}", sent["outcomes"]);
    let received = ok(
        &server,
        server.run(&["receive", "myqueue", count]),
        "receive 12000",
    );
    assert_eq!(received["received"], 12000);
    let expected: Vec<String> = (0..12000).map(|i| format!("msg-{i}")).collect();
    assert_eq!(bodies(&received), expected);
    assert_queue_empty(&server);
}

#[test]
fn export_dir_holds_the_endpoint_information_with_the_ports_served_and_the_ca() {
    let base = temp_dir("export");
    let export = base.join("export");
    let data = base.join("data");
    let server = Server::start_with(
        "export",
        &[
            "--amqps",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
            "--export-dir",
            export.to_str().unwrap(),
            "--export-host",
            "messaging.team-a.svc",
        ],
    );
    let read = |key: &str| {
        std::fs::read_to_string(export.join(key)).unwrap_or_else(|e| panic!("{key}: {e}"))
    };
    let port = |url: &str| url.rsplit(':').next().unwrap().to_string();
    assert_eq!(read("service.host"), "messaging.team-a.svc");
    assert_eq!(read("service.port.amqp"), port(&server.url));
    assert_eq!(
        read("service.port.amqps"),
        port(server.amqps_url.as_deref().unwrap())
    );
    // The self-signed certificate's CA, as clients are to trust it.
    let ca = read("ca.crt");
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
    assert_eq!(ca, std::fs::read_to_string(data.join("ca.crt")).unwrap());
    assert!(!export.join("service.port.amqp-wss").exists());
    drop(server);
    let _ = std::fs::remove_dir_all(&base);
}
