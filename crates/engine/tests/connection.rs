//! Connection-level scenarios on the in-memory pair: header exchange, SASL, open, idle timeout,
//! close and protocol violations.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sluice_codec::SaslCode;
use sluice_codec::frame::{
    FrameBody, ProtocolHeader, decode_frame, encode_performative, encode_sasl,
};
use sluice_codec::security::{SaslFrame, SaslInit};
use sluice_codec::transport::{Begin, Close, Error, Open, Performative, conditions};
use sluice_codec::types::Symbol;
use sluice_engine::testing::Pair;
use sluice_engine::{Config, Connection, Event, SaslConfig};

fn anonymous() -> SaslConfig {
    SaslConfig::Client {
        mechanism: Symbol::from_static("ANONYMOUS"),
        initial_response: None,
    }
}

fn opened(events: &[Event]) -> Option<&Open> {
    events.iter().find_map(|e| match e {
        Event::Opened { remote } => Some(&**remote),
        _ => None,
    })
}

fn failed(events: &[Event]) -> Option<Symbol> {
    events.iter().find_map(|e| match e {
        Event::Failed(err) => Some(err.condition.clone()),
        _ => None,
    })
}

/// Every frame in `bytes` after the protocol headers.
fn frames(mut bytes: BytesMut) -> Vec<FrameBody> {
    let mut out = Vec::new();
    loop {
        if bytes.starts_with(b"AMQP") {
            let _ = bytes.split_to(8);
            continue;
        }
        match decode_frame(&mut bytes, u32::MAX) {
            Ok(Some(f)) => out.push(f.body),
            _ => return out,
        }
    }
}

#[test]
fn sasl_anonymous_then_open_on_both_sides() {
    let mut client = Config::client("client", anonymous());
    client.hostname = Some("broker.example".into());
    let mut pair = Pair::new(client, Config::server("server"));
    pair.drive();
    let events = pair.server_events();
    assert_eq!(
        events,
        vec![Event::SaslInit {
            mechanism: Symbol::from_static("ANONYMOUS"),
            initial_response: None,
            hostname: Some("broker.example".into()),
        }]
    );
    assert!(
        !pair.server.is_open(),
        "nothing past SASL is read until the caller decides"
    );
    pair.server.sasl_outcome(SaslCode::Ok, pair.now);
    pair.drive();
    let server = pair.server_events();
    let remote = opened(&server).expect("server saw the client's open");
    assert_eq!(remote.container_id.as_str(), "client");
    assert_eq!(
        remote.hostname.as_ref().map(|h| h.as_str()),
        Some("broker.example")
    );
    let client = pair.client_events();
    assert_eq!(client[0], Event::SaslOutcome { code: SaslCode::Ok });
    assert_eq!(opened(&client).unwrap().container_id.as_str(), "server");
    assert!(pair.client.is_open() && pair.server.is_open());
}

#[test]
fn a_refused_sasl_outcome_ends_the_connection() {
    let plain = SaslConfig::Client {
        mechanism: Symbol::from_static("PLAIN"),
        initial_response: Some(Bytes::from_static(b"\0user\0wrong")),
    };
    let mut pair = Pair::new(Config::client("c", plain), Config::server("s"));
    pair.drive();
    let Event::SaslInit {
        initial_response, ..
    } = &pair.server_events()[0]
    else {
        panic!()
    };
    assert_eq!(initial_response.as_deref(), Some(&b"\0user\0wrong"[..]));
    pair.server.sasl_outcome(SaslCode::Auth, pair.now);
    pair.drive();
    assert_eq!(
        pair.client_events(),
        vec![Event::SaslOutcome {
            code: SaslCode::Auth
        }]
    );
    assert!(pair.server.is_done() && pair.client.is_done());
}

#[test]
fn a_challenge_round_trip_reaches_both_callers() {
    let mut pair = Pair::new(Config::client("c", anonymous()), Config::server("s"));
    pair.drive();
    pair.server_events();
    pair.server
        .sasl_challenge(Bytes::from_static(b"nonce"), pair.now);
    pair.drive();
    assert_eq!(
        pair.client_events(),
        vec![Event::SaslChallenge {
            challenge: Bytes::from_static(b"nonce")
        }]
    );
    pair.client
        .sasl_respond(Bytes::from_static(b"proof"), pair.now);
    pair.drive();
    assert_eq!(
        pair.server_events(),
        vec![Event::SaslResponse {
            response: Bytes::from_static(b"proof")
        }]
    );
    pair.server.sasl_outcome(SaslCode::Ok, pair.now);
    pair.drive();
    assert!(pair.client.is_open() && pair.server.is_open());
}

