//! The customer's payment pages: a new card (`/s/TOKEN/payment-method`) and a payment that
//! waits for 3-D Secure (`/s/TOKEN/orders/NUMBER/pay`). With Stripe these are the only pages
//! that load a script: Stripe.js from `payments.stripe.js_url` and our own few lines (allowed
//! by their hash), under a CSP that lets in Stripe's script, frame and API origins and nothing
//! else. The simulated provider's pages are plain forms.
//!
//! A GET reads (our database, and Stripe's PaymentIntent for its client secret) and changes
//! nothing. `POST …/payment-method/setup` creates the SetupIntent Stripe.js confirms (JSON
//! for the page's script); `POST …/payment-method` and `POST …/orders/NUMBER/pay` are the
//! returns, which read the outcome from Stripe by id before anything is recorded. Every POST
//! carries the link's CSRF token. Owns: HTTP and the CSP; every decision is
//! [`crate::app::customer_payments`]'s.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use minijinja::context;
use sha2::{Digest, Sha256};

use super::Web;
use super::pages::in_language;
use crate::app::AppError;
use crate::app::customer_payments::{self, CardPage, ConfirmPage};

type Fields = HashMap<String, String>;

/// The page's own script: it mounts Stripe's card element and confirms the SetupIntent, or
/// confirms a PaymentIntent that waits for 3-D Secure, then posts the id back.
pub const SCRIPT: &str = include_str!("../../templates/web/stripe.js");

