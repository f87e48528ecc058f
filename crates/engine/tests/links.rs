//! Session and link scenarios on the in-memory pair: begin and end, attach, accept and refuse,
//! credit and drain, transfers whole, split and aborted, dispositions, and the session and link
//! errors a misbehaving peer earns (part 2 §2.5 to §2.8). Where the peer must misbehave, its
//! frames are written by hand straight into the server.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod support;

use bytes::{Bytes, BytesMut};
use sluice_codec::frame::{decode_frame, encode_performative, encode_transfer};
use sluice_codec::transport::{
    Accepted, Begin, DeliveryState, DeliveryTag, Detach, Disposition, End, Error, Flow,
    Performative, Role, Transfer, conditions,
};
use sluice_engine::testing::accept_mirrored;
use sluice_engine::{
    Config, Event, LINK_HANDLE_MAX_DEFAULT, LinkId, SESSION_WINDOW_DEFAULT, SendError, SessionId,
};
use support::*;

// ---------------------------------------------------------------------------------------------
// 1. Sessions
// ---------------------------------------------------------------------------------------------

#[test]
fn begin_and_end_from_the_client_reuse_the_channel() {
    let mut client = client_config();
    client.session_window = 100;
    client.link_handle_max = 9;
    let mut pair = open_pair(client, Config::server("s"));

    let first = pair.client.begin(pair.now).unwrap();
    assert_eq!(first, SessionId(0));
    pair.drive();
    // The server sees the client's begin as sent: no remote channel, the client's windows.
    assert_eq!(
        pair.server_events(),
        vec![Event::SessionBegun {
            session: SessionId(0),
            remote: Box::new(Begin {
                remote_channel: None,
                next_outgoing_id: 0,
                incoming_window: 100,
                outgoing_window: 100,
                handle_max: 9,
                ..Default::default()
            }),
        }]
    );
    // The client sees the server's answer, naming the client's channel.
    assert_eq!(
        pair.client_events(),
        vec![Event::SessionBegun {
            session: SessionId(0),
            remote: Box::new(Begin {
                remote_channel: Some(0),
                next_outgoing_id: 0,
                incoming_window: SESSION_WINDOW_DEFAULT,
                outgoing_window: SESSION_WINDOW_DEFAULT,
                handle_max: LINK_HANDLE_MAX_DEFAULT,
                ..Default::default()
            }),
        }]
    );

    // A second session takes the next channel on both ends.
    let second = pair.client.begin(pair.now).unwrap();
    assert_eq!(second, SessionId(1));
    pair.drive();
    assert!(matches!(
        &pair.server_events()[..],
        [Event::SessionBegun { session: SessionId(1), remote }] if remote.remote_channel.is_none()
    ));
    assert!(matches!(
        &pair.client_events()[..],
        [Event::SessionBegun { session: SessionId(1), remote }] if remote.remote_channel == Some(1)
    ));

    // The client ends the first with an error: one end frame on channel 0 carries it.
    let error = Error::new(conditions::INTERNAL_ERROR, "going away");
    pair.client.end(first, Some(error.clone()), pair.now);
    let wire = pair.client.take_output();
    let written = frames(wire.clone());
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].0, 0);
    assert_eq!(
        written[0].1,
        Performative::End(End {
            error: Some(error.clone())
        })
    );
    pair.server.handle_input(&wire, pair.now);
    // The server reports the error and answers with a plain end.
    assert_eq!(
        pair.server_events(),
        vec![Event::SessionEnded {
            session: SessionId(0),
            error: Some(error),
        }]
    );
    let answer = frames(pair.server.take_output());
    assert_eq!(answer.len(), 1);
    assert_eq!(answer[0].0, 0);
    assert_eq!(answer[0].1, Performative::End(End { error: None }));
    pair.client.handle_input(
        &{
            let mut b = BytesMut::new();
            encode_performative(&mut b, 0, &answer[0].1, 512).unwrap();
            b
        },
        pair.now,
    );
    assert_eq!(
        pair.client_events(),
        vec![Event::SessionEnded {
            session: first,
            error: None,
        }]
    );
    assert!(pair.client.is_open() && pair.server.is_open());

    // Channel 0 is free again on both ends; the second session is untouched.
    let third = pair.client.begin(pair.now).unwrap();
    assert_eq!(third, SessionId(0));
    pair.drive();
    assert!(matches!(
        &pair.server_events()[..],
        [Event::SessionBegun {
            session: SessionId(0),
            ..
        }]
    ));
    assert!(matches!(
        &pair.client_events()[..],
        [Event::SessionBegun { session: SessionId(0), remote }] if remote.remote_channel == Some(0)
    ));
    // Both live sessions carry links.
    for session in [third, second] {
        let name = format!("on-{}", session.0);
        attach_sender(&mut pair, session, &name, 1, |_| {});
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Credit and deliveries
// ---------------------------------------------------------------------------------------------

#[test]
fn a_sender_sends_exactly_its_credit() {
    let (mut pair, client, server) = pair_with_sender(Config::server("s"), 5);
    assert_eq!(pair.client.credit(client), 5);
    let mut sent = Vec::new();
    for i in 0..5u32 {
        let tag = DeliveryTag::from_u64(100 + u64::from(i));
        let payload = format!("message {i}");
        let settled = i % 2 == 0;
        let id = pair
            .client
            .send(client, tag, payload.as_bytes(), settled, pair.now)
            .unwrap();
        assert_eq!(id, i);
        sent.push((id, Some(tag), settled, Bytes::from(payload)));
    }
    assert_eq!(pair.client.credit(client), 0);
    assert_eq!(
        pair.client.send(
            client,
            DeliveryTag::from_u64(105),
            b"one too many",
            false,
            pair.now
        ),
        Err(SendError::NoCredit)
    );
    pair.drive();
    let events = pair.server_events();
    assert_eq!(events.len(), 5, "{events:?}");
    assert!(events.iter().all(|e| matches!(
        e,
        Event::Delivery { link, state: None, .. } if *link == server
    )));
    assert_eq!(deliveries(&events), sent);
    // Nothing came back to the client: no flow, no detach.
    assert!(pair.client_events().is_empty());
}

#[test]
fn a_message_larger_than_the_frame_is_split_and_joined() {
    let mut server = Config::server("s");
    server.frame_size_max = 512;
    let (mut pair, client, server) = pair_with_sender(server, 1);
    let payload: Vec<u8> = (0..10 * 1024).map(|i| (i % 251) as u8).collect();
    pair.client
        .send(client, DeliveryTag::from_u64(1), &payload, false, pair.now)
        .unwrap();
    let wire = pair.client.take_output();
    let written = frames(wire.clone());
    assert!(written.len() > 20, "{} frames", written.len());
    let mut joined = Vec::new();
    for (i, (channel, p, bytes)) in written.iter().enumerate() {
        assert_eq!(*channel, 0);
        let Performative::Transfer(t) = p else {
            panic!("{p:?}")
        };
        assert_eq!(t.more, i + 1 < written.len());
        assert_eq!(t.delivery_id.is_some(), i == 0);
        joined.extend_from_slice(bytes);
    }
    assert_eq!(joined, payload);
    // Every frame fits the server's limit.
    let mut rest = wire.clone();
    while !rest.is_empty() {
        decode_frame(&mut rest, 512).unwrap().unwrap();
    }
    pair.server.handle_input(&wire, pair.now);
    let events = pair.server_events();
    assert_eq!(
        events,
        vec![Event::Delivery {
            link: server,
            delivery_id: 0,
            tag: Some(DeliveryTag::from_u64(1)),
            settled: false,
            state: None,
            payload: Bytes::from(payload),
        }]
    );
}

#[test]
fn an_aborted_delivery_is_dropped_and_the_next_one_arrives() {
    let (mut pair, client, server) = pair_with_sender(Config::server("s"), 10);
    let handle = client.handle;
    inject_transfer(
        &mut pair,
        0,
        &first_transfer(handle, 0, true),
        b"first half",
    );
    inject_transfer(&mut pair, 0, &next_transfer(handle, true), b"second half");
    assert!(pair.server_events().is_empty());
    let abort = Transfer {
        aborted: true,
        ..next_transfer(handle, false)
    };
    inject_transfer(&mut pair, 0, &abort, b"");
    assert_eq!(
        pair.server_events(),
        vec![Event::Aborted {
            link: server,
            delivery_id: 0
        }]
    );
    // An abort is no error: nothing is written back.
    assert!(server_wrote(&mut pair).is_empty());

    inject_transfer(&mut pair, 0, &first_transfer(handle, 1, false), b"whole");
    assert_eq!(
        pair.server_events(),
        vec![Event::Delivery {
            link: server,
            delivery_id: 1,
            tag: Some(DeliveryTag::from_u64(1)),
            settled: false,
            state: None,
            payload: Bytes::from_static(b"whole"),
        }]
    );
    assert!(server_wrote(&mut pair).is_empty());
}

// ---------------------------------------------------------------------------------------------
// 5. Refusal
// ---------------------------------------------------------------------------------------------

#[test]
fn a_refused_attach_answers_with_null_terminii_then_a_closing_detach() {
    let mut pair = default_pair();
    let (session, _) = begin(&mut pair);
    let client = pair
        .client
        .attach(session, sender_attach("missing"), pair.now)
        .unwrap();
    pair.drive();
    let (server, attach) = remote_attach(&mut pair);
    assert_eq!(attach.name.as_str(), "missing");
    let error = Error::new(conditions::NOT_FOUND, "no node named missing");
    pair.server.refuse_link(server, error.clone(), pair.now);

    // On the wire: an attach with the server's role and no terminii, then the detach.
    let wire = pair.server.take_output();
    let written = frames(wire.clone());
    assert_eq!(written.len(), 2, "{written:?}");
    let Performative::Attach(refusal) = &written[0].1 else {
        panic!("{written:?}")
    };
    assert_eq!(refusal.name.as_str(), "missing");
    assert_eq!(refusal.handle, server.handle);
    assert_eq!(refusal.role, Role::Receiver);
    assert!(refusal.source.is_none() && refusal.target.is_none());
    assert_eq!(
        written[1].1,
        Performative::Detach(Detach {
            handle: server.handle,
            closed: true,
            error: Some(error.clone()),
        })
    );

    pair.client.handle_input(&wire, pair.now);
    let events = pair.client_events();
    assert_eq!(events.len(), 2, "{events:?}");
    let Event::LinkAttached {
        link,
        attach,
        remote_first: false,
    } = &events[0]
    else {
        panic!("{events:?}")
    };
    assert_eq!(*link, client);
    assert!(attach.source.is_none() && attach.target.is_none());
    assert_eq!(
        events[1],
        Event::LinkDetached {
            link: client,
            closed: true,
            error: Some(error),
        }
    );
    // The client answers the detach; the server sees its refusal completed.
    pair.drive();
    assert_eq!(
        pair.server_events(),
        vec![Event::LinkDetached {
            link: server,
            closed: true,
            error: None,
        }]
    );
    assert_eq!(
        pair.client
            .send(client, DeliveryTag::from_u64(0), b"x", false, pair.now),
        Err(SendError::NotSender)
    );
    // The handle is free again: the next attach takes it.
    let again = pair
        .client
        .attach(session, sender_attach("present"), pair.now)
        .unwrap();
    assert_eq!(again.handle, client.handle);
}

// ---------------------------------------------------------------------------------------------
// 6. Drain
// ---------------------------------------------------------------------------------------------

#[test]
fn a_drain_uses_up_what_is_sent_and_returns_the_rest() {
    let (mut pair, client, server) = pair_with_sender(Config::server("s"), 0);
    pair.server.grant_credit(server, 10, true, pair.now);
    pair.drive();
    assert_eq!(
        pair.client_events(),
        vec![Event::Credit {
            link: client,
            credit: 10,
            drain: true
        }]
    );
    for i in 0..3 {
        pair.client
            .send(client, DeliveryTag::from_u64(i), b"m", true, pair.now)
            .unwrap();
    }
    assert_eq!(pair.client.credit(client), 7);
    pair.client.drained(client, pair.now);
    assert_eq!(pair.client.credit(client), 0);
    // The flow after the transfers: delivery-count advanced by all ten, no credit left.
    let wire = pair.client.take_output();
    let written = frames(wire.clone());
    assert_eq!(written.len(), 4);
    let Performative::Flow(flow) = &written[3].1 else {
        panic!("{written:?}")
    };
    assert_eq!(flow.handle, Some(client.handle));
    assert_eq!(flow.delivery_count, Some(10));
    assert_eq!(flow.link_credit, Some(0));
    assert!(flow.drain);

    pair.server.handle_input(&wire, pair.now);
    let events = pair.server_events();
    assert_eq!(deliveries(&events).len(), 3);
    assert_eq!(events[3], Event::Drained { link: server });
    assert_eq!(events.len(), 4);
    assert_eq!(
        pair.client
            .send(client, DeliveryTag::from_u64(3), b"late", true, pair.now),
        Err(SendError::NoCredit)
    );
    // The server's view of the credit is zero too: a transfer sent anyway exceeds it.
    inject_transfer(
        &mut pair,
        0,
        &first_transfer(client.handle, 3, false),
        b"late",
    );
    assert!(deliveries(&pair.server_events()).is_empty());
    assert_eq!(
        detached_with(&server_wrote(&mut pair)),
        Some((server.handle, true, conditions::TRANSFER_LIMIT_EXCEEDED))
    );
    // New credit after a drain is honoured as usual.
    let (mut pair, client, server) = pair_with_sender(Config::server("s"), 0);
    pair.server.grant_credit(server, 2, true, pair.now);
    pair.drive();
    pair.client_events();
    pair.client.drained(client, pair.now);
    pair.drive();
    assert_eq!(pair.server_events(), vec![Event::Drained { link: server }]);
    pair.server.grant_credit(server, 4, false, pair.now);
    pair.drive();
    assert_eq!(
        pair.client_events(),
        vec![Event::Credit {
            link: client,
            credit: 4,
            drain: false
        }]
    );
}

// ---------------------------------------------------------------------------------------------
// 7. Session window
// ---------------------------------------------------------------------------------------------

#[test]
fn a_transfer_beyond_a_closed_window_ends_the_session_only() {
    let mut server = Config::server("s");
    server.session_window = 0;
    let (mut pair, client, _) = pair_with_sender(server, 10);
    // The client has honest numbers: the server's window is closed.
    assert_eq!(
        pair.client
            .send(client, DeliveryTag::from_u64(0), b"m", false, pair.now),
        Err(SendError::WindowFull)
    );
    inject_transfer(&mut pair, 0, &first_transfer(client.handle, 0, false), b"m");
    assert!(pair.server_events().is_empty());
    let written = frames(pair.server.take_output());
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(written[0].0, 0);
    assert_eq!(
        ended_with(&[written[0].1.clone()]),
        Some(conditions::WINDOW_VIOLATION)
    );
    // More frames before the client's end are ignored; the connection stays open.
    inject_transfer(&mut pair, 0, &first_transfer(client.handle, 1, false), b"m");
    assert!(server_wrote(&mut pair).is_empty());
    assert!(pair.server.is_open());
    let mut end = BytesMut::new();
    encode_performative(&mut end, 0, &written[0].1, 512).unwrap();
    pair.client.handle_input(&end, pair.now);
    let events = pair.client_events();
    let [Event::SessionEnded { error: Some(e), .. }] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(e.condition, conditions::WINDOW_VIOLATION);
    pair.drive();
    assert!(matches!(
        &pair.server_events()[..],
        [Event::SessionEnded { error: None, .. }]
    ));
    assert!(pair.client.is_open() && pair.server.is_open());
    // A new session on the same connection works.
    begin(&mut pair);
}

#[test]
fn a_burst_past_a_small_window_is_met_by_window_refills() {
    let mut server = Config::server("s");
    server.session_window = 4;
    let (mut pair, client, server) = pair_with_sender(server, 100);
    for i in 0..10 {
        inject_transfer(&mut pair, 0, &first_transfer(client.handle, i, false), b"m");
    }
    // Each transfer arrives in its own read; after a read that leaves less than half the
    // window (after transfers 3, 6 and 9) the server widens it with one flow.
    let written = server_wrote(&mut pair);
    let refills: Vec<(Option<u32>, u32, Option<u32>)> = written
        .iter()
        .map(|p| match p {
            Performative::Flow(flow) => (flow.next_incoming_id, flow.incoming_window, flow.handle),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        refills,
        vec![(Some(3), 4, None), (Some(6), 4, None), (Some(9), 4, None)]
    );
    let events = pair.server_events();
    assert_eq!(deliveries(&events).len(), 10);
    assert!(
        events
            .iter()
            .all(|e| matches!(e, Event::Delivery { link, .. } if *link == server))
    );
}

#[test]
fn a_burst_past_the_advertised_window_in_one_read_ends_the_session() {
    let mut server = Config::server("s");
    server.session_window = 4;
    let (mut pair, client, _) = pair_with_sender(server, 100);
    // Ten transfers in one read: the sender cannot have seen a refill for any of them, so the
    // fifth is past the window the server advertised.
    let mut wire = BytesMut::new();
    for i in 0..10 {
        encode_transfer(
            &mut wire,
            0,
            &first_transfer(client.handle, i, false),
            b"m",
            u32::MAX,
        )
        .unwrap();
    }
    pair.server.handle_input(&wire, pair.now);
    let events = pair.server_events();
    assert_eq!(deliveries(&events).len(), 4);
    let written = server_wrote(&mut pair);
    let ended = written.iter().find_map(|p| match p {
        Performative::End(End { error: Some(e) }) => Some(e.condition.clone()),
        _ => None,
    });
    assert_eq!(ended, Some(conditions::WINDOW_VIOLATION));
    assert!(
        pair.server.is_open(),
        "a session error leaves the connection open"
    );
}

#[test]
fn a_window_of_one_keeps_moving() {
    let mut server = Config::server("s");
    server.session_window = 1;
    let (mut pair, client, server) = pair_with_sender(server, 10);
    for i in 0..5 {
        let sent = pair
            .client
            .send(client, DeliveryTag::from_u64(i), b"m", false, pair.now);
        assert_eq!(sent, Ok(i as u32), "delivery {i}");
        pair.drive();
    }
    assert_eq!(deliveries(&pair.server_events()).len(), 5);
    assert_eq!(pair.server.credit(server), 5);
}

// ---------------------------------------------------------------------------------------------
// 8. Handles
// ---------------------------------------------------------------------------------------------

#[test]
fn frames_for_an_unattached_handle_end_the_session() {
    let cases: [Performative; 3] = [
        Transfer {
            handle: 7,
            delivery_id: Some(0),
            delivery_tag: Some(DeliveryTag::from_u64(0)),
            ..Default::default()
        }
        .into(),
        Flow {
            next_incoming_id: Some(0),
            incoming_window: 10,
            next_outgoing_id: 0,
            outgoing_window: 10,
            handle: Some(7),
            delivery_count: Some(0),
            link_credit: Some(10),
            ..Default::default()
        }
        .into(),
        Detach {
            handle: 7,
            closed: true,
            error: None,
        }
        .into(),
    ];
    for case in cases {
        // One real link on handle 0, so only handle 7 is unknown.
        let (mut pair, _, _) = pair_with_sender(Config::server("s"), 10);
        inject(&mut pair, 0, std::slice::from_ref(&case));
        let written = frames(pair.server.take_output());
        assert_eq!(written.len(), 1, "{case:?}: {written:?}");
        assert_eq!(written[0].0, 0);
        assert_eq!(
            ended_with(&[written[0].1.clone()]),
            Some(conditions::UNATTACHED_HANDLE),
            "{case:?}"
        );
        assert!(pair.server.is_open(), "{case:?}");
        let mut end = BytesMut::new();
        encode_performative(&mut end, 0, &written[0].1, 512).unwrap();
        pair.client.handle_input(&end, pair.now);
        let events = pair.client_events();
        let [Event::SessionEnded { error: Some(e), .. }] = &events[..] else {
            panic!("{case:?}: {events:?}")
        };
        assert_eq!(e.condition, conditions::UNATTACHED_HANDLE);
        pair.drive();
        assert!(matches!(
            &pair.server_events()[..],
            [Event::SessionEnded { error: None, .. }]
        ));
        assert!(pair.client.is_open() && pair.server.is_open());
    }
}

#[test]
fn an_attach_on_a_handle_in_use_ends_the_session() {
    let (mut pair, client, _) = pair_with_sender(Config::server("s"), 10);
    let mut again = sender_attach("another");
    again.handle = client.handle;
    inject(&mut pair, 0, &[again.into()]);
    assert!(pair.server_events().is_empty());
    let written = server_wrote(&mut pair);
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(ended_with(&written), Some(conditions::HANDLE_IN_USE));
    assert!(pair.server.is_open());
}

#[test]
fn an_attach_above_handle_max_closes_the_connection() {
    let mut server = Config::server("s");
    server.link_handle_max = 3;
    let mut pair = open_pair(client_config(), server);
    let (session, _) = begin(&mut pair);
    assert_eq!(session, SessionId(0));
    let mut attach = sender_attach("high");
    attach.handle = 4;
    inject(&mut pair, 0, &[attach.into()]);
    let events = pair.server_events();
    let [Event::Failed(e)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(e.condition, conditions::FRAMING_ERROR);
    assert!(!pair.server.is_open());
}

// ---------------------------------------------------------------------------------------------
// 9. Credit violations
// ---------------------------------------------------------------------------------------------

#[test]
fn a_transfer_without_credit_detaches_the_link() {
    let (mut pair, client, server) = pair_with_sender(Config::server("s"), 0);
    inject_transfer(
        &mut pair,
        0,
        &first_transfer(client.handle, 0, false),
        b"unasked",
    );
    assert!(pair.server_events().is_empty());
    let written = server_wrote(&mut pair);
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(
        written[0],
        Performative::Detach(Detach {
            handle: server.handle,
            closed: true,
            error: Some(Error::new(
                conditions::TRANSFER_LIMIT_EXCEEDED,
                "transfer without link credit"
            )),
        })
    );
    // The rest of what the sender had in flight is dropped quietly until its detach arrives.
    inject_transfer(
        &mut pair,
        0,
        &first_transfer(client.handle, 1, true),
        b"more",
    );
    inject_transfer(&mut pair, 0, &next_transfer(client.handle, false), b"rest");
    assert!(pair.server_events().is_empty());
    assert!(server_wrote(&mut pair).is_empty());
    // The client answers the detach; both ends see the link closed.
    let mut detach = BytesMut::new();
    encode_performative(&mut detach, 0, &written[0], 512).unwrap();
    pair.client.handle_input(&detach, pair.now);
    let events = pair.client_events();
    let [
        Event::LinkDetached {
            link,
            closed: true,
            error: Some(e),
        },
    ] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!(*link, client);
    assert_eq!(e.condition, conditions::TRANSFER_LIMIT_EXCEEDED);
    pair.drive();
    assert_eq!(
        pair.server_events(),
        vec![Event::LinkDetached {
            link: server,
            closed: true,
            error: None
        }]
    );
    assert!(pair.client.is_open() && pair.server.is_open());
}

// ---------------------------------------------------------------------------------------------
// 10. Message size
// ---------------------------------------------------------------------------------------------

#[test]
fn a_message_over_the_receivers_limit_detaches_the_link() {
    let mut config = Config::server("s");
    config.message_size_max = 1000;
    let (mut pair, client, server) = pair_with_sender(config, 10);
    // At the limit is fine.
    inject_transfer(
        &mut pair,
        0,
        &first_transfer(client.handle, 0, false),
        &[1; 1000],
    );
    assert_eq!(deliveries(&pair.server_events()).len(), 1);
    // One frame over it: the link is closed.
    inject_transfer(
        &mut pair,
        0,
        &first_transfer(client.handle, 1, false),
        &[2; 1001],
    );
    assert!(pair.server_events().is_empty());
    assert_eq!(
        detached_with(&server_wrote(&mut pair)),
        Some((server.handle, true, conditions::MESSAGE_SIZE_EXCEEDED))
    );

    // Over it across frames: detached on the frame that crosses it, the rest dropped quietly.
    let mut config = Config::server("s");
    config.message_size_max = 1000;
    let (mut pair, client, server) = pair_with_sender(config, 10);
    inject_transfer(
        &mut pair,
        0,
        &first_transfer(client.handle, 0, true),
        &[1; 600],
    );
    assert!(server_wrote(&mut pair).is_empty());
    inject_transfer(&mut pair, 0, &next_transfer(client.handle, true), &[1; 600]);
    assert_eq!(
        detached_with(&server_wrote(&mut pair)),
        Some((server.handle, true, conditions::MESSAGE_SIZE_EXCEEDED))
    );
    inject_transfer(
        &mut pair,
        0,
        &next_transfer(client.handle, false),
        &[1; 600],
    );
    assert!(pair.server_events().is_empty());
    assert!(server_wrote(&mut pair).is_empty(), "the session lives on");
    assert!(pair.server.is_open());
}

#[test]
fn a_sender_refuses_a_message_over_the_advertised_limit() {
    let mut pair = default_pair();
    let (session, _) = begin(&mut pair);
    let (client, server) = attach_sender(&mut pair, session, "small", 10, |reply| {
        reply.max_message_size = Some(100);
    });
    assert_eq!(
        pair.client
            .send(client, DeliveryTag::from_u64(0), &[0; 101], false, pair.now),
        Err(SendError::TooLarge {
            size: 101,
            max: 100
        })
    );
    // Nothing went out and no credit was used.
    assert!(pair.client.take_output().is_empty());
    assert_eq!(pair.client.credit(client), 10);
    assert_eq!(
        pair.client
            .send(client, DeliveryTag::from_u64(0), &[0; 100], false, pair.now),
        Ok(0)
    );
    pair.drive();
    let events = pair.server_events();
    assert!(matches!(
        &events[..],
        [Event::Delivery { link, payload, .. }] if *link == server && payload.len() == 100
    ));
}

#[test]
fn the_receivers_limit_is_advertised_in_its_attach() {
    let mut config = Config::server("s");
    config.message_size_max = 1000;
    let mut pair = open_pair(client_config(), config);
    let (session, _) = begin(&mut pair);
    let client = pair
        .client
        .attach(session, sender_attach("q"), pair.now)
        .unwrap();
    pair.drive();
    let (server, attach) = remote_attach(&mut pair);
    accept_mirrored(&mut pair.server, server, &attach, pair.now);
    pair.drive();
    let events = pair.client_events();
    let Event::LinkAttached { attach, .. } = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(attach.max_message_size, Some(1000));
    // So the sender refuses what the receiver would detach the link for.
    assert_eq!(
        pair.client.send(
            client,
            DeliveryTag::from_u64(0),
            &[0; 1001],
            false,
            pair.now
        ),
        Err(SendError::TooLarge {
            size: 1001,
            max: 1000
        })
    );
    assert_eq!(
        pair.client.send(
            client,
            DeliveryTag::from_u64(0),
            &[0; 1000],
            false,
            pair.now
        ),
        Ok(0)
    );
    pair.drive();
    assert_eq!(deliveries(&pair.server_events()).len(), 1);

    // With no configured limit, a receiver that sets none advertises none.
    let mut config = Config::server("s");
    config.message_size_max = 0;
    let mut pair = open_pair(client_config(), config);
    let (session, _) = begin(&mut pair);
    pair.client
        .attach(session, sender_attach("q"), pair.now)
        .unwrap();
    pair.drive();
    let (server, attach) = remote_attach(&mut pair);
    accept_mirrored(&mut pair.server, server, &attach, pair.now);
    let written = server_wrote(&mut pair);
    let Performative::Attach(reply) = &written[0] else {
        panic!("{written:?}")
    };
    assert_eq!(reply.max_message_size, None);
}

// ---------------------------------------------------------------------------------------------
// 11. Dispositions
// ---------------------------------------------------------------------------------------------

#[test]
fn a_disposition_for_a_range_reaches_the_sender() {
    let (mut pair, client, server) = pair_with_sender(Config::server("s"), 10);
    for i in 0..4 {
        pair.client
            .send(client, DeliveryTag::from_u64(i), b"m", false, pair.now)
            .unwrap();
    }
    pair.drive();
    assert_eq!(deliveries(&pair.server_events()).len(), 4);
    let accepted = Some(DeliveryState::Accepted(Accepted {}));
    pair.server.disposition(
        server.session,
        Role::Receiver,
        1,
        3,
        true,
        accepted.clone(),
        pair.now,
    );
    let wire = pair.server.take_output();
    assert_eq!(
        frames(wire.clone())
            .into_iter()
            .map(|(_, p, _)| p)
            .collect::<Vec<_>>(),
        vec![Performative::Disposition(Disposition {
            role: Role::Receiver,
            first: 1,
            last: Some(3),
            settled: true,
            state: accepted.clone(),
            batchable: false,
        })]
    );
    pair.client.handle_input(&wire, pair.now);
    assert_eq!(
        pair.client_events(),
        vec![Event::Disposition {
            session: client.session,
            role: Role::Receiver,
            first: 1,
            last: 3,
            settled: true,
            state: accepted.clone(),
        }]
    );
    // A single delivery: `last` is left out on the wire and reported as `first`.
    pair.server.disposition(
        server.session,
        Role::Receiver,
        0,
        0,
        false,
        accepted.clone(),
        pair.now,
    );
    let wire = pair.server.take_output();
    let [(_, Performative::Disposition(d), _)] = &frames(wire.clone())[..] else {
        panic!()
    };
    assert_eq!(d.last, None);
    pair.client.handle_input(&wire, pair.now);
    assert_eq!(
        pair.client_events(),
        vec![Event::Disposition {
            session: client.session,
            role: Role::Receiver,
            first: 0,
            last: 0,
            settled: false,
            state: accepted,
        }]
    );
}

// ---------------------------------------------------------------------------------------------
// 12. Many links
// ---------------------------------------------------------------------------------------------

#[test]
fn a_session_with_a_thousand_links() {
    let mut pair = default_pair();
    let (session, _) = begin(&mut pair);
    let mut ours = Vec::new();
    for i in 0..1000 {
        let link = pair
            .client
            .attach(session, sender_attach(&format!("link-{i}")), pair.now)
            .unwrap();
        ours.push(link);
    }
    pair.drive();
    let events = pair.server_events();
    assert_eq!(events.len(), 1000);
    let mut server_handles = std::collections::HashSet::new();
    for e in &events {
        let Event::LinkAttached {
            link,
            attach,
            remote_first: true,
        } = e
        else {
            panic!("{e:?}")
        };
        assert!(server_handles.insert(link.handle));
        accept_mirrored(&mut pair.server, *link, attach, pair.now);
    }
    pair.drive();
    let events = pair.client_events();
    let attached: Vec<LinkId> = events
        .iter()
        .filter_map(|e| match e {
            Event::LinkAttached {
                link,
                remote_first: false,
                ..
            } => Some(*link),
            _ => None,
        })
        .collect();
    assert_eq!(attached, ours);
    let distinct: std::collections::HashSet<u32> = attached.iter().map(|l| l.handle).collect();
    assert_eq!(distinct.len(), 1000);
    // accept_mirrored granted each 100 credit.
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::Credit { credit: 100, .. }))
            .count(),
        1000
    );
    // The last link carries a delivery to the right server link.
    let last = *ours.last().unwrap();
    pair.client
        .send(last, DeliveryTag::from_u64(9), b"last", true, pair.now)
        .unwrap();
    pair.drive();
    let events = pair.server_events();
    let [Event::Delivery { link, payload, .. }] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(&payload[..], b"last");
    assert!(server_handles.contains(&link.handle));
}

