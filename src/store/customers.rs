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
    /// Erases customer `id`'s personal data in one transaction (what replaces it is
    /// [`crate::core::privacy`]'s): the erasure row (when, by `actor`), the customer's name and
    /// email, their addresses' names, street lines and phones, the same in their orders' ship-to
    /// snapshots, and the email fields, names, street lines and phones of the outbox rows about
    /// them, whose pending or failed emails are suppressed. `NotFound` for no such customer;
    /// refused (`InvalidState`) when already erased or while a subscription of theirs is not
    /// cancelled, and then nothing changes. `reply`'s response is written in the same
    /// transaction.
    async fn erase_customer(
        &self,
        id: i64,
        actor: &str,
        now: DateTime<Utc>,
        reply: Option<super::Reply<'_, Erasure>>,
    ) -> Result<Erasure, StoreError>;
    /// When customer `id` was erased, and by whom; `None` when they were not.
    async fn erasure(&self, id: i64) -> Result<Option<(DateTime<Utc>, String)>, StoreError>;
}

/// What an erasure changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Erasure {
    pub customer_id: i64,
    pub erased_at: DateTime<Utc>,
    pub actor: String,
    /// Addresses whose names, street lines and phones were replaced.
    pub addresses: u64,
    /// Orders whose ship-to snapshots were.
    pub orders: u64,
    /// Outbox rows (emails and webhooks) whose recipient and payload were.
    pub messages: u64,
    /// Emails that were still to be sent (pending, or failed and retryable by an operator),
    /// now suppressed.
    pub suppressed: u64,
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

            async fn erase_customer(
                &self,
                id: i64,
                actor: &str,
                now: DateTime<Utc>,
                reply: Option<super::Reply<'_, super::customers::Erasure>>,
            ) -> Result<super::customers::Erasure, StoreError> {
                use crate::core::lifecycle::LifecycleError;
                use crate::core::privacy::{ERASED, erase_payload, erased_email};
                let refuse = |m: String| StoreError::Refused(LifecycleError::InvalidState(m));
                let mut tx = begin_write(self).await?;
                let customer = load_customer(&mut *tx, id).await?.ok_or_else(|| {
                    StoreError::NotFound(format!("no customer {id}; see `subsave customers list`"))
                })?;
                let inserted = sqlx::query(
                    "INSERT INTO erasures (customer_id, erased_at, actor) VALUES ($1, $2, $3) \
                     ON CONFLICT (customer_id) DO NOTHING",
                )
                .bind(id)
                .bind(now)
                .bind(actor)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 0 {
                    return Err(refuse(format!(
                        "customer {id} is already erased; nothing was changed"
                    )));
                }
                let open: Vec<i64> = sqlx::query_scalar(
                    "SELECT id FROM subscriptions WHERE customer_id = $1 AND status <> 'cancelled' ORDER BY id",
                )
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
                if let Some(first) = open.first() {
                    let ids: Vec<String> = open.iter().map(ToString::to_string).collect();
                    return Err(refuse(format!(
                        "cannot erase customer {id}: subscription {} is not cancelled; cancel it first (`subsave subs cancel {first} --reason ...`)",
                        ids.join(", ")
                    )));
                }
                let email = erased_email(id);
                sqlx::query("UPDATE customers SET name = $2, email = $3 WHERE id = $1")
                    .bind(id)
                    .bind(ERASED)
                    .bind(email.as_str())
                    .execute(&mut *tx)
                    .await?;
                let addresses = sqlx::query(
                    "UPDATE addresses SET name = $2, line1 = $2, line2 = NULL, phone = NULL \
                     WHERE customer_id = $1",
                )
                .bind(id)
                .bind(ERASED)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let orders = sqlx::query(
                    "UPDATE orders SET ship_name = $2, ship_line1 = $2, ship_line2 = NULL, \
                     ship_phone = NULL WHERE customer_id = $1 AND ship_country IS NOT NULL",
                )
                .bind(id)
                .bind(ERASED)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                // The messages about them: of their subscriptions, to their address, or naming
                // it (a webhook of theirs).
                let rows: Vec<(i64, String, String, String, Json<serde_json::Value>)> = sqlx::query_as(
                    "SELECT id, kind, status, recipient, payload FROM outbox \
                     WHERE subscription_id IN (SELECT id FROM subscriptions WHERE customer_id = $1) \
                     OR recipient = $2 OR CAST(payload AS TEXT) LIKE $3 ESCAPE '\\' ORDER BY id",
                )
                .bind(id)
                .bind(customer.email.as_str())
                .bind(super::customers::contains_pattern(customer.email.as_str()))
                .fetch_all(&mut *tx)
                .await?;
                let messages = rows.len() as u64;
                let mut suppressed = 0;
                for (message_id, kind, status, recipient, payload) in rows {
                    let email_row = kind != "webhook";
                    if email_row && matches!(status.as_str(), "pending" | "failed") {
                        suppressed += 1;
                    }
                    let recipient = if email_row { email.as_str().to_owned() } else { recipient };
                    sqlx::query(
                        "UPDATE outbox SET recipient = $2, payload = $3, \
                         last_error = CASE WHEN $4 AND status IN ('pending', 'failed') \
                             THEN 'not sent: the customer was erased' ELSE last_error END, \
                         lease_until = CASE WHEN $4 AND status IN ('pending', 'failed') \
                             THEN NULL ELSE lease_until END, \
                         status = CASE WHEN $4 AND status IN ('pending', 'failed') \
                             THEN 'suppressed' ELSE status END \
                         WHERE id = $1",
                    )
                    .bind(message_id)
                    .bind(recipient)
                    .bind(Json(erase_payload(&payload.0, id)))
                    .bind(email_row)
                    .execute(&mut *tx)
                    .await?;
                }
                let erasure = super::customers::Erasure {
                    customer_id: id,
                    erased_at: now,
                    actor: actor.to_owned(),
                    addresses,
                    orders,
                    messages,
                    suppressed,
                };
                if let Some(reply) = &reply {
                    complete_reply(&mut tx, &reply.of(&erasure), now).await?;
                }
                tx.commit().await?;
                Ok(erasure)
            }

            async fn erasure(
                &self,
                id: i64,
            ) -> Result<Option<(DateTime<Utc>, String)>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT erased_at, actor FROM erasures WHERE customer_id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
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
