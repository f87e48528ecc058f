//! What the core tells connections, gathered over a wake-up and sent as one batch per
//! connection at its end: one channel operation and one task wake-up per connection, not per
//! message.

use rustc_hash::FxHashMap;

use sluice_codec::transport::DeliveryState;
use tokio::sync::mpsc;

use super::{ConnId, Origin, ToConn};

/// The channel a connection receives its batches on.
pub(crate) type ToConnTx = mpsc::UnboundedSender<Vec<ToConn>>;

/// A connection's channel and the batch gathered for it in this wake-up.
#[derive(Debug)]
struct Peer {
    tx: ToConnTx,
    pending: Vec<ToConn>,
}

#[derive(Debug, Default)]
pub(super) struct Outbox {
    peers: FxHashMap<ConnId, Peer>,
    /// Connections with a non-empty batch, so a flush visits only those.
    dirty: Vec<ConnId>,
}

impl Outbox {
    pub(super) fn register(&mut self, conn: ConnId, tx: ToConnTx) {
        self.peers.insert(
            conn,
            Peer {
                tx,
                pending: Vec::new(),
            },
        );
    }

    pub(super) fn unregister(&mut self, conn: ConnId) {
        self.peers.remove(&conn);
    }

    /// Queues `message` for `conn`; a connection that has gone gets nothing (its answers are
    /// moot).
    pub(super) fn push(&mut self, conn: ConnId, message: ToConn) {
        if let Some(peer) = self.peers.get_mut(&conn) {
            if peer.pending.is_empty() {
                self.dirty.push(conn);
            }
            peer.pending.push(message);
        }
    }

    /// Answers a publish. An accepted publish that follows the last answer to its connection
    /// (same link, the next delivery id) extends that answer instead of adding one: a stream
    /// of publishes is answered with a few ranges, as the connection settles them.
    pub(super) fn answer(&mut self, origin: Origin, state: DeliveryState) {
        if matches!(state, DeliveryState::Accepted(_))
            && let Some(peer) = self.peers.get_mut(&origin.conn)
            && let Some(ToConn::Published {
                link,
                settle,
                count,
                state: DeliveryState::Accepted(_),
            }) = peer.pending.last_mut()
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
        self.push(
            origin.conn,
            ToConn::Published {
                link: origin.link,
                settle: origin.settle,
                count: 1,
                state,
            },
        );
    }

    /// Sends every connection its batch. The next batch starts with room for as many as this
    /// one held, so a busy connection's batch is not regrown message by message each time.
    pub(super) fn flush(&mut self) {
        for conn in self.dirty.drain(..) {
            if let Some(peer) = self.peers.get_mut(&conn)
                && !peer.pending.is_empty()
            {
                let room = Vec::with_capacity(peer.pending.len());
                let _ = peer.tx.send(std::mem::replace(&mut peer.pending, room));
            }
        }
    }
}
