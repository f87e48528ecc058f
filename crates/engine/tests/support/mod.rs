//! Helpers the link and partial-delivery scenarios share: a pair past open, sessions and
//! sending links set up from the client, frames written by hand into the server, and what the
//! server wrote back.

#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use sluice_codec::frame::{FrameBody, decode_frame, encode_performative, encode_transfer};
use sluice_codec::messaging::{Source, Target};
use sluice_codec::transport::{
    Attach, AttachTarget, DeliveryTag, Detach, End, Performative, Role, Transfer,
};
use sluice_codec::types::Symbol;
use sluice_engine::testing::Pair;
use sluice_engine::{Config, Event, LinkId, SaslConfig, SessionId};

pub(crate) fn client_config() -> Config {
    Config::client("c", SaslConfig::None)
}

/// A pair past the open exchange, with the `Opened` events consumed.
pub(crate) fn open_pair(client: Config, server: Config) -> Pair {
    let mut pair = Pair::new(client, server);
    pair.drive();
    assert!(pair.client.is_open() && pair.server.is_open());
    pair.client_events();
    pair.server_events();
    pair
}

pub(crate) fn default_pair() -> Pair {
    open_pair(client_config(), Config::server("s"))
}

/// Begins a session from the client: its id on the client and on the server.
pub(crate) fn begin(pair: &mut Pair) -> (SessionId, SessionId) {
    let client = pair.client.begin(pair.now).unwrap();
    pair.drive();
    let server = match &pair.server_events()[..] {
        [Event::SessionBegun { session, .. }] => *session,
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        &pair.client_events()[..],
        [Event::SessionBegun { session, .. }] if *session == client
    ));
    (client, server)
}

/// The attach a client sends for a sending link named `name`.
pub(crate) fn sender_attach(name: &str) -> Attach {
    Attach {
        name: name.into(),
        role: Role::Sender,
        source: Some(Source {
            address: Some(format!("{name}-src").as_str().into()),
            ..Default::default()
        }),
        target: Some(AttachTarget::Target(Target {
            address: Some(name.into()),
            ..Default::default()
        })),
        initial_delivery_count: Some(0),
        ..Default::default()
    }
}

/// The server's answer to a sender's attach: a receiver with the same terminii.
pub(crate) fn receiver_reply(attach: &Attach) -> Attach {
    Attach {
        name: attach.name.clone(),
        role: Role::Receiver,
        source: attach.source.clone(),
        target: attach.target.clone(),
        ..Default::default()
    }
}

/// The server's view of the link the client has just attached: its id and the client's attach.
pub(crate) fn remote_attach(pair: &mut Pair) -> (LinkId, Attach) {
    match pair.server_events().as_slice() {
        [
            Event::LinkAttached {
                link,
                attach,
                remote_first: true,
            },
        ] => (*link, (**attach).clone()),
        other => panic!("{other:?}"),
    }
}

/// Attaches a sender `name` from the client; the server accepts it as a receiver with `reply`
/// (adjusted from its default) and grants `credit` when there is any. Returns the link on the
/// client and on the server, with the client's `LinkAttached` (and `Credit`) events consumed.
pub(crate) fn attach_sender(
    pair: &mut Pair,
    session: SessionId,
    name: &str,
    credit: u32,
    adjust: impl FnOnce(&mut Attach),
) -> (LinkId, LinkId) {
    let client = pair
        .client
        .attach(session, sender_attach(name), pair.now)
        .unwrap();
    pair.drive();
    let (server, attach) = remote_attach(pair);
    let mut reply = receiver_reply(&attach);
    adjust(&mut reply);
    pair.server.accept_link(server, reply, pair.now);
    if credit > 0 {
        pair.server.grant_credit(server, credit, false, pair.now);
    }
    pair.drive();
    let events = pair.client_events();
    assert!(
        matches!(&events[0], Event::LinkAttached { link, remote_first: false, .. } if *link == client),
        "{events:?}"
    );
    if credit > 0 {
        assert_eq!(
            events[1..],
            [Event::Credit {
                link: client,
                credit,
                drain: false
            }]
        );
    }
    (client, server)
}

