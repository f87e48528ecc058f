//! Pre-settled deliveries (multicast) that the client's session window could not take yet.
//!
//! Nothing is stored for a multicast receiver, so the core hands such a delivery out once, on
//! the credit the client granted. A client with a small session window (pyamqp's default is a
//! window of one transfer) would lose every delivery past the first of a batch; instead they
//! wait here, in order, until the window opens. What waits is bounded for the whole
//! connection by [`BACKLOG_BYTES_MAX`] (past it a delivery is dropped, as multicast drops one
//! for a receiver without credit), and goes with its link.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use bytes::Bytes;
use sluice_engine::LinkId;

/// Most bytes of pre-settled deliveries a connection holds for its closed windows.
pub(super) const BACKLOG_BYTES_MAX: usize = 4 * 1024 * 1024;

#[derive(Debug, Default)]
pub(super) struct Backlog {
    links: FxHashMap<LinkId, VecDeque<Bytes>>,
    bytes: usize,
}

impl Backlog {
    /// Whether `link` has deliveries waiting (then a new one waits behind them).
    pub(super) fn has(&self, link: LinkId) -> bool {
        self.links.contains_key(&link)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Keeps a delivery for later; false when the connection's backlog is full.
    pub(super) fn push(&mut self, link: LinkId, payload: Bytes) -> bool {
        if self.bytes.saturating_add(payload.len()) > BACKLOG_BYTES_MAX {
            return false;
        }
        self.bytes += payload.len();
        self.links.entry(link).or_default().push_back(payload);
        true
    }

    /// The links with deliveries waiting.
    pub(super) fn links(&self) -> Vec<LinkId> {
        self.links.keys().copied().collect()
    }

    /// The oldest delivery waiting on `link`.
    pub(super) fn front(&self, link: LinkId) -> Option<&Bytes> {
        self.links.get(&link).and_then(VecDeque::front)
    }

    /// Takes the oldest delivery of `link` (once it was sent).
    pub(super) fn pop(&mut self, link: LinkId) {
        if let Some(waiting) = self.links.get_mut(&link) {
            if let Some(sent) = waiting.pop_front() {
                self.bytes -= sent.len();
            }
            if waiting.is_empty() {
                self.links.remove(&link);
            }
        }
    }

    /// The link went: its deliveries go with it.
    pub(super) fn forget(&mut self, link: LinkId) {
        if let Some(waiting) = self.links.remove(&link) {
            self.bytes -= waiting.iter().map(Bytes::len).sum::<usize>();
        }
    }
}
