//! The one store interface, and the choice of backend from the database URL's scheme.
//!
//! Owns persistence: [`Store`] is implemented once per backend ([`postgres`], the production
//! store, and [`sqlite`], the embedded default), each in its own file with its own append-only
//! migrations under `migrations/<backend>/`. A state change is one transaction: the
//! subscription's new state with its orders, order lines, events and outbox messages. Due work
//! is claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL and by SQLite's single writer. The
//! store decides nothing about billing: callers pass pure functions (`lifecycle`, `renewal`)
//! that turn the locked state into a [`Change`].

pub mod postgres;
mod records;
mod sql;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::config::{Backend, DatabaseSettings};
use crate::lifecycle::LifecycleError;
use crate::model::{
    Actor, Change, Coupon, Customer, Email, Event, Message, NewCoupon, NewCustomer,
    NewSubscription, Order, Status, Subscription,
};

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
    /// A failure injected by a test between writing and committing.
    #[error("injected failure before commit")]
    Injected,
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

/// Which rows a batch claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Active, not held, next renewal at or before `now`.
    DueRenewals,
    /// Paused with a `paused_until` at or before `now`.
    EndedPauses,
    /// Active, not held, next renewal at or before the given horizon, and no reminder yet
    /// for (its next cycle, this lead time); after the `(next_renewal_at, id)` cursor, which a
    /// sweep advances batch by batch: reminded rows keep their place in the due index, and
    /// without the cursor every batch would scan past all of them again.
    Reminders {
        lead_days: u32,
        after: Option<(DateTime<Utc>, i64)>,
    },
}

/// Orders written for one plan, and their total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PlanTally {
    pub orders: usize,
    pub amount_minor: i64,
}

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Rows claimed (locked) in this batch.
    pub claimed: usize,
    /// Changes written.
    pub changed: usize,
    pub orders: usize,
    pub messages: usize,
    /// Subscriptions put on hold because they could not be processed.
    pub held: usize,
    /// Cycles recorded as missed (catch-up).
    pub missed: usize,
    pub by_plan: std::collections::BTreeMap<String, PlanTally>,
    /// The last claimed row's `(next_renewal_at, id)`: where a cursor continues.
    pub last_key: Option<(DateTime<Utc>, i64)>,
}

#[derive(Debug, Clone, Default)]
pub struct SubscriptionFilter {
    pub status: Option<Status>,
    pub customer_id: Option<i64>,
    pub plan: Option<String>,
    pub limit: u32,
}

#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub subscription_id: Option<i64>,
    pub customer_id: Option<i64>,
    pub limit: u32,
}

#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub status: Option<String>,
    pub kind: Option<String>,
    pub subscription_id: Option<i64>,
    pub limit: u32,
}

/// Turns a locked subscription (and its customer) into a change, or refuses.
pub type Transition<'a> =
    dyn Fn(&Subscription, &Customer) -> Result<Change, LifecycleError> + Send + Sync + 'a;

/// Plans the change for one claimed row; `None` leaves the row as it is.
pub type Planner<'a> = dyn Fn(&Subscription, &Customer) -> Option<Change> + Send + Sync + 'a;

#[async_trait]
pub trait Store: Send + Sync {
    fn backend(&self) -> Backend;

    /// Applies this backend's migrations that have not run yet.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Makes the next write transaction fail after writing and before committing (tests).
    fn inject_failure_before_commit(&self);

    async fn add_customer(
        &self,
        new: &NewCustomer,
        now: DateTime<Utc>,
    ) -> Result<Customer, StoreError>;
    async fn customer(&self, id: i64) -> Result<Option<Customer>, StoreError>;
    async fn customer_by_email(&self, email: &Email) -> Result<Option<Customer>, StoreError>;
    async fn customers(&self, limit: u32) -> Result<Vec<Customer>, StoreError>;

    async fn create_coupon(
        &self,
        new: &NewCoupon,
        now: DateTime<Utc>,
    ) -> Result<Coupon, StoreError>;
    async fn coupons(&self, limit: u32) -> Result<Vec<Coupon>, StoreError>;
    async fn disable_coupon(&self, code: &str, now: DateTime<Utc>) -> Result<Coupon, StoreError>;

