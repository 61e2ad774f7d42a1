//! What a customer does through a signed link: see the subscription and its next renewal's
//! price, preview a change, act on it, and ask for a fresh link.
//!
//! Every action is the same lifecycle operation as an operator's (actor `customer:link`), in
//! one transaction with its event and email, and is guarded by the state the customer saw
//! ([`crate::core::lifecycle::fingerprint`]): a form posted twice, or from a stale tab, does nothing
//! the second time. Owns: the customer's choices and their bounds. Must not: read HTTP, verify
//! tokens (the door does), or reveal another customer's data.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::Serialize;

use super::idempotency::Commit;
use super::subscriptions::{self, Action, ChangeInput};
use super::views::{
    AddressView, CreditNoteView, OrderView, PaymentView, PlanView, SubscriptionView,
};
use super::{Actor, App, AppError, CustomerRef, customers};
use crate::core::address::RawAddress;
use crate::core::catalog::Catalog;
use crate::core::lifecycle::{self, Operation};
use crate::core::model::{Customer, CustomerAddress, Email, Status, Subscription};
use crate::core::money::{BasisPoints, Money};
use crate::core::renewal;
use crate::store::{OrderFilter, PaymentFilter, SubscriptionFilter};

/// The most renewals a customer may pause for at once.
pub const PAUSE_RENEWALS_MAX: u32 = 6;

/// The subscriptions a fresh-link request mails links to, at most (a customer has a few).
const FRESH_LINKS_MAX: u32 = 10;

/// What a customer's page shows.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerPage {
    pub subscription: SubscriptionView,
    pub customer_name: String,
    pub locale: String,
    /// The next renewal's itemized price (the email snapshot's shape), when it can be priced.
    pub quote: Option<serde_json::Value>,
    /// The total the next renewal's reminder announced, the most it charges (`amount_minor`,
    /// `currency`): only while that promise stands, and in the currency the renewal is billed
    /// in (a promise in another currency caps nothing).
    pub ceiling: Option<serde_json::Value>,
    /// The plans a customer may change to, with their intervals.
    pub plans: Vec<PlanView>,
    /// The state the page was shown with; its forms send it back.
    pub seen: String,
    /// The dates the next renewal may be moved to (local, inclusive).
    pub move_from: NaiveDate,
    pub move_until: NaiveDate,
    /// The most units a shipment may hold (the catalog's `limits.max_quantity`).
    pub max_quantity: u32,
    /// The local dates of the next renewals, for "pause for N renewals".
    pub upcoming: Vec<NaiveDate>,
    pub today: NaiveDate,
    /// For a cancelled subscription: whether and until when it may be restarted, and at what
    /// price.
    pub restart: Option<RestartOffer>,
    /// The subscription's orders, newest first.
    pub orders: Vec<OrderLine>,
    /// The next renewals ([`UPCOMING_SHOWN`]) as the engine would bill them.
    pub renewals: Vec<UpcomingRenewal>,
    /// Whether subsave charges the orders (`payments.provider`), so the page links to the
    /// card page.
    pub charges: bool,
}

/// How many upcoming renewals a page lists.
pub const UPCOMING_SHOWN: usize = 3;

/// The most orders a page lists (years of renewals).
const ORDERS_SHOWN: u32 = 100;

/// One order as the page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct OrderLine {
    pub order_number: String,
    pub scheduled_for: DateTime<Utc>,
    pub total: Money,
    /// The payment's state (`paid`, `failed`, `external`, …), when it has one.
    pub payment: Option<String>,
    pub refunded: Money,
}

/// A renewal to come: when, and what it would charge.
#[derive(Debug, Clone, Serialize)]
pub struct UpcomingRenewal {
    pub at: DateTime<Utc>,
    pub total: Money,
}

