//! The PostgreSQL store: production. Due work is claimed with `FOR UPDATE OF s SKIP LOCKED`,
//! so any number of engines can sweep one database and each row is processed by exactly one;
//! a batch's writes bind one array per column (`bulk.rs`), committed together. The statements
//! shared with SQLite are in [`super::sql`]. Migrations:
//! `migrations/postgres/`.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool, Postgres, QueryBuilder, Transaction};

mod bulk;
mod warm;

use bulk::{record_outcomes, write_changes};
use warm::Warm;

use super::records::*;
use super::sql::sql_store;
use super::{
    Backend, DatabaseSettings, DatabaseUrl, IdempotentRequest, Pooler, ReplyTo, Reservation,
};
use super::{
    BatchOutcome, Claim, MessageFilter, OrderFilter, PartitionUpkeep, Planner, ReplicaLag, Store,
    StoreError, SubscriptionFilter, Transition,
};
use crate::core::model::{
    Actor, ApiKey, Change, Consent, Coupon, Customer, CustomerUpdate, Email, Event, Message,
    NewApiKey, NewCoupon, NewCustomer, NewSubscription, Order, Subscription,
};
use crate::core::model::{CreditNote, OrderLine, Payment, PaymentRefs, ProviderKind};
use crate::core::money::Money;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Rows per multi-row statement: small enough that a statement of outbox payloads stays near
/// 1 MB (heaptrack: the encode buffer of a 1,000-row outbox INSERT was 5 MB, a large share of a
/// sweep's peak memory), and the `VALUES` lists still written (released leases, reads by id)
/// well under PostgreSQL's 65,535 parameters (a batch's rows and the mailer's outcomes bind
/// arrays: `postgres/bulk.rs`).
const ROWS_PER_STATEMENT: usize = 250;

const BACKEND: Backend = Backend::Postgres;
/// Locks the subscription row, not the joined coupon (the nullable side of an outer join).
const SUBSCRIPTION_LOCK: &str = " FOR UPDATE OF s";
const IDEMPOTENCY_LOCK: &str = " FOR UPDATE";
/// A reservation's commit need not wait for its WAL flush: the change that completes it
/// commits synchronously, and flushing that commit flushes the reservation's WAL before it;
/// a reservation lost in a crash before any change only lets a retry run again.
const RESERVATION_COMMIT: &str = "SET LOCAL synchronous_commit = off";
const ROW_LOCK: &str = " FOR UPDATE";
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
    /// Reads and claims outside a write transaction, on the primary (through a pooler when
    /// `database.pooler` says so; then each connection works inside one transaction from
    /// acquire to release: see [`one_transaction_per_acquire`]). Connections are kept warm
    /// between statements (`warm.rs`) except behind a pooler.
    pool: Warm,
    /// Write transactions, on the primary: `pool` itself, or behind a transaction-mode pooler
    /// a pool of plain connections, so that a write commits when its `commit()` returns.
    write_pool: Warm,
    /// Behind a transaction-mode pooler: the statements a server connection holds from its
    /// last client are deallocated when a transaction starts on it.
    pooled: bool,
    /// Reading work that tolerates lag (exports, reports, list pages): the replica at
    /// `database.read_url`, else `pool`.
    read_pool: Warm,
    /// Where the mailer `LISTEN`s: `pool`, a direct `database.listen_url`, or nowhere (it
    /// polls) behind a transaction-mode pooler without one.
    listen_pool: Option<PgPool>,
    /// The replica's own pool when there is one (for its lag).
    replica: Option<Warm>,
    /// A `LISTEN subsave_outbox` connection, opened on first wait, dropped on error.
    listener: tokio::sync::Mutex<Option<PgListener>>,
}

