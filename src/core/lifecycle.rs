//! Subscription lifecycle rules: create, skip, pause, resume, cancel, change, reschedule,
//! renew now and restart (a cancelled subscription, within its window), as pure functions from a subscription's state to a [`Change`].
//!
//! Owns what each operation means and when it is refused (docs/rules.md, "Lifecycle"):
//! a refused operation returns a [`LifecycleError`] that says what was asked, why it makes no
//! sense in the current state, and what to do instead, and changes nothing. Every accepted
//! operation yields one event and one confirmation message. No IO and no clock: `now` is a
//! parameter; the store persists the result in one transaction.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::json;

use crate::core::catalog::{Catalog, PlanId};
use crate::core::model::{
    Actor, Change, Coupon, CouponGrant, Customer, CustomerAddress, MessageKind, NewConsent,
    NewEvent, NewMessage, NewSubscription, Status, Subscription,
};
use crate::core::schedule::{Anchor, Interval, TimeOfDay, resolve_local};
use crate::core::snapshot::{customer_snapshot, state_summary};

/// Why an operation was refused. The text names the subscription, the problem and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    /// The operation makes no sense in the subscription's current state (paused, cancelled).
    #[error("{0}")]
    InvalidState(String),
    /// A value given with the operation is refused (a plan, a date, a quantity).
    #[error("{0}")]
    InvalidInput(String),
    /// The subscription changed since the caller saw it (a page posted twice, or two tabs):
    /// nothing is done, so that one intention is never applied twice.
    #[error("{0}")]
    Stale(String),
}

fn refuse_state<T>(message: String) -> Result<T, LifecycleError> {
    Err(LifecycleError::InvalidState(message))
}

fn refuse<T>(message: String) -> Result<T, LifecycleError> {
    Err(LifecycleError::InvalidInput(message))
}

/// An operation on an existing subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// Skip the next renewal; the one after it happens as scheduled.
    Skip,
    /// Stop renewing, until a date (then active again by itself) or until resumed.
    Pause {
        until: Option<DateTime<Utc>>,
    },
    Resume,
    Cancel {
        reason: String,
    },
    /// Effective from the next renewal.
    Change {
        plan: Option<PlanId>,
        quantity: Option<u32>,
        interval: Option<Interval>,
        /// Ship to this address of the customer's from the next renewal on.
        ship_to: Option<Box<CustomerAddress>>,
    },
    /// Move the next renewal to another local date (same time of day); later renewals follow
    /// from there.
    Reschedule {
        to: NaiveDate,
    },
    /// Make the next renewal due now; the next sweep bills it.
    RenewNow,
}

impl Operation {
    fn name(&self) -> &'static str {
        match self {
            Operation::Skip => "skip",
            Operation::Pause { .. } => "pause",
            Operation::Resume => "resume",
            Operation::Cancel { .. } => "cancel",
            Operation::Change { .. } => "change",
            Operation::Reschedule { .. } => "reschedule",
            Operation::RenewNow => "renew-now",
        }
    }
}

/// How a new subscription's first renewal is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The storefront took the first order today: the anchor is today at the configured time
    /// of day, and the first renewal is one interval later.
    AfterCheckout,
    /// The storefront took the first order; the first renewal is on this local date.
    FirstRenewalOn(NaiveDate),
    /// No order yet: the next sweep bills cycle 0.
    Now,
}

/// Validates and lays out a new subscription.
#[allow(clippy::too_many_arguments)]
pub fn new_subscription(
    catalog: &Catalog,
    customer: &Customer,
    plan: &str,
    quantity: u32,
    interval: Option<Interval>,
    start: Start,
    renewal_time: TimeOfDay,
    now: DateTime<Utc>,
) -> Result<NewSubscription, LifecycleError> {
    let plan = find_plan(catalog, plan)?;
    let interval = interval.unwrap_or(plan.default_interval);
    check_interval(plan, interval)?;
    check_quantity(catalog, quantity)?;
    let tz = customer.time_zone;
    let today = now.with_timezone(&tz).date_naive();
    let renewal_on = |anchor: NaiveDateTime, steps: u32| {
        Anchor::new(anchor, tz)
            .nth(interval, steps)
            .map_err(|e| LifecycleError::InvalidInput(e.to_string()))
    };
    // (anchor, the anchor's cycle, the next cycle, orders so far, when the next renewal is)
    let (anchor_local, anchor_cycle, next_cycle, orders_count, next_renewal_at) = match start {
        // The anchor is the storefront's order (cycle 0); cycle 1 is one interval later.
        Start::AfterCheckout => {
            let anchor = today.and_time(renewal_time.time());
            (anchor, 0, 1, 1, renewal_on(anchor, 1)?)
        }
        // The anchor is cycle 1 itself.
        Start::FirstRenewalOn(date) => {
            let anchor = date.and_time(renewal_time.time());
            let at = renewal_on(anchor, 0)?;
            if at <= now {
                return refuse(format!(
                    "--first-renewal {date}: that is not in the future in {}; pick a later date",
                    tz.name()
                ));
            }
            (anchor, 1, 1, 1, at)
        }
        // No order yet: cycle 0 is due now, later ones follow from this minute.
        Start::Now => {
            let anchor = truncate_to_minute(now.with_timezone(&tz).naive_local());
            (anchor, 0, 0, 0, now)
        }
    };
    Ok(NewSubscription {
        customer_id: customer.id,
        plan: plan.id.clone(),
        quantity,
        interval,
        anchor_local,
        anchor_cycle,
        time_zone: tz,
        next_cycle,
        next_renewal_at,
        orders_count,
        coupon_code: None,
        consent: None,
        annual_notice_at: crate::core::schedule::next_annual(now),
        address_id: None,
        external_id: None,
        metadata: Default::default(),
        currency: catalog.currency,
    })
}

