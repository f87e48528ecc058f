//! The journal on disk: [`DiskJournal`] hands the core's records to a writer thread of its
//! own, which appends every batch waiting, writes them with one write and one sync (group
//! commit: a sync covers whatever arrived while the one before ran), and then says how far it
//! is durable. Between writes it compacts.
//!
//! A failed write or sync leaves the durable mark where it was, so no answer that waits for it
//! goes out (`accepted` is never sent for a record not on disk) and senders of durable
//! messages get no credit back; the thread logs the fault once, retries with a growing pause,
//! and says when the disk works again. Nothing appended is dropped while it retries.
//!
//! Paging queues' reads come down the same channel as the records, so a read always follows
//! the write of the messages it asks for: the writer serves the reads of a round after its
//! flush, and hands what it found back to the driver beside the durable mark.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rustc_hash::FxHashMap;
use sluice_router::NodeId;
use sluice_store::journal::{
    FsStorage, Journal as Store, JournalConfig, JournalError, QueueRef, Recovery,
};
use tokio::sync::Notify;

use crate::telemetry::metrics::JournalMetrics;

use crate::core::{PageRead, Record};
use crate::journal::{Journal, PagedIn};

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
    /// Reads served, for the driver to take (held only to push or take, never across IO).
    paged_in: Mutex<Vec<PagedIn>>,
    moved: Notify,
}

/// What the driver sends the writer.
#[derive(Debug)]
enum Work {
    Records(Vec<Record>),
    Reads(Vec<PageRead>),
}

/// The driver's side of the writer thread.
#[derive(Debug)]
pub(crate) struct DiskJournal {
    /// Unbounded, but what it carries is bounded by the core: every stored record's message is
    /// one the core holds against its queue's limits, and publishers get no credit back while
    /// their answers wait for the writer.
    tx: Option<mpsc::Sender<Work>>,
    mark: Arc<Mark>,
    thread: Option<JoinHandle<Result<(), JournalError>>>,
}

impl DiskJournal {
    /// Starts the writer thread over `journal`; `queues` names the durable nodes.
    pub(crate) fn start(
        mut journal: Store<FsStorage>,
        queues: &[(NodeId, Arc<str>)],
        metrics: JournalMetrics,
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
            reads: Vec::new(),
            read_failing: false,
            metrics,
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

impl DiskJournal {
    fn send(&mut self, work: Work) {
        if let Some(tx) = &self.tx
            && tx.send(work).is_err()
        {
            // The writer is gone (it only stops when told to, or panics): nothing more is
            // durable, so nothing that waits for it is answered.
            tracing::error!("the journal writer has stopped: durable messages are not accepted");
        }
    }
}

impl Journal for DiskJournal {
    fn write(&mut self, records: Vec<Record>) {
        self.send(Work::Records(records));
    }

    fn durable(&self) -> u64 {
        self.mark.durable.load(Ordering::Acquire)
    }

    fn read(&mut self, reads: Vec<PageRead>) {
        self.send(Work::Reads(reads));
    }

    fn take_paged_in(&mut self) -> Vec<PagedIn> {
        self.mark
            .paged_in
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default()
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
    /// Reads to serve after the next flush (or again, after the disk failed them).
    reads: Vec<PageRead>,
    /// A read failed and none has worked since (logged once).
    read_failing: bool,
    metrics: JournalMetrics,
}

impl Writer {
    fn run(mut self, rx: &mpsc::Receiver<Work>) -> Result<(), JournalError> {
        let mut wait = IDLE;
        let mut segments = self.journal.stats().segments;
        loop {
            match rx.recv_timeout(wait) {
                Ok(work) => self.take(work),
                Err(RecvTimeoutError::Timeout) => {
                    // Reads the disk failed before are tried again on every idle tick.
                    if self.serve_reads() {
                        self.mark.moved.notify_one();
                    }
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
    fn drain(&mut self, rx: &mpsc::Receiver<Work>) -> bool {
        loop {
            match rx.try_recv() {
                Ok(work) => self.take(work),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
    }

    fn take(&mut self, work: Work) {
        match work {
            Work::Records(batch) => self.append(batch),
            Work::Reads(reads) => self.reads.extend(reads),
        }
    }

    /// Serves the reads waiting (their messages were written by the flush before) and hands
    /// what they found to the driver. A read the disk fails stays waiting and is tried again
    /// at the next round or idle tick: its messages stay in the journal and in their queue's
    /// references, and only that queue's consumers wait. Returns whether any was served.
    fn serve_reads(&mut self) -> bool {
        if self.reads.is_empty() {
            return false;
        }
        let mut served = Vec::with_capacity(self.reads.len());
        let mut failed = Vec::new();
        for read in std::mem::take(&mut self.reads) {
            let Some(queue) = self.refs.get(&read.node).copied() else {
                // Not a journaled queue: it cannot have paged; it gets nothing back.
                served.push(PagedIn {
                    node: read.node,
                    found: Vec::new(),
                });
                continue;
            };
            match self.journal.read(queue, &read.ids) {
                Ok(found) => served.push(PagedIn {
                    node: read.node,
                    found,
                }),
                Err(e) => {
                    if !self.read_failing {
                        tracing::error!(error = %e, "the journal cannot read paged messages back: their consumers wait until the disk works again");
                        self.read_failing = true;
                    }
                    failed.push(read);
                }
            }
        }
        if failed.is_empty() && self.read_failing {
            tracing::info!("the journal reads again");
            self.read_failing = false;
        }
        self.reads = failed;
        let any = !served.is_empty();
        if any && let Ok(mut p) = self.mark.paged_in.lock() {
            p.extend(served);
        }
        any
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
    fn flush(&mut self, rx: &mpsc::Receiver<Work>, mut open: bool) {
        let mut pause = RETRY_FIRST;
        let mut failures = 0u32;
        let pending = self.journal.stats().pending_bytes as u64;
        let started = std::time::Instant::now();
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
        if pending > 0 {
            // Write and sync together: what a durable message's acceptance waits for.
            self.metrics.sync.observe(started.elapsed().as_secs_f64());
            self.metrics.written.inc_by(pending);
        }
        self.metrics
            .segments
            .set(self.journal.stats().segments as i64);
        self.mark.durable.store(self.last, Ordering::Release);
        self.serve_reads();
        self.mark.moved.notify_one();
    }
}
