//! Coupons in the store: create, read by code, list by id, disable. Redeeming one happens
//! inside `create_subscription` or `redeem_coupon` (`subscriptions.rs`), under the coupon's
//! row lock. The SQL is
//! written once in [`coupons_sql!`] and expanded by each backend.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::core::model::{Coupon, NewCoupon};

#[async_trait]
pub trait CouponStore: super::Writes {
    /// Creates a coupon ([`CouponWrites::create_coupon`] in a transaction of its own).
    async fn create_coupon(
        &self,
        new: &NewCoupon,
        now: DateTime<Utc>,
    ) -> Result<Coupon, StoreError> {
        let mut tx = self.begin_write().await?;
        let coupon = tx.create_coupon(new, now).await?;
        tx.commit().await?;
        Ok(coupon)
    }
    /// The coupon with `code` (upper case), if there is one.
    async fn coupon(&self, code: &str) -> Result<Option<Coupon>, StoreError>;
    /// Up to `limit` coupons by id, after `after_id` when given (keyset pages).
    async fn coupons(&self, limit: u32, after_id: Option<i64>) -> Result<Vec<Coupon>, StoreError>;
    /// Disables a coupon ([`CouponWrites::disable_coupon`] in a transaction of its own).
    async fn disable_coupon(&self, code: &str, now: DateTime<Utc>) -> Result<Coupon, StoreError> {
        let mut tx = self.begin_write().await?;
        let coupon = tx.disable_coupon(code, now).await?;
        tx.commit().await?;
        Ok(coupon)
    }
}

/// The coupons' changes, made in a write transaction ([`super::WriteTx`]).
#[async_trait]
pub trait CouponWrites: Send {
    /// Creates a coupon; a taken code is a `Conflict` that names it.
    async fn create_coupon(
        &mut self,
        new: &NewCoupon,
        now: DateTime<Utc>,
    ) -> Result<Coupon, StoreError>;
    /// Stops new redemptions (the first disabling time is kept); `NotFound` for no such code.
    async fn disable_coupon(
        &mut self,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<Coupon, StoreError>;
}

pub(in crate::store) const COUPON_COLUMNS: &str = "id, code, percent_bp, amount_minor, currency, \
     duration, duration_orders, plan_id, expires_at, max_redemptions, redemptions, disabled_at, \
     created_at";

pub(in crate::store) const INSERT_COUPON: &str = "INSERT INTO coupons (code, percent_bp, amount_minor, currency, \
     duration, duration_orders, plan_id, expires_at, max_redemptions, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id, code, percent_bp, amount_minor, \
     currency, duration, duration_orders, plan_id, expires_at, max_redemptions, redemptions, \
     disabled_at, created_at";

pub(in crate::store) const DISABLE_COUPON: &str = "UPDATE coupons SET disabled_at = COALESCE(disabled_at, $2) \
     WHERE code = $1 RETURNING id, code, percent_bp, amount_minor, currency, duration, \
     duration_orders, plan_id, expires_at, max_redemptions, redemptions, disabled_at, created_at";

/// Says that no coupon has that code, and where to look.
pub(in crate::store) fn no_such_coupon(code: &str) -> StoreError {
    StoreError::NotFound(format!(
        "no coupon with code {code}; see `subsave coupons list`"
    ))
}

macro_rules! coupons_sql {
    ($store:ident, $db:ty) => {
        #[async_trait::async_trait]
        impl super::CouponWrites for SqlWrite {
            async fn create_coupon(
                &mut self,
                new: &NewCoupon,
                now: DateTime<Utc>,
            ) -> Result<Coupon, StoreError> {
                let tx = &mut self.tx;
                let cols = coupon_columns(new.value, new.duration, new.currency);
                let record: CouponRecord = sqlx::query_as(super::coupons::INSERT_COUPON)
                    .bind(&new.code)
                    .bind(cols.percent_bp)
                    .bind(cols.amount_minor)
                    .bind(&cols.currency)
                    .bind(cols.duration)
                    .bind(cols.duration_orders)
                    .bind(new.plan.as_ref().map(|p| p.as_str().to_owned()))
                    .bind(new.expires_at)
                    .bind(new.max_redemptions.map(big))
                    .bind(now)
                    .fetch_one(&mut **tx)
                    .await
                    .map_err(conflict_as(|| {
                        format!("a coupon with code {} already exists", new.code)
                    }))?;
                record.into_coupon()
            }

            async fn disable_coupon(
                &mut self,
                code: &str,
                now: DateTime<Utc>,
            ) -> Result<Coupon, StoreError> {
                let tx = &mut self.tx;
                let record: Option<CouponRecord> = sqlx::query_as(super::coupons::DISABLE_COUPON)
                    .bind(code)
                    .bind(now)
                    .fetch_optional(&mut **tx)
                    .await?;
                record
                    .ok_or_else(|| super::coupons::no_such_coupon(code))?
                    .into_coupon()
            }
        }

        #[async_trait::async_trait]
        impl super::CouponStore for $store {
            async fn coupon(&self, code: &str) -> Result<Option<Coupon>, StoreError> {
                let sql = format!(
                    "SELECT {} FROM coupons WHERE code = $1",
                    super::coupons::COUPON_COLUMNS
                );
                let record: Option<CouponRecord> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(code)
                    .fetch_optional(&self.pool)
                    .await?;
                record.map(CouponRecord::into_coupon).transpose()
            }

            async fn coupons(
                &self,
                limit: u32,
                after_id: Option<i64>,
            ) -> Result<Vec<Coupon>, StoreError> {
                let sql = format!(
                    "SELECT {} FROM coupons WHERE ($2 IS NULL OR id > $2) ORDER BY id LIMIT $1",
                    super::coupons::COUPON_COLUMNS
                );
                let records: Vec<CouponRecord> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(big(limit))
                    .bind(after_id)
                    .fetch_all(&self.pool)
                    .await?;
                records.into_iter().map(CouponRecord::into_coupon).collect()
            }
        }
    };
}

pub(crate) use coupons_sql;
