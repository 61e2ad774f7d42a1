//! Customers in the store: add, find by id or email, list by id. The SQL is written once in
//! [`customers_sql!`] and expanded by each backend over its own database type.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::core::model::{Customer, CustomerUpdate, Email, NewCustomer};

#[async_trait]
pub trait CustomerStore: Send + Sync {
    /// Adds a customer; a taken email is a `Conflict` that names it.
    async fn add_customer(
        &self,
        new: &NewCustomer,
        now: DateTime<Utc>,
    ) -> Result<Customer, StoreError> {
        self.add_customer_replying(new, now, None).await
    }
    /// [`CustomerStore::add_customer`], writing `reply`'s response in the same transaction.
    async fn add_customer_replying(
        &self,
        new: &NewCustomer,
        now: DateTime<Utc>,
        reply: Option<super::Reply<'_, Customer>>,
    ) -> Result<Customer, StoreError>;
    /// Changes the given fields of customer `id`, writing `reply`'s response in the same
    /// transaction; `NotFound` for no such customer, `Conflict` for an email another has.
    async fn update_customer_replying(
        &self,
        id: i64,
        update: &CustomerUpdate,
        now: DateTime<Utc>,
        reply: Option<super::Reply<'_, Customer>>,
    ) -> Result<Customer, StoreError>;
    async fn customer(&self, id: i64) -> Result<Option<Customer>, StoreError>;
    async fn customer_by_email(&self, email: &Email) -> Result<Option<Customer>, StoreError>;
    /// Up to `limit` customers by id, after `after_id` when given (keyset pages).
    async fn customers(
        &self,
        limit: u32,
        after_id: Option<i64>,
    ) -> Result<Vec<Customer>, StoreError>;
    /// Up to `limit` customers whose address or name contains `text` (case-insensitive;
    /// `%`, `_` and `\` are plain characters), by id, after `after_id` when given.
    async fn search_customers(
        &self,
        text: &str,
        limit: u32,
        after_id: Option<i64>,
    ) -> Result<Vec<Customer>, StoreError>;
}

/// A LIKE pattern matching `text` anywhere, lower-cased, its wildcards escaped with `\`.
pub(in crate::store) fn contains_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

pub(in crate::store) const CUSTOMER_SELECT: &str =
    "SELECT id, email, name, time_zone, locale, tax_region, created_at FROM customers";

pub(in crate::store) const INSERT_CUSTOMER: &str = "INSERT INTO customers (email, name, time_zone, \
     locale, tax_region, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, email, name, \
     time_zone, locale, tax_region, created_at";