#[test]
fn a_client_without_sasl_opens_directly_when_the_server_allows_it() {
    let mut pair = Pair::new(Config::client("c", SaslConfig::None), Config::server("s"));
    pair.drive();
    assert!(opened(&pair.server_events()).is_some());
    assert!(pair.client.is_open());
}

#[test]
fn a_server_requiring_sasl_answers_an_amqp_header_with_its_own_and_closes() {
    let mut server = Config::server("s");
    server.sasl = SaslConfig::Server {
        mechanisms: vec![Symbol::from_static("PLAIN")],
        allow_no_sasl: false,
    };
    let mut pair = Pair::new(Config::client("c", SaslConfig::None), server);
    let hello = pair.client.take_output();
    pair.server.handle_input(&hello, pair.now);
    assert_eq!(
        &pair.server.take_output()[..],
        &ProtocolHeader::SASL.to_bytes()[..]
    );
    assert!(pair.server.is_done());
    assert_eq!(failed(&pair.server_events()), Some(conditions::NOT_ALLOWED));
}

#[test]
fn a_non_amqp_peer_gets_our_header_and_is_dropped() {
    let now = std::time::Instant::now();
    let mut server = Connection::server(Config::server("s"), now);
    server.handle_input(b"GET / HTTP/1.1\r\n", now);
    assert_eq!(
        &server.take_output()[..],
        &ProtocolHeader::SASL.to_bytes()[..]
    );
    assert!(server.is_done());
    let mut unsupported = Connection::server(Config::server("s"), now);
    unsupported.handle_input(b"AMQP\x00\x00\x09\x01", now);
    assert_eq!(
        &unsupported.take_output()[..],
        &ProtocolHeader::SASL.to_bytes()[..]
    );
    assert!(unsupported.is_done());
}

#[test]
fn a_pipelined_client_is_served_once_sasl_is_decided() {
    // Header, sasl-init, AMQP header, open and begin in one write, before any reply.
    let mut wire = BytesMut::new();
    wire.extend_from_slice(&ProtocolHeader::SASL.to_bytes());
    let init = SaslInit {
        mechanism: Symbol::from_static("ANONYMOUS"),
        initial_response: None,
        hostname: None,
    };
    encode_sasl(&mut wire, &SaslFrame::Init(init), 512).unwrap();
    wire.extend_from_slice(&ProtocolHeader::AMQP.to_bytes());
    let open = Open {
        container_id: "pipelined".into(),
        ..Default::default()
    };
    encode_performative(&mut wire, 0, &open.into(), 512).unwrap();
    let begin = Begin {
        next_outgoing_id: 0,
        incoming_window: 100,
        outgoing_window: 100,
        ..Default::default()
    };
    encode_performative(&mut wire, 0, &begin.clone().into(), 512).unwrap();

    let now = std::time::Instant::now();
    let mut server = Connection::server(Config::server("s"), now);
    server.handle_input(&wire, now);
    assert!(matches!(server.poll_event(), Some(Event::SaslInit { .. })));
    assert_eq!(
        server.poll_event(),
        None,
        "open waits for the SASL decision"
    );
    server.sasl_outcome(SaslCode::Ok, now);
    assert!(matches!(server.poll_event(), Some(Event::Opened { .. })));
    let Some(Event::SessionBegun { remote, .. }) = server.poll_event() else {
        panic!("no begin")
    };
    assert_eq!(*remote, begin);
    // The reply: SASL header, mechanisms, outcome, AMQP header, open.
    let reply = frames(server.take_output());
    assert!(matches!(
        reply[0],
        FrameBody::Sasl(SaslFrame::Mechanisms(_))
    ));
    assert!(matches!(reply[1], FrameBody::Sasl(SaslFrame::Outcome(_))));
    assert!(matches!(
        &reply[2],
        FrameBody::Amqp {
            performative: Performative::Open(_),
            ..
        }
    ));
}

