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

use super::outbox::{OUTCOME_OF_THE_LEASE, OUTCOME_SET};
use super::records::*;
use super::sql::sql_store;
use super::subscriptions::{
    EVENT_COLUMNS, LINE_COLUMNS, MESSAGE_COLUMNS, ORDER_COLUMNS, PAYMENT_COLUMNS,
};
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

/// Records the mailer's outcomes (see `OutboxStore::finish_messages`): one `UPDATE … FROM`
/// a `VALUES` list per chunk, in one write transaction. (PostgreSQL binds arrays in one
/// statement instead: `postgres/bulk.rs`.)
async fn record_outcomes(
    store: &SqliteStore,
    finished: &[(Message, super::Delivery)],
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut tx = begin_write(store).await?;
    let mut recorded = 0;
    for chunk in finished.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "WITH v (id, lease_until, status, next_attempt_at, last_error, sent_at, sends) AS (",
        );
        q.push_values(chunk, |mut row, (message, outcome)| {
            let c = outcome.columns();
            row.push_bind(message.id)
                .push_bind(message.lease_until)
                .push_bind(c.status.as_str())
                .push_bind(c.next_attempt_at)
                .push_bind(c.note.map(str::to_owned))
                .push_bind(c.sent.then_some(now))
                .push_bind(c.sends);
        });
        q.push(format!(
            ") UPDATE outbox SET {OUTCOME_SET} FROM v WHERE {OUTCOME_OF_THE_LEASE}"
        ));
        recorded += q.build().execute(&mut *tx).await?.rows_affected();
    }
    tx.commit().await?;
    Ok(recorded)
}

