//! The notices automatic-renewal law asks for (modelled on California's, the strictest in
//! force): once a year, what the customer subscribes to, how often, for how much and how to
//! cancel; and before the first renewal at a higher total, a notice at least
//! [`PRICE_NOTICE_MIN_DAYS`] days ahead. Pure: the engine claims the subscriptions due and
//! hands them here; the messages go through the outbox like every email.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use crate::core::catalog::Catalog;
use crate::core::model::Subscription;
use crate::core::model::{
    Actor, Change, Customer, MessageKind, NewEvent, NewMessage, Promise, Status,
};
use crate::core::money::Money;
use crate::core::renewal::{next_renewal_snapshot, price_cycle};
use crate::core::schedule::{DeliveryWindow, next_annual};
use crate::core::snapshot::{customer_snapshot, email_snapshot, state_summary};

/// A price-change notice arrives at least this many days before the renewal it announces.
pub const PRICE_NOTICE_MIN_DAYS: u32 = 7;
/// ... and at most this many.
pub const PRICE_NOTICE_MAX_DAYS: u32 = 30;

/// The annual notice of a subscription whose notice is due at `now`: the message (in the
/// customer's delivery window), and the next one a year after this one was due (skipping years
/// missed while nothing ran, so one notice is sent, not several).
pub fn annual(
    sub: &Subscription,
    customer: &Customer,
    catalog: &Catalog,
    window: &DeliveryWindow,
    now: DateTime<Utc>,
) -> Option<Change> {
    let due = sub.notices.annual_notice_at?;
    let mut after = sub.clone();
    let mut next = next_annual(due);
    while next <= now {
        next = next_annual(next);
    }
    after.notices.annual_notice_at = (sub.status != Status::Cancelled).then_some(next);
    after.updated_at = now;
    let quote = next_renewal_snapshot(sub, customer, catalog);
    let product = catalog.product_name(&sub.plan);
    let mut messages = vec![];
    if sub.status != Status::Cancelled {
        let mut message = NewMessage::now(
            MessageKind::AnnualNotice,
            customer.email.clone(),
            sub.id,
            Some(sub.next_cycle),
            json!({
                "customer": customer_snapshot(customer),
                "subscription": state_summary(sub),
                "since": sub.created_at,
                "product": product,
                "quote": quote,
            }),
        );
        message.deliver_at = Some(window.next_open(now, sub.time_zone));
        messages.push(message);
    }
    Some(Change {
        messages,
        ..Change::of(after)
    })
}

/// Checks the price of `sub`'s next renewal against its last order's total, once per cycle,
/// `lead_days` before it. A higher total gets a notice, delivered in the customer's window at
/// least [`PRICE_NOTICE_MIN_DAYS`] days before the renewal. When that is no longer possible
/// (the check ran late: an outage, a subscription resumed days before its renewal), this
/// renewal keeps the last total (a price promise, like a reminder's) and the rise waits for
/// the next renewal, which gets its notice in time. A last total in another currency than the
/// renewal's market is no measure of a rise: no notice, nothing held.
pub fn price_check(
    sub: &Subscription,
    customer: &Customer,
    catalog: &Catalog,
    window: &DeliveryWindow,
    now: DateTime<Utc>,
) -> Option<Change> {
    let renewal_at = sub.next_renewal_at?;
    let cycle = sub.next_cycle;
    let mut after = sub.clone();
    after.notices.price_checked_cycle = Some(cycle);
    after.updated_at = now;
    let mut change = Change::of(after);
    let (Some(last_total), Ok(order)) = (
        sub.notices.last_total(catalog.currency),
        price_cycle(sub, customer, catalog, cycle, renewal_at),
    ) else {
        return Some(change);
    };
    if !rises(order.total, last_total) {
        return Some(change);
    }
    let deliver_at = window.next_open(now, sub.time_zone);
    let noticeable = |at: DateTime<Utc>| {
        deliver_at <= at - TimeDelta::days(i64::from(PRICE_NOTICE_MIN_DAYS))
            && at - deliver_at <= TimeDelta::days(i64::from(PRICE_NOTICE_MAX_DAYS))
    };
    let why = rise_reason(sub);
    if noticeable(renewal_at) {
        change.messages.push(notice(
            sub, customer, cycle, renewal_at, last_total, &order, &why, deliver_at,
        ));
        return Some(change);
    }
    change.after.promise = Some(Promise::of(cycle, order.unit_price, last_total));
    // Too late for this renewal, which keeps the last total. The one after it gets its notice
    // now, while that can still arrive in time (a weekly plan's next renewal is never 7 days
    // ahead when it is checked): the rise is billed from then, and not held again.
    let next = sub
        .instant_of(cycle + 1)
        .filter(|at| noticeable(*at))
        .and_then(|at| {
            price_cycle(sub, customer, catalog, cycle + 1, at)
                .ok()
                .filter(|next| rises(next.total, last_total))
                .map(|next| (at, next))
        });
    change.events.push(NewEvent {
        subscription_id: sub.id,
        kind: "price_held".into(),
        actor: Actor::engine(),
        cycle: Some(cycle),
        detail: json!({
            "last_total_minor": last_total.minor(),
            "new_total_minor": order.total.minor(),
            "noticed_for_cycle": next.as_ref().map(|_| cycle + 1),
            "reason": match next {
                Some(_) => format!("a notice could no longer arrive {PRICE_NOTICE_MIN_DAYS} days before this renewal; it is billed at the last total, and the notice announces the rise for the renewal after it"),
                None => format!("a notice could no longer arrive {PRICE_NOTICE_MIN_DAYS} days before this renewal; it is billed at the last total and the rise waits for the next renewal"),
            },
        }),
    });
    if let Some((next_at, next_order)) = next {
        change.messages.push(notice(
            sub,
            customer,
            cycle + 1,
            next_at,
            last_total,
            &next_order,
            &why,
            deliver_at,
        ));
        change.after.notices.price_checked_cycle = Some(cycle + 1);
    }
    Some(change)
}

