//! `[webhooks]`: the storefront's or warehouse's endpoints that receive events, each with its
//! Standard Webhooks signing secret, and how long a receiver may take.

use figment::value::magic::RelativePathBuf;
use serde::{Deserialize, Serialize};

use super::{ConfigError, Layers};

/// Where events go: the storefront's or warehouse's HTTP endpoints, signed per Standard
/// Webhooks, delivered from the outbox by the mail worker.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookSettings {
    /// How long a receiver may take to answer.
    pub timeout_secs: u64,
    pub endpoints: Vec<crate::core::webhooks::Endpoint>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhooks {
    pub(super) timeout_secs: u32,
    #[serde(default)]
    pub(super) endpoints: Vec<RawEndpoint>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEndpoint {
    pub(super) name: String,
    pub(super) url: String,
    #[serde(default, deserialize_with = "super::secret_text")]
    pub(super) secret: Option<String>,
    pub(super) secret_file: Option<RelativePathBuf>,
    pub(super) events: Vec<String>,
}

/// `[webhooks]`, checked: each endpoint's URL, events and secret, names unique.
pub(super) fn parse(l: &Layers, raw: RawWebhooks) -> Result<WebhookSettings, ConfigError> {
    let mut endpoints = Vec::new();
    for (i, given) in raw.endpoints.into_iter().enumerate() {
        let key = |name: &str| format!("webhooks.endpoints[{i}].{name}");
        let secret = l.secret(&key("secret"),
            given.secret,
            given.secret_file.map(|p| p.relative()),
        )?
        .ok_or_else(|| {
            l.field(
                &key("secret"),
                "[redacted]",
                "set either secret or secret_file (a whsec_… key, as Standard Webhooks receivers expect)".into(),
            )
        })?;
        crate::core::webhooks::check_secret(secret.expose())
            .map_err(|problem| l.field(&key("secret"), "[redacted]", problem))?;
        let endpoint = crate::core::webhooks::Endpoint::new(
            &given.name,
            &given.url,
            secret.expose(),
            &given.events,
        )
        .map_err(|problem| l.field(&key("url"), &given.url, problem))?;
        if endpoints
            .iter()
            .any(|e: &crate::core::webhooks::Endpoint| e.name == endpoint.name)
        {
            return Err(l.field(
                &key("name"),
                &given.name,
                "another endpoint has this name".into(),
            ));
        }
        endpoints.push(endpoint);
    }
    let webhooks = WebhookSettings {
        timeout_secs: u64::from(l.positive("webhooks.timeout_secs", raw.timeout_secs)?),
        endpoints,
    };
    Ok(webhooks)
}