/// Writes changes, a `VALUES` list per table and chunk: orders (linked back by order number,
/// each waiting for its shipment), their payments and lines, events, outbox messages, consents
/// given with a change, and every subscription's new state. (PostgreSQL binds arrays instead:
/// `postgres/bulk.rs`.)
async fn write_changes(
    tx: &mut Transaction<'static, Sqlite>,
    changes: &[Change],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let orders: Vec<_> = changes.iter().flat_map(|c| &c.orders).collect();
    let mut order_ids: HashMap<String, i64> = HashMap::with_capacity(orders.len());
    for chunk in orders.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(format!("INSERT INTO orders ({ORDER_COLUMNS}) "));
        q.push_values(chunk, |mut row, o| {
            let ship = o.ship_to.as_ref().map(crate::core::address::Address::raw);
            let ship = ship.as_ref();
            row.push_bind(o.order_number.as_str())
                .push_bind(o.subscription_id)
                .push_bind(o.customer_id)
                .push_bind(big(o.cycle))
                .push_bind(o.plan.as_str())
                .push_bind(big(o.packs))
                .push_bind(big(o.quantity))
                .push_bind(o.total.currency().code())
                .push_bind(o.total.minor())
                .push_bind(o.tax_included.map(|m| m.minor()))
                .push_bind(o.tax_included_rate.map(|r| i64::from(r.get())))
                .push_bind(o.tax_region.as_deref())
                .push_bind(o.coupon_code.as_deref())
                .push_bind(o.scheduled_for)
                .push_bind(now)
                .push_bind(o.billing_date)
                .push_bind(o.tax_rate.map(|r| i64::from(r.get())))
                .push_bind(ship.map(|a| a.name.clone()))
                .push_bind(ship.map(|a| a.line1.clone()))
                .push_bind(ship.and_then(|a| a.line2.clone()))
                .push_bind(ship.map(|a| a.city.clone()))
                .push_bind(ship.and_then(|a| a.subdivision.clone()))
                .push_bind(ship.and_then(|a| a.postal_code.clone()))
                .push_bind(ship.map(|a| a.country.clone()))
                .push_bind(ship.and_then(|a| a.phone.clone()));
        });
        q.push(" RETURNING id, order_number");
        let rows: Vec<(i64, String)> = q.build_query_as().fetch_all(&mut **tx).await?;
        order_ids.extend(rows.into_iter().map(|(id, number)| (number, id)));
    }

    // Each order waits for its shipment until one is recorded.
    for chunk in orders.chunks(ROWS_PER_STATEMENT) {
        let mut q =
            QueryBuilder::<Sqlite>::new("INSERT INTO unfulfilled_orders (order_id, created_at) ");
        q.push_values(chunk, |mut row, o| {
            row.push_bind(order_ids[&o.order_number]).push_bind(now);
        });
        q.build().execute(&mut **tx).await?;
    }

    // Each order's payment, as the core says it starts.
    for chunk in orders.chunks(ROWS_PER_STATEMENT) {
        let mut q =
            QueryBuilder::<Sqlite>::new(format!("INSERT INTO payments ({PAYMENT_COLUMNS}) "));
        q.push_values(chunk, |mut row, o| {
            let first = o.first_payment(now);
            row.push_bind(order_ids[&o.order_number])
                .push_bind(o.subscription_id)
                .push_bind(o.customer_id)
                .push_bind(o.collection.as_str())
                .push_bind(first.status.as_str())
                .push_bind(o.total.minor())
                .push_bind(o.total.currency().code())
                .push_bind(first.next_attempt_at)
                .push_bind(first.paid_at)
                .push_bind(now)
                .push_bind(now);
        });
        q.build().execute(&mut **tx).await?;
    }

    let lines: Vec<_> = orders
        .iter()
        .flat_map(|o| {
            let id = order_ids[&o.order_number];
            o.lines
                .iter()
                .enumerate()
                .map(move |(i, l)| (id, i as i64, l))
        })
        .collect();
    for chunk in lines.chunks(ROWS_PER_STATEMENT) {
        let mut q =
            QueryBuilder::<Sqlite>::new(format!("INSERT INTO order_lines ({LINE_COLUMNS}) "));
        q.push_values(chunk, |mut row, (id, position, line)| {
            row.push_bind(*id)
                .push_bind(*position)
                .push_bind(line.kind.as_str())
                .push_bind(line.label.as_str())
                .push_bind(line.amount.minor());
        });
        q.build().execute(&mut **tx).await?;
    }

    let events: Vec<_> = changes.iter().flat_map(|c| &c.events).collect();
    for chunk in events.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(format!(
            "INSERT INTO subscription_events ({EVENT_COLUMNS}) "
        ));
        q.push_values(chunk, |mut row, e| {
            row.push_bind(e.subscription_id)
                .push_bind(e.kind.as_str())
                .push_bind(e.actor.0.as_str())
                .push_bind(now)
                .push_bind(e.cycle.map(big))
                .push_bind(Json(&e.detail));
        });
        q.build().execute(&mut **tx).await?;
    }

    let messages: Vec<_> = changes.iter().flat_map(|c| &c.messages).collect();
    for chunk in messages.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(format!("INSERT INTO outbox ({MESSAGE_COLUMNS}) "));
        q.push_values(chunk, |mut row, m| {
            row.push_bind(m.kind.as_str())
                .push_bind(m.recipient.as_str())
                .push_bind(m.subscription_id)
                .push_bind(m.order_number.as_ref().map(|n| order_ids[n]))
                .push_bind(m.cycle.map(big))
                .push_bind(m.lead_days.map(big))
                .push_bind(Json(&m.payload))
                .push_bind(if m.suppressed.is_some() {
                    "suppressed"
                } else {
                    "pending"
                })
                .push_bind(m.suppressed.as_deref())
                .push_bind(m.deliver_at.unwrap_or(now))
                .push_bind(now);
        });
        // A reminder another engine queued since this batch was claimed already stands
        // (its claim's NOT EXISTS ran on an older snapshot): the unique index keeps the
        // first, and this one is dropped rather than failing the batch.
        q.push(" ON CONFLICT DO NOTHING");
        q.build().execute(&mut **tx).await?;
    }

    insert_consents(tx, changes, now).await?;
    update_subscriptions(tx, changes).await?;
    Ok(())
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
