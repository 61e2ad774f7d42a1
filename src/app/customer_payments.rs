//! What a customer does about their payments through a signed link: save a new card (a
//! Stripe SetupIntent confirmed by Stripe.js in their browser, or the simulated provider's test
//! card), which retries their unpaid orders at once; and complete a payment that waits for
//! 3-D Secure, on-session.
//!
//! No card data passes through subsave: the browser gives the card to Stripe, and subsave
//! reads the outcome from Stripe by id, never from what the browser says. A SetupIntent
//! counts only if Stripe says it succeeded for this customer's Stripe customer, with our
//! customer in its metadata; a PaymentIntent only if it is the one of this subscription's
//! order. A recorded outcome goes through [`payments::record_provider_outcome`], the webhook's
//! path, once per PaymentIntent. Owns: those checks. Must not: read HTTP or verify tokens (the
//! door does), or show another subscription's orders.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::{App, AppError, CustomerRef, customers, payments, subscriptions};
use crate::core::dunning::ChargeOutcome;
use crate::core::model::{Customer, Order, Payment, PaymentRefs, PaymentStatus, ProviderKind};
use crate::core::money::Money;
use crate::payments::stripe::{StripeClient, intent_outcome};
use crate::payments::{Collector, Provider, ProviderError};
use crate::store::PaymentFilter;

/// The simulated provider's test card (paid by the simulation).
pub const TEST_CARD: &str = "pm_card_visa";

/// The most unpaid orders a page lists.
const UNPAID_SHOWN: u32 = 20;

/// How a customer gives a new card here.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CardEntry {
    /// Stripe.js in the page, with the publishable key, from `js_url`.
    Stripe {
        publishable_key: String,
        js_url: String,
    },
    /// The simulated provider's test card (the demo): a plain form, no script.
    TestCard,
    /// Not here: no provider, or no publishable key. The text says why, in the customer's
    /// terms.
    Unavailable { reason: String },
}

impl CardEntry {
    /// Whether the page loads Stripe.js.
    pub fn script(&self) -> bool {
        matches!(self, CardEntry::Stripe { .. })
    }
}

/// An order of the subscription whose payment is not collected.
#[derive(Debug, Clone, Serialize)]
pub struct UnpaidOrder {
    pub order_number: String,
    pub total: Money,
    /// The payment's state: `failed`, `requires_action`, `pending` or, after a new card,
    /// `paid`.
    pub status: String,
    /// When it is tried again, if it is.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl From<&Payment> for UnpaidOrder {
    fn from(payment: &Payment) -> UnpaidOrder {
        UnpaidOrder {
            order_number: payment.order_number.clone(),
            total: payment.amount,
            status: payment.status.as_str().to_owned(),
            next_attempt_at: payment.next_attempt_at,
        }
    }
}

/// The card page.
#[derive(Debug, Clone, Serialize)]
pub struct CardPage {
    pub customer_name: String,
    pub locale: String,
    pub time_zone: String,
    pub entry: CardEntry,
    /// The subscription's orders waiting for a payment (declined, or for 3-D Secure).
    pub unpaid: Vec<UnpaidOrder>,
    /// The storefront's payment-method page (`payments.update_payment_url`), if any.
    pub storefront_url: Option<String>,
    /// The subscription's status: a paused one's orders are charged again when it resumes.
    pub subscription_status: String,
}

/// What saving a card did.
#[derive(Debug, Clone, Serialize)]
pub struct CardSaved {
    /// The card was already the customer's: nothing was changed.
    pub already: bool,
    /// The orders that were unpaid, as they stand now (after the retry).
    pub orders: Vec<UnpaidOrder>,
    /// The subscription's status: a paused one's orders are charged again when it resumes.
    pub subscription_status: String,
    pub customer_name: String,
    pub locale: String,
    pub time_zone: String,
}

