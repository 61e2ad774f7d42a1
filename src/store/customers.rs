//! Customers in the store: add, change (the storefront's metadata merged under the row's
//! lock), find by id or email, list by id (by external id and `created`/`updated` ranges too),
//! erase. The SQL is written once in [`customers_sql!`] and expanded by each backend over its
//! own database type.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{StoreError, TimeRange};
use crate::core::metadata::ExternalId;
use crate::core::model::{Customer, CustomerUpdate, Email, NewCustomer};

#[async_trait]
pub trait CustomerStore: super::Writes {
    /// Adds a customer ([`CustomerWrites::add_customer`] in a transaction of its own).
    async fn add_customer(
        &self,
        new: &NewCustomer,
        now: DateTime<Utc>,
    ) -> Result<Customer, StoreError> {
        let mut tx = self.begin_write().await?;
        let customer = tx.add_customer(new, now).await?;
        tx.commit().await?;
        Ok(customer)
    }
    /// Changes a customer ([`CustomerWrites::update_customer`] in a transaction of its own).
    async fn update_customer(
        &self,
        id: i64,
        update: &CustomerUpdate,
        now: DateTime<Utc>,
    ) -> Result<Customer, StoreError> {
        let mut tx = self.begin_write().await?;
        let customer = tx.update_customer(id, update, now).await?;
        tx.commit().await?;
        Ok(customer)
    }
    async fn customer(&self, id: i64) -> Result<Option<Customer>, StoreError>;
    async fn customer_by_email(&self, email: &Email) -> Result<Option<Customer>, StoreError>;
    /// Up to `limit` customers by id, after `after_id` when given (keyset pages).
    async fn customers(
        &self,
        limit: u32,
        after_id: Option<i64>,
    ) -> Result<Vec<Customer>, StoreError> {
        self.customers_where(&CustomerFilter {
            limit,
            after_id,
            ..CustomerFilter::default()
        })
        .await
    }
    /// The customers `filter` selects, by id.
    async fn customers_where(&self, filter: &CustomerFilter) -> Result<Vec<Customer>, StoreError>;
    /// Up to `limit` customers whose address or name contains `text` (case-insensitive;
    /// `%`, `_` and `\` are plain characters), by id, after `after_id` when given.
    async fn search_customers(
        &self,
        text: &str,
        limit: u32,
        after_id: Option<i64>,
    ) -> Result<Vec<Customer>, StoreError>;
    /// When customer `id` was erased, and by whom; `None` when they were not.
    async fn erasure(&self, id: i64) -> Result<Option<(DateTime<Utc>, String)>, StoreError>;
}

