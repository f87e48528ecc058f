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

    /// Answers a publish.
    pub(super) fn answer(&mut self, origin: Origin, state: DeliveryState) {
        self.push(
            origin.conn,
            ToConn::Published {
                link: origin.link,
                settle: origin.settle,
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
