//! The coupons' use cases: create, list and disable. Redeeming one is part of creating a
//! subscription (`subscriptions::create`), in the same transaction.

use chrono::NaiveDate;
use chrono::NaiveTime;

use super::catalog::require_plan;
use super::idempotency::Commit;
use super::views::CouponView;
use super::{App, AppError, Page, PageRequest};
use crate::core::model::{CouponDuration, NewCoupon};
use crate::core::money::BasisPoints;
use crate::core::pricing::CouponValue;
use crate::core::text::printable;

/// A new coupon, parsed at the door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponInput {
    pub code: String,
    pub value: CouponValue,
    pub duration: CouponDuration,
    pub plan: Option<String>,
    /// The last day (UTC) it can be redeemed.
    pub expires: Option<NaiveDate>,
    pub max_redemptions: Option<u32>,
}

/// The longest coupon code.
pub const CODE_MAX: usize = 32;

/// Codes are case-insensitive: stored and looked up in upper case.
pub fn normalize_code(code: &str) -> String {
    code.trim().to_uppercase()
}

/// Creates a coupon, its transaction ended by `commit`.
pub async fn create(
    app: &App,
    input: CouponInput,
    commit: Commit<'_, CouponView>,
) -> Result<CouponView, AppError> {
    match input.value {
        CouponValue::Percent(bp) if bp == BasisPoints::ZERO => {
            return Err(AppError::invalid_field(
                "percent",
                ": a coupon takes off more than 0%",
            ));
        }
        CouponValue::Amount(money) if money.minor() <= 0 => {
            return Err(AppError::invalid_field(
                "amount",
                ": a coupon takes off more than zero",
            ));
        }
        CouponValue::Amount(money) => {
            app.catalog()
                .priced_currency(money.currency().code())
                .map_err(|e| AppError::invalid_field("currency", e))?;
        }
        _ => {}
    }
    let plan = input
        .plan
        .as_deref()
        .map(|p| require_plan(app.catalog(), p).map(|plan| plan.id.clone()))
        .transpose()?;
    let code = normalize_code(&input.code);
    if code.is_empty()
        || code.len() > CODE_MAX
        || !code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(AppError::invalid(format!(
            "coupon code \"{}\": use 1 to {CODE_MAX} letters, digits, '-' and '_'",
            printable(&code)
        )));
    }
    if input.max_redemptions == Some(0) {
        return Err(AppError::invalid_field(
            "max_redemptions",
            " 0: a coupon that can never be redeemed is not a coupon; give 1 or more, or leave it out for no limit",
        ));
    }
    let now = app.now();
    let mut tx = app.store().begin_write().await?;
    let coupon = tx
        .create_coupon(
            &NewCoupon {
                code,
                currency: match input.value {
                    CouponValue::Amount(amount) => amount.currency(),
                    CouponValue::Percent(_) => app.catalog().currency,
                },
                value: input.value,
                duration: input.duration,
                plan,
                // Redeemable through the whole last day: it expires when the next one starts.
                expires_at: input
                    .expires
                    .and_then(|d| d.succ_opt())
                    .map(|d| d.and_time(NaiveTime::MIN).and_utc()),
                max_redemptions: input.max_redemptions,
            },
            now,
        )
        .await?;
    let view = CouponView::from(&coupon);
    commit.finish(tx, &view, now).await?;
    Ok(view)
}

pub async fn list(app: &App, page: PageRequest) -> Result<Page<CouponView>, AppError> {
    let (limit, after) = page.fetch();
    let rows = app.store().coupons(limit, after).await?;
    Ok(Page::from_rows(rows, page.limit).map(|c| CouponView::from(&c)))
}

/// No new redemptions; subscriptions that redeemed it keep it. The transaction is ended by
/// `commit`.
pub async fn disable(
    app: &App,
    code: &str,
    commit: Commit<'_, CouponView>,
) -> Result<CouponView, AppError> {
    let now = app.now();
    let mut tx = app.store().begin_write().await?;
    let coupon = tx.disable_coupon(&normalize_code(code), now).await?;
    let view = CouponView::from(&coupon);
    commit.finish(tx, &view, now).await?;
    Ok(view)
}
