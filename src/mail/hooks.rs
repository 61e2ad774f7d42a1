//! Webhook delivery: an outbox message of kind `webhook` is POSTed to its endpoint as JSON,
//! signed per Standard Webhooks (`webhook-id` = `msg_<outbox id>`, stable across retries;
//! `webhook-timestamp`; `webhook-signature`). A 2xx answer is delivered; anything else, or no
//! answer within `webhooks.timeout_secs`, is retried by the mailer like a transient mail
//! failure (backoff with jitter, `mail.delivery.max_attempts`, then `failed`, visible in the
//! outbox). Only the mailer calls it.

use std::collections::HashMap;
use std::time::Duration;

use super::transport::SendError;
use crate::clock::{Clock, SystemClock};
use crate::config::WebhookSettings;
use crate::core::model::Message;
use crate::core::webhooks::{Endpoint, sign};

pub struct Hooks {
    client: reqwest::Client,
    endpoints: HashMap<String, Endpoint>,
}

impl Hooks {
    pub fn new(settings: &WebhookSettings) -> Hooks {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.timeout_secs))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("subsave/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client with a rustls TLS stack builds");
        Hooks {
            client,
            endpoints: settings
                .endpoints
                .iter()
                .map(|e| (e.name.clone(), e.clone()))
                .collect(),
        }
    }

    /// POSTs the message's event to its endpoint. The `webhook-timestamp` is the real time even
    /// under `--now`: time travel is for subsave's own state, and a receiver checks the
    /// timestamp against its own clock (Standard Webhooks refuses one minutes off).
    pub async fn send(&self, message: &Message) -> Result<String, SendError> {
        let Some(endpoint) = self.endpoints.get(&message.recipient) else {
            return Err(SendError::Permanent(format!(
                "no webhook endpoint named \"{}\" is configured (webhooks.endpoints)",
                message.recipient
            )));
        };
        let id = format!("msg_{}", message.id);
        let timestamp = SystemClock.now().timestamp();
        let body = serde_json::to_string(&message.payload)
            .map_err(|e| SendError::Permanent(format!("cannot serialize the event: {e}")))?;
        let signature = sign(&endpoint.secret, &id, timestamp, &body);
        let answer = self
            .client
            .post(&endpoint.url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| SendError::Transient(format!("{}: {e}", endpoint.name)))?;
        let status = answer.status();
        if status.is_success() {
            Ok(format!("{} answered {status}", endpoint.name))
        } else {
            Err(SendError::Transient(format!(
                "{} answered {status}",
                endpoint.name
            )))
        }
    }
}