/// The page that completes a payment waiting for 3-D Secure.
#[derive(Debug, Clone, Serialize)]
pub struct ConfirmPage {
    pub customer_name: String,
    pub locale: String,
    pub order_number: String,
    pub total: Money,
    /// `confirm` (the customer authenticates), `confirmed` (Stripe has it; the page records
    /// it on a post), `paid` (nothing left to do), or `other` (the payment is not waiting).
    pub state: &'static str,
    pub entry: CardEntry,
    /// The PaymentIntent's client secret, for Stripe.js (only while it waits).
    pub client_secret: Option<String>,
}

/// What a confirmation's return did.
#[derive(Debug, Clone, Serialize)]
pub struct Confirmed {
    pub customer_name: String,
    pub locale: String,
    pub order_number: String,
    pub total: Money,
    /// `paid` (recorded now or before), or `waiting` (Stripe does not say it succeeded:
    /// nothing was recorded).
    pub state: &'static str,
}

/// A subscription's customer, their provider references, and the subscription's status.
struct Holder {
    customer: Customer,
    refs: PaymentRefs,
    status: String,
}

async fn holder(app: &App, subscription_id: i64) -> Result<Holder, AppError> {
    let sub = subscriptions::find(app, subscription_id).await?;
    let customer = customers::find(app, &CustomerRef::Id(sub.customer_id)).await?;
    let refs = app
        .store()
        .payment_refs(customer.id)
        .await?
        .unwrap_or_default();
    Ok(Holder {
        customer,
        refs,
        status: sub.status.to_string(),
    })
}

fn provider(app: &App) -> Option<Provider> {
    Provider::from_settings(&app.settings().payments)
        .ok()
        .flatten()
}

fn stripe(app: &App) -> Result<StripeClient, AppError> {
    match provider(app) {
        Some(Provider::Stripe(client)) => Ok(client),
        _ => Err(AppError::InvalidState(
            "cards are not taken on this page: please contact us".into(),
        )),
    }
}

fn entry(app: &App, refs: &PaymentRefs) -> CardEntry {
    let stripe = &app.settings().payments.stripe;
    match (provider(app), &stripe.publishable_key, &refs.customer_ref) {
        (Some(Provider::Simulated), _, _) => CardEntry::TestCard,
        // A customer with no Stripe customer yet gets one when they save a card
        // (`start_card_setup`).
        (Some(Provider::Stripe(_)), Some(key), _) => CardEntry::Stripe {
            publishable_key: key.clone(),
            js_url: stripe.js_url.clone(),
        },
        _ => CardEntry::Unavailable {
            reason: "A new card cannot be given on this page: please reply to one of our emails or use our shop.".into(),
        },
    }
}

/// What a provider's failure is to the customer: its outage is ours; a refusal is the card's.
fn provider_error(error: ProviderError) -> AppError {
    match error {
        ProviderError::Transient(m) => AppError::Unavailable(m),
        ProviderError::Refused(m) => AppError::InvalidState(m),
    }
}

fn not_this_customers() -> AppError {
    AppError::InvalidState(
        "that card setup is not this subscription's, or did not succeed; nothing was changed"
            .into(),
    )
}

/// The subscription's payments waiting for the customer (declined, or for 3-D Secure).
async fn unpaid(app: &App, subscription_id: i64) -> Result<Vec<Payment>, AppError> {
    let mut all = Vec::new();
    for status in [PaymentStatus::Failed, PaymentStatus::RequiresAction] {
        all.extend(
            app.store()
                .payments(&PaymentFilter {
                    status: Some(status),
                    subscription_id: Some(subscription_id),
                    limit: UNPAID_SHOWN,
                    ..PaymentFilter::default()
                })
                .await?,
        );
    }
    all.sort_by_key(|p| p.id);
    Ok(all)
}

/// The card page of subscription `id`: how a card is given here, and the unpaid orders.
pub async fn card_page(app: &App, id: i64) -> Result<CardPage, AppError> {
    let holder = holder(app, id).await?;
    Ok(CardPage {
        entry: entry(app, &holder.refs),
        unpaid: unpaid(app, id)
            .await?
            .iter()
            .map(UnpaidOrder::from)
            .collect(),
        storefront_url: app.settings().payments.update_payment_url.clone(),
        subscription_status: holder.status,
        customer_name: holder.customer.name,
        locale: holder.customer.locale,
        time_zone: holder.customer.time_zone.name().to_owned(),
    })
}

