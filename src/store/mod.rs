//! The one store interface, and the choice of backend from the database URL's scheme.
//!
//! Owns persistence. [`Store`] is one trait made of one trait per concern, each in its own
//! file with its statements: [`CustomerStore`], [`AddressStore`], [`CouponStore`], [`SubscriptionStore`]
//! (lifecycle transitions and claimed renewal batches), [`OrderStore`], [`OutboxStore`],
//! [`FinanceStore`] and [`FulfillmentStore`] (shipments). It is implemented once per backend ([`postgres`], the production store,
//! and [`sqlite`], the embedded default) by expanding the shared SQL (`sql.rs`), with
//! append-only migrations under `migrations/<backend>/`. A state change is one transaction: a
//! use case's change is made in a write transaction ([`WriteTx`], from [`Writes::begin_write`],
//! `write.rs`), where an API request's response can be written with it before the commit; the
//! workers' claims and batches are transactions of their own. The store decides nothing about
//! billing: callers pass pure functions (`lifecycle`, `renewal`) that turn the locked state
//! into a [`Change`](crate::core::model::Change).

mod addresses;
mod api_keys;
mod connection;
mod coupons;
mod customers;
mod finance;
mod fulfillments;
mod idempotency;
mod orders;
mod outbox;
mod payments;
pub mod postgres;
mod records;
mod sql;
pub mod sqlite;
mod subscriptions;
mod write;

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

pub use addresses::{AddressStore, AddressWrites};
pub use api_keys::ApiKeyStore;
pub use connection::{Backend, DatabaseSettings, DatabaseUrl, Pooler, redact_url_password};
pub use coupons::{CouponStore, CouponWrites};
pub use customers::{CustomerFilter, CustomerStore, CustomerWrites, Erasure};
pub use finance::{FinanceCreditNote, FinanceOrder, FinanceStore, JournalPayment, PaymentDay};
pub use fulfillments::{FulfillmentStore, FulfillmentWrites, ShipmentRecord, ShipmentRecorder};
pub use idempotency::{IdempotencyStore, IdempotentRequest, ReplyTo, Reservation};
pub use orders::{OrderFilter, OrderStore};
pub use outbox::{Delivery, Lease, MessageFilter, OutboxStore, OutboxWrites};
pub use payments::{
    ClaimedPayment, CreditNoteRecorder, NewCreditNote, PaymentDecider, PaymentFilter, PaymentStore,
    PaymentWrites, Recorded,
};
pub use subscriptions::{
    BatchOutcome, Claim, PlanTally, Planner, Redemption, SubscriptionFilter, SubscriptionStore,
    SubscriptionWrites, Transition, Welcome, welcome_detail,
};
pub use write::{WriteTx, Writes};

use crate::core::lifecycle::LifecycleError;

/// A half-open range of instants a list filters on: at or after `from`, before `before`; an
/// absent bound does not limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    pub before: Option<chrono::DateTime<chrono::Utc>>,
}

impl TimeRange {
    pub fn contains(&self, at: chrono::DateTime<chrono::Utc>) -> bool {
        self.from.is_none_or(|from| at >= from) && self.before.is_none_or(|before| at < before)
    }
}

