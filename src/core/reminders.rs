//! Renewal reminders: which reminder a subscription gets, when it is delivered, and the price
//! it promises. Pure: the engine claims subscriptions whose next renewal is within a lead time
//! (plus a day) and has no reminder yet for that (cycle, lead time); this module turns each
//! into the reminder message, queued for the customer's delivery window, and records the
//! quoted plan price as the subscription's promise for that cycle.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::core::catalog::Catalog;
use crate::core::model::{Change, Customer, MessageKind, NewMessage, Promise, Subscription};
use crate::core::renewal::price_cycle;
use crate::core::schedule::{DeliveryWindow, reminder_instant};
use crate::core::snapshot::{customer_snapshot, email_snapshot, state_summary};

/// Plans the reminder `lead_days` before `sub`'s next renewal. The message is always written
/// (so the subscription is not claimed again for this cycle and lead time); it is written as
/// `suppressed`, with the reason, when it could only arrive after the renewal or the renewal
/// cannot be priced.
pub fn plan(
    sub: &Subscription,
    customer: &Customer,
    catalog: &Catalog,
    lead_days: u32,
    window: &DeliveryWindow,
    now: DateTime<Utc>,
) -> Option<Change> {
    let renewal_at = sub.next_renewal_at?;
    let cycle = sub.next_cycle;
    let renewal_local = renewal_at.with_timezone(&sub.time_zone).naive_local();
    let deliver_at = reminder_instant(renewal_local, sub.time_zone, lead_days, window, now);
    let mut after = sub.clone();
    let (payload, suppressed) = match price_cycle(sub, customer, catalog, cycle, renewal_at) {
        Ok(order) => {
            // The first reminder of a cycle sets the promise; a later one (a shorter lead)
            // quoted with it, so it can only keep or lower it.
            after.promise = Some(Promise::of(cycle, order.unit_price, order.total));
            let product = catalog.product_name(&sub.plan);
            let payload = json!({
                "customer": customer_snapshot(customer),
                "subscription": state_summary(sub),
                "renewal_at": renewal_at,
                "lead_days": lead_days,
                "product": product,
                "quote": email_snapshot(&order),
            });
            let late = deliver_at.is_none().then(|| {
                "the delivery window next opens at or after the renewal; no reminder is sent"
                    .to_owned()
            });
            (payload, late)
        }
        Err(problem) => (
            json!({ "renewal_at": renewal_at, "lead_days": lead_days }),
            Some(format!("the renewal cannot be priced: {problem}")),
        ),
    };
    if after.promise != sub.promise {
        after.updated_at = now;
    }
    let message = NewMessage {
        lead_days: Some(lead_days),
        deliver_at: Some(deliver_at.unwrap_or(now)),
        suppressed,
        ..NewMessage::now(
            MessageKind::RenewalReminder,
            customer.email.clone(),
            sub.id,
            Some(cycle),
            payload,
        )
    };
    Some(Change {
        messages: vec![message],
        ..Change::of(after)
    })
}

