//! The core without a runtime: commands in with a clock value, outputs polled and checked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod anycast;
mod duplicates;
mod durable;
mod limits;
mod manage;
mod model;
mod paging;
mod queue;
mod reload;
mod topic;
mod txn;

use std::collections::HashMap;

use bytes::Bytes;
use sluice_codec::Encode;
use sluice_codec::messaging::{Body, Header, Message, Properties, ScannedMessage};
use sluice_codec::transport::{Accepted, DeliveryState, Rejected};
use sluice_engine::{LinkId, SessionId};
use sluice_store::{Change, MessageId, QueuePolicy};

use super::*;

pub(super) const NOW: i64 = 1_700_000_000_000;

pub(super) fn link(handle: u32) -> LinkId {
    LinkId {
        session: SessionId(0),
        handle,
    }
}

pub(super) fn body(text: &str) -> Bytes {
    encoded(text, None)
}

pub(super) fn encoded(text: &str, header: Option<Header>) -> Bytes {
    Message {
        header,
        properties: Some(Properties::default()),
        body: Body::Data(vec![Bytes::copy_from_slice(text.as_bytes())]),
        ..Default::default()
    }
    .to_bytes()
    .freeze()
}

/// A message with header `durable` true.
pub(super) fn durable_body(text: &str) -> Bytes {
    encoded(
        text,
        Some(Header {
            durable: true,
            ..Default::default()
        }),
    )
}

pub(super) fn text(payload: &Bytes) -> String {
    let m = Message::decode(payload).unwrap();
    match m.body {
        Body::Data(d) => String::from_utf8(d[0].to_vec()).unwrap(),
        other => panic!("{other:?}"),
    }
}

/// The node at position `i` of a harness's list.
pub(super) fn at(i: u32) -> NodeId {
    NodeId::first(i)
}

/// A stored node with `policy` and no dead-letter, expiry or consumer limit.
pub(super) fn queue(address: &str, policy: QueuePolicy) -> Node {
    queue_with(address, policy, None, None)
}

pub(super) fn queue_with(
    address: &str,
    policy: QueuePolicy,
    dead_letter: Option<NodeId>,
    expiry: Option<NodeId>,
) -> Node {
    Node::Queue(QueueNode::new(QueuePlan {
        address: address.into(),
        policy,
        dead_letter,
        expiry,
        max_consumers: None,
        full: AddressFullPolicy::Block,
        reject_retries: false,
    }))
}

pub(super) fn topic(address: &str, named: Vec<NodeId>) -> Node {
    Node::Topic(TopicNode::new(
        address.into(),
        QueuePolicy::default(),
        named,
    ))
}

pub(super) fn anycast() -> Node {
    Node::Anycast(AnycastNode::new("anycast".into()))
}

/// A route to a name below a topic.
pub(super) fn named(node: NodeId, name: &str) -> Route {
    Route {
        node,
        name: Some(name.into()),
    }
}

pub(super) fn from(node: NodeId, filter: Filter) -> Source {
    Source::Node {
        node,
        filter,
        consumer: sluice_store::ConsumerOptions::default(),
    }
}

pub(super) struct Harness {
    pub(super) core: Core,
    answers: HashMap<ConnId, Vec<ToConn>>,
    /// Every journal record handed out, in order.
    pub(super) journal: Vec<Record>,
    /// Every batch's `after`, per connection, in order.
    pub(super) afters: HashMap<ConnId, Vec<Option<u64>>>,
    pub(super) now: i64,
    /// What the journal holds, for page-in reads: stored and paged messages not removed.
    pub(super) disk: HashMap<(NodeId, MessageId), Bytes>,
    /// Page-in reads served.
    pub(super) reads: usize,
}

impl Harness {
    /// A core of `nodes`, numbered by their position.
    pub(super) fn new(nodes: Vec<Node>) -> Self {
        let nodes = nodes
            .into_iter()
            .enumerate()
            .map(|(i, n)| (at(i as u32), n))
            .collect();
        Harness {
            core: Core::new(nodes),
            answers: HashMap::new(),
            journal: Vec::new(),
            afters: HashMap::new(),
            now: NOW,
            disk: HashMap::new(),
            reads: 0,
        }
    }

    pub(super) fn conn(&mut self, conn: ConnId) {
        self.core.handle(conn, Command::Connected, self.now);
    }

    /// Applies a command without finishing the wake-up.
    pub(super) fn apply(&mut self, conn: ConnId, command: Command) {
        self.core.handle(conn, command, self.now);
    }

    /// Applies a command and finishes the wake-up.
    pub(super) fn run(&mut self, conn: ConnId, command: Command) {
        self.apply(conn, command);
        self.flush();
    }

    /// Polls every output of the wake-up.
    pub(super) fn flush(&mut self) {
        let mut reads = Vec::new();
        while let Some(output) = self.core.poll_output() {
            match output {
                Output::Journal(records) => {
                    for r in &records {
                        match &r.change {
                            Change::Stored { id, payload } | Change::Paged { id, payload } => {
                                self.disk.insert((r.node, *id), payload.clone());
                            }
                            Change::Removed { id } => {
                                self.disk.remove(&(r.node, *id));
                            }
                            Change::DeliveryCount { .. }
                            | Change::Atomic { .. }
                            | Change::Remembered { .. } => {}
                        }
                    }
                    self.journal.extend(records);
                }
                Output::Read(r) => reads.extend(r),
                Output::Conn {
                    conn,
                    answers,
                    after,
                } => {
                    self.afters.entry(conn).or_default().push(after);
                    self.answers.entry(conn).or_default().extend(answers);
                }
            }
        }
        // The journal serves reads after the records before them, as the writer does.
        if !reads.is_empty() {
            for read in reads {
                let found = read
                    .ids
                    .iter()
                    .filter_map(|id| self.disk.get(&(read.node, *id)).map(|p| (*id, p.clone())))
                    .collect();
                self.reads += 1;
                self.core.page_in(read.node, found, self.now);
            }
            self.flush();
        }
    }