#[test]
fn sasl_frames_up_to_the_configured_limit_carry_a_service_account_token() {
    let token = Bytes::from(vec![b'x'; 2048]);
    let mut response = BytesMut::from(&b"\0@@serviceaccount@@\0"[..]);
    response.extend_from_slice(&token);
    let plain = SaslConfig::Client {
        mechanism: Symbol::from_static("PLAIN"),
        initial_response: Some(response.freeze()),
    };
    let mut pair = Pair::new(Config::client("c", plain.clone()), Config::server("s"));
    pair.drive();
    assert!(matches!(pair.server_events()[0], Event::SaslInit { .. }));

    let mut small = Config::server("s");
    small.sasl_frame_size_max = 512;
    let mut pair = Pair::new(Config::client("c", plain), small);
    pair.drive();
    assert_eq!(
        failed(&pair.server_events()),
        Some(conditions::FRAMING_ERROR)
    );
    assert!(pair.server.is_done());
}

#[test]
fn heartbeats_keep_an_idle_connection_open_and_silence_closes_it() {
    let mut client = Config::client("c", SaslConfig::None);
    client.idle_timeout = Some(Duration::from_secs(10));
    let mut server = Config::server("s");
    server.idle_timeout = Some(Duration::from_secs(4));
    let mut pair = Pair::new(client, server);
    pair.drive();
    assert!(pair.client.is_open() && pair.server.is_open());

    // Each side sends an empty frame before half the other's timeout: a minute passes quietly.
    pair.advance(Duration::from_secs(60));
    assert!(pair.client.is_open() && pair.server.is_open());
    assert!(
        pair.server_events()
            .iter()
            .all(|e| matches!(e, Event::Opened { .. }))
    );

    // The client stops sending: the server closes 4 s after the last frame it received.
    pair.client_connected = false;
    let silent_from = pair.now;
    pair.advance(Duration::from_millis(3_999));
    assert!(pair.server.is_open());
    pair.advance(Duration::from_secs(2));
    assert!(!pair.server.is_open());
    let events = pair.server_events();
    assert_eq!(failed(&events), Some(conditions::RESOURCE_LIMIT_EXCEEDED));
    // The client's last heartbeat went out at most 2 s (half the server's 4 s) before silence.
    let closed = pair.now;
    assert!(closed.duration_since(silent_from) <= Duration::from_secs(6));
    let client_view = pair.client_events();
    let Some(Event::RemoteClose { error: Some(error) }) = client_view.last() else {
        panic!("{client_view:?}")
    };
    assert_eq!(error.condition, conditions::RESOURCE_LIMIT_EXCEEDED);
}

#[test]
fn close_with_an_error_reaches_the_peer_and_both_ends_finish() {
    let mut pair = Pair::new(Config::client("c", SaslConfig::None), Config::server("s"));
    pair.drive();
    pair.server_events();
    let error = Error::new(conditions::CONNECTION_FORCED, "shutting down");
    pair.server.close(Some(error.clone()), pair.now);
    pair.drive();
    assert_eq!(
        pair.client_events().last(),
        Some(&Event::RemoteClose { error: Some(error) })
    );
    assert!(pair.client.is_done() && pair.server.is_done());
}

#[test]
fn garbage_after_open_is_a_framing_error_for_that_connection() {
    let mut pair = Pair::new(Config::client("c", SaslConfig::None), Config::server("s"));
    pair.drive();
    pair.server_events();
    pair.server
        .handle_input(&[0, 0, 0, 2, 0xde, 0xad, 0xbe, 0xef], pair.now);
    assert_eq!(
        failed(&pair.server_events()),
        Some(conditions::FRAMING_ERROR)
    );
    let out = frames(pair.server.take_output());
    let FrameBody::Amqp {
        performative: Performative::Close(Close { error: Some(e) }),
        ..
    } = &out[0]
    else {
        panic!("{out:?}")
    };
    assert_eq!(e.condition, conditions::FRAMING_ERROR);
    // Nothing after the error can be parsed, not even the peer's close: the connection ends
    // as soon as our close is written, and later bytes are ignored.
    assert!(pair.server.is_done());
    pair.server.handle_input(b"more garbage", pair.now);
    assert!(pair.server_events().is_empty());
}

