//! [`MemStorage`]: segments in memory, with the faults a disk has, for tests: failed, short and
//! torn writes, failed syncs, a full disk, and a crash that loses what was not synced.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::storage::Storage;

/// An operation of [`Storage`], to aim a fault at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// [`Storage::create`].
    Create,
    /// [`Storage::write_at`].
    Write,
    /// [`Storage::sync`].
    Sync,
    /// [`Storage::truncate`].
    Truncate,
    /// [`Storage::remove`].
    Remove,
}

#[derive(Debug, Clone)]
struct Fault {
    op: Op,
    kind: io::ErrorKind,
    /// For a write: the bytes written before it fails.
    written: usize,
    /// Until [`MemStorage::heal`], rather than once.
    lasting: bool,
}

#[derive(Debug, Default, Clone)]
struct File {
    data: Vec<u8>,
    /// The content as of the last sync: what a crash cannot take away.
    synced: Vec<u8>,
}

#[derive(Debug, Default)]
struct State {
    files: BTreeMap<u64, File>,
    faults: VecDeque<Fault>,
    syncs: u64,
    writes: u64,
}

/// Segments in memory. Clones share the same files, so a test keeps one to inject faults and
/// to crash it while the journal owns another.
#[derive(Debug, Default, Clone)]
pub struct MemStorage {
    state: Arc<Mutex<State>>,
}

impl MemStorage {
    /// An empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding it has failed already; the files are still whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next `op` fails with `kind`.
    pub fn fail_once(&self, op: Op, kind: io::ErrorKind) {
        self.push(Fault {
            op,
            kind,
            written: 0,
            lasting: false,
        });
    }

    /// The next write puts down only `written` of its bytes, then fails with `kind`.
    pub fn fail_short_write(&self, written: usize, kind: io::ErrorKind) {
        self.push(Fault {
            op: Op::Write,
            kind,
            written,
            lasting: false,
        });
    }

    /// Every `op` fails with `kind` until [`MemStorage::heal`] (a full disk, a dead device).
    pub fn fail_until_healed(&self, op: Op, kind: io::ErrorKind) {
        self.push(Fault {
            op,
            kind,
            written: 0,
            lasting: true,
        });
    }

    /// Ends every fault.
    pub fn heal(&self) {
        self.state().faults.clear();
    }

    fn push(&self, fault: Fault) {
        self.state().faults.push_back(fault);
    }

    /// The machine stops: a new storage holding what survived. Of each segment's bytes not yet
    /// synced, `keep(segment, unsynced)` says how many survive (0 = all lost, as after a power
    /// cut; `unsynced` = all kept, as after a killed process).
    pub fn crash(&self, mut keep: impl FnMut(u64, usize) -> usize) -> MemStorage {
        let state = self.state();
        let files = state
            .files
            .iter()
            .map(|(&segment, f)| {
                let common = f
                    .data
                    .iter()
                    .zip(&f.synced)
                    .take_while(|(a, b)| a == b)
                    .count();
                let unsynced = f.data.len() - common;
                let kept = common + keep(segment, unsynced).min(unsynced);
                let data = f.data.get(..kept).unwrap_or_default().to_vec();
                (
                    segment,
                    File {
                        synced: data.clone(),
                        data,
                    },
                )
            })
            .collect();
        MemStorage {
            state: Arc::new(Mutex::new(State {
                files,
                ..State::default()
            })),
        }
    }

    /// A segment's bytes, if it exists.
    pub fn file(&self, segment: u64) -> Option<Vec<u8>> {
        self.state().files.get(&segment).map(|f| f.data.clone())
    }

    /// Replaces a segment's bytes (to cut or corrupt it), as if synced.
    pub fn set_file(&self, segment: u64, data: Vec<u8>) {
        self.state().files.insert(
            segment,
            File {
                synced: data.clone(),
                data,
            },
        );
    }

    /// The segments there are, ascending.
    pub fn segments(&self) -> Vec<u64> {
        self.state().files.keys().copied().collect()
    }

    /// Syncs and writes done so far.
    pub fn counts(&self) -> (u64, u64) {
        let s = self.state();
        (s.writes, s.syncs)
    }
}

impl State {
    /// The fault aimed at `op`, if any: a lasting one stays.
    fn fault(&mut self, op: Op) -> Option<Fault> {
        let at = self.faults.iter().position(|f| f.op == op)?;
        let fault = self.faults.get(at)?.clone();
        if !fault.lasting {
            self.faults.remove(at);
        }
        Some(fault)
    }

    fn file(&mut self, segment: u64) -> io::Result<&mut File> {
        self.files
            .get_mut(&segment)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such segment"))
    }
}

fn failed(fault: &Fault) -> io::Error {
    io::Error::new(fault.kind, "injected fault")
}

impl Storage for MemStorage {
    fn list(&mut self) -> io::Result<Vec<u64>> {
        Ok(self.segments())
    }

    fn read(&mut self, segment: u64) -> io::Result<Vec<u8>> {
        Ok(self.state().file(segment)?.data.clone())
    }

    fn read_at(&mut self, segment: u64, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut state = self.state();
        let file = state.file(segment)?;
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        let bytes = file
            .data
            .get(start..start + buf.len())
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(bytes);
        Ok(())
    }

    fn create(&mut self, segment: u64) -> io::Result<()> {
        let mut state = self.state();
        if let Some(f) = state.fault(Op::Create) {
            return Err(failed(&f));
        }
        state.files.insert(segment, File::default());
        Ok(())
    }

    fn write_at(&mut self, segment: u64, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut state = self.state();
        state.writes += 1;
        let fault = state.fault(Op::Write);
        let file = state.file(segment)?;
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        let n = fault
            .as_ref()
            .map_or(data.len(), |f| f.written.min(data.len()));
        if file.data.len() < start {
            file.data.resize(start, 0);
        }
        let end = start + n;
        if file.data.len() < end {
            file.data.resize(end, 0);
        }
        if let (Some(to), Some(from)) = (file.data.get_mut(start..end), data.get(..n)) {
            to.copy_from_slice(from);
        }
        match fault {
            Some(f) => Err(failed(&f)),
            None => Ok(()),
        }
    }

    fn truncate(&mut self, segment: u64, len: u64) -> io::Result<()> {
        let mut state = self.state();
        if let Some(f) = state.fault(Op::Truncate) {
            return Err(failed(&f));
        }
        let len = usize::try_from(len).map_err(io::Error::other)?;
        state.file(segment)?.data.truncate(len);
        Ok(())
    }

    fn sync(&mut self, segment: u64) -> io::Result<()> {
        let mut state = self.state();
        state.syncs += 1;
        if let Some(f) = state.fault(Op::Sync) {
            // As Linux may after a failed fsync: the unsynced pages are gone from the cache
            // too, so what was written must be written again.
            let file = state.file(segment)?;
            file.data = file.synced.clone();
            return Err(failed(&f));
        }
        let file = state.file(segment)?;
        file.synced = file.data.clone();
        Ok(())
    }

    fn remove(&mut self, segment: u64) -> io::Result<()> {
        let mut state = self.state();
        if let Some(f) = state.fault(Op::Remove) {
            return Err(failed(&f));
        }
        state.files.remove(&segment);
        Ok(())
    }
}
