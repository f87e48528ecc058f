//! What the core tells connections, gathered over a wake-up and handed out as one batch per
//! connection at its end: one channel operation and one task wake-up per connection, not per
//! message.
//!
//! A connection's answers come in two batches: those it may have at once, and those that wait
//! until the journal is durable up to the wake-up's last record (an accepted publish whose
//! message the journal must keep). The driver holds the second until the journal says so.

use rustc_hash::FxHashMap;

use sluice_codec::transport::DeliveryState;

use super::command::{Origin, ToConn};
use super::ids::ConnId;

/// A connection's batches of this wake-up.
#[derive(Debug, Default)]
struct Peer {
    now: Vec<ToConn>,
    synced: Vec<ToConn>,
}

/// A batch for a connection; `synced` when it waits for the journal.
pub(crate) struct Batch {
    pub(crate) conn: ConnId,
    pub(crate) answers: Vec<ToConn>,
    pub(crate) synced: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Outbox {
    peers: FxHashMap<ConnId, Peer>,
    /// Connections with a non-empty batch, so a flush visits only those.
    dirty: Vec<ConnId>,
    /// Deliveries pushed so far, which the core reads before and after a node's work to
    /// count that node's.
    pub(crate) delivered: u64,
}

impl Outbox {
    pub(crate) fn connect(&mut self, conn: ConnId) {
        self.peers.entry(conn).or_default();
    }

    /// A connection that has gone gets nothing more: its answers are moot.
    pub(crate) fn disconnect(&mut self, conn: ConnId) {
        self.peers.remove(&conn);
    }

    fn peer(&mut self, conn: ConnId) -> Option<&mut Peer> {
        let peer = self.peers.get_mut(&conn)?;
        if peer.now.is_empty() && peer.synced.is_empty() {
            self.dirty.push(conn);
        }
        Some(peer)
    }

    /// Queues `message` for `conn`.
    pub(crate) fn push(&mut self, conn: ConnId, message: ToConn) {
        self.delivered += u64::from(matches!(message, ToConn::Deliver { .. }));
        if let Some(peer) = self.peer(conn) {
            peer.now.push(message);
        }
    }

    /// Queues `message` for `conn`, to go once the journal holds what this wake-up changed.
    pub(crate) fn push_synced(&mut self, conn: ConnId, message: ToConn) {
        if let Some(peer) = self.peer(conn) {
            peer.synced.push(message);
        }
    }

    /// Answers a publish; `synced` when the answer must wait for the journal. An accepted
    /// publish that follows the last answer to its connection (same link, the next delivery
    /// id) extends that answer instead of adding one: a stream of publishes is answered with
    /// a few ranges, as the connection settles them.
    pub(crate) fn answer(&mut self, origin: Origin, state: DeliveryState, synced: bool) {
        let Some(peer) = self.peer(origin.conn) else {
            return;
        };
        let batch = if synced {
            &mut peer.synced
        } else {
            &mut peer.now
        };
        if matches!(state, DeliveryState::Accepted(_))
            && let Some(ToConn::Published {
                link,
                settle,
                count,
                state: DeliveryState::Accepted(_),
            }) = batch.last_mut()
            && *link == origin.link
        {
            let follows = match (*settle, origin.settle) {
                (None, None) => true,
                (Some((s, first)), Some((session, id))) => {
                    s == session && first.wrapping_add(*count) == id
                }
                _ => false,
            };
            if follows {
                *count += 1;
                return;
            }
        }
        batch.push(ToConn::Published {
            link: origin.link,
            settle: origin.settle,
            count: 1,
            state,
        });
    }

    /// The batches of this wake-up, each connection's immediate one first. The next batches
    /// start with room for as many as these held, so a busy connection's batch is not regrown
    /// message by message each time.
    pub(crate) fn flush(&mut self, mut each: impl FnMut(Batch)) {
        for conn in self.dirty.drain(..) {
            let Some(peer) = self.peers.get_mut(&conn) else {
                continue;
            };
            for (batch, synced) in [(&mut peer.now, false), (&mut peer.synced, true)] {
                if !batch.is_empty() {
                    let room = Vec::with_capacity(batch.len());
                    let answers = std::mem::replace(batch, room);
                    each(Batch {
                        conn,
                        answers,
                        synced,
                    });
                }
            }
        }
    }
}