/// An order's receipt: its itemized lines, tax with its rate, what was paid and refunded.
#[derive(Debug, Clone, Serialize)]
pub struct Receipt {
    pub order: OrderView,
    /// The rate of the tax the total contains (inclusive regions; a tax added on top is a
    /// line that names its rate).
    pub tax_included_rate: Option<BasisPoints>,
    pub payment: Option<PaymentView>,
    /// What was collected (by subsave's provider, or by the storefront for `external`).
    pub paid: Money,
    pub credit_notes: Vec<CreditNoteView>,
    pub refunded: Money,
    pub customer_name: String,
    pub locale: String,
    pub time_zone: String,
}

/// What a cancelled subscription's page offers: a restart while its window is open (at
/// today's price: the quote of the restarted subscription's first renewal), else the
/// storefront.
#[derive(Debug, Clone, Serialize)]
pub struct RestartOffer {
    pub open: bool,
    /// The last local date a restart is allowed, when the cancellation is on record.
    pub until: Option<NaiveDate>,
    pub quote: Option<serde_json::Value>,
    pub storefront_url: Option<String>,
}

/// What a customer asks for from a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerAction {
    Skip,
    /// Move the next renewal to a local date.
    Move(NaiveDate),
    Change(ChangeInput),
    /// Pause until the start of a local date.
    PauseUntil(NaiveDate),
    /// Pause over the next N renewals (resuming on the day of the one after).
    PauseRenewals(u32),
    Resume,
    Cancel {
        reason: String,
    },
    RenewNow,
    /// Restart a cancelled subscription, giving a fresh consent.
    Restart,
}

/// The page of all of one customer's subscriptions (a customer link's): each as its own page
/// shows it, without its orders (its own page lists them).
#[derive(Debug, Clone, Serialize)]
pub struct CustomerOverview {
    pub customer_name: String,
    pub locale: String,
    pub time_zone: String,
    /// The customer's subscriptions, oldest first (at most [`OVERVIEW_MAX`]).
    pub subscriptions: Vec<CustomerPage>,
}

/// The most subscriptions a customer's page lists (a customer has a few).
pub const OVERVIEW_MAX: u32 = 50;

/// Shows all of customer `customer_id`'s subscriptions. An erased customer is refused as if
/// they did not exist, so that their links stop working.
pub async fn customer_overview(app: &App, customer_id: i64) -> Result<CustomerOverview, AppError> {
    if super::privacy::is_erased(app, customer_id).await? {
        return Err(AppError::NotFound(format!("no customer {customer_id}")));
    }
    let customer = customers::find(app, &CustomerRef::Id(customer_id)).await?;
    let subs = app
        .store()
        .subscriptions(&SubscriptionFilter {
            customer_id: Some(customer_id),
            limit: OVERVIEW_MAX,
            ..Default::default()
        })
        .await?;
    Ok(CustomerOverview {
        subscriptions: subs
            .iter()
            .map(|sub| page_of(app, sub, &customer, None))
            .collect(),
        time_zone: customer.time_zone.name().to_owned(),
        customer_name: customer.name,
        locale: customer.locale,
    })
}

/// Shows the subscription as its customer sees it.
pub async fn page(app: &App, id: i64) -> Result<CustomerPage, AppError> {
    let sub = linked(app, id).await?;
    let customer = customers::find(app, &CustomerRef::Id(sub.customer_id)).await?;
    let mut page = page_of(app, &sub, &customer, None);
    if sub.status == Status::Cancelled {
        page.restart = Some(restart_offer(app, &sub, &customer).await?);
    }
    page.orders = orders_of(app, &sub).await?;
    Ok(page)
}

/// The subscription a link opens: none (as if it did not exist) once its customer is erased,
/// so that their links stop working.
async fn linked(app: &App, id: i64) -> Result<Subscription, AppError> {
    let sub = subscriptions::find(app, id).await?;
    if super::privacy::is_erased(app, sub.customer_id).await? {
        return Err(AppError::NotFound(format!("no subscription {id}")));
    }
    Ok(sub)
}

