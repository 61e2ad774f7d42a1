//! Customers' ship-to addresses in the store: add (the first one, or one asked to, becomes
//! the default), list, read one, make one the default. At most one default per customer is the
//! database's rule (a partial unique index), and a subscription's address belongs to its own
//! customer (a two-column foreign key on PostgreSQL, triggers on SQLite). The SQL is written
//! once in [`addresses_sql!`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::core::address::Address;
use crate::core::model::CustomerAddress;

#[async_trait]
pub trait AddressStore: super::Writes {
    /// Adds an address ([`AddressWrites::add_address`] in a transaction of its own).
    async fn add_address(
        &self,
        customer_id: i64,
        address: &Address,
        make_default: bool,
        now: DateTime<Utc>,
    ) -> Result<CustomerAddress, StoreError> {
        let mut tx = self.begin_write().await?;
        let added = tx
            .add_address(customer_id, address, make_default, now)
            .await?;
        tx.commit().await?;
        Ok(added)
    }

    /// Up to `limit` of a customer's addresses by id, after `after_id` when given (keyset
    /// pages).
    async fn addresses(
        &self,
        customer_id: i64,
        limit: u32,
        after_id: Option<i64>,
    ) -> Result<Vec<CustomerAddress>, StoreError>;

    /// The customer's default address, if they have any address.
    async fn default_address(
        &self,
        customer_id: i64,
    ) -> Result<Option<CustomerAddress>, StoreError>;

    async fn address(&self, id: i64) -> Result<Option<CustomerAddress>, StoreError>;

    /// How many subscriptions that are not cancelled ship without an address (written before
    /// addresses existed: taxed by their customer's region), and the first `limit` of their
    /// ids.
    async fn subscriptions_without_address(
        &self,
        limit: u32,
    ) -> Result<(i64, Vec<i64>), StoreError>;

    /// Makes address `address_id` of customer `customer_id` the default; `NotFound` when the
    /// customer has no such address.
    async fn set_default_address(
        &self,
        customer_id: i64,
        address_id: i64,
    ) -> Result<CustomerAddress, StoreError>;
}

/// The addresses' changes, made in a write transaction ([`super::WriteTx`]).
#[async_trait]
pub trait AddressWrites: Send {
    /// Adds `address` to customer `customer_id`. The customer's first address becomes the
    /// default, and so does one added with `make_default` (the previous default stays an
    /// address). `NotFound` for no such customer.
    async fn add_address(
        &mut self,
        customer_id: i64,
        address: &Address,
        make_default: bool,
        now: DateTime<Utc>,
    ) -> Result<CustomerAddress, StoreError>;
}

/// Says that a customer has no such address, and where to look.
pub(in crate::store) fn no_such_address(customer_id: i64, address_id: i64) -> StoreError {
    StoreError::NotFound(format!(
        "customer {customer_id} has no address {address_id}; see `subsave customers addresses list {customer_id}`"
    ))
}

pub(in crate::store) const ADDRESS_COLUMNS: &str = "id, customer_id, name, line1, line2, city, \
     country, subdivision, postal_code, phone, is_default, created_at";

