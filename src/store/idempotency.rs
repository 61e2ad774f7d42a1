//! The API's idempotency keys in the store. A request first reserves its key (its own short
//! transaction: a second request with the key sees it in flight); the response is then written
//! by the transaction that makes the change (`WriteTx::complete_reply` to its [`ReplyTo`],
//! `write.rs`), so a change and its recorded response commit together or not at all. A
//! refusal's response (nothing changed) is recorded on its own; a failure that may have
//! changed nothing releases the key. The SQL is written once in [`idempotency_sql!`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;

/// The request an idempotency key is used for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentRequest {
    pub api_key_id: i64,
    pub key: String,
    /// Method and path, e.g. `POST /v1/subscriptions/12/skip`.
    pub route: String,
    /// The SHA-256 of the request as its idempotency judges it: method, path and canonical
    /// JSON body (`api::fingerprint`).
    pub fingerprint: [u8; 32],
}

/// What a reservation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// The key is this request's now: go ahead, and record the response.
    Reserved,
    /// The key answered this same request before: send that answer again.
    Replay { status: u16, body: String },
    /// The key was used with another route or body.
    Mismatch,
    /// A request with the key is still being answered.
    InFlight,
}

/// Where a change's transaction writes the response it reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTo {
    pub api_key_id: i64,
    pub key: String,
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Reserves `request`'s key at `now`; an in-flight reservation locked before `stale_before`
    /// (its process died) is taken over.
    async fn reserve_idempotency_key(
        &self,
        request: &IdempotentRequest,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<Reservation, StoreError>;

    /// Records the response of a reserved request that changed nothing (a refusal).
    async fn record_reply(
        &self,
        to: &ReplyTo,
        status: u16,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Gives a reserved key back (the request failed before any change could commit), so a
    /// retry runs again.
    async fn release_idempotency_key(&self, to: &ReplyTo) -> Result<(), StoreError>;

    /// Deletes up to `limit` keys created before `before`; returns how many.
    async fn purge_idempotency_keys(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError>;
}

/// Writes a reply in a change's transaction; the key must still be reserved (in flight), or
/// the transaction is refused as a conflict (another request took the key over).
pub(in crate::store) const COMPLETE_REPLY: &str = "UPDATE idempotency_keys SET status = $3, \
     response = $4, completed_at = $5 WHERE api_key_id = $1 AND key = $2 AND status IS NULL";

macro_rules! idempotency_sql {
    ($store:ident, $db:ty) => {
        #[async_trait::async_trait]
        impl super::IdempotencyStore for $store {
            async fn reserve_idempotency_key(
                &self,
                request: &IdempotentRequest,
                now: DateTime<Utc>,
                stale_before: DateTime<Utc>,
            ) -> Result<Reservation, StoreError> {
                let mut tx = begin_write(self).await?;
                if !RESERVATION_COMMIT.is_empty() {
                    sqlx::query(RESERVATION_COMMIT).execute(&mut *tx).await?;
                }
                let inserted = sqlx::query(
                    "INSERT INTO idempotency_keys (api_key_id, key, route, fingerprint, created_at, locked_at) \
                     VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT DO NOTHING",
                )
                .bind(request.api_key_id)
                .bind(&request.key)
                .bind(&request.route)
                .bind(&request.fingerprint[..])
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 1 {
                    tx.commit().await?;
                    return Ok(Reservation::Reserved);
                }
                let sql = format!(
                    "SELECT route, fingerprint, status, response, locked_at FROM idempotency_keys \
                     WHERE api_key_id = $1 AND key = $2{IDEMPOTENCY_LOCK}"
                );
                let (route, fingerprint, status, response, locked_at): (
                    String,
                    Vec<u8>,
                    Option<i32>,
                    Option<String>,
                    DateTime<Utc>,
                ) = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(request.api_key_id)
                    .bind(&request.key)
                    .fetch_one(&mut *tx)
                    .await?;
                let found = if route != request.route || fingerprint[..] != request.fingerprint[..] {
                    Reservation::Mismatch
                } else if let (Some(status), Some(body)) = (status, response) {
                    Reservation::Replay {
                        status: u16::try_from(status).unwrap_or(500),
                        body,
                    }
                } else if locked_at < stale_before {
                    sqlx::query(
                        "UPDATE idempotency_keys SET locked_at = $3 WHERE api_key_id = $1 AND key = $2",
                    )
                    .bind(request.api_key_id)
                    .bind(&request.key)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    Reservation::Reserved
                } else {
                    Reservation::InFlight
                };
                tx.commit().await?;
                Ok(found)
            }

            async fn record_reply(
                &self,
                to: &ReplyTo,
                status: u16,
                body: &str,
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                let mut tx = begin_write(self).await?;
                sqlx::query(super::idempotency::COMPLETE_REPLY)
                    .bind(to.api_key_id)
                    .bind(&to.key)
                    .bind(i32::from(status))
                    .bind(body)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn release_idempotency_key(&self, to: &ReplyTo) -> Result<(), StoreError> {
                let mut tx = begin_write(self).await?;
                sqlx::query(
                    "DELETE FROM idempotency_keys WHERE api_key_id = $1 AND key = $2 AND status IS NULL",
                )
                .bind(to.api_key_id)
                .bind(&to.key)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn purge_idempotency_keys(
                &self,
                before: DateTime<Utc>,
                limit: u32,
            ) -> Result<u64, StoreError> {
                let mut tx = begin_write(self).await?;
                let purged = sqlx::query(
                    "DELETE FROM idempotency_keys WHERE (api_key_id, key) IN \
                     (SELECT api_key_id, key FROM idempotency_keys WHERE created_at < $1 \
                      ORDER BY created_at LIMIT $2)",
                )
                .bind(before)
                .bind(i64::from(limit))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(purged)
            }
        }

        /// Writes the response to `to` in a change's transaction; refused as a conflict when
        /// the key is no longer reserved.
        async fn complete_reply(
            tx: &mut Transaction<'static, $db>,
            to: &ReplyTo,
            status: u16,
            body: &str,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            let written = sqlx::query(super::idempotency::COMPLETE_REPLY)
                .bind(to.api_key_id)
                .bind(&to.key)
                .bind(i32::from(status))
                .bind(body)
                .bind(now)
                .execute(&mut **tx)
                .await?
                .rows_affected();
            if written == 1 {
                Ok(())
            } else {
                Err(StoreError::Conflict(format!(
                    "the idempotency key \"{}\" was taken over by another request; nothing was changed",
                    to.key
                )))
            }
        }
    };
}

pub(crate) use idempotency_sql;