impl PgStore {
    pub async fn connect(settings: &DatabaseSettings) -> Result<PgStore, sqlx::Error> {
        let options = connect_options(&settings.url, settings)?;
        // One connection first, so that a refused connection, a missing database or a wrong
        // password fails at once with the server's own word, not after the pool's wait.
        let first = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
        first.close().await?;
        let pooled = settings.pooler == Pooler::Transaction;
        let max = settings.max_connections;
        let (pool, write_pool) = if pooled {
            (
                Warm::new(
                    one_transaction_per_acquire(max).connect_lazy_with(options.clone()),
                    max,
                    false,
                ),
                Warm::new(pool_options(max).connect_lazy_with(options), max, false),
            )
        } else {
            let pool = Warm::new(pool_options(max).connect_lazy_with(options), max, true);
            (pool.clone(), pool)
        };
        let replica = match &settings.read_url {
            Some(url) => Some(Warm::new(
                pool_options(max).connect_lazy_with(connect_options(url, settings)?),
                max,
                true,
            )),
            None => None,
        };
        let listen_pool = match (&settings.listen_url, pooled) {
            (Some(url), _) => {
                Some(pool_options(1).connect_lazy_with(connect_options(url, settings)?))
            }
            // The one connection taken from the pool itself: the warm stack leaves it room.
            (None, false) => Some(pool.pool().clone()),
            (None, true) => None,
        };
        Ok(PgStore {
            read_pool: replica.clone().unwrap_or_else(|| pool.clone()),
            pool,
            write_pool,
            pooled,
            listen_pool,
            replica,
            listener: tokio::sync::Mutex::new(None),
        })
    }

    /// The pool for a read: the replica's when the caller tolerates lag.
    fn reader(&self, lag_ok: bool) -> &Warm {
        if lag_ok { &self.read_pool } else { &self.pool }
    }
}

/// How far the replica has replayed behind the primary's current WAL position, in bytes,
/// and how old its last replayed transaction is when it is behind (0 when caught up: an idle
/// primary writes nothing to replay).
async fn replica_lag(store: &PgStore) -> Result<Option<ReplicaLag>, StoreError> {
    let Some(replica) = &store.replica else {
        return Ok(None);
    };
    let primary: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(&store.pool)
        .await?;
    let (bytes, seconds): (Option<i64>, Option<f64>) = sqlx::query_as(
        "SELECT pg_wal_lsn_diff($1::pg_lsn, pg_last_wal_replay_lsn())::bigint, \
         EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8",
    )
    .bind(primary)
    .fetch_one(replica)
    .await?;
    let Some(bytes) = bytes else {
        return Err(StoreError::NotReplica(
            "database.read_url is not a standby in recovery (promoted, or a primary): point it at a replica, or remove it".into(),
        ));
    };
    Ok(Some(ReplicaLag {
        bytes: bytes.max(0),
        seconds: if bytes > 0 {
            seconds.unwrap_or(0.0).max(0.0)
        } else {
            0.0
        },
    }))
}

/// One round of partition upkeep in one transaction (migration 19's functions): partitions
/// made ahead, then retention by dropping finished outbox partitions. Each DDL statement waits
/// at most a few seconds for its lock, so a busy table delays upkeep, never the renewals; the
/// next round tries again.
async fn maintain_partitions(
    store: &PgStore,
    outbox_before: Option<DateTime<Utc>>,
) -> Result<PartitionUpkeep, StoreError> {
    let mut tx = begin_write(store).await?;
    sqlx::query("SET LOCAL lock_timeout = '3s'")
        .execute(&mut *tx)
        .await?;
    let made: i32 = sqlx::query_scalar("SELECT subsave_ensure_partitions()")
        .fetch_one(&mut *tx)
        .await?;
    let dropped: i64 = match outbox_before {
        Some(before) => {
            sqlx::query_scalar("SELECT subsave_drop_finished_outbox_partitions($1)")
                .bind(before)
                .fetch_one(&mut *tx)
                .await?
        }
        None => 0,
    };
    tx.commit().await?;
    Ok(PartitionUpkeep {
        partitions_made: u64::try_from(made).unwrap_or(0),
        outbox_rows_dropped: u64::try_from(dropped).unwrap_or(0),
    })
}

fn connect_options(
    url: &DatabaseUrl,
    settings: &DatabaseSettings,
) -> Result<PgConnectOptions, sqlx::Error> {
    let mut options = PgConnectOptions::from_str(url.expose())?.application_name("subsave");
    if let Some(password) = &settings.password {
        options = options.password(password.expose());
    }
    if settings.pooler == Pooler::Transaction && url == &settings.url {
        // Behind a transaction-mode pooler a statement prepared by one transaction is on a
        // server connection the next transaction may not get: nothing is cached.
        options = options.statement_cache_capacity(0);
    }
    Ok(options)
}

