//! Payments and dunning as rules: what the outcome of a charge does to its payment, to its
//! subscription and to the customer's mail, and how a refund splits into a credit note (and
//! the event it records).
//!
//! Owns: the idempotency key of an attempt (derived from the order and the attempt number),
//! which declines are hard (never retried), the retry schedule (days after the order's first
//! try, `payments.retry_days`), the final action once tries are over (an event `past_due`,
//! then pause or cancel through [`lifecycle::apply`]), the renewal hold while an order is
//! unpaid, and the emails each step sends. Pure: no IO and no clock; the payment worker and
//! the provider's webhooks call [`decide`] inside the transaction that records the outcome.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::json;

use crate::core::catalog::Catalog;
use crate::core::lifecycle::{self, Operation};
use crate::core::model::{
    Actor, Change, CreditNote, Customer, MessageKind, NewEvent, NewMessage, Payment, PaymentStatus,
    Status, Subscription,
};
use crate::core::money::Money;
use crate::core::snapshot::{customer_snapshot, state_summary};

/// What happens after the last try failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinalAction {
    Pause,
    Cancel,
}

/// The dunning rules an operator configures (`[payments]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DunningPolicy {
    /// Retries after a decline, in days after the order's first try (default 1, 3, 5, 7).
    pub retry_days: Vec<u32>,
    pub final_action: FinalAction,
    /// Whether a subscription's next renewal waits while an order of it is unpaid.
    pub hold_renewals: bool,
    /// Where a customer updates their payment method (the storefront's page); `None`: the
    /// subscription's own page, linked from every email.
    pub update_payment_url: Option<String>,
}

impl Default for DunningPolicy {
    fn default() -> Self {
        DunningPolicy {
            retry_days: vec![1, 3, 5, 7],
            final_action: FinalAction::Pause,
            hold_renewals: true,
            update_payment_url: None,
        }
    }
}

/// What the provider said about one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    Succeeded {
        payment_ref: String,
        fee_minor: Option<i64>,
    },
    /// The customer must authenticate (3-D Secure) before the charge can go through.
    RequiresAction { payment_ref: String },
    Declined {
        payment_ref: Option<String>,
        code: String,
        message: String,
    },
}

/// The key sent as the provider's `Idempotency-Key`: the same order and attempt always send
/// the same key, so a retry after a crash or a network failure never charges twice.
pub fn idempotency_key(order_id: i64, attempt: u32) -> String {
    format!("subsave-order-{order_id}-attempt-{attempt}")
}

/// Declines that no retry can fix: the card is reported lost or stolen, or the bank refuses
/// the merchant. Retrying them is what card networks penalize.
pub fn is_hard_decline(code: &str) -> bool {
    matches!(
        code,
        "stolen_card"
            | "lost_card"
            | "pickup_card"
            | "fraudulent"
            | "restricted_card"
            | "revocation_of_authorization"
            | "revocation_of_all_authorizations"
            | "security_violation"
            | "merchant_blacklist"
            | "invalid_account"
            | "card_not_supported"
            | "currency_not_supported"
    )
}

/// The payment's new state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentUpdate {
    pub status: PaymentStatus,
    pub attempt: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub provider_payment_ref: Option<String>,
    pub decline_code: Option<String>,
    pub last_error: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    pub fee_minor: Option<i64>,
}

/// One attempt's outcome, appended to `payment_attempts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub attempt: u32,
    pub idempotency_key: String,
    pub outcome: &'static str,
    pub provider_payment_ref: Option<String>,
    pub decline_code: Option<String>,
    pub message: Option<String>,
    /// `worker`, or the webhook event that reported it.
    pub source: String,
}

/// Whether the subscription's renewals wait for this payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    Keep,
    /// Its renewals wait for this order.
    Set,
    /// They no longer do (if this order was what they waited for).
    Clear,
}

/// Everything one outcome changes, written in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentChange {
    pub update: PaymentUpdate,
    pub attempt: AttemptRecord,
    /// The subscription's events and emails (and, for a final failure, its pause or
    /// cancellation).
    pub change: Change,
    pub hold: Hold,
}

