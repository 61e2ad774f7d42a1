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
//!   `max_body_bytes` (a body declared larger is refused with 413 before it is read);
//! - every request has an id ([`RequestId`]: the client's `x-request-id` when valid, else a
//!   new one), in its extensions for the log and on its response;
//! - on the stop signal, idle keep-alive connections are closed at once and requests in
//!   flight get a short grace to finish.
//!
//! The refusals the listener answers itself (too large, too slow) are worded by the caller
//! ([`Wording`]), who knows its routes: the API answers problem+json under `/v1`.

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
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

/// The header that carries a request's id, both ways.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id taken from a client.
const REQUEST_ID_MAX: usize = 128;

/// A request's id: the client's `x-request-id` when it is 1-128 letters, digits, `-`, `_`,
/// `.` or `:` (a UUID, a proxy's id), else 32 random hex digits. It is on the response and in
/// the request's log line, so a client's report and the log meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    fn of(headers: &HeaderMap) -> RequestId {
        let given = headers
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|id| {
                (1..=REQUEST_ID_MAX).contains(&id.len())
                    && id.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')
                    })
            });
        RequestId(match given {
            Some(id) => id.to_owned(),
            None => format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of a request served by [`serve`] (empty when there is none).
    pub fn of_request(request: &Request) -> &str {
        request
            .extensions()
            .get::<RequestId>()
            .map_or("", RequestId::as_str)
    }
}

/// Why the listener answered a request itself, without (or instead of) its route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its `Content-Length` is over `limit` bytes: refused before the body is read.
    TooLarge { limit: usize },
    /// Not answered within `after`: the handler was dropped (what it had not committed is
    /// rolled back).
    TimedOut { after: Duration },
}

/// A request the listener refused, for its caller to word.
#[derive(Debug)]
pub struct Refused<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub id: &'a RequestId,
    pub refusal: Refusal,
}

impl Refused<'_> {
    pub fn status(&self) -> StatusCode {
        match self.refusal {
            Refusal::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::TimedOut { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// How the listener's own refusals are answered, by the caller who knows the routes.
pub type Wording = fn(&Refused<'_>) -> Response;

/// The refusals in plain text.
pub fn plain(refused: &Refused<'_>) -> Response {
    let text = match refused.refusal {
        Refusal::TooLarge { limit } => format!("the body is larger than {limit} bytes\n"),
        Refusal::TimedOut { .. } => "the request took too long; try again\n".to_owned(),
    };
    (refused.status(), text).into_response()
}

/// Serves `app` on `listener` under `limits` until `stop` is cancelled; the refusals the
/// listener makes itself are answered by `wording`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: Limits,
    wording: Wording,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let app = app
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            guard(limits, wording, request, next)
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

/// Gives the request its id, refuses a declared body over the limit at once (rather than
/// wait for a body that will not fit), answers 503 for a handler that takes longer than the
/// request timeout, and puts the id on the response.
async fn guard(limits: Limits, wording: Wording, mut request: Request, next: Next) -> Response {
    let id = RequestId::of(request.headers());
    request.extensions_mut().insert(id.clone());
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let refused = |refusal| {
        wording(&Refused {
            method: &method,
            path: &path,
            id: &id,
            refusal,
        })
    };
    let mut response = if declared.is_some_and(|n| n > limits.max_body_bytes as u64) {
        let mut response = refused(Refusal::TooLarge {
            limit: limits.max_body_bytes,
        });
        // The body stays unread: the connection cannot carry another request.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    } else {
        match tokio::time::timeout(limits.request_timeout, next.run(request)).await {
            Ok(response) => response,
            Err(_) => refused(Refusal::TimedOut {
                after: limits.request_timeout,
            }),
        }
    };
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}
