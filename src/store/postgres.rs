//! The PostgreSQL store: production. Due work is claimed with `FOR UPDATE OF s SKIP LOCKED`,
//! so any number of engines can sweep one database and each row is processed by exactly one;
//! a batch's writes are multi-row inserts and one `UPDATE … FROM (VALUES …)`, committed
//! together. The statements shared with SQLite are in [`super::sql`]. Migrations:
//! `migrations/postgres/`.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool, Postgres, QueryBuilder, Transaction};

use super::records::*;
use super::sql::sql_store;
use super::{Backend, DatabaseSettings, IdempotentRequest, ReplyTo, Reservation};
use super::{
    BatchOutcome, Claim, MessageFilter, OrderFilter, Planner, Store, StoreError,
    SubscriptionFilter, Transition,
};
use crate::core::model::{
    Actor, ApiKey, Change, Consent, Coupon, Customer, CustomerUpdate, Email, Event, Message,
    NewApiKey, NewCoupon, NewCustomer, NewSubscription, Order, Subscription,
};
use crate::core::model::{CreditNote, OrderLine, Payment, PaymentRefs, ProviderKind};
use crate::core::money::Money;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Rows per multi-row statement: well under PostgreSQL's 65,535 parameters, and small enough
/// that a statement of outbox payloads stays near 1 MB (heaptrack: the encode buffer of a
/// 1,000-row outbox INSERT was 5 MB, a large share of a sweep's peak memory). The mailer's
/// `RECORD_AT_MOST` matches it.
const ROWS_PER_STATEMENT: usize = 250;

const BACKEND: Backend = Backend::Postgres;
/// Locks the subscription row, not the joined coupon (the nullable side of an outer join).
const SUBSCRIPTION_LOCK: &str = " FOR UPDATE OF s";
const IDEMPOTENCY_LOCK: &str = " FOR UPDATE";
/// A reservation's commit need not wait for its WAL flush: the change that completes it
/// commits synchronously, and flushing that commit flushes the reservation's WAL before it;
/// a reservation lost in a crash before any change only lets a retry run again.
const RESERVATION_COMMIT: &str = "SET LOCAL synchronous_commit = off";
const COUPON_LOCK: &str = " FOR UPDATE";
/// Claims skip rows another engine holds, so concurrent sweeps split the work.
const MESSAGE_CLAIM_LOCK: &str = " FOR UPDATE SKIP LOCKED";
/// Locks the payment row, not the joined order and customer.
const PAYMENT_LOCK: &str = " FOR UPDATE OF p";
const PAYMENT_CLAIM_LOCK: &str = " FOR UPDATE OF p SKIP LOCKED";
const CLAIM_LOCK: &str = " FOR UPDATE OF s SKIP LOCKED";

/// How long opening a connection may take before the database counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct PgStore {
    pool: PgPool,
    /// A `LISTEN subsave_outbox` connection, opened on first wait, dropped on error.
    listener: tokio::sync::Mutex<Option<PgListener>>,
}

impl PgStore {
    pub async fn connect(settings: &DatabaseSettings) -> Result<PgStore, sqlx::Error> {
        let mut options =
            PgConnectOptions::from_str(settings.url.expose())?.application_name("subsave");
        if let Some(password) = &settings.password {
            options = options.password(password.expose());
        }
        // One connection first, so that a refused connection, a missing database or a wrong
        // password fails at once with the server's own word, not after the pool's wait.
        let first = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
        first.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_lazy_with(options);
        Ok(PgStore {
            pool,
            listener: tokio::sync::Mutex::new(None),
        })
    }
}

async fn begin_write(pool: &PgPool) -> Result<Transaction<'static, Postgres>, StoreError> {
    Ok(pool.begin().await?)
}

