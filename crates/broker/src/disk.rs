//! The journal on disk: [`DiskJournal`] hands the core's records to a writer thread of its
//! own, which appends every batch waiting, writes them with one write and one sync (group
//! commit: a sync covers whatever arrived while the one before ran), and then says how far it
//! is durable. Between writes it compacts.
//!
//! A failed write or sync leaves the durable mark where it was, so no answer that waits for it
//! goes out (`accepted` is never sent for a record not on disk) and senders of durable
//! messages get no credit back; the thread logs the fault once, retries with a growing pause,
//! and says when the disk works again. Nothing appended is dropped while it retries.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::thread::JoinHandle;
use std::time::Duration;

use rustc_hash::FxHashMap;
use sluice_router::NodeId;
use sluice_store::journal::{
    FsStorage, Journal as Store, JournalConfig, JournalError, QueueRef, Recovery,
};
use tokio::sync::Notify;

use crate::core::Record;
use crate::journal::Journal;

/// How long the writer waits for records before it compacts.
const IDLE: Duration = Duration::from_millis(100);
/// The first pause before a failed write is tried again, and the longest.
const RETRY_FIRST: Duration = Duration::from_millis(10);
const RETRY_MAX: Duration = Duration::from_secs(1);
/// At shutdown, a journal whose disk keeps failing is tried this many more times.
const RETRIES_AT_SHUTDOWN: u32 = 20;

/// The journal directory inside the data directory.
pub(crate) const JOURNAL_DIR: &str = "journal";

/// Opens (and replays) the journal under `data_dir`. Blocking: the caller runs it off the
/// runtime's threads.
pub(crate) fn open(
    data_dir: &Path,
    config: JournalConfig,
) -> Result<(Store<FsStorage>, Recovery), JournalError> {
    let dir = data_dir.join(JOURNAL_DIR);
    let storage = FsStorage::new(&dir).map_err(|source| JournalError::Io {
        op: "create the directory of",
        segment: 0,
        source,
    })?;
    Store::open(storage, config)
}

/// What the writer thread and the driver share.
#[derive(Debug, Default)]
struct Mark {
    durable: AtomicU64,
    moved: Notify,
}

/// The driver's side of the writer thread.
#[derive(Debug)]
pub(crate) struct DiskJournal {
    /// Unbounded, but what it carries is bounded by the core: every stored record's message is
    /// one the core holds against its queue's limits, and publishers get no credit back while
    /// their answers wait for the writer.
    tx: Option<mpsc::Sender<Vec<Record>>>,
    mark: Arc<Mark>,
    thread: Option<JoinHandle<Result<(), JournalError>>>,
}

impl DiskJournal {
    /// Starts the writer thread over `journal`; `queues` names the durable nodes.
    pub(crate) fn start(
        mut journal: Store<FsStorage>,
        queues: &[(NodeId, Arc<str>)],
    ) -> std::io::Result<Self> {
        let refs: FxHashMap<NodeId, QueueRef> = queues
            .iter()
            .map(|(id, address)| (*id, journal.queue(address)))
            .collect();
        let (tx, rx) = mpsc::channel();
        let mark = Arc::new(Mark::default());
        let writer = Writer {
            journal,
            refs,
            mark: mark.clone(),
            last: 0,
        };
        let thread = std::thread::Builder::new()
            .name("sluice-journal".into())
            .spawn(move || writer.run(&rx))?;
        Ok(Self {
            tx: Some(tx),
            mark,
            thread: Some(thread),
        })
    }

    /// Stops the writer after it has written, synced and closed the journal. Blocking.
    pub(crate) fn close(mut self) -> Result<(), JournalError> {
        self.tx = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(JournalError::Io {
                op: "close",
                segment: 0,
                source: std::io::Error::other("the journal writer thread panicked"),
            }),
            None => Ok(()),
        }
    }
}

