//! The daemon's HTTP listener (axum): `/healthz` (the process is alive), `/readyz` (the
//! database answers and its migrations are current: 503 with the reason otherwise) and
//! `/metrics` (Prometheus text; the backlog gauges are read from the database per scrape),
//! served under the limits every listener has (`listener`).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::listener::Limits;
use crate::metrics::Metrics;
use crate::store::Store;

#[derive(Clone)]
pub struct HttpState {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(state): State<HttpState>) -> (StatusCode, String) {
    match state.store.ready().await {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        ),
    }
}

async fn metrics(State(state): State<HttpState>) -> String {
    let now = state.clock.now();
    match (
        state.store.outbox_backlog(now).await,
        state.store.due_count(now).await,
    ) {
        (Ok((pending, oldest)), Ok(due)) => {
            let age = oldest.map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
            state.metrics.set_backlog(pending, age, due);
        }
        _ => state.metrics.database_error(),
    }
    state.metrics.encode()
}

/// Serves until `stop` is cancelled, under the listener's limits.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: HttpState,
    limits: Limits,
    stop: CancellationToken,
) -> std::io::Result<()> {
    crate::listener::serve(listener, router(state), limits, stop).await
}
