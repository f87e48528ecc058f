//! How a message moves into a node, and who hears how it went.
//!
//! A publish arrives at the node its link resolved to. Everything else that moves a message
//! between nodes is an explicit [`Forward`] step the core runs after the node that made it:
//! a dead-lettered or expired message going to its target, a topic's copy going to each of
//! its named subscriptions. A node never reaches into another node, so a node could live on
//! another core shard, or another pod, behind the same step.
//!
//! An [`Answer`] says who learns the outcome: the publisher, nobody (a moved message), or a
//! [`Join`] that answers the publisher once every copy of a topic message is placed.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use sluice_codec::messaging::ScannedMessage;
use sluice_codec::transport::{DeliveryState, Rejected};
use sluice_store::MessageId;

use super::command::Origin;
use super::ids::NodeId;
use super::journal::Journal;
use super::outbox::Outbox;
use crate::error::Refusal;

/// A topic message waiting for all its copies to be placed.
pub(crate) type JoinId = u64;

/// Who hears the outcome of a message's arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Nobody: a message moved from another node.
    Nobody,
    /// The client that published it.
    Publisher(Origin),
    /// The join of a topic message's copies.
    Join(JoinId),
}

impl Answer {
    /// Whether this answer goes to a link of `conn` (and to `link`, when given).
    pub(crate) fn is_for(&self, conn: u64, link: Option<sluice_engine::LinkId>) -> bool {
        matches!(self, Answer::Publisher(o) if o.conn == conn && link.is_none_or(|l| o.link == l))
    }
}

/// How a message came to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    /// Published by a client, or a topic's copy of what a client published: the node's TTL
    /// clamp applies from now.
    Publish,
    /// Dead-lettered or expired by another node: its own expiry no longer applies (Artemis
    /// clears the expiration of a message it moves). `from` is the durable source message,
    /// logged removed once this node has stored it.
    Moved { from: Option<(NodeId, MessageId)> },
}

/// A message on its way into a node.
#[derive(Debug)]
pub(crate) struct Arrival {
    pub(crate) message: Box<ScannedMessage>,
    pub(crate) answer: Answer,
    pub(crate) via: Via,
}

/// A message moving to another node.
#[derive(Debug)]
pub(crate) struct Forward {
    pub(crate) to: NodeId,
    pub(crate) arrival: Arrival,
}

/// A topic message's answer, given when its last copy is placed.
#[derive(Debug)]
struct Join {
    origin: Origin,
    remaining: u32,
    /// Some copy went to a durable node: the answer waits for the journal.
    synced: bool,
    /// The first copy refused, which the publisher hears about.
    refused: Option<DeliveryState>,
}

/// The joins open now.
#[derive(Debug, Default)]
pub(crate) struct Joins {
    open: FxHashMap<JoinId, Join>,
    next: JoinId,
}

impl Joins {
    /// A join answering `origin` after `copies` placements.
    pub(crate) fn open(&mut self, origin: Origin, copies: u32) -> JoinId {
        self.next += 1;
        self.open.insert(
            self.next,
            Join {
                origin,
                remaining: copies,
                synced: false,
                refused: None,
            },
        );
        self.next
    }

    /// Whether the join still waits for copies (its publisher has not gone).
    pub(crate) fn is_open(&self, id: JoinId) -> bool {
        self.open.contains_key(&id)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Drops the joins answering `conn` (and `link`): nobody is left to hear.
    pub(crate) fn forget(&mut self, conn: u64, link: Option<sluice_engine::LinkId>) {
        self.open
            .retain(|_, j| !(j.origin.conn == conn && link.is_none_or(|l| j.origin.link == l)));
    }
}

/// What a node works with besides itself: where answers, deliveries, journal records and
/// forward steps go, and the time.
pub(crate) struct Ctx<'a> {
    pub(crate) out: &'a mut Outbox,
    pub(crate) journal: &'a mut Journal,
    pub(crate) steps: &'a mut VecDeque<Forward>,
    pub(crate) joins: &'a mut Joins,
    pub(crate) now: i64,
    /// The broker is over its memory budget: nodes that cannot page hold new messages back.
    pub(crate) memory_over: bool,
}

impl Ctx<'_> {
    /// Tells `answer` the arrival's outcome; `synced` when it must wait for the journal.
    pub(crate) fn resolve(&mut self, answer: Answer, state: DeliveryState, synced: bool) {
        match answer {
            Answer::Nobody => {}
            Answer::Publisher(origin) => self.out.answer(origin, state, synced),
            Answer::Join(id) => {
                let Some(join) = self.joins.open.get_mut(&id) else {
                    return;
                };
                join.remaining = join.remaining.saturating_sub(1);
                join.synced |= synced;
                if !matches!(state, DeliveryState::Accepted(_)) && join.refused.is_none() {
                    join.refused = Some(state);
                }
                if join.remaining == 0
                    && let Some(join) = self.joins.open.remove(&id)
                {
                    let state = join
                        .refused
                        .unwrap_or(DeliveryState::Accepted(Default::default()));
                    self.out.answer(join.origin, state, join.synced);
                }
            }
        }
    }

    /// Tells `answer` the arrival was refused.
    pub(crate) fn refuse(&mut self, answer: Answer, refusal: &Refusal) {
        let state = DeliveryState::Rejected(Rejected {
            error: Some(Box::new(refusal.to_amqp())),
        });
        self.resolve(answer, state, false);
    }
}
