//! AMQP over WebSockets: the `amqp` subprotocol, bytes both ways over TLS (message
//! boundaries mean nothing; one flush is one message), close, ping, text and size limits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::net::SocketAddr;

use common::{bounded, listen, pattern, tls_over};
use futures_util::{SinkExt, StreamExt};
use sluice_transport::testing::{SERVER_DNS_NAME, TestPki};
use sluice_transport::{
    AMQP_SUBPROTOCOL, Tls, TransportError, WS_MESSAGE_BYTES_MAX, accept_ws, accept_wss,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message};
use tokio_tungstenite::{WebSocketStream, client_async};

const HEADER: &[u8; 8] = b"AMQP\x00\x01\x00\x00";
const BIG_BYTES: usize = 200 * 1024;

/// A client handshake offering `protocols` (none if `None`).
async fn ws_client<S>(
    stream: S,
    protocols: Option<&str>,
) -> Result<
    (
        WebSocketStream<S>,
        tokio_tungstenite::tungstenite::handshake::client::Response,
    ),
    WsError,
>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut request = "ws://localhost/".into_client_request().unwrap();
    if let Some(protocols) = protocols {
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(protocols).unwrap(),
        );
    }
    client_async(request, stream).await
}

/// The next binary message, skipping control messages.
async fn next_binary<S>(ws: &mut WebSocketStream<S>) -> Bytes
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match ws.next().await.unwrap().unwrap() {
            Message::Binary(bytes) => return bytes,
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected a binary message, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn amqp_over_wss_exchanges_bytes_both_ways_and_ends_on_close() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::generate(dir.path(), "ws-client").unwrap();
        let tls = Tls::load(pki.server_settings_with_client_ca(false)).unwrap();
        let (listener, addr) = listen().await;
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let (mut stream, peer) = accept_wss(tcp, &tls).await.unwrap();
            let mut header = [0u8; 8];
            stream.read_exact(&mut header).await.unwrap();
            // Two writes, one flush: one message.
            stream.write_all(&header).await.unwrap();
            stream.write_all(&pattern(BIG_BYTES)).await.unwrap();
            stream.flush().await.unwrap();
            let mut big = vec![0u8; BIG_BYTES];
            stream.read_exact(&mut big).await.unwrap();
            assert_eq!(big, pattern(BIG_BYTES));
            let mut after_close = [0u8; 16];
            assert_eq!(stream.read(&mut after_close).await.unwrap(), 0);
            peer
        });

        let tcp = TcpStream::connect(addr).await.unwrap();
        let tls_stream = tls_over(tcp, pki.client_config(true).unwrap(), SERVER_DNS_NAME)
            .await
            .unwrap();
        let (mut ws, response) = ws_client(tls_stream, Some("mqtt, amqp")).await.unwrap();
        assert_eq!(
            response.headers().get("Sec-WebSocket-Protocol").unwrap(),
            AMQP_SUBPROTOCOL
        );
        ws.send(Message::Binary(Bytes::from_static(HEADER)))
            .await
            .unwrap();
        let answer = next_binary(&mut ws).await;
        let mut expected = HEADER.to_vec();
        expected.extend_from_slice(&pattern(BIG_BYTES));
        assert_eq!(
            answer.len(),
            expected.len(),
            "the server's flush was not one message"
        );
        assert_eq!(answer, expected);

        // 200 KiB in uneven messages, an empty one among them: boundaries mean nothing.
        let big = Bytes::from(pattern(BIG_BYTES));
        for (start, end) in [(0, 1), (1, 1), (1, 70_000), (70_000, BIG_BYTES)] {
            ws.send(Message::Binary(big.slice(start..end)))
                .await
                .unwrap();
        }
        ws.close(None).await.unwrap();
        let peer = server.await.unwrap();
        assert!(peer.tls && peer.websocket);
        assert_eq!(peer.client_subject.as_deref(), Some("ws-client"));
    })
    .await;
}

