//! The byte stream to the external server: TCP, or TLS over TCP, behind one type.

use std::pin::Pin;
use std::task::{Context, Poll};

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::error::ExtAuthError;
use crate::server::ExternalServer;
use crate::tls::client_config;

/// Bytes one read takes from the socket.
pub(crate) const READ_BUFFER_BYTES: usize = 16 * 1024;

/// A connection to the external server.
#[derive(Debug)]
pub(crate) enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP (boxed: the TLS state is large).
    Tls(Box<TlsStream<TcpStream>>),
}

/// Connects to the server, with TLS when it is configured. The caller bounds the time.
pub(crate) async fn connect(server: &ExternalServer) -> Result<Stream, ExtAuthError> {
    // Read the TLS files first: a broken configuration is reported as such, not as whatever
    // the server does with a half-made connection.
    let tls = match &server.tls {
        Some(tls) => {
            let name =
                ServerName::try_from(server.host.clone()).map_err(|e| ExtAuthError::Tls {
                    host: server.host.clone(),
                    reason: format!("not a valid server name: {e}"),
                })?;
            Some((TlsConnector::from(client_config(tls, &server.host)?), name))
        }
        None => None,
    };
    let tcp = TcpStream::connect((server.host.as_str(), server.port))
        .await
        .map_err(|source| ExtAuthError::Connect {
            host: server.host.clone(),
            port: server.port,
            source,
        })?;
    // Small frames, one round trip each: do not let Nagle hold them back.
    let _ = tcp.set_nodelay(true);
    let Some((connector, name)) = tls else {
        return Ok(Stream::Plain(tcp));
    };
    let stream = connector
        .connect(name, tcp)
        .await
        .map_err(|e| ExtAuthError::Tls {
            host: server.host.clone(),
            reason: e.to_string(),
        })?;
    Ok(Stream::Tls(Box::new(stream)))
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
