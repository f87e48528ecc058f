//! AMQP over WebSockets (the OASIS "AMQP WebSocket Binding"): the HTTP upgrade that must
//! offer the `amqp` subprotocol, and a byte stream over binary messages.
//!
//! Binary messages carry AMQP bytes in either direction and their boundaries mean nothing.
//! Text messages are an error. Pings are answered by tungstenite; a close ends the stream
//! (read returns 0). What one `write`/`flush` round hands us goes out as one binary message.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::{Sink, Stream as _};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Bytes, Message};

use crate::TransportError;

/// The subprotocol a client must offer (and we echo) in `Sec-WebSocket-Protocol`.
pub const AMQP_SUBPROTOCOL: &str = "amqp";

/// The largest WebSocket message (and frame) a peer may send us, and the largest we send.
/// An AMQP frame is bounded by the negotiated max-frame-size, but a message may hold several
/// frames or part of one, so this bounds memory, not AMQP.
pub const WS_MESSAGE_BYTES_MAX: usize = 1024 * 1024;

/// The read buffer tungstenite allocates for each connection.
const WS_READ_BUFFER_BYTES: usize = 32 * 1024;

// The HTTP upgrade request itself is bounded by tungstenite: at most 64 KiB and 124 headers
// before the handshake fails.

/// The WebSocket settings of every AMQP WebSocket connection.
pub(crate) fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        .max_message_size(Some(WS_MESSAGE_BYTES_MAX))
        .max_frame_size(Some(WS_MESSAGE_BYTES_MAX))
        // One message queued while the socket is blocked, plus tungstenite's own batching.
        .max_write_buffer_size(2 * WS_MESSAGE_BYTES_MAX + 128 * 1024)
}

/// Runs the server side of the upgrade on `stream`: refuses (HTTP 400) a request that does
/// not offer `amqp` in `Sec-WebSocket-Protocol`, and echoes it otherwise.
pub(crate) async fn accept<S>(stream: S) -> Result<WsStream<S>, TransportError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut offered_amqp = false;
    // tungstenite's `Callback` fixes the error type; its size is not ours to change.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, mut response: Response| {
        if !offers_amqp(request) {
            return Err(refusal());
        }
        offered_amqp = true;
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(AMQP_SUBPROTOCOL),
        );
        Ok(response)
    };
    match tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config())).await {
        Ok(ws) => Ok(WsStream::new(ws)),
        // The callback refused: the 400 has been written.
        Err(tungstenite::Error::Http(_)) if !offered_amqp => {
            Err(TransportError::NotAmqpSubprotocol)
        }
        Err(error) => Err(error.into()),
    }
}

/// Whether any `Sec-WebSocket-Protocol` header lists `amqp` (the header is a comma-separated
/// list and may be repeated, RFC 6455 §4.1).
fn offers_amqp(request: &Request) -> bool {
    request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|list| list.split(','))
        .any(|protocol| protocol.trim() == AMQP_SUBPROTOCOL)
}

fn refusal() -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(
        "this endpoint speaks AMQP: offer the `amqp` WebSocket subprotocol\n".to_owned(),
    ));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response
}

/// A byte stream over an established AMQP WebSocket.
#[derive(Debug)]
pub(crate) struct WsStream<S> {
    ws: WebSocketStream<S>,
    /// What is left of the binary message being read.
    reading: Bytes,
    /// The peer closed (or the stream ended): reads return 0 from now on.
    read_closed: bool,
    /// Bytes written since the last message went out (at most [`WS_MESSAGE_BYTES_MAX`]).
    writing: Vec<u8>,
}

impl<S> WsStream<S> {
    fn new(ws: WebSocketStream<S>) -> WsStream<S> {
        WsStream {
            ws,
            reading: Bytes::new(),
            read_closed: false,
            writing: Vec::new(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsStream<S> {
    /// The stream under the WebSocket.
    pub(crate) fn get_ref(&self) -> &S {
        self.ws.get_ref()
    }

    /// Hands the bytes written so far to tungstenite as one binary message.
    fn poll_send_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.writing.is_empty() {
            return Poll::Ready(Ok(()));
        }
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(into_io)?;
        let message = Bytes::from(std::mem::take(&mut self.writing));
        Pin::new(&mut self.ws)
            .start_send(Message::Binary(message))
            .map_err(into_io)?;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.reading.is_empty() {
                let len = this.reading.len().min(buf.remaining());
                let chunk = this.reading.split_to(len);
                buf.put_slice(&chunk);
                return Poll::Ready(Ok(()));
            }
            if this.read_closed {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut this.ws).poll_next(cx)) {
                // An empty binary message carries nothing; wait for the next one rather than
                // return 0, which would read as the end of the stream.
                Some(Ok(Message::Binary(bytes))) => this.reading = bytes,
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the peer sent a text WebSocket message; AMQP travels in binary messages",
                    )));
                }
                Some(Ok(Message::Close(_))) => {
                    // tungstenite has queued the close reply; start sending it now, as the
                    // caller may drop the stream on reading 0 without another write.
                    // Pending only means the socket is full; it is retried on any flush.
                    if let Poll::Ready(Err(error)) = Pin::new(&mut this.ws).poll_flush(cx) {
                        tracing::debug!(%error, "sending the WebSocket close reply failed");
                    }
                    this.read_closed = true;
                }
                None => this.read_closed = true,
                // Pings are answered by tungstenite; pongs and raw frames carry no AMQP.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Err(error)) => return Poll::Ready(Err(into_io(error))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.writing.len() >= WS_MESSAGE_BYTES_MAX {
            ready!(this.poll_send_pending(cx))?;
        }
        let room = WS_MESSAGE_BYTES_MAX.saturating_sub(this.writing.len());
        let taken = buf.get(..buf.len().min(room)).unwrap_or_default();
        this.writing.extend_from_slice(taken);
        Poll::Ready(Ok(taken.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_pending(cx))?;
        Pin::new(&mut this.ws).poll_flush(cx).map_err(into_io)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_pending(cx))?;
        Pin::new(&mut this.ws).poll_close(cx).map_err(into_io)
    }
}

fn into_io(error: tungstenite::Error) -> io::Error {
    match error {
        tungstenite::Error::Io(error) => error,
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            io::Error::new(io::ErrorKind::BrokenPipe, "the WebSocket is closed")
        }
        other => io::Error::new(io::ErrorKind::InvalidData, other),
    }
}