/// The subscription's orders with their payments' states and refunds, newest first.
async fn orders_of(app: &App, sub: &Subscription) -> Result<Vec<OrderLine>, AppError> {
    let store = app.store();
    let orders = store
        .orders(&OrderFilter {
            subscription_id: Some(sub.id),
            limit: ORDERS_SHOWN,
            ..Default::default()
        })
        .await?;
    let payments = store
        .payments(&PaymentFilter {
            subscription_id: Some(sub.id),
            limit: ORDERS_SHOWN,
            ..Default::default()
        })
        .await?;
    Ok(orders
        .iter()
        .rev()
        .map(|order| {
            let payment = payments
                .iter()
                .find(|p| p.order_number == order.order_number);
            OrderLine {
                order_number: order.order_number.clone(),
                scheduled_for: order.scheduled_for,
                total: order.total,
                payment: payment.map(|p| p.status.as_str().to_owned()),
                refunded: payment
                    .map_or(Money::from_minor(0, order.total.currency()), |p| p.refunded),
            }
        })
        .collect())
}

/// The receipt of order `order_number` of subscription `id`. An order of another subscription
/// is refused exactly like one that does not exist: a link reveals nothing beyond its own.
pub async fn receipt(app: &App, id: i64, order_number: &str) -> Result<Receipt, AppError> {
    let order = order_of(app, id, order_number).await?;
    let customer = customers::find(app, &CustomerRef::Id(order.customer_id)).await?;
    let sub = linked(app, id).await?;
    let (payment, credit_notes) = super::payments::of_order(app, order_number).await?;
    let currency = order.total.currency();
    let paid = match &payment {
        // Collected by the provider (refunds later or not), or by the storefront.
        Some(p)
            if matches!(
                p.status.as_str(),
                "paid" | "refunded" | "partially_refunded" | "external"
            ) =>
        {
            p.amount
        }
        _ => Money::from_minor(0, currency),
    };
    let refunded = credit_notes
        .iter()
        .try_fold(Money::from_minor(0, currency), |sum, note| {
            sum.checked_add(note.amount)
        })
        .map_err(|e| AppError::invalid(format!("order {order_number}: {e}")))?;
    Ok(Receipt {
        order: OrderView::from(&order),
        tax_included_rate: order.tax_included_rate,
        payment,
        paid,
        credit_notes,
        refunded,
        customer_name: customer.name,
        locale: customer.locale,
        time_zone: sub.time_zone.name().to_owned(),
    })
}

/// Order `order_number` of subscription `id`; another subscription's order is refused
/// exactly like one that does not exist (`NotFound`).
pub(crate) async fn order_of(
    app: &App,
    id: i64,
    order_number: &str,
) -> Result<crate::core::model::Order, AppError> {
    app.store()
        .order(order_number)
        .await?
        .filter(|order| order.subscription_id == id)
        .ok_or_else(|| AppError::NotFound(format!("no order {order_number} of this subscription")))
}

/// Whether a cancelled subscription may still be restarted, and what its first renewal would
/// cost today (the restart itself, applied without writing it).
async fn restart_offer(
    app: &App,
    sub: &Subscription,
    customer: &Customer,
) -> Result<RestartOffer, AppError> {
    let window = subscriptions::restart_window(app, sub).await?;
    let now = app.now();
    let consent = subscriptions::restart_consent(app, &Actor::customer_link());
    let restarted = lifecycle::restart(sub, customer, app.catalog(), window, consent, now).ok();
    Ok(RestartOffer {
        open: restarted.is_some(),
        until: window
            .ends_at()
            .map(|end| end.with_timezone(&sub.time_zone).date_naive()),
        quote: restarted.and_then(|change| {
            renewal::next_renewal_snapshot(&change.after, customer, app.catalog())
        }),
        storefront_url: app.settings().web.storefront_url.clone(),
    })
}

/// How long after a customer's action its page still reports it.
const JUST_DONE_FOR: TimeDelta = TimeDelta::minutes(15);

