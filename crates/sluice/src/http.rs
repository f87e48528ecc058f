//! The HTTP endpoint operators and Kubernetes use (`--http`): `/metrics` (Prometheus text
//! format), `/healthz` (the process runs), `/readyz` (configuration loaded, journal
//! recovered, listeners accepting) and `/status` (JSON). A thin shell over the broker's
//! [`Telemetry`], which holds and renders everything.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sluice_broker::Telemetry;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// HTTP connections served at once: scrapers, probes and operators, not a crowd. Past it,
/// new ones wait in the listen backlog. (The port is meant for the monitoring namespace and
/// the kubelet only: the rendered NetworkPolicy lets no one else reach it.)
const HTTP_CONNECTIONS_MAX: usize = 64;

/// How long a connection has to send a request's headers (each request's, on a kept-alive
/// connection): a client that holds its place without asking gives it back.
const HTTP_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

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
    tokio::spawn(serve(listener, app));
}

/// Accepts connections while there is a place for them, each served by hyper with the
/// header timeout.
async fn serve(listener: TcpListener, app: Router) {
    let places = Arc::new(Semaphore::new(HTTP_CONNECTIONS_MAX));
    let service = hyper_util::service::TowerToHyperService::new(app);
    loop {
        let Ok(place) = Arc::clone(&places).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, say: wait rather than spin.
                tracing::debug!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = service.clone();
        tokio::spawn(async move {
            let served = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HTTP_HEADER_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(error = %e, "HTTP connection ended");
            }
            drop(place);
        });
    }
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