/// Creates (or, for the same `attempt` of the page, finds again) the SetupIntent that saves a
/// card for subscription `id`'s customer at Stripe, first making their Stripe customer when
/// they have none; returns its client secret for Stripe.js.
pub async fn start_card_setup(app: &App, id: i64, attempt: &str) -> Result<String, AppError> {
    if attempt.len() < 16
        || attempt.len() > 64
        || !attempt
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(AppError::invalid_field(
            "attempt",
            ": the page's attempt id is missing; reload the page",
        ));
    }
    let holder = holder(app, id).await?;
    let CardEntry::Stripe { .. } = entry(app, &holder.refs) else {
        return Err(AppError::InvalidState(
            "a card cannot be given on this page".into(),
        ));
    };
    let client = stripe(app)?;
    let customer_ref = match holder.refs.customer_ref {
        Some(customer_ref) => customer_ref,
        None => stripe_customer(app, &client, &holder.customer).await?,
    };
    let key = format!("subsave-setup-{}-{attempt}", holder.customer.id);
    let intent = client
        .create_setup_intent(&customer_ref, holder.customer.id, &key)
        .await
        .map_err(provider_error)?;
    intent["client_secret"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| AppError::Unavailable("Stripe's SetupIntent has no client secret".into()))
}

/// Makes `customer`'s Stripe customer, once: Stripe answers the same idempotency key with
/// the same customer, and the store keeps the first one recorded when two pages race.
async fn stripe_customer(
    app: &App,
    client: &StripeClient,
    customer: &Customer,
) -> Result<String, AppError> {
    let key = format!("subsave-customer-{}", customer.id);
    let made = client
        .create_customer(customer.id, customer.email.as_str(), &customer.name, &key)
        .await
        .map_err(provider_error)?;
    let made = made["id"]
        .as_str()
        .ok_or_else(|| AppError::Unavailable("Stripe's customer has no id".into()))?;
    Ok(app
        .store()
        .adopt_payment_customer(customer.id, made)
        .await?)
}

/// The return of a card setup: the SetupIntent `setup_intent` as Stripe has it must have
/// succeeded for this subscription's customer; its card becomes theirs and their unpaid
/// orders are tried with it at once. The same SetupIntent again changes nothing.
pub async fn finish_card_setup(
    app: &App,
    id: i64,
    setup_intent: &str,
) -> Result<CardSaved, AppError> {
    let holder = holder(app, id).await?;
    let client = stripe(app)?;
    let customer_ref = holder
        .refs
        .customer_ref
        .clone()
        .ok_or_else(not_this_customers)?;
    let intent = client
        .read("setup_intents", setup_intent)
        .await
        .map_err(|error| match error {
            // An id Stripe does not know is a forged one.
            ProviderError::Refused(_) => not_this_customers(),
            transient => provider_error(transient),
        })?;
    let ours = intent["customer"].as_str() == Some(customer_ref.as_str())
        && intent["metadata"]["subsave_customer"].as_str()
            == Some(holder.customer.id.to_string().as_str())
        && intent["status"] == "succeeded";
    let method = intent["payment_method"]
        .as_str()
        .or(intent["payment_method"]["id"].as_str())
        .filter(|_| ours)
        .ok_or_else(not_this_customers)?
        .to_owned();
    if holder.refs.method_ref.as_deref() == Some(method.as_str()) {
        return saved(app, id, holder, true, Vec::new()).await;
    }
    // Stripe attaches the card to the SetupIntent's customer; a stand-in may not have.
    let card = client
        .read("payment_methods", &method)
        .await
        .map_err(provider_error)?;
    match card["customer"].as_str() {
        Some(owner) if owner == customer_ref => {}
        None => {
            client
                .attach(&method, &customer_ref)
                .await
                .map_err(provider_error)?;
        }
        Some(_) => return Err(not_this_customers()),
    }
    let refs = PaymentRefs {
        customer_ref: Some(customer_ref),
        method_ref: Some(method),
    };
    save_and_retry(app, id, holder, refs).await
}

