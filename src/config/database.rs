//! `[database]`: where the store is, its pool, and the PostgreSQL-only settings (a pooler in
//! front, a replica to read from, a direct connection to listen on).

use super::{ConfigError, Layers, secret_env};
use crate::store::redact_url_password;
use crate::store::{Backend, DatabaseSettings, DatabaseUrl};
use figment::value::magic::RelativePathBuf;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDatabase {
    pub(super) url: String,
    #[serde(default, deserialize_with = "super::secret_text")]
    pub(super) password: Option<String>,
    pub(super) password_file: Option<RelativePathBuf>,
    pub(super) max_connections: u32,
    pub(super) migrate_on_start: bool,
    #[serde(default)]
    pub(super) pooler: crate::store::Pooler,
    pub(super) listen_url: Option<String>,
    pub(super) read_url: Option<String>,
}

/// `[database]`, checked: a URL of a known backend, and nothing PostgreSQL-only on SQLite.
pub(super) fn parse(l: &Layers, raw: RawDatabase) -> Result<DatabaseSettings, ConfigError> {
    let url = DatabaseUrl::parse(&raw.url)
        .map_err(|p| l.field("database.url", &redact_url_password(&raw.url), p))?;
    let database = DatabaseSettings {
        backend: url.backend(),
        url,
        password: l.secret(
            "database.password",
            secret_env("database.password").or(raw.password),
            raw.password_file.map(|p| p.relative()),
        )?,
        max_connections: l.positive("database.max_connections", raw.max_connections)?,
        migrate_on_start: raw.migrate_on_start,
        pooler: raw.pooler,
        listen_url: postgres_url(l, "database.listen_url", raw.listen_url)?,
        read_url: postgres_url(l, "database.read_url", raw.read_url)?,
    };
    if database.backend != Backend::Postgres {
        let postgres_only = [
            (
                "database.pooler",
                database.pooler != crate::store::Pooler::None,
            ),
            ("database.listen_url", database.listen_url.is_some()),
            ("database.read_url", database.read_url.is_some()),
        ];
        if let Some((key, _)) = postgres_only.into_iter().find(|(_, set)| *set) {
            return Err(l.field(
                key,
                &database.url.redacted(),
                "applies to PostgreSQL only: an SQLite database has no pooler or replica; remove the setting".into(),
            ));
        }
    }

    Ok(database)
}

/// An optional second PostgreSQL URL (`database.listen_url`, `database.read_url`): parsed like
/// `database.url`, and refused when it names SQLite (which has neither replicas nor poolers).
fn postgres_url(
    l: &Layers,
    key: &str,
    value: Option<String>,
) -> Result<Option<DatabaseUrl>, ConfigError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let url =
        DatabaseUrl::parse(&value).map_err(|p| l.field(key, &redact_url_password(&value), p))?;
    if url.backend() != Backend::Postgres {
        return Err(l.field(
            key,
            &url.redacted(),
            "must be a postgres://… URL: only PostgreSQL has replicas and poolers".into(),
        ));
    }
    Ok(Some(url))
}
