//! Where the database is and how to reach it: the URL (whose scheme picks the backend), the
//! password kept apart from it, the pool size. The config edge builds [`DatabaseSettings`];
//! [`super::connect`] opens the backend it names. A password inside a URL is redacted
//! whenever the URL is shown.

use std::fmt;
use std::str::FromStr;

pub use crate::core::secret::redact_url_password;

use serde::{Serialize, Serializer};

use crate::core::secret::Secret;

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
        // What the driver itself would refuse at the first connection is refused here, where
        // `check-config` finds it (the driver's messages quote no part of the URL).
        match backend {
            Backend::Postgres => {
                let host = url
                    .split_once("://")
                    .map(|(_, rest)| rest.rsplit_once('@').map_or(rest, |(_, host)| host))
                    .unwrap_or_default();
                if host.is_empty() || host.starts_with(['/', '?', ':']) {
                    return Err(
                        "names no host: expected postgres://USER@HOST[:PORT]/DATABASE".to_owned(),
                    );
                }
                sqlx::postgres::PgConnectOptions::from_str(url).map_err(|e| {
                    format!(
                        "not a usable PostgreSQL URL ({e}); a password holding / ? @ # : or % must be percent-encoded (/ is %2F), or given as database.password"
                    )
                })?;
            }
            Backend::Sqlite => {
                sqlx::sqlite::SqliteConnectOptions::from_str(url)
                    .map_err(|e| format!("not a usable SQLite URL ({e})"))?;
            }
        }
        Ok(DatabaseUrl {
            url: url.to_owned(),
            backend,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The file an SQLite URL names (`None` for PostgreSQL and for an in-memory database).
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        if self.backend != Backend::Sqlite {
            return None;
        }
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(&self.url).ok()?;
        let file = options.get_filename();
        (!file.as_os_str().is_empty() && file != std::path::Path::new(":memory:"))
            .then(|| file.to_path_buf())
    }

    /// Why this URL cannot open its database, when that can be told without connecting: an
    /// SQLite file whose folder does not exist (SQLite's own word for it names no path).
    pub fn unusable(&self) -> Option<String> {
        let file = self.sqlite_file()?;
        let folder = match file.parent() {
            Some(folder) if !folder.as_os_str().is_empty() => folder,
            _ => std::path::Path::new("."),
        };
        (!folder.is_dir()).then(|| format!("no such folder {}", folder.display()))
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

/// What sits between subsave and PostgreSQL on `database.url`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooler {
    /// A direct connection, or a pooler in session mode: every PostgreSQL feature works.
    #[default]
    None,
    /// A pooler in transaction mode (PgBouncer's `pool_mode = transaction`): a server
    /// connection is subsave's only from `BEGIN` to `COMMIT`. So each pooled connection works
    /// inside one transaction from acquire to release, named statements are not cached (and
    /// are deallocated before the server is given back), and the outbox is not `LISTEN`ed for
    /// through it (see `listen_url`).
    Transaction,
}

#[derive(Debug, Clone, Serialize)]
pub struct DatabaseSettings {
    pub url: DatabaseUrl,
    pub backend: Backend,
    pub password: Option<Secret>,
    pub max_connections: u32,
    pub migrate_on_start: bool,
    /// What sits on `url`: see [`Pooler`].
    pub pooler: Pooler,
    /// A direct connection (bypassing a transaction-mode pooler) on which the mailer
    /// `LISTEN`s for new outbox rows; without it, behind such a pooler, the mailer polls.
    pub listen_url: Option<DatabaseUrl>,
    /// A streaming replica for reading work that tolerates lag: exports, reports, the finance
    /// reads and list pages. Claims, writes and reads that decide a write use `url`.
    pub read_url: Option<DatabaseUrl>,
}

impl DatabaseSettings {
    /// Settings for one database URL with the defaults: no pooler, no listen or read URL.
    pub fn direct(url: DatabaseUrl, max_connections: u32, migrate_on_start: bool) -> Self {
        DatabaseSettings {
            backend: url.backend(),
            url,
            password: None,
            max_connections,
            migrate_on_start,
            pooler: Pooler::None,
            listen_url: None,
            read_url: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{DatabaseUrl, redact_url_password};

    #[test]
    fn urls_that_can_never_connect_are_refused() {
        for bad in [
            "postgres://",
            "postgres:///db",
            "postgres://u:pa/ss@h/db",
            "postgres://u@h:port/db",
            "mysql://u@h/db",
        ] {
            let error = DatabaseUrl::parse(bad).unwrap_err();
            assert!(!error.contains("pa/ss"), "{error}");
        }
        for good in [
            "postgres://u@127.0.0.1/db",
            "postgresql://u:p%2Fw@db.example:6432/subsave?sslmode=require",
            "sqlite://subsave.db?mode=rwc",
        ] {
            assert!(DatabaseUrl::parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn every_credential_a_url_carries_is_redacted() {
        let cases = [
            ("postgres://u:s3cret@h/db", "postgres://u:[redacted]@h/db"),
            (
                "postgres://u:pa/ss@h:5432/db",
                "postgres://u:[redacted]@h:5432/db",
            ),
            (
                "postgres://u:p@ss?w@h/db?sslmode=require",
                "postgres://u:[redacted]@h/db?sslmode=require",
            ),
            (
                "postgres://u@h/db?password=hunter2&sslmode=require",
                "postgres://u@h/db?password=[redacted]&sslmode=require",
            ),
            (
                "postgres://h/db?user=u&sslpassword=x1",
                "postgres://h/db?user=u&sslpassword=[redacted]",
            ),
            (
                "sqlite://subsave.db?mode=rwc",
                "sqlite://subsave.db?mode=rwc",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
        ];
        for (url, expected) in cases {
            assert_eq!(redact_url_password(url), expected, "{url}");
        }
    }
}