fn truncate_to_minute(local: NaiveDateTime) -> NaiveDateTime {
    local
        .date()
        .and_hms_opt(
            chrono::Timelike::hour(&local),
            chrono::Timelike::minute(&local),
            0,
        )
        .unwrap_or(local)
}

fn find_plan<'a>(
    catalog: &'a Catalog,
    plan: &str,
) -> Result<&'a crate::core::catalog::Plan, LifecycleError> {
    catalog.plan(plan).ok_or_else(|| {
        LifecycleError::InvalidInput(format!(
            "plan \"{plan}\" is not in the catalog; choose one of: {}",
            catalog.plan_ids()
        ))
    })
}

fn check_interval(
    plan: &crate::core::catalog::Plan,
    interval: Interval,
) -> Result<(), LifecycleError> {
    if plan.allows(interval) {
        return Ok(());
    }
    let allowed: Vec<String> = plan
        .allowed_intervals
        .iter()
        .map(Interval::to_string)
        .collect();
    refuse(format!(
        "plan {} does not allow an interval of {interval} (it allows {})",
        plan.id,
        allowed.join(", ")
    ))
}

fn check_quantity(catalog: &Catalog, quantity: u32) -> Result<(), LifecycleError> {
    let max = catalog.limits.max_quantity;
    if (1..=max).contains(&quantity) {
        Ok(())
    } else {
        refuse(format!(
            "quantity {quantity} is out of range: choose 1 to {max}"
        ))
    }
}

/// A date a customer or an operator sets (a new renewal date, the end of a pause) lies within
/// the catalog's horizon from now.
fn check_horizon(
    catalog: &Catalog,
    what: &str,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), LifecycleError> {
    let days = catalog.limits.horizon_days;
    if at <= now + chrono::TimeDelta::days(i64::from(days)) {
        Ok(())
    } else {
        refuse(format!(
            "{what} is more than {days} days ahead; choose a date within {days} days from today"
        ))
    }
}

/// The first cycle at or after `sub.next_cycle` whose instant is after `after`.
fn first_cycle_after(
    sub: &Subscription,
    after: DateTime<Utc>,
    inclusive: bool,
) -> Result<(u32, DateTime<Utc>), LifecycleError> {
    // Bounded: even a daily plan paused for 30 years is ~11,000 steps.
    for k in (sub.next_cycle..).take(20_000) {
        let at = sub.instant_of(k).ok_or_else(|| {
            LifecycleError::InvalidState(format!(
                "subscription {}: renewal {k} is out of the calendar's range",
                sub.id
            ))
        })?;
        if at > after || (inclusive && at == after) {
            return Ok((k, at));
        }
    }
    refuse_state(format!(
        "subscription {}: no renewal found after {after}",
        sub.id
    ))
}

/// Resumes a paused subscription: the next renewal is the first cycle after `from`; cycles
/// that fell inside the pause are not billed. Used by `resume` (from now) and by the engine
/// when a pause ends (from the pause's end).
pub fn resumed(
    sub: &Subscription,
    from: DateTime<Utc>,
    inclusive: bool,
) -> Result<Subscription, LifecycleError> {
    let (k, at) = first_cycle_after(sub, from, inclusive)?;
    let mut after = sub.clone();
    after.status = Status::Active;
    after.paused_until = None;
    after.next_cycle = k;
    after.next_renewal_at = Some(at);
    Ok(after)
}

