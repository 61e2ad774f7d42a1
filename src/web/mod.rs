//! The customer pages: what a signed link in an email opens. Server-rendered HTML (the same
//! template engine as the emails), no JavaScript but on the payment pages (`payment.rs`:
//! Stripe.js and our few lines, under their own CSP), on their own listener (`web.listen`).
//!
//! - `GET /c/TOKEN` (a customer link, in the welcome and annual emails) shows all of one
//!   customer's subscriptions, each with its next renewal and its page's actions.
//! - `GET /s/TOKEN` shows the subscription, its next renewal and what can be changed;
//!   `GET /s/TOKEN/ACTION` shows the confirmation form of one action (skip, move, change,
//!   pause, resume, cancel, renew, the delivery address: `address.rs`, and a coupon code:
//!   `coupon.rs`). **A GET never changes anything**: mail scanners open every
//!   link.
//! - `POST /s/TOKEN/ACTION` does it, with the form's CSRF token (bound to the link) and the
//!   state the form was shown with (so a second post does nothing); then redirects to the page.
//! - A tampered or unknown link gets 403, an expired one 410, both a plain page that reveals
//!   nothing of the subscription: an expired link's page mails a fresh link to the address on
//!   file, the other asks for an address and answers the same whether it is known or not.
//! - Every response carries a strict CSP, `Referrer-Policy: no-referrer` (tokens are in URLs),
//!   `X-Frame-Options: DENY` and `Cache-Control: no-store`; requests are limited per client
//!   address and per link (429 with `Retry-After`), and by the listener's size and time limits.
//!   A token is never logged: request logs show `/s/[link]/...`.
//!
//! Owns: HTTP, forms and pages. Every change is an [`crate::app::self_service`] use case.

mod address;
mod coupon;
mod pages;
mod payment;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use minijinja::Environment;

use crate::app::App;
use crate::config::{CancelOffer, ConfigError};
use crate::core::links::Links;
use crate::listener::RequestId;
use crate::rate_limit::RateLimiter;

/// The pages' templates, embedded; `mail.templates_dir/web/NAME` overrides one.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "layout.html",
        include_str!("../../templates/web/layout.html"),
    ),
    (
        "macros.html",
        include_str!("../../templates/web/macros.html"),
    ),
    (
        "subscription.html",
        include_str!("../../templates/web/subscription.html"),
    ),
    (
        "action.html",
        include_str!("../../templates/web/action.html"),
    ),
    (
        "address.html",
        include_str!("../../templates/web/address.html"),
    ),
    (
        "de/address.html",
        include_str!("../../templates/web/de/address.html"),
    ),
    (
        "message.html",
        include_str!("../../templates/web/message.html"),
    ),
    (
        "coupon.html",
        include_str!("../../templates/web/coupon.html"),
    ),
    (
        "de/coupon.html",
        include_str!("../../templates/web/de/coupon.html"),
    ),
    (
        "customer.html",
        include_str!("../../templates/web/customer.html"),
    ),
    (
        "de/customer.html",
        include_str!("../../templates/web/de/customer.html"),
    ),
    (
        "receipt.html",
        include_str!("../../templates/web/receipt.html"),
    ),
    (
        "payment_method.html",
        include_str!("../../templates/web/payment_method.html"),
    ),
    (
        "confirm_payment.html",
        include_str!("../../templates/web/confirm_payment.html"),
    ),
    // German, as for the emails: `de/NAME` wins for a German customer, else `NAME`.
    (
        "de/layout.html",
        include_str!("../../templates/web/de/layout.html"),
    ),
    (
        "de/macros.html",
        include_str!("../../templates/web/de/macros.html"),
    ),
    (
        "de/macros.txt",
        include_str!("../../templates/de/macros.txt"),
    ),
    (
        "de/action.html",
        include_str!("../../templates/web/de/action.html"),
    ),
    (
        "de/subscription.html",
        include_str!("../../templates/web/de/subscription.html"),
    ),
    (
        "de/receipt.html",
        include_str!("../../templates/web/de/receipt.html"),
    ),
    (
        "de/payment_method.html",
        include_str!("../../templates/web/de/payment_method.html"),
    ),
    (
        "de/confirm_payment.html",
        include_str!("../../templates/web/de/confirm_payment.html"),
    ),
];

const STYLESHEET: &str = include_str!("../../templates/web/site.css");

/// How often one subscription (or one typed address) may be sent a fresh link.
const FRESH_LINK_EVERY: Duration = Duration::from_secs(10 * 60);

/// What the pages share.
pub struct Web {
    app: App,
    links: Links,
    pages: Environment<'static>,
    per_client: RateLimiter,
    per_link: RateLimiter,
    fresh_links: RateLimiter,
    cancel_offer: CancelOffer,
    /// The CSP of the pages that load Stripe.js (`payments.stripe.js_url`).
    stripe_csp: Option<HeaderValue>,
}

