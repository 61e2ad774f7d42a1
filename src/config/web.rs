//! `[web]`: the customer pages' listener, the links that open them (their base URL, lifetime
//! and signing keys), and the pages' own limits and offers.

use std::net::SocketAddr;
use std::path::PathBuf;

use figment::value::magic::RelativePathBuf;
use serde::{Deserialize, Serialize};

use super::{ConfigError, ENV_PREFIX, Layers, Secret, secret_env, well_formed_url};

/// The one offer a customer sees before cancelling, passed with one click.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelOffer {
    /// Skip the next renewal instead.
    Skip,
    /// Pause instead.
    Pause,
    /// No offer: the cancel page asks only for confirmation.
    None,
}

/// Where the keys that sign customer links come from.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKeySource {
    /// `web.link_keys` (or `SUBSAVE_WEB__LINK_KEYS`): `ID:SECRET` entries, the first signs.
    Given(Secret),
    /// `web.link_keys_file`: one `ID:SECRET` per line; created with one random key if missing.
    File(PathBuf),
}

/// The customer pages: where they listen, the links that open them, and their limits.
#[derive(Debug, Clone, Serialize)]
pub struct WebSettings {
    pub listen: SocketAddr,
    /// The base of the links in emails, as customers reach the pages (a proxy's https URL).
    pub public_url: String,
    /// A link works for this many days after its email is sent.
    pub link_ttl_days: u32,
    pub link_keys: LinkKeySource,
    /// Where the link keys came from (a file, an environment variable), for errors.
    #[serde(skip)]
    pub link_keys_source: String,
    /// How far ahead (days from today) a customer may move the next renewal.
    pub move_max_days: u32,
    /// How many days after its cancellation a subscription may be restarted.
    pub restart_days: u32,
    /// The storefront, where a customer whose subscription can no longer be restarted
    /// subscribes again.
    pub storefront_url: Option<String>,
    pub cancel_offer: CancelOffer,
    /// Requests per minute from one client address, and through one link.
    pub requests_per_minute: u32,
    pub link_requests_per_minute: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWeb {
    pub(super) listen: String,
    public_url: String,
    pub(super) link_ttl_days: u32,
    #[serde(default, deserialize_with = "super::secret_text")]
    pub(super) link_keys: Option<String>,
    pub(super) link_keys_file: Option<RelativePathBuf>,
    pub(super) move_max_days: u32,
    pub(super) restart_days: u32,
    pub(super) storefront_url: Option<String>,
    pub(super) cancel_offer: CancelOffer,
    pub(super) requests_per_minute: u32,
    pub(super) link_requests_per_minute: u32,
}

/// `[web]`, checked: an address, a public URL, link keys given or a key file named (keys given
/// directly are parsed here; a key file is read, or created, when the pages start).
pub(super) fn parse(l: &Layers, raw: RawWeb) -> Result<WebSettings, ConfigError> {
    let listen = raw.listen.parse().map_err(|_| {
        l.field(
            "web.listen",
            &raw.listen,
            "expected IP:PORT, like \"127.0.0.1:8081\"".into(),
        )
    })?;
    let public_url = raw.public_url.trim_end_matches('/').to_owned();
    if !well_formed_url(&public_url) {
        return Err(l.field(
            "web.public_url",
            &raw.public_url,
            "expected an http(s):// URL without query, like \"https://subscriptions.shop.example\""
                .into(),
        ));
    }
    let from_env = secret_env("web.link_keys");
    let link_keys_source = match (&from_env, &raw.link_keys) {
        (Some(_), _) => format!("environment variable {ENV_PREFIX}WEB__LINK_KEYS"),
        (None, Some(_)) => l.source_name("web.link_keys"),
        (None, None) => l.source_name("web.link_keys_file"),
    };
    let link_keys = match (
        from_env.or(raw.link_keys),
        raw.link_keys_file.map(|p| p.relative()),
    ) {
        (Some(keys), _) => LinkKeySource::Given(Secret::new(keys)),
        (None, Some(path)) => LinkKeySource::File(path),
        (None, None) => {
            return Err(l.field(
                "web.link_keys_file",
                "",
                "set web.link_keys or web.link_keys_file: customer links must be signed".into(),
            ));
        }
    };
    let web = WebSettings {
        listen,
        public_url,
        link_ttl_days: l.positive("web.link_ttl_days", raw.link_ttl_days)?,
        link_keys,
        link_keys_source,
        move_max_days: l.positive("web.move_max_days", raw.move_max_days)?,
        restart_days: l.positive("web.restart_days", raw.restart_days)?,
        storefront_url: l.http_url(
            "web.storefront_url",
            raw.storefront_url,
            "the storefront (like https://shop.example)",
        )?,
        cancel_offer: raw.cancel_offer,
        requests_per_minute: l.positive("web.requests_per_minute", raw.requests_per_minute)?,
        link_requests_per_minute: l
            .positive("web.link_requests_per_minute", raw.link_requests_per_minute)?,
    };
    // Keys given directly are checked here; a key file is read (or created) where links are
    // signed (`link_keys`).
    if let LinkKeySource::Given(keys) = &web.link_keys {
        crate::core::links::parse_keys(keys.expose()).map_err(|problem| ConfigError {
            source_name: web.link_keys_source.clone(),
            key: "web.link_keys".into(),
            value: "[redacted]".into(),
            problem,
        })?;
    }
    Ok(web)
}
