//! The protocol header on the plain port (5672) and plain AMQP sent to the TLS port (5671).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::{bounded, echo_once, listen, pattern, round_trip, tls_over};
use sluice_transport::testing::{SERVER_DNS_NAME, TestPki};
use sluice_transport::{AMQP_TLS_HEADER, Tls, TransportError, accept_amqp, accept_amqps};
use std::future::Future;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use sluice_transport::{PeerInfo, Stream};
use tokio::net::TcpStream;

const AMQP_HEADER: &[u8; 8] = b"AMQP\x00\x01\x00\x00";
const SASL_HEADER: &[u8; 8] = b"AMQP\x03\x01\x00\x00";

fn tls(dir: &tempfile::TempDir) -> (TestPki, Tls) {
    let pki = TestPki::generate(dir.path(), "unused").unwrap();
    let tls = Tls::load(pki.server_settings()).unwrap();
    (pki, tls)
}

/// Runs `accept` on the first connection to a fresh listener; the client side runs on the
/// returned address.
async fn accept_one<F, Fut>(
    accept: F,
) -> (
    SocketAddr,
    tokio::task::JoinHandle<Result<(), TransportError>>,
)
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(Stream, PeerInfo), TransportError>> + Send,
{
    let (listener, addr) = listen().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        accept(tcp).await.map(|_| ())
    });
    (addr, server)
}

#[tokio::test]
async fn the_tls_header_upgrades_the_plain_port_then_amqp_runs_inside_tls() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let (pki, tls) = tls(&dir);
        let (listener, addr) = listen().await;
        let server = echo_once(listener, move |tcp| async move {
            accept_amqp(tcp, Some(&tls)).await
        });

        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(&AMQP_TLS_HEADER).await.unwrap();
        let mut answer = [0u8; 8];
        tcp.read_exact(&mut answer).await.unwrap();
        assert_eq!(answer, AMQP_TLS_HEADER);
        let mut client = tls_over(tcp, pki.client_config(false).unwrap(), SERVER_DNS_NAME)
            .await
            .unwrap();
        let mut inside = SASL_HEADER.to_vec();
        inside.extend_from_slice(&pattern(5000));
        assert_eq!(round_trip(&mut client, &inside).await, inside);
        client.shutdown().await.unwrap();

        let peer = server.await.unwrap().unwrap();
        assert!(peer.tls && !peer.websocket);
    })
    .await;
}

/// Sends `bytes` to a plain-port server (with or without TLS configured), half-closes, and
/// returns what came back and what the server learned.
async fn plain_port_echo(tls: Option<Tls>, bytes: &[u8]) -> (Vec<u8>, sluice_transport::PeerInfo) {
    let (listener, addr) = listen().await;
    let server = echo_once(listener, move |tcp| async move {
        accept_amqp(tcp, tls.as_ref()).await
    });
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(bytes).await.unwrap();
    tcp.shutdown().await.unwrap();
    let mut back = Vec::new();
    tcp.read_to_end(&mut back).await.unwrap();
    (back, server.await.unwrap().unwrap())
}

#[tokio::test]
async fn plain_bytes_on_the_plain_port_are_replayed_unchanged() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let (_pki, tls) = tls(&dir);
        for header in [AMQP_HEADER, SASL_HEADER] {
            let mut sent = header.to_vec();
            // Small enough to sit in loopback buffers while the client is still writing.
            sent.extend_from_slice(&pattern(40_000));
            let (back, peer) = plain_port_echo(Some(tls.clone()), &sent).await;
            assert_eq!(back, sent);
            assert!(!peer.tls && !peer.websocket);
            assert_eq!(peer.client_subject, None);
        }
        // Just the header, nothing after it.
        let (back, _) = plain_port_echo(None, AMQP_HEADER).await;
        assert_eq!(back, AMQP_HEADER);
    })
    .await;
}

#[tokio::test]
async fn the_tls_header_without_tls_configured_is_replayed_for_the_engine_to_refuse() {
    bounded(async {
        let (back, peer) = plain_port_echo(None, &AMQP_TLS_HEADER).await;
        assert_eq!(back, AMQP_TLS_HEADER);
        assert!(!peer.tls);
    })
    .await;
}

#[tokio::test]
async fn a_tls_header_of_another_version_gets_ours_back_and_is_refused() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let (_pki, tls) = tls(&dir);
        let (addr, server) =
            accept_one(move |tcp| async move { accept_amqp(tcp, Some(&tls)).await }).await;
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"AMQP\x02\x01\x00\x01").await.unwrap();
        let mut answer = Vec::new();
        tcp.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, AMQP_TLS_HEADER);
        let result = server.await.unwrap();
        assert!(
            matches!(result, Err(TransportError::UnsupportedTlsHeader { header }) if &header == b"AMQP\x02\x01\x00\x01"),
            "{result:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_peer_that_closes_inside_the_header_is_an_error() {
    bounded(async {
        let (addr, server) =
            accept_one(move |tcp| async move { accept_amqp(tcp, None).await }).await;
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"AMQ").await.unwrap();
        drop(tcp);
        let result = server.await.unwrap();
        assert!(
            matches!(
                result,
                Err(TransportError::HeaderIncomplete {
                    received: 3,
                    expected: 8
                })
            ),
            "{result:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn plain_amqp_on_the_tls_port_gets_the_tls_header_and_plain_on_tls_port() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let (_pki, tls) = tls(&dir);
        let (addr, server) =
            accept_one(move |tcp| async move { accept_amqps(tcp, &tls).await }).await;
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(AMQP_HEADER).await.unwrap();
        let mut answer = [0u8; 8];
        tcp.read_exact(&mut answer).await.unwrap();
        assert_eq!(answer, AMQP_TLS_HEADER);
        let result = server.await.unwrap();
        assert!(
            matches!(result, Err(TransportError::PlainOnTlsPort)),
            "{result:?}"
        );
    })
    .await;
}
