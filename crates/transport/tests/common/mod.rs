//! Shared helpers of the transport integration tests: listeners on 127.0.0.1:0, a TLS
//! client, an echo loop over the accepted stream, and a hang guard.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    dead_code,
    unreachable_pub
)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use sluice_transport::{PeerInfo, Stream, TransportError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Not a timing assertion: a test that hangs fails instead of blocking CI.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest number of bytes one echo connection handles, so a runaway test ends.
const ECHO_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Runs `test` with the hang guard.
pub async fn bounded<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .expect("the test did not finish within TEST_TIMEOUT")
}

pub async fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Accepts one connection, runs `accept` on it and, if that succeeds, echoes what the peer
/// sends (each read written back and flushed) until it closes.
pub fn echo_once<F, Fut>(
    listener: TcpListener,
    accept: F,
) -> tokio::task::JoinHandle<Result<PeerInfo, TransportError>>
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(Stream, PeerInfo), TransportError>> + Send,
{
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let (mut stream, peer) = accept(tcp).await?;
        echo(&mut stream).await?;
        Ok(peer)
    })
}

/// Echoes until the peer closes.
pub async fn echo(stream: &mut Stream) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    while total < ECHO_BYTES_MAX {
        let read = stream.read(&mut buf).await?;
        if read == 0 {
            break;
        }
        total += read;
        stream.write_all(&buf[..read]).await?;
        stream.flush().await?;
    }
    stream.shutdown().await
}

pub fn server_name(name: &str) -> ServerName<'static> {
    ServerName::try_from(name.to_owned()).unwrap()
}

/// Connects to `addr` and runs the client handshake for `name`.
pub async fn connect_tls(
    addr: SocketAddr,
    config: ClientConfig,
    name: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tls_over(tcp, config, name).await
}

pub async fn tls_over(
    tcp: TcpStream,
    config: ClientConfig,
    name: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    TlsConnector::from(Arc::new(config))
        .connect(server_name(name), tcp)
        .await
}

/// Writes `bytes`, then reads back exactly as many and returns them.
pub async fn round_trip<S>(stream: &mut S, bytes: &[u8]) -> Vec<u8>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream.write_all(bytes).await.unwrap();
    stream.flush().await.unwrap();
    let mut back = vec![0u8; bytes.len()];
    stream.read_exact(&mut back).await.unwrap();
    back
}

/// Some bytes that are not all alike, so a reordering would show.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}
