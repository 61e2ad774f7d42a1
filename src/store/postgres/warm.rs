//! Connections kept warm between statements. sqlx gives a connection back to its pool through
//! a task that first pings it (a Sync and its ReadyForQuery): a round trip to PostgreSQL after
//! every statement run on the pool, and after every transaction, as long as a primary-key
//! read's own (measured in docs/benchmarks.md). Here a connection whose statement ran to its
//! end is kept in a stack instead, and the next statement or transaction takes it as it is.
//!
//! What sqlx's pool still does: open connections, bound their number, and judge the health and
//! age of every connection that goes back to it. A connection goes back (through sqlx's ping)
//! when its statement failed or was abandoned half-way (its state is unknown), after a
//! transaction (sqlx's `Transaction` owns it to the end), when it sat in the stack for
//! [`PING_AFTER_IDLE`] (a server, pooler or firewall may have dropped it meanwhile), and once
//! it has been kept for [`KEPT_AT_MOST`] (so that the pool's `max_lifetime` still applies).
//!
//! Everything on the store's pools goes through here: reads and single statements through the
//! [`Executor`] of `&Warm`, transactions through [`Warm::begin`], both taking a kept connection
//! before asking the pool; while any of them waits for the pool, finished connections go back
//! to it rather than to the stack. Only the outbox listener takes one from the pool itself: the
//! stack keeps at most all connections but one.
//!
//! Must not: keep a connection behind a transaction-mode pooler (there each connection works in
//! a transaction from acquire to release, which the release commits: see
//! `one_transaction_per_acquire`); keep one whose statement did not finish.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{Either, Execute, Executor, PgPool, Postgres, Transaction};
use sqlx_core::ext::async_stream::TryAsyncStream;
use sqlx_core::sql_str::SqlStr;

use super::PING_AFTER_IDLE;

/// A connection is kept for this long at most, then given back to sqlx's pool, which applies
/// its lifetime limits when it comes back.
pub(super) const KEPT_AT_MOST: Duration = Duration::from_secs(60);

/// A pool and the connections kept out of it between statements. Cloning shares both.
#[derive(Clone)]
pub(super) struct Warm(Arc<Inner>);

impl std::fmt::Debug for Warm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Warm")
            .field("pool", &self.0.pool)
            .field("keep_at_most", &self.0.keep_at_most)
            .finish_non_exhaustive()
    }
}

struct Inner {
    pool: PgPool,
    /// The most connections kept; 0 keeps none (behind a transaction-mode pooler).
    keep_at_most: usize,
    kept: Mutex<Vec<Kept>>,
    /// Takers waiting for the pool: while any waits, a finished connection goes back to the
    /// pool (to the first of them) instead of the stack, which they do not see.
    waiting: AtomicUsize,
}

impl Drop for Inner {
    /// sqlx gives a dropped connection back through a task, which needs a runtime: outside one
    /// (a store dropped after its runtime), the kept connections are closed where they are.
    fn drop(&mut self) {
        if tokio::runtime::Handle::try_current().is_err() {
            let kept = self.kept.get_mut().unwrap_or_else(|e| e.into_inner());
            for kept in kept.drain(..) {
                drop(kept.conn.detach());
            }
        }
    }
}

/// A connection between statements: since when it is idle, and since when it is kept.
struct Kept {
    conn: PoolConnection<Postgres>,
    idle_since: Instant,
    kept_since: Instant,
}

/// A connection taken for one statement, with when it was first kept.
struct Taken {
    conn: PoolConnection<Postgres>,
    kept_since: Instant,
}

impl Warm {
    /// Keeps up to all of `pool`'s connections but one when `keep`; otherwise a plain pool.
    pub(super) fn new(pool: PgPool, max_connections: u32, keep: bool) -> Warm {
        let keep_at_most = if keep {
            (max_connections as usize).saturating_sub(1)
        } else {
            0
        };
        Warm(Arc::new(Inner {
            pool,
            keep_at_most,
            kept: Mutex::new(Vec::new()),
            waiting: AtomicUsize::new(0),
        }))
    }

    /// sqlx's pool itself, for what must hold a connection of its own (the outbox listener,
    /// the migrator).
    pub(super) fn pool(&self) -> &PgPool {
        &self.0.pool
    }