/// What `outcome` does to `payment` (of `sub`, whose customer is `customer`) at `now`.
/// `None`: it changes nothing (the payment already stands where the outcome puts it, as when
/// the worker and a webhook report the same success).
#[allow(clippy::too_many_arguments)]
pub fn decide(
    payment: &Payment,
    sub: &Subscription,
    customer: &Customer,
    outcome: &ChargeOutcome,
    source: &str,
    policy: &DunningPolicy,
    catalog: &Catalog,
    now: DateTime<Utc>,
) -> Option<PaymentChange> {
    let decision = Decision {
        payment,
        sub,
        customer,
        source,
        policy,
        catalog,
        now,
    };
    match outcome {
        ChargeOutcome::Succeeded {
            payment_ref,
            fee_minor,
        } => decision.succeeded(payment_ref, *fee_minor),
        ChargeOutcome::RequiresAction { payment_ref } => decision.requires_action(payment_ref),
        ChargeOutcome::Declined {
            payment_ref,
            code,
            message,
        } => decision.declined(payment_ref.as_deref(), code, message),
    }
}

/// The facts [`decide`] weighs, shared by its three outcomes.
struct Decision<'a> {
    payment: &'a Payment,
    sub: &'a Subscription,
    customer: &'a Customer,
    source: &'a str,
    policy: &'a DunningPolicy,
    catalog: &'a Catalog,
    now: DateTime<Utc>,
}