#[test]
fn attach_stays_within_the_peers_handle_max() {
    let mut server = Config::server("s");
    server.link_handle_max = 2;
    let mut pair = open_pair(client_config(), server);
    let (session, _) = begin(&mut pair);
    for handle in 0..=2 {
        let link = pair
            .client
            .attach(session, sender_attach(&format!("l{handle}")), pair.now)
            .unwrap();
        assert_eq!(link.handle, handle);
    }
    let refused = pair
        .client
        .attach(session, sender_attach("l3"), pair.now)
        .unwrap_err();
    assert_eq!(refused.condition, conditions::RESOURCE_LIMIT_EXCEEDED);
    pair.drive();
    assert_eq!(pair.server_events().len(), 3);
    assert!(pair.server.is_open());
}

// ---------------------------------------------------------------------------------------------
// Unsettled limits and `available`
// ---------------------------------------------------------------------------------------------

#[test]
fn a_consumer_that_never_settles_stops_receiving_at_the_unsettled_limit() {
    let mut client = client_config();
    client.link_unsettled_max = 3;
    let mut pair = open_pair(client, Config::server("s"));
    let (session, server_session) = begin(&mut pair);
    let (link, _) = attach_sender(&mut pair, session, "q", 10, |_| {});
    for i in 0..3 {
        assert_eq!(
            pair.client
                .send(link, DeliveryTag::from_u64(i), b"m", false, pair.now),
            Ok(i as u32)
        );
    }
    let refused = pair
        .client
        .send(link, DeliveryTag::from_u64(3), b"m", false, pair.now);
    assert_eq!(refused, Err(SendError::TooManyUnsettled));
    assert_eq!(pair.client.sendable(link), 0, "credit is left, room is not");
    assert_eq!(pair.client.credit(link), 7);
    // Pre-settled deliveries are not held, so they still go.
    assert_eq!(
        pair.client
            .send(link, DeliveryTag::from_u64(4), b"m", true, pair.now),
        Ok(3)
    );
    pair.drive();
    pair.server_events();
    // The receiver settles the first two with a range: two more may go.
    pair.server.disposition(
        server_session,
        Role::Receiver,
        0,
        1,
        true,
        Some(Accepted {}.into()),
        pair.now,
    );
    pair.drive();
    pair.client_events();
    assert_eq!(pair.client.sendable(link), 2, "the settled two made room");
    assert_eq!(
        pair.client
            .send(link, DeliveryTag::from_u64(5), b"m", false, pair.now),
        Ok(4)
    );
    assert_eq!(
        pair.client
            .send(link, DeliveryTag::from_u64(6), b"m", false, pair.now),
        Ok(5)
    );
    assert_eq!(
        pair.client
            .send(link, DeliveryTag::from_u64(7), b"m", false, pair.now),
        Err(SendError::TooManyUnsettled)
    );
    // A range covering every id settles what is unsettled without visiting four billion ids.
    pair.server.disposition(
        server_session,
        Role::Receiver,
        0,
        u32::MAX,
        true,
        None,
        pair.now,
    );
    pair.drive();
    assert_eq!(
        pair.client
            .send(link, DeliveryTag::from_u64(8), b"m", false, pair.now),
        Ok(6)
    );
}

