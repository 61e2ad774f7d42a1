//! What one due subscription's renewal produces: a pure planner from state to [`Change`].
//!
//! Owns the renewal rules of docs/rules.md: which cycles are due at `now`, the catch-up policy
//! (bill the latest overdue cycle and record the earlier ones as `missed`, or bill them all),
//! pricing each billed cycle with [`crate::core::pricing::quote`] (loyalty from the order count,
//! coupon cycles counted), the confirmation message per order, and the advanced schedule. A
//! subscription that cannot be priced is put on hold with an event, not retried in a loop. An
//! amount coupon in another currency than the market the subscription ships in (it moved
//! market after redeeming it) is skipped with a `coupon_skipped` event, not used up.
//! No IO: the engine claims rows and the store writes the change.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::core::catalog::{Catalog, TaxRegion};
use crate::core::model::{
    Actor, Change, Customer, MessageKind, NewEvent, NewMessage, NewOrder, Subscription,
};
use crate::core::pricing::{self, AppliedCoupon, CouponValue, QuoteRequest};
use crate::core::snapshot::{customer_snapshot, email_snapshot, state_summary};

/// Longest run of overdue cycles looked at in one renewal (a daily plan down for 27 years).
const MAX_OVERDUE_CYCLES: usize = 10_000;

/// What a sweep does when several cycles of one subscription are overdue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// Bill the latest due cycle; record the earlier ones as `missed`.
    Latest,
    /// Bill every missed cycle.
    All,
}

/// The cycles of `sub` due at `now`, oldest first.
pub fn due_cycles(sub: &Subscription, now: DateTime<Utc>) -> Vec<(u32, DateTime<Utc>)> {
    let mut due = Vec::new();
    let mut k = sub.next_cycle;
    // Cycle `next_cycle` is due at `next_renewal_at`, which renew-now and reschedule may have
    // moved off the anchor's grid; later cycles follow the anchor.
    let mut at = sub.next_renewal_at;
    while let Some(instant) = at {
        if instant > now || due.len() >= MAX_OVERDUE_CYCLES {
            break;
        }
        due.push((k, instant));
        k += 1;
        at = sub.instant_of(k);
    }
    due
}

/// Plans the renewal of one due subscription. `None` when nothing is due (the row changed
/// since it was selected).
pub fn plan(
    sub: &Subscription,
    customer: &Customer,
    catalog: &Catalog,
    catch_up: CatchUp,
    now: DateTime<Utc>,
) -> Option<Change> {
    let due = due_cycles(sub, now);
    let (last_cycle, _) = *due.last()?;
    let (missed, billed) = match catch_up {
        CatchUp::Latest => due.split_at(due.len() - 1),
        CatchUp::All => due.split_at(0),
    };
    let actor = Actor::engine();
    let mut after = sub.clone();
    after.updated_at = now;
    let mut change = Change::of(sub.clone());
    for &(cycle, scheduled) in missed {
        change.events.push(NewEvent {
            subscription_id: sub.id,
            kind: "missed".into(),
            actor: actor.clone(),
            cycle: Some(cycle),
            detail: json!({ "scheduled_for": scheduled, "reason": "overdue while the engine was not running; the latest due cycle was billed instead" }),
        });
    }
    after.next_cycle = last_cycle + 1;
    after.next_renewal_at = sub.instant_of(last_cycle + 1);
    // A promise covers one cycle; once that cycle is past, it is spent.
    for &(cycle, scheduled) in billed {
        match price_cycle(&after, customer, catalog, cycle, scheduled) {
            Ok(order) => {
                after.orders_count += 1;
                after.notices.keep_last_total(Some(order.total));
                if let Some(grant) = after.coupon.as_mut()
                    && order.coupon_code.is_some()
                {
                    grant.orders_used += 1;
                }
                if let Some(reason) = coupon_skipped(&after, catalog) {
                    change.events.push(NewEvent {
                        subscription_id: sub.id,
                        kind: "coupon_skipped".into(),
                        actor: actor.clone(),
                        cycle: Some(cycle),
                        detail: json!({ "order_number": order.order_number, "reason": reason }),
                    });
                }
                change.events.push(NewEvent {
                    subscription_id: sub.id,
                    kind: "renewed".into(),
                    actor: actor.clone(),
                    cycle: Some(cycle),
                    detail: json!({ "order_number": order.order_number, "total": order.total }),
                });
                change.orders.push(order);
            }
            Err(problem) => return Some(hold(sub, now, cycle, problem)),
        }
    }
    if after.promise.is_some_and(|p| p.cycle <= last_cycle) {
        after.promise = None;
    }
    for order in &change.orders {
        change.messages.push(confirmation(order, &after, customer));
    }
    change.after = after;
    Some(change)
}