/// What went wrong in the store, and whether trying again may help.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or the connection broke: retry with backoff.
    #[error(
        "the database is unavailable ({}); check that it is running and reachable",
        describe(.0)
    )]
    Unavailable(sqlx::Error),
    /// The database could not be opened at all: the URL (password hidden), what failed and
    /// what to do. `retryable` when it may come back by itself (refused, timed out).
    #[error("cannot open the database {url}: {reason}; {fix}")]
    Connect {
        url: String,
        reason: String,
        fix: &'static str,
        retryable: bool,
    },
    /// A uniqueness rule refused the write (a duplicate email or coupon code).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    /// The lifecycle rules refused the operation; nothing was changed.
    #[error(transparent)]
    Refused(#[from] LifecycleError),
    /// A row that does not parse into the domain types (edited by hand, or a newer schema).
    #[error("a stored row is invalid: {0}")]
    Corrupt(String),
    #[error("database error: {}", describe(.0))]
    Database(sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// `database.read_url` answers but is not a replica.
    #[error("{0}")]
    NotReplica(String),
    /// The export's reader failed to take a row (a closed pipe, a full disk).
    #[error("writing the export failed")]
    Sink(#[source] std::io::Error),
}

/// A driver error in one line: the database's own message (without PostgreSQL's "at line N"
/// of its source code), or the network's.
pub fn describe(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::Io(io) => lowercase_first(&io.to_string()),
        sqlx::Error::PoolTimedOut => "no connection could be had in time".to_owned(),
        sqlx::Error::Configuration(e) => e.to_string(),
        sqlx::Error::Tls(e) => format!("TLS failed: {e}"),
        other => other.to_string(),
    }
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// What failed opening `url` as one [`StoreError::Connect`], with the fix for that failure.
pub(crate) fn connect_error(url: &DatabaseUrl, error: &sqlx::Error) -> StoreError {
    let code = error
        .as_database_error()
        .and_then(|db| db.code().map(|c| c.into_owned()));
    let (fix, retryable) = match (error, code.as_deref()) {
        (_, Some("3D000")) => (
            "create the database, or point database.url at one that exists",
            false,
        ),
        (_, Some("28P01" | "28000")) => (
            "check the user and password (database.password or the URL)",
            false,
        ),
        (sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_), _) => (
            "check that the database server is running and reachable at that address",
            true,
        ),
        _ => ("check database.url", false),
    };
    StoreError::Connect {
        url: url.redacted(),
        reason: describe(error),
        fix,
        retryable,
    }
}

/// Why the database cannot serve this build yet.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    /// An outage: it may end by itself.
    #[error("the database does not answer: {0}")]
    Unreachable(String),
    /// No schema, or an older one than this build's: a setup step is missing, and waiting will
    /// not help.
    #[error("{0}")]
    Schema(String),
}

/// What [`Store::ready`] says of a database whose migrations table reads `applied` (`None`:
/// the table does not exist) when this build has migrations `versions`.
pub(crate) fn schema_state(applied: Option<i64>, versions: &[i64]) -> Result<(), NotReady> {
    let behind = versions
        .iter()
        .filter(|&&v| applied.is_none_or(|a| v > a))
        .count();
    match (applied, behind) {
        (_, 0) => Ok(()),
        (None, _) => Err(NotReady::Schema(format!(
            "the database has no schema (none of this build's {behind} migrations has been applied): run `subsave migrate`"
        ))),
        (Some(at), _) => Err(NotReady::Schema(format!(
            "the database's schema is {behind} migration{} behind this build (at version {at}): run `subsave migrate`",
            if behind == 1 { "" } else { "s" }
        ))),
    }
}

/// Whether `error` says a table does not exist (PostgreSQL's `undefined_table`, SQLite's "no
/// such table"): the schema is missing, not the database.
pub(crate) fn is_missing_table(error: &sqlx::Error) -> bool {
    error.as_database_error().is_some_and(|db| {
        db.code().as_deref() == Some("42P01") || db.message().starts_with("no such table")
    })
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_)
                | StoreError::Connect {
                    retryable: true,
                    ..
                }
        )
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(error),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_owned())
            }
            _ => StoreError::Database(error),
        }
    }
}

/// The lists a client pages through by id, each a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listed {
    Customers,
    Subscriptions,
    Orders,
    Payments,
    Messages,
    Coupons,
    Events,
    Addresses,
}

impl Listed {
    fn table(self) -> &'static str {
        match self {
            Listed::Customers => "customers",
            Listed::Subscriptions => "subscriptions",
            Listed::Orders => "orders",
            Listed::Payments => "payments",
            Listed::Messages => "outbox",
            Listed::Coupons => "coupons",
            Listed::Events => "subscription_events",
            Listed::Addresses => "addresses",
        }
    }
}

