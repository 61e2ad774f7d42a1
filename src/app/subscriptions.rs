//! The subscriptions' use cases: create (redeeming a coupon), show, list, each lifecycle
//! operation (skip, pause, resume, cancel, change, reschedule, renew now), a coupon redeemed
//! later, and the restart of a cancelled subscription with a fresh consent; the storefront's
//! external id and metadata.
//!
//! An operation is `lifecycle::apply` on the locked subscription, written by the store with
//! its event (naming the actor) and its confirmation email in one transaction.

use chrono::{NaiveDate, NaiveTime};

use super::coupons::normalize_code;
use super::customers;
use super::idempotency::Commit;
use super::views::{
    ChangeView, ConsentView, EventView, MessageView, OrderView, SubscriptionDetail,
    SubscriptionView,
};
use super::{Actor, App, AppError, CustomerRef, Page, PageRequest};
use crate::core::catalog::PlanId;
use crate::core::lifecycle::{self, Operation, RestartWindow, Start};
use crate::core::metadata::{ExternalId, MetadataPatch, MetadataUpdate};
use crate::core::model::{
    Change, ConsentInput, Coupon, Customer, CustomerAddress, NewConsent, PaymentStatus, Status,
    Subscription,
};
use crate::core::schedule::{Interval, resolve_local};
use crate::core::text::{FreeText, TextError};
use crate::core::webhooks;
use crate::store::{
    MessageFilter, OrderFilter, PaymentFilter, SubscriptionFilter, TimeRange, welcome_detail,
};

/// A new subscription, parsed at the door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionInput {
    pub customer: CustomerRef,
    pub plan: String,
    pub quantity: u32,
    /// The plan's default when absent.
    pub interval: Option<Interval>,
    pub start: Start,
    pub coupon: Option<String>,
    /// How the customer agreed (checkout, phone, …); the door's name when absent.
    pub consent_channel: Option<String>,
    /// The terms the customer agreed to; `notices.terms_version` when absent.
    pub terms_version: Option<String>,
    /// The id of the customer's address it ships to; absent: their default address, if they
    /// have one.
    pub ship_to: Option<i64>,
    pub external_id: Option<ExternalId>,
    /// Keys with no value (given as `""` or null) are left out.
    pub metadata: MetadataPatch,
}

/// The longest consent channel or terms version, in characters.
pub const CONSENT_FIELD_MAX: usize = 64;

/// Which subscriptions a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionQuery {
    pub status: Option<Status>,
    pub customer: Option<CustomerRef>,
    pub plan: Option<String>,
    pub external_id: Option<ExternalId>,
    pub created: TimeRange,
    pub updated: TimeRange,
}

/// A change of plan, quantity, interval or ship-to address, effective next renewal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeInput {
    pub plan: Option<PlanId>,
    pub quantity: Option<u32>,
    pub interval: Option<Interval>,
    /// The id of one of the customer's addresses.
    pub ship_to: Option<i64>,
}

/// The longest cancellation reason, in characters.
pub const REASON_MAX: usize = 500;

/// How many events, orders and messages `show` lists with a subscription.
const HISTORY_SHOWN: u32 = 1000;

/// Creates a subscription with its welcome email and webhooks, the transaction ended by
/// `commit`.
pub async fn create(
    app: &App,
    actor: &Actor,
    input: SubscriptionInput,
    commit: Commit<'_, SubscriptionView>,
) -> Result<SubscriptionView, AppError> {
    let customer = customers::find(app, &input.customer).await?;
    super::privacy::refuse_if_erased(app, customer.id, "create a subscription").await?;
    let now = app.now();
    let mut new = lifecycle::new_subscription(
        app.catalog(),
        &customer,
        &input.plan,
        input.quantity,
        input.interval,
        input.start,
        app.settings().engine.renewal_time,
        now,
    )?;
    new.coupon_code = input.coupon.as_deref().map(normalize_code);
    let ship_to = match input.ship_to {
        Some(id) => Some(super::addresses::find(app, id).await?),
        None => super::addresses::default_of(app, customer.id).await?,
    };
    if let Some(address) = &ship_to {
        lifecycle::check_ship_to(customer.id, address, app.catalog())?;
    }
    new.ship_to(ship_to.as_ref(), app.catalog());
    new.external_id = input.external_id;
    new.metadata = customers::new_metadata(&input.metadata)?;
    let consent_field = |field: &'static str, given: Option<&str>, default: &str| {
        FreeText::parse(given.unwrap_or(default), CONSENT_FIELD_MAX)
            .map(FreeText::into_string)
            .map_err(|e| AppError::invalid_field(field, format!(": {e}")))
    };
    new.consent = Some(ConsentInput {
        channel: consent_field(
            "consent_channel",
            input.consent_channel.as_deref(),
            actor.door(),
        )?,
        terms_version: consent_field(
            "terms_version",
            input.terms_version.as_deref(),
            &app.settings().notices.terms_version,
        )?,
    });
    let mut tx = app.store().begin_write().await?;
    let sub = tx
        .create_subscription(
            &new,
            &|sub: &Subscription, customer: &Customer| {
                let mut change =
                    lifecycle::welcome(sub, customer, app.catalog(), actor, welcome_detail(&new));
                webhooks::attach(&mut change, &app.settings().webhooks.endpoints, now);
                change
            },
            actor,
            now,
        )
        .await?;
    let view = SubscriptionView::from(&sub);
    commit.finish(tx, &view, now).await?;
    Ok(view)
}