/// An idle connection is pinged before it is handed out only after sitting this long, time
/// enough for the server (or a pooler, a firewall) to have dropped it.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// sqlx's default pings every idle connection before handing it out: a round trip for every
/// query, as many as the query's own (profiled: a quarter of a GET's time in the pool). Here
/// only a connection idle for [`PING_AFTER_IDLE`] is pinged; under load, none is, and one that
/// broke meanwhile fails its query, whose caller counts an outage and retries.
fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(CONNECT_TIMEOUT)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_AFTER_IDLE {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

/// Forgets the statements a server connection holds from its previous client, at the start of
/// a transaction behind a transaction-mode pooler. sqlx names the statements it prepares
/// (`sqlx_s_1`, `sqlx_s_2`, … per client connection); with caching off it never reuses one,
/// but another client's connection counts from 1 too, and would meet "already exists".
const FORGET_STATEMENTS: &str = "DEALLOCATE ALL";

/// A pool for a transaction-mode pooler (PgBouncer `pool_mode = transaction`), where the
/// server connection behind a client connection can change after every transaction.
///
/// sqlx runs a statement as Parse (then Sync: the reply tells it the parameter types) and
/// Bind/Execute (then Sync). Outside a transaction the pooler may hand the second half to
/// another server connection, which does not hold the statement. So every connection this
/// pool gives out is inside one transaction from acquire to release, and a statement run
/// through it commits when the connection goes back. Only reads and claims whose effect may
/// commit a moment later use it; writes take a transaction of their own on `write_pool`
/// (`begin_write`).
fn one_transaction_per_acquire(max_connections: u32) -> PgPoolOptions {
    use sqlx_core::transaction::TransactionManager;
    type Manager = <Postgres as sqlx::Database>::TransactionManager;
    async fn begin(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        Manager::begin(conn, None).await?;
        sqlx::raw_sql(FORGET_STATEMENTS).execute(&mut *conn).await?;
        Ok(())
    }
    // Beginning is a round trip that fails on a broken connection: it replaces the ping.
    pool_options(max_connections)
        .after_connect(|conn, _| Box::pin(begin(conn)))
        .before_acquire(|conn, _| {
            Box::pin(async move {
                begin(conn).await?;
                Ok(true)
            })
        })
        .after_release(|conn, _| {
            Box::pin(async move {
                Manager::commit(conn).await?;
                Ok(true)
            })
        })
}

/// Applies the migrations. Behind a transaction-mode pooler, all of them in one transaction
/// (each in a savepoint): sqlx's migrator holds a session lock and reads its table between
/// migrations, which needs one server connection throughout.
async fn run_migrations(store: &PgStore) -> Result<(), StoreError> {
    if store.pooled {
        let mut tx = begin_write(store).await?;
        // `run` is `run_direct(None, conn, false)` over an `Acquire`, whose lifetime bound an
        // `async_trait` method cannot meet for a borrowed transaction.
        MIGRATOR.run_direct(None, &mut *tx, false).await?;
        tx.commit().await?;
    } else {
        MIGRATOR.run(store.pool.pool()).await?;
    }
    Ok(())
}

/// A write transaction on the primary; behind a transaction-mode pooler, on a server
/// connection cleared of its previous client's statements.
async fn begin_write(store: &PgStore) -> Result<Transaction<'static, Postgres>, StoreError> {
    let mut tx = store.write_pool.begin().await?;
    if store.pooled {
        sqlx::raw_sql(FORGET_STATEMENTS).execute(&mut *tx).await?;
    }
    Ok(tx)
}

/// Waits for a `subsave_outbox` notification (sent when outbox rows commit) or the timeout.
/// A broken listener is dropped and reopened on the next wait; meanwhile this polls.
async fn wait_for_outbox(store: &PgStore, timeout: Duration) {
    let Some(listen_pool) = &store.listen_pool else {
        tokio::time::sleep(timeout).await;
        return;
    };
    let mut guard = store.listener.lock().await;
    if guard.is_none() {
        match PgListener::connect_with(listen_pool).await {
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