#[test]
fn a_producer_past_the_receivers_unsettled_limit_is_detached() {
    let mut server = Config::server("s");
    server.link_unsettled_max = 2;
    let (mut pair, client, server) = pair_with_sender(server, 10);
    for i in 0..3 {
        pair.client
            .send(client, DeliveryTag::from_u64(i), b"m", false, pair.now)
            .unwrap();
    }
    pair.drive();
    let events = pair.server_events();
    assert_eq!(deliveries(&events).len(), 2);
    let detached = pair.client_events().into_iter().find_map(|e| match e {
        Event::LinkDetached {
            link,
            error: Some(error),
            ..
        } if link == client => Some(error.condition),
        _ => None,
    });
    assert_eq!(detached, Some(conditions::RESOURCE_LIMIT_EXCEEDED));
    let _ = server;
}

#[test]
fn a_sender_tells_the_receiver_what_it_has_available() {
    let (mut pair, client, server) = pair_with_sender(Config::server("s"), 5);
    pair.client.set_available(client, 7, pair.now);
    pair.drive();
    assert_eq!(pair.server.available(server), 7);
}

#[test]
fn a_resumed_delivery_is_refused_by_detaching_the_link() {
    let (mut pair, client, server) = pair_with_sender(Config::server("s"), 5);
    let mut resumed = first_transfer(client.handle, 0, false);
    resumed.resume = true;
    inject_transfer(&mut pair, 0, &resumed, b"m");
    let written = server_wrote(&mut pair);
    let Some(Performative::Detach(Detach {
        error: Some(error),
        closed: true,
        ..
    })) = written.first()
    else {
        panic!("{written:?}")
    };
    assert_eq!(error.condition, conditions::NOT_IMPLEMENTED);
    assert!(deliveries(&pair.server_events()).is_empty());
    let _ = server;
}