impl Web {
    /// The pages over `app`, with the link keys and limits of its settings.
    pub fn new(app: App) -> Result<Web, ConfigError> {
        let settings = app.settings().clone();
        let web = &settings.web;
        let minute = Duration::from_secs(60);
        Ok(Web {
            links: crate::link_keys::links(web)?,
            pages: crate::mail::templates::environment(
                settings.mail.templates_dir.as_ref().map(|d| d.join("web")),
                EMBEDDED,
            ),
            per_client: RateLimiter::new(web.requests_per_minute, minute),
            per_link: RateLimiter::new(web.link_requests_per_minute, minute),
            fresh_links: RateLimiter::new(1, FRESH_LINK_EVERY),
            cancel_offer: web.cancel_offer,
            stripe_csp: payment::stripe_csp(&settings.payments.stripe.js_url).ok(),
            app,
        })
    }
}

pub fn router(web: Arc<Web>) -> Router {
    Router::new()
        .route("/s", get(pages::request_form).post(pages::request_links))
        .route("/s/{token}", get(pages::overview))
        .route("/c/{token}", get(pages::customer))
        .route("/s/{token}/fresh", axum::routing::post(pages::fresh_link))
        .route("/s/{token}/orders/{number}", get(pages::receipt))
        .route(
            "/s/{token}/orders/{number}/pay",
            get(payment::confirm_page).post(payment::finish_confirm),
        )
        .route(
            "/s/{token}/payment-method",
            get(payment::card_page).post(payment::save_card),
        )
        .route(
            "/s/{token}/payment-method/setup",
            axum::routing::post(payment::start_setup),
        )
        .route(
            "/s/{token}/{action}",
            get(pages::show_action).post(pages::do_action),
        )
        .route("/assets/site.css", get(stylesheet))
        .fallback(pages::not_found)
        .layer(middleware::from_fn_with_state(web.clone(), guard))
        .with_state(web)
}

async fn stylesheet() -> Response {
    css(STYLESHEET)
}

/// A stylesheet, cacheable for an hour (the pages are not).
pub(crate) fn css(text: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        text,
    )
        .into_response()
}

/// Limits requests per client address, sets the security headers, and logs the request
/// with its link token redacted.
async fn guard(State(web): State<Arc<Web>>, request: Request, next: Next) -> Response {
    let path = redact(request.uri().path());
    front_door(&web.per_client, "customer", path, request, next).await
}

/// What every page request goes through, the customers' and the console's (`door`): a limit
/// per client address (429), the headers of [`harden`], and one log line with `path` (which
/// the caller has stripped of anything secret).
pub(crate) async fn front_door(
    per_client: &RateLimiter,
    door: &'static str,
    path: String,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let request_id = RequestId::of_request(&request).to_owned();
    let client = crate::listener::client_address(&request);
    let mut response = match per_client.check(&format!("ip:{client}"), started) {
        Ok(()) => next.run(request).await,
        Err(wait) => too_many_requests(wait),
    };
    harden(response.headers_mut());
    tracing::info!(
        door,
        %method,
        path,
        status = response.status().as_u16(),
        millis = started.elapsed().as_millis() as u64,
        request_id,
        "page"
    );
    response
}

/// The headers of every page, the customers' and the console's: a strict CSP (no script at
/// all, unless the handler set the card pages' own, which allows Stripe.js), no referrer, no
/// framing, no sniffing, and `no-store` unless the handler said otherwise.
fn harden(headers: &mut axum::http::HeaderMap) {
    let csp = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
               frame-ancestors 'none'; base-uri 'none'";
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(csp));
    for (name, value) in [
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}

/// A template rendered as an HTML response, or the template's error for the caller to log.
pub(crate) fn html(
    pages: &Environment<'static>,
    status: StatusCode,
    name: &str,
    ctx: minijinja::Value,
) -> Result<Response, minijinja::Error> {
    let html = pages.get_template(name)?.render(ctx)?;
    Ok((
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response())
}

/// 429 with `Retry-After` in whole seconds (at least 1).
fn too_many_requests(wait: Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, secs.max(1).to_string())],
        "Too many requests: wait a minute and try again.\n",
    )
        .into_response()
}

/// The path with a link's token replaced: `/s/[link]/skip`, `/c/[link]`.
pub fn redact(path: &str) -> String {
    if path.starts_with("/c/") {
        return "/c/[link]".into();
    }
    match path.strip_prefix("/s/") {
        Some(rest) => match rest.split_once('/') {
            Some((_, action)) => format!("/s/[link]/{action}"),
            None => "/s/[link]".into(),
        },
        None => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn a_token_never_reaches_the_log() {
        assert_eq!(redact("/s/k1.42.1700000000.abcdef/skip"), "/s/[link]/skip");
        assert_eq!(redact("/s/k1.42.1700000000.abcdef"), "/s/[link]");
        assert_eq!(redact("/s"), "/s");
        assert_eq!(redact("/c/k1.7.1700000000.abcdef"), "/c/[link]");
        assert_eq!(redact("/assets/site.css"), "/assets/site.css");
    }
}
