//! Byte streams recorded from Qpid Proton (`tests/proton/capture.py`, python3-qpid-proton 0.37)
//! replayed into our engine: Proton's client bytes into a server connection and Proton's server
//! bytes into a client connection. Each side must surface exactly the frames Proton sent, in
//! order, and answer with frames that decode as expected.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::path::PathBuf;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use serde_json::Value as Json;
use sluice_codec::SaslCode;
use sluice_codec::frame::{FrameBody, decode_frame};
use sluice_codec::security::SaslFrame;
use sluice_codec::transport::conditions;
use sluice_codec::types::Symbol;
use sluice_engine::testing::serve_recording;
use sluice_engine::{Config, Connection, Event, SaslConfig};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/proton")
}

fn scenarios() -> Vec<Json> {
    let text = std::fs::read_to_string(dir().join("scenarios.json")).unwrap();
    let json: Json = serde_json::from_str(&text).unwrap();
    json["scenarios"].as_array().unwrap().clone()
}

fn read(file: &str) -> Vec<u8> {
    std::fs::read(dir().join(file)).unwrap()
}

/// The names Proton's trace uses for what an event stands for.
fn event_names(events: &[Event]) -> Vec<String> {
    let mut names = Vec::new();
    for e in events {
        match e {
            Event::SaslInit { .. } => names.push("sasl-init".into()),
            Event::SaslResponse { .. } => names.push("sasl-response".into()),
            Event::SaslChallenge { .. } => names.push("sasl-challenge".into()),
            Event::SaslOutcome { .. } => names.push("sasl-outcome".into()),
            Event::Opened { .. } => names.push("open".into()),
            Event::SessionBegun { .. } => names.push("begin".into()),
            Event::SessionEnded { .. } => names.push("end".into()),
            Event::LinkAttached { .. } => names.push("attach".into()),
            Event::LinkDetached { .. } => names.push("detach".into()),
            Event::Credit { .. } | Event::Drained { .. } => names.push("flow".into()),
            Event::Delivery { .. } | Event::Aborted { .. } => names.push("transfer".into()),
            Event::Disposition { .. } => names.push("disposition".into()),
            Event::RemoteClose { .. } => names.push("close".into()),
            Event::Failed(e) => names.push(format!("failed {e}")),
        }
    }
    names
}

/// The frames of a stream as Proton's trace names them, headers included.
fn frame_names(bytes: &[u8]) -> Vec<String> {
    let mut buf = BytesMut::from(bytes);
    let mut names = Vec::new();
    while !buf.is_empty() {
        if buf.starts_with(b"AMQP") {
            let header = buf.split_to(8);
            names.push(
                if header[4] == 3 {
                    "sasl-header"
                } else {
                    "amqp-header"
                }
                .into(),
            );
            continue;
        }
        let frame = decode_frame(&mut buf, u32::MAX)
            .unwrap()
            .expect("whole frames");
        names.push(match frame.body {
            FrameBody::Empty => "empty".into(),
            FrameBody::Sasl(SaslFrame::Mechanisms(_)) => "sasl-mechanisms".into(),
            FrameBody::Sasl(SaslFrame::Init(_)) => "sasl-init".into(),
            FrameBody::Sasl(SaslFrame::Challenge(_)) => "sasl-challenge".into(),
            FrameBody::Sasl(SaslFrame::Response(_)) => "sasl-response".into(),
            FrameBody::Sasl(SaslFrame::Outcome(_)) => "sasl-outcome".into(),
            FrameBody::Amqp { performative, .. } => performative
                .name()
                .trim_start_matches("amqp:")
                .trim_end_matches(":list")
                .into(),
        });
    }
    names
}

