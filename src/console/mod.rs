//! The operations and finance console: server-rendered HTML on its own listener
//! (`admin.listen`, off unless configured), no script, the pages' strict headers
//! ([`crate::web::harden`]) and `Cache-Control: no-store` on every page.
//!
//! - **Sign-in:** an `admin`-scope API key (looked up by its SHA-256 like the API's bearer
//!   keys) is exchanged for a session cookie (`HttpOnly`, `SameSite=Strict`, `Secure` when
//!   `admin.public_url` or `web.public_url` is https, `Max-Age` of `admin.session_minutes`).
//!   Sessions live in this daemon's memory ([`sessions`]); sign-out forgets the session, and a
//!   session ends as soon as its key is revoked. A wrong, revoked or non-admin key gets one
//!   answer. Or: an authenticating proxy's `admin.trusted_header`, believed only from an
//!   address in `admin.trusted_proxies` (from anywhere else it is ignored).
//! - **CSRF:** every POST carries the session's token (the sign-in form: a token also set as a
//!   cookie); a POST without it changes nothing (403).
//! - A GET never changes anything; every action is an `app` use case with the actor
//!   `admin:<name>`, shown with its effect and confirmed by a POST that applies it once
//!   ([`actions`]); the queues' retries ([`queues`]) are POSTs too.
//!
//! Owns: HTTP, sessions and pages. Must not: compute a metric (`app::finance::metrics` does),
//! write SQL, or log a key, a cookie or a CSRF token.

mod actions;
mod charts;
mod customers;
mod pages;
mod queues;
mod reports;
mod sessions;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use minijinja::Environment;
use sha2::Sha256;

use crate::app::App;
use crate::core::links::Links;
use crate::core::model::{Actor, Scope};
use crate::rate_limit::RateLimiter;
use sessions::Sessions;

/// The console's templates, embedded; `mail.templates_dir/console/NAME` overrides one.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "layout.html",
        include_str!("../../templates/console/layout.html"),
    ),
    (
        "sign_in.html",
        include_str!("../../templates/console/sign_in.html"),
    ),
    (
        "message.html",
        include_str!("../../templates/console/message.html"),
    ),
    (
        "overview.html",
        include_str!("../../templates/console/overview.html"),
    ),
    (
        "search.html",
        include_str!("../../templates/console/search.html"),
    ),
    (
        "customer.html",
        include_str!("../../templates/console/customer.html"),
    ),
    (
        "refund.html",
        include_str!("../../templates/console/refund.html"),
    ),
    (
        "action.html",
        include_str!("../../templates/console/action.html"),
    ),
    (
        "queues.html",
        include_str!("../../templates/console/queues.html"),
    ),
];

const STYLESHEET: &str = include_str!("../../templates/console/console.css");

/// The session cookie, and the sign-in form's CSRF cookie.
const SESSION_COOKIE: &str = "subsave_console";
const SIGN_IN_COOKIE: &str = "subsave_console_sign_in";

/// Requests per minute from one client address (sign-in attempts included).
const REQUESTS_PER_MINUTE: u32 = 300;

/// What the console's handlers share.
pub struct Console {
    app: App,
    /// The daemon's link signer: a message shown as it would go out carries its links.
    links: Links,
    pages: Environment<'static>,
    sessions: Sessions,
    session_secs: i64,
    secure_cookies: bool,
    trusted_header: Option<HeaderName>,
    trusted_proxies: Vec<IpAddr>,
    /// Signs the CSRF token of a person the proxy vouches for (they have no session).
    proxy_csrf_key: [u8; 32],
    per_client: RateLimiter,
    confirmations: actions::Confirmations,
    reports: reports::Reports,
}

