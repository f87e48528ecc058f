//! Duplicate detection in a stored node (`spec.duplicateDetection`): a publish whose
//! `message-id` the node accepted within its window is accepted again and not stored.
//!
//! Only publishes are checked (a client's, or a topic's copy for a named subscription);
//! a message moved here from another node is never a duplicate. A node without detection
//! has no [`Duplicates`], so nothing of this runs, and no message-id is read, on its path.
//!
//! A durable node journals each id it remembers ([`Change::Remembered`]) in the same batch as
//! the message, just before the message's stored record: recovery keeps the id only if that
//! record follows, so after a crash both are there or neither is, and a producer that
//! retries a message the broker had accepted before the crash is told `accepted` again. A
//! message that is not durable (or a node that is not) leaves no record: a restart loses the
//! message, and its id with it, so a retry stores it again.

use bytes::Bytes;
use sluice_codec::transport::{Accepted, DeliveryState};
use sluice_store::{Change, DuplicateLimits, DuplicateWindow, MessageId, Queue, RememberedId};

use super::ids::NodeId;
use super::step::{Arrival, Ctx, Via};

/// A node's duplicate window.
#[derive(Debug)]
pub(crate) struct Duplicates {
    window: DuplicateWindow,
}

impl Duplicates {
    pub(crate) fn new(limits: DuplicateLimits) -> Self {
        Duplicates {
            window: DuplicateWindow::new(limits),
        }
    }

    /// Takes the limits of `new` (a reload), keeping the ids.
    pub(crate) fn reconfigure(&mut self, new: Duplicates) {
        self.window.set_limits(new.window.limits());
    }

    /// The encoded id of a message to check: a publish that carries one.
    fn id_of(arrival: &Arrival) -> Option<Bytes> {
        match arrival.via {
            Via::Publish => arrival.message.message_id_encoded(),
            Via::Moved { .. } => None,
        }
    }

    /// Answers `arrival` as accepted if it is a duplicate, and returns `None`; else returns
    /// it, with its id when it has one to remember once stored. `durable`: the duplicate's
    /// answer waits for the journal, which may not yet hold the original.
    pub(crate) fn check(
        &mut self,
        arrival: Arrival,
        durable: bool,
        ctx: &mut Ctx<'_>,
    ) -> Option<(Arrival, Option<Bytes>)> {
        let id = Self::id_of(&arrival);
        if let Some(id) = &id
            && self.window.contains(id, ctx.now)
        {
            ctx.resolve(
                arrival.answer,
                DeliveryState::Accepted(Accepted {}),
                durable,
            );
            return None;
        }
        Some((arrival, id))
    }

    /// Remembers the id of `message`, just stored in `queue`, and hands the queue's changes to
    /// the journal with the id's record right before the message's stored record (when the
    /// message has one: it is durable).
    pub(crate) fn remember(
        &mut self,
        node: NodeId,
        queue: &mut Queue,
        message: MessageId,
        id: &[u8],
        ctx: &mut Ctx<'_>,
    ) {
        let limits = self.window.limits();
        let mut remembered: Option<RememberedId> = self.window.remember(id, ctx.now);
        for change in queue.take_changes() {
            if matches!(&change, Change::Stored { id, .. } if *id == message)
                && let Some(id) = remembered.take()
            {
                let record = Change::Remembered {
                    message: Some(message),
                    id,
                    limits,
                };
                ctx.journal.push(node, record);
            }
            ctx.journal.push(node, change);
        }
    }

    /// Puts back the ids the journal kept, at `now_ms` (those out of the window are dropped).
    pub(crate) fn restore(&mut self, ids: Vec<RememberedId>, now_ms: i64) {
        self.window.restore(ids, now_ms);
    }

    /// How many ids are remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.window.len()
    }
}

impl super::Core {
    /// Puts back the ids the journal kept for the duplicate window of the durable queue at
    /// `address`, before any connection comes; returns whether there is such a queue.
    pub(crate) fn restore_duplicates(
        &mut self,
        address: &str,
        ids: Vec<RememberedId>,
        now: i64,
    ) -> bool {
        let Some(node) = self
            .durable_queues()
            .into_iter()
            .find(|(_, a)| &**a == address)
            .map(|(id, _)| id)
        else {
            return false;
        };
        if let Some(super::Slot {
            node: super::Node::Queue(q),
            ..
        }) = self.nodes.get_mut(node)
        {
            q.restore_duplicates(ids, now);
        }
        true
    }
}
