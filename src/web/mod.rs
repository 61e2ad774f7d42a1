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
//! - A page speaks its customer's language (`de/NAME` templates for German); one that knows no
//!   customer (a bad link, the link-request form) the language the request's
//!   `Accept-Language` prefers, with `Vary: Accept-Language`.
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
use crate::config::CancelOffer;
use crate::core::links::Links;
use crate::core::locale::Language;
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
        "de/message.html",
        include_str!("../../templates/web/de/message.html"),
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
    /// The pages over `app`, with the limits of its settings, opening and signing links with
    /// `links` (the daemon's one signer: no page reads a key file).
    pub fn new(app: App, links: Links) -> Web {
        let settings = app.settings().clone();
        let web = &settings.web;
        let minute = Duration::from_secs(60);
        let mut pages = crate::render::environment(
            settings.mail.templates_dir.as_ref().map(|d| d.join("web")),
            EMBEDDED,
        );
        crate::render::name_plans(&mut pages, &crate::render::PlanNames::of(&settings.catalog));
        Web {
            links,
            pages,
            per_client: RateLimiter::new(web.requests_per_minute, minute),
            per_link: RateLimiter::new(web.link_requests_per_minute, minute),
            fresh_links: RateLimiter::new(1, FRESH_LINK_EVERY),
            cancel_offer: web.cancel_offer,
            stripe_csp: payment::stripe_csp(&settings.payments.stripe.js_url).ok(),
            app,
        }
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

tokio::task_local! {
    /// The language the request's `Accept-Language` prefers, for the pages that know no
    /// customer (a bad link, the link-request form): set by [`guard`] for each request, so
    /// that every handler's refusal can speak it without each taking the header.
    static VISITOR: Language;
}

/// The language of a visitor nobody knows yet: what their request asked for, else English.
pub(crate) fn visitor_language() -> Language {
    VISITOR
        .try_with(|language| *language)
        .unwrap_or(Language::English)
}

/// Limits requests per client address, sets the security headers, and logs the request
/// with its link token redacted.
async fn guard(State(web): State<Arc<Web>>, request: Request, next: Next) -> Response {
    let path = redact(request.uri().path());
    let language = preferred_language(request.headers().get(header::ACCEPT_LANGUAGE));
    VISITOR
        .scope(
            language,
            front_door(&web.per_client, "customer", path, request, next),
        )
        .await
}

/// How much of an `Accept-Language` is read (a browser sends a few dozen bytes); the rest is
/// ignored, so a hostile header costs nothing.
const ACCEPT_LANGUAGE_BYTES: usize = 256;
const ACCEPT_LANGUAGE_ENTRIES: usize = 16;

/// The language of the pages an `Accept-Language` header prefers among those the pages are
/// written in (English, German): the highest `q` wins, the first on a tie; a malformed entry
/// is skipped; English when none is asked for.
pub(crate) fn preferred_language(header: Option<&HeaderValue>) -> Language {
    // `to_str` admits visible ASCII only, so any byte is a character boundary.
    let Some(text) = header.and_then(|value| value.to_str().ok()) else {
        return Language::English;
    };
    let text = &text[..text.len().min(ACCEPT_LANGUAGE_BYTES)];
    let mut best: Option<(u16, Language)> = None;
    for entry in text.split(',').take(ACCEPT_LANGUAGE_ENTRIES) {
        let mut parts = entry.split(';');
        let tag = parts.next().unwrap_or_default().trim();
        let weight = match parts.find_map(|p| p.trim().strip_prefix("q=")) {
            Some(q) => quality(q),
            None => Some(1000),
        };
        let primary = tag.split(['-', '_']).next().unwrap_or_default();
        let language = if primary.eq_ignore_ascii_case("de") {
            Language::German
        } else if primary.eq_ignore_ascii_case("en") {
            Language::English
        } else {
            continue;
        };
        match weight {
            Some(weight) if weight > 0 && best.is_none_or(|(w, _)| weight > w) => {
                best = Some((weight, language));
            }
            _ => {}
        }
    }
    best.map_or(Language::English, |(_, language)| language)
}

/// A `q` value in thousandths (`0.8` is 800), or none when it is not one (RFC 9110: 0 to 1,
/// at most three decimals).
fn quality(text: &str) -> Option<u16> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = fraction.parse::<u16>().unwrap_or(0) * 10u16.pow(3 - fraction.len() as u32);
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
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
    use super::{Language, preferred_language, redact};
    use axum::http::HeaderValue;

    fn of(header: &str) -> Language {
        preferred_language(Some(&HeaderValue::from_str(header).unwrap()))
    }

    #[test]
    fn accept_language_picks_german_only_when_preferred() {
        assert_eq!(preferred_language(None), Language::English);
        for german in [
            "de",
            "de-DE",
            "DE-at,en;q=0.5",
            "fr-FR, de;q=0.8, en;q=0.7",
            "en;q=0.1, de",
        ] {
            assert_eq!(of(german), Language::German, "{german}");
        }
        for english in [
            "",
            "en-US",
            "en-GB,en;q=0.9,de;q=0.8",
            "fr",
            "de;q=0",
            "de;q=2",
            "de;q=abc",
            "de;q=0.1234",
            "en, de",
            ";;;,,,=",
        ] {
            assert_eq!(of(english), Language::English, "{english}");
        }
        // Only the first bytes and entries are read.
        let long = format!("{}de", "x;q=0.1,".repeat(64));
        assert_eq!(of(&long), Language::English);
    }

    #[test]
    fn a_token_never_reaches_the_log() {
        assert_eq!(redact("/s/k1.42.1700000000.abcdef/skip"), "/s/[link]/skip");
        assert_eq!(redact("/s/k1.42.1700000000.abcdef"), "/s/[link]");
        assert_eq!(redact("/s"), "/s");
        assert_eq!(redact("/c/k1.7.1700000000.abcdef"), "/c/[link]");
        assert_eq!(redact("/assets/site.css"), "/assets/site.css");
    }
}
