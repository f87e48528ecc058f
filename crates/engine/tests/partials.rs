//! Unfinished deliveries against the connection's limit (`Config::partial_bytes_max`): the
//! bytes of every link's delivery in progress count together, tiny frames hold about what they
//! carry, and what a link was receiving is given back when it detaches or its session ends.
//! The transfers are written by hand into the server, so a delivery can stay unfinished.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod support;

use bytes::BytesMut;
use sluice_codec::frame::encode_transfer;
use sluice_codec::transport::{Detach, Performative, conditions};
use sluice_engine::testing::Pair;
use sluice_engine::{Config, LinkId, SessionId};
use support::*;

/// A large transfer's payload: a frame of its own, held as it came.
const LARGE: usize = 100_000;

fn server_config(partial_bytes_max: usize) -> Config {
    let mut config = Config::server("s");
    config.frame_size_max = 1024 * 1024;
    config.partial_bytes_max = partial_bytes_max;
    config
}

/// A pair with one session; links are attached with [`sender`].
fn pair(partial_bytes_max: usize) -> (Pair, SessionId) {
    let mut pair = open_pair(client_config(), server_config(partial_bytes_max));
    let (session, _) = begin(&mut pair);
    (pair, session)
}

/// A sending link from the client, accepted and granted credit by the server: its id on the
/// client and on the server.
fn sender(pair: &mut Pair, session: SessionId, name: &str) -> (LinkId, LinkId) {
    attach_sender(pair, session, name, 10, |_| {})
}

/// The error description of the server's detach of `handle` among `written`, if any.
fn detach_of(written: &[Performative], handle: u32) -> Option<(String, String)> {
    written.iter().find_map(|p| match p {
        Performative::Detach(Detach {
            handle: h,
            error: Some(error),
            ..
        }) if *h == handle => Some((
            error.condition.to_string(),
            error
                .description
                .as_ref()
                .map(|d| d.to_string())
                .unwrap_or_default(),
        )),
        _ => None,
    })
}

/// Starts a delivery of `LARGE` bytes, unfinished, on the client's link `link`.
fn start_large(pair: &mut Pair, channel: u16, link: LinkId, delivery_id: u32) {
    let transfer = first_transfer(link.handle, delivery_id, true);
    inject_transfer(pair, channel, &transfer, &[7; LARGE]);
}

/// Ends the delivery in progress on the client's link `link`.
fn finish(pair: &mut Pair, channel: u16, link: LinkId) {
    inject_transfer(pair, channel, &next_transfer(link.handle, false), b"end");
}

/// Sends `frames` one-byte transfers, the first starting delivery `delivery_id` and the last
/// ending it when `last_ends`, in reads of a thousand frames (within the session window).
fn one_byte_frames(pair: &mut Pair, link: LinkId, delivery_id: u32, frames: u32, last_ends: bool) {
    let mut wire = BytesMut::new();
    for n in 0..frames {
        let more = !(last_ends && n + 1 == frames);
        let transfer = if n == 0 {
            first_transfer(link.handle, delivery_id, more)
        } else {
            next_transfer(link.handle, more)
        };
        encode_transfer(&mut wire, 0, &transfer, &[n as u8], u32::MAX).unwrap();
        if n % 1000 == 999 {
            pair.server.handle_input(&wire, pair.now);
            wire.clear();
        }
    }
    pair.server.handle_input(&wire, pair.now);
}

#[test]
fn unfinished_deliveries_of_every_link_count_against_one_limit() {
    // Room for two large parts, not three.
    let (mut pair, session) = pair(2 * LARGE + 4096);
    let (a, _) = sender(&mut pair, session, "a");
    let (b, _) = sender(&mut pair, session, "b");
    let (c, server_c) = sender(&mut pair, session, "c");
    start_large(&mut pair, 0, a, 0);
    start_large(&mut pair, 0, b, 1);
    assert!(server_wrote(&mut pair).is_empty());

    // The third link's part would take the connection over: that link alone is detached.
    start_large(&mut pair, 0, c, 2);
    let written = server_wrote(&mut pair);
    let (condition, description) = detach_of(&written, server_c.handle).expect("a detach");
    assert_eq!(condition, conditions::RESOURCE_LIMIT_EXCEEDED.to_string());
    assert!(description.contains("partial_bytes_max"), "{description}");
    assert_eq!(written.len(), 1, "{written:?}");
    // What the sender had in flight on it is dropped.
    finish(&mut pair, 0, c);

    // The other links go on, and their messages arrive whole.
    finish(&mut pair, 0, a);
    finish(&mut pair, 0, b);
    let events = pair.server_events();
    let delivered = deliveries(&events);
    assert_eq!(
        delivered
            .iter()
            .map(|(id, _, _, payload)| (*id, payload.len()))
            .collect::<Vec<_>>(),
        vec![(0, LARGE + 3), (1, LARGE + 3)]
    );
    assert!(delivered[0].3.ends_with(b"\x07end"));

    // Their bytes are given back: a new link can hold as much again.
    let (d, server_d) = sender(&mut pair, session, "d");
    start_large(&mut pair, 0, d, 3);
    start_large(&mut pair, 0, a, 4);
    assert_eq!(detach_of(&server_wrote(&mut pair), server_d.handle), None);
}