    /// A write transaction on a kept connection, or on one from the pool.
    pub(super) async fn begin(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let taken = self.take().await?;
        Transaction::begin(taken.conn, None).await
    }

    /// The connection kept last, unless it idled too long (then it and any older go back to
    /// the pool), or one from the pool.
    async fn take(&self) -> Result<Taken, sqlx::Error> {
        let now = Instant::now();
        let (fresh, stale) = {
            let mut kept = self.0.kept.lock().unwrap_or_else(|e| e.into_inner());
            match kept.pop() {
                Some(last) if now.duration_since(last.idle_since) < PING_AFTER_IDLE => {
                    (Some(last), Vec::new())
                }
                // The older ones idled longer still: all go back.
                Some(last) => {
                    let mut stale: Vec<Kept> = kept.drain(..).collect();
                    stale.push(last);
                    (None, stale)
                }
                None => (None, Vec::new()),
            }
        };
        // Given back to the pool outside the lock (each drop spawns sqlx's release).
        drop(stale);
        Ok(match fresh {
            Some(kept) => Taken {
                conn: kept.conn,
                kept_since: kept.kept_since,
            },
            None => Taken {
                conn: self.acquire().await?,
                kept_since: now,
            },
        })
    }

    /// A connection from the pool, counted as waiting meanwhile (also when the wait is
    /// abandoned).
    async fn acquire(&self) -> Result<PoolConnection<Postgres>, sqlx::Error> {
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.0.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.0.waiting);
        self.0.pool.acquire().await
    }

    /// Keeps a connection whose statement ran to its end, unless the stack is full, it has
    /// been kept long enough, or a taker waits for the pool (then it goes back to the pool).
    fn keep(&self, taken: Taken) {
        let now = Instant::now();
        if now.duration_since(taken.kept_since) >= KEPT_AT_MOST
            || self.0.waiting.load(Ordering::SeqCst) > 0
        {
            return;
        }
        let stale: Vec<Kept> = {
            let mut kept = self.0.kept.lock().unwrap_or_else(|e| e.into_inner());
            // The oldest at the bottom may have idled too long while the top was reused.
            let idled = kept
                .iter()
                .take_while(|k| now.duration_since(k.idle_since) >= PING_AFTER_IDLE)
                .count();
            let stale = kept.drain(..idled).collect();
            if kept.len() < self.0.keep_at_most {
                kept.push(Kept {
                    conn: taken.conn,
                    idle_since: now,
                    kept_since: taken.kept_since,
                });
            }
            stale
        };
        drop(stale);
    }
}

impl<'w> Executor<'w> for &'_ Warm {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, sqlx::Error>>
    where
        E: 'q + Execute<'q, Postgres>,
    {
        let warm = self.clone();
        Box::pin(TryAsyncStream::new(move |yielder| async move {
            let mut taken = warm.take().await?;
            {
                let mut results = (&mut *taken.conn).fetch_many(query);
                while let Some(result) = results.try_next().await? {
                    yielder.r#yield(result).await;
                }
            }
            warm.keep(taken);
            Ok(())
        }))
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        E: 'q + Execute<'q, Postgres>,
    {
        let warm = self.clone();
        Box::pin(async move {
            let mut taken = warm.take().await?;
            let row = (&mut *taken.conn).fetch_optional(query).await?;
            warm.keep(taken);
            Ok(row)
        })
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement, sqlx::Error>>
    where
        'w: 'e,
    {
        let warm = self.clone();
        Box::pin(async move {
            let mut taken = warm.take().await?;
            let statement = (&mut *taken.conn).prepare_with(sql, parameters).await?;
            warm.keep(taken);
            Ok(statement)
        })
    }

    /// sqlx's compile-time query checks describe statements through an executor; this store
    /// has none, but the trait asks for it.
    fn describe<'e>(
        self,
        sql: SqlStr,
    ) -> BoxFuture<'e, Result<sqlx_core::describe::Describe<Postgres>, sqlx::Error>>
    where
        'w: 'e,
    {
        let warm = self.clone();
        Box::pin(async move {
            let mut taken = warm.take().await?;
            let described = (&mut *taken.conn).describe(sql).await?;
            warm.keep(taken);
            Ok(described)
        })
    }
}

