//! The SQLite store: the embedded default, so subsave runs on a machine with no database
//! server. SQLite has one writer at a time: every write transaction starts with
//! `BEGIN IMMEDIATE`, which takes the write lock up front, so two processes sweeping one file
//! take turns instead of racing (the loser waits on the busy timeout). The statements shared
//! with PostgreSQL are in [`super::sql`]. Migrations: `migrations/sqlite/`.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, QueryBuilder, Sqlite, SqlitePool, Transaction};

use super::records::*;
use super::sql::sql_store;
use super::{
    Backend, DatabaseSettings, IdempotentRequest, PartitionUpkeep, ReplicaLag, ReplyTo, Reservation,
};
use super::{
    BatchOutcome, Claim, MessageFilter, OrderFilter, Planner, Store, StoreError,
    SubscriptionFilter, Transition,
};
use crate::core::model::{
    Actor, ApiKey, Change, Consent, Coupon, Customer, CustomerUpdate, Email, Event, Message,
    NewApiKey, NewCoupon, NewCustomer, NewSubscription, Order, Subscription,
};
use crate::core::model::{CreditNote, OrderLine, Payment, PaymentRefs, ProviderKind};
use crate::core::money::{Currency, Money};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// Rows per multi-row statement: keeps every statement under SQLite's 32,766 parameters.
const ROWS_PER_STATEMENT: usize = 1000;

const BACKEND: Backend = Backend::Sqlite;
// A write transaction holds SQLite's database-wide write lock: no row locks exist or are needed.
const SUBSCRIPTION_LOCK: &str = "";
const IDEMPOTENCY_LOCK: &str = "";
/// SQLite commits a reservation like any write.
const RESERVATION_COMMIT: &str = "";
const ROW_LOCK: &str = "";
const COUPON_LOCK: &str = "";
const MESSAGE_CLAIM_LOCK: &str = "";
/// Locks the payment row, not the joined order and customer.
const PAYMENT_LOCK: &str = "";
const PAYMENT_CLAIM_LOCK: &str = "";
const CLAIM_LOCK: &str = "";

pub struct SqliteStore {
    pool: SqlitePool,
    /// The same pool: SQLite has no replica.
    read_pool: SqlitePool,
}

impl SqliteStore {
    pub async fn connect(settings: &DatabaseSettings) -> Result<SqliteStore, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(settings.url.expose())?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(SqliteStore {
            read_pool: pool.clone(),
            pool,
        })
    }

    fn reader(&self, _lag_ok: bool) -> &SqlitePool {
        &self.pool
    }
}

/// A write transaction holding SQLite's write lock from its first statement.
async fn begin_write(store: &SqliteStore) -> Result<Transaction<'static, Sqlite>, StoreError> {
    Ok(store.pool.begin_with("BEGIN IMMEDIATE").await?)
}

async fn update_subscriptions(
    tx: &mut Transaction<'static, Sqlite>,
    changes: &[Change],
) -> Result<(), StoreError> {
    // SQLite runs in-process: one prepared UPDATE per subscription costs microseconds.
    for change in changes {
        let s = &change.after;
        sqlx::query(super::subscriptions::UPDATE_SUBSCRIPTION)
            .bind(s.id)
            .bind(s.plan.as_str().to_owned())
            .bind(big(s.quantity))
            .bind(big(s.interval.count()))
            .bind(interval_unit(s.interval))
            .bind(s.anchor_local)
            .bind(big(s.anchor_cycle))
            .bind(big(s.next_cycle))
            .bind(s.next_renewal_at)
            .bind(s.status.as_str())
            .bind(s.paused_until)
            .bind(big(s.orders_count))
            .bind(big(s.coupon.as_ref().map_or(0, |g| g.orders_used)))
            .bind(s.cancel_reason.clone())
            .bind(s.hold_reason.clone())
            .bind(big(s.error_count))
            .bind(s.updated_at)
            .bind(s.promise.map(|p| big(p.cycle)))
            .bind(s.promise.map(|p| p.unit_price_minor))
            .bind(s.promise.and_then(|p| p.total_minor))
            .bind(s.notices.last_total_minor)
            .bind(s.notices.price_checked_cycle.map(big))
            .bind(s.notices.annual_notice_at)
            .bind(s.ship_to.as_ref().map(|a| a.id))
            .bind(s.promise.and_then(|p| p.currency).map(Currency::code))
            .bind(s.notices.last_total_currency.map(Currency::code))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

async fn run_migrations(store: &SqliteStore) -> Result<(), StoreError> {
    MIGRATOR.run(&store.pool).await?;
    Ok(())
}

/// SQLite has no replica.
async fn replica_lag(_store: &SqliteStore) -> Result<Option<ReplicaLag>, StoreError> {
    Ok(None)
}

/// SQLite's tables are not partitioned: the purger deletes old messages row by row.
async fn maintain_partitions(
    _store: &SqliteStore,
    _outbox_before: Option<DateTime<Utc>>,
) -> Result<PartitionUpkeep, StoreError> {
    Ok(PartitionUpkeep::default())
}

/// SQLite has no notifications: the mailer polls.
async fn wait_for_outbox(_store: &SqliteStore, timeout: Duration) {
    tokio::time::sleep(timeout).await;
}

sql_store!(SqliteStore, Sqlite);