/// Why `sub`'s coupon does not discount its renewals where it ships now, if it would otherwise:
/// an amount coupon applies only in its own currency, and the subscription's market has
/// another one. The coupon is not used up; back in its currency's market it applies again.
pub fn coupon_skipped(sub: &Subscription, catalog: &Catalog) -> Option<String> {
    let grant = sub.coupon.as_ref().filter(|g| g.applies_to(&sub.plan))?;
    let CouponValue::Amount(amount) = grant.value else {
        return None;
    };
    let market = catalog.market_for(sub.destination());
    (amount.currency() != market.currency).then(|| {
        format!(
            "coupon {} takes off {} {}, and this subscription is billed in {}; an amount coupon applies only in its own currency, so it is skipped (not used up)",
            grant.code,
            amount.to_decimal_string(),
            amount.currency(),
            market.currency
        )
    })
}

/// Prices cycle `cycle` of `sub` as it stands (plan, quantity, loyalty count, coupon use).
pub fn price_cycle(
    sub: &Subscription,
    customer: &Customer,
    catalog: &Catalog,
    cycle: u32,
    scheduled: DateTime<Utc>,
) -> Result<NewOrder, String> {
    let plan = catalog.plan(sub.plan.as_str()).ok_or_else(|| {
        format!(
            "plan \"{}\" is not in the catalog (plans: {}); change the subscription's plan",
            sub.plan,
            catalog.plan_ids()
        )
    })?;
    let region = tax_region_of(sub, customer, catalog)?;
    let destination = sub.destination();
    let coupon = sub
        .coupon
        .as_ref()
        .filter(|grant| grant.applies_to(&sub.plan) && coupon_skipped(sub, catalog).is_none())
        .map(|grant| AppliedCoupon {
            code: grant.code.clone(),
            value: grant.value,
        });
    let coupon_code = coupon.as_ref().map(|c| c.code.clone());
    let request = QuoteRequest {
        plan,
        quantity: sub.quantity,
        region,
        destination,
        orders_so_far: sub.orders_count,
        coupon,
        promised_price: sub
            .promise
            .filter(|p| p.cycle == cycle)
            .map(|p| p.unit_price(catalog.currency)),
        promised_total: sub
            .promise
            .filter(|p| p.cycle == cycle)
            .and_then(|p| p.total(catalog.currency)),
    };
    let quote = pricing::quote(catalog, &request).map_err(|e| format!("cannot price: {e}"))?;
    // A coupon that ended up discounting nothing (the cap took it all) still used a cycle.
    Ok(NewOrder {
        order_number: NewOrder::number_for(sub.id, cycle),
        subscription_id: sub.id,
        customer_id: customer.id,
        cycle,
        plan: plan.id.clone(),
        packs: plan.packs,
        quantity: sub.quantity,
        tax_region: region.map(|r| r.code.clone()),
        coupon_code,
        total: quote.total,
        unit_price: quote.unit_price,
        tax_included: quote.included_tax.as_ref().map(|t| t.amount),
        tax_included_rate: quote.included_tax.as_ref().map(|t| t.rate),
        tax_rate: region.map(|r| r.rate),
        lines: quote.lines,
        scheduled_for: scheduled,
        billing_date: scheduled.date_naive(),
        collection: crate::core::model::ProviderKind::None,
        ship_to: sub.ship_to.as_ref().map(|a| a.address.clone()),
    })
}