/// The action a page may report as done, from the server's state, never the URL: the page
/// action (`skip`, `move`, …) of the subscription's latest event, when the customer made it
/// through a link within the last [`JUST_DONE_FOR`]. Read only when a redirect asks for it.
pub async fn just_done(app: &App, id: i64) -> Result<Option<String>, AppError> {
    let events = app.store().events(id).await?;
    let now = app.now();
    Ok(events
        .iter()
        .max_by_key(|e| e.id)
        .filter(|e| e.actor == Actor::customer_link().0 && now - e.at <= JUST_DONE_FOR)
        .and_then(|e| {
            Some(match e.kind.as_str() {
                "reschedule" => "move",
                "renew-now" => "renew",
                kind @ ("skip" | "change" | "pause" | "resume" | "cancel" | "restart"
                | "coupon") => kind,
                _ => return None,
            })
        })
        .map(str::to_owned))
}

/// The page as it would be after `action`, without doing it: the quote a change would charge.
pub async fn preview(
    app: &App,
    id: i64,
    action: &CustomerAction,
) -> Result<CustomerPage, AppError> {
    let sub = linked(app, id).await?;
    let customer = customers::find(app, &CustomerRef::Id(sub.customer_id)).await?;
    let operation = operation_of(
        &sub,
        action,
        app.catalog(),
        app.now(),
        app.settings().web.move_max_days,
    )?;
    let change = lifecycle::apply(
        &sub,
        &customer,
        &operation,
        app.catalog(),
        &Actor::customer_link(),
        app.now(),
    )?;
    Ok(page_of(app, &change.after, &customer, Some(&sub)))
}

/// Does `action` if the subscription is still as the customer saw it (`seen`); a conflict
/// otherwise, and nothing is done.
pub async fn act(
    app: &App,
    id: i64,
    seen: &str,
    action: &CustomerAction,
) -> Result<SubscriptionView, AppError> {
    linked(app, id).await?;
    if *action == CustomerAction::Restart {
        return subscriptions::restart(app, &Actor::customer_link(), id, Some(seen), Commit::Plain)
            .await;
    }
    if *action == CustomerAction::RenewNow {
        subscriptions::refuse_renew_now_while_unpaid(app, id).await?;
    }
    let resuming = *action == CustomerAction::Resume;
    let action = action.clone();
    let now = app.now();
    let settings = app.settings().web.clone();
    let catalog = app.catalog();
    let done = subscriptions::apply_if_unchanged(
        app,
        &Actor::customer_link(),
        id,
        Some(seen),
        move |sub| operation_of(sub, &action, catalog, now, settings.move_max_days),
    )
    .await?;
    if resuming {
        super::payments::retry_after_resume(app, id).await?;
    }
    Ok(done)
}

/// What the coupon form shows once a code is entered: the next renewal's price now and with
/// the coupon, and the total its confirmation carries back ([`confirmed_total`]).
#[derive(Debug, Clone, Serialize)]
pub struct CouponPreview {
    pub code: String,
    pub quote_before: Option<serde_json::Value>,
    pub quote: Option<serde_json::Value>,
    pub total: String,
}

/// What a customer is told of a code that cannot be redeemed, whatever the reason (no such
/// code, disabled, expired, used up, for another plan): a page reveals no more of which codes
/// exist.
pub const COUPON_REFUSED: &str = "this code cannot be used here or now";

/// Refuses what is about the subscription, not the code: a cancelled one, or one that has a
/// coupon (a subscription has one at most).
fn refuse_coupon_on(sub: &Subscription) -> Result<(), AppError> {
    if sub.status == Status::Cancelled {
        return Err(AppError::InvalidState(
            "this subscription is cancelled".into(),
        ));
    }
    if sub.coupon.is_some() {
        return Err(AppError::InvalidState(
            "this subscription already has a coupon, and it takes one at most".into(),
        ));
    }
    Ok(())
}

