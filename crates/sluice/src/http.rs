//! The HTTP endpoint operators and Kubernetes use (`--http`): `/metrics` (Prometheus text
//! format), `/healthz` (the process runs), `/readyz` (configuration loaded, journal
//! recovered, listeners accepting) and `/status` (JSON). A thin shell over the broker's
//! [`Telemetry`], which holds and renders everything.

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sluice_broker::Telemetry;
use tokio::net::TcpListener;

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
