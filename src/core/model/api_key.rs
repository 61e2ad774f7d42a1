//! API keys: what one may do (`Scope`), a key as stored (its hash and prefix, never the key)
//! and one about to be stored. Plain data; no IO.

use chrono::{DateTime, Utc};
use serde::Serialize;

string_enum! {
    /// What an API key may do. Each scope includes the ones before it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Scope ("scope") {
        /// Read anything.
        Read = "read",
        /// Read, and create or change customers, subscriptions and coupons.
        Write = "write",
        /// Everything, including the outbox.
        Admin = "admin",
    }
}

/// An API key as stored: never the key itself, only its SHA-256 and first characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    pub scope: Scope,
    /// The key's first characters, to tell keys apart in a list.
    pub key_prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key about to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub name: String,
    pub scope: Scope,
    pub key_hash: [u8; 32],
    pub key_prefix: String,
}