impl Decision<'_> {
    /// The subscription's change, so far none but its time.
    fn change(&self) -> Change {
        let mut after = self.sub.clone();
        after.updated_at = self.now;
        Change::of(after)
    }

    /// This attempt, as `payment_attempts` records it.
    fn record(
        &self,
        outcome: &'static str,
        payment_ref: Option<&str>,
        code: Option<String>,
        message: Option<String>,
    ) -> AttemptRecord {
        AttemptRecord {
            attempt: self.payment.attempt,
            idempotency_key: idempotency_key(self.payment.order_id, self.payment.attempt),
            outcome,
            provider_payment_ref: payment_ref.map(str::to_owned),
            decline_code: code,
            message,
            source: self.source.to_owned(),
        }
    }

    /// Whether renewals wait for this payment (`set`) or no longer do, when the policy holds
    /// them at all.
    fn hold(&self, set: bool) -> Hold {
        match (self.policy.hold_renewals, set) {
            (false, _) => Hold::Keep,
            (true, true) => Hold::Set,
            (true, false) => Hold::Clear,
        }
    }

    /// The email of `kind` about this payment, of the subscription as it stands in `sub`.
    fn mail(&self, kind: MessageKind, sub: &Subscription, extra: serde_json::Value) -> NewMessage {
        mail(kind, self.payment, sub, self.customer, self.policy, extra)
    }

    fn succeeded(&self, payment_ref: &str, fee_minor: Option<i64>) -> Option<PaymentChange> {
        let payment = self.payment;
        if payment.status.collected() {
            return None;
        }
        let mut change = self.change();
        let recovered = matches!(
            payment.status,
            PaymentStatus::Failed | PaymentStatus::RequiresAction
        );
        change
            .events
            .push(event(payment, self.sub, "payment_succeeded", json!({})));
        if recovered {
            change
                .messages
                .push(self.mail(MessageKind::PaymentReceived, self.sub, json!({})));
        }
        Some(PaymentChange {
            update: PaymentUpdate {
                status: PaymentStatus::Paid,
                attempt: payment.attempt,
                next_attempt_at: None,
                provider_payment_ref: Some(payment_ref.to_owned()),
                decline_code: None,
                last_error: None,
                paid_at: Some(self.now),
                fee_minor,
            },
            attempt: self.record("succeeded", Some(payment_ref), None, None),
            change,
            hold: self.hold(false),
        })
    }

    fn requires_action(&self, payment_ref: &str) -> Option<PaymentChange> {
        let payment = self.payment;
        if payment.status.collected()
            || (payment.status == PaymentStatus::RequiresAction
                && payment.provider_payment_ref.as_deref() == Some(payment_ref))
        {
            return None;
        }
        let mut change = self.change();
        change.events.push(event(
            payment,
            self.sub,
            "payment_requires_action",
            json!({ "payment_ref": payment_ref }),
        ));
        change.messages.push(self.mail(
            MessageKind::PaymentActionRequired,
            self.sub,
            json!({ "action_url": action_url(self.policy, payment, payment_ref) }),
        ));
        Some(PaymentChange {
            update: PaymentUpdate {
                status: PaymentStatus::RequiresAction,
                attempt: payment.attempt,
                next_attempt_at: None,
                provider_payment_ref: Some(payment_ref.to_owned()),
                decline_code: None,
                last_error: None,
                paid_at: None,
                fee_minor: None,
            },
            attempt: self.record("requires_action", Some(payment_ref), None, None),
            change,
            hold: self.hold(true),
        })
    }

    fn declined(
        &self,
        payment_ref: Option<&str>,
        code: &str,
        message: &str,
    ) -> Option<PaymentChange> {
        let payment = self.payment;
        // Nothing to do once paid or given up, nor for a decline already recorded (the
        // worker's answer and the webhook about the same PaymentIntent).
        if payment.status.collected()
            || (payment.status == PaymentStatus::Failed
                && (payment.next_attempt_at.is_none()
                    || (payment_ref.is_some()
                        && payment.provider_payment_ref.as_deref() == payment_ref)))
        {
            return None;
        }
        let mut change = self.change();
        let retry = next_retry(payment, self.policy, code, self.now);
        let attempt = self.record(
            "declined",
            payment_ref,
            Some(code.to_owned()),
            Some(message.to_owned()),
        );
        let detail = json!({ "decline_code": code, "message": message });
        change
            .events
            .push(event(payment, self.sub, "payment_failed", detail.clone()));
        let mut update = PaymentUpdate {
            status: PaymentStatus::Failed,
            attempt: payment.attempt,
            next_attempt_at: None,
            provider_payment_ref: payment_ref
                .map(str::to_owned)
                .or(payment.provider_payment_ref.clone()),
            decline_code: Some(code.to_owned()),
            last_error: Some(message.to_owned()),
            paid_at: None,
            fee_minor: None,
        };
        if let Some(at) = retry {
            update.attempt = payment.attempt + 1;
            update.next_attempt_at = Some(at);
            change.messages.push(self.mail(
                MessageKind::PaymentFailed,
                self.sub,
                json!({ "decline_message": message, "next_attempt_at": at, "final_action": null }),
            ));
            return Some(PaymentChange {
                update,
                attempt,
                change,
                hold: self.hold(true),
            });
        }
        self.give_up(&mut change, detail, message);
        Some(PaymentChange {
            update,
            attempt,
            change,
            hold: self.hold(false),
        })
    }

    /// Tries are over: the subscription is past due, then paused or cancelled. Its own pause
    /// or cancellation email is replaced by one that says why.
    fn give_up(&self, change: &mut Change, detail: serde_json::Value, message: &str) {
        let payment = self.payment;
        change
            .events
            .push(event(payment, self.sub, "past_due", detail));
        let operation = match self.policy.final_action {
            FinalAction::Pause => Operation::Pause { until: None },
            FinalAction::Cancel => Operation::Cancel {
                reason: format!("payment failed: order {}", payment.order_number),
            },
        };
        let mut final_action = None;
        if self.sub.status == Status::Active
            && let Ok(done) = lifecycle::apply(
                self.sub,
                self.customer,
                &operation,
                self.catalog,
                &Actor::payments(),
                self.now,
            )
        {
            change.after = done.after;
            change.events.extend(done.events);
            final_action = Some(self.policy.final_action);
        }
        let email = self.mail(
            MessageKind::PaymentFailed,
            &change.after,
            json!({ "decline_message": message, "next_attempt_at": null, "final_action": final_action }),
        );
        change.messages.push(email);
    }
}

/// When a declined attempt is tried again: the next of `retry_days` after the order's first
/// try (at once if that is past), or `None` when tries are over or the decline is hard.
pub fn next_retry(
    payment: &Payment,
    policy: &DunningPolicy,
    code: &str,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if is_hard_decline(code) {
        return None;
    }
    let days = *policy.retry_days.get(payment.attempt as usize - 1)?;
    Some((payment.created_at + TimeDelta::days(i64::from(days))).max(now))
}