/// Applies one operation. On success the change holds the new state, one event and one
/// confirmation message; on refusal nothing changes.
pub fn apply(
    sub: &Subscription,
    customer: &Customer,
    operation: &Operation,
    catalog: &Catalog,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Change, LifecycleError> {
    let name = operation.name();
    let who = format!("subscription {}", sub.id);
    if sub.status == Status::Cancelled {
        return refuse_state(format!(
            "cannot {name} {who}: it is cancelled, and cancellation is final; create a new subscription instead"
        ));
    }
    let mut after = sub.clone();
    after.updated_at = now;
    let (kind, detail) = match operation {
        Operation::Skip => {
            require_active(sub, name)?;
            let skipped = sub.next_cycle;
            after.next_cycle = skipped + 1;
            after.next_renewal_at = sub.instant_of(skipped + 1);
            after.promise = None;
            (
                MessageKind::Skipped,
                json!({ "skipped_cycle": skipped, "skipped_date": local_string(sub, skipped) }),
            )
        }
        Operation::Pause { until } => {
            require_active(sub, name)?;
            pause(&mut after, *until, catalog, &who, now)?
        }
        Operation::Resume => {
            if sub.status != Status::Paused {
                return refuse_state(format!(
                    "cannot resume {who}: it is {}, not paused",
                    sub.status
                ));
            }
            after = resumed(sub, now, false)?;
            after.updated_at = now;
            (MessageKind::Resumed, json!({}))
        }
        Operation::Cancel { reason } => cancel(&mut after, reason, &who)?,
        Operation::Change {
            plan,
            quantity,
            interval,
            ship_to,
        } => {
            let asked = NewTerms {
                plan: plan.as_ref(),
                quantity: *quantity,
                interval: *interval,
                ship_to: ship_to.as_deref(),
            };
            change_terms(sub, &mut after, &asked, catalog, &who)?
        }
        Operation::Reschedule { to } => {
            require_active(sub, name)?;
            reschedule(sub, &mut after, *to, catalog, &who, now)?
        }
        Operation::RenewNow => {
            require_active(sub, name)?;
            after.anchor_local =
                truncate_to_minute(now.with_timezone(&sub.time_zone).naive_local());
            after.anchor_cycle = sub.next_cycle;
            after.next_renewal_at = Some(now);
            after.hold_reason = None;
            (MessageKind::Changed, json!({ "renew_now": true }))
        }
    };
    let mut change = change_with_notice(sub, &after, customer, name, kind, actor, detail);
    quote_next_renewal(&mut change, customer, catalog);
    Ok(change)
}

/// A pause until a date in the future (within the horizon) or until resumed, made on
/// `after`; its confirmation's kind and detail.
fn pause(
    after: &mut Subscription,
    until: Option<DateTime<Utc>>,
    catalog: &Catalog,
    who: &str,
    now: DateTime<Utc>,
) -> Result<(MessageKind, serde_json::Value), LifecycleError> {
    if let Some(until) = until {
        if until <= now {
            return refuse(format!(
                "cannot pause {who} until {until}: that is not in the future"
            ));
        }
        check_horizon(catalog, &format!("pausing until {until}"), until, now)?;
    }
    after.status = Status::Paused;
    after.paused_until = until;
    Ok((MessageKind::Paused, json!({ "until": until })))
}

/// A cancellation for `reason` (required), made on `after`: no renewal and no notice after
/// it; its confirmation's kind and detail.
fn cancel(
    after: &mut Subscription,
    reason: &str,
    who: &str,
) -> Result<(MessageKind, serde_json::Value), LifecycleError> {
    if reason.trim().is_empty() {
        return refuse(format!(
            "cannot cancel {who} without a reason; pass --reason \"…\""
        ));
    }
    after.status = Status::Cancelled;
    after.next_renewal_at = None;
    after.paused_until = None;
    after.notices.annual_notice_at = None;
    after.cancel_reason = Some(reason.to_owned());
    Ok((MessageKind::Cancelled, json!({ "reason": reason })))
}

/// What `Operation::Change` asks for: each absent field stays as it is.
struct NewTerms<'a> {
    plan: Option<&'a PlanId>,
    quantity: Option<u32>,
    interval: Option<Interval>,
    ship_to: Option<&'a CustomerAddress>,
}

