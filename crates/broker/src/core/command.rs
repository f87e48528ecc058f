//! What connections ask of the core ([`Command`]) and what the core tells them ([`ToConn`]).
//! Every address has been resolved by the connection, once, at attach: commands name nodes by
//! [`NodeId`], never by string.

use std::sync::Arc;

use bytes::Bytes;
use sluice_codec::messaging::ScannedMessage;
use sluice_codec::transport::{DeliveryState, Error};
use sluice_engine::{LinkId, SessionId};
use sluice_router::TopicPattern;
use sluice_store::{ConsumerOptions, MessageId};

use super::ids::{ConnId, NodeId};

/// Where a published message goes: a node, and for a topic the name it is published under
/// (`None`: the topic's own address). A publishing link's route goes with each of its
/// messages, so the name is shared, not copied per message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) node: NodeId,
    pub(crate) name: Option<Arc<str>>,
}

impl Route {
    /// A route to `node` itself.
    pub(crate) fn to(node: NodeId) -> Self {
        Route { node, name: None }
    }
}

/// Which names of a topic a private subscriber receives.
#[derive(Debug, Clone)]
pub(crate) enum Filter {
    /// Everything published to the topic, at any level.
    All,
    /// Messages published to exactly this name.
    Name(String),
    /// Names matching a `+`/`#` pattern.
    Pattern(TopicPattern),
}

impl Filter {
    /// Whether a message published under `name` (`None`: the topic's own address, `topic`)
    /// is for this subscriber.
    pub(crate) fn matches(&self, name: Option<&str>, topic: &str) -> bool {
        let name = name.unwrap_or(topic);
        match self {
            Filter::All => true,
            Filter::Name(n) => n == name,
            Filter::Pattern(p) => p.matches(name),
        }
    }
}

/// What a receiving link consumes.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// A node: a queue, deadletter or named subscription (competing consumers, as `consumer`
    /// says: selecting, browsing), a topic (a private subscription from now on, with
    /// `filter`), a multicast or an anycast address.
    Node {
        node: NodeId,
        filter: Filter,
        consumer: ConsumerOptions,
    },
    /// A new temporary queue for a dynamic receiver, deleted when the link goes; the attach's
    /// answer carries its address.
    Temporary { consumer: ConsumerOptions },
}

/// Who published a message and where its outcome goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Origin {
    pub(crate) conn: ConnId,
    pub(crate) link: LinkId,
    /// The delivery to settle, or `None` when the sender settled it.
    pub(crate) settle: Option<(SessionId, u32)>,
}

/// What a connection asks of the core; the connection's id comes with the batch.
// Publish, the big variant, is nearly every command: boxing it would cost an allocation per
// message to save bytes on the rare others.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Command {
    /// The connection starts.
    Connected,
    /// The connection ended: as if every link of it detached.
    Gone,
    /// A message from `link`, scanned by the connection (so scanning runs on every worker,
    /// not only the core's). Every publish is answered with [`ToConn::Published`], which the
    /// connection's publisher credit waits for.
    Publish {
        link: LinkId,
        route: Route,
        /// Boxed where it was scanned, so it moves as a pointer from here on.
        message: Box<ScannedMessage>,
        settle: Option<(SessionId, u32)>,
    },
    /// A receiving link asks to attach; answered with [`ToConn::Attached`].
    AttachReceiver { link: LinkId, source: Source },
    /// A sending link attached to `node`. An anycast sender gets its credit from the core as
    /// receivers grant theirs; every sender's held publishes go when it detaches.
    AttachSender { link: LinkId, node: NodeId },
    /// A receiver's link credit, and whether it asks for a drain.
    Credit {
        link: LinkId,
        credit: u32,
        drain: bool,
    },
    /// A receiver's outcome for deliveries: one command for a disposition's range on a link,
    /// not one per message.
    Settle {
        link: LinkId,
        messages: Vec<MessageId>,
        state: DeliveryState,
    },
    /// A delivery the connection could not send (the link lost its credit or went): it goes
    /// back without counting as an attempt.
    Unsent { link: LinkId, message: MessageId },
    /// A link detached: a receiver stops consuming, a sender's held publishes are dropped.
    Detach { link: LinkId },
    /// A transaction's commit: all of its publishes and settles applied in one step, or none
    /// ([`super::commit`]); answered with [`ToConn::Committed`].
    Commit(Box<super::commit::Commit>),
    /// An operator's `$management` request (see `core::manage`); answered with
    /// [`ToConn::Managed`].
    Manage(Box<super::manage::Request>),
}

/// The answer to a receiver's attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attached {
    /// The address of the temporary queue a dynamic receiver got.
    pub(crate) address: Option<Arc<str>>,
}

/// What the core tells a connection.
#[derive(Debug)]
pub(crate) enum ToConn {
    /// Send `payload` on `link` as one delivery of `message`; pre-settled when `settled`.
    Deliver {
        link: LinkId,
        message: MessageId,
        payload: Bytes,
        settled: bool,
    },
    /// The answer to `count` consecutive publishes from `link`, with the outcome for their
    /// deliveries (ids `settle.1` on, one after another) when the sender did not settle them.
    /// Only accepted publishes are answered more than one at a time.
    Published {
        link: LinkId,
        settle: Option<(SessionId, u32)>,
        count: u32,
        state: DeliveryState,
    },
    /// The answer to a receiver's attach: `Err` carries the condition it is refused with.
    Attached {
        link: LinkId,
        result: Result<Attached, Error>,
    },
    /// A drain found nothing more: give back the credit.
    Drained { link: LinkId },
    /// A browser has seen every message its queue holds: spend its credit, drain or not (it
    /// asks again for what arrives later).
    Exhausted { link: LinkId },
    /// An anycast sender may have `more` credit.
    Credit { link: LinkId, more: u32 },
    /// The answer to a [`Command::Commit`], for its discharge delivery: `Err` says why
    /// nothing of it was applied. A commit that made journal records is answered once they are
    /// durable.
    Committed {
        discharge: (SessionId, u32),
        result: Result<(), String>,
    },
    /// A `$management` request is done: its answer, to send on the `$management` receiver
    /// `link`, or `None` when it went into the request's reply queue.
    Managed { answer: Option<(LinkId, Bytes)> },
}