/// How many more tries a given-up order gets from a new payment method or a resume.
pub const TRIES_AFTER_GIVING_UP: u32 = 2;

/// The last attempt an order may reach: the scheduled tries, then [`TRIES_AFTER_GIVING_UP`]
/// more when the customer saves a new card or resumes the subscription. A given-up order is
/// never forgotten: it is retried then, and a decline pauses (or cancels) the subscription
/// again, as the final failure did.
pub fn last_attempt(policy: &DunningPolicy) -> u32 {
    u32::try_from(policy.retry_days.len())
        .unwrap_or(u32::MAX)
        .saturating_add(1 + TRIES_AFTER_GIVING_UP)
}

/// Where the customer confirms a payment that needs them: the storefront's payment page
/// (`payments.update_payment_url`) with the order and the provider's payment, so that the page
/// can complete it (Stripe.js with that PaymentIntent); `None` without a storefront page.
fn action_url(policy: &DunningPolicy, payment: &Payment, payment_ref: &str) -> Option<String> {
    let base = policy.update_payment_url.as_deref()?;
    let separator = if base.contains('?') { '&' } else { '?' };
    let query: String = serde_urlencoded::to_string([
        ("order", payment.order_number.as_str()),
        ("payment_intent", payment_ref),
    ])
    .ok()?;
    Some(format!("{base}{separator}{query}"))
}

fn event(payment: &Payment, sub: &Subscription, kind: &str, extra: serde_json::Value) -> NewEvent {
    let mut detail = json!({
        "order": payment.order_number,
        "attempt": payment.attempt,
        "amount_minor": payment.amount.minor(),
    });
    if let (Some(map), serde_json::Value::Object(extra)) = (detail.as_object_mut(), extra) {
        map.extend(extra);
    }
    NewEvent {
        subscription_id: sub.id,
        kind: kind.to_owned(),
        actor: Actor::payments(),
        cycle: None,
        detail,
    }
}

fn mail(
    kind: MessageKind,
    payment: &Payment,
    sub: &Subscription,
    customer: &Customer,
    policy: &DunningPolicy,
    extra: serde_json::Value,
) -> NewMessage {
    let mut payload = json!({
        "customer": customer_snapshot(customer),
        "subscription": state_summary(sub),
        "payment": {
            "order_number": payment.order_number,
            "amount_minor": payment.amount.minor(),
            "currency": payment.amount.currency().code(),
            "attempt": payment.attempt,
        },
        "update_payment_url": policy.update_payment_url,
    });
    if let (Some(map), serde_json::Value::Object(extra)) = (payload.as_object_mut(), extra) {
        map.extend(extra);
    }
    NewMessage::now(kind, customer.email.clone(), sub.id, None, payload)
}

/// How a refund of `amount` from an order of `total` with `tax` in it splits: the tax part,
/// in proportion, rounded half away from zero; the rest is the refunded goods net of tax.
pub fn refund_tax_part(amount: Money, total: Money, tax: Money) -> Money {
    tax.share(amount.minor(), total.minor())
}

