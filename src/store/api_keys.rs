//! API keys in the store: create (a taken name is a conflict), list, revoke, and look up by
//! the key's SHA-256 (the key itself is never stored). The SQL is written once in
//! [`api_keys_sql!`] and expanded by each backend.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::core::model::{ApiKey, NewApiKey};

#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Stores a new key; a taken name is a `Conflict` that names it.
    async fn create_api_key(
        &self,
        new: &NewApiKey,
        now: DateTime<Utc>,
    ) -> Result<ApiKey, StoreError>;
    /// Every key, revoked ones included, by id.
    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    /// Revokes the key of that name (the first revocation time is kept); `NotFound` if none.
    async fn revoke_api_key(&self, name: &str, now: DateTime<Utc>) -> Result<ApiKey, StoreError>;
    /// The key with this hash, revoked or not.
    async fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKey>, StoreError>;
    /// Records a use at `now`, at most once a minute per key (a write per request would make
    /// every read a write).
    async fn touch_api_key(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError>;
}

pub(in crate::store) const API_KEY_COLUMNS: &str =
    "id, name, scope, key_prefix, created_at, last_used_at, revoked_at";

macro_rules! api_keys_sql {
    ($store:ident, $db:ty) => {
        #[async_trait::async_trait]
        impl super::ApiKeyStore for $store {
            async fn create_api_key(
                &self,
                new: &NewApiKey,
                now: DateTime<Utc>,
            ) -> Result<ApiKey, StoreError> {
                let sql = format!(
                    "INSERT INTO api_keys (name, scope, key_hash, key_prefix, created_at) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING {}",
                    super::api_keys::API_KEY_COLUMNS
                );
                let mut tx = begin_write(self).await?;
                let record: Result<ApiKeyRecord, _> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(&new.name)
                    .bind(new.scope.as_str())
                    .bind(&new.key_hash[..])
                    .bind(&new.key_prefix)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await;
                match record.map_err(StoreError::from) {
                    Ok(record) => {
                        tx.commit().await?;
                        record.into_api_key()
                    }
                    Err(StoreError::Conflict(_)) => Err(StoreError::Conflict(format!(
                        "an API key named \"{}\" exists (a revoked key keeps its name); pick another name",
                        new.name
                    ))),
                    Err(other) => Err(other),
                }
            }

            async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
                let sql = format!(
                    "SELECT {} FROM api_keys ORDER BY id",
                    super::api_keys::API_KEY_COLUMNS
                );
                let records: Vec<ApiKeyRecord> =
                    sqlx::query_as(AssertSqlSafe(sql)).fetch_all(&self.pool).await?;
                records.into_iter().map(ApiKeyRecord::into_api_key).collect()
            }

            async fn revoke_api_key(
                &self,
                name: &str,
                now: DateTime<Utc>,
            ) -> Result<ApiKey, StoreError> {
                let sql = format!(
                    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE name = $1 RETURNING {}",
                    super::api_keys::API_KEY_COLUMNS
                );
                let mut tx = begin_write(self).await?;
                let record: Option<ApiKeyRecord> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(name)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.commit().await?;
                record
                    .ok_or_else(|| {
                        StoreError::NotFound(format!(
                            "no API key named \"{name}\"; see `subsave api-keys list`"
                        ))
                    })?
                    .into_api_key()
            }

            async fn api_key_by_hash(
                &self,
                hash: &[u8; 32],
            ) -> Result<Option<ApiKey>, StoreError> {
                let sql = format!(
                    "SELECT {} FROM api_keys WHERE key_hash = $1",
                    super::api_keys::API_KEY_COLUMNS
                );
                let record: Option<ApiKeyRecord> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(&hash[..])
                    .fetch_optional(&self.pool)
                    .await?;
                record.map(ApiKeyRecord::into_api_key).transpose()
            }

            async fn touch_api_key(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
                let mut tx = begin_write(self).await?;
                sqlx::query(
                    "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 \
                     AND (last_used_at IS NULL OR last_used_at < $3)",
                )
                .bind(id)
                .bind(now)
                .bind(now - chrono::TimeDelta::minutes(1))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

pub(crate) use api_keys_sql;