/// A change of plan, quantity, interval or address from the next renewal, made on `after`;
/// its confirmation's kind and detail.
fn change_terms(
    sub: &Subscription,
    after: &mut Subscription,
    asked: &NewTerms<'_>,
    catalog: &Catalog,
    who: &str,
) -> Result<(MessageKind, serde_json::Value), LifecycleError> {
    if asked.plan.is_none()
        && asked.quantity.is_none()
        && asked.interval.is_none()
        && asked.ship_to.is_none()
    {
        return refuse(format!(
            "nothing to change on {who}: pass --plan, --quantity, --every or --ship-to"
        ));
    }
    if let Some(address) = asked.ship_to {
        check_ship_to(sub.customer_id, address, catalog)?;
    }
    let (new_plan, new_interval, new_quantity) = new_terms(sub, asked, catalog)?;
    let address_id = |s: &Subscription| s.ship_to.as_ref().map(|a| a.id);
    let new_address = asked.ship_to.map(|a| a.id).or(address_id(sub));
    let terms_change =
        new_plan.id != sub.plan || new_quantity != sub.quantity || new_interval != sub.interval;
    if !terms_change && new_address == address_id(sub) {
        return refuse(format!(
            "{who} already has plan {}, quantity {}, interval {} and this address; nothing changes",
            sub.plan, sub.quantity, sub.interval
        ));
    }
    if new_interval != sub.interval {
        // Re-anchor on the next renewal: it stays where it is, later ones follow the
        // new interval from there.
        after.anchor_local = sub.local_of(sub.next_cycle).unwrap_or(sub.anchor_local);
        after.anchor_cycle = sub.next_cycle;
        after.interval = new_interval;
    }
    after.plan = new_plan.id.clone();
    after.quantity = new_quantity;
    after.hold_reason = None;
    if let Some(address) = asked.ship_to {
        after.ship_to = Some(address.clone());
    }
    let market_of = |s: &Subscription| catalog.market_for(s.destination()).name;
    if terms_change || market_of(sub) != market_of(after) {
        // The subscription changed since any reminder: its price is no longer the
        // promise, and its confirmation shows the new price, so no price-change
        // notice compares the next renewal with the old order. A move to another
        // market is such a change: its prices are another price list, often in
        // another currency, which no reminded total is a ceiling of.
        after.promise = None;
        after.notices.keep_last_total(None);
    }
    // A new address alone in the same market keeps a reminded total as the ceiling of
    // that renewal (docs/rules.md), and a rise it brings later is announced like any
    // other.
    Ok((
        MessageKind::Changed,
        json!({
            "before": { "plan": sub.plan, "quantity": sub.quantity, "interval": sub.interval, "ship_to": address_id(sub) },
            "after": { "plan": after.plan, "quantity": after.quantity, "interval": after.interval, "ship_to": address_id(after) },
        }),
    ))
}

/// The plan, interval and quantity a change leads to, each checked against the catalog.
fn new_terms<'a>(
    sub: &Subscription,
    asked: &NewTerms<'_>,
    catalog: &'a Catalog,
) -> Result<(&'a crate::core::catalog::Plan, Interval, u32), LifecycleError> {
    let new_plan = find_plan(
        catalog,
        asked.plan.map_or(sub.plan.as_str(), PlanId::as_str),
    )?;
    // A plan change that names no interval keeps the current one if the new plan
    // allows it, else takes the nearest one it allows (shown in the preview).
    let new_interval = match asked.interval {
        Some(chosen) => chosen,
        None if new_plan.allowed_intervals.contains(&sub.interval) => sub.interval,
        None => sub
            .interval
            .nearest_of(&new_plan.allowed_intervals)
            .unwrap_or(sub.interval),
    };
    check_interval(new_plan, new_interval)?;
    let new_quantity = asked.quantity.unwrap_or(sub.quantity);
    check_quantity(catalog, new_quantity)?;
    Ok((new_plan, new_interval, new_quantity))
}

/// The next renewal moved to local date `to` at the anchor's time of day, made on `after`;
/// its confirmation's kind and detail.
fn reschedule(
    sub: &Subscription,
    after: &mut Subscription,
    to: NaiveDate,
    catalog: &Catalog,
    who: &str,
    now: DateTime<Utc>,
) -> Result<(MessageKind, serde_json::Value), LifecycleError> {
    let local = to.and_time(sub.anchor_local.time());
    let at = resolve_local(sub.time_zone, local);
    if at <= now {
        return refuse(format!(
            "cannot reschedule {who} to {to}: that is not in the future in {}",
            sub.time_zone.name()
        ));
    }
    check_horizon(catalog, &format!("rescheduling to {to}"), at, now)?;
    after.anchor_local = local;
    after.anchor_cycle = sub.next_cycle;
    after.next_renewal_at = Some(at);
    Ok((
        MessageKind::Changed,
        json!({ "rescheduled_from": sub.next_renewal_at, "rescheduled_to": at }),
    ))
}

