//! Shipments in the store: record one per order (or its cancellation before it ships) (with what the caller's recorder makes of it:
//! the event, the "shipped" email and the webhooks, through `write_changes`, in the same
//! transaction), read one, and page through the orders not shipped yet (`unfulfilled_orders`,
//! written with each order and emptied by its shipment). One shipment per order
//! is the database's rule (`fulfillments.order_id` unique), so a shipment sent twice, however
//! concurrently, is written once. The SQL is written once in [`fulfillments_sql!`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::core::fulfillment::{Fulfillment, Outcome};
use crate::core::model::{Change, Customer, Order, Subscription};

/// Makes the change a recorded shipment or cancellation of an order brings (its event and
/// messages).
pub type ShipmentRecorder<'a> =
    dyn Fn(&Order, &Subscription, &Customer) -> Change + Send + Sync + 'a;

/// What recording a shipment or a cancellation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShipmentRecord {
    /// Written now, with its change.
    New(Fulfillment),
    /// The order had a shipment or a cancellation recorded already; nothing was written.
    Existing(Fulfillment),
}

/// The shipments' changes made for a use case, in a write transaction ([`super::WriteTx`]).
#[async_trait]
pub trait FulfillmentWrites: Send {
    /// Records `outcome` (its shipment, or its cancellation) for order `order_number` unless
    /// the order has one already (then returns that one and writes nothing); with a new one,
    /// takes the order off `unfulfilled_orders` and writes what `record` makes of it.
    /// `NotFound` for no such order.
    async fn record_shipment(
        &mut self,
        order_number: &str,
        outcome: &Outcome,
        actor: &str,
        record: &ShipmentRecorder<'_>,
        now: DateTime<Utc>,
    ) -> Result<ShipmentRecord, StoreError>;
}

#[async_trait]
pub trait FulfillmentStore: Send + Sync {
    /// The shipment or cancellation recorded for an order, if any.
    async fn fulfillment(&self, order_number: &str) -> Result<Option<Fulfillment>, StoreError>;

