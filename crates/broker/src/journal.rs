//! The seam between the core and the journal writer. The core numbers every record it makes;
//! the driver hands them to a [`Journal`] in batches and holds the answers that depend on them
//! until the journal is durable up to their number.
//!
//! Without a data directory the broker runs with [`NoJournal`]: it keeps nothing and is
//! durable up to whatever it was given, so every answer is released as soon as it is made.
//! With one, [`DiskJournal`](crate::disk::DiskJournal) writes and syncs on its own thread and
//! wakes the driver through [`Journal::changed`].

use std::future::Future;

use bytes::Bytes;
use sluice_router::NodeId;
use sluice_store::MessageId;

use crate::core::{PageRead, Record};

/// What a page-in read found: the messages of `node` the journal holds, in the order asked.
#[derive(Debug)]
pub(crate) struct PagedIn {
    pub(crate) node: NodeId,
    pub(crate) found: Vec<(MessageId, Bytes)>,
}
use crate::disk::DiskJournal;

/// Where the core's records go to become durable.
pub(crate) trait Journal: Send {
    /// Takes records to make durable, in the order the core made them.
    fn write(&mut self, records: Vec<Record>);

    /// The number of the last record known to be durable (0 before any).
    fn durable(&self) -> u64;

    /// Asks for messages to be read back, after every record written before.
    fn read(&mut self, reads: Vec<PageRead>);

    /// What reads have found since the last call; [`Journal::changed`] completes when there
    /// is some.
    fn take_paged_in(&mut self) -> Vec<PagedIn>;

    /// Completes when [`Journal::durable`] may have moved on.
    fn changed(&mut self) -> impl Future<Output = ()> + Send;

    /// Durable queues a reload added: their records come from now on.
    fn add_queues(&mut self, _queues: Vec<(NodeId, std::sync::Arc<str>)>) {}
}

/// No journal: nothing is kept, and everything is as durable as it will ever be at once.
#[derive(Debug, Default)]
pub(crate) struct NoJournal {
    last: u64,
}

impl Journal for NoJournal {
    fn write(&mut self, records: Vec<Record>) {
        if let Some(last) = records.last() {
            self.last = last.seq;
        }
    }

    fn durable(&self) -> u64 {
        self.last
    }

    fn read(&mut self, reads: Vec<PageRead>) {
        // Nothing pages without a journal (the plan allows it only with one).
        debug_assert!(reads.is_empty(), "a page-in read without a journal");
    }

    fn take_paged_in(&mut self) -> Vec<PagedIn> {
        Vec::new()
    }

    async fn changed(&mut self) {
        // Durability never lags behind `write`, so there is never anything to wait for.
        std::future::pending::<()>().await;
    }
}

/// The journal a broker runs with.
#[derive(Debug)]
pub(crate) enum AnyJournal {
    Memory(NoJournal),
    Disk(DiskJournal),
}

impl Journal for AnyJournal {
    fn write(&mut self, records: Vec<Record>) {
        match self {
            Self::Memory(j) => j.write(records),
            Self::Disk(j) => j.write(records),
        }
    }

    fn add_queues(&mut self, queues: Vec<(NodeId, std::sync::Arc<str>)>) {
        if let Self::Disk(j) = self {
            j.add_queues(queues);
        }
    }

    fn durable(&self) -> u64 {
        match self {
            Self::Memory(j) => j.durable(),
            Self::Disk(j) => j.durable(),
        }
    }

    fn read(&mut self, reads: Vec<PageRead>) {
        match self {
            Self::Memory(j) => j.read(reads),
            Self::Disk(j) => j.read(reads),
        }
    }

    fn take_paged_in(&mut self) -> Vec<PagedIn> {
        match self {
            Self::Memory(j) => j.take_paged_in(),
            Self::Disk(j) => j.take_paged_in(),
        }
    }

    async fn changed(&mut self) {
        match self {
            Self::Memory(j) => j.changed().await,
            Self::Disk(j) => j.changed().await,
        }
    }
}