/// The simulated provider's card page: the test card becomes the customer's, and their
/// unpaid orders are tried with it at once.
pub async fn use_test_card(app: &App, id: i64) -> Result<CardSaved, AppError> {
    let holder = holder(app, id).await?;
    if entry(app, &holder.refs) != CardEntry::TestCard {
        return Err(AppError::InvalidState(
            "the test card is only for the demo's simulated payments".into(),
        ));
    }
    if holder.refs.method_ref.as_deref() == Some(TEST_CARD) {
        return saved(app, id, holder, true, Vec::new()).await;
    }
    let refs = PaymentRefs {
        customer_ref: Some(
            holder
                .refs
                .customer_ref
                .clone()
                .unwrap_or_else(|| format!("sim_cus_{}", holder.customer.id)),
        ),
        method_ref: Some(TEST_CARD.to_owned()),
    };
    save_and_retry(app, id, holder, refs).await
}

/// Saves `refs` (the existing path: their declined and waiting payments are due at once),
/// then charges the customer's due payments now, as the worker would.
async fn save_and_retry(
    app: &App,
    id: i64,
    holder: Holder,
    refs: PaymentRefs,
) -> Result<CardSaved, AppError> {
    let customer = &holder.customer;
    let before = unpaid(app, id).await?;
    payments::set_payment_method(app, &CustomerRef::Id(customer.id), refs).await?;
    if let Some(collector) = Collector::from_settings(app.store().clone(), app.settings())
        .map_err(AppError::InvalidState)?
    {
        let report = collector.collect_customer(customer.id, app.now()).await?;
        tracing::info!(
            customer = customer.id,
            paid = report.paid,
            declined = report.declined,
            requires_action = report.requires_action,
            postponed = report.postponed,
            "a customer saved a new card; their unpaid orders were tried at once"
        );
    }
    saved(app, id, holder, false, before).await
}

/// What the card page says after a save: the orders that were unpaid, as they stand now (and
/// any still unpaid).
async fn saved(
    app: &App,
    id: i64,
    holder: Holder,
    already: bool,
    before: Vec<Payment>,
) -> Result<CardSaved, AppError> {
    let mut orders = Vec::new();
    for payment in &before {
        if let Some(now) = app.store().payment_of_order(payment.order_id).await? {
            orders.push(UnpaidOrder::from(&now));
        }
    }
    for payment in unpaid(app, id).await? {
        if !orders
            .iter()
            .any(|o| o.order_number == payment.order_number)
        {
            orders.push(UnpaidOrder::from(&payment));
        }
    }
    Ok(CardSaved {
        already,
        orders,
        subscription_status: holder.status,
        customer_name: holder.customer.name,
        locale: holder.customer.locale,
        time_zone: holder.customer.time_zone.name().to_owned(),
    })
}

/// Order `number` of subscription `id` with its payment; another subscription's order is
/// refused exactly like one that does not exist.
async fn order_payment(app: &App, id: i64, number: &str) -> Result<(Order, Payment), AppError> {
    let order = super::self_service::order_of(app, id, number).await?;
    let payment = app
        .store()
        .payment_of_order(order.id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("order {number} has no payment")))?;
    Ok((order, payment))
}

/// The PaymentIntent of `payment` as Stripe has it now, if it is the one subsave made for
/// this order and customer.
async fn our_intent(
    client: &StripeClient,
    payment: &Payment,
    refs: &PaymentRefs,
) -> Result<Value, AppError> {
    let intent_ref = payment
        .provider_payment_ref
        .as_deref()
        .ok_or_else(|| AppError::InvalidState("this payment has nothing to confirm".into()))?;
    let intent = client
        .read("payment_intents", intent_ref)
        .await
        .map_err(provider_error)?;
    let ours = intent["id"].as_str() == Some(intent_ref)
        && intent["customer"].as_str().is_some()
        && intent["customer"].as_str() == refs.customer_ref.as_deref()
        && intent["metadata"]["subsave_order"].as_str() == Some(payment.order_number.as_str());
    if !ours {
        return Err(AppError::InvalidState(
            "that payment is not this order's; nothing was changed".into(),
        ));
    }
    Ok(intent)
}

