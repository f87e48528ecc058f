//! What the core tells connections, gathered over a wake-up and sent as one batch per
//! connection at its end: one channel operation and one task wake-up per connection, not per
//! message.

use rustc_hash::FxHashMap;

use sluice_codec::transport::DeliveryState;
use tokio::sync::mpsc;

use super::{ConnId, Origin, ToConn};

/// The channel a connection receives its batches on.
pub(crate) type ToConnTx = mpsc::UnboundedSender<Vec<ToConn>>;

#[derive(Debug, Default)]
pub(super) struct Outbox {
    connections: FxHashMap<ConnId, ToConnTx>,
    pending: FxHashMap<ConnId, Vec<ToConn>>,
}

impl Outbox {
    pub(super) fn register(&mut self, conn: ConnId, tx: ToConnTx) {
        self.connections.insert(conn, tx);
    }

    pub(super) fn unregister(&mut self, conn: ConnId) {
        self.connections.remove(&conn);
        self.pending.remove(&conn);
    }

    /// Queues `message` for `conn`; a connection that has gone gets nothing (its answers are
    /// moot).
    pub(super) fn push(&mut self, conn: ConnId, message: ToConn) {
        if self.connections.contains_key(&conn) {
            self.pending.entry(conn).or_default().push(message);
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

    /// Sends every connection its batch.
    pub(super) fn flush(&mut self) {
        for (conn, batch) in self.pending.drain() {
            if !batch.is_empty()
                && let Some(tx) = self.connections.get(&conn)
            {
                let _ = tx.send(batch);
            }
        }
    }
}
