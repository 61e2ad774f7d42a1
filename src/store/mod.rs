//! The one store interface, and the choice of backend from the database URL's scheme.
//!
//! Owns persistence. [`Store`] is one trait made of one trait per concern, each in its own
//! file with its statements: [`CustomerStore`], [`CouponStore`], [`SubscriptionStore`]
//! (lifecycle transitions and claimed renewal batches), [`OrderStore`], [`OutboxStore`] and
//! [`FinanceStore`]. It is implemented once per backend ([`postgres`], the production store,
//! and [`sqlite`], the embedded default) by expanding the shared SQL (`sql.rs`), with
//! append-only migrations under `migrations/<backend>/`. A state change is one transaction.
//! The store decides nothing about billing: callers pass pure functions (`lifecycle`,
//! `renewal`) that turn the locked state into a [`Change`](crate::core::model::Change).

mod api_keys;
mod connection;
mod coupons;
mod customers;
mod finance;
mod idempotency;
mod orders;
mod outbox;
mod payments;
pub mod postgres;
mod records;
mod sql;
pub mod sqlite;
mod subscriptions;

use std::sync::Arc;

use async_trait::async_trait;

pub use api_keys::ApiKeyStore;
pub use connection::{Backend, DatabaseSettings, DatabaseUrl, redact_url_password};
pub use coupons::CouponStore;
pub use customers::CustomerStore;
pub use finance::{FinanceCreditNote, FinanceOrder, FinanceStore, PaymentDay};
pub use idempotency::{IdempotencyStore, IdempotentRequest, Reply, ReplyTo, Reservation};
pub use orders::{OrderFilter, OrderStore};
pub use outbox::{Delivery, Lease, MessageFilter, OutboxStore};
pub use payments::{
    ClaimedPayment, CreditNoteRecorder, NewCreditNote, PaymentDecider, PaymentFilter, PaymentStore,
    Recorded,
};
pub use subscriptions::{
    BatchOutcome, Claim, PlanTally, Planner, SubscriptionFilter, SubscriptionStore, Transition,
    Welcome, welcome_detail,
};

use crate::core::lifecycle::LifecycleError;

/// What went wrong in the store, and whether trying again may help.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or the connection broke: retry with backoff.
    #[error(
        "the database is unavailable ({0}); subsave retries, check that it is running and reachable"
    )]
    Unavailable(#[source] sqlx::Error),
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
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The export's reader failed to take a row (a closed pipe, a full disk).
    #[error("writing the export failed: {0}")]
    Sink(#[source] std::io::Error),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
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
        }
    }
}

/// The whole store: every concern's trait, and what belongs to the database as a whole.
#[async_trait]
pub trait Store:
    CustomerStore
    + CouponStore
    + SubscriptionStore
    + OrderStore
    + OutboxStore
    + FinanceStore
    + ApiKeyStore
    + IdempotencyStore
    + PaymentStore
{
    fn backend(&self) -> Backend;

    /// Applies this backend's migrations that have not run yet.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Whether the database answers and every migration of this build has been applied.
    async fn ready(&self) -> Result<(), String>;

    /// Whether `list` has a row with `id` (the row a page starts after).
    async fn listed(&self, list: Listed, id: i64) -> Result<bool, StoreError>;
}

/// Opens the store the URL's scheme names.
pub async fn connect(settings: &DatabaseSettings) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match settings.backend {
        Backend::Postgres => Arc::new(postgres::PgStore::connect(settings).await?),
        Backend::Sqlite => Arc::new(sqlite::SqliteStore::connect(settings).await?),
    })
}
