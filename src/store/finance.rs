//! Finance reads in the store: the streamed `finance_orders` export, the live subscriptions
//! the forecast replays, the ledger audit's checks and the business metrics' history. Read
//! only, but for the metrics reports the console keeps (derived data, written whole). The SQL
//! is written once in [`finance_sql!`]; the views themselves are in the migrations.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::StoreError;
use crate::core::metrics::{BilledOrder, CustomerEvent, DeclinedPayment};
use crate::core::model::{Customer, Subscription};

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
    /// Where the order ships (ISO 3166-1 alpha-2; none before addresses existed).
    pub ship_country: Option<String>,
    /// The ship-to ISO 3166-2 subdivision (`US-CA`), when the address has one.
    pub ship_subdivision: Option<String>,
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

    /// Credit notes with a billing date in `from..=to`, with their order's plan and region.
    async fn credit_note_rows(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<FinanceCreditNote>, StoreError>;

    /// Per billing date and currency in `from..=to`: orders billed and how their payments
    /// stand, and the credit notes booked that day.
    async fn payment_days(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<PaymentDay>, StoreError>;

    /// The payments the journal books for `from..=to`: those collected by the provider at or
    /// after `paid_from` and before `paid_before` (the period's days in the finance time
    /// zone), and the storefront's (`external`) of orders billed in the period.
    async fn journal_payments(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        paid_from: DateTime<Utc>,
        paid_before: DateTime<Utc>,
    ) -> Result<Vec<JournalPayment>, StoreError>;

    /// What the business metrics read of subscriptions' history: the events that record a
    /// state (creation and every lifecycle operation) or dunning's `past_due`, before
    /// `before`, with each subscription's customer, in the order they were written, streamed
    /// into `sink` one at a time.
    async fn metric_events(
        &self,
        before: DateTime<Utc>,
        sink: &mut (dyn FnMut(CustomerEvent) + Send),
    ) -> Result<(), StoreError>;

    /// Every order billed up to `to` (its billing date), with its subscription and its
    /// revenue net of tax as `finance_orders` has it, by billing date, then creation, streamed
    /// into `sink` one at a time.
    async fn billed_orders(
        &self,
        to: NaiveDate,
        sink: &mut (dyn FnMut(BilledOrder) + Send),
    ) -> Result<(), StoreError>;

    /// Payments of orders billed in `from..=to` that were declined at least once.
    async fn declined_payments(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DeclinedPayment>, StoreError>;

    /// The metrics report of `from..=to` kept by [`FinanceStore::keep_metrics_report`], and
    /// when it was computed; `None` if none is kept. Read from the primary (a replica may not
    /// have it yet).
    async fn kept_metrics_report(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Option<(DateTime<Utc>, String)>, StoreError>;

    /// Keeps `report` (serialized) as `from..=to`'s, computed at `computed_at`, in place of
    /// the one kept; then keeps only the `kept_max` most recently computed reports.
    async fn keep_metrics_report(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        computed_at: DateTime<Utc>,
        report: &str,
        kept_max: u32,
    ) -> Result<(), StoreError>;
}

pub(in crate::store) const KEPT_METRICS_REPORT: &str = "SELECT computed_at, report FROM metrics_reports \
     WHERE period_from = $1 AND period_to = $2";

pub(in crate::store) const KEEP_METRICS_REPORT: &str = "INSERT INTO metrics_reports \
     (period_from, period_to, computed_at, report) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (period_from, period_to) \
     DO UPDATE SET computed_at = excluded.computed_at, report = excluded.report";

pub(in crate::store) const FORGET_OLD_METRICS_REPORTS: &str = "DELETE FROM metrics_reports \
     WHERE (period_from, period_to) NOT IN \
     (SELECT period_from, period_to FROM metrics_reports ORDER BY computed_at DESC LIMIT $1)";

/// One row of the `finance_credit_notes` view, with the order's plan and region.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct FinanceCreditNote {
    pub number: String,
    pub order_number: String,
    pub order_id: i64,
    pub billing_date: NaiveDate,
    pub created_at: DateTime<Utc>,
    pub currency: String,
    pub amount_minor: i64,
    pub tax_minor: i64,
    pub net_of_tax_minor: i64,
    pub reason: String,
    pub provider_refund_ref: Option<String>,
    pub actor: String,
    pub plan: String,
    pub tax_region: Option<String>,
}

/// A payment as the journal books it: collected by the provider (on the day it was paid) or
/// by the storefront (`external`, on the order's billing date).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct JournalPayment {
    pub order_number: String,
    pub billing_date: NaiveDate,
    pub currency: String,
    pub status: String,
    pub amount_minor: i64,
    pub paid_at: Option<DateTime<Utc>>,
    pub fee_minor: Option<i64>,
}

/// One day of the payments reconciliation, in minor units of `currency`.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct PaymentDay {
    pub billing_date: NaiveDate,
    pub currency: String,
    /// Orders billed that day, and their totals.
    pub orders: i64,
    pub billed_minor: i64,
    /// Collected by the provider (refunds since included), and the provider's fees.
    pub paid_minor: i64,
    pub fees_minor: i64,
    /// Not collected yet: pending, waiting for the customer, or declined.
    pub outstanding_minor: i64,
    /// Collected by the storefront (`external`).
    pub external_minor: i64,
    /// Credit notes booked that day.
    pub refunded_minor: i64,
}