#[tokio::test]
async fn an_upgrade_without_the_amqp_subprotocol_is_refused_with_400() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::generate(dir.path(), "unused").unwrap();
        let tls = Tls::load(pki.server_settings()).unwrap();
        for offered in [None, Some("mqtt"), Some("amqp-not")] {
            let (listener, addr) = listen().await;
            let serving = tls.clone();
            let server = tokio::spawn(async move {
                let (tcp, _) = listener.accept().await.unwrap();
                accept_wss(tcp, &serving).await.map(|_| ())
            });
            let tcp = TcpStream::connect(addr).await.unwrap();
            let tls_stream = tls_over(tcp, pki.client_config(false).unwrap(), SERVER_DNS_NAME)
                .await
                .unwrap();
            match ws_client(tls_stream, offered).await {
                Err(WsError::Http(response)) => assert_eq!(response.status(), 400),
                other => panic!("offering {offered:?} was not refused with 400: {other:?}"),
            }
            let result = server.await.unwrap();
            assert!(
                matches!(result, Err(TransportError::NotAmqpSubprotocol)),
                "{result:?}"
            );
        }
    })
    .await;
}

/// A plain WebSocket server whose accepted stream is handed to `serve`.
async fn plain_ws_server<F, Fut>(serve: F) -> (SocketAddr, tokio::task::JoinHandle<Fut::Output>)
where
    F: FnOnce(sluice_transport::Stream) -> Fut + Send + 'static,
    Fut: std::future::Future + Send,
    Fut::Output: Send + 'static,
{
    let (listener, addr) = listen().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let (stream, peer) = accept_ws(tcp).await.unwrap();
        assert!(peer.websocket && !peer.tls);
        serve(stream).await
    });
    (addr, server)
}

#[tokio::test]
async fn pings_are_answered_and_bytes_echoed_over_plain_ws() {
    bounded(async {
        let (addr, server) =
            plain_ws_server(|mut stream| async move { common::echo(&mut stream).await }).await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (mut ws, _) = ws_client(tcp, Some("amqp")).await.unwrap();
        ws.send(Message::Ping(Bytes::from_static(b"are you there")))
            .await
            .unwrap();
        ws.send(Message::Binary(Bytes::from_static(HEADER)))
            .await
            .unwrap();
        let mut pong = None;
        let mut echoed = Vec::new();
        while echoed.len() < HEADER.len() {
            match ws.next().await.unwrap().unwrap() {
                Message::Pong(payload) => pong = Some(payload),
                Message::Binary(bytes) => echoed.extend_from_slice(&bytes),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(echoed, HEADER);
        ws.close(None).await.unwrap();
        // The server's close reply ends the client's stream; the pong came before it.
        while let Some(message) = ws.next().await {
            if let Ok(Message::Pong(payload)) = message {
                pong = Some(payload);
            }
        }
        assert_eq!(pong.as_deref(), Some(&b"are you there"[..]));
        server.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_text_message_is_an_error() {
    bounded(async {
        let (addr, server) = plain_ws_server(|mut stream| async move {
            let mut buf = [0u8; 64];
            stream.read(&mut buf).await
        })
        .await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (mut ws, _) = ws_client(tcp, Some("amqp")).await.unwrap();
        ws.send(Message::text("AMQP")).await.unwrap();
        let error = server.await.unwrap().unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    })
    .await;
}

#[tokio::test]
async fn a_message_over_the_limit_is_an_error() {
    bounded(async {
        let (addr, server) = plain_ws_server(|mut stream| async move {
            let mut buf = vec![0u8; 64 * 1024];
            let mut total = 0;
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) => return Ok(total),
                    Ok(read) => total += read,
                    Err(error) => return Err((total, error)),
                }
            }
        })
        .await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (mut ws, _) = ws_client(tcp, Some("amqp")).await.unwrap();
        // The client may see the connection drop while it is still sending.
        let _ = ws
            .send(Message::Binary(Bytes::from(vec![
                1u8;
                WS_MESSAGE_BYTES_MAX + 1
            ])))
            .await;
        let (total, error) = server.await.unwrap().unwrap_err();
        assert_eq!(total, 0, "part of an oversized message was delivered");
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData, "{error}");
    })
    .await;
}