/// Whether `total` is a rise over `last_total`. Only within a currency: a last total in another
/// currency (the subscription's country moved to another market since) says nothing about this
/// price, and no notice compares them.
fn rises(total: Money, last_total: Money) -> bool {
    total.currency() == last_total.currency() && total.minor() > last_total.minor()
}

/// Why a subscription's price rises, for its notice: its coupon ended (`coupon_ended`, with
/// the code), or the shop's prices changed (`prices_changed`: list price, shipping or tax).
/// A loyalty step only ever lowers a price.
fn rise_reason(sub: &Subscription) -> serde_json::Value {
    match &sub.coupon {
        Some(grant) if !grant.applies_to(&sub.plan) => {
            json!({ "kind": "coupon_ended", "coupon_code": grant.code })
        }
        _ => json!({ "kind": "prices_changed" }),
    }
}

/// The price-change notice for renewal `cycle` at `renewal_at`: the old and the new total, why,
/// and the new itemized price.
#[allow(clippy::too_many_arguments)]
fn notice(
    sub: &Subscription,
    customer: &Customer,
    cycle: u32,
    renewal_at: DateTime<Utc>,
    last_total: Money,
    order: &crate::core::model::NewOrder,
    why: &serde_json::Value,
    deliver_at: DateTime<Utc>,
) -> NewMessage {
    let mut message = NewMessage::now(
        MessageKind::PriceChange,
        customer.email.clone(),
        sub.id,
        Some(cycle),
        json!({
            "customer": customer_snapshot(customer),
            "subscription": state_summary(sub),
            "renewal_at": renewal_at,
            "last_total": { "amount_minor": last_total.minor(), "currency": last_total.currency() },
            "quote": email_snapshot(order),
            "why": why,
        }),
    );
    message.deliver_at = Some(deliver_at);
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::Promise;
    use crate::core::model::Status;
    use crate::core::money::Currency;
    use crate::core::pricing::AdjustmentKind;
    use crate::test_support::{
        address_in, at, customer_in, day_window, default_catalog, subscription_in,
    };

    /// A 1-pack every 30 days in UTC, renewing 2026-07-01 09:00, its annual notice due
    /// 2027-06-01, its last order at `last_total`.
    fn fixtures(last_total: Option<i64>) -> (Subscription, Customer) {
        let mut sub = subscription_in("UTC", "2026-06-01T09:00", "2026-06-01T00:00:00Z");
        sub.notices.last_total_minor = last_total;
        sub.notices.annual_notice_at = Some(at("2027-06-01T00:00:00Z"));
        (sub, customer_in("UTC"))
    }

    #[test]
    fn the_annual_notice_comes_once_a_year_and_never_after_cancelling() {
        let (sub, customer) = fixtures(None);
        let catalog = default_catalog();
        // Two years and a day late (nothing ran): one notice, the next a year ahead.
        let now = at("2028-06-02T12:00:00Z");
        let change = annual(&sub, &customer, &catalog, &day_window(), now).unwrap();
        assert_eq!(change.messages.len(), 1);
        assert_eq!(change.messages[0].kind, MessageKind::AnnualNotice);
        assert_eq!(
            change.after.notices.annual_notice_at,
            Some(at("2029-06-01T00:00:00Z"))
        );
        let mut cancelled = sub.clone();
        cancelled.status = Status::Cancelled;
        let change = annual(&cancelled, &customer, &catalog, &day_window(), now).unwrap();
        assert!(change.messages.is_empty());
        assert_eq!(change.after.notices.annual_notice_at, None);
        // Delivered in the window: a notice due at night waits for 09:00.
        let change = annual(
            &sub,
            &customer,
            &catalog,
            &day_window(),
            at("2027-06-01T02:00:00Z"),
        )
        .unwrap();
        assert_eq!(
            change.messages[0].deliver_at,
            Some(at("2027-06-01T09:00:00Z"))
        );
    }

    #[test]
    fn a_rise_gets_a_notice_in_time_or_waits_a_renewal() {
        let catalog = default_catalog();
        let (sub, customer) = fixtures(Some(100));
        let renewal = sub.next_renewal_at.unwrap(); // 2026-07-01T09:00Z
        // 14 days ahead, at a total of 1 cent: the 1-pack costs more.
        let now = renewal - TimeDelta::days(14);
        let change = price_check(&sub, &customer, &catalog, &day_window(), now).unwrap();
        assert_eq!(change.after.notices.price_checked_cycle, Some(1));
        assert_eq!(change.messages.len(), 1);
        let notice = &change.messages[0];
        assert_eq!(notice.kind, MessageKind::PriceChange);
        assert!(notice.deliver_at.unwrap() <= renewal - TimeDelta::days(7));
        assert_eq!(notice.payload["last_total"]["amount_minor"], 100);
        assert_eq!(change.after.promise, None);

        // No rise (last total above today's price), no first order, or a renewal that cannot
        // be priced: checked, nothing sent.
        for last in [Some(1_000_000), None] {
            let (sub, customer) = fixtures(last);
            let change = price_check(&sub, &customer, &catalog, &day_window(), now).unwrap();
            assert!(change.messages.is_empty(), "{last:?}");
            assert_eq!(change.after.notices.price_checked_cycle, Some(1));
        }

        // Six days ahead: too late for a 7-day notice; this renewal keeps the last total.
        let late = renewal - TimeDelta::days(6);
        let change = price_check(&sub, &customer, &catalog, &day_window(), late).unwrap();
        assert!(change.messages.is_empty());
        assert_eq!(change.after.promise.unwrap().total_minor, Some(100));
        assert_eq!(change.after.promise.unwrap().cycle, 1);
        assert_eq!(change.events[0].kind, "price_held");
        let order = price_cycle(&change.after, &customer, &catalog, 1, renewal).unwrap();
        assert_eq!(order.total.minor(), 100, "billed at the last total");
    }

    /// After a price rise, every interval the catalog allows gets its notice at least 7 days
    /// before the first renewal billed at the new total. The check runs as the engine runs it:
    /// right after the previous order (a weekly or fortnightly plan) or 30 days ahead (longer
    /// ones). A 1-week plan's next renewal can no longer be noticed in time: it keeps the last
    /// total, and the renewal after it is noticed at once, so the rise is billed from then,
    /// not held forever.
    #[test]
    fn a_rise_is_noticed_in_time_for_every_interval() {
        let catalog = default_catalog();
        let customer = customer_in("UTC");
        let window = day_window();
        for (every, check_before, held, noticed_cycle) in [
            ("1 week", 7, true, 2),
            ("2 weeks", 14, false, 1),
            ("30 days", 30, false, 1),
            ("6 months", 30, false, 1),
        ] {
            let mut sub = subscription_in("UTC", "2026-06-01T09:00", "2026-06-01T00:00:00Z");
            sub.interval = every.parse().unwrap();
            sub.next_renewal_at = sub.instant_of(1);
            // The last order cost less than today's price: the catalog's prices rose.
            sub.notices.last_total_minor = Some(1000);
            let renewal = sub.next_renewal_at.unwrap();
            // A sweep a minute after the previous order (or 30 days ahead).
            let now = renewal - TimeDelta::days(check_before) + TimeDelta::minutes(1);
            let change = price_check(&sub, &customer, &catalog, &window, now).unwrap();
            let holds = change.events.iter().any(|e| e.kind == "price_held");
            assert_eq!(holds, held, "{every}");
            assert_eq!(change.messages.len(), 1, "{every}: one notice");
            let notice = &change.messages[0];
            assert_eq!(notice.kind, MessageKind::PriceChange);
            assert_eq!(notice.cycle, Some(noticed_cycle), "{every}");
            let noticed_at = sub.instant_of(noticed_cycle).unwrap();
            let arrives = notice.deliver_at.unwrap();
            assert!(
                arrives <= noticed_at - TimeDelta::days(7),
                "{every}: arrives {arrives}, renewal {noticed_at}"
            );
            assert_eq!(notice.payload["why"]["kind"], "prices_changed");
            if held {
                assert_eq!(change.after.promise.unwrap().total_minor, Some(1000));
                assert_eq!(change.after.notices.price_checked_cycle, Some(2));
            } else {
                assert_eq!(change.after.promise, None, "{every}");
            }
            // A noticed rise is checked no more: the next check of the noticed cycle is
            // never claimed, and its renewal bills the new total.
            let rendered =
                crate::core::reminders::stale_reason(notice.cycle, Some(noticed_at), &change.after);
            assert_eq!(rendered, None, "{every}: the notice is not suppressed");
        }
    }

    /// A promise and a last total are amounts in a currency: only a renewal in that currency
    /// is capped by the promise or measured against the last total. One kept in USD says
    /// nothing about a renewal in EUR (the country moved to the EU market since): no cap, no
    /// notice, nothing held. One kept before markets existed (no currency) is in the
    /// catalog's currency (USD), as it was then.
    #[test]
    fn a_promise_or_last_total_in_another_currency_is_no_ceiling_and_no_rise() {
        let catalog = default_catalog();
        assert_eq!(catalog.currency, Currency::Usd);
        let usd = Some(Currency::Usd);
        let eur = Some(Currency::Eur);
        // (kept currency, ships to, renewal's currency, capped and noticed?)
        for (kept, country, currency, same) in [
            (usd, Some("DE"), Currency::Eur, false),
            (eur, Some("DE"), Currency::Eur, true),
            (None, Some("DE"), Currency::Eur, false),
            (eur, None, Currency::Usd, false),
            (usd, None, Currency::Usd, true),
            (None, None, Currency::Usd, true),
        ] {
            let case = format!("{kept:?} to {country:?}");
            let (mut sub, customer) = fixtures(Some(100));
            sub.notices.last_total_currency = kept;
            sub.ship_to = country.map(address_in);
            let renewal = sub.next_renewal_at.unwrap();

            // The promise: a ceiling of 1.00 in its own currency only.
            let mut promised = sub.clone();
            promised.promise = Some(Promise {
                cycle: 1,
                unit_price_minor: 100,
                total_minor: Some(100),
                currency: kept,
            });
            let order = price_cycle(&promised, &customer, &catalog, 1, renewal).unwrap();
            assert_eq!(order.total.currency(), currency, "{case}");
            assert_eq!(order.total.minor() == 100, same, "{case}: capped");
            let promise_line = order
                .lines
                .iter()
                .any(|l| l.kind == AdjustmentKind::PricePromise);
            assert_eq!(promise_line, same, "{case}: price_promise line");

            // The last total: a rise over 1.00 is noticed in time, or held when late.
            let early = renewal - TimeDelta::days(14);
            let change = price_check(&sub, &customer, &catalog, &day_window(), early).unwrap();
            assert_eq!(change.messages.len(), usize::from(same), "{case}: notice");
            if same {
                let last = &change.messages[0].payload["last_total"];
                assert_eq!(last["currency"], currency.code(), "{case}");
            }
            let late = renewal - TimeDelta::days(6);
            let change = price_check(&sub, &customer, &catalog, &day_window(), late).unwrap();
            let held = change.events.iter().any(|e| e.kind == "price_held");
            assert_eq!(held, same, "{case}: held");
            assert_eq!(change.after.promise.is_some(), same, "{case}: promise");
            assert_eq!(change.after.notices.price_checked_cycle, Some(1), "{case}");
            if let Some(p) = change.after.promise {
                assert_eq!(
                    p.total(catalog.currency),
                    Some(Money::from_minor(100, currency))
                );
            }
        }
    }
}
