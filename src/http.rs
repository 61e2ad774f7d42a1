//! The daemon's HTTP listener (axum): `/healthz` (the process is alive), `/readyz` (the
//! database answers and its migrations are current: 503 with the reason otherwise; the read
//! replica's lag on a line of its own) and `/metrics` (OpenMetrics when asked for, else the
//! Prometheus text format; the backlog, readiness and replica gauges are read from the
//! database per scrape),
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

/// Ready when the primary answers with the schema of this build. The read replica's state is
/// a line of its own: a replica behind or away slows exports and lists, while renewals, mail
/// and payments (all on the primary) go on, so it does not make the daemon unready.
async fn readyz(State(state): State<HttpState>) -> (StatusCode, String) {
    match state.store.ready().await {
        Ok(()) => {
            let replica = match state.store.replica_lag().await {
                Ok(None) => String::new(),
                Ok(Some(lag)) => format!(
                    "replica: {} bytes behind, {:.1} s\n",
                    lag.bytes, lag.seconds
                ),
                Err(error) => format!("replica: unreachable: {error}\n"),
            };
            (StatusCode::OK, format!("ready\n{replica}"))
        }
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
    state.metrics.set_ready(state.store.ready().await.is_ok());
    match (
        state.store.outbox_backlog(now).await,
        state.store.due_count(now).await,
        state.store.payment_backlog(now).await,
        state.store.unfulfilled_summary(now, 0).await,
    ) {
        (
            Ok((pending, oldest)),
            Ok(due),
            Ok((payments_due, oldest_payment)),
            Ok((unfulfilled, oldest_order, _)),
        ) => {
            state.metrics.set_backlog(pending, age(oldest), due);
            state
                .metrics
                .set_payment_backlog(payments_due, age(oldest_payment));
            state
                .metrics
                .set_unfulfilled(unfulfilled, age(oldest_order));
        }
        _ => state.metrics.database_error(),
    }
    match state.store.replica_lag().await {
        Ok(Some(lag)) => state.metrics.set_replica_lag(&lag),
        Ok(None) => {}
        Err(_) => state.metrics.database_error(),
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
