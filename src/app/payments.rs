//! The payments' use cases: a customer's payment method (which retries their declined
//! payments at once), one collection run, the payments list, refunds as credit notes, and the
//! provider's webhook events.

use super::idempotency::Commit;
use super::views::{CreditNoteView, PaymentMethodView, PaymentView};
use super::{App, AppError, CustomerRef, Page, PageRequest, customers};
use crate::core::dunning;
use crate::core::model::{Actor, CreditNote, Order, PaymentRefs, PaymentStatus, ProviderKind};
use crate::core::money::{Currency, Money};
use crate::payments::{CollectReport, Collector, Outcomes, Provider, ProviderError, RefundRequest};
use crate::store::{NewCreditNote, PaymentFilter, Recorded};

/// Longest provider reference taken (Stripe's are about 30 characters).
const REF_MAX: usize = 255;

/// Sets the customer's provider references (`cus_…`, `pm_…`); their declined or waiting
/// payments of active subscriptions are tried again at once.
pub async fn set_payment_method(
    app: &App,
    customer: &CustomerRef,
    refs: PaymentRefs,
) -> Result<PaymentMethodView, AppError> {
    for (field, value) in [
        ("customer_ref", &refs.customer_ref),
        ("method_ref", &refs.method_ref),
    ] {
        if let Some(value) = value
            && (value.is_empty()
                || value.len() > REF_MAX
                || !value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-')))
        {
            return Err(AppError::invalid_field(
                field,
                format!(
                    " \"{value}\": expected the provider's reference, letters, digits, _ and - (like cus_Nffrt1 or pm_card_visa)"
                ),
            ));
        }
    }
    let customer = customers::find(app, customer).await?;
    let retried = app
        .store()
        .set_payment_refs(
            customer.id,
            &refs,
            crate::core::dunning::last_attempt(&app.settings().payments.policy()),
            app.now(),
        )
        .await?;
    Ok(PaymentMethodView {
        customer_id: customer.id,
        payment_customer_ref: refs.customer_ref,
        payment_method_ref: refs.method_ref,
        payments_retried: retried,
    })
}

/// After a resume, the subscription's given-up orders are tried again at once (within
/// [`crate::core::dunning::last_attempt`]), and its renewals wait for them: a resumed
/// subscription never bills a new order while an old one is left unpaid. Its own transaction,
/// after the resume's: if it does not happen, the next resume or new card retries them.
pub(crate) async fn retry_after_resume(app: &App, subscription_id: i64) -> Result<u64, AppError> {
    let payments = &app.settings().payments;
    Ok(app
        .store()
        .retry_given_up(
            subscription_id,
            crate::core::dunning::last_attempt(&payments.policy()),
            payments.hold_renewals_while_unpaid,
            app.now(),
        )
        .await?)
}

/// Charges every payment due now, once (`subsave payments collect`).
pub async fn collect(app: &App) -> Result<CollectReport, AppError> {
    let collector = Collector::from_settings(app.store().clone(), app.settings())
        .map_err(AppError::InvalidState)?
        .ok_or_else(no_provider)?;
    Ok(collector.collect(app.now()).await?)
}

fn no_provider() -> AppError {
    AppError::InvalidState(
        "payments.provider is \"none\": the storefront collects the money and subsave charges nothing; set payments.provider = \"stripe\" to charge orders".into(),
    )
}

/// Which payments a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentQuery {
    pub status: Option<PaymentStatus>,
    pub subscription_id: Option<i64>,
}

pub async fn list(
    app: &App,
    query: &PaymentQuery,
    page: PageRequest,
) -> Result<Page<PaymentView>, AppError> {
    let (limit, after_id) = page.fetch();
    let rows = app
        .store()
        .payments(&PaymentFilter {
            status: query.status,
            subscription_id: query.subscription_id,
            limit,
            after_id,
            lag_ok: true,
        })
        .await?;
    Ok(Page::from_rows(rows, page.limit).map(|p| PaymentView::from(&p)))
}

/// An order's payment and its credit notes.
pub async fn of_order(
    app: &App,
    order_number: &str,
) -> Result<(Option<PaymentView>, Vec<CreditNoteView>), AppError> {
    let order = order(app, order_number).await?;
    let payment = app.store().payment_of_order(order.id).await?;
    let notes = app.store().credit_notes(order.id).await?;
    Ok((
        payment.as_ref().map(PaymentView::from),
        notes.iter().map(CreditNoteView::from).collect(),
    ))
}

/// The order and its payment; refused when it has none.
async fn order_and_payment(
    app: &App,
    order_number: &str,
) -> Result<(Order, crate::core::model::Payment), AppError> {
    let order = order(app, order_number).await?;
    let payment = app
        .store()
        .payment_of_order(order.id)
        .await?
        .ok_or_else(|| AppError::InvalidState(format!("order {order_number} has no payment")))?;
    Ok((order, payment))
}

