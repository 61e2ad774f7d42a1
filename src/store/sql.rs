//! How the two SQL backends share their statements. The statements are the same on
//! PostgreSQL and SQLite (`$N` parameters, `RETURNING`, partial indexes), so each concern's
//! file (`customers.rs`, `addresses.rs`, `coupons.rs`, `subscriptions.rs`, `orders.rs`, `outbox.rs`,
//! `finance.rs`, `api_keys.rs`, `idempotency.rs`, `payments.rs`, `fulfillments.rs`) holds its trait, its statements and a macro that implements the trait; a
//! backend module expands [`sql_store!`], which expands them all over its own database type.
//! What differs is supplied by the expanding module:
//!
//! - `struct $store { pool, … }` and `static MIGRATOR`;
//! - `BACKEND`, `ROWS_PER_STATEMENT`, and the lock clauses `SUBSCRIPTION_LOCK`, `ROW_LOCK` (one row by id), `COUPON_LOCK`,
//!   `CLAIM_LOCK`, `MESSAGE_CLAIM_LOCK`, `IDEMPOTENCY_LOCK`, `PAYMENT_LOCK` and
//!   `PAYMENT_CLAIM_LOCK`, and `RESERVATION_COMMIT` (how an
//!   idempotency key's reservation commits) (row locks with `SKIP LOCKED` on PostgreSQL; empty
//!   on SQLite, whose write transaction locks the whole database);
//! - `begin_write(store)` (SQLite starts with `BEGIN IMMEDIATE`), `update_subscriptions(tx,
//!   changes)`, `record_outcomes(store, finished, now)` (the mailer's outcomes), `wait_for_outbox(store, timeout)`, `run_migrations(store)`, `replica_lag(store)` and `reader(lag_ok)` (the
//!   pool a list reads from);
//! - `read_pool`, where the finance reads go (a replica's pool, or the primary's).
//!
//! Row types and their conversion to domain types are in `records.rs`. Macros rather than
//! generics: sqlx's per-type `Encode`/`Decode` bounds would have to be spelled out for every
//! value bound, on every function.

macro_rules! sql_store {
    ($store:ident, $db:ty) => {
        super::write::write_tx_sql!($store, $db);
        super::customers::customers_sql!($store, $db);
        super::addresses::addresses_sql!($store, $db);
        super::coupons::coupons_sql!($store, $db);
        super::subscriptions::subscriptions_sql!($store, $db);
        super::orders::orders_sql!($store, $db);
        super::outbox::outbox_sql!($store, $db);
        super::finance::finance_sql!($store, $db);
        super::api_keys::api_keys_sql!($store, $db);
        super::idempotency::idempotency_sql!($store, $db);
        super::payments::payments_sql!($store, $db);
        super::fulfillments::fulfillments_sql!($store, $db);

        #[async_trait::async_trait]
        impl Store for $store {
            fn backend(&self) -> Backend {
                BACKEND
            }

            async fn migrate(&self) -> Result<(), StoreError> {
                run_migrations(self).await
            }

            async fn ready(&self) -> Result<(), super::NotReady> {
                let applied: Result<i64, sqlx::Error> = sqlx::query_scalar(
                    "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success",
                )
                .fetch_one(&self.pool)
                .await;
                let applied = match applied {
                    Ok(version) => Some(version),
                    Err(error) if super::is_missing_table(&error) => None,
                    Err(error) => return Err(super::NotReady::Unreachable(error.to_string())),
                };
                let versions: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
                super::schema_state(applied, &versions)
            }

            async fn replica_lag(&self) -> Result<Option<super::ReplicaLag>, StoreError> {
                replica_lag(self).await
            }

            async fn maintain_partitions(
                &self,
                outbox_before: Option<DateTime<Utc>>,
            ) -> Result<super::PartitionUpkeep, StoreError> {
                maintain_partitions(self, outbox_before).await
            }

            async fn listed(&self, list: super::Listed, id: i64) -> Result<bool, StoreError> {
                let sql = format!("SELECT COUNT(*) FROM {} WHERE id = $1", list.table());
                let found: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(found > 0)
            }
        }
    };
}

pub(crate) use sql_store;
