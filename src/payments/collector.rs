//! The payment worker: claims due payments under a lease, charges each through the provider
//! with the idempotency key of its order and attempt, and records the outcome with
//! [`Outcomes::decide`] in one transaction. [`Collector::collect`] is one collection; the daemon
//! runs it in a loop every `payments.poll_secs`, and `subsave payments collect` runs it once.
//!
//! A claim marks the attempt as sent before the provider is called, so a worker killed
//! between the provider's answer and the commit leaves the attempt "in doubt": the next
//! claim asks the provider what became of it (by the key in the charge's metadata) before
//! charging, and charges with the same key if nothing arrived. A provider that cannot be
//! reached is asked again later with the same key. A claimed batch ends before its lease
//! (checked at config load); claims abandoned by a daemon stopping past its grace period are
//! given back ([`PaymentsInHand`]).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use futures_util::StreamExt;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{ChargeRequest, Outcomes, Provider, ProviderError};
use crate::config::Settings;
use crate::core::dunning::{self, ChargeOutcome};
use crate::store::{ClaimedPayment, Recorded, Store, StoreError};

/// The shortest and longest wait before a provider that could not be reached is asked again.
const RETRY_MIN: TimeDelta = TimeDelta::seconds(30);
const RETRY_MAX: TimeDelta = TimeDelta::hours(1);

pub struct Collector {
    store: Arc<dyn Store>,
    provider: Provider,
    outcomes: Outcomes,
    batch_size: u32,
    concurrency: usize,
    lease: TimeDelta,
    poll: Duration,
    stop: Option<CancellationToken>,
    in_hand: PaymentsInHand,
}

/// The claims a payment worker holds and has not recorded, as (payment id, lease): what a
/// daemon that must stop before they finish gives back ([`PaymentsInHand::release`]).
pub type PaymentsInHand = crate::in_hand::InHand<(i64, DateTime<Utc>)>;

impl PaymentsInHand {
    /// Gives back every lease still held; those payments are looked up at the provider when
    /// next claimed (their request may have gone out). Returns how many.
    pub async fn release(&self, store: &dyn Store) -> Result<u64, StoreError> {
        store.release_payments(&self.take()).await
    }
}

/// What one collection did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CollectReport {
    pub claimed: usize,
    pub paid: usize,
    pub declined: usize,
    pub requires_action: usize,
    /// The provider could not be reached: the same attempt is tried again later.
    pub postponed: usize,
    /// Nothing to record: the payment already stood there, or another worker took it over.
    pub unchanged: usize,
}

impl CollectReport {
    fn merge(&mut self, other: &CollectReport) {
        self.claimed += other.claimed;
        self.paid += other.paid;
        self.declined += other.declined;
        self.requires_action += other.requires_action;
        self.postponed += other.postponed;
        self.unchanged += other.unchanged;
    }
}

/// One payment's result within a batch.
enum Step {
    Recorded(Recorded, ChargeOutcome),
    Postponed,
}

impl Collector {
    /// The worker `payments.*` describes; `None` when the storefront collects (`none`).
    pub fn from_settings(
        store: Arc<dyn Store>,
        settings: &Settings,
    ) -> Result<Option<Collector>, String> {
        let p = &settings.payments;
        Ok(Provider::from_settings(p)?.map(|provider| Collector {
            store,
            provider,
            outcomes: Outcomes::from_settings(settings),
            batch_size: p.batch_size,
            concurrency: p.concurrency as usize,
            lease: TimeDelta::seconds(p.lease_secs as i64),
            poll: Duration::from_secs(p.poll_secs),
            stop: None,
            in_hand: PaymentsInHand::default(),
        }))
    }

    /// Stop claiming once `stop` is cancelled (the batch in hand is finished).
    pub fn with_stop(mut self, stop: CancellationToken) -> Collector {
        self.stop = Some(stop);
        self
    }

    /// The claims in hand, for a daemon stopping past its grace period.
    pub fn in_hand(&self) -> PaymentsInHand {
        self.in_hand.clone()
    }

    fn stopping(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(CancellationToken::is_cancelled)
    }

    /// How long the daemon waits between collections (`payments.poll_secs`).
    pub fn poll(&self) -> Duration {
        self.poll
    }

    /// Charges every payment due at `now`, batch by batch, until none is left (or a stop).
    pub async fn collect(&self, now: DateTime<Utc>) -> Result<CollectReport, StoreError> {
        let mut report = CollectReport::default();
        while !self.stopping() {
            let batch = self.collect_batch(now, None).await?;
            report.merge(&batch);
            if batch.claimed < self.batch_size as usize {
                break;
            }
        }
        Ok(report)
    }