async fn order(app: &App, order_number: &str) -> Result<Order, AppError> {
    app.store().order(order_number).await?.ok_or_else(|| {
        AppError::NotFound(format!(
            "no order {order_number}; see `subsave orders list`"
        ))
    })
}

/// Refunds `amount` of an order (all that is left when `None`) through its provider and
/// writes a credit note: the refunded amount with its tax part, in proportion to the order's
/// tax, with its `refunded` event and `refund.created` webhook events. Orders stay as they were. Refunds add up to at most what was paid; an order the
/// storefront collected (`external`) gets its credit note only (the storefront refunds). The
/// credit note's transaction is ended by `commit`.
pub async fn refund(
    app: &App,
    order_number: &str,
    amount: Option<Money>,
    reason: &str,
    actor: &Actor,
    commit: Commit<'_, CreditNoteView>,
) -> Result<CreditNoteView, AppError> {
    refund_checked(app, order_number, amount, reason, actor, None, commit).await
}

/// [`refund`] for a person who was shown the order with `seen_refunded` refunded already:
/// refused as stale, before the provider is asked, when more was refunded since (the store
/// refuses a refund recorded meanwhile too).
pub async fn refund_as_seen(
    app: &App,
    order_number: &str,
    amount: Money,
    reason: &str,
    actor: &Actor,
    seen_refunded: Money,
) -> Result<CreditNoteView, AppError> {
    refund_checked(
        app,
        order_number,
        Some(amount),
        reason,
        actor,
        Some(seen_refunded),
        Commit::Plain,
    )
    .await
}

/// Puts the given-up payments of order `order_number`'s subscription back in the queue (what
/// a resume does: [`retry_after_resume`]); returns how many. Refused when the order's payment
/// is not given up (declined with no retry due) or has had its last attempt.
pub async fn retry_given_up(app: &App, order_number: &str) -> Result<u64, AppError> {
    let (_, payment) = order_and_payment(app, order_number).await?;
    if payment.status != PaymentStatus::Failed || payment.next_attempt_at.is_some() {
        return Err(AppError::InvalidState(format!(
            "order {order_number}'s payment is {}{}: only a declined payment with no retry due is retried from here",
            payment.status.as_str(),
            payment
                .next_attempt_at
                .map(|at| format!(", tried again at {}", at.format("%Y-%m-%d %H:%M UTC")))
                .unwrap_or_default()
        )));
    }
    match retry_after_resume(app, payment.subscription_id).await? {
        0 => Err(AppError::InvalidState(format!(
            "order {order_number}'s payment had its last attempt ({}): ask the customer for a new card (a new payment method retries it)",
            payment.attempt
        ))),
        retried => Ok(retried),
    }
}

/// The currency of order `order_number`'s payment: what a refund's amount is in.
pub async fn order_currency(app: &App, order_number: &str) -> Result<Currency, AppError> {
    let (_, payment) = order_and_payment(app, order_number).await?;
    Ok(payment.amount.currency())
}