/// What a credit note written for an order of `sub` records there: a `refunded` event (the
/// order, the note's number, the amount with its currency and tax part, the reason). The
/// subscription itself stays as it is.
pub fn refunded(note: &CreditNote, sub: &Subscription, actor: &Actor) -> Change {
    Change {
        after: sub.clone(),
        orders: vec![],
        events: vec![NewEvent {
            subscription_id: sub.id,
            kind: "refunded".into(),
            actor: actor.clone(),
            cycle: None,
            detail: json!({
                "order": note.order_number,
                "credit_note": note.number,
                "amount_minor": note.amount.minor(),
                "currency": note.amount.currency().code(),
                "tax_minor": note.tax.minor(),
                "reason": note.reason,
            }),
        }],
        messages: vec![],
        consent: None,
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_given_up_order_gets_two_more_tries_after_the_schedule() {
        let policy = DunningPolicy {
            retry_days: vec![1, 3, 5, 7],
            ..DunningPolicy::default()
        };
        assert_eq!(
            last_attempt(&policy),
            7,
            "1 + 4 scheduled + 2 after giving up"
        );
        let none = DunningPolicy {
            retry_days: vec![],
            ..DunningPolicy::default()
        };
        assert_eq!(last_attempt(&none), 3);
    }
    use super::*;
    use crate::core::model::ProviderKind;
    use crate::core::money::Currency;
    use crate::test_support::{at, customer_in, default_catalog, subscription_in};

    fn usd(minor: i64) -> Money {
        Money::from_minor(minor, Currency::Usd)
    }

    fn payment(status: PaymentStatus, attempt: u32) -> Payment {
        Payment {
            id: 1,
            order_id: 7,
            order_number: "BB-0000001-001".into(),
            subscription_id: 1,
            customer_id: 1,
            provider: ProviderKind::Stripe,
            status,
            amount: usd(4999),
            attempt,
            next_attempt_at: None,
            provider_payment_ref: None,
            decline_code: None,
            last_error: None,
            paid_at: None,
            fee: None,
            refunded: usd(0),
            created_at: at("2027-01-10T09:00:00Z"),
            updated_at: at("2027-01-10T09:00:00Z"),
        }
    }

    fn fixtures() -> (Subscription, Customer, Catalog) {
        (
            subscription_in("UTC", "2027-01-10T09:00", "2027-01-10T09:00:00Z"),
            customer_in("UTC"),
            default_catalog(),
        )
    }

    /// `decide` for the fixtures under the default policy, at `now`.
    fn decide_at(
        payment: &Payment,
        outcome: &ChargeOutcome,
        now: DateTime<Utc>,
    ) -> Option<PaymentChange> {
        let (sub, cust, cat) = fixtures();
        decide(
            payment,
            &sub,
            &cust,
            outcome,
            "worker",
            &DunningPolicy::default(),
            &cat,
            now,
        )
    }

    fn declined(code: &str) -> ChargeOutcome {
        ChargeOutcome::Declined {
            payment_ref: None,
            code: code.into(),
            message: "Your card was declined.".into(),
        }
    }

    #[test]
    fn keys_are_derived_from_order_and_attempt() {
        assert_eq!(idempotency_key(7, 1), "subsave-order-7-attempt-1");
        assert_ne!(idempotency_key(7, 1), idempotency_key(7, 2));
    }

    #[test]
    fn declines_follow_the_schedule_then_the_final_action() {
        // attempt → (retried at, emails, subscription status after)
        let table = [
            (1, Some("2027-01-11T09:00:00Z")),
            (2, Some("2027-01-13T09:00:00Z")),
            (3, Some("2027-01-15T09:00:00Z")),
            (4, Some("2027-01-17T09:00:00Z")),
            (5, None),
        ];
        for (attempt, retry) in table {
            let now = at("2027-01-10T09:00:00Z");
            let p = payment(PaymentStatus::Pending, attempt);
            let change = decide_at(&p, &declined("card_declined"), now).unwrap();
            assert_eq!(change.update.status, PaymentStatus::Failed);
            assert_eq!(
                change.update.next_attempt_at,
                retry.map(at),
                "attempt {attempt}"
            );
            assert_eq!(change.change.messages.len(), 1);
            assert_eq!(change.change.messages[0].kind, MessageKind::PaymentFailed);
            match retry {
                Some(_) => {
                    assert_eq!(change.update.attempt, attempt + 1);
                    assert_eq!(change.hold, Hold::Set);
                    assert_eq!(change.change.after.status, Status::Active);
                }
                None => {
                    assert_eq!(change.hold, Hold::Clear);
                    assert_eq!(change.change.after.status, Status::Paused);
                    let kinds: Vec<&str> = change
                        .change
                        .events
                        .iter()
                        .map(|e| e.kind.as_str())
                        .collect();
                    assert_eq!(kinds, ["payment_failed", "past_due", "pause"]);
                    assert_eq!(change.change.messages[0].payload["final_action"], "pause");
                }
            }
        }
    }

    #[test]
    fn a_late_retry_happens_at_once_and_hard_declines_are_final() {
        let policy = DunningPolicy {
            final_action: FinalAction::Cancel,
            ..DunningPolicy::default()
        };
        let late = at("2027-02-01T00:00:00Z");
        let p = payment(PaymentStatus::Pending, 2);
        assert_eq!(next_retry(&p, &policy, "card_declined", late), Some(late));
        assert_eq!(next_retry(&p, &policy, "stolen_card", late), None);
        let change = decide(
            &p,
            &fixtures().0,
            &fixtures().1,
            &declined("stolen_card"),
            "worker",
            &policy,
            &default_catalog(),
            late,
        )
        .unwrap();
        assert_eq!(change.change.after.status, Status::Cancelled);
        assert_eq!(change.update.next_attempt_at, None);
    }

    #[test]
    fn success_is_recorded_once_and_a_recovery_is_announced() {
        let ok = ChargeOutcome::Succeeded {
            payment_ref: "pi_1".into(),
            fee_minor: Some(175),
        };
        let now = at("2027-01-13T09:00:00Z");
        let first = decide_at(&payment(PaymentStatus::Pending, 1), &ok, now).unwrap();
        assert_eq!(first.update.status, PaymentStatus::Paid);
        assert!(first.change.messages.is_empty());
        let recovered = decide_at(&payment(PaymentStatus::Failed, 3), &ok, now).unwrap();
        assert_eq!(
            recovered.change.messages[0].kind,
            MessageKind::PaymentReceived
        );
        assert_eq!(recovered.hold, Hold::Clear);
        assert!(decide_at(&payment(PaymentStatus::Paid, 1), &ok, now).is_none());
    }

    #[test]
    fn a_decline_reported_twice_counts_once() {
        let now = at("2027-01-10T09:00:00Z");
        let outcome = ChargeOutcome::Declined {
            payment_ref: Some("pi_5".into()),
            code: "card_declined".into(),
            message: "Your card was declined.".into(),
        };
        let first = decide_at(&payment(PaymentStatus::Pending, 1), &outcome, now).unwrap();
        let mut after = payment(PaymentStatus::Failed, first.update.attempt);
        after.next_attempt_at = first.update.next_attempt_at;
        after.provider_payment_ref = first.update.provider_payment_ref.clone();
        assert!(decide_at(&after, &outcome, now).is_none());
    }

    #[test]
    fn action_required_is_mailed_once_per_payment_intent() {
        let outcome = ChargeOutcome::RequiresAction {
            payment_ref: "pi_9".into(),
        };
        let now = at("2027-01-10T09:00:00Z");
        let first = decide_at(&payment(PaymentStatus::Pending, 1), &outcome, now).unwrap();
        assert_eq!(
            first.change.messages[0].kind,
            MessageKind::PaymentActionRequired
        );
        assert_eq!(
            first.change.messages[0].payload["action_url"],
            serde_json::Value::Null
        );
        let storefront = DunningPolicy {
            update_payment_url: Some("https://shop.example/pay?from=mail".into()),
            ..DunningPolicy::default()
        };
        let (sub, cust, cat) = fixtures();
        let linked = decide(
            &payment(PaymentStatus::Pending, 1),
            &sub,
            &cust,
            &outcome,
            "worker",
            &storefront,
            &cat,
            now,
        )
        .unwrap();
        assert_eq!(
            linked.change.messages[0].payload["action_url"],
            "https://shop.example/pay?from=mail&order=BB-0000001-001&payment_intent=pi_9"
        );
        let mut waiting = payment(PaymentStatus::RequiresAction, 1);
        waiting.provider_payment_ref = Some("pi_9".into());
        assert!(decide_at(&waiting, &outcome, now).is_none());
    }

    #[test]
    fn refund_tax_is_proportional_and_rounded_half_away_from_zero() {
        // (refund, total, tax in total) → tax part
        for (amount, total, tax, part) in [
            (5000, 5000, 800, 800),
            (2500, 5000, 800, 400),
            (1, 3, 1, 0),
            (3, 6, 1, 1),
            (100, 0, 0, 0),
        ] {
            assert_eq!(
                refund_tax_part(usd(amount), usd(total), usd(tax)),
                usd(part),
                "{amount} of {total} with {tax} tax"
            );
        }
    }
}