/// The next renewal of subscription `id` priced with coupon `code`, without redeeming it.
pub async fn coupon_preview(app: &App, id: i64, code: &str) -> Result<CouponPreview, AppError> {
    let sub = linked(app, id).await?;
    refuse_coupon_on(&sub)?;
    let customer = customers::find(app, &CustomerRef::Id(sub.customer_id)).await?;
    let code = super::coupons::normalize_code(code);
    let refused = || AppError::InvalidState(COUPON_REFUSED.into());
    let coupon = app.store().coupon(&code).await?.ok_or_else(refused)?;
    let change = lifecycle::redeem_coupon(
        &sub,
        &customer,
        &coupon,
        app.catalog(),
        &Actor::customer_link(),
        app.now(),
    )
    .map_err(|_| refused())?;
    let quote = renewal::next_renewal_snapshot(&change.after, &customer, app.catalog());
    Ok(CouponPreview {
        code,
        quote_before: renewal::next_renewal_snapshot(&sub, &customer, app.catalog()),
        total: confirmed_total(quote.as_ref()),
        quote,
    })
}

/// Redeems coupon `code` on subscription `id` if the subscription is still as the customer saw
/// it (`seen`) and the coupon still gives the next renewal the total they confirmed
/// (`confirmed`, as [`confirmed_total`] writes it); nothing is done otherwise. A code that
/// cannot be redeemed is refused with [`COUPON_REFUSED`], whatever the reason.
pub async fn redeem_coupon(
    app: &App,
    id: i64,
    seen: &str,
    code: &str,
    confirmed: &str,
) -> Result<SubscriptionView, AppError> {
    let sub = linked(app, id).await?;
    refuse_coupon_on(&sub)?;
    let catalog = app.catalog();
    let agreed = |after: &Subscription, customer: &Customer| {
        let quote = renewal::next_renewal_snapshot(after, customer, catalog);
        if confirmed_total(quote.as_ref()) == confirmed {
            Ok(())
        } else {
            Err(lifecycle::LifecycleError::Stale(
                "the price with this code is not the one shown".into(),
            ))
        }
    };
    match subscriptions::redeem_coupon(app, &Actor::customer_link(), id, code, Some(seen), agreed)
        .await
    {
        Err(AppError::NotFound(_) | AppError::InvalidState(_) | AppError::InvalidInput { .. }) => {
            Err(AppError::InvalidState(COUPON_REFUSED.into()))
        }
        done => done,
    }
}

/// What the "Change the delivery address" form shows: the page, the address it ships to now,
/// the countries the shop ships to, and the state the form was shown with (the subscription's
/// and its address's).
#[derive(Debug, Clone, Serialize)]
pub struct AddressForm {
    pub page: CustomerPage,
    pub current: Option<AddressView>,
    /// The countries the shop ships to: (code, English name).
    pub countries: Vec<(String, String)>,
    pub seen: String,
}

/// What posting the address form did: changed the address (the price stays, or the customer
/// confirmed the new one), or nothing yet, with the new price to confirm.
#[derive(Debug, Clone, Serialize)]
pub enum AddressOutcome {
    Changed(Box<SubscriptionView>),
    Confirm {
        /// The next renewal's quote now, and with the new address (email snapshot's shape).
        quote_before: Option<serde_json::Value>,
        quote: Option<serde_json::Value>,
    },
}

/// The state an address form is posted against: the subscription's fingerprint and the
/// address it ships to, so that a form posted twice, or from a stale tab, changes nothing.
fn address_seen(sub: &Subscription) -> String {
    format!(
        "{}.{}",
        lifecycle::fingerprint(sub),
        sub.ship_to.as_ref().map_or(0, |a| a.id)
    )
}

/// The address form of subscription `id`.
pub async fn address_form(app: &App, id: i64) -> Result<AddressForm, AppError> {
    let sub = linked(app, id).await?;
    let customer = customers::find(app, &CustomerRef::Id(sub.customer_id)).await?;
    Ok(AddressForm {
        page: page_of(app, &sub, &customer, None),
        current: sub.ship_to.as_ref().map(AddressView::from),
        countries: app
            .catalog()
            .ships_to
            .iter()
            .map(|c| (c.code().to_owned(), c.name().to_owned()))
            .collect(),
        seen: address_seen(&sub),
    })
}