macro_rules! addresses_sql {
    ($store:ident, $db:ty) => {
        #[async_trait::async_trait]
        impl super::AddressWrites for SqlWrite {
            async fn add_address(
                &mut self,
                customer_id: i64,
                address: &crate::core::address::Address,
                make_default: bool,
                now: DateTime<Utc>,
            ) -> Result<crate::core::model::CustomerAddress, StoreError> {
                let tx = &mut self.tx;
                customer_of(tx, customer_id).await?;
                let (held,): (i64,) =
                    sqlx::query_as("SELECT COUNT(*) FROM addresses WHERE customer_id = $1")
                        .bind(customer_id)
                        .fetch_one(&mut **tx)
                        .await?;
                let is_default = make_default || held == 0;
                if is_default {
                    sqlx::query(
                        "UPDATE addresses SET is_default = $2 WHERE customer_id = $1 AND is_default",
                    )
                    .bind(customer_id)
                    .bind(false)
                    .execute(&mut **tx)
                    .await?;
                }
                let raw = address.raw();
                let sql = format!(
                    "INSERT INTO addresses (customer_id, name, line1, line2, city, country, \
                     subdivision, postal_code, phone, is_default, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {}",
                    super::addresses::ADDRESS_COLUMNS
                );
                let record: AddressRecord = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(customer_id)
                    .bind(raw.name)
                    .bind(raw.line1)
                    .bind(raw.line2)
                    .bind(raw.city)
                    .bind(raw.country)
                    .bind(raw.subdivision)
                    .bind(raw.postal_code)
                    .bind(raw.phone)
                    .bind(is_default)
                    .bind(now)
                    .fetch_one(&mut **tx)
                    .await?;
                record.into_address()
            }
        }

        #[async_trait::async_trait]
        impl super::AddressStore for $store {
            async fn addresses(
                &self,
                customer_id: i64,
                limit: u32,
                after_id: Option<i64>,
            ) -> Result<Vec<crate::core::model::CustomerAddress>, StoreError> {
                let sql = format!(
                    "SELECT {} FROM addresses WHERE customer_id = $1 AND ($3 IS NULL OR id > $3) \
                     ORDER BY id LIMIT $2",
                    super::addresses::ADDRESS_COLUMNS
                );
                let records: Vec<AddressRecord> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(customer_id)
                    .bind(big(limit))
                    .bind(after_id)
                    .fetch_all(&self.pool)
                    .await?;
                records.into_iter().map(AddressRecord::into_address).collect()
            }

            async fn default_address(
                &self,
                customer_id: i64,
            ) -> Result<Option<crate::core::model::CustomerAddress>, StoreError> {
                let sql = format!(
                    "SELECT {} FROM addresses WHERE customer_id = $1 AND is_default",
                    super::addresses::ADDRESS_COLUMNS
                );
                let record: Option<AddressRecord> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(customer_id)
                    .fetch_optional(&self.pool)
                    .await?;
                record.map(AddressRecord::into_address).transpose()
            }

            async fn address(
                &self,
                id: i64,
            ) -> Result<Option<crate::core::model::CustomerAddress>, StoreError> {
                let sql = format!(
                    "SELECT {} FROM addresses WHERE id = $1",
                    super::addresses::ADDRESS_COLUMNS
                );
                let record: Option<AddressRecord> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                record.map(AddressRecord::into_address).transpose()
            }

            async fn subscriptions_without_address(
                &self,
                limit: u32,
            ) -> Result<(i64, Vec<i64>), StoreError> {
                let condition = "status <> 'cancelled' AND address_id IS NULL";
                let count: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
                    "SELECT COUNT(*) FROM subscriptions WHERE {condition}"
                )))
                .fetch_one(&self.pool)
                .await?;
                let ids: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
                    "SELECT id FROM subscriptions WHERE {condition} ORDER BY id LIMIT $1"
                )))
                .bind(big(limit))
                .fetch_all(&self.pool)
                .await?;
                Ok((count, ids))
            }

            async fn set_default_address(
                &self,
                customer_id: i64,
                address_id: i64,
            ) -> Result<crate::core::model::CustomerAddress, StoreError> {
                let mut tx = begin_write(self).await?;
                // Clear the old default first: the partial unique index allows one at a time.
                sqlx::query(
                    "UPDATE addresses SET is_default = $3 WHERE customer_id = $1 AND is_default AND id <> $2",
                )
                .bind(customer_id)
                .bind(address_id)
                .bind(false)
                .execute(&mut *tx)
                .await?;
                let sql = format!(
                    "UPDATE addresses SET is_default = $3 WHERE id = $2 AND customer_id = $1 RETURNING {}",
                    super::addresses::ADDRESS_COLUMNS
                );
                let record: Option<AddressRecord> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(customer_id)
                    .bind(address_id)
                    .bind(true)
                    .fetch_optional(&mut *tx)
                    .await?;
                let address = record
                    .ok_or_else(|| super::addresses::no_such_address(customer_id, address_id))?
                    .into_address()?;
                tx.commit().await?;
                Ok(address)
            }
        }
    };
}

pub(crate) use addresses_sql;