/// Every changed subscription's new state in one statement per chunk.
async fn update_subscriptions(
    tx: &mut Transaction<'static, Postgres>,
    changes: &[Change],
) -> Result<(), StoreError> {
    for chunk in changes.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Postgres>::new(
            "UPDATE subscriptions AS s SET plan_id = v.plan_id, quantity = v.quantity, \
             interval_count = v.interval_count, interval_unit = v.interval_unit, \
             anchor_local = v.anchor_local, anchor_cycle = v.anchor_cycle, next_cycle = v.next_cycle, \
             next_renewal_at = v.next_renewal_at, status = v.status, paused_until = v.paused_until, \
             orders_count = v.orders_count, coupon_orders_used = v.coupon_orders_used, \
             cancel_reason = v.cancel_reason, hold_reason = v.hold_reason, \
             error_count = v.error_count, updated_at = v.updated_at, \
             promised_cycle = v.promised_cycle, promised_price_minor = v.promised_price_minor, \
             promised_total_minor = v.promised_total_minor, last_total_minor = v.last_total_minor, \
             price_checked_cycle = v.price_checked_cycle, annual_notice_at = v.annual_notice_at, \
             address_id = v.address_id FROM (",
        );
        q.push_values(chunk, |mut row, c| {
            let s = &c.after;
            row.push_bind(s.id)
                .push_bind(s.plan.as_str().to_owned())
                .push_bind(big(s.quantity))
                .push_bind(big(s.interval.count()))
                .push_bind(interval_unit(s.interval))
                .push_bind(s.anchor_local)
                .push_bind(big(s.anchor_cycle))
                .push_bind(big(s.next_cycle))
                .push_bind(s.next_renewal_at)
                .push_bind(s.status.as_str())
                .push_bind(s.paused_until)
                .push_bind(big(s.orders_count))
                .push_bind(big(s.coupon.as_ref().map_or(0, |g| g.orders_used)))
                .push_bind(s.cancel_reason.clone())
                .push_bind(s.hold_reason.clone())
                .push_bind(big(s.error_count))
                .push_bind(s.updated_at)
                .push_bind(s.promise.map(|p| big(p.cycle)))
                .push_bind(s.promise.map(|p| p.unit_price_minor))
                .push_bind(s.promise.and_then(|p| p.total_minor))
                .push_bind(s.notices.last_total_minor)
                .push_bind(s.notices.price_checked_cycle.map(big))
                .push_bind(s.notices.annual_notice_at)
                .push_bind(s.ship_to.as_ref().map(|a| a.id));
        });
        q.push(
            ") AS v(id, plan_id, quantity, interval_count, interval_unit, anchor_local, anchor_cycle, \
             next_cycle, next_renewal_at, status, paused_until, orders_count, coupon_orders_used, \
             cancel_reason, hold_reason, error_count, updated_at, promised_cycle, promised_price_minor, \
             promised_total_minor, last_total_minor, price_checked_cycle, annual_notice_at, address_id) \
             WHERE s.id = v.id",
        );
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// Waits for a `subsave_outbox` notification (sent when outbox rows commit) or the timeout.
/// A broken listener is dropped and reopened on the next wait; meanwhile this polls.
async fn wait_for_outbox(store: &PgStore, timeout: Duration) {
    let mut guard = store.listener.lock().await;
    if guard.is_none() {
        match PgListener::connect_with(&store.pool).await {
            Ok(mut listener) => match listener.listen("subsave_outbox").await {
                Ok(()) => *guard = Some(listener),
                Err(e) => tracing::debug!(error = %e, "LISTEN failed; polling"),
            },
            Err(e) => tracing::debug!(error = %e, "no LISTEN connection; polling"),
        }
    }
    match guard.as_mut() {
        Some(listener) => match tokio::time::timeout(timeout, listener.recv()).await {
            Ok(Ok(_)) | Err(_) => {}
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "LISTEN connection lost");
                *guard = None;
            }
        },
        None => {
            drop(guard);
            tokio::time::sleep(timeout).await;
        }
    }
}

sql_store!(PgStore, Postgres);