/// The event kinds that record a subscription's state (`detail.after`), and `past_due`.
pub(in crate::store) const METRIC_EVENTS: &str = "SELECT e.id, e.subscription_id, e.kind, \
     e.actor, e.at, e.cycle, e.detail, s.customer_id FROM subscription_events e \
     JOIN subscriptions s ON s.id = e.subscription_id \
     WHERE e.at < $1 AND e.kind IN ('created', 'skip', 'pause', 'resume', 'auto_resume', \
     'cancel', 'change', 'reschedule', 'renew-now', 'past_due') ORDER BY e.id";

pub(in crate::store) const BILLED_ORDERS: &str = "SELECT o.subscription_id, f.customer_id, \
     f.billing_date, f.created_at, f.currency, f.net_of_tax_minor \
     FROM finance_orders f JOIN orders o ON o.id = f.order_id WHERE f.billing_date <= $1 \
     ORDER BY f.billing_date, f.created_at, f.order_id";

pub(in crate::store) const DECLINED_PAYMENTS: &str = "SELECT o.order_number, p.subscription_id, \
     o.billing_date, p.currency, p.amount_minor, p.status, \
     CAST(CASE WHEN p.next_attempt_at IS NOT NULL OR p.status IN ('pending', 'requires_action') \
     THEN 1 ELSE 0 END AS BIGINT) AS retrying \
     FROM payments p JOIN orders o ON o.id = p.order_id \
     WHERE o.billing_date >= $1 AND o.billing_date <= $2 AND EXISTS \
     (SELECT 1 FROM payment_attempts a WHERE a.payment_id = p.id AND a.outcome = 'declined') \
     ORDER BY o.billing_date, o.id";

pub(in crate::store) const EXPORT_ORDERS: &str = "SELECT order_number, order_id, created_at, \
     billing_date, customer_id, customer_email, tax_region, plan, packs, quantity, currency, \
     subtotal_minor, subscribe_and_save_discount_minor, loyalty_discount_minor, \
     coupon_discount_minor, coupon_code, shipping_minor, tax_minor, tax_inclusive, total_minor, \
     price_promise_discount_minor, tax_added_minor, tax_included_minor, tax_rate_bp, \
     net_of_tax_minor, ship_country, ship_subdivision \
     FROM finance_orders WHERE billing_date >= $1 AND billing_date <= $2 \
     ORDER BY billing_date, order_id";

