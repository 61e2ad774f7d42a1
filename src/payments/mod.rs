//! Charging orders: the payment providers and the worker that charges due payments.
//!
//! Owns the conversation with a provider ([`Provider`]: Stripe over its HTTP API in
//! `stripe.rs`, or the in-process simulation for the demo) and the payment worker
//! (`collector.rs`: claim, charge, record, under a lease). What an outcome means for the
//! payment, the subscription and the customer's mail is `dunning`'s to decide; this module
//! never decides it and never writes SQL but through the store. [`Outcomes`] is the one way
//! an outcome is turned into a change, with its webhook events, whoever heard of it.

mod collector;
pub mod stripe;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use collector::{CollectReport, Collector, PaymentsInHand};

use crate::config::{PaymentSettings, Settings};
use crate::core::catalog::Catalog;
use crate::core::dunning::{self, ChargeOutcome, DunningPolicy, PaymentChange};
use crate::core::model::{
    Actor, Change, CreditNote, Customer, Payment, ProviderKind, Subscription,
};
use crate::core::money::Money;
use crate::core::webhooks::{self, Endpoint};

/// One charge to make.
#[derive(Debug, Clone)]
pub struct ChargeRequest<'a> {
    /// Sent as the provider's `Idempotency-Key` (`dunning::idempotency_key`).
    pub idempotency_key: &'a str,
    pub amount: Money,
    pub customer_ref: &'a str,
    pub method_ref: &'a str,
    pub order_number: &'a str,
}

/// A refund to make.
#[derive(Debug, Clone)]
pub struct RefundRequest<'a> {
    pub idempotency_key: &'a str,
    pub payment_ref: &'a str,
    pub amount: Money,
}

/// Why the provider gave no answer about a charge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Unreachable, timed out, rate-limited, a 5xx, or our key refused: the same attempt is
    /// tried again later with the same idempotency key.
    #[error("{0}")]
    Transient(String),
    /// The provider refused the request itself (a refund of more than was paid, an unknown
    /// payment): retrying the same request cannot help.
    #[error("{0}")]
    Refused(String),
}

/// What a charge's outcome changes, however subsave heard of it (the worker's answer from the
/// provider, or the provider's webhook event): `dunning::decide`, then the webhook events of
/// that change (`webhooks::attach`); and what a refund's credit note records. Every outcome
/// and every credit note is recorded through [`Outcomes`], so the endpoints hear of every way
/// a payment changes.
#[derive(Debug, Clone)]
pub struct Outcomes {
    policy: DunningPolicy,
    catalog: Arc<Catalog>,
    webhooks: Vec<Endpoint>,
}

impl Outcomes {
    pub fn from_settings(settings: &Settings) -> Outcomes {
        Outcomes {
            policy: settings.payments.policy(),
            catalog: Arc::new(settings.catalog.clone()),
            webhooks: settings.webhooks.endpoints.clone(),
        }
    }

    /// What `outcome` does to `payment` (of `sub`, whose customer is `customer`) at `now`,
    /// its webhook events included; `None` changes nothing. `source` is recorded with the
    /// attempt (`worker`, `webhook:<event id>`).
    pub fn decide(
        &self,
        payment: &Payment,
        sub: &Subscription,
        customer: &Customer,
        outcome: &ChargeOutcome,
        source: &str,
        now: DateTime<Utc>,
    ) -> Option<PaymentChange> {
        let mut decided = dunning::decide(
            payment,
            sub,
            customer,
            outcome,
            source,
            &self.policy,
            &self.catalog,
            now,
        )?;
        webhooks::attach(&mut decided.change, &self.webhooks, now);
        Some(decided)
    }

    /// What a credit note records for `sub` (`dunning::refunded`), its `refund.created`
    /// webhook events included.
    pub fn refunded(
        &self,
        note: &CreditNote,
        sub: &Subscription,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Change {
        let mut change = dunning::refunded(note, sub, actor);
        webhooks::attach(&mut change, &self.webhooks, now);
        change
    }
}

/// A payment provider subsave charges through.
#[derive(Debug, Clone)]
pub enum Provider {
    Stripe(stripe::StripeClient),
    /// For the demo: what happens depends on the payment method's name (`pm_card_visa` is
    /// paid; a name with `declined`, `stolen` or `authentication` is declined, declined hard,
    /// or needs 3-D Secure).
    Simulated,
}

impl Provider {
    /// The provider `payments.provider` names; `None` for `none` (the storefront collects).
    pub fn from_settings(settings: &PaymentSettings) -> Result<Option<Provider>, String> {
        Ok(match settings.provider {
            ProviderKind::None => None,
            ProviderKind::Simulated => Some(Provider::Simulated),
            ProviderKind::Stripe => {
                let key = settings
                    .stripe
                    .secret_key
                    .clone()
                    .ok_or("the stripe provider needs payments.stripe.secret_key".to_owned())?;
                Some(Provider::Stripe(stripe::StripeClient::new(
                    &settings.stripe.api_base,
                    key,
                    Duration::from_secs(settings.timeout_secs),
                )?))
            }
        })
    }

    pub fn kind(&self) -> ProviderKind {
        match self {
            Provider::Stripe(_) => ProviderKind::Stripe,
            Provider::Simulated => ProviderKind::Simulated,
        }
    }

    /// Charges off-session; the same key never charges twice.
    pub async fn charge(
        &self,
        request: &ChargeRequest<'_>,
    ) -> Result<ChargeOutcome, ProviderError> {
        match self {
            Provider::Stripe(client) => client.charge(request).await,
            Provider::Simulated => Ok(simulate(request)),
        }
    }

    /// What became of an attempt sent before a crash, if the provider made a charge for it;
    /// `None`: it never arrived (or made no charge, as when it awaits 3-D Secure: charging
    /// again with the same key is then harmless).
    pub async fn find_attempt(
        &self,
        request: &ChargeRequest<'_>,
    ) -> Result<Option<ChargeOutcome>, ProviderError> {
        match self {
            Provider::Stripe(client) => client.find_attempt(request).await,
            // In-process: nothing is sent that a crash could lose.
            Provider::Simulated => Ok(None),
        }
    }

    /// Refunds part or all of a payment; returns the provider's refund reference.
    pub async fn refund(&self, request: &RefundRequest<'_>) -> Result<String, ProviderError> {
        match self {
            Provider::Stripe(client) => client.refund(request).await,
            Provider::Simulated => Ok(format!("sim_re_{}", request.idempotency_key)),
        }
    }
}

/// The simulated provider's answer, from the payment method's name.
fn simulate(request: &ChargeRequest<'_>) -> ChargeOutcome {
    let method = request.method_ref;
    let payment_ref = format!("sim_{}", request.idempotency_key);
    let declined = |code: &str| ChargeOutcome::Declined {
        payment_ref: Some(payment_ref.clone()),
        code: code.into(),
        message: "Your card was declined.".into(),
    };
    if method.contains("stolen") {
        declined("stolen_card")
    } else if method.contains("declined") {
        declined("card_declined")
    } else if method.contains("authentication") {
        ChargeOutcome::RequiresAction { payment_ref }
    } else {
        ChargeOutcome::Succeeded {
            payment_ref,
            fee_minor: Some(30 + request.amount.minor() * 29 / 1000),
        }
    }
}
