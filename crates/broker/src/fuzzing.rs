//! The core driven by arbitrary bytes, for the fuzz target `core_commands` and a property
//! test: each three bytes are one command a connection could send, kept to what a real
//! connection would send (a delivery is settled or handed back at most once, and only while
//! its link is attached; a transaction's commit of a publish and an acknowledgement). Every accounting invariant of the core and the store is a
//! `debug_assert!`, so drift panics here; and once every connection has gone, nothing a
//! client published may still be held.

use std::collections::HashMap;

use bytes::Bytes;
use sluice_codec::Encode;
use sluice_codec::messaging::{Body, Header, Message, ScannedMessage};
use sluice_codec::transport::{Accepted, DeliveryState, Modified, Rejected, Released};
use sluice_engine::{LinkId, SessionId};
use sluice_store::{ConsumerOptions, MessageId, QueuePolicy, TtlPolicy};

use crate::core::{
    AnycastNode, Command, Commit, Core, Filter, MulticastNode, Node, NodeId, Output, QueueNode,
    QueuePlan, Route, Source, ToConn, TopicNode,
};

const CONNS: u64 = 3;
const HANDLES: u32 = 6;

fn nodes() -> Vec<(NodeId, Node)> {
    let small = QueuePolicy {
        messages_max: 4,
        bytes_max: 4 * 1024,
        delivery_attempts_max: Some(2),
        ttl: TtlPolicy {
            minimum_ms: None,
            maximum_ms: Some(50),
        },
        dead_letter_target: true,
        expiry_target: true,
        durable: true,
        ..QueuePolicy::default()
    };
    let queue = |address: &str, policy, dead_letter: Option<u32>| {
        Node::Queue(QueueNode::new(QueuePlan {
            address: address.into(),
            policy,
            dead_letter: dead_letter.map(NodeId::first),
            expiry: dead_letter.map(NodeId::first),
            max_consumers: Some(2),
            full: crate::core::AddressFullPolicy::Block,
            reject_retries: false,
        }))
    };
    let dlq = QueuePolicy {
        messages_max: 3,
        durable: true,
        ..QueuePolicy::default()
    };
    vec![
        (NodeId::first(0), queue("q", small, Some(1))),
        (NodeId::first(1), queue("dlq", dlq, None)),
        (
            NodeId::first(2),
            Node::Topic(TopicNode::new(
                "t".into(),
                QueuePolicy::default(),
                vec![NodeId::first(5)],
            )),
        ),
        (
            NodeId::first(3),
            Node::Anycast(AnycastNode::new("anycast".into())),
        ),
        (
            NodeId::first(4),
            Node::Multicast(MulticastNode::new("multicast".into())),
        ),
        (NodeId::first(5), queue("sub", dlq, None)),
    ]
}

fn message(size: u8, durable: bool) -> Box<ScannedMessage> {
    let raw: Bytes = Message {
        header: Some(Header {
            durable,
            ..Default::default()
        }),
        body: Body::Data(vec![Bytes::from(vec![b'x'; usize::from(size) * 16])]),
        ..Default::default()
    }
    .to_bytes()
    .freeze();
    Box::new(ScannedMessage::scan(raw).unwrap_or_else(|_| unreachable!("encoded here")))
}

fn link(handle: u32) -> LinkId {
    LinkId {
        session: SessionId(0),
        handle,
    }
}

/// What the fuzzed connections know: the deliveries each link has not settled yet, and the
/// temporary queues they were given.
#[derive(Default)]
struct Clients {
    /// Links attached, as receivers (`true`) or senders: a connection attaches a handle once
    /// until it detaches, and publishes only on senders.
    attached: HashMap<(u64, u32), bool>,
    unsettled: HashMap<(u64, u32), Vec<MessageId>>,
    temporary: Vec<NodeId>,
    next_delivery: u32,
}

impl Clients {
    fn take(&mut self, output: Output) {
        let Output::Conn { conn, answers, .. } = output else {
            return;
        };
        for answer in answers {
            match answer {
                ToConn::Deliver {
                    link,
                    message,
                    settled: false,
                    ..
                } => self
                    .unsettled
                    .entry((conn, link.handle))
                    .or_default()
                    .push(message),
                ToConn::Attached {
                    result: Ok(attached),
                    ..
                } => {
                    if let Some(node) = attached
                        .address
                        .as_deref()
                        .and_then(crate::core::temporary_node)
                    {
                        self.temporary.push(node);
                    }
                }
                _ => {}
            }
        }
    }

    fn pick(&mut self, conn: u64, handle: u32, which: u8) -> Option<MessageId> {
        let held = self.unsettled.get_mut(&(conn, handle))?;
        if held.is_empty() {
            return None;
        }
        Some(held.remove(usize::from(which) % held.len()))
    }
}

