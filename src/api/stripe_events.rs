//! `POST /webhooks/stripe`: Stripe's events about the payments subsave made. No bearer key:
//! the `Stripe-Signature` over the raw body is the credential (a secret of
//! `payments.stripe.webhook_secrets`, 5 minutes' tolerance, any of several `v1` signatures).
//! Each event id is applied once (`app::payments::apply_stripe_event`); a failure of ours
//! answers 503 so that Stripe sends the event again. Unconfigured, the endpoint does not exist.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::{Api, Problem};
use crate::app::payments::{self, EventOutcome};
use crate::payments::stripe::verify_signature;

pub async fn receive(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    let settings = api.app.settings();
    let secrets = settings.payments.stripe.webhook_secret_list();
    if secrets.is_empty() {
        return super::not_found().await.into_response();
    }
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if let Err(refused) = verify_signature(header, &body, &secrets, api.app.now()) {
        tracing::warn!(reason = %refused, "stripe webhook refused");
        return Problem::bad_request(None, refused.to_string()).into_response();
    }
    let event: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(event) => event,
        Err(e) => {
            return Problem::bad_request(None, format!("the body is not a JSON event: {e}"))
                .into_response();
        }
    };
    match api.database(payments::apply_stripe_event(&api.app, &event).await) {
        Ok(outcome) => {
            let applied = match outcome {
                EventOutcome::Applied(recorded) => format!("{recorded:?}"),
                EventOutcome::Ignored => "Ignored".into(),
            };
            tracing::info!(
                event = event["id"].as_str().unwrap_or_default(),
                kind = event["type"].as_str().unwrap_or_default(),
                outcome = applied,
                "stripe webhook"
            );
            axum::Json(serde_json::json!({ "received": true })).into_response()
        }
        Err(problem) => problem.into_response(),
    }
}