/// The 3-D Secure page of order `number`: for a payment that waits, the PaymentIntent's
/// client secret (read from Stripe; nothing is written).
pub async fn confirm_page(app: &App, id: i64, number: &str) -> Result<ConfirmPage, AppError> {
    let (order, payment) = order_payment(app, id, number).await?;
    let holder = holder(app, id).await?;
    let entry = entry(app, &holder.refs);
    let mut client_secret = None;
    let state = if payment.status.collected() {
        "paid"
    } else if payment.status != PaymentStatus::RequiresAction {
        "other"
    } else if payment.provider == ProviderKind::Stripe && entry.script() {
        let intent = our_intent(&stripe(app)?, &payment, &holder.refs).await?;
        match intent["status"].as_str() {
            Some("succeeded") => "confirmed",
            Some("requires_action") => {
                client_secret = intent["client_secret"].as_str().map(str::to_owned);
                "confirm"
            }
            _ => "other",
        }
    } else if payment.provider == ProviderKind::Simulated {
        "confirm"
    } else {
        "other"
    };
    Ok(ConfirmPage {
        customer_name: holder.customer.name,
        locale: holder.customer.locale,
        order_number: order.order_number,
        total: payment.amount,
        state,
        entry,
        client_secret,
    })
}

/// The return of a 3-D Secure confirmation of order `number`: Stripe's PaymentIntent (the
/// order's own; `claimed`, the id the browser posts, must be it) is read, and recorded as the
/// webhook would record it if it succeeded, once. Anything else records nothing.
pub async fn finish_confirm(
    app: &App,
    id: i64,
    number: &str,
    claimed: Option<&str>,
) -> Result<Confirmed, AppError> {
    let (order, payment) = order_payment(app, id, number).await?;
    if let Some(claimed) = claimed.filter(|c| !c.is_empty())
        && payment.provider_payment_ref.as_deref() != Some(claimed)
    {
        return Err(AppError::InvalidState(
            "that payment is not this order's; nothing was changed".into(),
        ));
    }
    let holder = holder(app, id).await?;
    let done = |state| Confirmed {
        customer_name: holder.customer.name.clone(),
        locale: holder.customer.locale.clone(),
        order_number: order.order_number.clone(),
        total: payment.amount,
        state,
    };
    if payment.status.collected() {
        return Ok(done("paid"));
    }
    if payment.status != PaymentStatus::RequiresAction {
        return Err(AppError::InvalidState(
            "this order's payment is not waiting for a confirmation; nothing was changed".into(),
        ));
    }
    let payment_ref = payment.provider_payment_ref.clone().unwrap_or_default();
    let (outcome, kind) = match payment.provider {
        ProviderKind::Stripe => {
            let intent = our_intent(&stripe(app)?, &payment, &holder.refs).await?;
            if intent["status"] != "succeeded" {
                return Ok(done("waiting"));
            }
            (
                intent_outcome(&intent).map_err(provider_error)?,
                "payment_intent.succeeded",
            )
        }
        ProviderKind::Simulated if matches!(provider(app), Some(Provider::Simulated)) => (
            ChargeOutcome::Succeeded {
                payment_ref: payment_ref.clone(),
                fee_minor: None,
            },
            "simulated.confirmed",
        ),
        _ => return Ok(done("waiting")),
    };
    let recorded = payments::record_provider_outcome(
        app,
        payment.provider,
        &format!("page:{payment_ref}"),
        kind,
        &payment_ref,
        &outcome,
        "customer:link",
    )
    .await?;
    tracing::info!(order = number, outcome = ?recorded, "a customer confirmed a payment on its page");
    let now_paid = app
        .store()
        .payment_of_order(order.id)
        .await?
        .is_some_and(|p| p.status.collected());
    Ok(done(if now_paid { "paid" } else { "waiting" }))
}