#[test]
fn a_delivery_in_one_byte_frames_holds_about_its_size() {
    let budget = 128 * 1024;
    let (mut pair, session) = pair(budget);
    let (link, server_link) = sender(&mut pair, session, "tiny");
    // Kept as slices of the read buffer with a `Bytes` each, 60,000 one-byte frames held over
    // 3 MB; copied together they fit in 128 KiB.
    one_byte_frames(&mut pair, link, 0, 60_000, true);
    let events = pair.server_events();
    let delivered = deliveries(&events);
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].3.len(), 60_000);
    assert_eq!(delivered[0].3[300], 300u32 as u8);
    assert_eq!(
        detach_of(&server_wrote(&mut pair), server_link.handle),
        None
    );

    // Twice the budget in one-byte frames is stopped near the budget, not near its frames.
    one_byte_frames(&mut pair, link, 1, 2 * budget as u32, false);
    let (condition, _) = detach_of(&server_wrote(&mut pair), server_link.handle).expect("a detach");
    assert_eq!(condition, conditions::RESOURCE_LIMIT_EXCEEDED.to_string());
    assert!(deliveries(&pair.server_events()).is_empty());
}

#[test]
fn a_links_partial_is_given_back_when_the_peer_detaches_it() {
    let (mut pair, session) = pair(LARGE + LARGE / 2);
    let (a, _) = sender(&mut pair, session, "a");
    let (b, server_b) = sender(&mut pair, session, "b");
    let (probe, server_probe) = sender(&mut pair, session, "probe");
    start_large(&mut pair, 0, a, 0);
    // While `a` holds its part, no other link has room.
    start_large(&mut pair, 0, probe, 1);
    assert!(detach_of(&server_wrote(&mut pair), server_probe.handle).is_some());

    pair.client.detach(a, true, None, pair.now);
    pair.drive();
    pair.server_events();
    start_large(&mut pair, 0, b, 2);
    assert_eq!(detach_of(&server_wrote(&mut pair), server_b.handle), None);
}

#[test]
fn a_links_partial_is_given_back_when_we_detach_it() {
    let (mut pair, session) = pair(LARGE + LARGE / 2);
    let (a, server_a) = sender(&mut pair, session, "a");
    let (b, server_b) = sender(&mut pair, session, "b");
    start_large(&mut pair, 0, a, 0);
    pair.server.detach(server_a, true, None, pair.now);
    server_wrote(&mut pair);
    start_large(&mut pair, 0, b, 1);
    assert_eq!(detach_of(&server_wrote(&mut pair), server_b.handle), None);
}

#[test]
fn a_sessions_partials_are_given_back_when_either_side_ends_it() {
    for peer_ends in [true, false] {
        let (mut pair, first) = pair(LARGE + LARGE / 2);
        let (second, server_second) = begin(&mut pair);
        let (a, _) = sender(&mut pair, second, "a");
        let (b, server_b) = sender(&mut pair, first, "b");
        start_large(&mut pair, 1, a, 0);

        if peer_ends {
            pair.client.end(second, None, pair.now);
            pair.drive();
            pair.server_events();
        } else {
            // Our end: the session ignores frames until the peer's end, so its partials go now.
            pair.server.end(server_second, None, pair.now);
            server_wrote(&mut pair);
        }
        start_large(&mut pair, 0, b, 0);
        let written = server_wrote(&mut pair);
        assert_eq!(
            detach_of(&written, server_b.handle),
            None,
            "peer ends: {peer_ends}"
        );
    }
}