/// A pair with one session and one sending link from the client, granted `credit`.
pub(crate) fn pair_with_sender(server: Config, credit: u32) -> (Pair, LinkId, LinkId) {
    let mut pair = open_pair(client_config(), server);
    let (session, _) = begin(&mut pair);
    let (client, server) = attach_sender(&mut pair, session, "q", credit, |_| {});
    (pair, client, server)
}

/// Every AMQP frame in `bytes` (protocol headers skipped): channel, performative, payload.
pub(crate) fn frames(mut bytes: BytesMut) -> Vec<(u16, Performative, Bytes)> {
    let mut out = Vec::new();
    loop {
        if bytes.starts_with(b"AMQP") {
            let _ = bytes.split_to(8);
            continue;
        }
        match decode_frame(&mut bytes, u32::MAX) {
            Ok(Some(f)) => match f.body {
                FrameBody::Amqp {
                    performative,
                    payload,
                } => out.push((f.channel, performative, payload)),
                other => panic!("{other:?}"),
            },
            Ok(None) => {
                assert!(bytes.is_empty(), "a partial frame");
                return out;
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// The performatives the server has written since its output was last taken.
pub(crate) fn server_wrote(pair: &mut Pair) -> Vec<Performative> {
    frames(pair.server.take_output())
        .into_iter()
        .map(|(_, p, _)| p)
        .collect()
}

/// Writes hand-made performatives from the "client" straight into the server on `channel`.
pub(crate) fn inject(pair: &mut Pair, channel: u16, performatives: &[Performative]) {
    let mut wire = BytesMut::new();
    for p in performatives {
        encode_performative(&mut wire, channel, p, u32::MAX).unwrap();
    }
    pair.server.handle_input(&wire, pair.now);
}

/// Writes one hand-made transfer frame (flags exactly as given) into the server.
pub(crate) fn inject_transfer(pair: &mut Pair, channel: u16, transfer: &Transfer, payload: &[u8]) {
    let mut wire = BytesMut::new();
    encode_transfer(&mut wire, channel, transfer, payload, u32::MAX).unwrap();
    pair.server.handle_input(&wire, pair.now);
}

/// The first transfer of a delivery on `handle`.
pub(crate) fn first_transfer(handle: u32, delivery_id: u32, more: bool) -> Transfer {
    Transfer {
        handle,
        delivery_id: Some(delivery_id),
        delivery_tag: Some(DeliveryTag::from_u64(u64::from(delivery_id))),
        message_format: Some(0),
        settled: Some(false),
        more,
        ..Default::default()
    }
}

/// A continuation transfer of the delivery in progress on `handle`.
pub(crate) fn next_transfer(handle: u32, more: bool) -> Transfer {
    Transfer {
        handle,
        more,
        ..Default::default()
    }
}

pub(crate) fn ended_with(performatives: &[Performative]) -> Option<Symbol> {
    performatives.iter().find_map(|p| match p {
        Performative::End(End { error }) => Some(error.as_ref().unwrap().condition.clone()),
        _ => None,
    })
}

pub(crate) fn detached_with(performatives: &[Performative]) -> Option<(u32, bool, Symbol)> {
    performatives.iter().find_map(|p| match p {
        Performative::Detach(Detach {
            handle,
            closed,
            error,
        }) => Some((*handle, *closed, error.as_ref().unwrap().condition.clone())),
        _ => None,
    })
}

pub(crate) fn deliveries(events: &[Event]) -> Vec<(u32, Option<DeliveryTag>, bool, Bytes)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Delivery {
                delivery_id,
                tag,
                settled,
                payload,
                ..
            } => Some((*delivery_id, *tag, *settled, payload.clone())),
            _ => None,
        })
        .collect()
}
