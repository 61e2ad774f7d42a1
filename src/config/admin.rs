//! `[admin]`: the operations and finance console, off unless it has an address: who may sign
//! in through a proxy, how long a session lasts, how long the overview's metrics are kept.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Layers, well_formed_url};

/// The operations and finance console (`admin.listen`): off unless it has an address.
#[derive(Debug, Clone, Serialize)]
pub struct AdminSettings {
    /// Where the console listens; `None` (the default) serves no console.
    pub listen: Option<SocketAddr>,
    /// The console's address as its users reach it (a proxy's https URL); session cookies are
    /// `Secure` when it (or `web.public_url`) is https.
    pub public_url: Option<String>,
    /// A header an authenticating proxy sets to the signed-in person's name, believed only from
    /// `trusted_proxies`.
    pub trusted_header: Option<String>,
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// A console session ends this many minutes after sign-in.
    pub session_minutes: u32,
    /// The overview's metrics are kept this many seconds: the default period's are recomputed
    /// in the background this often, another period's on its first view after they expire.
    pub overview_refresh_secs: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    pub(super) listen: Option<String>,
    public_url: Option<String>,
    pub(super) trusted_header: Option<String>,
    pub(super) trusted_proxies: Vec<String>,
    pub(super) session_minutes: u32,
    pub(super) overview_refresh_secs: u32,
}

/// `[admin]`, checked: addresses, a URL, a header name that only trusted proxies may set.
pub(super) fn parse(l: &Layers, raw: RawAdmin) -> Result<AdminSettings, ConfigError> {
    let listen = raw
        .listen
        .map(|text| {
            text.parse().map_err(|_| {
                l.field(
                    "admin.listen",
                    &text,
                    "expected IP:PORT, like \"127.0.0.1:8082\"".into(),
                )
            })
        })
        .transpose()?;
    let public_url = raw
        .public_url
        .map(|text| {
            let url = text.trim_end_matches('/').to_owned();
            if well_formed_url(&url) {
                Ok(url)
            } else {
                Err(l.field(
                    "admin.public_url",
                    &text,
                    "expected an http(s):// URL without query, like \"https://console.shop.example\""
                        .into(),
                ))
            }
        })
        .transpose()?;
    // A header name as HTTP allows it (letters, digits, '-'), so a typo is found at load.
    let trusted_header = raw
        .trusted_header
        .map(|name| {
            let valid =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if valid {
                Ok(name.to_ascii_lowercase())
            } else {
                Err(l.field(
                    "admin.trusted_header",
                    &name,
                    "expected an HTTP header name, like \"X-Forwarded-User\"".into(),
                ))
            }
        })
        .transpose()?;
    let trusted_proxies = raw
        .trusted_proxies
        .iter()
        .map(|text| {
            text.parse().map_err(|_| {
                l.field(
                    "admin.trusted_proxies",
                    text,
                    "expected IP addresses, like [\"127.0.0.1\"]".into(),
                )
            })
        })
        .collect::<Result<Vec<std::net::IpAddr>, _>>()?;
    if let Some(header) = &trusted_header
        && trusted_proxies.is_empty()
    {
        return Err(l.field(
            "admin.trusted_header",
            header,
            "needs admin.trusted_proxies: name the addresses of the proxy that sets the header (a header from anywhere else is ignored)".into(),
        ));
    }
    Ok(AdminSettings {
        listen,
        public_url,
        trusted_header,
        trusted_proxies,
        session_minutes: l.positive("admin.session_minutes", raw.session_minutes)?,
        overview_refresh_secs: l
            .positive("admin.overview_refresh_secs", raw.overview_refresh_secs)?,
    })
}