/// Where a renewal is taxed: where it ships; a subscription written before addresses
/// existed, by the customer's region. Refused when the shop no longer ships to its address
/// or the customer's region left the catalog.
fn tax_region_of<'a>(
    sub: &Subscription,
    customer: &Customer,
    catalog: &'a Catalog,
) -> Result<Option<&'a TaxRegion>, String> {
    Ok(match (&sub.ship_to, &customer.tax_region) {
        (Some(ship_to), _) => {
            if let Some(why) = catalog.refuse_destination(ship_to.address.country) {
                return Err(format!(
                    "its address {}:{why}; change the subscription's address",
                    ship_to.id
                ));
            }
            catalog.tax_region_for(&ship_to.address)
        }
        (None, Some(code)) => Some(catalog.tax_region(code).ok_or_else(|| {
            format!("the customer's tax region \"{code}\" is not in the catalog")
        })?),
        (None, None) => None,
    })
}

/// Puts a subscription that cannot be priced on hold: no order, an event saying why, and an
/// error count. The engine skips held subscriptions until an operator changes them.
fn hold(sub: &Subscription, now: DateTime<Utc>, cycle: u32, problem: String) -> Change {
    let mut after = sub.clone();
    after.hold_reason = Some(problem.clone());
    after.error_count += 1;
    after.updated_at = now;
    Change {
        after,
        orders: vec![],
        events: vec![NewEvent {
            subscription_id: sub.id,
            kind: "held".into(),
            actor: Actor::engine(),
            cycle: Some(cycle),
            detail: json!({ "error": problem }),
        }],
        messages: vec![],
        consent: None,
    }
}

fn confirmation(order: &NewOrder, after: &Subscription, customer: &Customer) -> NewMessage {
    NewMessage {
        order_number: Some(order.order_number.clone()),
        ..NewMessage::now(
            MessageKind::OrderConfirmation,
            customer.email.clone(),
            after.id,
            Some(order.cycle),
            json!({
                "customer": customer_snapshot(customer),
                "subscription": state_summary(after),
                "order": email_snapshot(order),
            }),
        )
    }
}

/// The next `n` renewals of `sub` as the engine would bill them if nothing changes: each one
/// planned at its instant from the state the one before leaves (loyalty count, coupon use,
/// a reminder's promise spent). Fewer when it is not active or a renewal cannot be priced.
pub fn upcoming(
    sub: &Subscription,
    customer: &Customer,
    catalog: &Catalog,
    n: usize,
) -> Vec<NewOrder> {
    let mut orders = Vec::with_capacity(n);
    let mut state = sub.clone();
    while orders.len() < n && state.status == crate::core::model::Status::Active {
        let Some(at) = state.next_renewal_at else {
            break;
        };
        match plan(&state, customer, catalog, CatchUp::All, at) {
            Some(change) if change.after.hold_reason.is_none() => {
                orders.extend(change.orders);
                state = change.after;
            }
            _ => break,
        }
    }
    orders.truncate(n);
    orders
}

