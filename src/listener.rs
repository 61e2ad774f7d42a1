//! Serving HTTP on a socket that anyone on the network may reach, so that no client can starve
//! it: every listener (the ops listener; the public one with the customer pages and the API)
//! goes through [`serve`]. Owns the connection-level limits; routes and handlers
//! are the callers'.
//!
//! - at most `max_connections` connections at once (a slot is taken before `accept`, so the
//!   process never runs out of file descriptors; further clients wait in the kernel's queue);
//! - a request's headers must arrive within `header_timeout` of the moment the connection
//!   waits for them, which also bounds an idle keep-alive connection (a slowloris client, or
//!   one that connects and says nothing, is cut off);
//! - a connection is closed after `connection_lifetime`, whatever it does;
//! - a request is answered within `request_timeout` (503 otherwise) and its body is at most
//!   `max_body_bytes`;
//! - on the stop signal, idle keep-alive connections are closed at once and requests in
//!   flight get a short grace to finish.

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// The limits one listener enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub request_timeout: Duration,
    pub connection_lifetime: Duration,
    pub max_body_bytes: usize,
}

/// How long requests in flight may take to finish once the listener stops.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` under `limits` until `stop` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: Limits,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let timeout = limits.request_timeout;
    let app = app
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            answer_within(timeout, request, next)
        }));
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = stop.cancelled() => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            // Out of file descriptors or a connection reset before accept: the listener
            // itself is fine; wait a little rather than spin.
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(
                TokioIo::new(stream),
                // Handlers may ask who is connected (per-client rate limits).
                TowerToHyperService::new(app.clone().layer(Extension(ConnectInfo(peer)))),
            );
        let connection = graceful.watch(connection);
        let lifetime = limits.connection_lifetime;
        tokio::spawn(async move {
            // Whatever the connection does, its slot comes back within its lifetime.
            let _slot = slot;
            let _ = tokio::time::timeout(lifetime, connection).await;
        });
    }
    drop(listener);
    if tokio::time::timeout(STOP_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("HTTP requests still in flight after the stop grace; dropped");
    }
    Ok(())
}

/// The client address of a request served by [`serve`] (empty when there is none), for
/// per-client limits.
pub fn client_address(request: &Request) -> String {
    request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
        .unwrap_or_default()
}

/// Answers 503 for a request whose handler takes longer than `timeout`.
async fn answer_within(timeout: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the request took too long; try again\n",
        )
            .into_response(),
    }
}