/// Against the PostgreSQL the tests run on (127.0.0.1:5432, as the integration tests): no
/// schema needed, only the server's own functions.
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sqlx::postgres::PgPoolOptions;

    use super::*;

    const URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

    fn warm() -> Warm {
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect_lazy(URL)
            .expect("a valid URL");
        Warm::new(pool, 4, true)
    }

    async fn backend(warm: &Warm) -> i32 {
        sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(warm)
            .await
            .expect("PostgreSQL on 127.0.0.1:5432 (the tests need it)")
    }

    fn kept(warm: &Warm) -> usize {
        warm.0.kept.lock().unwrap().len()
    }

    #[tokio::test]
    async fn a_finished_statement_keeps_its_connection_for_the_next() {
        let warm = warm();
        let first = backend(&warm).await;
        assert_eq!(kept(&warm), 1);
        // Not given back to sqlx's pool (whose release would ping it): it is kept.
        assert_eq!(warm.pool().num_idle(), 0);
        assert_eq!(backend(&warm).await, first);
        let rows: Vec<i32> = sqlx::query_scalar("SELECT generate_series(1, 3)")
            .fetch_all(&warm)
            .await
            .unwrap();
        assert_eq!(rows, [1, 2, 3]);
        let mut tx = warm.begin().await.unwrap();
        let in_tx: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(in_tx, first, "a transaction begins on the kept connection");
        assert_eq!(kept(&warm), 0);
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn a_failed_or_abandoned_statement_gives_its_connection_back() {
        let warm = warm();
        backend(&warm).await;
        let failed = sqlx::query("SELECT 1 / 0").execute(&warm).await;
        assert!(failed.is_err());
        assert_eq!(
            kept(&warm),
            0,
            "a failed statement's connection is not kept"
        );
        backend(&warm).await;
        let abandoned = tokio::time::timeout(
            Duration::from_millis(200),
            sqlx::query("SELECT pg_sleep(5)").execute(&warm),
        )
        .await;
        assert!(abandoned.is_err(), "the sleep was cut short");
        assert_eq!(
            kept(&warm),
            0,
            "an abandoned statement's connection is not kept"
        );
        // The next statement gets a connection in a known state and its own answer.
        let answer: i32 = sqlx::query_scalar("SELECT 42")
            .fetch_one(&warm)
            .await
            .unwrap();
        assert_eq!(answer, 42);
    }

    /// All connections in use and one more statement waiting for the pool: the next one to
    /// finish goes to it, not to the stack (measured first at 32 connections to a pool of 16:
    /// waiters timed out while finished connections went round the stack).
    #[tokio::test]
    async fn a_taker_waiting_for_the_pool_gets_the_next_finished_connection() {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(3))
            .connect_lazy(URL)
            .expect("a valid URL");
        let warm = Warm::new(pool, 2, true);
        // One connection held to the end, the other busy for a while.
        let held = warm.begin().await.expect("PostgreSQL on 127.0.0.1:5432");
        let busy = {
            let warm = warm.clone();
            tokio::spawn(async move {
                sqlx::query("SELECT pg_sleep(0.3)")
                    .execute(&warm)
                    .await
                    .unwrap();
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        let answer: i32 = sqlx::query_scalar("SELECT 7")
            .fetch_one(&warm)
            .await
            .expect("the waiter gets the busy statement's connection");
        assert_eq!(answer, 7);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        busy.await.unwrap();
        drop(held);
    }

    #[tokio::test]
    async fn a_connection_idle_for_a_second_goes_back_through_the_pool() {
        let warm = warm();
        backend(&warm).await;
        assert_eq!(kept(&warm), 1);
        tokio::time::sleep(PING_AFTER_IDLE + Duration::from_millis(100)).await;
        // Taken for this statement: the stale one goes back, and this one comes from the pool.
        backend(&warm).await;
        assert_eq!(kept(&warm), 1);
        let kept_since = warm.0.kept.lock().unwrap()[0].kept_since;
        assert!(
            kept_since.elapsed() < PING_AFTER_IDLE,
            "the one kept now is new to the stack"
        );
    }
}
