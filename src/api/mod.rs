//! The HTTP API under `/v1`, for storefronts and support tools, on the public listener beside
//! the customer pages (never on the ops listener). JSON in and out; every refusal an RFC 9457
//! `application/problem+json` ([`problem`]); bearer keys (`subsave api-keys create`) with a
//! scope each, compared by their SHA-256 in an index and never logged; a request limit per
//! key (429 with `Retry-After`) on top of the listener's size and time limits; keyset lists
//! (`limit` 1-100, `starting_after`, `{data, has_more}`); a query parameter an endpoint does
//! not take refused (400), as Stripe does, rather than ignored. A database outage is logged once
//! when it starts and once when it ends (the daemon's [`Outage`]), not once per request.
//!
//! Owns: HTTP, authentication and the JSON shapes' edges. Every endpoint is one `app` use case
//! (actor `api:<key name>`); the views are the same as the CLI's `--json` (docs/json.md).

mod problem;
mod reads;
mod schema;
mod stripe_events;
mod writes;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::app::{Actor, App, AppError, api_keys};
use crate::core::model::{ApiKey, Scope};
use crate::listener::{Refusal, Refused, RequestId};
use crate::outage::Outage;
use crate::rate_limit::RateLimiter;
pub use problem::Problem;
pub use writes::fingerprint;

/// How long the API keeps idempotency keys (and so answers a retry with the first response):
/// at least 24 hours; the daemon's purger deletes older ones.
pub const IDEMPOTENCY_KEYS_KEPT: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// How long a verified key is trusted without asking the database again: a revoked key stops
/// working within this long. Saves two queries per request.
const KEY_CACHE_TTL: Duration = Duration::from_secs(10);

/// Failed authentications one client address may make a minute; then 429 without looking
/// keys up (a guessing client cannot make the database work for it).
const FAILED_AUTH_PER_MINUTE: u32 = 30;

/// The most verified keys cached; past it the cache starts over.
const KEY_CACHE_MAX: usize = 10_000;

/// What the API endpoints share.
pub struct Api {
    app: App,
    per_key: RateLimiter,
    /// Failed authentications per client address.
    failures: RateLimiter,
    /// Verified keys by their SHA-256, and when they were verified.
    verified: Mutex<HashMap<[u8; 32], (ApiKey, Instant)>>,
    /// The database's state as the requests see it: an outage is logged once when it starts
    /// and once when it ends, however many requests fail in between.
    database: Arc<Outage>,
}

impl Api {
    /// The API over `app`, reporting the database's state to `database` (the daemon's one
    /// outage log, shared with its loops).
    pub fn new(app: App, database: Arc<Outage>) -> Api {
        let per_minute = app.settings().api.requests_per_minute;
        Api {
            app,
            per_key: RateLimiter::new(per_minute, Duration::from_secs(60)),
            failures: RateLimiter::new(FAILED_AUTH_PER_MINUTE, Duration::from_secs(60)),
            verified: Mutex::new(HashMap::new()),
            database,
        }
    }

    /// The result of a use case that asks the database, as the API answers it (a refusal or a
    /// failure as a problem). A database that cannot be reached is reported to the outage log
    /// (once per outage, not a line per request); an answer from it ends the outage.
    fn database<T>(&self, result: Result<T, AppError>) -> Result<T, Problem> {
        match &result {
            Ok(_) => self.database.recovered(),
            Err(AppError::Store(error)) if error.is_retryable() => self.database.failed(error),
            Err(_) => {}
        }
        result.map_err(Problem::of)
    }

    /// The live key `presented` is, from the cache when verified within [`KEY_CACHE_TTL`],
    /// else from the database (which records the use); refused (429) for a client address
    /// that failed too often.
    async fn key_for(&self, presented: &str, client: &str) -> Result<Option<ApiKey>, Problem> {
        let hash = crate::api_keys::hash(presented);
        let now = Instant::now();
        if let Some((key, at)) = self
            .verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&hash)
            && now.duration_since(*at) < KEY_CACHE_TTL
        {
            return Ok(Some(key.clone()));
        }
        let failures = format!("ip:{client}");
        if let Some(wait) = self.failures.exhausted(&failures, now) {
            return Err(Problem::rate_limited(wait));
        }
        let found = self.database(api_keys::authenticate(&self.app, presented).await)?;
        if found.is_none() {
            // Counted, not refused: this answer is the 401.
            let _ = self.failures.check(&failures, now);
        }
        if let Some(key) = &found {
            let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if verified.len() >= KEY_CACHE_MAX {
                verified.clear();
            }
            verified.insert(hash, (key.clone(), now));
        }
        Ok(found)
    }
}