    pub(super) fn answers(&mut self, conn: ConnId) -> Vec<ToConn> {
        self.answers.remove(&conn).unwrap_or_default()
    }

    /// Attaches a receiver and grants it `credit`.
    pub(super) fn receive(&mut self, conn: ConnId, handle: u32, source: Source, credit: u32) {
        self.run(
            conn,
            Command::AttachReceiver {
                link: link(handle),
                source,
            },
        );
        match self.answers(conn).as_slice() {
            [ToConn::Attached { result: Ok(_), .. }] => {}
            other => panic!("attach answered {other:?}"),
        }
        self.credit(conn, handle, credit);
    }

    pub(super) fn credit(&mut self, conn: ConnId, handle: u32, credit: u32) {
        self.run(
            conn,
            Command::Credit {
                link: link(handle),
                credit,
                drain: false,
            },
        );
    }

    pub(super) fn publish(
        &mut self,
        conn: ConnId,
        handle: u32,
        route: Route,
        text: &str,
        settle: u32,
    ) {
        self.publish_bytes(conn, handle, route, body(text), settle);
    }

    pub(super) fn publish_bytes(
        &mut self,
        conn: ConnId,
        handle: u32,
        route: Route,
        payload: Bytes,
        settle: u32,
    ) {
        self.run(
            conn,
            Command::Publish {
                link: link(handle),
                route,
                message: Box::new(ScannedMessage::scan(payload).unwrap()),
                settle: Some((SessionId(0), settle)),
            },
        );
    }

    pub(super) fn settle(
        &mut self,
        conn: ConnId,
        handle: u32,
        message: MessageId,
        state: DeliveryState,
    ) {
        self.run(
            conn,
            Command::Settle {
                link: link(handle),
                messages: vec![message],
                state,
            },
        );
    }

    /// Accepts deliveries `delivered` returned, in one wake-up.
    pub(super) fn accept(&mut self, conn: ConnId, deliveries: &[(u32, MessageId, String)]) {
        for (handle, message, _) in deliveries {
            self.apply(
                conn,
                Command::Settle {
                    link: link(*handle),
                    messages: vec![*message],
                    state: DeliveryState::Accepted(Accepted {}),
                },
            );
        }
        self.flush();
    }

    /// The bodies delivered to `conn`, with their links and message ids.
    pub(super) fn delivered(&mut self, conn: ConnId) -> Vec<(u32, MessageId, String)> {
        self.answers(conn)
            .into_iter()
            .filter_map(|a| match a {
                ToConn::Deliver {
                    link,
                    message,
                    payload,
                    ..
                } => Some((link.handle, message, text(&payload))),
                _ => None,
            })
            .collect()
    }

    /// The bodies delivered to `conn`.
    pub(super) fn texts(&mut self, conn: ConnId) -> Vec<String> {
        self.delivered(conn)
            .into_iter()
            .map(|(_, _, t)| t)
            .collect()
    }

    /// The stored node at `id`.
    pub(super) fn queue(&self, id: NodeId) -> &QueueNode {
        match self.core.nodes.get(id).map(|s| &s.node) {
            Some(Node::Queue(q)) => q,
            other => panic!("{id:?} is {other:?}"),
        }
    }

    pub(super) fn topic(&self, id: NodeId) -> &TopicNode {
        match self.core.nodes.get(id).map(|s| &s.node) {
            Some(Node::Topic(t)) => t,
            other => panic!("{id:?} is {other:?}"),
        }
    }
}

/// Each publish answered, as (delivery id, outcome): a range answer counts once per publish.
pub(super) fn published(answers: &[ToConn]) -> Vec<(u32, String)> {
    answers
        .iter()
        .filter_map(|a| match a {
            ToConn::Published {
                settle: Some((_, id)),
                count,
                state,
                ..
            } => Some(((*id, *count), outcome(state))),
            _ => None,
        })
        .flat_map(|((first, count), state)| {
            (0..count).map(move |k| (first.wrapping_add(k), state.clone()))
        })
        .collect()
}

pub(super) fn outcome(state: &DeliveryState) -> String {
    match state {
        DeliveryState::Accepted(_) => "accepted".to_string(),
        DeliveryState::Released(_) => "released".to_string(),
        DeliveryState::Modified(_) => "modified".to_string(),
        DeliveryState::Rejected(Rejected { error }) => format!(
            "rejected {}",
            error.as_ref().map(|e| e.condition.as_str()).unwrap_or("")
        ),
        other => format!("{other:?}"),
    }
}

/// `count` accepted answers from delivery id 0.
pub(super) fn accepted(count: u32) -> Vec<(u32, String)> {
    (0..count).map(|i| (i, "accepted".to_string())).collect()
}
