//! The admin server: `/metrics`, `/healthz`, `/readyz`, `/status`, `/histograms` (the run's
//! HDR histograms, which `soakd verdict` merges across shards: [`crate::stats::wire`]), and
//! the live page's `/`, `/series` and `/assets/*` ([`crate::page`]).
//!
//! It runs on its own OS thread and single-threaded runtime (see [`crate::app`]), together
//! with process sampling, so a load runtime saturated by thousands of streams never delays a
//! scrape or skews a sample.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio_util::sync::CancellationToken;

use crate::report::RunView;
use crate::series::LiveSeries;

/// Routes of the admin server.
pub fn router(view: Arc<RunView>, series: Arc<LiveSeries>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .route("/histograms", get(histograms))
        .with_state(view)
        .merge(crate::page::router(series))
}

async fn metrics(State(view): State<Arc<RunView>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        view.metrics().encode(),
    )
        .into_response()
}

async fn readyz(State(view): State<Arc<RunView>>) -> Response {
    let phase = view.state().phase();
    if view.state().is_sending() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", phase.as_str()),
        )
            .into_response()
    }
}

async fn status(State(view): State<Arc<RunView>>) -> Response {
    Json(view.snapshot()).into_response()
}

async fn histograms(State(view): State<Arc<RunView>>) -> Response {
    Json(view.histograms()).into_response()
}

/// Serves until `shutdown` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    view: Arc<RunView>,
    series: Arc<LiveSeries>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(view, series))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