/// The subscription of that id, or a refusal that says how to find one.
pub async fn find(app: &App, id: i64) -> Result<Subscription, AppError> {
    app.store()
        .subscription(id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no subscription {id}; see `subsave subs list`")))
}

/// A subscription's events, oldest first; a refusal when there is no such subscription.
/// A page of a subscription's events, oldest first (by id, after `page.after`).
pub async fn events(app: &App, id: i64, page: PageRequest) -> Result<Page<EventView>, AppError> {
    find(app, id).await?;
    let rows: Vec<EventView> = app
        .store()
        .events(id)
        .await?
        .iter()
        .filter(|e| page.after.is_none_or(|after| e.id > after))
        .take(page.limit as usize + 1)
        .map(EventView::from)
        .collect();
    Ok(Page::from_rows(rows, page.limit))
}

pub async fn show(app: &App, id: i64) -> Result<SubscriptionDetail, AppError> {
    let sub = find(app, id).await?;
    let store = app.store();
    let events = store.events(id).await?;
    let orders = store
        .orders(&OrderFilter {
            subscription_id: Some(id),
            limit: HISTORY_SHOWN,
            ..Default::default()
        })
        .await?;
    let messages = store
        .messages(&MessageFilter {
            subscription_id: Some(id),
            limit: HISTORY_SHOWN,
            ..Default::default()
        })
        .await?;
    Ok(SubscriptionDetail {
        subscription: SubscriptionView::from(&sub),
        events: events.iter().map(EventView::from).collect(),
        orders: orders.iter().map(OrderView::from).collect(),
        messages: messages.iter().map(MessageView::from).collect(),
        consents: store
            .consents(id)
            .await?
            .iter()
            .map(ConsentView::from)
            .collect(),
        payments: store
            .payments(&crate::store::PaymentFilter {
                subscription_id: Some(id),
                limit: HISTORY_SHOWN,
                ..Default::default()
            })
            .await?
            .iter()
            .map(super::views::PaymentView::from)
            .collect(),
    })
}

pub async fn list(
    app: &App,
    query: &SubscriptionQuery,
    page: PageRequest,
) -> Result<Page<SubscriptionView>, AppError> {
    let customer_id = customers::id_of(app, query.customer.as_ref()).await?;
    let (limit, after_id) = page.fetch();
    let rows = app
        .store()
        .subscriptions(&SubscriptionFilter {
            status: query.status,
            customer_id,
            plan: query.plan.clone(),
            external_id: query.external_id.clone(),
            created: query.created,
            updated: query.updated,
            limit,
            after_id,
            lag_ok: true,
        })
        .await?;
    Ok(Page::from_rows(rows, page.limit).map(|s| SubscriptionView::from(&s)))
}

/// A cancellation's reason as plain text; an empty one stays empty (the lifecycle rules refuse
/// it, saying how to give one).
fn parse_reason(reason: &str) -> Result<String, TextError> {
    match FreeText::parse(reason, REASON_MAX) {
        Ok(text) => Ok(text.into_string()),
        Err(TextError::Empty) => Ok(String::new()),
        Err(e) => Err(e),
    }
}

impl Action {
    /// The lifecycle operation this action is on `sub`: the one mapping from a door's action
    /// to an operation (the customer pages check their narrower bounds first, then come here).
    /// `ship_to` is the address a change names, as read by its id.
    pub(super) fn operation(
        &self,
        sub: &Subscription,
        ship_to: Option<&CustomerAddress>,
    ) -> Result<Operation, lifecycle::LifecycleError> {
        Ok(match self {
            Action::Skip => Operation::Skip,
            Action::Pause { until } => Operation::Pause {
                until: until
                    .map(|date| resolve_local(sub.time_zone, date.and_time(NaiveTime::MIN))),
            },
            Action::Resume => Operation::Resume,
            Action::Cancel { reason } => Operation::Cancel {
                reason: parse_reason(reason)
                    .map_err(|e| lifecycle::LifecycleError::InvalidInput(format!("reason: {e}")))?,
            },
            Action::Change(input) => Operation::Change {
                plan: input.plan.clone(),
                quantity: input.quantity,
                interval: input.interval,
                ship_to: ship_to.cloned().map(Box::new),
            },
            Action::Reschedule { to } => Operation::Reschedule { to: *to },
            Action::RenewNow => Operation::RenewNow,
        })
    }
}

/// A lifecycle operation as a door asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Skip the next renewal; the one after it happens as scheduled.
    Skip,
    /// Pause renewals, until the start of a local date in the subscription's time zone (then
    /// active again by itself) or until resumed.
    Pause {
        until: Option<NaiveDate>,
    },
    Resume,
    /// Cancel for good, with the reason given.
    Cancel {
        reason: String,
    },
    /// Change plan, quantity, interval or ship-to address from the next renewal on.
    Change(ChangeInput),
    /// Move the next renewal to another local date, at the same time of day.
    Reschedule {
        to: NaiveDate,
    },
    /// Make the next renewal due now; the next sweep bills it.
    RenewNow,
}

