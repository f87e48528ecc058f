//! A model test (proptest): random transfers (whole, split, aborted, settled, large and
//! small, reusing delivery ids), settlements, credit and detaches on three links into a server,
//! checked against what a sender expects: each finished delivery arrives with exactly the bytes
//! sent, on its link, unless the server detached the link. The engine's debug assertions on
//! its accounting (credit, unsettled counts, windows, partial bytes) run on every step, so a
//! drift shows up as a failing case.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod support;

use proptest::prelude::*;
use sluice_codec::transport::{Accepted, Performative, Role};
use sluice_engine::testing::Pair;
use sluice_engine::{Config, Event, LinkId, SessionId};
use support::*;

const LINKS: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    /// A transfer on a link: the first of a delivery when none is in progress.
    Transfer {
        link: usize,
        len: usize,
        more: bool,
        settled: bool,
        aborted: bool,
        /// Start the delivery with an id already used.
        reuse_id: bool,
    },
    /// The server settles deliveries it received, `back` ids behind the newest.
    Settle { back: u32, width: u32 },
    /// The server grants credit again.
    Credit { link: usize },
    /// The client detaches the link.
    Detach { link: usize },
}

fn op() -> impl Strategy<Value = Op> {
    let len = prop_oneof![3 => 0usize..64, 2 => 100usize..4000, 1 => 8_000usize..30_000];
    prop_oneof![
        8 => (0..LINKS, len, any::<bool>(), prop::bool::weighted(0.2), prop::bool::weighted(0.05), prop::bool::weighted(0.05))
            .prop_map(|(link, len, more, settled, aborted, reuse_id)| Op::Transfer { link, len, more, settled, aborted, reuse_id }),
        2 => (0u32..8, 0u32..8).prop_map(|(back, width)| Op::Settle { back, width }),
        1 => (0..LINKS).prop_map(|link| Op::Credit { link }),
        1 => (0..LINKS).prop_map(|link| Op::Detach { link }),
    ]
}

/// What the sender knows of one of its links.
struct Sender {
    client: LinkId,
    server: LinkId,
    /// Detached, by either side: nothing more is sent on it.
    gone: bool,
    /// The bytes of the delivery in progress.
    sending: Option<Vec<u8>>,
}

struct Model {
    pair: Pair,
    server_session: SessionId,
    links: Vec<Sender>,
    next_id: u32,
    /// A byte counter, so that every payload differs.
    stamp: u8,
}

impl Model {
    fn new() -> Self {
        let mut server = Config::server("s");
        server.frame_size_max = 1024 * 1024;
        server.message_size_max = 60_000;
        server.partial_bytes_max = 80_000;
        server.link_unsettled_max = 6;
        let mut pair = open_pair(client_config(), server);
        let (session, server_session) = begin(&mut pair);
        let links = (0..LINKS)
            .map(|n| {
                let (client, server) =
                    attach_sender(&mut pair, session, &format!("l{n}"), 20, |_| {});
                Sender {
                    client,
                    server,
                    gone: false,
                    sending: None,
                }
            })
            .collect();
        Model {
            pair,
            server_session,
            links,
            next_id: 0,
            stamp: 0,
        }
    }

    fn apply(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::Transfer {
                link,
                len,
                more,
                settled,
                aborted,
                reuse_id,
            } => self.transfer(link, len, more, settled, aborted, reuse_id)?,
            Op::Settle { back, width } => {
                let first = self.next_id.wrapping_sub(back);
                let now = self.pair.now;
                self.pair.server.disposition(
                    self.server_session,
                    Role::Receiver,
                    first,
                    first.wrapping_add(width),
                    true,
                    Some(Accepted {}.into()),
                    now,
                );
                self.pair.server.take_output();
            }
            Op::Credit { link } => {
                let l = &self.links[link];
                if !l.gone {
                    let now = self.pair.now;
                    self.pair.server.grant_credit(l.server, 20, false, now);
                    self.pair.server.take_output();
                }
            }
            Op::Detach { link } => {
                let l = &mut self.links[link];
                if !l.gone {
                    l.gone = true;
                    let now = self.pair.now;
                    self.pair.client.detach(l.client, true, None, now);
                    self.pair.drive();
                    let events = self.pair.server_events();
                    let server = l.server;
                    prop_assert!(
                        events.iter().any(
                            |e| matches!(e, Event::LinkDetached { link, .. } if *link == server)
                        ),
                        "{events:?}"
                    );
                }
            }
        }
        Ok(())
    }

    fn transfer(
        &mut self,
        link: usize,
        len: usize,
        more: bool,
        settled: bool,
        aborted: bool,
        reuse_id: bool,
    ) -> Result<(), TestCaseError> {
        if self.links[link].gone {
            return Ok(());
        }
        self.stamp = self.stamp.wrapping_add(1);
        let bytes: Vec<u8> = (0..len).map(|i| self.stamp.wrapping_add(i as u8)).collect();
        let l = &mut self.links[link];
        let mut transfer = match l.sending {
            Some(_) => next_transfer(l.client.handle, more),
            None => {
                let id = if reuse_id && self.next_id > 0 {
                    self.next_id - 1
                } else {
                    self.next_id += 1;
                    self.next_id - 1
                };
                first_transfer(l.client.handle, id, more)
            }
        };
        transfer.settled = settled.then_some(true);
        transfer.aborted = aborted;
        let mut sent = l.sending.take().unwrap_or_default();
        sent.extend_from_slice(&bytes);
        inject_transfer(&mut self.pair, 0, &transfer, &bytes);

        let server = l.server;
        let written = server_wrote(&mut self.pair);
        let detached = written
            .iter()
            .any(|p| matches!(p, Performative::Detach(d) if d.handle == server.handle));
        let events = self.pair.server_events();
        let delivered: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                Event::Delivery { link, payload, .. } => Some((*link, payload.clone())),
                _ => None,
            })
            .collect();
        if detached {
            l.gone = true;
            prop_assert!(delivered.is_empty(), "{events:?}");
        } else if aborted {
            prop_assert!(delivered.is_empty(), "{events:?}");
        } else if more {
            prop_assert!(delivered.is_empty(), "{events:?}");
            l.sending = Some(sent);
        } else {
            prop_assert_eq!(delivered.len(), 1, "{:?}", events);
            prop_assert_eq!(delivered[0].0, server);
            prop_assert!(delivered[0].1 == sent, "the delivery's bytes differ");
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn deliveries_arrive_as_sent_and_the_accounting_holds(ops in prop::collection::vec(op(), 1..120)) {
        let mut model = Model::new();
        for op in ops {
            model.apply(op)?;
        }
        // Closing gives back whatever is still unfinished.
        let now = model.pair.now;
        model.pair.server.close(None, now);
        model.pair.drive();
    }
}