/// The customers' changes, made in a write transaction ([`super::WriteTx`]).
#[async_trait]
pub trait CustomerWrites: Send {
    /// Adds a customer; a taken email is a `Conflict` that names it.
    async fn add_customer(
        &mut self,
        new: &NewCustomer,
        now: DateTime<Utc>,
    ) -> Result<Customer, StoreError>;
    /// Changes the given fields of customer `id`; `NotFound` for no such customer, `Conflict`
    /// for an email another has.
    async fn update_customer(
        &mut self,
        id: i64,
        update: &CustomerUpdate,
        now: DateTime<Utc>,
    ) -> Result<Customer, StoreError>;
    /// Erases customer `id`'s personal data (what replaces it is
    /// [`crate::core::privacy`]'s): the erasure row (when, by `actor`), the customer's name and
    /// email, their addresses' names, street lines and phones, the same in their orders' ship-to
    /// snapshots, and the email fields, names, street lines and phones of the outbox rows about
    /// them, whose pending or failed emails are suppressed. `NotFound` for no such customer;
    /// refused (`InvalidState`) when already erased or while a subscription of theirs is not
    /// cancelled, and then nothing changes.
    async fn erase_customer(
        &mut self,
        id: i64,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Erasure, StoreError>;
}

/// Which customers a list returns, by id.
#[derive(Debug, Clone, Default)]
pub struct CustomerFilter {
    pub external_id: Option<ExternalId>,
    pub created: TimeRange,
    pub updated: TimeRange,
    pub limit: u32,
    /// Only ids after this one (keyset pages).
    pub after_id: Option<i64>,
}

impl CustomerFilter {
    /// Whether `customer` passes the filter's external id and ranges (not its page): for a
    /// customer found otherwise, by email.
    pub fn admits(&self, customer: &Customer) -> bool {
        self.external_id
            .as_ref()
            .is_none_or(|id| customer.external_id.as_ref() == Some(id))
            && self.created.contains(customer.created_at)
            && self.updated.contains(customer.updated_at)
    }
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

pub(in crate::store) const CUSTOMER_SELECT: &str = "SELECT id, email, name, time_zone, locale, \
     tax_region, external_id, metadata, created_at, updated_at FROM customers";

pub(in crate::store) const INSERT_CUSTOMER: &str = "INSERT INTO customers (email, name, time_zone, \
     locale, tax_region, external_id, metadata, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id, email, name, \
     time_zone, locale, tax_region, external_id, metadata, created_at, updated_at";

/// The customers a [`CustomerFilter`] selects: `$1` limit, `$2` after id, `$3` external id,
/// `$4`-`$7` the created and updated ranges.
pub(in crate::store) const CUSTOMER_FILTER: &str = " WHERE ($2 IS NULL OR id > $2) \
     AND ($3 IS NULL OR external_id = $3) \
     AND ($4 IS NULL OR created_at >= $4) AND ($5 IS NULL OR created_at < $5) \
     AND ($6 IS NULL OR updated_at >= $6) AND ($7 IS NULL OR updated_at < $7) \
     ORDER BY id LIMIT $1";

/// Maps a violation of the external id's unique index to a conflict naming it (another `kind`,
/// customer or subscription, has `id`), and any other error through `other`.
pub(in crate::store) fn taken<'a>(
    kind: &'a str,
    id: Option<&'a ExternalId>,
    other: impl FnOnce(sqlx::Error) -> StoreError + 'a,
) -> impl FnOnce(sqlx::Error) -> StoreError + 'a {
    move |error| {
        let external_id = error.as_database_error().is_some_and(|db| {
            db.constraint().is_some_and(|c| c.contains("external_id"))
                || db.message().contains(".external_id")
        });
        if external_id {
            StoreError::Conflict(format!(
                "external_id \"{}\": another {kind} has it; external ids are unique per {kind} (find it with ?external_id=)",
                id.map_or("", ExternalId::as_str)
            ))
        } else {
            other(error)
        }
    }
}

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

        /// The metadata of row `id` of `table` (customers, subscriptions) with `patch` merged
        /// in, its row locked for the rest of `tx`: `Some(None)` when the patch is empty (the
        /// row exists, nothing is read), `None` when there is no such row; refused when the
        /// merged map is out of bounds.
        async fn locked_metadata(
            tx: &mut Transaction<'static, $db>,
            table: &str,
            id: i64,
            patch: &crate::core::metadata::MetadataPatch,
        ) -> Result<Option<Option<crate::core::metadata::Metadata>>, StoreError> {
            let sql = format!("SELECT id, metadata FROM {table} WHERE id = $1{ROW_LOCK}");
            let row: Option<(i64, String)> = sqlx::query_as(AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?;
            let Some((id, text)) = row else {
                return Ok(None);
            };
            if patch.is_empty() {
                return Ok(Some(None));
            }
            let current = super::records::stored_metadata(table, id, &text)?;
            let merged = current.merged(patch).map_err(|e| {
                StoreError::Refused(crate::core::lifecycle::LifecycleError::InvalidInput(
                    e.to_string(),
                ))
            })?;
            Ok(Some(Some(merged)))
        }

        #[async_trait::async_trait]
        impl super::CustomerWrites for SqlWrite {
            async fn add_customer(
                &mut self,
                new: &NewCustomer,
                now: DateTime<Utc>,
            ) -> Result<Customer, StoreError> {
                let tx = &mut self.tx;
                let record: CustomerRecord = sqlx::query_as(super::customers::INSERT_CUSTOMER)
                    .bind(new.email.as_str())
                    .bind(&new.name)
                    .bind(new.time_zone.name())
                    .bind(&new.locale)
                    .bind(&new.tax_region)
                    .bind(new.external_id.as_ref().map(|e| e.as_str().to_owned()))
                    .bind(metadata_text(&new.metadata))
                    .bind(now)
                    .fetch_one(&mut **tx)
                    .await
                    .map_err(super::customers::taken(
                        "customer",
                        new.external_id.as_ref(),
                        conflict_as(|| {
                            format!(
                                "a customer with email {} already exists; see `subsave customers show {}`",
                                new.email, new.email
                            )
                        }),
                    ))?;
                record.into_customer()
            }

            async fn update_customer(
                &mut self,
                id: i64,
                update: &CustomerUpdate,
                now: DateTime<Utc>,
            ) -> Result<Customer, StoreError> {
                let tx = &mut self.tx;
                let no_customer = || {
                    StoreError::NotFound(format!("no customer {id}; see `subsave customers list`"))
                };
                let metadata = locked_metadata(tx, "customers", id, &update.storefront.metadata)
                    .await?
                    .ok_or_else(no_customer)?;
                let external_id = &update.storefront.external_id;
                let record: Option<CustomerRecord> = sqlx::query_as(
                    "UPDATE customers SET email = COALESCE($2, email), name = COALESCE($3, name), \
                     time_zone = COALESCE($4, time_zone), locale = COALESCE($5, locale), \
                     tax_region = CASE WHEN $6 THEN $7 ELSE tax_region END, \
                     external_id = CASE WHEN $8 THEN $9 ELSE external_id END, \
                     metadata = COALESCE($10, metadata), updated_at = $11 WHERE id = $1 \
                     RETURNING id, email, name, time_zone, locale, tax_region, external_id, \
                     metadata, created_at, updated_at",
                )
                .bind(id)
                .bind(update.email.as_ref().map(|e| e.as_str().to_owned()))
                .bind(update.name.clone())
                .bind(update.time_zone.map(|tz| tz.name().to_owned()))
                .bind(update.locale.clone())
                .bind(update.tax_region.is_some())
                .bind(update.tax_region.clone().flatten())
                .bind(external_id.is_some())
                .bind(external_id.clone().flatten().map(|e| e.as_str().to_owned()))
                .bind(metadata.map(|m| metadata_text(&m)))
                .bind(now)
                .fetch_optional(&mut **tx)
                .await
                .map_err(super::customers::taken(
                    "customer",
                    external_id.as_ref().and_then(Option::as_ref),
                    conflict_as(|| {
                        format!(
                            "another customer has the email {}",
                            update.email.as_ref().map_or("", |e| e.as_str())
                        )
                    }),
                ))?;
                record.ok_or_else(no_customer)?.into_customer()
            }

            async fn erase_customer(
                &mut self,
                id: i64,
                actor: &str,
                now: DateTime<Utc>,
            ) -> Result<super::customers::Erasure, StoreError> {
                use crate::core::lifecycle::LifecycleError;
                use crate::core::privacy::{ERASED, erase_payload, erased_email};
                let refuse = |m: String| StoreError::Refused(LifecycleError::InvalidState(m));
                let tx = &mut self.tx;
                let customer = load_customer(&mut **tx, id).await?.ok_or_else(|| {
                    StoreError::NotFound(format!("no customer {id}; see `subsave customers list`"))
                })?;
                let inserted = sqlx::query(
                    "INSERT INTO erasures (customer_id, erased_at, actor) VALUES ($1, $2, $3) \
                     ON CONFLICT (customer_id) DO NOTHING",
                )
                .bind(id)
                .bind(now)
                .bind(actor)
                .execute(&mut **tx)
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
                .fetch_all(&mut **tx)
                .await?;
                if let Some(first) = open.first() {
                    let ids: Vec<String> = open.iter().map(ToString::to_string).collect();
                    return Err(refuse(format!(
                        "cannot erase customer {id}: subscription {} is not cancelled; cancel it first (`subsave subs cancel {first} --reason ...`)",
                        ids.join(", ")
                    )));
                }
                let email = erased_email(id);
                // A storefront's metadata may hold anything about the person: it goes too.
                sqlx::query(
                    "UPDATE customers SET name = $2, email = $3, metadata = '{}', updated_at = $4 \
                     WHERE id = $1",
                )
                .bind(id)
                .bind(ERASED)
                .bind(email.as_str())
                .bind(now)
                .execute(&mut **tx)
                .await?;
                sqlx::query("UPDATE subscriptions SET metadata = '{}' WHERE customer_id = $1")
                    .bind(id)
                    .execute(&mut **tx)
                    .await?;
                let addresses = sqlx::query(
                    "UPDATE addresses SET name = $2, line1 = $2, line2 = NULL, phone = NULL \
                     WHERE customer_id = $1",
                )
                .bind(id)
                .bind(ERASED)
                .execute(&mut **tx)
                .await?
                .rows_affected();
                let orders = sqlx::query(
                    "UPDATE orders SET ship_name = $2, ship_line1 = $2, ship_line2 = NULL, \
                     ship_phone = NULL WHERE customer_id = $1 AND ship_country IS NOT NULL",
                )
                .bind(id)
                .bind(ERASED)
                .execute(&mut **tx)
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
                .fetch_all(&mut **tx)
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
                    .execute(&mut **tx)
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
                Ok(erasure)
            }
        }

        #[async_trait::async_trait]
        impl super::CustomerStore for $store {
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

            async fn customers_where(
                &self,
                filter: &super::customers::CustomerFilter,
            ) -> Result<Vec<Customer>, StoreError> {
                let sql = format!(
                    "{}{}",
                    super::customers::CUSTOMER_SELECT,
                    super::customers::CUSTOMER_FILTER
                );
                let records: Vec<CustomerRecord> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(big(filter.limit))
                    .bind(filter.after_id)
                    .bind(filter.external_id.as_ref().map(|e| e.as_str().to_owned()))
                    .bind(filter.created.from)
                    .bind(filter.created.before)
                    .bind(filter.updated.from)
                    .bind(filter.updated.before)
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
