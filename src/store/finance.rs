//! Finance reads in the store: the streamed `finance_orders` export, the live subscriptions
//! the forecast replays, and the ledger audit's checks. Read only. The SQL is written once in
//! [`finance_sql!`]; the views themselves are in the migrations.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::StoreError;
use crate::model::{Customer, Subscription};

/// One row of the `finance_orders` view: amounts in minor units of `currency`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct FinanceOrder {
    pub order_number: String,
    pub order_id: i64,
    pub created_at: DateTime<Utc>,
    pub billing_date: NaiveDate,
    pub customer_id: i64,
    pub customer_email: String,
    pub tax_region: Option<String>,
    pub plan: String,
    pub packs: i64,
    pub quantity: i64,
    pub currency: String,
    pub subtotal_minor: i64,
    pub subscribe_and_save_discount_minor: i64,
    pub loyalty_discount_minor: i64,
    pub coupon_discount_minor: i64,
    pub coupon_code: Option<String>,
    pub shipping_minor: i64,
    pub tax_minor: i64,
    pub tax_inclusive: bool,
    pub total_minor: i64,
    /// Not charged because the reminder promised a lower total (a `price_promise` line).
    pub price_promise_discount_minor: i64,
    /// Tax added on top of the price (exclusive regions).
    pub tax_added_minor: i64,
    /// Tax contained in the price (inclusive regions).
    pub tax_included_minor: i64,
    /// The tax rate in basis points (unknown for orders written before it was kept and
    /// taxed on top).
    pub tax_rate_bp: Option<i64>,
    /// What was charged less all tax: revenue net of tax.
    pub net_of_tax_minor: i64,
}

#[async_trait]
pub trait FinanceStore: Send + Sync {
    /// Streams `finance_orders` rows with a billing date in `from..=to`, ordered by billing
    /// date and order id, into `sink`, one row at a time (memory stays flat); returns the
    /// count. A sink that fails stops the export with [`StoreError::Sink`].
    async fn export_orders(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        sink: &mut (dyn FnMut(FinanceOrder) -> std::io::Result<()> + Send),
    ) -> Result<u64, StoreError>;

    /// Active and paused subscriptions with their customers, `limit` at a time, by id after
    /// `after_id` (keyset pages, for the forecast).
    async fn live_subscriptions(
        &self,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<(Subscription, Customer)>, StoreError>;

    /// The ledger's broken invariants, each as (check, offending keys), at most `limit` keys
    /// per check. Confirmations are checked for orders created at or after
    /// `confirmations_since` (older ones may have been purged with `outbox.retain_days`).
    async fn audit(
        &self,
        limit: u32,
        confirmations_since: DateTime<Utc>,
    ) -> Result<Vec<(String, Vec<String>)>, StoreError>;

    /// Distinct plan ids that orders reference.
    async fn ordered_plans(&self) -> Result<Vec<String>, StoreError>;
}

pub(in crate::store) const EXPORT_ORDERS: &str = "SELECT order_number, order_id, created_at, \
     billing_date, customer_id, customer_email, tax_region, plan, packs, quantity, currency, \
     subtotal_minor, subscribe_and_save_discount_minor, loyalty_discount_minor, \
     coupon_discount_minor, coupon_code, shipping_minor, tax_minor, tax_inclusive, total_minor, \
     price_promise_discount_minor, tax_added_minor, tax_included_minor, tax_rate_bp, \
     net_of_tax_minor \
     FROM finance_orders WHERE billing_date >= $1 AND billing_date <= $2 \
     ORDER BY billing_date, order_id";

/// Each audit check, the query that lists at most `$1` of its offenders, and whether it
/// takes `$2`: the oldest order whose confirmation must still be in the outbox.
pub(in crate::store) const AUDIT_CHECKS: [(&str, &str, bool); 4] = [
    (
        "order lines do not sum to the order total",
        "SELECT o.order_number FROM orders o LEFT JOIN order_lines l ON l.order_id = o.id \
         GROUP BY o.id, o.order_number, o.total_minor \
         HAVING COALESCE(SUM(l.amount_minor), 0) <> o.total_minor ORDER BY o.id LIMIT $1",
        false,
    ),
    (
        "more than one order for a (subscription, cycle)",
        "SELECT MIN(order_number) FROM orders GROUP BY subscription_id, cycle \
         HAVING COUNT(*) > 1 ORDER BY 1 LIMIT $1",
        false,
    ),
    (
        "order without its confirmation message",
        "SELECT o.order_number FROM orders o WHERE o.created_at >= $2 AND NOT EXISTS \
         (SELECT 1 FROM outbox m WHERE m.order_id = o.id AND m.kind = 'order_confirmation') \
         ORDER BY o.id LIMIT $1",
        true,
    ),
    (
        "active subscription without a next renewal",
        "SELECT 'subscription ' || id FROM subscriptions \
         WHERE status = 'active' AND next_renewal_at IS NULL ORDER BY id LIMIT $1",
        false,
    ),
];

macro_rules! finance_sql {
    ($store:ident, $db:ty) => {
        #[async_trait::async_trait]
        impl super::FinanceStore for $store {
            async fn export_orders(
                &self,
                from: chrono::NaiveDate,
                to: chrono::NaiveDate,
                sink: &mut (dyn FnMut(super::FinanceOrder) -> std::io::Result<()> + Send),
            ) -> Result<u64, StoreError> {
                use futures_util::TryStreamExt;
                let mut rows =
                    sqlx::query_as::<_, super::FinanceOrder>(super::finance::EXPORT_ORDERS)
                        .bind(from)
                        .bind(to)
                        .fetch(&self.pool);
                let mut count = 0;
                while let Some(row) = rows.try_next().await? {
                    sink(row).map_err(StoreError::Sink)?;
                    count += 1;
                }
                Ok(count)
            }

            async fn live_subscriptions(
                &self,
                after_id: i64,
                limit: u32,
            ) -> Result<Vec<(Subscription, Customer)>, StoreError> {
                let rows = sqlx::query(AssertSqlSafe(super::subscriptions::with_customers(
                    "WHERE s.status <> 'cancelled' AND s.id > $1 ORDER BY s.id LIMIT $2",
                )))
                .bind(after_id)
                .bind(big(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(parse_claimed).collect()
            }

            async fn audit(
                &self,
                limit: u32,
                confirmations_since: DateTime<Utc>,
            ) -> Result<Vec<(String, Vec<String>)>, StoreError> {
                let mut findings = Vec::new();
                for (check, sql, takes_cutoff) in super::finance::AUDIT_CHECKS {
                    let mut query = sqlx::query_scalar(sql).bind(big(limit));
                    if takes_cutoff {
                        query = query.bind(confirmations_since);
                    }
                    let keys: Vec<String> = query.fetch_all(&self.pool).await?;
                    findings.push((check.to_owned(), keys));
                }
                Ok(findings)
            }

            async fn ordered_plans(&self) -> Result<Vec<String>, StoreError> {
                Ok(
                    sqlx::query_scalar("SELECT DISTINCT plan_id FROM orders ORDER BY 1")
                        .fetch_all(&self.pool)
                        .await?,
                )
            }
        }
    };
}

pub(crate) use finance_sql;