impl Journal for DiskJournal {
    fn write(&mut self, records: Vec<Record>) {
        if let Some(tx) = &self.tx
            && tx.send(records).is_err()
        {
            // The writer is gone (it only stops when told to, or panics): nothing more is
            // durable, so nothing that waits for it is answered.
            tracing::error!("the journal writer has stopped: durable messages are not accepted");
        }
    }

    fn durable(&self) -> u64 {
        self.mark.durable.load(Ordering::Acquire)
    }

    async fn changed(&mut self) {
        self.mark.moved.notified().await;
    }
}

struct Writer {
    journal: Store<FsStorage>,
    refs: FxHashMap<NodeId, QueueRef>,
    mark: Arc<Mark>,
    /// The core's number of the last record appended.
    last: u64,
}

impl Writer {
    fn run(mut self, rx: &mpsc::Receiver<Vec<Record>>) -> Result<(), JournalError> {
        let mut wait = IDLE;
        let mut segments = self.journal.stats().segments;
        loop {
            match rx.recv_timeout(wait) {
                Ok(batch) => self.append(batch),
                Err(RecvTimeoutError::Timeout) => {
                    wait = match self.journal.compact() {
                        Ok(true) => Duration::ZERO,
                        Ok(false) => IDLE,
                        Err(e) => {
                            tracing::warn!(error = %e, "journal compaction failed; it is tried again later");
                            IDLE
                        }
                    };
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
            // Everything that arrived while the last sync ran goes into this one.
            let open = self.drain(rx);
            self.flush(rx, open);
            // Under steady load the writer is never idle: a new segment is the moment to
            // delete those the consumers have emptied.
            let now = self.journal.stats().segments;
            if now != segments {
                if let Err(e) = self.journal.compact() {
                    tracing::warn!(error = %e, "journal compaction failed; it is tried again later");
                }
                segments = self.journal.stats().segments;
            }
        }
        self.flush(rx, false);
        self.journal.close()
    }

    /// Appends every batch waiting; returns whether the driver is still there.
    fn drain(&mut self, rx: &mpsc::Receiver<Vec<Record>>) -> bool {
        loop {
            match rx.try_recv() {
                Ok(batch) => self.append(batch),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
    }

    fn append(&mut self, batch: Vec<Record>) {
        for record in batch {
            match self.refs.get(&record.node) {
                Some(queue) => {
                    if let Err(e) = self.journal.append(*queue, &record.change) {
                        // The journal's record limit is above the largest message a
                        // connection takes, so this is a bug, not a client's doing.
                        tracing::error!(error = %e, "a record was not journaled");
                    }
                }
                None => {
                    debug_assert!(false, "a record of a node that is not durable");
                    tracing::error!(node = ?record.node, "a record of a node that is not durable");
                }
            }
            self.last = record.seq;
        }
    }

    /// Writes and syncs until it works, then moves the durable mark. While the disk fails,
    /// new batches keep joining the retry.
    fn flush(&mut self, rx: &mpsc::Receiver<Vec<Record>>, mut open: bool) {
        let mut pause = RETRY_FIRST;
        let mut failures = 0u32;
        while let Err(e) = self.journal.flush() {
            failures += 1;
            if failures == 1 {
                if e.is_disk_full() {
                    tracing::error!(error = %e, "the disk is full: durable messages are not accepted and their senders get no credit until space is freed");
                } else {
                    tracing::error!(error = %e, "the journal cannot write: durable messages are not accepted and their senders get no credit until the disk works again");
                }
            }
            if !open && failures > RETRIES_AT_SHUTDOWN {
                let stats = self.journal.stats();
                tracing::error!(error = %e, pending_bytes = stats.pending_bytes, "shutting down with records not on disk; none of them was accepted");
                return;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(RETRY_MAX);
            open &= self.drain(rx);
        }
        if failures > 0 {
            tracing::info!(failures, "the journal writes again");
        }
        self.mark.durable.store(self.last, Ordering::Release);
        self.mark.moved.notify_one();
    }
}