    /// Charges, once, the payments of customer `customer_id` due at `now`: what saving a new
    /// card does at once instead of waiting for the worker (the same claims, keys and
    /// recording, so the worker and this never charge one attempt twice).
    pub async fn collect_customer(
        &self,
        customer_id: i64,
        now: DateTime<Utc>,
    ) -> Result<CollectReport, StoreError> {
        self.collect_batch(now, Some(customer_id)).await
    }

    async fn collect_batch(
        &self,
        now: DateTime<Utc>,
        customer_id: Option<i64>,
    ) -> Result<CollectReport, StoreError> {
        let claimed = self
            .store
            .claim_payments(now, now + self.lease, self.batch_size, customer_id)
            .await?;
        let mut report = CollectReport {
            claimed: claimed.len(),
            ..CollectReport::default()
        };
        self.in_hand.hold(
            claimed
                .iter()
                .map(|c| (c.payment.id, (c.payment.id, c.lease_until))),
        );
        let steps: Vec<Result<Step, StoreError>> = futures_util::stream::iter(claimed)
            .map(|c| async move {
                let id = c.payment.id;
                let step = self.charge_one(c, now).await;
                self.in_hand.finish([id]);
                step
            })
            .buffer_unordered(self.concurrency.max(1))
            .collect()
            .await;
        for step in steps {
            match step? {
                Step::Postponed => report.postponed += 1,
                Step::Recorded(Recorded::Written, outcome) => match outcome {
                    ChargeOutcome::Succeeded { .. } => report.paid += 1,
                    ChargeOutcome::Declined { .. } => report.declined += 1,
                    ChargeOutcome::RequiresAction { .. } => report.requires_action += 1,
                },
                Step::Recorded(_, _) => report.unchanged += 1,
            }
        }
        Ok(report)
    }

    async fn charge_one(
        &self,
        claimed: ClaimedPayment,
        now: DateTime<Utc>,
    ) -> Result<Step, StoreError> {
        let payment = &claimed.payment;
        let key = dunning::idempotency_key(payment.order_id, payment.attempt);
        let (Some(customer_ref), Some(method_ref)) =
            (&claimed.refs.customer_ref, &claimed.refs.method_ref)
        else {
            let outcome = ChargeOutcome::Declined {
                payment_ref: None,
                code: "payment_method_missing".into(),
                message: "No payment method is on file.".into(),
            };
            return self.record(&claimed, outcome, now).await;
        };
        let request = ChargeRequest {
            idempotency_key: &key,
            amount: payment.amount,
            customer_ref,
            method_ref,
            order_number: &payment.order_number,
        };
        let earlier = match claimed.in_doubt_since {
            Some(_) => self.provider.find_attempt(&request).await,
            None => Ok(None),
        };
        let answer = match earlier {
            Ok(Some(outcome)) => {
                tracing::info!(
                    payment = payment.id,
                    key,
                    "an attempt sent before a restart had an outcome; recording it"
                );
                Ok(outcome)
            }
            Ok(None) => self.provider.charge(&request).await,
            Err(error) => Err(error),
        };
        match answer {
            Ok(outcome) => self.record(&claimed, outcome, now).await,
            Err(ProviderError::Refused(message)) => {
                let outcome = ChargeOutcome::Declined {
                    payment_ref: None,
                    code: "payment_method_invalid".into(),
                    message,
                };
                self.record(&claimed, outcome, now).await
            }
            Err(ProviderError::Transient(message)) => {
                tracing::warn!(payment = payment.id, error = %message, "payment provider unavailable; trying again later");
                let waited = claimed
                    .in_doubt_since
                    .map_or(RETRY_MIN, |since| now - since);
                let retry_at = now + waited.clamp(RETRY_MIN, RETRY_MAX);
                self.store
                    .postpone_payment(payment.id, claimed.lease_until, retry_at, &message, now)
                    .await?;
                Ok(Step::Postponed)
            }
        }
    }

    async fn record(
        &self,
        claimed: &ClaimedPayment,
        outcome: ChargeOutcome,
        now: DateTime<Utc>,
    ) -> Result<Step, StoreError> {
        let decide = |payment: &_, sub: &_, customer: &_| {
            self.outcomes
                .decide(payment, sub, customer, &outcome, "worker", now)
        };
        let recorded = self
            .store
            .record_payment(claimed.payment.id, claimed.lease_until, &decide, now)
            .await?;
        if recorded == Recorded::LeaseLost {
            tracing::warn!(
                payment = claimed.payment.id,
                "lease expired before the outcome was recorded; the next holder asks the provider"
            );
        }
        Ok(Step::Recorded(recorded, outcome))
    }
}
