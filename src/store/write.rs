//! The store's one way to change state for a use case: a write transaction handed out by
//! [`Writes::begin_write`] ([`WriteTx`], a boxed `sqlx::Transaction` of the backend). A use
//! case makes its change through the transaction's methods (one trait per concern:
//! [`CouponWrites`], …), may then write the response of the API request that asked for it in
//! the same transaction ([`WriteTx::complete_reply`]), and commits: the change and its
//! recorded response commit together or not at all. Dropping a transaction uncommitted rolls
//! it back. Each write is written once, on the transaction; a concern's plain store method
//! (`CouponStore::create_coupon`, …) is that write between `begin_write` and `commit`.
//!
//! Why a transaction object rather than a reply passed down to every write: the store need
//! not know who asks or what they answer, and no write exists twice (with and without a
//! reply). Must not: decide anything, or know about HTTP.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use super::addresses::AddressWrites;
use super::coupons::CouponWrites;
use super::customers::CustomerWrites;
use super::fulfillments::FulfillmentWrites;
use super::idempotency::ReplyTo;
use super::outbox::OutboxWrites;
use super::payments::PaymentWrites;
use super::subscriptions::SubscriptionWrites;

/// One write transaction on the primary (SQLite: holding the write lock from its start).
#[async_trait]
pub trait WriteTx:
    CouponWrites
    + CustomerWrites
    + AddressWrites
    + SubscriptionWrites
    + OutboxWrites
    + PaymentWrites
    + FulfillmentWrites
    + Send
{
    /// Writes the response (status, JSON body) of the API request `to` that asked for this
    /// transaction's change; refused as a conflict when the key is no longer reserved
    /// (another request took it over), so the change does not commit either.
    async fn complete_reply(
        &mut self,
        to: &ReplyTo,
        status: u16,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Commits the change (and the response written with it).
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// Where write transactions come from.
#[async_trait]
pub trait Writes: Send + Sync {
    /// Begins a write transaction.
    async fn begin_write(&self) -> Result<Box<dyn WriteTx>, StoreError>;
}

/// The write transaction of each backend, over its `sqlx::Transaction`; its change methods are
/// implemented by each concern's SQL macro (`coupons_sql!`, …).
macro_rules! write_tx_sql {
    ($store:ident, $db:ty) => {
        /// A write transaction of this backend.
        pub struct SqlWrite {
            tx: Transaction<'static, $db>,
        }

        #[async_trait::async_trait]
        impl super::Writes for $store {
            async fn begin_write(&self) -> Result<Box<dyn super::WriteTx>, StoreError> {
                Ok(Box::new(SqlWrite {
                    tx: begin_write(self).await?,
                }))
            }
        }

        #[async_trait::async_trait]
        impl super::WriteTx for SqlWrite {
            async fn complete_reply(
                &mut self,
                to: &ReplyTo,
                status: u16,
                body: &str,
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                complete_reply(&mut self.tx, to, status, body, now).await
            }

            async fn commit(self: Box<Self>) -> Result<(), StoreError> {
                Ok(self.tx.commit().await?)
            }
        }
    };
}

pub(crate) use write_tx_sql;
