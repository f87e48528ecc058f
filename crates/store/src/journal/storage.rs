//! The journal's only way to the disk: a small trait over numbered segment files, so the
//! journal's logic is the same in memory, under fault injection and on a filesystem.

use std::io;

/// Numbered segment files. Every method either does all it says or fails; a failed write may
/// have written part of its bytes (the journal truncates and writes them again).
pub trait Storage: Send + 'static {
    /// The numbers of the segments that exist, in any order.
    fn list(&mut self) -> io::Result<Vec<u64>>;
    /// The whole content of a segment.
    fn read(&mut self, segment: u64) -> io::Result<Vec<u8>>;
    /// Fills `buf` from `offset` of a segment.
    fn read_at(&mut self, segment: u64, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Creates an empty segment (replacing one of the same number), and makes its existence
    /// durable.
    fn create(&mut self, segment: u64) -> io::Result<()>;
    /// Writes `data` at `offset` of a segment.
    fn write_at(&mut self, segment: u64, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Cuts a segment to `len` bytes.
    fn truncate(&mut self, segment: u64, len: u64) -> io::Result<()>;
    /// Makes everything written to a segment durable (fdatasync).
    fn sync(&mut self, segment: u64) -> io::Result<()>;
    /// Deletes a segment, durably.
    fn remove(&mut self, segment: u64) -> io::Result<()>;
}
