//! Orders in the store, read side: lists by subscription or customer, and one order by its
//! number, each with its itemized lines. Orders are written only by `write_changes`
//! (`subscriptions.rs`), with the change that bills them; database triggers refuse any
//! update or delete. The SQL is written once in [`orders_sql!`].

use async_trait::async_trait;

use super::StoreError;
use crate::core::model::Order;

/// Which orders a list returns, by id.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub subscription_id: Option<i64>,
    pub customer_id: Option<i64>,
    pub limit: u32,
    /// Only ids after this one (keyset pages).
    pub after_id: Option<i64>,
    /// May be read from the replica (`database.read_url`): a list page, not a decision.
    pub lag_ok: bool,
    /// Only orders written in this range.
    pub created: super::TimeRange,
}

#[async_trait]
pub trait OrderStore: Send + Sync {
    async fn orders(&self, filter: &OrderFilter) -> Result<Vec<Order>, StoreError>;
    async fn order(&self, order_number: &str) -> Result<Option<Order>, StoreError>;
}

pub(in crate::store) const ORDER_SELECT: &str = "SELECT id, order_number, subscription_id, \
     customer_id, cycle, plan_id, packs, quantity, currency, total_minor, tax_included_minor, \
     tax_region, coupon_code, scheduled_for, created_at, ship_name, ship_line1, ship_line2, \
     ship_city, ship_subdivision, ship_postal_code, ship_country, ship_phone, tax_included_bp FROM orders";

/// The orders a filter selects (`$1` subscription, `$2` customer, `$3` limit, `$4` after id,
/// `$5`..`$6` the creation range).
const ORDER_FILTER: &str = "WHERE ($1 IS NULL OR subscription_id = $1) \
     AND ($2 IS NULL OR customer_id = $2) AND ($4 IS NULL OR id > $4) \
     AND ($5 IS NULL OR created_at >= $5) AND ($6 IS NULL OR created_at < $6) \
     ORDER BY id LIMIT $3";

/// The filtered orders, then the lines of exactly those orders.
pub(in crate::store) fn filtered_orders_sql() -> (String, String) {
    (
        format!("{ORDER_SELECT} {ORDER_FILTER}"),
        format!(
            "SELECT order_id, kind, label, amount_minor FROM order_lines WHERE order_id IN \
             (SELECT id FROM orders {ORDER_FILTER}) ORDER BY order_id, position"
        ),
    )
}

pub(in crate::store) const SELECT_ONE_ORDER_LINES: &str = "SELECT order_id, kind, label, \
     amount_minor FROM order_lines WHERE order_id = $1 ORDER BY position";

macro_rules! orders_sql {
    ($store:ident, $db:ty) => {
        #[async_trait::async_trait]
        impl super::OrderStore for $store {
            async fn orders(&self, filter: &OrderFilter) -> Result<Vec<Order>, StoreError> {
                let (orders_sql, lines_sql) = super::orders::filtered_orders_sql();
                let records: Vec<OrderRecord> = sqlx::query_as(AssertSqlSafe(orders_sql))
                    .bind(filter.subscription_id)
                    .bind(filter.customer_id)
                    .bind(big(filter.limit))
                    .bind(filter.after_id)
                    .bind(filter.created.from)
                    .bind(filter.created.before)
                    .fetch_all(self.reader(filter.lag_ok))
                    .await?;
                let lines: Vec<OrderLineRecord> = sqlx::query_as(AssertSqlSafe(lines_sql))
                    .bind(filter.subscription_id)
                    .bind(filter.customer_id)
                    .bind(big(filter.limit))
                    .bind(filter.after_id)
                    .bind(filter.created.from)
                    .bind(filter.created.before)
                    .fetch_all(self.reader(filter.lag_ok))
                    .await?;
                records.into_iter().map(|r| r.into_order(&lines)).collect()
            }

            async fn order(&self, order_number: &str) -> Result<Option<Order>, StoreError> {
                let sql = format!("{} WHERE order_number = $1", super::orders::ORDER_SELECT);
                let record: Option<OrderRecord> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(order_number)
                    .fetch_optional(&self.pool)
                    .await?;
                let Some(record) = record else {
                    return Ok(None);
                };
                let lines: Vec<OrderLineRecord> =
                    sqlx::query_as(super::orders::SELECT_ONE_ORDER_LINES)
                        .bind(record.id)
                        .fetch_all(&self.pool)
                        .await?;
                record.into_order(&lines).map(Some)
            }
        }
    };
}

pub(crate) use orders_sql;