    /// The orders billed at or before `billed_before` still waiting for their shipment: how
    /// many, when the oldest was billed, and the first `limit` of them, oldest first (no
    /// lines).
    async fn unfulfilled_summary(
        &self,
        billed_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<(i64, Option<DateTime<Utc>>, Vec<Order>), StoreError>;

    /// Up to `limit` orders waiting for their shipment, by id, after `after_id` (keyset
    /// pages; no lines). Orders billed before fulfillment was tracked are not among them.
    async fn unfulfilled_orders(
        &self,
        after_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Order>, StoreError>;
}

pub(in crate::store) const FULFILLMENT_SELECT: &str = "SELECT f.order_id, o.order_number, \
     f.status, f.carrier, f.tracking_number, f.tracking_url, f.shipped_at, f.reason, f.actor, \
     f.created_at FROM fulfillments f JOIN orders o ON o.id = f.order_id";

/// Says that no order has that number, and where to look.
pub(in crate::store) fn no_such_order(number: &str) -> StoreError {
    StoreError::NotFound(format!("no order {number}; see `subsave orders list`"))
}

macro_rules! fulfillments_sql {
    ($store:ident, $db:ty) => {
        async fn load_fulfillment<'e>(
            executor: impl sqlx::Executor<'e, Database = $db>,
            order_number: &str,
        ) -> Result<Option<crate::core::fulfillment::Fulfillment>, StoreError> {
            let sql = format!(
                "{} WHERE o.order_number = $1",
                super::fulfillments::FULFILLMENT_SELECT
            );
            let record: Option<FulfillmentRecord> = sqlx::query_as(AssertSqlSafe(sql))
                .bind(order_number)
                .fetch_optional(executor)
                .await?;
            record.map(FulfillmentRecord::into_fulfillment).transpose()
        }

        #[async_trait::async_trait]
        impl super::FulfillmentWrites for SqlWrite {
            async fn record_shipment(
                &mut self,
                order_number: &str,
                outcome: &crate::core::fulfillment::Outcome,
                actor: &str,
                record: &super::fulfillments::ShipmentRecorder<'_>,
                now: DateTime<Utc>,
            ) -> Result<super::fulfillments::ShipmentRecord, StoreError> {
                let tx = &mut self.tx;
                let sql = format!("{} WHERE order_number = $1", super::orders::ORDER_SELECT);
                let order: OrderRecord = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(order_number)
                    .fetch_optional(&mut **tx)
                    .await?
                    .ok_or_else(|| super::fulfillments::no_such_order(order_number))?;
                let order = order.into_order(&[])?;
                let (status, shipment, reason) = match outcome {
                    crate::core::fulfillment::Outcome::Fulfilled(s) => ("fulfilled", Some(s), None),
                    crate::core::fulfillment::Outcome::Cancelled { reason } => {
                        ("cancelled", None, Some(reason.as_str()))
                    }
                };
                let inserted: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO fulfillments (order_id, status, carrier, tracking_number, \
                     tracking_url, shipped_at, reason, actor, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (order_id) DO NOTHING RETURNING id",
                )
                .bind(order.id)
                .bind(status)
                .bind(shipment.map(|s| s.carrier.as_str()))
                .bind(shipment.map(|s| s.tracking_number.as_str()))
                .bind(shipment.and_then(|s| s.tracking_url.as_deref()))
                .bind(shipment.map(|s| s.shipped_at))
                .bind(reason)
                .bind(actor)
                .bind(now)
                .fetch_optional(&mut **tx)
                .await?;
                let recorded = load_fulfillment(&mut **tx, order_number)
                    .await?
                    .ok_or_else(|| super::fulfillments::no_such_order(order_number))?;
                if inserted.is_none() {
                    return Ok(super::fulfillments::ShipmentRecord::Existing(recorded));
                }
                sqlx::query("DELETE FROM unfulfilled_orders WHERE order_id = $1")
                    .bind(order.id)
                    .execute(&mut **tx)
                    .await?;
                let (sub, customer) = lock_with_customer(tx, order.subscription_id).await?;
                write_changes(tx, std::slice::from_ref(&record(&order, &sub, &customer)), now)
                    .await?;
                Ok(super::fulfillments::ShipmentRecord::New(recorded))
            }
        }

        #[async_trait::async_trait]
        impl super::FulfillmentStore for $store {
            async fn unfulfilled_summary(
                &self,
                billed_before: DateTime<Utc>,
                limit: u32,
            ) -> Result<(i64, Option<DateTime<Utc>>, Vec<Order>), StoreError> {
                let (count, oldest): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
                    "SELECT COUNT(*), MIN(created_at) FROM unfulfilled_orders WHERE created_at <= $1",
                )
                .bind(billed_before)
                .fetch_one(&self.pool)
                .await?;
                let sql = format!(
                    "{} WHERE id IN (SELECT order_id FROM unfulfilled_orders WHERE created_at <= $1 \
                     ORDER BY created_at, order_id LIMIT $2) ORDER BY created_at, id",
                    super::orders::ORDER_SELECT
                );
                let records: Vec<OrderRecord> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(billed_before)
                    .bind(big(limit))
                    .fetch_all(&self.pool)
                    .await?;
                let orders = records
                    .into_iter()
                    .map(|r| r.into_order(&[]))
                    .collect::<Result<_, _>>()?;
                Ok((count, oldest, orders))
            }

            async fn fulfillment(
                &self,
                order_number: &str,
            ) -> Result<Option<crate::core::fulfillment::Fulfillment>, StoreError> {
                load_fulfillment(&self.pool, order_number).await
            }

            async fn unfulfilled_orders(
                &self,
                after_id: Option<i64>,
                limit: u32,
            ) -> Result<Vec<Order>, StoreError> {
                let sql = format!(
                    "{} WHERE id IN (SELECT order_id FROM unfulfilled_orders \
                     WHERE ($1 IS NULL OR order_id > $1) ORDER BY order_id LIMIT $2) ORDER BY id",
                    super::orders::ORDER_SELECT
                );
                let records: Vec<OrderRecord> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(after_id)
                    .bind(big(limit))
                    .fetch_all(&self.pool)
                    .await?;
                records.into_iter().map(|r| r.into_order(&[])).collect()
            }
        }
    };
}

pub(crate) use fulfillments_sql;
