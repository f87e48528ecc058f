//! [`FsStorage`]: segments as files of one directory. The thin driver under the journal: it
//! does what [`Storage`] says with `std::fs` and nothing else.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::storage::Storage;

/// Segment files kept open at once: the tail, and the few a compaction reads from.
const OPEN_FILES_MAX: usize = 8;
/// A segment's file name: its number in 16 hex digits, so names sort as numbers do.
const SUFFIX: &str = ".journal";

/// Segments as files `<16 hex digits>.journal` in a directory.
#[derive(Debug)]
pub struct FsStorage {
    dir: PathBuf,
    open: HashMap<u64, File>,
}

impl FsStorage {
    /// Segments in `dir`, which is created if missing.
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(Self {
            dir,
            open: HashMap::new(),
        })
    }

    /// The directory the segments are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, segment: u64) -> PathBuf {
        self.dir.join(format!("{segment:016x}{SUFFIX}"))
    }

    fn file(&mut self, segment: u64) -> io::Result<&File> {
        if !self.open.contains_key(&segment) {
            if self.open.len() >= OPEN_FILES_MAX {
                // Any but the newest: the tail is written to next.
                let newest = self.open.keys().max().copied();
                self.open.retain(|s, _| Some(*s) == newest);
            }
            let file = File::options()
                .read(true)
                .write(true)
                .open(self.path(segment))?;
            self.open.insert(segment, file);
        }
        self.open
            .get(&segment)
            .ok_or_else(|| io::Error::other("segment file not open"))
    }

    /// A new or removed file is durable once its directory is synced.
    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }
}

impl Storage for FsStorage {
    fn list(&mut self) -> io::Result<Vec<u64>> {
        let mut segments = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(SUFFIX)) else {
                continue;
            };
            if hex.len() == 16
                && let Ok(n) = u64::from_str_radix(hex, 16)
            {
                segments.push(n);
            }
        }
        Ok(segments)
    }

    fn read(&mut self, segment: u64) -> io::Result<Vec<u8>> {
        fs::read(self.path(segment))
    }

    fn read_at(&mut self, segment: u64, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file(segment)?.read_exact_at(buf, offset)
    }

    fn create(&mut self, segment: u64) -> io::Result<()> {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.path(segment))?;
        self.open.insert(segment, file);
        self.sync_dir()
    }

    fn write_at(&mut self, segment: u64, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file(segment)?.write_all_at(data, offset)
    }

    fn truncate(&mut self, segment: u64, len: u64) -> io::Result<()> {
        self.file(segment)?.set_len(len)
    }

    fn sync(&mut self, segment: u64) -> io::Result<()> {
        self.file(segment)?.sync_data()
    }

    fn remove(&mut self, segment: u64) -> io::Result<()> {
        self.open.remove(&segment);
        fs::remove_file(self.path(segment))?;
        self.sync_dir()
    }
}