/// Does `action` on subscription `id` for `actor`, the transaction ended by `commit`.
pub async fn perform(
    app: &App,
    actor: &Actor,
    id: i64,
    action: &Action,
    commit: Commit<'_, SubscriptionView>,
) -> Result<SubscriptionView, AppError> {
    let noted = Noted::default();
    perform_noted(app, actor, id, action, noted, commit, plain_view).await
}

/// Why a person acted (support's reason for a skip or a change, say), kept in the operation's
/// event as `detail.support_reason`: plain text of 1 to [`REASON_MAX`] characters.
pub fn parse_support_reason(reason: &str) -> Result<String, AppError> {
    FreeText::parse(reason, REASON_MAX)
        .map(FreeText::into_string)
        .map_err(|e| AppError::invalid_field("reason", format!(": {e} (say why you act)")))
}

/// [`perform`] for a person who was shown the subscription in state `seen` (its
/// [`lifecycle::fingerprint`]) and gave `reason`: refused as stale when the subscription
/// changed since (a second post of the same form does nothing), and the reason is kept in the
/// operation's event.
pub async fn perform_as_seen(
    app: &App,
    actor: &Actor,
    id: i64,
    action: &Action,
    seen: &str,
    reason: &str,
) -> Result<SubscriptionView, AppError> {
    let reason = parse_support_reason(reason)?;
    let noted = Noted {
        seen: Some(seen),
        reason: Some(&reason),
    };
    perform_noted(app, actor, id, action, noted, Commit::Plain, plain_view).await
}

/// What an action would do to a subscription, without doing it: the state before and after,
/// the next renewal's quote before and after, and the state's fingerprint to act on.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Preview {
    pub before: SubscriptionView,
    pub after: SubscriptionView,
    /// The next renewal (when and its total) as it stands, and after the action.
    pub next_before: Option<UpcomingView>,
    pub next_after: Option<UpcomingView>,
    pub seen: String,
}

/// One renewal to come: when, and what it would charge.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UpcomingView {
    pub at: chrono::DateTime<chrono::Utc>,
    pub total: crate::core::money::Money,
}

/// [`Preview`] of `action` on subscription `id` for `actor`: refused as the action itself
/// would be (resuming an active subscription, say).
pub async fn preview(
    app: &App,
    actor: &Actor,
    id: i64,
    action: &Action,
) -> Result<Preview, AppError> {
    let (sub, customer, change) = dry_run(app, actor, id, action).await?;
    let next = |s: &Subscription| {
        crate::core::renewal::upcoming(s, &customer, app.catalog(), 1)
            .into_iter()
            .next()
            .map(|o| UpcomingView {
                at: o.scheduled_for,
                total: o.total,
            })
    };
    Ok(Preview {
        before: SubscriptionView::from(&sub),
        after: SubscriptionView::from(&change.after),
        next_before: next(&sub),
        next_after: next(&change.after),
        seen: lifecycle::fingerprint(&sub),
    })
}