/// The most addresses of a customer looked through for one equal to a new one.
const ADDRESSES_MATCHED: u32 = 100;

/// The total a confirmation form carries back: the new quote's total in minor units and its
/// currency (`10539 EUR`: a move to another market may change the currency alone), or `none`
/// when the renewal cannot be priced.
pub fn confirmed_total(quote: Option<&serde_json::Value>) -> String {
    quote.map_or_else(
        || "none".into(),
        |q| {
            let total = &q["total"];
            format!(
                "{} {}",
                total["amount_minor"],
                total["currency"].as_str().unwrap_or_default()
            )
        },
    )
}

/// Ships subscription `id` to `raw` from its next renewal, if the subscription and its address
/// are still as the form showed them (`seen`). When the new address changes the next
/// renewal's price, it is made only if the customer `confirmed` that very total (as
/// [`confirmed_total`] writes it); otherwise nothing is done and the new price is returned to
/// be confirmed. The address is added to the customer's addresses (or an equal one reused);
/// the change is the lifecycle's `change`, with its event and confirmation email.
pub async fn change_address(
    app: &App,
    id: i64,
    seen: &str,
    raw: &RawAddress,
    confirmed: Option<&str>,
) -> Result<AddressOutcome, AppError> {
    let stale = || {
        AppError::Conflict(format!(
            "subscription {id} changed since this was shown; nothing was done"
        ))
    };
    let sub = linked(app, id).await?;
    if address_seen(&sub) != seen {
        return Err(stale());
    }
    let customer = customers::find(app, &CustomerRef::Id(sub.customer_id)).await?;
    let address = super::addresses::parse(app, raw)?;
    if sub.ship_to.as_ref().is_some_and(|a| a.address == address) {
        return Err(AppError::invalid_field(
            "address",
            ": this is already where your deliveries go; nothing changes",
        ));
    }
    let unsaved = CustomerAddress {
        id: 0,
        customer_id: customer.id,
        is_default: false,
        created_at: app.now(),
        address: address.clone(),
    };
    let preview = lifecycle::apply(
        &sub,
        &customer,
        &Operation::Change {
            plan: None,
            quantity: None,
            interval: None,
            ship_to: Some(Box::new(unsaved)),
        },
        app.catalog(),
        &Actor::customer_link(),
        app.now(),
    )?;
    let quote_before = renewal::next_renewal_snapshot(&sub, &customer, app.catalog());
    let quote = renewal::next_renewal_snapshot(&preview.after, &customer, app.catalog());
    let total = |q: &Option<serde_json::Value>| q.as_ref().map(|q| q["total"].clone());
    if total(&quote_before) != total(&quote)
        && confirmed != Some(confirmed_total(quote.as_ref()).as_str())
    {
        return Ok(AddressOutcome::Confirm {
            quote_before,
            quote,
        });
    }
    let store = app.store();
    let saved = match store
        .addresses(customer.id, ADDRESSES_MATCHED, None)
        .await?
        .into_iter()
        .find(|a| a.address == address)
    {
        Some(existing) => existing,
        None => {
            store
                .add_address(customer.id, &address, false, app.now())
                .await?
        }
    };
    let fingerprint = lifecycle::fingerprint(&sub);
    let input = ChangeInput {
        ship_to: Some(saved.id),
        ..ChangeInput::default()
    };
    let done = subscriptions::apply_if_unchanged(
        app,
        &Actor::customer_link(),
        id,
        Some(&fingerprint),
        move |locked| {
            if locked.ship_to.as_ref().map(|a| a.id) != sub.ship_to.as_ref().map(|a| a.id) {
                return Err(lifecycle::LifecycleError::Stale(format!(
                    "subscription {id} changed since this was shown; nothing was done"
                )));
            }
            Action::Change(input.clone()).operation(locked, Some(&saved))
        },
    )
    .await?;
    Ok(AddressOutcome::Changed(Box::new(done)))
}

