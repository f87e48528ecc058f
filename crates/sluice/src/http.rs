//! The HTTP endpoint operators and Kubernetes use (`--http`): `/metrics` (Prometheus text
//! format), `/healthz` (the process runs), `/readyz` (configuration loaded, journal
//! recovered, listeners accepting) and `/status` (JSON). A thin shell over the broker's
//! [`Telemetry`], which holds and renders everything.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sluice_broker::Telemetry;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// HTTP connections served at once: scrapers, probes and operators, not a crowd. Past it,
/// new ones wait in the listen backlog.
const HTTP_CONNECTIONS_MAX: usize = 64;

/// How long one HTTP connection may live: a client that holds one open without finishing
/// its requests gives its place back (scrapers reconnect).
const HTTP_CONNECTION_LIFETIME: Duration = Duration::from_secs(30);

/// The content type of the Prometheus text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Serves the endpoints on `listener` until the process ends.
pub(crate) fn spawn(listener: TcpListener, telemetry: Telemetry) {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .with_state(telemetry);
    tokio::spawn(async move {
        let listener = Limited {
            listener,
            places: Arc::new(Semaphore::new(HTTP_CONNECTIONS_MAX)),
        };
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the HTTP endpoint stopped");
        }
    });
}

async fn readyz(axum::extract::State(t): axum::extract::State<Telemetry>) -> Response {
    match t.readiness() {
        Ok(()) => "ready\n".into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

async fn metrics(axum::extract::State(t): axum::extract::State<Telemetry>) -> Response {
    let text = t.metrics_text().await;
    ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], text).into_response()
}

async fn status(axum::extract::State(t): axum::extract::State<Telemetry>) -> Response {
    let status = t.status().await;
    match serde_json::to_string_pretty(&status) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// The listener with a bound on the connections served at once.
struct Limited {
    listener: TcpListener,
    places: Arc<Semaphore>,
}

impl axum::serve::Listener for Limited {
    type Io = LimitedStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let place = loop {
            if let Ok(p) = Arc::clone(&self.places).acquire_owned().await {
                break p;
            }
        };
        let (stream, addr) = axum::serve::Listener::accept(&mut self.listener).await;
        let stream = LimitedStream {
            stream,
            _place: place,
            ends: Box::pin(tokio::time::sleep_until(
                Instant::now() + HTTP_CONNECTION_LIFETIME,
            )),
        };
        (stream, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// An HTTP connection holding its place until it closes or its lifetime ends (then it reads
/// as closed).
struct LimitedStream {
    stream: TcpStream,
    _place: OwnedSemaphorePermit,
    ends: Pin<Box<Sleep>>,
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.ends.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