/// Runs the commands `data` spells out. Panics when an invariant breaks.
pub fn drive_core(data: &[u8]) {
    let mut core = Core::new(nodes());
    let mut clients = Clients::default();
    let mut now: i64 = 1_700_000_000_000;
    for conn in 1..=CONNS {
        core.handle(conn, Command::Connected, now);
    }
    for op in data.chunks_exact(3) {
        let &[kind, a, b] = op else { continue };
        let kind = kind % 10;
        let conn = u64::from(a % CONNS as u8) + 1;
        let handle = u32::from(a / 3) % HANDLES;
        let node = NodeId::first(u32::from(b % 6));
        let attached = clients.attached.get(&(conn, handle)).copied();
        let command = match kind {
            0 | 1 if attached == Some(true) => None,
            // A transaction's commit: this publish, and an acknowledgement of a delivery of
            // the next link, if it holds one.
            1 if b & 0x10 != 0 => {
                let receiver = (handle + 1) % HANDLES;
                let settles = clients
                    .pick(conn, receiver, b)
                    .map(|m| {
                        (
                            link(receiver),
                            vec![m],
                            DeliveryState::Accepted(Accepted {}),
                        )
                    })
                    .into_iter()
                    .collect();
                Some(Command::Commit(Box::new(Commit {
                    discharge: (SessionId(0), 0),
                    publishes: vec![(Route::to(node), message(b >> 3, b & 0x80 != 0))],
                    settles,
                })))
            }
            0 | 1 => {
                clients.next_delivery = clients.next_delivery.wrapping_add(1);
                let name = (b & 0x40 != 0).then(|| "t/x".into());
                Some(Command::Publish {
                    link: link(handle),
                    route: Route { node, name },
                    message: message(b >> 3, b & 0x80 != 0),
                    settle: (b & 0x20 != 0).then_some((SessionId(0), clients.next_delivery)),
                })
            }
            2 | 3 if attached.is_some() => None,
            2 => {
                clients.attached.insert((conn, handle), true);
                let source = match clients.temporary.last() {
                    Some(&temp) if b & 0x80 != 0 => Source::Node {
                        node: temp,
                        filter: Filter::All,
                        consumer: ConsumerOptions::default(),
                    },
                    _ if b & 0x40 != 0 => Source::Temporary {
                        consumer: ConsumerOptions::default(),
                    },
                    _ => Source::Node {
                        node,
                        filter: if b & 0x20 != 0 {
                            Filter::Name("t/x".into())
                        } else {
                            Filter::All
                        },
                        consumer: ConsumerOptions::default(),
                    },
                };
                Some(Command::AttachReceiver {
                    link: link(handle),
                    source,
                })
            }
            3 => {
                clients.attached.insert((conn, handle), false);
                Some(Command::AttachSender {
                    link: link(handle),
                    node,
                })
            }
            4 => Some(Command::Credit {
                link: link(handle),
                credit: u32::from(b % 8),
                drain: b & 0x80 != 0,
            }),
            5 | 6 => clients
                .pick(conn, handle, b)
                .map(|message| Command::Settle {
                    link: link(handle),
                    messages: vec![message],
                    state: match b % 4 {
                        0 => DeliveryState::Accepted(Accepted {}),
                        1 => DeliveryState::Released(Released {}),
                        2 => DeliveryState::Modified(Modified {
                            delivery_failed: true,
                            undeliverable_here: b & 0x10 != 0,
                            ..Default::default()
                        }),
                        _ => DeliveryState::Rejected(Rejected::default()),
                    },
                }),
            7 => clients
                .pick(conn, handle, b)
                .map(|message| Command::Unsent {
                    link: link(handle),
                    message,
                }),
            8 => {
                clients.unsettled.remove(&(conn, handle));
                clients.attached.remove(&(conn, handle));
                Some(Command::Detach { link: link(handle) })
            }
            _ if b & 1 == 1 => {
                // The connection goes, and comes back as a new one.
                clients.unsettled.retain(|(c, _), _| *c != conn);
                clients.attached.retain(|(c, _), _| *c != conn);
                core.handle(conn, Command::Gone, now);
                Some(Command::Connected)
            }
            _ => {
                now += i64::from(b);
                core.handle_timeout(now);
                None
            }
        };
        if let Some(command) = command {
            core.handle(conn, command, now);
        }
        if b & 1 == 0 {
            while let Some(output) = core.poll_output() {
                clients.take(output);
            }
        }
    }
    for conn in 1..=CONNS {
        core.handle(conn, Command::Gone, now);
    }
    while let Some(output) = core.poll_output() {
        clients.take(output);
    }
    if let Some(held) = core.held_for_clients() {
        panic!("{held} outlived every client");
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_command_sequence_keeps_the_core_consistent(data in prop::collection::vec(any::<u8>(), 0..600)) {
            super::drive_core(&data);
        }
    }
}
