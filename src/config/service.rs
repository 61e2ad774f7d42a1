//! `[http]`, `[daemon]` and `[api]`: the operator's listener and every listener's limits, how
//! the long-running process behaves, and the API's rate limit.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Layers};

#[derive(Debug, Clone, Serialize)]
pub struct HttpSettings {
    pub listen: SocketAddr,
    /// Connections served at once; more wait in the kernel's queue.
    pub max_connections: u32,
    /// A request's headers must arrive within this long (also an idle connection's limit).
    pub header_timeout_secs: u64,
    /// A request is answered within this long, or with 503.
    pub request_timeout_secs: u64,
    /// A connection is closed after this long, whatever it does.
    pub connection_lifetime_secs: u64,
    pub max_body_bytes: u32,
}

impl HttpSettings {
    pub fn limits(&self) -> crate::listener::Limits {
        crate::listener::Limits {
            max_connections: self.max_connections as usize,
            header_timeout: std::time::Duration::from_secs(self.header_timeout_secs),
            request_timeout: std::time::Duration::from_secs(self.request_timeout_secs),
            connection_lifetime: std::time::Duration::from_secs(self.connection_lifetime_secs),
            max_body_bytes: self.max_body_bytes as usize,
        }
    }
}

/// How `subsave run` behaves as a long-running process.
#[derive(Debug, Clone, Serialize)]
pub struct DaemonSettings {
    /// After SIGTERM/SIGINT, how long the batch and sends in hand may take before exiting.
    pub shutdown_grace_secs: u64,
    /// How often the mailer looks at the outbox without a notification (always, on SQLite).
    pub mail_poll_secs: u64,
}

/// The HTTP API (`/v1`, on the public listener `web.listen`).
#[derive(Debug, Clone, Serialize)]
pub struct ApiSettings {
    /// Requests per minute one key may send; more get 429.
    pub requests_per_minute: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    pub(super) listen: String,
    pub(super) max_connections: u32,
    pub(super) header_timeout_secs: u32,
    pub(super) request_timeout_secs: u32,
    pub(super) connection_lifetime_secs: u32,
    pub(super) max_body_bytes: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDaemon {
    pub(super) shutdown_grace_secs: u32,
    pub(super) mail_poll_secs: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    pub(super) requests_per_minute: u32,
}

/// `[http]`, checked: an address and positive limits.
pub(super) fn parse_http(l: &Layers, raw: RawHttp) -> Result<HttpSettings, ConfigError> {
    let http = HttpSettings {
        listen: raw.listen.parse().map_err(|_| {
            l.field(
                "http.listen",
                &raw.listen,
                "expected IP:PORT, like \"127.0.0.1:8080\"".into(),
            )
        })?,
        max_connections: l.positive("http.max_connections", raw.max_connections)?,
        header_timeout_secs: u64::from(
            l.positive("http.header_timeout_secs", raw.header_timeout_secs)?,
        ),
        request_timeout_secs: u64::from(
            l.positive("http.request_timeout_secs", raw.request_timeout_secs)?,
        ),
        connection_lifetime_secs: u64::from(l.positive(
            "http.connection_lifetime_secs",
            raw.connection_lifetime_secs,
        )?),
        max_body_bytes: l.positive("http.max_body_bytes", raw.max_body_bytes)?,
    };

    Ok(http)
}

/// `[daemon]`, checked: positive durations.
pub(super) fn parse_daemon(l: &Layers, raw: RawDaemon) -> Result<DaemonSettings, ConfigError> {
    let daemon = DaemonSettings {
        shutdown_grace_secs: u64::from(
            l.positive("daemon.shutdown_grace_secs", raw.shutdown_grace_secs)?,
        ),
        mail_poll_secs: u64::from(l.positive("daemon.mail_poll_secs", raw.mail_poll_secs)?),
    };

    Ok(daemon)
}

/// `[api]`, checked: a positive rate.
pub(super) fn parse_api(l: &Layers, raw: RawApi) -> Result<ApiSettings, ConfigError> {
    let api = ApiSettings {
        requests_per_minute: l.positive("api.requests_per_minute", raw.requests_per_minute)?,
    };

    Ok(api)
}