/// What the next renewal of `sub` would charge, as emails and pages show it ([`email_snapshot`]);
/// `None` when it is not active or cannot be priced (the engine will hold it).
pub fn next_renewal_snapshot(
    sub: &Subscription,
    customer: &Customer,
    catalog: &Catalog,
) -> Option<serde_json::Value> {
    let (crate::core::model::Status::Active, Some(at)) = (sub.status, sub.next_renewal_at) else {
        return None;
    };
    price_cycle(sub, customer, catalog, sub.next_cycle, at)
        .ok()
        .map(|order| email_snapshot(&order))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::catalog::PlanId;
    use crate::core::model::{CouponDuration, CouponGrant};
    use crate::core::money::{BasisPoints, Currency, Money};
    use crate::core::pricing::AdjustmentKind;
    use crate::test_support::{address_in, at, default_catalog, subscription_in};

    fn customer() -> Customer {
        Customer {
            id: 7,
            email: "ada@example.com".parse().unwrap(),
            name: "Ada".into(),
            time_zone: "America/New_York".parse().unwrap(),
            locale: "en-US".into(),
            tax_region: Some("US-CA".into()),
            external_id: None,
            metadata: Default::default(),
            created_at: at("2026-01-01T00:00:00Z"),
            updated_at: at("2026-01-01T00:00:00Z"),
        }
    }

    fn subscription() -> Subscription {
        let mut sub = subscription_in(
            "America/New_York",
            "2026-01-10T09:00",
            "2026-01-10T14:00:00Z",
        );
        sub.id = 1;
        sub.customer_id = 7;
        sub
    }

    /// An address of customer 7 in `country` (Oregon in the US).
    fn shipped_to_address(c: &str) -> Option<crate::core::model::CustomerAddress> {
        Some(crate::core::model::CustomerAddress {
            customer_id: 7,
            ..address_in(c)
        })
    }

    /// A 1-pack (49.99 less 10 %: 44.99, under every free-shipping threshold; in the EU market
    /// 45.99 EUR less 10 %: 41.39) shipped to `country`'s address, or to none.
    fn shipped_to(country: Option<&str>) -> NewOrder {
        let mut sub = subscription();
        sub.ship_to = country.and_then(shipped_to_address);
        price_cycle(
            &sub,
            &customer(),
            &default_catalog(),
            1,
            at("2026-02-09T14:00:00Z"),
        )
        .unwrap()
    }

    /// An order's payment starts as the storefront's, paid (nothing to collect), or due for
    /// the payment worker at once.
    #[test]
    fn a_new_orders_payment_starts_by_who_collects_and_what_is_due() {
        use crate::core::model::{FirstPayment, PaymentStatus, ProviderKind};
        let now = at("2026-02-09T14:00:00Z");
        let order = |collection, total_minor| {
            let mut order = shipped_to(None);
            order.collection = collection;
            order.total = Money::from_minor(total_minor, order.total.currency());
            order.first_payment(now)
        };
        let first = |status, next_attempt_at, paid_at| FirstPayment {
            status,
            next_attempt_at,
            paid_at,
        };
        for (collection, total, expected) in [
            (
                ProviderKind::None,
                5094,
                first(PaymentStatus::External, None, None),
            ),
            (
                ProviderKind::None,
                0,
                first(PaymentStatus::External, None, None),
            ),
            (
                ProviderKind::Stripe,
                5094,
                first(PaymentStatus::Pending, Some(now), None),
            ),
            (
                ProviderKind::Stripe,
                0,
                first(PaymentStatus::Paid, None, Some(now)),
            ),
            (
                ProviderKind::Simulated,
                1,
                first(PaymentStatus::Pending, Some(now), None),
            ),
            (
                ProviderKind::Simulated,
                0,
                first(PaymentStatus::Paid, None, Some(now)),
            ),
        ] {
            assert_eq!(order(collection, total), expected, "{collection} {total}");
        }
    }

    #[test]
    fn a_renewal_ships_and_is_taxed_by_its_address() {
        let line = |order: &NewOrder, kind: AdjustmentKind| {
            order
                .lines
                .iter()
                .find(|l| l.kind == kind)
                .map(|l| l.amount.minor())
        };
        // No address: the catalog's shipping, the customer's region (US-CA, 7.25 % on goods).
        let none = shipped_to(None);
        assert_eq!(none.tax_region.as_deref(), Some("US-CA"));
        assert_eq!(line(&none, AdjustmentKind::Shipping), Some(595));
        assert_eq!(line(&none, AdjustmentKind::Tax), Some(326));
        // France: the EU market's EUR price (45.99 less 10 %: 41.39) and fee, 20 % VAT
        // contained, whatever the customer's region says.
        let france = shipped_to(Some("FR"));
        assert_eq!(france.tax_region.as_deref(), Some("FR"));
        assert_eq!(line(&france, AdjustmentKind::Shipping), Some(695));
        assert_eq!(line(&france, AdjustmentKind::Tax), None);
        assert_eq!(france.total, Money::from_minor(4139 + 695, Currency::Eur));
        assert_eq!(france.unit_price, Money::from_minor(4599, Currency::Eur));
        assert_eq!(france.tax_included.map(|t| t.minor()), Some(806));
        assert_eq!(
            france.ship_to.as_ref().map(|a| a.country.code()),
            Some("FR")
        );
        // Oregon: no zone, so the catalog's shipping; its 0 % region.
        let oregon = shipped_to(Some("US"));
        assert_eq!(oregon.tax_region.as_deref(), Some("US-OR"));
        assert_eq!(line(&oregon, AdjustmentKind::Shipping), Some(595));
        assert_eq!(oregon.total.minor(), 4499 + 595);
        assert_eq!(oregon.total.currency(), Currency::Usd);
        assert_eq!(none.total.currency(), Currency::Usd);
    }

    /// An amount coupon in USD on a subscription that moved to the EUR market is skipped,
    /// with its reason recorded, and not used up; a percentage coupon applies in any market.
    #[test]
    fn an_amount_coupon_in_another_currency_is_skipped_and_kept() {
        let catalog = default_catalog();
        let mut sub = subscription();
        sub.ship_to = shipped_to_address("DE");
        let grant = |value| CouponGrant {
            coupon_id: 1,
            code: "SAVE5".into(),
            value,
            duration: CouponDuration::Repeating(2),
            plan: None,
            orders_used: 0,
        };
        sub.coupon = Some(grant(CouponValue::Amount(Money::from_minor(
            500,
            Currency::Usd,
        ))));
        let now = sub.next_renewal_at.unwrap();
        let change = plan(&sub, &customer(), &catalog, CatchUp::Latest, now).unwrap();
        let order = &change.orders[0];
        assert_eq!(order.total.currency(), Currency::Eur);
        assert!(!order.lines.iter().any(|l| l.kind == AdjustmentKind::Coupon));
        assert_eq!(order.coupon_code, None);
        assert_eq!(change.after.coupon.as_ref().unwrap().orders_used, 0);
        let skipped = change
            .events
            .iter()
            .find(|e| e.kind == "coupon_skipped")
            .expect("the skip is recorded");
        assert!(
            skipped.detail["reason"]
                .as_str()
                .unwrap()
                .contains("only in its own currency"),
            "{}",
            skipped.detail
        );
        assert_eq!(change.after.hold_reason, None, "not held");

        sub.coupon = Some(grant(CouponValue::Amount(Money::from_minor(
            500,
            Currency::Eur,
        ))));
        let change = plan(&sub, &customer(), &catalog, CatchUp::Latest, now).unwrap();
        assert_eq!(
            change.orders[0]
                .lines
                .iter()
                .find(|l| l.kind == AdjustmentKind::Coupon)
                .map(|l| l.amount),
            Some(Money::from_minor(-500, Currency::Eur))
        );
        assert!(!change.events.iter().any(|e| e.kind == "coupon_skipped"));
        assert_eq!(change.after.coupon.unwrap().orders_used, 1);
    }

    #[test]
    fn nothing_is_due_before_the_renewal() {
        let catalog = default_catalog();
        assert_eq!(
            plan(
                &subscription(),
                &customer(),
                &catalog,
                CatchUp::Latest,
                at("2026-02-09T13:59:59Z")
            ),
            None
        );
    }

    #[test]
    fn bills_the_due_cycle_and_advances() {
        let catalog = default_catalog();
        // Cycle 1: 2026-02-09 09:00 New York = 14:00 UTC.
        let change = plan(
            &subscription(),
            &customer(),
            &catalog,
            CatchUp::Latest,
            at("2026-02-09T14:00:00Z"),
        )
        .unwrap();
        assert_eq!(change.orders.len(), 1);
        let order = &change.orders[0];
        assert_eq!(
            (order.cycle, order.order_number.as_str()),
            (1, "BB-0000001-001")
        );
        let sum: i64 = order.lines.iter().map(|l| l.amount.minor()).sum();
        assert_eq!(sum, order.total.minor());
        assert_eq!(change.after.next_cycle, 2);
        assert_eq!(
            change.after.next_renewal_at,
            Some(at("2026-03-11T13:00:00Z"))
        );
        assert_eq!(change.after.orders_count, 2);
        assert_eq!(change.messages.len(), 1);
        assert_eq!(
            change.messages[0].order_number.as_deref(),
            Some("BB-0000001-001")
        );
    }

    #[test]
    fn catch_up_bills_the_latest_and_records_missed_cycles() {
        let catalog = default_catalog();
        // 100 days after cycle 1 (Feb 9): cycles 1..=4 are due (Feb 9, Mar 11, Apr 10, May 10).
        let now = at("2026-05-20T00:00:00Z");
        let latest = plan(&subscription(), &customer(), &catalog, CatchUp::Latest, now).unwrap();
        assert_eq!(
            latest.orders.iter().map(|o| o.cycle).collect::<Vec<_>>(),
            [4]
        );
        let missed: Vec<Option<u32>> = latest
            .events
            .iter()
            .filter(|e| e.kind == "missed")
            .map(|e| e.cycle)
            .collect();
        assert_eq!(missed, [Some(1), Some(2), Some(3)]);
        assert_eq!(latest.after.next_cycle, 5);
        assert!(latest.after.next_renewal_at.unwrap() > now);

        let all = plan(&subscription(), &customer(), &catalog, CatchUp::All, now).unwrap();
        assert_eq!(
            all.orders.iter().map(|o| o.cycle).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert_eq!(all.after.orders_count, 5);
        assert_eq!(all.messages.len(), 4);
    }

    #[test]
    fn coupon_cycles_are_counted_and_end() {
        let catalog = default_catalog();
        let mut sub = subscription();
        sub.coupon = Some(CouponGrant {
            coupon_id: 1,
            code: "WELCOME".into(),
            value: CouponValue::Percent(BasisPoints::new(1000).unwrap()),
            duration: CouponDuration::Repeating(2),
            plan: None,
            orders_used: 0,
        });
        let mut coupons = Vec::new();
        for _ in 0..4 {
            let now = sub.next_renewal_at.unwrap();
            let change = plan(&sub, &customer(), &catalog, CatchUp::Latest, now).unwrap();
            coupons.push(
                change.orders[0]
                    .lines
                    .iter()
                    .any(|l| l.kind == AdjustmentKind::Coupon),
            );
            sub = change.after;
        }
        assert_eq!(coupons, [true, true, false, false]);
        assert_eq!(sub.coupon.unwrap().orders_used, 2);
    }

    #[test]
    fn an_unpriceable_subscription_is_held_not_billed() {
        let catalog = default_catalog();
        let mut sub = subscription();
        sub.plan = PlanId::parse("12-pack").unwrap();
        let change = plan(
            &sub,
            &customer(),
            &catalog,
            CatchUp::Latest,
            at("2026-03-01T00:00:00Z"),
        )
        .unwrap();
        assert!(change.orders.is_empty() && change.messages.is_empty());
        assert!(
            change
                .after
                .hold_reason
                .as_deref()
                .unwrap()
                .contains("12-pack")
        );
        assert_eq!(change.after.error_count, 1);
        assert_eq!(
            change.after.next_cycle, sub.next_cycle,
            "the schedule does not advance"
        );
        assert_eq!(change.events[0].kind, "held");
    }

    /// The next renewals are what the engine bills, one after another: the first is the next
    /// renewal's quote, the dates follow the anchor, and a one-order coupon discounts only the
    /// first.
    #[test]
    fn upcoming_renewals_are_what_the_engine_would_bill() {
        let catalog = default_catalog();
        let mut sub = subscription_in(
            "America/New_York",
            "2026-01-10T09:00",
            "2026-01-10T14:00:00Z",
        );
        sub.coupon = Some(CouponGrant {
            coupon_id: 1,
            code: "ONCE".into(),
            value: CouponValue::Percent(BasisPoints::new(1000).unwrap()),
            duration: CouponDuration::Repeating(1),
            plan: None,
            orders_used: 0,
        });
        let next = upcoming(&sub, &customer(), &catalog, 3);
        assert_eq!(
            next.iter()
                .map(|o| (o.cycle, o.scheduled_for))
                .collect::<Vec<_>>(),
            (1..=3)
                .map(|k| (k, sub.instant_of(k).unwrap()))
                .collect::<Vec<_>>()
        );
        let snapshot = next_renewal_snapshot(&sub, &customer(), &catalog).unwrap();
        assert_eq!(snapshot["total"]["amount_minor"], next[0].total.minor());
        let coupon_lines: Vec<bool> = next
            .iter()
            .map(|o| o.lines.iter().any(|l| l.kind == AdjustmentKind::Coupon))
            .collect();
        assert_eq!(coupon_lines, [true, false, false]);
        assert!(next[0].total.minor() < next[1].total.minor());
        sub.status = crate::core::model::Status::Paused;
        assert!(upcoming(&sub, &customer(), &catalog, 3).is_empty());
    }
}