#[test]
fn a_sender_asking_for_receiver_settle_second_is_told_first_unless_configured() {
    use sluice_codec::transport::ReceiverSettleMode;
    for supported in [false, true] {
        let mut server = Config::server("s");
        server.receiver_settle_second = supported;
        let mut pair = open_pair(client_config(), server);
        let (session, _) = begin(&mut pair);
        let mut attach = sender_attach("exactly-once");
        attach.rcv_settle_mode = ReceiverSettleMode::Second;
        let link = pair.client.attach(session, attach, pair.now).unwrap();
        pair.drive();
        let (server_link, attach) = remote_attach(&mut pair);
        // The caller answers as one that settles second would.
        let mut reply = receiver_reply(&attach);
        reply.rcv_settle_mode = ReceiverSettleMode::Second;
        pair.server.accept_link(server_link, reply, pair.now);
        pair.drive();
        let events = pair.client_events();
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, Event::LinkDetached { link: l, .. } if *l == link)),
            "{events:?}"
        );
        let stated = events.iter().find_map(|e| match e {
            Event::LinkAttached {
                link: l, attach, ..
            } if *l == link => Some(attach.rcv_settle_mode),
            _ => None,
        });
        // Part 2 §2.7.3: the receiver states the mode it uses.
        let expected = if supported {
            ReceiverSettleMode::Second
        } else {
            ReceiverSettleMode::First
        };
        assert_eq!(stated, Some(expected));
    }
}

#[test]
fn a_transfer_before_our_attach_answer_is_refused_in_order() {
    let mut pair = open_pair(client_config(), Config::server("s"));
    let (session, _) = begin(&mut pair);
    let link = pair
        .client
        .attach(session, sender_attach("eager"), pair.now)
        .unwrap();
    pair.drive();
    let (server_link, attach) = remote_attach(&mut pair);
    // The sender does not wait for our attach or credit.
    inject_transfer(&mut pair, 0, &first_transfer(link.handle, 0, false), b"m");
    let written = server_wrote(&mut pair);
    assert!(
        matches!(&written[0], Performative::Attach(a) if a.source.is_none() && a.target.is_none()),
        "{written:?}"
    );
    let Performative::Detach(Detach {
        error: Some(error),
        closed: true,
        ..
    }) = &written[1]
    else {
        panic!("{written:?}")
    };
    assert_eq!(error.condition, conditions::TRANSFER_LIMIT_EXCEEDED);
    // The caller's answer comes too late and changes nothing.
    pair.server
        .accept_link(server_link, receiver_reply(&attach), pair.now);
    assert!(server_wrote(&mut pair).is_empty());
}
