//! Fixtures the unit tests share: an instant from RFC 3339 text, and the default catalog as
//! it ships. Compiled for tests only.

use chrono::{DateTime, Utc};

use crate::catalog::Catalog;
use crate::config::{DEFAULT_CATALOG, load_catalog_text};

/// The instant an RFC 3339 string names, e.g. `at("2026-01-31T14:00:00Z")`.
pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

/// The catalog that ships as the embedded default.
pub fn default_catalog() -> Catalog {
    load_catalog_text(DEFAULT_CATALOG).expect("the default catalog loads")
}