/// The key a request authenticated with.
#[derive(Debug, Clone)]
pub struct Caller(pub ApiKey);

impl Caller {
    /// The actor its changes are recorded under: `api:<key name>`.
    pub fn actor(&self) -> Actor {
        Actor(format!("api:{}", self.0.name))
    }

    /// Refuses (403) a key whose scope is below `needed`.
    pub fn require(&self, needed: Scope) -> Result<(), Problem> {
        if self.0.scope >= needed {
            Ok(())
        } else {
            Err(Problem::forbidden(self.0.scope, needed))
        }
    }
}

/// Whether the API answers `path` (`/v1` and Stripe's webhooks), rather than the pages.
pub fn answers(path: &str) -> bool {
    path == "/v1" || path.starts_with("/v1/") || path == "/webhooks/stripe"
}

/// A request the listener refused under the API, as a problem, and its log line (no handler
/// ran to write one): 413 for a declared body over the limit, 503 for a request that took
/// longer than the request timeout.
pub fn refused(refused: &Refused<'_>) -> Response {
    let (problem, millis) = match refused.refusal {
        Refusal::TooLarge { limit } => (Problem::too_large(limit), 0),
        Refusal::TimedOut { after } => (Problem::timed_out(after), after.as_millis() as u64),
    };
    tracing::info!(
        method = %refused.method,
        path = refused.path,
        status = problem.status,
        millis,
        request_id = refused.id.as_str(),
        refused = ?refused.refusal,
        "api request"
    );
    problem.into_response()
}

pub fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/v1/plans", get(reads::plans))
        .route("/v1/quotes", post(writes::quote))
        .route(
            "/v1/customers",
            get(reads::customers).post(writes::create_customer),
        )
        .route(
            "/v1/customers/{id}",
            get(reads::customer).patch(writes::update_customer),
        )
        .route(
            "/v1/coupons",
            get(reads::coupons).post(writes::create_coupon),
        )
        .route("/v1/coupons/{code}/disable", post(writes::disable_coupon))
        .route(
            "/v1/subscriptions",
            get(reads::subscriptions).post(writes::create_subscription),
        )
        .route(
            "/v1/subscriptions/{id}",
            get(reads::subscription).patch(writes::change),
        )
        .route("/v1/subscriptions/{id}/{action}", post(writes::act))
        .route("/v1/subscriptions/{id}/events", get(reads::events))
        .route("/v1/orders", get(reads::orders))
        .route("/v1/orders/{number}", get(reads::order))
        .route("/v1/orders/{number}/payment", get(reads::order_payment))
        .route("/v1/orders/{number}/refunds", post(writes::refund))
        .route("/v1/orders/{number}/fulfillments", post(writes::fulfill))
        .route("/v1/payments", get(reads::payments_list))
        .route(
            "/v1/customers/{id}/addresses",
            get(reads::addresses).post(writes::add_address),
        )
        .route("/v1/customers/{id}/export", get(reads::customer_export))
        .route("/v1/customers/{id}/erase", post(writes::erase_customer))
        .route(
            "/v1/customers/{id}/payment_method",
            post(writes::set_payment_method),
        )
        .route("/v1/outbox", get(reads::messages))
        .route("/v1/outbox/{id}", get(reads::message))
        .route("/v1/outbox/{id}/retry", post(writes::retry_message))
        .route_layer(middleware::from_fn(known_parameters))
        .route("/v1/{*rest}", axum::routing::any(not_found))
        .layer(middleware::from_fn_with_state(api.clone(), authenticate))
        .with_state(api.clone())
        // Stripe's events: the signature over the body is the credential, not a key.
        .route(
            "/webhooks/stripe",
            post(stripe_events::receive).with_state(api.clone()),
        )
        // The contract is public: a client reads it before it has a key.
        .route(
            "/v1/openapi.json",
            get(openapi).layer(middleware::from_fn(known_parameters)),
        )
        .route("/v1", axum::routing::any(not_found))
        .layer(middleware::from_fn_with_state(api, problems))
}

