//! The daemon's HTTP listener (axum): `/healthz` (the process is alive), `/readyz` (the
//! database answers and its migrations are current: 503 with the reason otherwise) and
//! `/metrics` (OpenMetrics when asked for, else the Prometheus text format; the backlog gauges are read from the database per scrape),
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

/// OpenMetrics to a scraper that asks for it (Prometheus does), the Prometheus text format
/// otherwise; each with its own content type.
async fn metrics(
    State(state): State<HttpState>,
    headers: axum::http::HeaderMap,
) -> ([(axum::http::header::HeaderName, &'static str); 1], String) {
    let now = state.clock.now();
    let age = |oldest: Option<chrono::DateTime<chrono::Utc>>| {
        oldest.map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0)
    };
    match (
        state.store.outbox_backlog(now).await,
        state.store.due_count(now).await,
        state.store.unfulfilled_summary(now, 0).await,
    ) {
        (Ok((pending, oldest)), Ok(due), Ok((unfulfilled, oldest_order, _))) => {
            state.metrics.set_backlog(pending, age(oldest), due);
            state
                .metrics
                .set_unfulfilled(unfulfilled, age(oldest_order));
        }
        _ => state.metrics.database_error(),
    }
    let wants_openmetrics = headers
        .get_all(axum::http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let (content_type, body) = if wants_openmetrics {
        (
            crate::metrics::OPENMETRICS_CONTENT_TYPE,
            state.metrics.encode_openmetrics(),
        )
    } else {
        (
            crate::metrics::TEXT_CONTENT_TYPE,
            state.metrics.encode_text(),
        )
    };
    ([(axum::http::header::CONTENT_TYPE, content_type)], body)
}

/// Serves until `stop` is cancelled, under the listener's limits.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: HttpState,
    limits: Limits,
    stop: CancellationToken,
) -> std::io::Result<()> {
    crate::listener::serve(
        listener,
        router(state),
        limits,
        crate::listener::plain,
        stop,
    )
    .await
}