#[allow(clippy::too_many_arguments)]
async fn refund_checked(
    app: &App,
    order_number: &str,
    amount: Option<Money>,
    reason: &str,
    actor: &Actor,
    seen_refunded: Option<Money>,
    commit: Commit<'_, CreditNoteView>,
) -> Result<CreditNoteView, AppError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.len() > 500 || reason.chars().any(char::is_control) {
        return Err(AppError::invalid_field(
            "reason",
            ": say why, in 1-500 printable characters (finance reads it on the credit note)",
        ));
    }
    let (order, payment) = order_and_payment(app, order_number).await?;
    if !(payment.status.collected() || payment.status == PaymentStatus::External) {
        return Err(AppError::InvalidState(format!(
            "order {order_number} is not paid (its payment is {}): nothing to refund",
            payment.status.as_str()
        )));
    }
    if let Some(seen) = seen_refunded
        && seen != payment.refunded
    {
        return Err(AppError::Conflict(format!(
            "order {order_number} was refunded {} since it was shown ({seen} then); nothing was done",
            payment.refunded
        )));
    }
    let left = payment.refundable();
    let amount = amount.unwrap_or(left);
    if amount.currency() != left.currency() {
        return Err(AppError::invalid_field(
            "amount",
            format!(" {amount}: the order is in {}", left.currency().code()),
        ));
    }
    if amount.minor() <= 0 || amount.minor() > left.minor() {
        return Err(AppError::invalid_field(
            "amount",
            format!(
                " {amount}: at most {left} of order {order_number} is left to refund (paid {}, refunded {})",
                payment.amount, payment.refunded
            ),
        ));
    }
    let tax_in_order = order
        .lines
        .iter()
        .filter(|l| l.kind == "tax")
        .map(|l| l.amount.minor())
        .sum::<i64>()
        + order.tax_included.map_or(0, |t| t.minor());
    let tax = dunning::refund_tax_part(
        amount,
        order.total,
        Money::from_minor(tax_in_order, amount.currency()),
    );
    // Derived from what was refunded before: asking again after a failure sends the same key
    // (the provider refunds once); a second refund after this one gets a new key.
    let key = format!(
        "subsave-refund-{}-{}-{}",
        order.id,
        payment.refunded.minor(),
        amount.minor()
    );
    let provider_refund_ref = match (payment.provider, &payment.provider_payment_ref) {
        (ProviderKind::None, _) => None,
        (_, None) => {
            return Err(AppError::InvalidState(format!(
                "order {order_number}'s payment has no provider reference to refund"
            )));
        }
        (_, Some(payment_ref)) => {
            let provider = Provider::from_settings(&app.settings().payments)
                .map_err(AppError::InvalidState)?
                .filter(|p| p.kind() == payment.provider)
                .ok_or_else(|| {
                    AppError::InvalidState(format!(
                        "order {order_number} was paid through {}, which payments.provider does not name now",
                        payment.provider.as_str()
                    ))
                })?;
            let refunded = provider
                .refund(&RefundRequest {
                    idempotency_key: &key,
                    payment_ref,
                    amount,
                })
                .await;
            Some(refunded.map_err(|e| match e {
                ProviderError::Transient(m) => AppError::Unavailable(format!(
                    "{m}; nothing was refunded or recorded: run the same refund again"
                )),
                ProviderError::Refused(m) => AppError::InvalidState(m),
            })?)
        }
    };
    let now = app.now();
    let outcomes = Outcomes::from_settings(app.settings());
    let record = |note: &CreditNote, sub: &_| outcomes.refunded(note, sub, actor, now);
    let mut tx = app.store().begin_write().await?;
    let note = tx
        .record_credit_note(
            &NewCreditNote {
                payment_id: payment.id,
                order_id: order.id,
                amount,
                tax,
                reason: reason.to_owned(),
                provider_refund_ref,
                actor: actor.0.clone(),
                billing_date: now
                    .with_timezone(&app.settings().finance.time_zone)
                    .date_naive(),
                refunded_before: payment.refunded,
            },
            &record,
            now,
        )
        .await?;
    let view = CreditNoteView::from(&note);
    commit.finish(tx, &view, now).await?;
    Ok(view)
}

/// What a Stripe webhook event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    Applied(Recorded),
    /// A type subsave does not act on.
    Ignored,
}

/// Applies a verified Stripe event (`payment_intent.succeeded`, `payment_intent.payment_failed`)
/// to its payment, once per event id, through the same [`Outcomes`] as the worker (so its
/// webhook events go out too).
pub async fn apply_stripe_event(
    app: &App,
    event: &serde_json::Value,
) -> Result<EventOutcome, AppError> {
    let (Some(id), Some(kind), Some(intent)) = (
        event["id"].as_str(),
        event["type"].as_str(),
        event["data"]["object"]["id"].as_str(),
    ) else {
        return Err(AppError::invalid(
            "the event needs id, type and data.object.id",
        ));
    };
    // The event's object is the PaymentIntent as it stands: read like an API answer.
    let outcome = match kind {
        "payment_intent.succeeded" | "payment_intent.payment_failed" => {
            match crate::payments::stripe::intent_outcome(&event["data"]["object"]) {
                Ok(outcome) => outcome,
                Err(_) => return Ok(EventOutcome::Ignored),
            }
        }
        _ => return Ok(EventOutcome::Ignored),
    };
    let recorded = record_provider_outcome(
        app,
        ProviderKind::Stripe,
        id,
        kind,
        intent,
        &outcome,
        &format!("webhook:{id}"),
    )
    .await?;
    Ok(EventOutcome::Applied(recorded))
}

/// Records what the provider says of the payment with `payment_ref`, once per `event_id`
/// (a webhook's event, or a customer page's reading of the same PaymentIntent): the one
/// path the webhook door and the 3-D Secure page share, so a replay of either, or both,
/// changes nothing more than one did.
pub(crate) async fn record_provider_outcome(
    app: &App,
    provider: ProviderKind,
    event_id: &str,
    kind: &str,
    payment_ref: &str,
    outcome: &dunning::ChargeOutcome,
    source: &str,
) -> Result<Recorded, AppError> {
    let outcomes = Outcomes::from_settings(app.settings());
    let now = app.now();
    let decide = |payment: &_, sub: &_, customer: &_| {
        outcomes.decide(payment, sub, customer, outcome, source, now)
    };
    Ok(app
        .store()
        .apply_provider_event(provider, event_id, kind, payment_ref, &decide, now)
        .await?)
}
