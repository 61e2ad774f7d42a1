//! Orders: one about to be written with its lines and how its payment starts
//! (`FirstPayment`), and one as stored. Plain data; no IO.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::{PaymentStatus, ProviderKind};
use crate::core::address::Address;
use crate::core::catalog::PlanId;
use crate::core::money::{BasisPoints, Money};
use crate::core::pricing::Adjustment;

/// An order about to be written, with its itemized lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewOrder {
    pub order_number: String,
    pub subscription_id: i64,
    pub customer_id: i64,
    pub cycle: u32,
    pub plan: PlanId,
    pub packs: u32,
    pub quantity: u32,
    pub tax_region: Option<String>,
    pub coupon_code: Option<String>,
    pub lines: Vec<Adjustment>,
    pub total: Money,
    /// The plan price charged per shipment (the lower of catalog and promise).
    pub unit_price: Money,
    pub tax_included: Option<Money>,
    pub tax_included_rate: Option<BasisPoints>,
    /// The region's tax rate, added or included; `None` without a tax region.
    pub tax_rate: Option<BasisPoints>,
    pub scheduled_for: DateTime<Utc>,
    /// The day finance books it on: `scheduled_for` in the shop's finance time zone (UTC until
    /// the engine sets its own, see `Engine::with_billing_time_zone`).
    pub billing_date: NaiveDate,
    /// Who collects its money: the storefront (`None`: the order is `external`) or a
    /// payment provider, which charges it after the order is written.
    pub collection: ProviderKind,
    /// Where it ships: the subscription's address as it is when the order is written, kept
    /// with the order and never changed; `None` for a subscription without an address.
    pub ship_to: Option<Address>,
}

impl NewOrder {
    /// Order numbers are derived from (subscription, cycle): readable, stable, and unique by
    /// the same key the database enforces.
    pub fn number_for(subscription_id: i64, cycle: u32) -> String {
        format!("BB-{subscription_id:07}-{cycle:03}")
    }

    /// How the order's payment starts, written with the order: the storefront's to collect
    /// (`external`) when no provider collects; `paid` at once when there is nothing to
    /// collect; otherwise `pending`, due for the payment worker from `now`.
    pub fn first_payment(&self, now: DateTime<Utc>) -> FirstPayment {
        let (status, next_attempt_at, paid_at) = match (self.collection, self.total.minor()) {
            (ProviderKind::None, _) => (PaymentStatus::External, None, None),
            (_, 0) => (PaymentStatus::Paid, None, Some(now)),
            _ => (PaymentStatus::Pending, Some(now), None),
        };
        FirstPayment {
            status,
            next_attempt_at,
            paid_at,
        }
    }
}

/// A new order's payment as it is first written (see [`NewOrder::first_payment`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstPayment {
    pub status: PaymentStatus,
    /// When the payment worker should first try to charge it.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub paid_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderLine {
    pub kind: String,
    pub label: String,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Order {
    pub id: i64,
    pub order_number: String,
    pub subscription_id: i64,
    pub customer_id: i64,
    pub cycle: u32,
    pub plan: PlanId,
    pub packs: u32,
    pub quantity: u32,
    pub tax_region: Option<String>,
    pub coupon_code: Option<String>,
    pub total: Money,
    pub tax_included: Option<Money>,
    pub scheduled_for: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// The rate of the tax its total contains (inclusive regions).
    pub tax_included_rate: Option<BasisPoints>,
    pub lines: Vec<OrderLine>,
    /// Where it ships, as written with the order.
    pub ship_to: Option<Address>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_numbers_are_readable_and_stable() {
        assert_eq!(NewOrder::number_for(42, 3), "BB-0000042-003");
    }
}