    /// Creates a subscription with its `created` event and confirmation message, redeeming
    /// `new.coupon_code` (checked and counted against its limit) in the same transaction.
    async fn create_subscription(
        &self,
        new: &NewSubscription,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Subscription, StoreError>;
    async fn subscription(&self, id: i64) -> Result<Option<Subscription>, StoreError>;
    /// The subscriptions with these ids (those that exist), a few hundred ids per query.
    async fn subscriptions_by_id(&self, ids: &[i64]) -> Result<Vec<Subscription>, StoreError>;

    async fn subscriptions(
        &self,
        filter: &SubscriptionFilter,
    ) -> Result<Vec<Subscription>, StoreError>;

    /// Locks one subscription, applies `transition` and writes the change in one transaction.
    async fn transition(
        &self,
        id: i64,
        transition: &Transition<'_>,
    ) -> Result<Subscription, StoreError>;

    /// Claims up to `limit` rows of `claim` whose instant is at or before `until` (skipping
    /// rows other workers hold), plans each, and writes all changes in one transaction,
    /// stamped `now`.
    async fn process_batch(
        &self,
        claim: Claim,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: u32,
        planner: &Planner<'_>,
    ) -> Result<BatchOutcome, StoreError>;

    /// The rows `process_batch(DueRenewals)` would claim, without locking (for `--dry-run`).
    async fn due_preview(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(Subscription, Customer)>, StoreError>;

    /// How many active or paused subscriptions each plan id has, for the start-up catalog
    /// check. Counts, not ids: at a million subscriptions a list of ids cost 17 MB and half a
    /// second on every `tick`.
    async fn plans_in_use(&self) -> Result<Vec<(String, u64)>, StoreError>;

    /// The first `limit` active or paused subscriptions on a plan, to name them in an error.
    async fn subscriptions_on_plan(&self, plan: &str, limit: u32) -> Result<Vec<i64>, StoreError>;

    async fn orders(&self, filter: &OrderFilter) -> Result<Vec<Order>, StoreError>;
    async fn order(&self, order_number: &str) -> Result<Option<Order>, StoreError>;
    async fn events(&self, subscription_id: i64) -> Result<Vec<Event>, StoreError>;
    async fn messages(&self, filter: &MessageFilter) -> Result<Vec<Message>, StoreError>;
    async fn message(&self, id: i64) -> Result<Option<Message>, StoreError>;

    /// Leases up to `limit` pending messages due at `now` (skipping rows other mailers hold,
    /// and rows whose lease has not expired), counting the attempt.
    async fn claim_messages(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;

    /// Records what became of claimed messages, in one statement per thousand. Only the
    /// holder of a message's current lease may: when the lease expired and another mailer
    /// claimed (or finished) the message, that outcome is dropped and the other mailer's
    /// stands. Returns how many outcomes were recorded.
    async fn finish_messages(
        &self,
        finished: &[(Message, Delivery)],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Gives back claimed messages that will not be sent (a mailer stopping): their lease is
    /// cleared and the attempt uncounted, so another mailer may send them at once. Like
    /// [`Store::finish_messages`], only for messages still under the lease they were claimed
    /// with. Returns how many were released.
    async fn release_messages(&self, claimed: &[Message]) -> Result<u64, StoreError>;

    /// Puts failed messages back to pending (one, or all when `id` is `None`); returns how many.
    async fn retry_failed(&self, id: Option<i64>, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Whether the database answers and every migration of this build has been applied.
    async fn ready(&self) -> Result<(), String>;

    /// Pending outbox messages, and the creation time of the oldest one that is due.
    async fn outbox_backlog(
        &self,
        now: DateTime<Utc>,
    ) -> Result<(i64, Option<DateTime<Utc>>), StoreError>;

    /// Active, not held subscriptions whose renewal is due at `now`.
    async fn due_count(&self, now: DateTime<Utc>) -> Result<i64, StoreError>;

    /// Returns when new outbox rows may have committed (PostgreSQL `LISTEN`), or after
    /// `timeout` (the polling fallback, and always on SQLite).
    async fn wait_for_outbox(&self, timeout: std::time::Duration);

    /// Streams `finance_orders` rows with a billing date in `from..=to`, ordered by billing
    /// date and order id, into `sink`, one row at a time (memory stays flat); returns the count.
    async fn export_orders(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        sink: &mut (dyn FnMut(FinanceOrder) -> std::io::Result<()> + Send),
    ) -> Result<u64, StoreError>;

    /// Active and paused subscriptions with their customers, `limit` at a time, by id after
    /// `after_id` (keyset pages, for the forecast).
    async fn live_subscriptions(
        &self,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<(Subscription, Customer)>, StoreError>;

    /// The ledger's broken invariants, each as (check, offending keys), at most `limit` keys
    /// per check.
    async fn audit(&self, limit: u32) -> Result<Vec<(String, Vec<String>)>, StoreError>;

    /// Distinct plan ids that orders reference.
    async fn ordered_plans(&self) -> Result<Vec<String>, StoreError>;
}

/// One row of the `finance_orders` view: amounts in minor units of `currency`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct FinanceOrder {
    pub order_number: String,
    pub order_id: i64,
    pub created_at: DateTime<Utc>,
    pub billing_date: chrono::NaiveDate,
    pub customer_id: i64,
    pub customer_email: String,
    pub tax_region: Option<String>,
    pub plan: String,
    pub packs: i64,
    pub quantity: i64,
    pub currency: String,
    pub subtotal_minor: i64,
    pub subscribe_and_save_discount_minor: i64,
    pub loyalty_discount_minor: i64,
    pub coupon_discount_minor: i64,
    pub coupon_code: Option<String>,
    pub shipping_minor: i64,
    pub tax_minor: i64,
    pub tax_inclusive: bool,
    pub total_minor: i64,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted by the server (its reply).
    Sent(String),
    /// A transient failure: try again at the given instant.
    Retry { at: DateTime<Utc>, error: String },
    /// A permanent failure, or too many transient ones.
    Failed(String),
    /// Not sent: it no longer tells the truth (a skipped, paused or cancelled cycle).
    Suppressed(String),
}

/// Opens the store the URL's scheme names.
pub async fn connect(settings: &DatabaseSettings) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match settings.backend {
        Backend::Postgres => Arc::new(postgres::PgStore::connect(settings).await?),
        Backend::Sqlite => Arc::new(sqlite::SqliteStore::connect(settings).await?),
    })
}