/// How far a streaming replica is behind its primary.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ReplicaLag {
    /// WAL the replica has not replayed yet.
    pub bytes: i64,
    /// The age of its last replayed transaction while it is behind; 0 when caught up.
    pub seconds: f64,
}

/// What one round of partition upkeep did (PostgreSQL; SQLite's tables are not partitioned).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionUpkeep {
    /// Empty partitions made ahead of the ids being handed out.
    pub partitions_made: u64,
    /// Finished outbox messages past retention that left with a dropped partition.
    pub outbox_rows_dropped: u64,
}

/// The whole store: every concern's trait, and what belongs to the database as a whole.
#[async_trait]
pub trait Store:
    Writes
    + CustomerStore
    + AddressStore
    + CouponStore
    + SubscriptionStore
    + OrderStore
    + OutboxStore
    + FinanceStore
    + ApiKeyStore
    + IdempotencyStore
    + PaymentStore
    + FulfillmentStore
{
    fn backend(&self) -> Backend;

    /// Applies this backend's migrations that have not run yet.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Whether the database answers and every migration of this build has been applied.
    async fn ready(&self) -> Result<(), NotReady>;

    /// How far the read replica (`database.read_url`) is behind; `None` without one.
    async fn replica_lag(&self) -> Result<Option<ReplicaLag>, StoreError>;

    /// Keeps the partitioned history tables ahead of their ids and, when `outbox_before` is
    /// given, drops outbox partitions whose every message is finished and older than it.
    async fn maintain_partitions(
        &self,
        outbox_before: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<PartitionUpkeep, StoreError>;

    /// Whether `list` has a row with `id` (the row a page starts after).
    async fn listed(&self, list: Listed, id: i64) -> Result<bool, StoreError>;
}

/// Creates `file` readable and writable by its owner only (0600) if it does not exist yet:
/// the SQLite database holds customers' names and addresses. SQLite gives its `-wal` and
/// `-shm` files the database file's permissions.
fn create_private(file: &std::path::Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(file) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Opens the store the URL's scheme names.
pub async fn connect(settings: &DatabaseSettings) -> Result<Arc<dyn Store>, StoreError> {
    if let Some(reason) = settings.url.unusable() {
        return Err(StoreError::Connect {
            url: settings.url.redacted(),
            reason,
            fix: "create the folder, or point database.url at one that exists",
            retryable: false,
        });
    }
    if let Some(file) = settings.url.sqlite_file() {
        create_private(&file).map_err(|e| StoreError::Connect {
            url: settings.url.redacted(),
            reason: format!("cannot create {}: {e}", file.display()),
            fix: "check the folder's permissions",
            retryable: false,
        })?;
    }
    let opened: Result<Arc<dyn Store>, sqlx::Error> = match settings.backend {
        Backend::Postgres => postgres::PgStore::connect(settings)
            .await
            .map(|s| Arc::new(s) as Arc<dyn Store>),
        Backend::Sqlite => sqlite::SqliteStore::connect(settings)
            .await
            .map(|s| Arc::new(s) as Arc<dyn Store>),
    };
    opened.map_err(|error| connect_error(&settings.url, &error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_state_says_what_to_run() {
        let versions = [1, 2, 3];
        assert!(schema_state(Some(3), &versions).is_ok());
        let none = schema_state(None, &versions).unwrap_err().to_string();
        assert_eq!(
            none,
            "the database has no schema (none of this build's 3 migrations has been applied): run `subsave migrate`"
        );
        let behind = schema_state(Some(1), &versions).unwrap_err().to_string();
        assert_eq!(
            behind,
            "the database's schema is 2 migrations behind this build (at version 1): run `subsave migrate`"
        );
        assert!(matches!(
            schema_state(Some(2), &versions),
            Err(NotReady::Schema(m)) if m.contains("1 migration behind")
        ));
    }
}