/// Redeems `coupon` on an existing subscription from its next renewal, by the coupon's own
/// rules (disabled, expired, redemption limit, plan: [`Coupon::refuse_redemption`]), as a
/// new subscription redeems one. A subscription has one coupon at most: one that has a coupon
/// (even used up) is refused. The store counts the redemption in the same transaction.
pub fn redeem_coupon(
    sub: &Subscription,
    customer: &Customer,
    coupon: &Coupon,
    catalog: &Catalog,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Change, LifecycleError> {
    let who = format!("subscription {}", sub.id);
    if sub.status == Status::Cancelled {
        return refuse_state(format!(
            "cannot redeem coupon {} on {who}: it is cancelled",
            coupon.code
        ));
    }
    if let Some(grant) = &sub.coupon {
        return refuse_state(format!(
            "cannot redeem coupon {} on {who}: it already has coupon {}, and a subscription has one at most",
            coupon.code, grant.code
        ));
    }
    // Billed in its destination's market's currency: an amount coupon must be in it.
    let currency = catalog.market_for(sub.destination()).currency;
    if let Some(why) = coupon.refuse_redemption(&sub.plan, currency, now) {
        return refuse_state(format!("cannot redeem it on {who}: {why}"));
    }
    let mut after = sub.clone();
    after.updated_at = now;
    after.coupon = Some(CouponGrant {
        coupon_id: coupon.id,
        code: coupon.code.clone(),
        value: coupon.value,
        duration: coupon.duration,
        plan: coupon.plan.clone(),
        orders_used: 0,
    });
    let detail = json!({ "coupon": coupon.code });
    let mut change = change_with_notice(
        sub,
        &after,
        customer,
        "coupon",
        MessageKind::Changed,
        actor,
        detail,
    );
    quote_next_renewal(&mut change, customer, catalog);
    Ok(change)
}

/// How long a cancelled subscription may be restarted: `days` after it was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartWindow {
    /// When the subscription was cancelled (its latest `cancel` event); `None` when nothing
    /// records it, which no window can be measured from.
    pub cancelled_at: Option<DateTime<Utc>>,
    pub days: u32,
}

impl RestartWindow {
    /// The last instant a restart is allowed.
    pub fn ends_at(&self) -> Option<DateTime<Utc>> {
        self.cancelled_at
            .map(|at| at + chrono::TimeDelta::days(i64::from(self.days)))
    }

    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.ends_at().is_some_and(|end| now <= end)
    }
}

/// Restarts a cancelled subscription within its window, as a new subscription would start
/// today: active, its first renewal due now (the next sweep bills it at today's price) and
/// later ones following from today; no promise, price check or last total carried over from
/// before the cancellation; an annual notice a year from now; and the customer's fresh
/// consent, recorded by the change's transaction. One event (`restart`) and one confirmation
/// (the lifecycle email, `restarted`).
pub fn restart(
    sub: &Subscription,
    customer: &Customer,
    catalog: &Catalog,
    window: RestartWindow,
    consent: NewConsent,
    now: DateTime<Utc>,
) -> Result<Change, LifecycleError> {
    let who = format!("subscription {}", sub.id);
    if sub.status != Status::Cancelled {
        return refuse_state(format!(
            "cannot restart {who}: it is {}, not cancelled; only a cancelled subscription can be restarted",
            sub.status
        ));
    }
    let local_date = |at: DateTime<Utc>| at.with_timezone(&sub.time_zone).date_naive();
    match (window.cancelled_at, window.ends_at()) {
        (Some(cancelled), Some(end)) if now > end => {
            return refuse_state(format!(
                "cannot restart {who}: it was cancelled on {}, and it could be restarted until {} ({} days); subscribe again from the storefront",
                local_date(cancelled),
                local_date(end),
                window.days
            ));
        }
        (Some(_), Some(_)) => {}
        _ => {
            return refuse_state(format!(
                "cannot restart {who}: nothing records when it was cancelled; subscribe again from the storefront"
            ));
        }
    }
    let plan = find_plan(catalog, sub.plan.as_str())?;
    check_interval(plan, sub.interval)?;
    let mut after = sub.clone();
    after.status = Status::Active;
    after.cancel_reason = None;
    after.paused_until = None;
    after.hold_reason = None;
    after.error_count = 0;
    after.anchor_local = truncate_to_minute(now.with_timezone(&sub.time_zone).naive_local());
    after.anchor_cycle = sub.next_cycle;
    after.next_renewal_at = Some(now);
    after.promise = None;
    after.notices = crate::core::model::NoticeState {
        last_total_minor: None,
        last_total_currency: None,
        price_checked_cycle: None,
        annual_notice_at: Some(crate::core::schedule::next_annual(now)),
    };
    after.updated_at = now;
    let detail = json!({ "restarted": true, "cancelled_at": window.cancelled_at });
    let mut change = change_with_notice(
        sub,
        &after,
        customer,
        "restart",
        MessageKind::Resumed,
        &consent.actor,
        detail,
    );
    change.consent = Some(consent);
    quote_next_renewal(&mut change, customer, catalog);
    Ok(change)
}

/// Adds the next renewal's itemized price to the change's confirmation, so that the email
/// says what the changed subscription will charge. A renewal that cannot be priced (the
/// engine will hold it) leaves the email without a price rather than refusing the change.
fn quote_next_renewal(change: &mut Change, customer: &Customer, catalog: &Catalog) {
    if let Some(quote) =
        crate::core::renewal::next_renewal_snapshot(&change.after, customer, catalog)
    {
        for message in &mut change.messages {
            message.payload["quote"] = quote.clone();
        }
    }
}