/// Why a queued reminder must not be sent now: its cycle was skipped, billed, paused,
/// cancelled or rescheduled after it was queued. `None` when it still announces the truth.
pub fn stale_reason(
    reminder_cycle: Option<u32>,
    promised_at: Option<DateTime<Utc>>,
    sub: &Subscription,
) -> Option<String> {
    use crate::core::model::Status;
    match sub.status {
        Status::Cancelled => return Some("the subscription was cancelled".into()),
        Status::Paused => return Some("the subscription is paused".into()),
        Status::Active => {}
    }
    if sub.hold_reason.is_some() {
        return Some("the subscription is on hold".into());
    }
    // The next renewal, or (a price-change notice sent early, when the next one was too close
    // to be noticed in time) the one after it.
    let announced_at = match reminder_cycle {
        Some(c) if c == sub.next_cycle => sub.next_renewal_at,
        Some(c) if c == sub.next_cycle + 1 => sub.instant_of(c),
        _ => {
            return Some(format!(
                "cycle {} is no longer the next renewal (now cycle {}): skipped or already billed",
                reminder_cycle.map_or("?".into(), |c| c.to_string()),
                sub.next_cycle
            ));
        }
    };
    if promised_at.is_some() && promised_at != announced_at {
        return Some("the renewal was rescheduled".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::Status;
    use crate::test_support::{at, customer_in, day_window, default_catalog, subscription_in};

    fn fixtures() -> (Subscription, Customer) {
        // Renewals at 02:00 Berlin: a reminder due then waits for 09:00.
        let sub = subscription_in("Europe/Berlin", "2026-06-01T02:00", "2026-06-01T00:00:00Z");
        (sub, customer_in("Europe/Berlin"))
    }

    /// The reminder planned for the fixtures' subscription, `lead_days` before its renewal, at
    /// `now`, in the day window.
    fn plan_for_fixtures(lead_days: u32, now: &str) -> Change {
        let (sub, customer) = fixtures();
        plan(
            &sub,
            &customer,
            &default_catalog(),
            lead_days,
            &day_window(),
            at(now),
        )
        .unwrap()
    }

    #[test]
    fn a_night_reminder_waits_for_the_window_and_promises_the_price() {
        // Renewal 2026-07-01 02:00 Berlin (00:00 UTC); 3 days before at 02:00 -> 09:00 June 28.
        let change = plan_for_fixtures(3, "2026-06-27T00:00:00Z");
        let message = &change.messages[0];
        assert_eq!(message.deliver_at, Some(at("2026-06-28T07:00:00Z")));
        assert_eq!(message.suppressed, None);
        assert_eq!((message.cycle, message.lead_days), (Some(1), Some(3)));
        assert_eq!(message.payload["quote"]["total"]["amount_minor"], 5094);
        assert_eq!(
            change.after.promise,
            Some(Promise {
                cycle: 1,
                unit_price_minor: 4999,
                total_minor: Some(5094),
                currency: Some(crate::core::money::Currency::Usd),
            })
        );
    }

    #[test]
    fn a_reminder_that_would_arrive_after_the_renewal_is_suppressed() {
        let change = plan_for_fixtures(0, "2026-06-30T12:00:00Z");
        assert!(
            change.messages[0]
                .suppressed
                .as_deref()
                .unwrap()
                .contains("after the renewal")
        );
    }

    #[test]
    fn stale_reminders_are_recognised() {
        let (sub, _) = fixtures();
        let promised = sub.next_renewal_at;
        assert_eq!(stale_reason(Some(1), promised, &sub), None);
        let mut skipped = sub.clone();
        skipped.next_cycle = 2;
        assert!(
            stale_reason(Some(1), promised, &skipped)
                .unwrap()
                .contains("skipped")
        );
        let mut paused = sub.clone();
        paused.status = Status::Paused;
        assert!(stale_reason(Some(1), promised, &paused).is_some());
        let mut moved = sub.clone();
        moved.next_renewal_at = Some(at("2026-07-05T00:00:00Z"));
        assert!(
            stale_reason(Some(1), promised, &moved)
                .unwrap()
                .contains("rescheduled")
        );
    }
}

/// The reminded total is a ceiling: whatever changes in the catalog between the reminder and
/// the renewal, the renewal charges at most what the reminder said, and its lines still add
/// up to its total.
#[cfg(test)]
mod promise_properties {
    use proptest::prelude::*;

    use super::*;
    use crate::core::money::{BasisPoints, Money};
    use crate::core::renewal::{CatchUp, plan as plan_renewal};
    use crate::test_support::{at, default_catalog};

    fn customer(region: Option<&str>) -> Customer {
        Customer {
            id: 3,
            email: "ada@example.com".parse().unwrap(),
            name: "Ada".into(),
            time_zone: "America/New_York".parse().unwrap(),
            locale: "en-US".into(),
            tax_region: region.map(str::to_owned),
            external_id: None,
            metadata: Default::default(),
            created_at: at("2026-01-01T00:00:00Z"),
            updated_at: at("2026-01-01T00:00:00Z"),
        }
    }

    proptest! {
        #[test]
        fn a_renewal_never_charges_more_than_its_reminder(
            plan_index in 0usize..4,
            quantity in 1u32..4,
            region in prop::sample::select(vec![None, Some("US-CA"), Some("DE")]),
            price_change in -2000i64..3000,
            fee_change in -500i64..1500,
            threshold_change in -5000i64..8000,
            discount_change in -500i32..500,
            tax_change in -300i32..300,
        ) {
            let catalog = default_catalog();
            let customer = customer(region);
            let plan_id = catalog.plans[plan_index].id.clone();
            let mut new = crate::core::lifecycle::new_subscription(
                &catalog,
                &customer,
                plan_id.as_str(),
                quantity,
                None,
                crate::core::lifecycle::Start::AfterCheckout,
                "09:00".parse().unwrap(),
                at("2026-01-10T15:00:00Z"),
            )
            .unwrap();
            new.coupon_code = None;
            let mut sub = Subscription {
                id: 1,
                customer_id: customer.id,
                plan: new.plan,
                quantity,
                interval: new.interval,
                anchor_local: new.anchor_local,
                anchor_cycle: new.anchor_cycle,
                time_zone: new.time_zone,
                next_cycle: new.next_cycle,
                next_renewal_at: Some(new.next_renewal_at),
                status: crate::core::model::Status::Active,
                paused_until: None,
                orders_count: new.orders_count,
                coupon: None,
                cancel_reason: None,
                hold_reason: None,
                promise: None,
                error_count: 0,
                created_at: at("2026-01-10T15:00:00Z"),
                updated_at: at("2026-01-10T15:00:00Z"),
                notices: Default::default(),
                ship_to: None,
                external_id: None,
                metadata: Default::default(),
            };
            let renewal_at = sub.next_renewal_at.unwrap();
            let window = crate::test_support::day_window();
            let reminder = plan(&sub, &customer, &catalog, 3, &window, renewal_at - chrono::TimeDelta::days(4)).unwrap();
            let reminded = reminder.messages[0].payload["quote"]["total"]["amount_minor"].as_i64().unwrap();
            sub = reminder.after;

            // The catalog changes before the renewal.
            let mut changed = catalog.clone();
            let currency = changed.currency;
            let shift = |m: Money, by: i64| Money::from_minor((m.minor() + by).max(0), currency);
            let bp = |b: BasisPoints, by: i32| BasisPoints::new((b.get() as i32 + by).clamp(0, 5000) as u32).unwrap();
            changed.plans[plan_index].list_price = shift(changed.plans[plan_index].list_price, price_change);
            changed.plans[plan_index].subscribe_and_save = bp(changed.plans[plan_index].subscribe_and_save, discount_change);
            changed.shipping.flat_fee = shift(changed.shipping.flat_fee, fee_change);
            changed.shipping.free_threshold = changed.shipping.free_threshold.map(|t| shift(t, threshold_change));
            for r in changed.tax_regions.values_mut() {
                r.rate = bp(r.rate, tax_change);
            }
            changed.discount_cap = BasisPoints::new(10_000).unwrap();

            let billed = plan_renewal(&sub, &customer, &changed, CatchUp::Latest, renewal_at).unwrap();
            let order = &billed.orders[0];
            prop_assert!(order.total.minor() <= reminded, "billed {} after a reminder of {reminded}", order.total.minor());
            let sum: i64 = order.lines.iter().map(|l| l.amount.minor()).sum();
            prop_assert_eq!(sum, order.total.minor());
            prop_assert!(order.total.minor() >= 0);
        }
    }
}
