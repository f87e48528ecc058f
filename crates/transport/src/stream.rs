//! The stream of one connection, whatever the listener: plain TCP, TLS over TCP, and
//! WebSocket over TLS or plain TCP, each replaying the bytes read ahead to pick it.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::prefixed::Prefixed;
use crate::ws::WsStream;

/// What the transport knows about the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's address as the socket sees it.
    pub addr: SocketAddr,
    /// The connection runs inside TLS.
    pub tls: bool,
    /// The verified client certificate's subject common name (else its first DNS SAN); `None`
    /// without a client certificate.
    pub client_subject: Option<String>,
    /// The connection is AMQP over WebSockets.
    pub websocket: bool,
}

/// The stream of one connection; implements `AsyncRead + AsyncWrite + Unpin + Send`.
#[derive(Debug)]
pub struct Stream {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Plain(Prefixed<TcpStream>),
    Tls(Box<TlsStream<Prefixed<TcpStream>>>),
    Ws(Box<WsStream<Prefixed<TcpStream>>>),
    Wss(Box<WsStream<TlsStream<Prefixed<TcpStream>>>>),
}

impl Stream {
    pub(crate) fn plain(tcp: Prefixed<TcpStream>) -> Stream {
        Stream {
            kind: Kind::Plain(tcp),
        }
    }

    pub(crate) fn tls(tls: TlsStream<Prefixed<TcpStream>>) -> Stream {
        Stream {
            kind: Kind::Tls(Box::new(tls)),
        }
    }

    pub(crate) fn ws(ws: WsStream<Prefixed<TcpStream>>) -> Stream {
        Stream {
            kind: Kind::Ws(Box::new(ws)),
        }
    }

    pub(crate) fn wss(ws: WsStream<TlsStream<Prefixed<TcpStream>>>) -> Stream {
        Stream {
            kind: Kind::Wss(Box::new(ws)),
        }
    }

    /// The TCP socket under every layer (for addresses and socket options).
    pub fn tcp(&self) -> &TcpStream {
        match &self.kind {
            Kind::Plain(tcp) => tcp.get_ref(),
            Kind::Tls(tls) => tls.get_ref().0.get_ref(),
            Kind::Ws(ws) => ws.get_ref().get_ref(),
            Kind::Wss(ws) => ws.get_ref().get_ref().0.get_ref(),
        }
    }
}

/// Calls `$method` on whichever stream `$kind` holds.
macro_rules! each {
    ($kind:expr, $stream:ident => $call:expr) => {
        match $kind {
            Kind::Plain($stream) => $call,
            Kind::Tls($stream) => $call,
            Kind::Ws($stream) => $call,
            Kind::Wss($stream) => $call,
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each!(&mut self.get_mut().kind, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(&mut self.get_mut().kind, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each!(&mut self.get_mut().kind, s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        each!(&self.kind, s => s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(&mut self.get_mut().kind, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(&mut self.get_mut().kind, s => Pin::new(s).poll_shutdown(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The broker's connection task needs these; fail the build, not the broker, if a
    /// layer stops providing them.
    #[test]
    fn stream_is_what_the_connection_task_needs() {
        fn needs<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>() {}
        needs::<Stream>();
    }
}