/// A subscription of customer `customer_id` ships to one of that customer's own addresses,
/// in a country the shop ships to.
pub fn check_ship_to(
    customer_id: i64,
    address: &CustomerAddress,
    catalog: &Catalog,
) -> Result<(), LifecycleError> {
    if address.customer_id != customer_id {
        return refuse(format!(
            "ship_to: address {} is not one of customer {customer_id}'s addresses; see `subsave customers addresses list {customer_id}`",
            address.id
        ));
    }
    match catalog.refuse_destination(address.address.country) {
        Some(why) => refuse(format!("ship_to: address {}:{why}", address.id)),
        None => Ok(()),
    }
}

fn require_active(sub: &Subscription, name: &str) -> Result<(), LifecycleError> {
    match sub.status {
        Status::Active => Ok(()),
        Status::Paused => refuse_state(format!(
            "cannot {name} subscription {}: it is paused; resume it first (subsave subs resume {})",
            sub.id, sub.id
        )),
        Status::Cancelled => refuse_state(format!(
            "cannot {name} subscription {}: it is cancelled",
            sub.id
        )),
    }
}

fn local_string(sub: &Subscription, cycle: u32) -> Option<String> {
    sub.instant_of(cycle)
        .map(|at| at.with_timezone(&sub.time_zone).to_rfc3339())
}

/// A change carrying one event and one confirmation message for `customer`.
pub fn change_with_notice(
    before: &Subscription,
    after: &Subscription,
    customer: &Customer,
    event_kind: &str,
    message_kind: MessageKind,
    actor: &Actor,
    detail: serde_json::Value,
) -> Change {
    let event = NewEvent {
        subscription_id: after.id,
        kind: event_kind.to_owned(),
        actor: actor.clone(),
        cycle: Some(before.next_cycle),
        detail: json!({
            "detail": detail,
            "before": state_summary(before),
            "after": state_summary(after),
        }),
    };
    let message = NewMessage::now(
        message_kind,
        customer.email.clone(),
        after.id,
        Some(after.next_cycle),
        json!({
            "customer": customer_snapshot(customer),
            "subscription": state_summary(after),
            "detail": detail,
        }),
    );
    Change {
        events: vec![event],
        messages: vec![message],
        ..Change::of(after.clone())
    }
}

/// A new subscription's welcome: the `created` event and the confirmation, which shows what
/// the first renewal will charge (with the coupon it redeemed).
pub fn welcome(
    sub: &Subscription,
    customer: &Customer,
    catalog: &Catalog,
    actor: &Actor,
    detail: serde_json::Value,
) -> Change {
    let mut change = change_with_notice(
        sub,
        sub,
        customer,
        "created",
        MessageKind::SubscriptionCreated,
        actor,
        detail,
    );
    quote_next_renewal(&mut change, customer, catalog);
    change
}

/// A fresh link to the subscription's pages, mailed to the customer's address on file: one
/// message and no event (nothing happened to the subscription). Its state is unchanged but
/// for `updated_at`, which (as in every change) is when the store writes it.
pub fn link_request(sub: &Subscription, customer: &Customer, now: DateTime<Utc>) -> Change {
    let message = NewMessage::now(
        MessageKind::LinkRequest,
        customer.email.clone(),
        sub.id,
        None,
        json!({
            "customer": customer_snapshot(customer),
            "subscription": state_summary(sub),
        }),
    );
    let mut after = sub.clone();
    after.updated_at = now;
    Change {
        messages: vec![message],
        ..Change::of(after)
    }
}