/// Each audit check, the query that lists at most `$1` of its offenders, and whether it
/// takes `$2`: the oldest order whose confirmation must still be in the outbox.
pub(in crate::store) const AUDIT_CHECKS: [(&str, &str, bool); 8] = [
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
        "order without its payment",
        "SELECT o.order_number FROM orders o WHERE NOT EXISTS \
         (SELECT 1 FROM payments p WHERE p.order_id = o.id) ORDER BY o.id LIMIT $1",
        false,
    ),
    (
        "payment amount differs from its order's total",
        "SELECT o.order_number FROM payments p JOIN orders o ON o.id = p.order_id \
         WHERE p.amount_minor <> o.total_minor ORDER BY o.id LIMIT $1",
        false,
    ),
    (
        "credit notes do not add up to their payment's refunded amount",
        "SELECT o.order_number FROM payments p JOIN orders o ON o.id = p.order_id \
         LEFT JOIN credit_notes n ON n.payment_id = p.id \
         GROUP BY p.id, o.id, o.order_number, p.refunded_minor \
         HAVING COALESCE(SUM(n.amount_minor), 0) <> p.refunded_minor ORDER BY o.id LIMIT $1",
        false,
    ),
    (
        "credit note lines do not sum to the credit note's amount",
        "SELECT n.number FROM credit_notes n LEFT JOIN credit_note_lines l ON l.credit_note_id = n.id \
         GROUP BY n.id, n.number, n.amount_minor \
         HAVING COALESCE(SUM(l.amount_minor), 0) <> n.amount_minor ORDER BY n.id LIMIT $1",
        false,
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
                        .fetch(&self.read_pool);
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
                .fetch_all(&self.read_pool)
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
                    let keys: Vec<String> = query.fetch_all(&self.read_pool).await?;
                    findings.push((check.to_owned(), keys));
                }
                Ok(findings)
            }

            async fn credit_note_rows(
                &self,
                from: chrono::NaiveDate,
                to: chrono::NaiveDate,
            ) -> Result<Vec<super::FinanceCreditNote>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT n.number, n.order_number, n.order_id, n.billing_date, n.created_at, \
                     n.currency, n.amount_minor, n.tax_minor, n.net_of_tax_minor, n.reason, \
                     n.provider_refund_ref, n.actor, o.plan_id AS plan, o.tax_region \
                     FROM finance_credit_notes n JOIN orders o ON o.id = n.order_id \
                     WHERE n.billing_date >= $1 AND n.billing_date <= $2 \
                     ORDER BY n.billing_date, n.number",
                )
                .bind(from)
                .bind(to)
                .fetch_all(&self.read_pool)
                .await?)
            }

            async fn payment_days(
                &self,
                from: chrono::NaiveDate,
                to: chrono::NaiveDate,
            ) -> Result<Vec<super::PaymentDay>, StoreError> {
                let mut days: Vec<super::PaymentDay> = sqlx::query_as(
                    "SELECT billing_date, currency, COUNT(*) AS orders, \
                     CAST(SUM(total_minor) AS BIGINT) AS billed_minor, \
                     CAST(SUM(paid_minor) AS BIGINT) AS paid_minor, \
                     CAST(SUM(COALESCE(fee_minor, 0)) AS BIGINT) AS fees_minor, \
                     CAST(SUM(outstanding_minor) AS BIGINT) AS outstanding_minor, \
                     CAST(SUM(CASE WHEN status = 'external' THEN total_minor ELSE 0 END) AS BIGINT) AS external_minor, \
                     CAST(0 AS BIGINT) AS refunded_minor \
                     FROM finance_payments WHERE billing_date >= $1 AND billing_date <= $2 \
                     GROUP BY billing_date, currency",
                )
                .bind(from)
                .bind(to)
                .fetch_all(&self.read_pool)
                .await?;
                let refunds: Vec<(chrono::NaiveDate, String, i64)> = sqlx::query_as(
                    "SELECT billing_date, currency, CAST(SUM(amount_minor) AS BIGINT) FROM credit_notes \
                     WHERE billing_date >= $1 AND billing_date <= $2 GROUP BY billing_date, currency",
                )
                .bind(from)
                .bind(to)
                .fetch_all(&self.read_pool)
                .await?;
                for (billing_date, currency, amount) in refunds {
                    match days
                        .iter_mut()
                        .find(|d| d.billing_date == billing_date && d.currency == currency)
                    {
                        Some(day) => day.refunded_minor += amount,
                        None => days.push(super::PaymentDay {
                            billing_date,
                            currency,
                            refunded_minor: amount,
                            ..Default::default()
                        }),
                    }
                }
                days.sort_by(|a, b| (a.billing_date, &a.currency).cmp(&(b.billing_date, &b.currency)));
                Ok(days)
            }

            async fn journal_payments(
                &self,
                from: chrono::NaiveDate,
                to: chrono::NaiveDate,
                paid_from: DateTime<Utc>,
                paid_before: DateTime<Utc>,
            ) -> Result<Vec<super::JournalPayment>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT order_number, billing_date, currency, status, total_minor AS amount_minor, \
                     paid_at, fee_minor FROM finance_payments \
                     WHERE (status = 'external' AND billing_date >= $1 AND billing_date <= $2) \
                     OR (paid_minor > 0 AND paid_at >= $3 AND paid_at < $4) \
                     ORDER BY order_id",
                )
                .bind(from)
                .bind(to)
                .bind(paid_from)
                .bind(paid_before)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn metric_events(
                &self,
                before: DateTime<Utc>,
                sink: &mut (dyn FnMut(crate::core::metrics::CustomerEvent) + Send),
            ) -> Result<(), StoreError> {
                use futures_util::TryStreamExt;
                use sqlx::{FromRow, Row};
                let mut rows = sqlx::query(super::finance::METRIC_EVENTS)
                    .bind(before)
                    .fetch(&self.pool);
                while let Some(row) = rows.try_next().await? {
                    sink(crate::core::metrics::CustomerEvent {
                        customer_id: row.try_get("customer_id")?,
                        event: EventRecord::from_row(&row)?.into_event()?,
                    });
                }
                Ok(())
            }

            async fn billed_orders(
                &self,
                to: chrono::NaiveDate,
                sink: &mut (dyn FnMut(crate::core::metrics::BilledOrder) + Send),
            ) -> Result<(), StoreError> {
                use futures_util::TryStreamExt;
                let mut rows = sqlx::query_as::<_, (i64, i64, chrono::NaiveDate, DateTime<Utc>, String, i64)>(
                    super::finance::BILLED_ORDERS,
                )
                .bind(to)
                .fetch(&self.pool);
                while let Some((subscription_id, customer_id, billing_date, created_at, currency, net)) =
                    rows.try_next().await?
                {
                    sink(crate::core::metrics::BilledOrder {
                        subscription_id,
                        customer_id,
                        billing_date,
                        created_at,
                        currency,
                        net_of_tax_minor: net,
                    });
                }
                Ok(())
            }

            async fn declined_payments(
                &self,
                from: chrono::NaiveDate,
                to: chrono::NaiveDate,
            ) -> Result<Vec<crate::core::metrics::DeclinedPayment>, StoreError> {
                let rows: Vec<(String, i64, chrono::NaiveDate, String, i64, String, i64)> =
                    sqlx::query_as(super::finance::DECLINED_PAYMENTS)
                        .bind(from)
                        .bind(to)
                        .fetch_all(&self.pool)
                        .await?;
                rows.into_iter()
                    .map(|(order_number, subscription_id, billing_date, currency, amount, status, retrying)| {
                        Ok(crate::core::metrics::DeclinedPayment {
                            status: status.parse().map_err(|problem: String| {
                                StoreError::Corrupt(format!("payment of order {order_number}: {problem}"))
                            })?,
                            order_number,
                            subscription_id,
                            billing_date,
                            currency,
                            amount_minor: amount,
                            retrying: retrying != 0,
                        })
                    })
                    .collect()
            }

            async fn kept_metrics_report(
                &self,
                from: chrono::NaiveDate,
                to: chrono::NaiveDate,
            ) -> Result<Option<(chrono::DateTime<chrono::Utc>, String)>, StoreError> {
                Ok(sqlx::query_as(super::finance::KEPT_METRICS_REPORT)
                    .bind(from)
                    .bind(to)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn keep_metrics_report(
                &self,
                from: chrono::NaiveDate,
                to: chrono::NaiveDate,
                computed_at: chrono::DateTime<chrono::Utc>,
                report: &str,
                kept_max: u32,
            ) -> Result<(), StoreError> {
                let mut tx = begin_write(self).await?;
                sqlx::query(super::finance::KEEP_METRICS_REPORT)
                    .bind(from)
                    .bind(to)
                    .bind(computed_at)
                    .bind(report)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(super::finance::FORGET_OLD_METRICS_REPORTS)
                    .bind(i64::from(kept_max))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn ordered_plans(&self) -> Result<Vec<String>, StoreError> {
                Ok(
                    sqlx::query_scalar("SELECT DISTINCT plan_id FROM orders ORDER BY 1")
                        .fetch_all(&self.read_pool)
                        .await?,
                )
            }
        }
    };
}

pub(crate) use finance_sql;