macro_rules! customers_sql {
    ($store:ident, $db:ty) => {
        /// One customer, inside a transaction or straight from the pool.
        async fn load_customer<'e>(
            executor: impl sqlx::Executor<'e, Database = $db>,
            id: i64,
        ) -> Result<Option<Customer>, StoreError> {
            let sql = format!("{} WHERE id = $1", super::customers::CUSTOMER_SELECT);
            let record: Option<CustomerRecord> = sqlx::query_as(AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(executor)
                .await?;
            record.map(CustomerRecord::into_customer).transpose()
        }

        #[async_trait::async_trait]
        impl super::CustomerStore for $store {
            async fn add_customer_replying(
                &self,
                new: &NewCustomer,
                now: DateTime<Utc>,
                reply: Option<super::Reply<'_, Customer>>,
            ) -> Result<Customer, StoreError> {
                let mut tx = begin_write(self).await?;
                let record: CustomerRecord = sqlx::query_as(super::customers::INSERT_CUSTOMER)
                    .bind(new.email.as_str())
                    .bind(&new.name)
                    .bind(new.time_zone.name())
                    .bind(&new.locale)
                    .bind(&new.tax_region)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(conflict_as(|| {
                        format!(
                            "a customer with email {} already exists; see `subsave customers show {}`",
                            new.email, new.email
                        )
                    }))?;
                let customer = record.into_customer()?;
                if let Some(reply) = &reply {
                    complete_reply(&mut tx, &reply.of(&customer), now).await?;
                }
                tx.commit().await?;
                Ok(customer)
            }

            async fn update_customer_replying(
                &self,
                id: i64,
                update: &CustomerUpdate,
                now: DateTime<Utc>,
                reply: Option<super::Reply<'_, Customer>>,
            ) -> Result<Customer, StoreError> {
                let mut tx = begin_write(self).await?;
                let record: Option<CustomerRecord> = sqlx::query_as(
                    "UPDATE customers SET email = COALESCE($2, email), name = COALESCE($3, name), \
                     time_zone = COALESCE($4, time_zone), locale = COALESCE($5, locale), \
                     tax_region = CASE WHEN $6 THEN $7 ELSE tax_region END WHERE id = $1 \
                     RETURNING id, email, name, time_zone, locale, tax_region, created_at",
                )
                .bind(id)
                .bind(update.email.as_ref().map(|e| e.as_str().to_owned()))
                .bind(update.name.clone())
                .bind(update.time_zone.map(|tz| tz.name().to_owned()))
                .bind(update.locale.clone())
                .bind(update.tax_region.is_some())
                .bind(update.tax_region.clone().flatten())
                .fetch_optional(&mut *tx)
                .await
                .map_err(conflict_as(|| {
                    format!(
                        "another customer has the email {}",
                        update.email.as_ref().map_or("", |e| e.as_str())
                    )
                }))?;
                let customer = record
                    .ok_or_else(|| {
                        StoreError::NotFound(format!(
                            "no customer {id}; see `subsave customers list`"
                        ))
                    })?
                    .into_customer()?;
                if let Some(reply) = &reply {
                    complete_reply(&mut tx, &reply.of(&customer), now).await?;
                }
                tx.commit().await?;
                Ok(customer)
            }

            async fn customer(&self, id: i64) -> Result<Option<Customer>, StoreError> {
                load_customer(&self.pool, id).await
            }

            async fn customer_by_email(&self, email: &Email) -> Result<Option<Customer>, StoreError> {
                let sql = format!("{} WHERE email = $1", super::customers::CUSTOMER_SELECT);
                let record: Option<CustomerRecord> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(email.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
                record.map(CustomerRecord::into_customer).transpose()
            }

            async fn customers(
                &self,
                limit: u32,
                after_id: Option<i64>,
            ) -> Result<Vec<Customer>, StoreError> {
                let sql = format!(
                    "{} WHERE ($2 IS NULL OR id > $2) ORDER BY id LIMIT $1",
                    super::customers::CUSTOMER_SELECT
                );
                let records: Vec<CustomerRecord> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(big(limit))
                    .bind(after_id)
                    .fetch_all(&self.pool)
                    .await?;
                records
                    .into_iter()
                    .map(CustomerRecord::into_customer)
                    .collect()
            }

            async fn search_customers(
                &self,
                text: &str,
                limit: u32,
                after_id: Option<i64>,
            ) -> Result<Vec<Customer>, StoreError> {
                let sql = format!(
                    "{} WHERE (email LIKE $1 ESCAPE '\\' OR LOWER(name) LIKE $1 ESCAPE '\\') \
                     AND ($3 IS NULL OR id > $3) ORDER BY id LIMIT $2",
                    super::customers::CUSTOMER_SELECT
                );
                let records: Vec<CustomerRecord> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(super::customers::contains_pattern(text))
                    .bind(big(limit))
                    .bind(after_id)
                    .fetch_all(self.reader(true))
                    .await?;
                records
                    .into_iter()
                    .map(CustomerRecord::into_customer)
                    .collect()
            }
        }
    };
}

pub(crate) use customers_sql;

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn wildcards_are_plain_in_a_search() {
        assert_eq!(contains_pattern("Ada"), "%ada%");
        assert_eq!(contains_pattern("100%_x\\"), "%100\\%\\_x\\\\%");
        assert_eq!(contains_pattern("'; DROP"), "%'; drop%");
    }
}