fn expected(s: &Json, key: &str) -> Vec<String> {
    s[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn our_server_reads_every_proton_client_stream() {
    let scenarios = scenarios();
    assert!(scenarios.len() >= 6);
    for s in &scenarios {
        let name = s["name"].as_str().unwrap();
        let client = read(s["client-file"].as_str().unwrap());
        // One byte at a time, so our answers (credit for the sender's link, say) go out before
        // the frames Proton sent after receiving them, as in the recorded conversation.
        let served = serve_recording(&client, 1);
        // What we surfaced is what Proton sent, minus headers and heartbeats.
        let sent: Vec<String> = expected(s, "client-frames")
            .into_iter()
            .filter(|f| !f.ends_with("-header") && f != "empty")
            .collect();
        let read = event_names(&served.events[..served.input_events]);
        assert_eq!(read, sent, "{name}: events");
        // And we answered as Proton's own server did, frame for frame, except the disposition
        // (settling is the broker's business, not the engine's) and heartbeats.
        let ours: Vec<String> = frame_names(&served.output[..served.input_output])
            .into_iter()
            .filter(|f| f != "empty")
            .collect();
        let proton: Vec<String> = expected(s, "server-frames")
            .into_iter()
            .filter(|f| f != "disposition" && f != "empty")
            .collect();
        assert_eq!(ours, proton, "{name}: our answer");
    }
}

#[test]
fn sasl_and_open_details_survive_the_replay() {
    let anonymous = read("anonymous-send.client.bin");
    let served = serve_recording(&anonymous, 1);
    let Event::SaslInit {
        mechanism,
        initial_response,
        ..
    } = &served.events[0]
    else {
        panic!()
    };
    assert_eq!(mechanism, &Symbol::from_static("ANONYMOUS"));
    assert_eq!(initial_response.as_deref(), Some(&b"anonymous"[..]));
    let Event::Opened { remote } = &served.events[1] else {
        panic!()
    };
    assert_eq!(remote.container_id.as_str(), "proton-client");
    assert_eq!(
        remote.hostname.as_ref().map(|h| h.as_str()),
        Some("localhost")
    );
    assert_eq!(remote.channel_max, 32767);
    let transfer = served.events.iter().find_map(|e| match e {
        Event::Delivery {
            tag,
            payload,
            settled,
            ..
        } => Some((*tag, payload.clone(), *settled)),
        _ => None,
    });
    let (tag, payload, settled) = transfer.expect("a delivery");
    assert_eq!(tag.unwrap().as_bytes(), b"delivery-1");
    assert!(!settled);
    let message = sluice_codec::messaging::ScannedMessage::scan(payload).unwrap();
    assert_eq!(message.to(), Some("queue1"));
    assert!(message.header.unwrap().durable);

    let plain = read("plain-receive.client.bin");
    let served = serve_recording(&plain, plain.len());
    let Event::SaslInit {
        mechanism,
        initial_response,
        ..
    } = &served.events[0]
    else {
        panic!()
    };
    assert_eq!(mechanism, &Symbol::from_static("PLAIN"));
    assert_eq!(initial_response.as_deref(), Some(&b"\0alice\0secret"[..]));
    let close = served.events.iter().find_map(|e| match e {
        Event::RemoteClose { error } => error.clone(),
        _ => None,
    });
    let close = close.expect("proton closed with an error");
    assert_eq!(close.condition, conditions::CONNECTION_FORCED);
    assert_eq!(close.description.as_ref().map(|d| d.as_str()), Some("test"));
}

#[test]
fn our_client_reads_every_proton_server_stream() {
    for s in scenarios() {
        let name = s["name"].as_str().unwrap();
        let server = read(s["server-file"].as_str().unwrap());
        let uses_sasl = server.get(4) == Some(&3);
        let sasl = if uses_sasl {
            // Both recorded servers offer one mechanism; ask for that one.
            let mechanism = if name == "plain-receive" {
                "PLAIN"
            } else {
                "ANONYMOUS"
            };
            SaslConfig::Client {
                mechanism: Symbol::try_from(mechanism).unwrap(),
                initial_response: Some(Bytes::from_static(b"x")),
            }
        } else {
            SaslConfig::None
        };
        let now = Instant::now();
        let mut client = Connection::client(Config::client("sluice-client", sasl), now);
        // Our client opens but does not script sessions and links, so it reads Proton's server
        // up to its open (the session and link frames after it answer Proton's client).
        let open_end = s["server-layout"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == "open")
            .map_or(server.len(), |f| {
                (f["offset"].as_u64().unwrap() + f["length"].as_u64().unwrap()) as usize
            });
        let server = &server[..open_end];
        let mut events = Vec::new();
        for byte in server {
            client.handle_input(std::slice::from_ref(byte), now);
            events.extend(std::iter::from_fn(|| client.poll_event()));
        }
        let want: Vec<String> = expected(&s, "server-frames")
            .into_iter()
            .filter(|f| !f.ends_with("-header") && f != "empty" && f != "sasl-mechanisms")
            .take_while(|f| f != "begin" && f != "close")
            .collect();
        assert_eq!(event_names(&events), want, "{name}");
        if uses_sasl && !want.is_empty() {
            assert_eq!(
                events[0],
                Event::SaslOutcome { code: SaslCode::Ok },
                "{name}"
            );
        }
    }
}
