//! The read buffer of a connection, sized by what the peer sends: small while it is idle or
//! chatty, large while it streams. A thousand idle connections then hold a few kilobytes each
//! instead of a 64 KiB buffer each, and a busy one still takes a socket's worth per syscall.

use tokio::io::{AsyncRead, AsyncReadExt};

/// The smallest buffer: what an idle connection keeps.
pub(crate) const READ_BUFFER_MIN: usize = 2 * 1024;
/// The largest buffer: one syscall takes up to this much.
pub(crate) const READ_BUFFER_MAX: usize = 64 * 1024;

#[derive(Debug)]
pub(crate) struct ReadBuffer {
    buf: Vec<u8>,
    /// How much the last read brought, which sizes the next one.
    last: usize,
}

impl Default for ReadBuffer {
    fn default() -> Self {
        ReadBuffer {
            buf: vec![0; READ_BUFFER_MIN],
            last: 0,
        }
    }
}

impl ReadBuffer {
    /// Reads once; the bytes read (empty at the end of the stream). The buffer is resized
    /// before the read, when the bytes of the last one have been used, so nothing is copied.
    pub(crate) async fn read_from<R: AsyncRead + Unpin>(
        &mut self,
        stream: &mut R,
    ) -> std::io::Result<&[u8]> {
        let size = next_size(self.buf.len(), self.last);
        if size != self.buf.len() {
            self.buf = vec![0; size];
        }
        let n = stream.read(&mut self.buf).await?;
        self.last = n;
        Ok(self.buf.get(..n).unwrap_or_default())
    }
}

/// The buffer for the read after one of `n` bytes into `len`: doubled when it came back full
/// (more is waiting); a quarter or less used, the smallest power of two that held it; in
/// between, as it is, so a stream of uneven reads does not reallocate every time.
fn next_size(len: usize, n: usize) -> usize {
    if n >= len {
        (len * 2).min(READ_BUFFER_MAX)
    } else if n <= len / 4 {
        n.next_power_of_two()
            .clamp(READ_BUFFER_MIN, READ_BUFFER_MAX)
    } else {
        len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_grows_while_reads_fill_it_and_shrinks_when_they_do_not() {
        assert_eq!(
            next_size(READ_BUFFER_MIN, READ_BUFFER_MIN),
            2 * READ_BUFFER_MIN
        );
        assert_eq!(next_size(READ_BUFFER_MAX, READ_BUFFER_MAX), READ_BUFFER_MAX);
        assert_eq!(next_size(READ_BUFFER_MAX, 40_000), READ_BUFFER_MAX);
        assert_eq!(next_size(READ_BUFFER_MAX, 9), READ_BUFFER_MIN);
        assert_eq!(next_size(READ_BUFFER_MAX, 5_000), 8 * 1024);
        assert_eq!(next_size(8 * 1024, 5_000), 8 * 1024, "half used: kept");
        assert_eq!(next_size(READ_BUFFER_MIN, 0), READ_BUFFER_MIN);
    }
}