/// Mails a fresh link to subscription `id`'s customer, at the address on file.
pub async fn send_fresh_link(app: &App, id: i64) -> Result<(), AppError> {
    linked(app, id).await?;
    let now = app.now();
    let transition =
        |sub: &Subscription, customer: &Customer| Ok(lifecycle::link_request(sub, customer, now));
    app.store().transition(id, &transition).await?;
    Ok(())
}

/// Mails a fresh link to subscription `id`'s customer for a person (`actor`, support) who
/// gives `reason`: the link request and an event `link_sent` naming them and the reason, in
/// one transaction.
pub async fn send_fresh_link_for(
    app: &App,
    id: i64,
    actor: &Actor,
    reason: &str,
) -> Result<(), AppError> {
    let reason = subscriptions::parse_support_reason(reason)?;
    let now = app.now();
    let transition = |sub: &Subscription, customer: &Customer| {
        let mut change = lifecycle::link_request(sub, customer, now);
        change.events.push(crate::core::model::NewEvent {
            subscription_id: sub.id,
            kind: "link_sent".into(),
            actor: actor.clone(),
            cycle: None,
            detail: serde_json::json!({ "to": customer.email.to_string(), "support_reason": reason }),
        });
        Ok(change)
    };
    app.store().transition(id, &transition).await?;
    Ok(())
}

/// Mails fresh links for each of the customer's current subscriptions, when `email` is a
/// customer's address. Says nothing about whether it is: the door answers the same either way.
pub async fn send_fresh_links_to(app: &App, email: &Email) -> Result<(), AppError> {
    let Some(customer) = app.store().customer_by_email(email).await? else {
        return Ok(());
    };
    let subs = app
        .store()
        .subscriptions(&SubscriptionFilter {
            customer_id: Some(customer.id),
            limit: FRESH_LINKS_MAX,
            ..Default::default()
        })
        .await?;
    for sub in subs.iter().filter(|s| s.status != Status::Cancelled) {
        send_fresh_link(app, sub.id).await?;
    }
    Ok(())
}

fn page_of(
    app: &App,
    sub: &Subscription,
    customer: &Customer,
    before: Option<&Subscription>,
) -> CustomerPage {
    let now = app.now();
    let catalog = app.catalog();
    let quote = renewal::next_renewal_snapshot(sub, customer, catalog);
    let today = now.with_timezone(&sub.time_zone).date_naive();
    let (move_from, move_until) = move_window(sub, today, app.settings().web.move_max_days);
    let upcoming = (0..PAUSE_RENEWALS_MAX + 1)
        .filter_map(|n| sub.instant_of(sub.next_cycle + n))
        .map(|at| at.with_timezone(&sub.time_zone).date_naive())
        .collect();
    let billed_in = catalog.market_for(sub.destination()).currency;
    let ceiling = sub
        .promise
        .as_ref()
        .filter(|p| p.cycle == sub.next_cycle)
        .and_then(|p| p.total(catalog.currency))
        .filter(|total| total.currency() == billed_in)
        .map(|total| {
            serde_json::json!({ "amount_minor": total.minor(), "currency": total.currency().code() })
        });
    CustomerPage {
        subscription: SubscriptionView::from(sub),
        customer_name: customer.name.clone(),
        locale: customer.locale.clone(),
        quote,
        ceiling,
        // In the currency the subscription is billed in: its address's market's.
        plans: super::catalog::plans_shipped_to(catalog, sub.destination()).unwrap_or_default(),
        seen: lifecycle::fingerprint(before.unwrap_or(sub)),
        move_from,
        move_until,
        max_quantity: catalog.limits.max_quantity,
        upcoming,
        today,
        restart: None,
        charges: app.settings().payments.provider != crate::core::model::ProviderKind::None,
        orders: Vec::new(),
        renewals: renewal::upcoming(sub, customer, catalog, UPCOMING_SHOWN)
            .into_iter()
            .map(|order| UpcomingRenewal {
                at: order.scheduled_for,
                total: order.total,
            })
            .collect(),
    }
}

