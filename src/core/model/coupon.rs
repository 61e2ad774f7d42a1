//! Coupons: how many orders one discounts (`CouponDuration`), the coupon as stored with the
//! reasons it cannot be redeemed, a new coupon, and the grant a subscription holds. Plain
//! data; no IO.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::core::catalog::PlanId;
use crate::core::pricing::CouponValue;

/// How many orders a coupon discounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "orders")]
pub enum CouponDuration {
    Once,
    Repeating(u32),
    Forever,
}

impl CouponDuration {
    /// Whether a coupon that has discounted `used` orders still applies.
    pub fn applies_after(self, used: u32) -> bool {
        match self {
            CouponDuration::Once => used < 1,
            CouponDuration::Repeating(n) => used < n,
            CouponDuration::Forever => true,
        }
    }
}

impl FromStr for CouponDuration {
    type Err = String;

    /// "once", "forever", or "repeating N" / "repeating:N".
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = || {
            format!(
                "\"{input}\" is not a coupon duration: expected once, forever or \"repeating N\""
            )
        };
        match input.trim() {
            "once" => Ok(CouponDuration::Once),
            "forever" => Ok(CouponDuration::Forever),
            other => {
                let n = other
                    .strip_prefix("repeating")
                    .map(|rest| rest.trim_start_matches([' ', ':', '=']))
                    .ok_or_else(invalid)?;
                n.parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .map(CouponDuration::Repeating)
                    .ok_or_else(invalid)
            }
        }
    }
}

impl fmt::Display for CouponDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CouponDuration::Once => f.write_str("once"),
            CouponDuration::Repeating(n) => write!(f, "repeating {n}"),
            CouponDuration::Forever => f.write_str("forever"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Coupon {
    pub id: i64,
    pub code: String,
    pub value: CouponValue,
    pub duration: CouponDuration,
    pub plan: Option<PlanId>,
    pub expires_at: Option<DateTime<Utc>>,
    pub max_redemptions: Option<u32>,
    pub redemptions: u32,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl Coupon {
    /// Why this coupon cannot be redeemed now for `plan` by a subscription billed in
    /// `currency` (its market's), if it cannot.
    pub fn refuse_redemption(
        &self,
        plan: &PlanId,
        currency: crate::core::money::Currency,
        now: DateTime<Utc>,
    ) -> Option<String> {
        if let CouponValue::Amount(amount) = self.value
            && amount.currency() != currency
        {
            return Some(format!(
                "coupon {} takes off {} {}, and this subscription is billed in {currency} where it ships; an amount coupon applies only in its own currency, so give a coupon in {currency} or a percentage one",
                self.code,
                amount.to_decimal_string(),
                amount.currency()
            ));
        }
        if self.disabled_at.is_some() {
            return Some(format!("coupon {} is disabled", self.code));
        }
        if self.expires_at.is_some_and(|at| at <= now) {
            return Some(format!("coupon {} has expired", self.code));
        }
        if self
            .max_redemptions
            .is_some_and(|max| self.redemptions >= max)
        {
            return Some(format!(
                "coupon {} has reached its redemption limit",
                self.code
            ));
        }
        if self.plan.as_ref().is_some_and(|only| only != plan) {
            return Some(format!(
                "coupon {} is for plan {} only",
                self.code,
                self.plan.as_ref().map(PlanId::as_str).unwrap_or_default()
            ));
        }
        None
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCoupon {
    pub code: String,
    /// The catalog's currency: a fixed amount's own, and the one every coupon is recorded in.
    pub currency: crate::core::money::Currency,
    pub value: CouponValue,
    pub duration: CouponDuration,
    pub plan: Option<PlanId>,
    pub expires_at: Option<DateTime<Utc>>,
    pub max_redemptions: Option<u32>,
}

/// The coupon a subscription redeemed, and how many orders it has discounted so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CouponGrant {
    pub coupon_id: i64,
    pub code: String,
    pub value: CouponValue,
    pub duration: CouponDuration,
    pub plan: Option<PlanId>,
    pub orders_used: u32,
}

impl CouponGrant {
    /// Whether the coupon discounts the next order of a subscription on `plan`.
    pub fn applies_to(&self, plan: &PlanId) -> bool {
        self.duration.applies_after(self.orders_used)
            && self.plan.as_ref().is_none_or(|only| only == plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coupon_durations() {
        let cases = [
            ("once", CouponDuration::Once),
            ("forever", CouponDuration::Forever),
            ("repeating 3", CouponDuration::Repeating(3)),
            ("repeating:3", CouponDuration::Repeating(3)),
        ];
        for (input, expected) in cases {
            assert_eq!(input.parse::<CouponDuration>(), Ok(expected));
        }
        assert!("repeating 0".parse::<CouponDuration>().is_err());
        assert!("sometimes".parse::<CouponDuration>().is_err());
        assert!(CouponDuration::Once.applies_after(0));
        assert!(!CouponDuration::Once.applies_after(1));
        assert!(CouponDuration::Repeating(3).applies_after(2));
        assert!(!CouponDuration::Repeating(3).applies_after(3));
        assert!(CouponDuration::Forever.applies_after(1000));
    }
}