/// `action` applied to subscription `id` in memory, refused as the action itself would be:
/// the subscription, its customer and the change. Nothing is written.
async fn dry_run(
    app: &App,
    actor: &Actor,
    id: i64,
    action: &Action,
) -> Result<(Subscription, Customer, Change), AppError> {
    let sub = find(app, id).await?;
    let customer = customers::find(app, &CustomerRef::Id(sub.customer_id)).await?;
    let ship_to = ship_to_of(app, action).await?;
    let operation = action.operation(&sub, ship_to.as_ref())?;
    let change = lifecycle::apply(&sub, &customer, &operation, app.catalog(), actor, app.now())?;
    Ok((sub, customer, change))
}

/// The address a change names, read by its id.
async fn ship_to_of(app: &App, action: &Action) -> Result<Option<CustomerAddress>, AppError> {
    match action {
        Action::Change(ChangeInput {
            ship_to: Some(address),
            ..
        }) => Ok(Some(super::addresses::find(app, *address).await?)),
        _ => Ok(None),
    }
}

/// The answer of a use case that changes one subscription.
fn plain_view(sub: &Subscription) -> SubscriptionView {
    SubscriptionView::from(sub)
}

/// What a person's action is checked against and noted with.
#[derive(Default)]
struct Noted<'a> {
    /// The state the person was shown: the action is refused as stale when it changed since.
    seen: Option<&'a str>,
    /// Why they act, kept in the operation's events.
    reason: Option<&'a str>,
}

/// [`perform`] as `noted`, answering with what `view` makes of the subscription after it.
async fn perform_noted<V>(
    app: &App,
    actor: &Actor,
    id: i64,
    action: &Action,
    noted: Noted<'_>,
    commit: Commit<'_, V>,
    view: impl Fn(&Subscription) -> V + Send,
) -> Result<V, AppError> {
    let Noted { seen, reason } = noted;
    if let Action::Cancel { reason } = action {
        // Refused here, naming its field, before anything is locked.
        parse_reason(reason).map_err(|e| AppError::invalid_field("reason", e.to_string()))?;
    }
    if matches!(action, Action::RenewNow) {
        refuse_renew_now_while_unpaid(app, id).await?;
    }
    let ship_to = ship_to_of(app, action).await?;
    let now = app.now();
    let catalog = app.catalog();
    let change = |sub: &Subscription, customer: &Customer| {
        let operation = action.operation(sub, ship_to.as_ref())?;
        let mut change = lifecycle::apply(sub, customer, &operation, catalog, actor, now)?;
        if let Some(reason) = reason {
            for event in &mut change.events {
                if let Some(detail) = event.detail.as_object_mut() {
                    detail.insert("support_reason".into(), reason.into());
                }
            }
        }
        Ok(change)
    };
    let done = change_if_unchanged(app, id, seen, change, commit, view).await?;
    if matches!(action, Action::Resume) {
        super::payments::retry_after_resume(app, id).await?;
    }
    Ok(done)
}

/// What a change does to the next renewal's quote, before it is made: the subscription as it
/// would be, the quotes before and after. Nothing is written.
pub async fn preview_change(
    app: &App,
    id: i64,
    input: &ChangeInput,
) -> Result<ChangeView, AppError> {
    let action = Action::Change(input.clone());
    let (sub, customer, change) = dry_run(app, &Actor::cli(), id, &action).await?;
    Ok(change_view(app, &sub, &change.after, &customer, false))
}

/// Makes a change (as [`perform`] does) and says what it did to the next renewal's quote, the
/// transaction ended by `commit`.
pub async fn change_quoted(
    app: &App,
    actor: &Actor,
    id: i64,
    input: &ChangeInput,
    commit: Commit<'_, ChangeView>,
) -> Result<ChangeView, AppError> {
    let action = Action::Change(input.clone());
    let (before, customer) = before_change(app, id).await?;
    let view = |after: &Subscription| change_view(app, &before, after, &customer, true);
    perform_noted(app, actor, id, &action, Noted::default(), commit, view).await
}

