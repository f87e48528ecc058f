//! The journal records the core hands out: every change to a durable message of a durable
//! node, numbered in the order the core made them. The driver gives them to the journal
//! writer, and holds the answers that depend on them until the writer says it is durable up to
//! their number.

use sluice_store::{Change, MessageId, Queue};

use super::ids::NodeId;

/// One change to what a durable node keeps across a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    /// Its place in the order of every record the core has made, from 1.
    pub(crate) seq: u64,
    /// The node it belongs to.
    pub(crate) node: NodeId,
    pub(crate) change: Change,
}

/// Messages a paging queue wants read back from the journal, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageRead {
    pub(crate) node: NodeId,
    pub(crate) ids: Vec<MessageId>,
}

/// The records of a wake-up, in the order the changes were made, and the reads asked for.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    records: Vec<Record>,
    reads: Vec<PageRead>,
    /// The number of the last record made.
    last: u64,
}

impl Journal {
    /// Takes `queue`'s changes as records of `node`, right after the operation that made them,
    /// so that records of different nodes keep the order of the operations (a moved message
    /// is stored by its target before its source logs it removed).
    pub(crate) fn take(&mut self, node: NodeId, queue: &mut Queue) {
        if !queue.has_changes() {
            return;
        }
        for change in queue.take_changes() {
            self.push(node, change);
        }
    }

    pub(crate) fn push(&mut self, node: NodeId, change: Change) {
        self.last += 1;
        self.records.push(Record {
            seq: self.last,
            node,
            change,
        });
    }

    /// Records made since the last drain.
    pub(super) fn pending(&self) -> usize {
        self.records.len()
    }

    /// Puts `change` in front of the records made from the `at`-th pending one on, numbering
    /// it and them again in order (for a unit's marker, once the unit's records are known).
    /// The marker names the node of the record after it: every record names a journaled node.
    pub(super) fn insert_before(&mut self, at: usize, change: Change) {
        let Some(next) = self.records.get(at) else {
            return;
        };
        let record = Record {
            seq: next.seq,
            node: next.node,
            change,
        };
        self.records.insert(at, record);
        for r in self.records.iter_mut().skip(at + 1) {
            r.seq += 1;
        }
        self.last += 1;
    }

    /// The number of the last record made (0 before any).
    pub(crate) fn last(&self) -> u64 {
        self.last
    }

    /// The records made since the last call.
    pub(crate) fn drain(&mut self) -> Option<Vec<Record>> {
        (!self.records.is_empty()).then(|| std::mem::take(&mut self.records))
    }

    /// Asks for `ids` of `node` to be read back (after every record made so far is written).
    pub(crate) fn read(&mut self, node: NodeId, ids: Vec<MessageId>) {
        self.reads.push(PageRead { node, ids });
    }

    /// The reads asked for since the last call.
    pub(crate) fn drain_reads(&mut self) -> Option<Vec<PageRead>> {
        (!self.reads.is_empty()).then(|| std::mem::take(&mut self.reads))
    }
}