impl Console {
    /// The console over `app`, with the `admin.*` settings, showing messages with the links
    /// `links` signs.
    pub fn new(app: App, links: Links) -> std::io::Result<Console> {
        let settings = app.settings().clone();
        let admin = &settings.admin;
        let https = |url: &str| url.starts_with("https://");
        let mut proxy_csrf_key = [0u8; 32];
        getrandom::fill(&mut proxy_csrf_key).map_err(|e| std::io::Error::other(e.to_string()))?;
        let ttl = chrono::TimeDelta::minutes(i64::from(admin.session_minutes));
        Ok(Console {
            pages: crate::render::environment(
                settings
                    .mail
                    .templates_dir
                    .as_ref()
                    .map(|d| d.join("console")),
                EMBEDDED,
            ),
            sessions: Sessions::new(ttl),
            session_secs: ttl.num_seconds(),
            secure_cookies: admin.public_url.as_deref().is_some_and(https)
                || https(&settings.web.public_url),
            trusted_header: admin
                .trusted_header
                .as_deref()
                .and_then(|h| HeaderName::try_from(h).ok()),
            trusted_proxies: admin.trusted_proxies.clone(),
            proxy_csrf_key,
            per_client: RateLimiter::new(REQUESTS_PER_MINUTE, Duration::from_secs(60)),
            confirmations: actions::Confirmations::default(),
            reports: reports::Reports::new(admin.overview_refresh_secs),
            app,
            links,
        })
    }
}

/// Who is signed in, and the CSRF token their forms carry.
#[derive(Debug, Clone)]
pub struct Admin {
    pub name: String,
    pub csrf: String,
    /// The session cookie's value; `None` for a person the proxy vouches for.
    session: Option<String>,
}

impl Admin {
    pub fn actor(&self) -> Actor {
        Actor(format!("admin:{}", self.name))
    }

    /// Whether a form's token is this person's (compared in constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        constant_time_eq(self.csrf.as_bytes(), presented.as_bytes())
    }
}

/// A form POSTed by the signed-in person with their CSRF token: a handler that takes it never
/// runs for a forged post (403, nothing changed).
pub struct Posted {
    pub admin: Admin,
    pub form: std::collections::HashMap<String, String>,
}

impl axum::extract::FromRequest<Arc<Console>> for Posted {
    type Rejection = Response;

    async fn from_request(request: Request, console: &Arc<Console>) -> Result<Posted, Response> {
        let admin = request
            .extensions()
            .get::<Admin>()
            .cloned()
            .ok_or_else(|| pages::forged(console))?;
        let axum::Form(form) =
            axum::Form::<std::collections::HashMap<String, String>>::from_request(request, console)
                .await
                .map_err(IntoResponse::into_response)?;
        let token = form.get("csrf").map(String::as_str).unwrap_or_default();
        if admin.csrf_matches(token) {
            Ok(Posted { admin, form })
        } else {
            Err(pages::forged(console))
        }
    }
}

pub use reports::{refresh as refresh_overview, refresh_every as overview_refresh_every};

pub fn router(console: Arc<Console>) -> Router {
    let signed_in = Router::new()
        .route("/", get(pages::overview))
        .route("/overview.csv", get(pages::overview_csv))
        .route("/sign-out", post(pages::sign_out))
        .route("/search", get(customers::search))
        .route("/customers/{id}", get(customers::customer))
        .route("/orders/{number}/refund", get(actions::refund_form))
        .route(
            "/subscriptions/{id}/{action}",
            get(actions::subscription_form),
        )
        .route("/messages/{id}/resend", get(actions::resend_form))
        .route("/confirm", post(actions::confirm))
        .route("/queues", get(queues::queues))
        .route("/queues/messages/{id}/retry", post(queues::retry_message))
        .route(
            "/queues/payments/{number}/retry",
            post(queues::retry_payment),
        )
        .route_layer(middleware::from_fn_with_state(
            console.clone(),
            require_admin,
        ));
    Router::new()
        .route("/sign-in", get(pages::sign_in_form).post(pages::sign_in))
        .route("/assets/console.css", get(stylesheet))
        .merge(signed_in)
        .fallback(pages::not_found)
        .layer(middleware::from_fn_with_state(console.clone(), guard))
        .with_state(console)
}

async fn stylesheet() -> Response {
    crate::web::css(STYLESHEET)
}