/// Changes subscription `id`'s external id and metadata (merged: see
/// [`crate::core::metadata::MetadataPatch`]) and answers as [`change_quoted`] does (its quotes
/// stay as they were), the transaction ended by `commit`.
pub async fn update_metadata_quoted(
    app: &App,
    id: i64,
    update: &MetadataUpdate,
    commit: Commit<'_, ChangeView>,
) -> Result<ChangeView, AppError> {
    let (before, customer) = before_change(app, id).await?;
    let now = app.now();
    let mut tx = app.store().begin_write().await?;
    let after = tx.update_subscription_metadata(id, update, now).await?;
    let view = change_view(app, &before, &after, &customer, true);
    commit.finish(tx, &view, now).await?;
    Ok(view)
}

/// Subscription `id` before a change, and its customer: what a [`ChangeView`] compares with.
async fn before_change(app: &App, id: i64) -> Result<(Subscription, Customer), AppError> {
    let before = find(app, id).await?;
    let customer = customers::find(app, &CustomerRef::Id(before.customer_id)).await?;
    Ok((before, customer))
}

fn change_view(
    app: &App,
    before: &Subscription,
    after: &Subscription,
    customer: &Customer,
    applied: bool,
) -> ChangeView {
    let catalog = app.catalog();
    let quote_before = crate::core::renewal::next_renewal_snapshot(before, customer, catalog);
    let quote = crate::core::renewal::next_renewal_snapshot(after, customer, catalog);
    let total = |q: &Option<serde_json::Value>| q.as_ref().map(|q| q["total"].clone());
    ChangeView {
        subscription: SubscriptionView::from(after),
        price_changes: total(&quote_before) != total(&quote),
        quote_before,
        quote,
        applied,
    }
}

/// "Renew now" bills and ships at once; while an order of the subscription is unpaid (a
/// declined charge, or one waiting for 3-D Secure) and renewals wait for it
/// (`payments.hold_renewals_while_unpaid`), nothing would be billed, so it is refused with the
/// order to pay first.
pub(super) async fn refuse_renew_now_while_unpaid(app: &App, id: i64) -> Result<(), AppError> {
    if !app.settings().payments.hold_renewals_while_unpaid {
        return Ok(());
    }
    for status in [PaymentStatus::Failed, PaymentStatus::RequiresAction] {
        let unpaid = app
            .store()
            .payments(&PaymentFilter {
                status: Some(status),
                subscription_id: Some(id),
                limit: 1,
                after_id: None,
                lag_ok: false,
            })
            .await?;
        if let Some(payment) = unpaid.first() {
            return Err(AppError::InvalidState(format!(
                "cannot renew subscription {id} now: order {} is not paid yet, and no renewal is billed until it is; update the payment method (or complete the payment) first",
                payment.order_number
            )));
        }
    }
    Ok(())
}

/// Locks the subscription, builds the operation from its state, applies the lifecycle rules
/// and writes the change in one transaction; refused as stale (a conflict) when `seen` is
/// given and the locked subscription's [`lifecycle::fingerprint`] differs: the caller acted on
/// a state that no longer holds.
pub(super) async fn apply_if_unchanged(
    app: &App,
    actor: &Actor,
    id: i64,
    seen: Option<&str>,
    operation: impl Fn(&Subscription) -> Result<Operation, lifecycle::LifecycleError> + Send + Sync,
) -> Result<SubscriptionView, AppError> {
    let now = app.now();
    let catalog = app.catalog();
    let change = |sub: &Subscription, customer: &Customer| {
        lifecycle::apply(sub, customer, &operation(sub)?, catalog, actor, now)
    };
    change_if_unchanged(app, id, seen, change, Commit::Plain, plain_view).await
}

/// Locks subscription `id`, refuses as stale (a conflict) when `seen` is given and the locked
/// subscription's [`lifecycle::fingerprint`] differs (the caller acted on a state that no
/// longer holds), else makes the change `change` says with its webhooks and writes it in one
/// transaction, ended by `commit` with what `view` makes of the subscription after it.
async fn change_if_unchanged<V>(
    app: &App,
    id: i64,
    seen: Option<&str>,
    change: impl Fn(&Subscription, &Customer) -> Result<Change, lifecycle::LifecycleError> + Send + Sync,
    commit: Commit<'_, V>,
    view: impl Fn(&Subscription) -> V + Send,
) -> Result<V, AppError> {
    let now = app.now();
    let transition = |sub: &Subscription, customer: &Customer| {
        refuse_if_changed(sub, seen)?;
        let mut change = change(sub, customer)?;
        webhooks::attach(&mut change, &app.settings().webhooks.endpoints, now);
        Ok(change)
    };
    let mut tx = app.store().begin_write().await?;
    let after = tx.transition(id, &transition).await?;
    let done = view(&after);
    commit.finish(tx, &done, now).await?;
    Ok(done)
}

