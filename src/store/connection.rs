//! Where the database is and how to reach it: the URL (whose scheme picks the backend), the
//! password kept apart from it, the pool size. The config edge builds [`DatabaseSettings`];
//! [`super::connect`] opens the backend it names. A password inside a URL is redacted
//! whenever the URL is shown.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::secret::Secret;

/// Which store a database URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A database URL whose scheme picks the backend. A password inside it is redacted whenever
/// the URL is shown.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    url: String,
    backend: Backend,
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<DatabaseUrl, String> {
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(
                "expected a postgres://… or sqlite:… URL, like \"postgres://subsave@127.0.0.1/subsave\" or \"sqlite://subsave.db?mode=rwc\""
                    .to_owned(),
            );
        };
        Ok(DatabaseUrl {
            url: url.to_owned(),
            backend,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL itself, for handing to a driver. Never log the result.
    pub fn expose(&self) -> &str {
        &self.url
    }

    /// The URL with any `user:password@` password replaced by `[redacted]`.
    pub fn redacted(&self) -> String {
        redact_url_password(&self.url)
    }
}

/// The URL with any `user:password@` password replaced by `[redacted]`.
pub fn redact_url_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => match authority[..at].find(':') {
            Some(colon) => format!(
                "{}{}:[redacted]{}",
                &url[..scheme_end + 3],
                &authority[..colon],
                &url[scheme_end + 3 + at..]
            ),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DatabaseSettings {
    pub url: DatabaseUrl,
    pub backend: Backend,
    pub password: Option<Secret>,
    pub max_connections: u32,
    pub migrate_on_start: bool,
}