/// A short digest of the state a customer acts on (status, plan, quantity, interval, next
/// cycle and instant, pause): any operation that does something changes it. A form carries
/// the digest it was shown with, so posting it twice does the operation once.
pub fn fingerprint(sub: &Subscription) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(state_summary(sub).to_string().as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{at, customer_in, default_catalog, subscription_in};

    /// Every door enforces the catalog's limits through the same rule: the most units per
    /// shipment, and how far ahead a renewal may be moved or a pause may end.
    #[test]
    fn quantities_and_dates_stay_within_the_catalogs_limits() {
        let catalog = default_catalog();
        let customer = customer_in("UTC");
        let sub = subscription_in("UTC", "2026-01-10T09:00", "2026-01-10T09:00:00Z");
        let now = at("2026-01-20T12:00:00Z");
        let date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let cases: Vec<(Operation, Option<&str>)> = vec![
            (
                Operation::Change {
                    plan: None,
                    quantity: Some(20),
                    interval: None,
                    ship_to: None,
                },
                None,
            ),
            (
                Operation::Change {
                    plan: None,
                    quantity: Some(21),
                    interval: None,
                    ship_to: None,
                },
                Some("quantity 21 is out of range: choose 1 to 20"),
            ),
            (
                Operation::Change {
                    plan: None,
                    quantity: Some(1000),
                    interval: None,
                    ship_to: None,
                },
                Some("choose 1 to 20"),
            ),
            (
                Operation::Reschedule {
                    to: date("2027-12-31"),
                },
                None,
            ),
            (
                Operation::Reschedule {
                    to: date("9999-12-31"),
                },
                Some("more than 730 days ahead"),
            ),
            (
                Operation::Pause {
                    until: Some(at("2028-01-21T00:00:00Z")),
                },
                Some("more than 730 days ahead"),
            ),
            (
                Operation::Pause {
                    until: Some(at("2026-06-01T00:00:00Z")),
                },
                None,
            ),
        ];
        for (operation, refusal) in cases {
            let result = apply(&sub, &customer, &operation, &catalog, &Actor::cli(), now);
            match (result, refusal) {
                (Ok(_), None) => {}
                (Err(LifecycleError::InvalidInput(message)), Some(expected)) => {
                    assert!(message.contains(expected), "{operation:?}: {message}");
                }
                (other, expected) => panic!("{operation:?}: {other:?}, expected {expected:?}"),
            }
        }
    }

    /// A plan change that names no interval keeps the current one when the new plan allows
    /// it, and otherwise takes the nearest one it allows, instead of refusing.
    #[test]
    fn a_plan_change_carries_the_interval_over_to_the_nearest_allowed() {
        let catalog = default_catalog();
        let customer = customer_in("UTC");
        let sub = subscription_in("UTC", "2026-01-10T09:00", "2026-01-10T09:00:00Z");
        let now = at("2026-01-20T12:00:00Z");
        let change = |plan: &str| Operation::Change {
            plan: Some(PlanId::parse(plan).unwrap()),
            quantity: None,
            interval: None,
            ship_to: None,
        };
        for (plan, interval) in [
            ("1-pack", None),
            ("2-pack", Some("60 days")),
            ("6-pack", Some("180 days")),
        ] {
            match apply(&sub, &customer, &change(plan), &catalog, &Actor::cli(), now) {
                Ok(change) => assert_eq!(
                    Some(change.after.interval.to_string()),
                    interval.map(str::to_owned),
                    "{plan}"
                ),
                Err(e) => assert!(interval.is_none(), "{plan}: {e}"),
            }
        }
        let explicit = Operation::Change {
            plan: Some(PlanId::parse("6-pack").unwrap()),
            quantity: None,
            interval: Some("30 days".parse().unwrap()),
            ship_to: None,
        };
        let refused = apply(&sub, &customer, &explicit, &catalog, &Actor::cli(), now)
            .unwrap_err()
            .to_string();
        assert!(refused.contains("(it allows 180 days"), "{refused}");
    }
    /// A new address in the same market keeps a reminded total as its renewal's ceiling; one
    /// in another market (Berlin to Portland: EUR to USD) releases it and the last total, and
    /// the next renewal is priced in the new market's currency.
    #[test]
    fn a_move_to_another_market_releases_the_promise() {
        let catalog = default_catalog();
        let customer = customer_in("UTC");
        let address = |id: i64, country: &str, subdivision: Option<&str>, postal: &str| {
            Box::new(CustomerAddress {
                id,
                customer_id: customer.id,
                is_default: false,
                created_at: at("2026-01-01T00:00:00Z"),
                address: crate::core::address::Address::parse(&crate::core::address::RawAddress {
                    name: "Ada".into(),
                    line1: "1 Main St".into(),
                    city: "Town".into(),
                    subdivision: subdivision.map(str::to_owned),
                    postal_code: Some(postal.into()),
                    country: country.into(),
                    ..Default::default()
                })
                .unwrap(),
            })
        };
        let mut sub = subscription_in("UTC", "2026-01-10T09:00", "2026-01-10T09:00:00Z");
        sub.customer_id = customer.id;
        sub.ship_to = Some(*address(1, "DE", None, "10117"));
        sub.promise = Some(crate::core::model::Promise {
            cycle: sub.next_cycle,
            unit_price_minor: 4599,
            total_minor: Some(4834),
            currency: Some(crate::core::money::Currency::Eur),
        });
        sub.notices
            .keep_last_total(Some(crate::core::money::Money::from_minor(
                4834,
                crate::core::money::Currency::Eur,
            )));
        let now = at("2026-01-20T12:00:00Z");
        let move_to = |to| Operation::Change {
            plan: None,
            quantity: None,
            interval: None,
            ship_to: Some(to),
        };
        let paris = apply(
            &sub,
            &customer,
            &move_to(address(2, "FR", None, "75001")),
            &catalog,
            &Actor::cli(),
            now,
        )
        .unwrap();
        assert_eq!(paris.after.promise, sub.promise, "same market: kept");
        assert_eq!(paris.after.notices.last_total_minor, Some(4834));

        let portland = apply(
            &sub,
            &customer,
            &move_to(address(3, "US", Some("OR"), "97201")),
            &catalog,
            &Actor::cli(),
            now,
        )
        .unwrap();
        assert_eq!(portland.after.promise, None, "another market: released");
        assert_eq!(portland.after.notices.last_total_minor, None);
        assert_eq!(portland.after.notices.last_total_currency, None);
        let next =
            crate::core::renewal::next_renewal_snapshot(&portland.after, &customer, &catalog)
                .unwrap();
        assert_eq!(next["total"]["currency"], "USD");
    }

    /// A restart: only of a cancelled subscription, only within its window (to the second,
    /// measured from the cancellation), and then as new: active, due now, no old promise or
    /// notice state, the consent carried by the change, one event and one `resumed` email
    /// marked restarted.
    #[test]
    fn a_cancelled_subscription_restarts_within_its_window_as_new() {
        use crate::core::model::{ConsentInput, Promise};
        let catalog = default_catalog();
        let customer = customer_in("Europe/Berlin");
        let active = subscription_in("Europe/Berlin", "2026-01-10T09:00", "2026-01-10T08:00:00Z");
        let cancelled_at = at("2026-02-01T10:00:00Z");
        let mut cancelled = apply(
            &active,
            &customer,
            &Operation::Cancel {
                reason: "too much".into(),
            },
            &catalog,
            &Actor::cli(),
            cancelled_at,
        )
        .unwrap()
        .after;
        cancelled.promise = Some(Promise {
            cycle: 1,
            unit_price_minor: 1,
            total_minor: Some(1),
            currency: None,
        });
        cancelled.notices.last_total_minor = Some(500);
        cancelled.notices.price_checked_cycle = Some(1);
        let mut paused = active.clone();
        paused.status = Status::Paused;
        let consent = NewConsent {
            input: ConsentInput {
                channel: "web".into(),
                terms_version: "2026-01".into(),
            },
            actor: Actor::customer_link(),
        };
        let window = |cancelled_at: Option<&str>| RestartWindow {
            cancelled_at: cancelled_at.map(at),
            days: 90,
        };
        let cases: Vec<(&Subscription, RestartWindow, &str, Option<&str>)> = vec![
            (
                &cancelled,
                window(Some("2026-02-01T10:00:00Z")),
                "2026-02-01T10:00:00Z",
                None,
            ),
            (
                &cancelled,
                window(Some("2026-02-01T10:00:00Z")),
                "2026-05-02T10:00:00Z",
                None,
            ),
            (
                &cancelled,
                window(Some("2026-02-01T10:00:00Z")),
                "2026-05-02T10:00:01Z",
                Some(
                    "it was cancelled on 2026-02-01, and it could be restarted until 2026-05-02 (90 days); subscribe again from the storefront",
                ),
            ),
            (
                &cancelled,
                window(None),
                "2026-02-02T00:00:00Z",
                Some("nothing records when it was cancelled"),
            ),
            (
                &active,
                window(Some("2026-02-01T10:00:00Z")),
                "2026-02-02T00:00:00Z",
                Some("it is active, not cancelled"),
            ),
            (
                &paused,
                window(Some("2026-02-01T10:00:00Z")),
                "2026-02-02T00:00:00Z",
                Some("it is paused, not cancelled"),
            ),
        ];
        for (sub, window, now, refusal) in cases {
            let now = at(now);
            match (
                restart(sub, &customer, &catalog, window, consent.clone(), now),
                refusal,
            ) {
                (Ok(change), None) => {
                    let after = &change.after;
                    assert_eq!(after.status, Status::Active);
                    assert_eq!(after.next_renewal_at, Some(now));
                    assert_eq!(after.next_cycle, sub.next_cycle);
                    assert_eq!(after.anchor_cycle, sub.next_cycle);
                    assert_eq!(after.instant_of(after.next_cycle), Some(now));
                    assert_eq!(
                        after.instant_of(after.next_cycle + 1),
                        Some(now + chrono::TimeDelta::days(30))
                    );
                    assert_eq!(after.cancel_reason, None);
                    assert_eq!(after.promise, None);
                    assert_eq!(after.notices.last_total_minor, None);
                    assert_eq!(after.notices.price_checked_cycle, None);
                    assert_eq!(
                        after.notices.annual_notice_at,
                        Some(crate::core::schedule::next_annual(now))
                    );
                    assert_eq!(change.consent.as_ref(), Some(&consent));
                    assert_eq!(change.events.len(), 1);
                    assert_eq!(change.events[0].kind, "restart");
                    assert_eq!(change.events[0].actor, Actor::customer_link());
                    assert_eq!(change.messages.len(), 1);
                    assert_eq!(change.messages[0].kind, MessageKind::Resumed);
                    assert_eq!(change.messages[0].payload["detail"]["restarted"], true);
                    assert!(change.messages[0].payload["quote"]["total"].is_object());
                    assert!(change.orders.is_empty());
                }
                (Err(LifecycleError::InvalidState(message)), Some(expected)) => {
                    assert!(message.contains(expected), "{now}: {message}");
                }
                (other, expected) => panic!("{now}: {other:?}, expected {expected:?}"),
            }
        }
    }
}
