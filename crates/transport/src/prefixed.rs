//! A stream that first replays the few bytes read from it to decide what the peer speaks.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most bytes ever read ahead: one AMQP protocol header.
pub(crate) const PREFIX_BYTES_MAX: usize = 8;

/// `inner`, with up to [`PREFIX_BYTES_MAX`] bytes already read from it put back in front.
#[derive(Debug)]
pub(crate) struct Prefixed<S> {
    prefix: [u8; PREFIX_BYTES_MAX],
    /// The replayed bytes are `prefix[start..end]`.
    start: usize,
    end: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    /// `inner` with nothing to replay.
    pub(crate) fn new(inner: S) -> Prefixed<S> {
        Prefixed {
            prefix: [0; PREFIX_BYTES_MAX],
            start: 0,
            end: 0,
            inner,
        }
    }

    /// `inner`, replaying `bytes` (at most [`PREFIX_BYTES_MAX`]; the rest is dropped, which
    /// callers rule out by construction) before what it reads next.
    pub(crate) fn replaying(bytes: &[u8], inner: S) -> Prefixed<S> {
        let mut prefixed = Prefixed::new(inner);
        let len = bytes.len().min(PREFIX_BYTES_MAX);
        if let (Some(to), Some(from)) = (prefixed.prefix.get_mut(..len), bytes.get(..len)) {
            to.copy_from_slice(from);
            prefixed.end = len;
        }
        prefixed
    }

    /// The wrapped stream (for its socket options and addresses).
    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(pending) = this.prefix.get(this.start..this.end)
            && !pending.is_empty()
        {
            let len = pending.len().min(buf.remaining());
            if let Some(chunk) = pending.get(..len) {
                buf.put_slice(chunk);
                this.start += len;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn replays_the_prefix_then_reads_the_rest() {
        let (mut near, far) = tokio::io::duplex(64);
        near.write_all(b" and the rest").await.unwrap();
        drop(near);
        let mut stream = Prefixed::replaying(b"AMQP\x00\x01\x00\x00", far);
        // A 3-byte buffer takes the prefix in pieces.
        let mut small = [0u8; 3];
        stream.read_exact(&mut small).await.unwrap();
        assert_eq!(&small, b"AMQ");
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"P\x00\x01\x00\x00 and the rest");
    }
}