/// The CSP of the pages that load Stripe.js: `js_url`'s origin for scripts, Stripe's frames
/// and API (or, for a stand-in such as localstripe, its own origin), our script by its hash,
/// and nothing else.
pub fn stripe_csp(js_url: &str) -> Result<HeaderValue, String> {
    let url = reqwest::Url::parse(js_url).map_err(|e| format!("{js_url}: {e}"))?;
    let origin = url.origin().ascii_serialization();
    // Stripe.js may load from its subdomains and frames its 3-D Secure from hooks.stripe.com.
    let (scripts, frames, api) = if url.host_str() == Some("js.stripe.com") {
        (
            format!("{origin} https://*.js.stripe.com"),
            "https://js.stripe.com https://*.js.stripe.com https://hooks.stripe.com".to_owned(),
            "https://api.stripe.com".to_owned(),
        )
    } else {
        (origin.clone(), origin.clone(), origin.clone())
    };
    let hash = STANDARD.encode(Sha256::digest(SCRIPT.as_bytes()));
    HeaderValue::from_str(&format!(
        "default-src 'none'; script-src 'sha256-{hash}' {scripts}; frame-src {frames}; \
         connect-src 'self' {api}; style-src 'self'; img-src 'self'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    ))
    .map_err(|e| format!("{js_url}: {e}"))
}

/// A fresh id for one showing of the card page: a second click on the same page finds the
/// same SetupIntent at Stripe (its idempotency key), a reload makes a new one.
fn attempt_id() -> String {
    let mut bytes = [0u8; 18];
    // Without randomness the page still works: the key then only names the customer.
    if getrandom::fill(&mut bytes).is_err() {
        return "no-randomness-available".into();
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Web {
    /// A page that loads Stripe.js gets the CSP that allows it.
    fn with_stripe(&self, mut response: Response, script: bool) -> Response {
        if script {
            match &self.stripe_csp {
                Some(csp) => {
                    response
                        .headers_mut()
                        .insert(header::CONTENT_SECURITY_POLICY, csp.clone());
                }
                None => tracing::error!(
                    "payments.stripe.js_url gives no CSP; the page's script is refused"
                ),
            }
        }
        response
    }

    fn card_response(
        &self,
        status: StatusCode,
        token: &str,
        page: &CardPage,
        problem: Option<String>,
    ) -> Response {
        let script = page.entry.script();
        let response = self.render_in(
            &page.locale,
            status,
            "payment_method.html",
            context! {
                token,
                page,
                problem,
                csrf => self.links.signer().form_token(token),
                attempt => attempt_id(),
                script => script.then_some(SCRIPT),
            },
        );
        self.with_stripe(response, script)
    }

    fn confirm_response(
        &self,
        status: StatusCode,
        token: &str,
        page: &ConfirmPage,
        problem: Option<String>,
    ) -> Response {
        let script = page.client_secret.is_some();
        let response = self.render_in(
            &page.locale,
            status,
            "confirm_payment.html",
            context! {
                token,
                page,
                problem,
                csrf => self.links.signer().form_token(token),
                script => script.then_some(SCRIPT),
            },
        );
        self.with_stripe(response, script)
    }
}

/// `GET /s/TOKEN/payment-method`: the unpaid orders and the card form.
pub async fn card_page(State(web): State<Arc<Web>>, Path(token): Path<String>) -> Response {
    let claim = match web.open(&token) {
        Ok(claim) => claim,
        Err(response) => return *response,
    };
    match customer_payments::card_page(&web.app, claim.subscription_id).await {
        Ok(page) => web.card_response(StatusCode::OK, &token, &page, None),
        Err(error) => web.failed(error, &token, None),
    }
}

/// `POST /s/TOKEN/payment-method/setup`: the SetupIntent's client secret for the page's
/// script, as JSON (`{"client_secret": …}` or `{"error": …}`).
pub async fn start_setup(
    State(web): State<Arc<Web>>,
    Path(token): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let json =
        |status: StatusCode, body: serde_json::Value| (status, axum::Json(body)).into_response();
    let claim = match web.open_form(&token, &fields).await {
        Ok(claim) => claim,
        Err(_) => {
            return json(
                StatusCode::FORBIDDEN,
                serde_json::json!({ "error": "This page's link no longer works: open the link in our email again." }),
            );
        }
    };
    let attempt = fields
        .get("attempt")
        .map(String::as_str)
        .unwrap_or_default();
    match customer_payments::start_card_setup(&web.app, claim.subscription_id, attempt).await {
        Ok(secret) => json(
            StatusCode::OK,
            serde_json::json!({ "client_secret": secret }),
        ),
        Err(error @ (AppError::Unavailable(_) | AppError::Store(_))) => {
            tracing::warn!(%error, "a card setup could not be started");
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({ "error": "We cannot take a card right now. Please try again in a minute." }),
            )
        }
        Err(error) => {
            tracing::warn!(%error, "a card setup was refused");
            json(
                StatusCode::CONFLICT,
                serde_json::json!({ "error": "A card cannot be given on this page: please reply to one of our emails." }),
            )
        }
    }
}

/// `POST /s/TOKEN/payment-method`: the return of a card setup (`setup_intent`, read from
/// Stripe), or the simulated provider's test card (`test_card`).
pub async fn save_card(
    State(web): State<Arc<Web>>,
    Path(token): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let claim = match web.open_form(&token, &fields).await {
        Ok(claim) => claim,
        Err(response) => return *response,
    };
    let id = claim.subscription_id;
    let outcome = if fields.get("test_card").is_some_and(|v| v == "1") {
        customer_payments::use_test_card(&web.app, id).await
    } else {
        let setup = fields
            .get("setup_intent")
            .map(String::as_str)
            .unwrap_or_default();
        customer_payments::finish_card_setup(&web.app, id, setup).await
    };
    match outcome {
        Ok(saved) => web.render_in(
            &saved.locale.clone(),
            StatusCode::OK,
            "payment_method.html",
            context! { token, saved },
        ),
        Err(AppError::InvalidState(message) | AppError::InvalidInput { message, .. }) => {
            match customer_payments::card_page(&web.app, id).await {
                Ok(page) => web.card_response(
                    StatusCode::CONFLICT,
                    &token,
                    &page,
                    Some(format!("Nothing was changed: {message}.")),
                ),
                Err(error) => web.failed(error, &token, None),
            }
        }
        Err(error) => web.failed(error, &token, None),
    }
}

/// `GET /s/TOKEN/orders/NUMBER/pay`: the order's payment, and the button that confirms it.
pub async fn confirm_page(
    State(web): State<Arc<Web>>,
    Path((token, number)): Path<(String, String)>,
) -> Response {
    let claim = match web.open(&token) {
        Ok(claim) => claim,
        Err(response) => return *response,
    };
    match customer_payments::confirm_page(&web.app, claim.subscription_id, &number).await {
        Ok(page) => web.confirm_response(StatusCode::OK, &token, &page, None),
        Err(AppError::NotFound(_)) => web.no_such_order(&token, claim.subscription_id).await,
        Err(error @ AppError::InvalidState(_)) => {
            let frame = (
                "Nothing can be done here:",
                "Hier kann nichts getan werden:",
            );
            web.payment_refused(&token, claim.subscription_id, frame, &error)
                .await
        }
        Err(error) => web.failed(error, &token, None),
    }
}

/// `POST /s/TOKEN/orders/NUMBER/pay`: the return of a confirmation: the order's own
/// PaymentIntent read from Stripe, recorded if it succeeded.
pub async fn finish_confirm(
    State(web): State<Arc<Web>>,
    Path((token, number)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Response {
    let claim = match web.open_form(&token, &fields).await {
        Ok(claim) => claim,
        Err(response) => return *response,
    };
    let claimed = fields.get("payment_intent").map(String::as_str);
    match customer_payments::finish_confirm(&web.app, claim.subscription_id, &number, claimed).await
    {
        Ok(confirmed) => web.render_in(
            &confirmed.locale.clone(),
            StatusCode::OK,
            "confirm_payment.html",
            context! { token, confirmed },
        ),
        Err(AppError::NotFound(_)) => web.no_such_order(&token, claim.subscription_id).await,
        Err(error @ (AppError::InvalidState(_) | AppError::InvalidInput { .. })) => {
            let frame = ("Nothing was changed:", "Nichts wurde geändert:");
            web.payment_refused(&token, claim.subscription_id, frame, &error)
                .await
        }
        Err(error) => web.failed(error, &token, None),
    }
}

impl Web {
    /// A payment's refusal, in the customer's language: `frame` (English, German) and the
    /// refusal's own words.
    async fn payment_refused(
        &self,
        token: &str,
        subscription_id: i64,
        frame: (&'static str, &'static str),
        error: &AppError,
    ) -> Response {
        let language = self.language_of(subscription_id).await;
        self.message(
            StatusCode::CONFLICT,
            language,
            in_language(language, "Confirm your payment", "Ihre Zahlung bestätigen"),
            &format!("{} {error}.", in_language(language, frame.0, frame.1)),
            context! { token, back => true },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::stripe_csp;

    #[test]
    fn the_csp_lets_in_stripe_and_our_script_and_nothing_else() {
        let stripe = stripe_csp("https://js.stripe.com/v3/").unwrap();
        let stripe = stripe.to_str().unwrap();
        assert!(
            stripe.starts_with("default-src 'none'; script-src 'sha256-"),
            "{stripe}"
        );
        assert!(
            stripe.contains(
                "' https://js.stripe.com https://*.js.stripe.com; frame-src https://js.stripe.com https://*.js.stripe.com https://hooks.stripe.com; \
                 connect-src 'self' https://api.stripe.com; style-src 'self'; img-src 'self'; \
                 form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
            ),
            "{stripe}"
        );
        assert!(!stripe.contains("unsafe"));
        // A stand-in (localstripe) serves the script and answers the API on its own origin.
        let local = stripe_csp("http://127.0.0.1:8420/js.stripe.com/v3/").unwrap();
        assert!(
            local
                .to_str()
                .unwrap()
                .contains("' http://127.0.0.1:8420; frame-src http://127.0.0.1:8420; connect-src 'self' http://127.0.0.1:8420;")
        );
        assert!(stripe_csp("js.stripe.com/v3").is_err());
    }
}