/// The dates a customer may move the next renewal to: from tomorrow to `move_max_days` after
/// the renewal as it stands (or after today, when that is later), so a renewal far ahead can
/// be postponed as well as brought forward.
fn move_window(
    sub: &Subscription,
    today: chrono::NaiveDate,
    move_max_days: u32,
) -> (chrono::NaiveDate, chrono::NaiveDate) {
    let renewal = sub
        .next_renewal_at
        .map(|at| at.with_timezone(&sub.time_zone).date_naive())
        .unwrap_or(today)
        .max(today);
    (
        today + TimeDelta::days(1),
        renewal + TimeDelta::days(i64::from(move_max_days)),
    )
}

/// The lifecycle operation a customer's action is: the customer's narrower bounds first (an
/// operator's are wider): a move within the move window, a pause of at most
/// [`PAUSE_RENEWALS_MAX`] renewals, an interval carried over to the chosen plan; then the same
/// mapping as every door ([`subscriptions::Action::operation`]).
fn operation_of(
    sub: &Subscription,
    action: &CustomerAction,
    catalog: &Catalog,
    now: DateTime<Utc>,
    move_max_days: u32,
) -> Result<Operation, lifecycle::LifecycleError> {
    let refuse = |m: String| Err(lifecycle::LifecycleError::InvalidInput(m));
    let today = now.with_timezone(&sub.time_zone).date_naive();
    let action = match action {
        CustomerAction::Skip => Action::Skip,
        CustomerAction::Move(to) => {
            let (first, last) = move_window(sub, today, move_max_days);
            if *to < first || *to > last {
                return refuse(format!("choose a date from {first} to {last}"));
            }
            Action::Reschedule { to: *to }
        }
        // The form offers every plan and the current plan's intervals: an interval the
        // chosen plan does not allow carries over to the nearest one it does.
        CustomerAction::Change(input) => Action::Change(ChangeInput {
            interval: input.interval.map(|chosen| {
                input
                    .plan
                    .as_ref()
                    .and_then(|id| catalog.plan(id.as_str()))
                    .filter(|plan| !plan.allows(chosen))
                    .and_then(|plan| chosen.nearest_of(&plan.allowed_intervals))
                    .unwrap_or(chosen)
            }),
            ..input.clone()
        }),
        CustomerAction::PauseUntil(date) => {
            if *date <= today {
                return refuse("choose a date after today".into());
            }
            Action::Pause { until: Some(*date) }
        }
        CustomerAction::PauseRenewals(n) => {
            if !(1..=PAUSE_RENEWALS_MAX).contains(n) {
                return refuse(format!("pause for 1 to {PAUSE_RENEWALS_MAX} renewals"));
            }
            // Paused until the day of the renewal after the N skipped ones, which then happens.
            Action::Pause {
                until: sub
                    .instant_of(sub.next_cycle + n)
                    .map(|at| at.with_timezone(&sub.time_zone).date_naive()),
            }
        }
        CustomerAction::Resume => Action::Resume,
        // A customer need not give a reason; the record says so.
        CustomerAction::Cancel { reason } if reason.trim().is_empty() => Action::Cancel {
            reason: "(no reason given, cancelled by the customer)".into(),
        },
        CustomerAction::Cancel { reason } => Action::Cancel {
            reason: reason.clone(),
        },
        CustomerAction::RenewNow => Action::RenewNow,
        CustomerAction::Restart => {
            return Err(lifecycle::LifecycleError::InvalidState(
                "a restart is not a change of a running subscription".into(),
            ));
        }
    };
    action.operation(sub, None)
}