/// Refuses as stale when `seen` is given and is not the subscription's
/// [`lifecycle::fingerprint`]: the caller acted on a state that no longer holds.
fn refuse_if_changed(
    sub: &Subscription,
    seen: Option<&str>,
) -> Result<(), lifecycle::LifecycleError> {
    match seen {
        Some(seen) if lifecycle::fingerprint(sub) != seen => {
            Err(lifecycle::LifecycleError::Stale(format!(
                "subscription {} changed since this was shown; nothing was done",
                sub.id
            )))
        }
        _ => Ok(()),
    }
}

/// Redeems coupon `code` on subscription `id` from its next renewal, by the coupon's rules
/// as at creation (disabled, expired, redemption limit, plan) and one coupon per subscription
/// ([`lifecycle::redeem_coupon`]), counting the redemption, in one transaction with its event,
/// email and webhooks. `seen` is the state a page showed (stale when it changed since);
/// `agreed` checks the subscription as it would be (and its customer) before it is written:
/// a page's confirmed price.
pub async fn redeem_coupon(
    app: &App,
    actor: &Actor,
    id: i64,
    code: &str,
    seen: Option<&str>,
    agreed: impl Fn(&Subscription, &Customer) -> Result<(), lifecycle::LifecycleError> + Send + Sync,
) -> Result<SubscriptionView, AppError> {
    let sub = find(app, id).await?;
    super::privacy::refuse_if_erased(app, sub.customer_id, "redeem a coupon").await?;
    let now = app.now();
    let redemption = |sub: &Subscription, customer: &Customer, coupon: &Coupon| {
        refuse_if_changed(sub, seen)?;
        let mut change =
            lifecycle::redeem_coupon(sub, customer, coupon, app.catalog(), actor, now)?;
        agreed(&change.after, customer)?;
        webhooks::attach(&mut change, &app.settings().webhooks.endpoints, now);
        Ok(change)
    };
    let sub = app
        .store()
        .redeem_coupon(id, &normalize_code(code), &redemption)
        .await?;
    Ok(SubscriptionView::from(&sub))
}

/// How long subscription `sub` may be restarted: `web.restart_days` from its latest
/// cancellation (the `cancel` event, whoever made it).
pub async fn restart_window(app: &App, sub: &Subscription) -> Result<RestartWindow, AppError> {
    let cancelled_at = if sub.status == Status::Cancelled {
        app.store()
            .events(sub.id)
            .await?
            .iter()
            .rev()
            .find(|e| e.kind == "cancel")
            .map(|e| e.at)
    } else {
        None
    };
    Ok(RestartWindow {
        cancelled_at,
        days: app.settings().web.restart_days,
    })
}

/// The consent a restart records: given through `actor`'s door, to the current terms.
pub fn restart_consent(app: &App, actor: &Actor) -> NewConsent {
    NewConsent {
        input: ConsentInput {
            channel: actor.door().to_owned(),
            terms_version: app.settings().notices.terms_version.clone(),
        },
        actor: actor.clone(),
    }
}

/// Restarts cancelled subscription `id` for `actor` (`lifecycle::restart`), recording the
/// customer's fresh consent (the door as its channel, `notices.terms_version` as its terms)
/// in the same transaction, ended by `commit`. `seen` is the state a page showed: the restart
/// is refused as stale when the subscription changed since.
pub async fn restart(
    app: &App,
    actor: &Actor,
    id: i64,
    seen: Option<&str>,
    commit: Commit<'_, SubscriptionView>,
) -> Result<SubscriptionView, AppError> {
    let sub = find(app, id).await?;
    super::privacy::refuse_if_erased(app, sub.customer_id, "restart a subscription").await?;
    let window = restart_window(app, &sub).await?;
    let now = app.now();
    let consent = restart_consent(app, actor);
    let change = |sub: &Subscription, customer: &Customer| {
        lifecycle::restart(sub, customer, app.catalog(), window, consent.clone(), now)
    };
    change_if_unchanged(app, id, seen, change, commit, plain_view).await
}
