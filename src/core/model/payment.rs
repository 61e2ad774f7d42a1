//! Payments: who collects an order's money (`ProviderKind`), where its payment stands
//! (`PaymentStatus`), the payment as stored, a customer's references at the provider, and a
//! credit note. Plain data; no IO.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::OrderLine;
use crate::core::money::Money;

string_enum! {
    /// Who collects an order's money.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
    #[serde(rename_all = "snake_case")]
    pub enum ProviderKind ("payment provider") {
        /// The storefront collects; subsave records the order as `external`.
        #[default]
        None = "none",
        /// Stripe PaymentIntents, off-session, with the customer's saved payment method.
        Stripe = "stripe",
        /// An in-process stand-in for the demo: the payment method's name says what happens.
        Simulated = "simulated",
    }
}

string_enum! {
    /// Where an order's payment stands.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum PaymentStatus ("payment status") {
        /// Collected by the storefront, not by subsave.
        External = "external",
        /// Waiting for the payment worker (a first try, or a retry of a network failure).
        Pending = "pending",
        Paid = "paid",
        /// The customer must act (3-D Secure); the payment link in their email completes it.
        RequiresAction = "requires_action",
        /// Declined; retried at `next_attempt_at` when one is set, otherwise given up.
        Failed = "failed",
        Refunded = "refunded",
        PartiallyRefunded = "partially_refunded",
    }
}

impl PaymentStatus {
    /// Whether the money was collected (refunds since included).
    pub fn collected(self) -> bool {
        matches!(
            self,
            PaymentStatus::Paid | PaymentStatus::Refunded | PaymentStatus::PartiallyRefunded
        )
    }
}

/// An order's payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Payment {
    pub id: i64,
    pub order_id: i64,
    pub order_number: String,
    pub subscription_id: i64,
    pub customer_id: i64,
    pub provider: ProviderKind,
    pub status: PaymentStatus,
    pub amount: Money,
    /// The attempt being made, or the last one made.
    pub attempt: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub provider_payment_ref: Option<String>,
    pub decline_code: Option<String>,
    pub last_error: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    pub fee: Option<Money>,
    pub refunded: Money,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Payment {
    /// What may still be refunded: the amount less what was refunded.
    pub fn refundable(&self) -> Money {
        Money::from_minor(
            self.amount.minor() - self.refunded.minor(),
            self.amount.currency(),
        )
    }
}

/// The provider's references for a customer: who they are there, and the saved payment method.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PaymentRefs {
    pub customer_ref: Option<String>,
    pub method_ref: Option<String>,
}

/// A refund or correction of an order, as finance books it: the amount, the tax part of it,
/// and lines that sum to the amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreditNote {
    pub id: i64,
    pub number: String,
    pub order_id: i64,
    pub order_number: String,
    pub amount: Money,
    pub tax: Money,
    pub reason: String,
    pub provider_refund_ref: Option<String>,
    pub actor: String,
    pub billing_date: NaiveDate,
    pub created_at: DateTime<Utc>,
    pub lines: Vec<OrderLine>,
}