/// The pages' front door ([`crate::web::front_door`]); the log shows the path only, not
/// the query, which may hold a search term.
async fn guard(State(console): State<Arc<Console>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    crate::web::front_door(&console.per_client, "console", path, request, next).await
}

/// Lets a signed-in person through (with [`Admin`] in the request's extensions); anyone else
/// is sent to the sign-in page (a GET) or refused (403).
async fn require_admin(
    State(console): State<Arc<Console>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    match console.admin(request.headers(), peer).await {
        Ok(Some(admin)) => {
            request.extensions_mut().insert(admin);
            next.run(request).await
        }
        Ok(None) if request.method() == axum::http::Method::GET => {
            Redirect::to("/sign-in").into_response()
        }
        Ok(None) => console.message(
            StatusCode::FORBIDDEN,
            "Signed out",
            "Your session has ended: sign in again, then repeat what you were doing.",
        ),
        Err(error) => console.failure(&error),
    }
}

impl Console {
    /// The person a request comes from: a proxy's header from a trusted address, or a live
    /// session whose key still stands.
    async fn admin(
        &self,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
    ) -> Result<Option<Admin>, crate::app::AppError> {
        if let Some(header) = &self.trusted_header
            && peer.is_some_and(|ip| self.trusted_proxies.contains(&ip))
            && let Some(name) = headers.get(header).and_then(|v| v.to_str().ok())
            && let Some(name) = person_name(name)
        {
            return Ok(Some(Admin {
                csrf: self.proxy_csrf(&name),
                name,
                session: None,
            }));
        }
        let Some(id) = cookie(headers, SESSION_COOKIE) else {
            return Ok(None);
        };
        let Some(session) = self.sessions.find(id, self.app.now()) else {
            return Ok(None);
        };
        let key = crate::app::api_keys::live(&self.app, &session.key_hash).await?;
        if key.is_none_or(|k| k.scope != Scope::Admin) {
            // The key was revoked since: its sessions end with it.
            self.sessions.close(id);
            return Ok(None);
        }
        Ok(Some(Admin {
            name: session.name,
            csrf: session.csrf,
            session: Some(id.to_owned()),
        }))
    }

    fn proxy_csrf(&self, name: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.proxy_csrf_key)
            .expect("HMAC takes a key of any length");
        mac.update(name.as_bytes());
        sessions::hex(&mac.finalize().into_bytes())
    }

    /// A `Set-Cookie` value: HttpOnly, SameSite=Strict, for the whole console, Secure behind
    /// TLS; `max_age` 0 deletes it.
    fn cookie(&self, name: &str, value: &str, max_age: i64) -> String {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
    }
}

/// A name the proxy vouches for, as it goes into `admin:<name>`: printable, no spaces or
/// colons, at most 64 characters.
fn person_name(header: &str) -> Option<String> {
    let name = header.trim();
    let valid = !name.is_empty()
        && name.chars().count() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '@' | '-' | '_' | '+'));
    valid.then(|| name.to_owned())
}

/// A cookie's value in the request's `Cookie` headers.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// Text as one URL path segment or query value: unreserved characters kept, the rest
/// percent-encoded.
pub fn url_component(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_the_proxy_are_plain() {
        assert_eq!(
            person_name(" ana@shop.example "),
            Some("ana@shop.example".into())
        );
        assert_eq!(person_name("ana:admin"), None);
        assert_eq!(person_name("a b"), None);
        assert_eq!(person_name("<script>"), None);
        assert_eq!(person_name(""), None);
        assert_eq!(person_name(&"x".repeat(65)), None);
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "subsave_console_sign_in=a; subsave_console=b"
                .parse()
                .unwrap(),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("b"));
        assert_eq!(cookie(&headers, SIGN_IN_COOKIE), Some("a"));
        assert_eq!(cookie(&headers, "other"), None);
    }

    #[test]
    fn url_components_are_encoded() {
        assert_eq!(url_component("BB-0001"), "BB-0001");
        assert_eq!(url_component("a b&c/é"), "a%20b%26c%2F%C3%A9");
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