#[test]
fn a_frame_before_open_is_not_allowed() {
    let mut wire = BytesMut::from(&ProtocolHeader::AMQP.to_bytes()[..]);
    let begin = Begin {
        next_outgoing_id: 0,
        incoming_window: 1,
        outgoing_window: 1,
        ..Default::default()
    };
    encode_performative(&mut wire, 0, &begin.into(), 512).unwrap();
    let now = std::time::Instant::now();
    let mut server = Connection::server(Config::server("s"), now);
    server.handle_input(&wire, now);
    assert_eq!(
        server.poll_event(),
        Some(Event::Failed(sluice_engine::ConnectionError::not_allowed(
            "amqp:begin:list before open"
        )))
    );
    // The close follows an open, as part 2 §2.4.1 requires.
    let out = frames(server.take_output());
    assert!(matches!(
        &out[0],
        FrameBody::Amqp {
            performative: Performative::Open(_),
            ..
        }
    ));
    assert!(matches!(
        &out[1],
        FrameBody::Amqp {
            performative: Performative::Close(_),
            ..
        }
    ));
}

#[test]
fn an_unfinished_handshake_times_out() {
    let mut pair = Pair::new(Config::client("c", anonymous()), Config::server("s"));
    pair.drive();
    // The server never answers the SASL init.
    pair.advance(Duration::from_secs(31));
    assert!(pair.server.is_done());
    assert_eq!(
        failed(&pair.server_events()),
        Some(conditions::RESOURCE_LIMIT_EXCEEDED)
    );
}

#[test]
fn the_negotiated_frame_size_is_the_peers() {
    let mut client = Config::client("c", SaslConfig::None);
    client.frame_size_max = 1024;
    let mut pair = Pair::new(client, Config::server("s"));
    pair.drive();
    let remote = opened(&pair.server_events()).cloned().unwrap();
    assert_eq!(remote.max_frame_size, 1024);
    let local = opened(&pair.client_events()).cloned().unwrap();
    assert_eq!(local.max_frame_size, sluice_engine::FRAME_SIZE_MAX_DEFAULT);
    assert_eq!(local.idle_time_out, Some(60_000));
}

#[test]
fn capabilities_and_properties_travel_in_open_both_ways() {
    let mut server = Config::server("s");
    server.offered_capabilities = vec![Symbol::from_static("ANONYMOUS-RELAY")];
    server.properties = Some(vec![(Symbol::from_static("product"), "sluice".into())]);
    let mut client = Config::client("c", SaslConfig::None);
    client.desired_capabilities = vec![Symbol::from_static("ANONYMOUS-RELAY")];
    let mut pair = Pair::new(client, server);
    pair.drive();
    let seen_by_client = opened(&pair.client_events()).cloned().unwrap();
    assert_eq!(
        seen_by_client.offered_capabilities,
        vec![Symbol::from_static("ANONYMOUS-RELAY")]
    );
    let product = seen_by_client.properties.unwrap();
    assert_eq!(product[0].1.as_str(), Some("sluice"));
    let seen_by_server = opened(&pair.server_events()).cloned().unwrap();
    assert_eq!(
        seen_by_server.desired_capabilities,
        vec![Symbol::from_static("ANONYMOUS-RELAY")]
    );
}

#[test]
fn a_recycled_output_buffer_carries_the_next_output() {
    let mut pair = Pair::new(Config::client("c", SaslConfig::None), Config::server("s"));
    pair.drive();
    assert!(pair.client.is_open());
    // What the shell wrote last time, cleared and handed back.
    let mut written = BytesMut::with_capacity(64 * 1024);
    written.extend_from_slice(b"frames already on the wire");
    let capacity = written.capacity();
    pair.client.recycle_output(written);
    assert_eq!(
        pair.client.output_len(),
        0,
        "a recycled buffer comes back empty"
    );
    pair.client.close(None, pair.now);
    let next = pair.client.take_output();
    assert!(!next.is_empty());
    assert_eq!(
        next.capacity(),
        capacity,
        "the close was written into the recycled buffer"
    );
    // Too large a buffer is dropped rather than kept by an idle connection.
    let mut huge = BytesMut::with_capacity(sluice_engine::OUTPUT_RECYCLE_MAX + 1);
    huge.extend_from_slice(b"written");
    pair.client.recycle_output(huge);
    assert_eq!(pair.client.take_output().capacity(), 0);
}