/// The OpenAPI 3.1 document of `/v1`, as committed in `docs/openapi.json`.
pub fn openapi_document() -> String {
    schema::document()
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi_document(),
    )
        .into_response()
}

async fn not_found() -> Problem {
    Problem::not_found("no such endpoint; the endpoints are listed in docs/api.md".into())
}

/// Refuses (400, naming it) a query parameter the endpoint does not take, as the OpenAPI
/// document lists them: a misspelt filter is never ignored (`?emial=` once listed every
/// customer). A route the document does not list (the document itself) takes none; a method
/// it does not list is left to the router's 405.
async fn known_parameters(request: Request, next: Next) -> Response {
    static TAKEN: LazyLock<HashMap<String, HashMap<Method, Vec<String>>>> =
        LazyLock::new(schema::query_parameters);
    let Some(query) = request.uri().query() else {
        return next.run(request).await;
    };
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| request.uri().path(), MatchedPath::as_str);
    // HEAD is GET without the body: it takes what GET takes.
    let method = match request.method() {
        &Method::HEAD => &Method::GET,
        method => method,
    };
    let taken: &[String] = match TAKEN.get(path).map(|methods| methods.get(method)) {
        Some(Some(names)) => names,
        Some(None) => return next.run(request).await,
        None => &[],
    };
    let pairs = match serde_urlencoded::from_str::<Vec<(String, String)>>(query) {
        Ok(pairs) => pairs,
        Err(e) => {
            return Problem::bad_request(None, format!("the query string does not parse: {e}"))
                .into_response();
        }
    };
    if let Some((name, _)) = pairs.iter().find(|(name, _)| !taken.contains(name)) {
        let takes = match taken {
            [] => "no query parameters".to_owned(),
            names => names.join(", "),
        };
        return Problem::bad_request(
            Some(name),
            format!(
                "unknown query parameter \"{name}\": {} {} takes {takes}",
                request.method(),
                request.uri().path()
            ),
        )
        .into_response();
    }
    next.run(request).await
}

/// Answers every error under the API as a problem: what the router and the extractors
/// answer before a handler runs (405 for a method an endpoint does not take, 400 for a path or
/// body that cannot be read, 413 for a body over the limit) is plain text or empty, and is
/// answered again as a problem of the same status, its headers (`Allow`) kept.
async fn problems(State(api): State<Arc<Api>>, request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let response = next.run(request).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/problem+json");
    if is_problem || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let problem = match status {
        StatusCode::METHOD_NOT_ALLOWED => Problem::method_not_allowed(method.as_str(), &path),
        StatusCode::PAYLOAD_TOO_LARGE => {
            Problem::too_large(api.app.settings().http.max_body_bytes as usize)
        }
        _ => {
            // The framework's own words (a rejection is a short sentence).
            let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
            Problem::unreadable(status, String::from_utf8_lossy(&text).trim())
        }
    };
    let (reworded, body) = problem.into_response().into_parts();
    parts.status = reworded.status;
    for (name, value) in &reworded.headers {
        parts.headers.insert(name, value.clone());
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, body)
}

/// Authenticates the bearer key, limits its requests, and hands it to the handler.
async fn authenticate(State(api): State<Arc<Api>>, mut request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .map(str::to_owned);
    let Some(presented) = presented else {
        return Problem::unauthorized("send the API key as `Authorization: Bearer <key>`")
            .into_response();
    };
    let client = crate::listener::client_address(&request);
    let key = match api.key_for(&presented, &client).await {
        Ok(Some(key)) => key,
        Ok(None) => {
            return Problem::unauthorized(
                "the API key is unknown or revoked; create one with `subsave api-keys create`",
            )
            .into_response();
        }
        Err(problem) => return problem.into_response(),
    };
    if let Err(wait) = api
        .per_key
        .check(&format!("key:{}", key.id), Instant::now())
    {
        return Problem::rate_limited(wait).into_response();
    }
    let (method, path, name, request_id) = (
        request.method().clone(),
        request.uri().path().to_owned(),
        key.name.clone(),
        RequestId::of_request(&request).to_owned(),
    );
    let started = Instant::now();
    request.extensions_mut().insert(Caller(key));
    let response = next.run(request).await;
    // The key's name, never the key.
    tracing::info!(
        %method,
        path,
        key = name,
        status = response.status().as_u16(),
        millis = started.elapsed().as_millis() as u64,
        request_id,
        "api request"
    );
    response
}
