//! The store conformance suite: every test runs on PostgreSQL and on SQLite, through the one
//! `Store` interface and the engine, at chosen instants.

mod common;

use std::collections::BTreeMap;

use chrono::{Days, TimeDelta};
use common::{Backend, TestDb, at};
use subsave::core::lifecycle::{self, Operation, Start};
use subsave::core::metadata::{ExternalId, Metadata, MetadataPatch, MetadataUpdate};
use subsave::core::model::{
    Actor, Coupon, CouponDuration, Customer, MessageKind, MessageStatus, NewCoupon, Status,
    Subscription,
};
use subsave::core::money::{BasisPoints, Currency, Money};
use subsave::core::pricing::CouponValue;
use subsave::core::renewal;
use subsave::core::renewal::CatchUp;
use subsave::engine::check_plans;
use subsave::store::{
    CustomerFilter, Delivery, MessageFilter, OrderFilter, StoreError, SubscriptionFilter, TimeRange,
};

on_both_backends!(
    customers_are_unique_by_email,
    customers_are_found_by_part_of_an_address_or_name,
    the_reminded_total_is_what_the_renewal_charges,
    finished_mail_is_purged_after_its_retention_and_pending_mail_never,
    a_renewal_writes_order_lines_message_and_event,
    the_database_rejects_a_second_order_for_a_cycle,
    orders_and_events_are_immutable,
    a_failure_before_commit_leaves_nothing,
    catch_up_after_a_100_day_outage,
    a_pause_with_an_end_resumes_by_itself,
    refused_operations_say_why_and_change_nothing,
    an_unpriceable_subscription_is_held_and_the_batch_commits,
    coupons_count_redemptions_and_cycles,
    a_coupon_redeemed_later_counts_against_its_limit_once,
    the_first_provider_customer_recorded_stays,
    start_up_check_names_subscriptions_without_a_plan,
    a_simulated_year_matches_the_pure_core,
    only_the_current_lease_records_an_outcome,
    external_ids_are_unique_per_kind_and_metadata_merges,
    lists_filter_by_external_id_and_time_ranges,
);

fn actor() -> Actor {
    Actor("test".into())
}

async fn customers_are_unique_by_email(backend: Backend) {
    let db = TestDb::new(backend).await;
    let now = at("2026-01-01T12:00:00Z");
    let ada = db
        .customer("ada@example.com", "Europe/Berlin", Some("DE"), now)
        .await;
    assert_eq!(db.store.customer(ada.id).await.unwrap(), Some(ada.clone()));
    assert_eq!(
        db.store
            .customer_by_email(&"ADA@example.com".parse().unwrap())
            .await
            .unwrap(),
        Some(ada.clone())
    );
    let again = db
        .store
        .add_customer(
            &subsave::core::model::NewCustomer {
                email: "ada@example.com".parse().unwrap(),
                name: "Other".into(),
                time_zone: "UTC".parse().unwrap(),
                locale: "en-US".into(),
                tax_region: None,
                external_id: None,
                metadata: Default::default(),
            },
            now,
        )
        .await;
    match again {
        Err(StoreError::Conflict(message)) => {
            assert!(message.contains("ada@example.com"), "{message}")
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(db.store.customers(10, None).await.unwrap().len(), 1);
}

/// The console's search: case-insensitive, `%`, `_` and `\` taken literally, keyset pages.
async fn customers_are_found_by_part_of_an_address_or_name(backend: Backend) {
    let db = TestDb::new(backend).await;
    let now = at("2026-01-01T12:00:00Z");
    let mut ids = Vec::new();
    for (email, name) in [
        ("ada@example.com", "Ada Lovelace"),
        ("bob@example.com", "Bob 100% O'Neil"),
        ("carol@example.com", "Carol_x\\"),
    ] {
        let c = db
            .store
            .add_customer(
                &subsave::core::model::NewCustomer {
                    email: email.parse().unwrap(),
                    name: name.into(),
                    time_zone: "UTC".parse().unwrap(),
                    locale: "en-US".into(),
                    tax_region: None,
                    external_id: None,
                    metadata: Default::default(),
                },
                now,
            )
            .await
            .unwrap();
        ids.push(c.id);
    }
    let found = |text: &'static str, limit: u32, after: Option<i64>| {
        let store = db.store.clone();
        async move {
            store
                .search_customers(text, limit, after)
                .await
                .unwrap()
                .iter()
                .map(|c| c.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(found("LOVELACE", 10, None).await, vec![ids[0]]);
    assert_eq!(found("@EXAMPLE.", 10, None).await, ids);
    assert_eq!(found("%", 10, None).await, vec![ids[1]]);
    assert_eq!(found("_", 10, None).await, vec![ids[2]]);
    assert_eq!(found("\\", 10, None).await, vec![ids[2]]);
    assert_eq!(found("o'n", 10, None).await, vec![ids[1]]);
    assert!(found("' OR 1=1 --", 10, None).await.is_empty());
    assert_eq!(found("example", 2, None).await, ids[..2].to_vec());
    assert_eq!(found("example", 2, Some(ids[1])).await, vec![ids[2]]);
}

async fn a_renewal_writes_order_lines_message_and_event(backend: Backend) {
    let db = TestDb::new(backend).await;
    let created = at("2026-01-10T15:00:00Z");
    let ada = db
        .customer(
            "ada@example.com",
            "America/New_York",
            Some("US-CA"),
            created,
        )
        .await;
    let sub = db
        .subscribe(&ada, "3-pack", Start::AfterCheckout, None, created)
        .await;
    // Anchor 2026-01-10 09:00 New York; 3-pack renews every 90 days: 2026-04-10 09:00 EDT.
    assert_eq!(sub.next_renewal_at, Some(at("2026-04-10T13:00:00Z")));
    assert_eq!((sub.next_cycle, sub.orders_count), (1, 1));

    let engine = db.engine(CatchUp::Latest, 100);
    let early = engine.sweep(at("2026-04-10T12:59:59Z")).await.unwrap();
    assert_eq!(early.orders, 0, "nothing is due a second early");
    let report = engine.sweep(at("2026-04-10T13:00:00Z")).await.unwrap();
    assert_eq!((report.orders, report.messages), (1, 1));

    let orders = db
        .store
        .orders(&OrderFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(orders.len(), 1);
    let order = &orders[0];
    assert_eq!(
        (order.order_number.as_str(), order.cycle),
        ("BB-0000001-001", 1)
    );
    let amounts: Vec<i64> = order.lines.iter().map(|l| l.amount.minor()).collect();
    assert_eq!(amounts, [13499, -2025, 0, 832]);
    assert_eq!(order.total, Money::from_minor(12306, Currency::Usd));
    assert_eq!(
        db.store.order("BB-0000001-001").await.unwrap().as_ref(),
        Some(order)
    );

    let after = db.store.subscription(sub.id).await.unwrap().unwrap();
    assert_eq!((after.next_cycle, after.orders_count), (2, 2));
    assert_eq!(after.next_renewal_at, Some(at("2026-07-09T13:00:00Z")));

    let confirmations = db
        .store
        .messages(&MessageFilter {
            kind: Some(MessageKind::OrderConfirmation),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(confirmations.len(), 1);
    assert_eq!(confirmations[0].order_id, Some(order.id));
    assert_eq!(confirmations[0].recipient, "ada@example.com");
    assert_eq!(
        confirmations[0].payload.json().unwrap()["order"]["total"]["amount_minor"],
        12306
    );
    let kinds: Vec<String> = db
        .store
        .events(sub.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["created", "renewed"]);

    let again = engine.sweep(at("2026-04-11T00:00:00Z")).await.unwrap();
    assert_eq!(again.orders, 0, "a second sweep bills nothing more");
}

async fn the_database_rejects_a_second_order_for_a_cycle(backend: Backend) {
    let db = TestDb::new(backend).await;
    let now = at("2026-01-10T15:00:00Z");
    let ada = db.customer("ada@example.com", "UTC", None, now).await;
    let sub = db.subscribe(&ada, "1-pack", Start::Now, None, now).await;
    db.engine(CatchUp::Latest, 10).sweep(now).await.unwrap();
    assert_eq!(db.scalar("SELECT COUNT(*) FROM orders").await, 1);
    let duplicate = format!(
        "INSERT INTO orders (order_number, subscription_id, customer_id, cycle, plan_id, packs, quantity, \
         currency, total_minor, scheduled_for, created_at) VALUES ('DUPLICATE', {}, {}, 0, '1-pack', 1, 1, \
         'USD', 100, '2026-01-10 15:00:00+00', '2026-01-10 15:00:00+00')",
        sub.id, ada.id
    );
    let error = db
        .execute(&duplicate)
        .await
        .expect_err("the unique (subscription_id, cycle) constraint refuses it");
    assert!(
        error.contains("orders_one_per_cycle")
            || error.contains("UNIQUE constraint failed: orders.subscription_id, orders.cycle"),
        "{error}"
    );
    assert_eq!(db.scalar("SELECT COUNT(*) FROM orders").await, 1);
}

async fn orders_and_events_are_immutable(backend: Backend) {
    let db = TestDb::new(backend).await;
    let now = at("2026-01-10T15:00:00Z");
    let ada = db.customer("ada@example.com", "UTC", None, now).await;
    db.subscribe(&ada, "1-pack", Start::Now, None, now).await;
    db.engine(CatchUp::Latest, 10).sweep(now).await.unwrap();
    for sql in [
        "UPDATE orders SET total_minor = 0",
        "DELETE FROM order_lines",
        "DELETE FROM orders",
        "UPDATE subscription_events SET kind = 'x'",
    ] {
        let error = db.execute(sql).await.expect_err(sql);
        assert!(error.contains("immutable"), "{sql}: {error}");
    }
}

async fn a_failure_before_commit_leaves_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let now = at("2026-01-10T15:00:00Z");
    let mut subs = Vec::new();
    for i in 0..5 {
        let c = db
            .customer(&format!("c{i}@example.com"), "UTC", Some("US-NY"), now)
            .await;
        subs.push(db.subscribe(&c, "2-pack", Start::Now, None, now).await);
    }
    let messages_before = db.scalar("SELECT COUNT(*) FROM outbox").await;
    let events_before = db.scalar("SELECT COUNT(*) FROM subscription_events").await;
    db.fail_subscription_updates().await;
    let result = db.engine(CatchUp::Latest, 10).sweep(now).await;
    assert!(
        matches!(&result, Err(StoreError::Database(e)) if e.to_string().contains("injected fault")),
        "{result:?}"
    );
    assert_eq!(db.scalar("SELECT COUNT(*) FROM orders").await, 0);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM order_lines").await, 0);
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM outbox").await,
        messages_before
    );
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM subscription_events").await,
        events_before
    );
    for sub in &subs {
        assert_eq!(
            db.store.subscription(sub.id).await.unwrap().as_ref(),
            Some(sub),
            "not advanced"
        );
    }
    // The next sweep, without the fault, bills them all once.
    db.heal().await;
    let report = db.engine(CatchUp::Latest, 10).sweep(now).await.unwrap();
    assert_eq!(report.orders, 5);
}

async fn catch_up_after_a_100_day_outage(backend: Backend) {
    // 1-pack every 30 days from 2026-01-01 09:00 Berlin: due Jan 31, Mar 2, Apr 1, May 1, May 31.
    // The daemon is down from Jan 31 for 100 days and comes back on May 11.
    let created = at("2026-01-01T12:00:00Z");
    let back = at("2026-05-11T00:00:00Z");
    for (policy, billed) in [(CatchUp::Latest, vec![4]), (CatchUp::All, vec![1, 2, 3, 4])] {
        let db = TestDb::new(backend).await;
        let c = db
            .customer("late@example.com", "Europe/Berlin", None, created)
            .await;
        let sub = db
            .subscribe(&c, "1-pack", Start::AfterCheckout, None, created)
            .await;
        let report = db.engine(policy, 100).sweep(back).await.unwrap();
        assert_eq!(report.orders, billed.len(), "{policy:?}");
        let orders = db
            .store
            .orders(&OrderFilter {
                subscription_id: Some(sub.id),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            orders.iter().map(|o| o.cycle).collect::<Vec<_>>(),
            billed,
            "{policy:?}"
        );
        assert_eq!(
            orders.last().unwrap().scheduled_for,
            at("2026-05-01T07:00:00Z")
        );
        let missed: Vec<Option<u32>> = db
            .store
            .events(sub.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "missed")
            .map(|e| e.cycle)
            .collect();
        let expected_missed: Vec<Option<u32>> = match policy {
            CatchUp::Latest => vec![Some(1), Some(2), Some(3)],
            CatchUp::All => vec![],
        };
        assert_eq!(missed, expected_missed, "{policy:?}");
        let after = db.store.subscription(sub.id).await.unwrap().unwrap();
        assert_eq!(after.next_cycle, 5);
        assert_eq!(after.next_renewal_at, Some(at("2026-05-31T07:00:00Z")));
        assert_eq!(after.orders_count, 1 + billed.len() as u32);
        assert_eq!(
            db.engine(policy, 100).sweep(back).await.unwrap().orders,
            0,
            "each cycle once"
        );
    }
}

async fn a_pause_with_an_end_resumes_by_itself(backend: Backend) {
    let db = TestDb::new(backend).await;
    let created = at("2026-01-01T12:00:00Z");
    let c = db
        .customer("p@example.com", "America/New_York", None, created)
        .await;
    let sub = db
        .subscribe(&c, "1-pack", Start::AfterCheckout, None, created)
        .await;
    // Cycles every 30 days from 2026-01-01 09:00 New York: Jan 31, Mar 2, Apr 1, May 1.
    let until = at("2026-03-15T05:00:00Z");
    let op = Operation::Pause { until: Some(until) };
    let catalog = db.catalog.clone();
    db.store
        .transition(sub.id, &|s, cu| {
            lifecycle::apply(s, cu, &op, &catalog, &actor(), at("2026-01-15T00:00:00Z"))
        })
        .await
        .unwrap();
    let engine = db.engine(CatchUp::Latest, 10);
    // Jan 31 and Mar 2 fall inside the pause: nothing is billed, nothing is "missed".
    for day in [
        "2026-02-01T00:00:00Z",
        "2026-03-03T00:00:00Z",
        "2026-03-15T04:59:59Z",
    ] {
        let r = engine.sweep(at(day)).await.unwrap();
        assert_eq!((r.orders, r.resumed), (0, 0), "{day}");
    }
    let r = engine.sweep(at("2026-03-15T05:00:00Z")).await.unwrap();
    assert_eq!((r.orders, r.resumed), (0, 1));
    let resumed = db.store.subscription(sub.id).await.unwrap().unwrap();
    assert_eq!(resumed.status, Status::Active);
    assert_eq!(resumed.paused_until, None);
    assert_eq!(
        (resumed.next_cycle, resumed.next_renewal_at),
        (3, Some(at("2026-04-01T13:00:00Z")))
    );
    let r = engine.sweep(at("2026-04-01T13:00:00Z")).await.unwrap();
    assert_eq!(r.orders, 1);
    let kinds: Vec<String> = db
        .store
        .events(sub.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["created", "pause", "auto_resume", "renewed"]);
    let resumed_mail = db
        .store
        .messages(&MessageFilter {
            kind: Some(MessageKind::Resumed),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(resumed_mail.len(), 1);
}

async fn refused_operations_say_why_and_change_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let now = at("2026-01-01T12:00:00Z");
    let c = db.customer("r@example.com", "UTC", None, now).await;
    let active = db
        .subscribe(&c, "1-pack", Start::AfterCheckout, None, now)
        .await;
    let paused = db
        .subscribe(&c, "2-pack", Start::AfterCheckout, None, now)
        .await;
    let cancelled = db
        .subscribe(&c, "3-pack", Start::AfterCheckout, None, now)
        .await;
    let catalog = db.catalog.clone();
    let apply = |id: i64, op: Operation| {
        let catalog = catalog.clone();
        let store = db.store.clone();
        async move {
            store
                .transition(id, &|s, cu| {
                    lifecycle::apply(s, cu, &op, &catalog, &actor(), now)
                })
                .await
        }
    };
    apply(paused.id, Operation::Pause { until: None })
        .await
        .unwrap();
    apply(
        cancelled.id,
        Operation::Cancel {
            reason: "too much".into(),
        },
    )
    .await
    .unwrap();

    let plan = |p: &str| Some(subsave::core::catalog::PlanId::parse(p).unwrap());
    let cases: Vec<(i64, Operation, &str)> = vec![
        (
            cancelled.id,
            Operation::Cancel {
                reason: "again".into(),
            },
            "it is cancelled",
        ),
        (cancelled.id, Operation::Resume, "it is cancelled"),
        (cancelled.id, Operation::Skip, "it is cancelled"),
        (paused.id, Operation::Skip, "it is paused; resume it first"),
        (paused.id, Operation::Pause { until: None }, "it is paused"),
        (paused.id, Operation::RenewNow, "it is paused"),
        (active.id, Operation::Resume, "it is active, not paused"),
        (
            active.id,
            Operation::Cancel { reason: " ".into() },
            "without a reason",
        ),
        (
            active.id,
            Operation::Change {
                plan: plan("12-pack"),
                quantity: None,
                interval: None,
                ship_to: None,
            },
            "plan \"12-pack\" is not in the catalog",
        ),
        (
            active.id,
            Operation::Change {
                plan: None,
                quantity: None,
                interval: Some("90 days".parse().unwrap()),
                ship_to: None,
            },
            "does not allow an interval of 90 days",
        ),
        (
            active.id,
            Operation::Change {
                plan: None,
                quantity: Some(0),
                interval: None,
                ship_to: None,
            },
            "quantity 0 is out of range",
        ),
        (
            active.id,
            Operation::Change {
                plan: None,
                quantity: None,
                interval: None,
                ship_to: None,
            },
            "nothing to change",
        ),
        (
            active.id,
            Operation::Change {
                plan: plan("1-pack"),
                quantity: Some(1),
                interval: None,
                ship_to: None,
            },
            "nothing changes",
        ),
        (
            active.id,
            Operation::Pause {
                until: Some(at("2025-12-01T00:00:00Z")),
            },
            "not in the future",
        ),
        (
            active.id,
            Operation::Reschedule {
                to: "2025-12-01".parse().unwrap(),
            },
            "not in the future",
        ),
    ];
    for (id, op, expected) in cases {
        let before = db.store.subscription(id).await.unwrap();
        let events_before = db.store.events(id).await.unwrap().len();
        let messages_before = db.scalar("SELECT COUNT(*) FROM outbox").await;
        match apply(id, op.clone()).await {
            Err(StoreError::Refused(e)) => assert!(e.to_string().contains(expected), "{op:?}: {e}"),
            other => panic!("{op:?} was not refused: {other:?}"),
        }
        assert_eq!(
            db.store.subscription(id).await.unwrap(),
            before,
            "{op:?} changed the subscription"
        );
        assert_eq!(
            db.store.events(id).await.unwrap().len(),
            events_before,
            "{op:?} wrote an event"
        );
        assert_eq!(
            db.scalar("SELECT COUNT(*) FROM outbox").await,
            messages_before,
            "{op:?} queued mail"
        );
    }
    let missing = db
        .store
        .transition(9999, &|s, cu| {
            lifecycle::apply(s, cu, &Operation::Skip, &catalog, &actor(), now)
        })
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))));

    // Creation refuses what the catalog or the customer's zone cannot take.
    for (plan, interval, expected) in [
        ("12-pack", None, "not in the catalog"),
        (
            "1-pack",
            Some("2 weeks"),
            "does not allow an interval of 2 weeks",
        ),
    ] {
        let err = lifecycle::new_subscription(
            &db.catalog,
            &c,
            plan,
            1,
            interval.map(|i| i.parse().unwrap()),
            Start::AfterCheckout,
            "09:00".parse().unwrap(),
            now,
        )
        .unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
    }
}

async fn an_unpriceable_subscription_is_held_and_the_batch_commits(backend: Backend) {
    let db = TestDb::new(backend).await;
    let now = at("2026-01-01T12:00:00Z");
    let mut subs = Vec::new();
    for i in 0..6 {
        let c = db
            .customer(&format!("h{i}@example.com"), "UTC", None, now)
            .await;
        subs.push(db.subscribe(&c, "1-pack", Start::Now, None, now).await);
    }
    let bad = subs[2].id;
    db.execute(&format!(
        "UPDATE subscriptions SET plan_id = 'retired-pack' WHERE id = {bad}"
    ))
    .await
    .unwrap();
    let engine = db.engine(CatchUp::Latest, 4);
    let report = engine.sweep(now).await.unwrap();
    assert_eq!((report.orders, report.held), (5, 1));
    let held = db.store.subscription(bad).await.unwrap().unwrap();
    assert!(
        held.hold_reason
            .as_deref()
            .unwrap()
            .contains("retired-pack"),
        "{:?}",
        held.hold_reason
    );
    assert_eq!(held.error_count, 1);
    let events_after_first = db.scalar("SELECT COUNT(*) FROM subscription_events").await;
    // The next sweep does not spin on it.
    let again = engine.sweep(now + TimeDelta::minutes(1)).await.unwrap();
    assert_eq!((again.orders, again.held, again.renewed), (0, 0, 0));
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM subscription_events").await,
        events_after_first
    );
    // The start-up check names it.
    let err = check_plans(db.store.as_ref(), &db.catalog)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("retired-pack") && err.contains(&bad.to_string()),
        "{err}"
    );
    // An operator's change releases the hold and the next sweep bills it.
    db.execute(&format!(
        "UPDATE subscriptions SET plan_id = '1-pack' WHERE id = {bad}"
    ))
    .await
    .unwrap();
    let op = Operation::Change {
        plan: None,
        quantity: Some(2),
        interval: None,
        ship_to: None,
    };
    let catalog = db.catalog.clone();
    db.store
        .transition(bad, &|s, c| {
            lifecycle::apply(s, c, &op, &catalog, &actor(), now)
        })
        .await
        .unwrap();
    let report = engine.sweep(now + TimeDelta::minutes(2)).await.unwrap();
    assert_eq!(report.orders, 1);
}

async fn coupons_count_redemptions_and_cycles(backend: Backend) {
    let db = TestDb::new(backend).await;
    let now = at("2026-01-01T12:00:00Z");
    let coupon = |code: &str, duration, max: Option<u32>| NewCoupon {
        code: code.into(),
        currency: Currency::Usd,
        value: CouponValue::Percent(BasisPoints::new(1000).unwrap()),
        duration,
        plan: None,
        expires_at: Some(at("2026-06-01T00:00:00Z")),
        max_redemptions: max,
    };
    db.store
        .create_coupon(&coupon("TWICE", CouponDuration::Repeating(2), Some(1)), now)
        .await
        .unwrap();
    let dup = db
        .store
        .create_coupon(&coupon("TWICE", CouponDuration::Once, None), now)
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))));
    let a = db.customer("a@example.com", "UTC", None, now).await;
    let b = db.customer("b@example.com", "UTC", None, now).await;
    let sub = db
        .subscribe(&a, "1-pack", Start::Now, Some("TWICE"), now)
        .await;
    assert_eq!(sub.coupon.as_ref().map(|g| g.code.as_str()), Some("TWICE"));
    // The limit of one redemption holds.
    let mut new = lifecycle::new_subscription(
        &db.catalog,
        &b,
        "1-pack",
        1,
        None,
        Start::Now,
        "09:00".parse().unwrap(),
        now,
    )
    .unwrap();
    new.coupon_code = Some("TWICE".into());
    let refused = db
        .store
        .create_subscription(&new, &db.catalog, &actor(), now)
        .await;
    match refused {
        Err(StoreError::Refused(e)) => assert!(e.to_string().contains("redemption limit"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        db.store
            .subscriptions(&SubscriptionFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap()
            .len(),
        1,
        "nothing was created"
    );
    // Disabled and expired coupons are refused too.
    db.store
        .create_coupon(&coupon("OFF", CouponDuration::Once, None), now)
        .await
        .unwrap();
    db.store.disable_coupon("OFF", now).await.unwrap();
    new.coupon_code = Some("OFF".into());
    assert!(matches!(
        db.store
            .create_subscription(&new, &db.catalog, &actor(), now)
            .await,
        Err(StoreError::Refused(_))
    ));
    db.store
        .create_coupon(&coupon("LATE", CouponDuration::Once, None), now)
        .await
        .unwrap();
    new.coupon_code = Some("LATE".into());
    assert!(matches!(
        db.store
            .create_subscription(&new, &db.catalog, &actor(), at("2026-07-01T00:00:00Z"))
            .await,
        Err(StoreError::Refused(_))
    ));

    // Repeating 2: the first two orders are discounted, the third is not.
    let engine = db.engine(CatchUp::Latest, 10);
    let mut t = now;
    let mut discounted = Vec::new();
    for _ in 0..3 {
        engine.sweep(t).await.unwrap();
        t += TimeDelta::days(30);
    }
    for o in db
        .store
        .orders(&OrderFilter {
            subscription_id: Some(sub.id),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
    {
        discounted.push(o.lines.iter().any(|l| l.kind == "coupon"));
    }
    assert_eq!(discounted, [true, true, false]);
    let coupons = db.store.coupons(10, None).await.unwrap();
    assert_eq!(
        coupons
            .iter()
            .find(|c| c.code == "TWICE")
            .unwrap()
            .redemptions,
        1
    );
}

/// A coupon redeemed on existing subscriptions (`redeem_coupon`) is counted under its row
/// lock: two subscriptions racing for its last redemption, one wins and the other is refused
/// with nothing written; an unknown code is `NotFound`; the next renewal is discounted.
async fn a_coupon_redeemed_later_counts_against_its_limit_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let now = at("2026-01-01T12:00:00Z");
    db.store
        .create_coupon(
            &NewCoupon {
                code: "LAST".into(),
                currency: db.catalog.currency,
                value: CouponValue::Percent(BasisPoints::new(1000).unwrap()),
                duration: CouponDuration::Forever,
                plan: None,
                expires_at: None,
                max_redemptions: Some(1),
            },
            now,
        )
        .await
        .unwrap();
    let a = db.customer("a@example.com", "UTC", None, now).await;
    let b = db.customer("b@example.com", "UTC", None, now).await;
    let first = db
        .subscribe(&a, "1-pack", Start::AfterCheckout, None, now)
        .await;
    let second = db
        .subscribe(&b, "1-pack", Start::AfterCheckout, None, now)
        .await;
    let catalog = db.catalog.clone();
    let redeem = |id: i64, code: &'static str| {
        let store = db.store.clone();
        let catalog = catalog.clone();
        async move {
            let redemption = |s: &Subscription, c: &Customer, coupon: &Coupon| {
                lifecycle::redeem_coupon(s, c, coupon, &catalog, &actor(), now)
            };
            store.redeem_coupon(id, code, &redemption).await
        }
    };
    assert!(matches!(
        redeem(first.id, "NOPE").await,
        Err(StoreError::NotFound(_))
    ));
    let (one, two) = tokio::join!(
        tokio::spawn(redeem(first.id, "LAST")),
        tokio::spawn(redeem(second.id, "LAST"))
    );
    let outcomes = [one.unwrap(), two.unwrap()];
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    let refused = outcomes.iter().find_map(|o| o.as_ref().err()).unwrap();
    assert!(
        refused.to_string().contains("redemption limit"),
        "{refused}"
    );
    let coupons = db.store.coupons(10, None).await.unwrap();
    assert_eq!(coupons[0].redemptions, 1);
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM coupon_redemptions").await,
        1
    );
    let mut with_coupon = Vec::new();
    for id in [first.id, second.id] {
        let sub = db.store.subscription(id).await.unwrap().unwrap();
        with_coupon.push(sub.coupon.map(|g| g.code));
    }
    assert_eq!(with_coupon.iter().flatten().count(), 1, "{with_coupon:?}");
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM subscription_events WHERE kind = 'coupon'")
            .await,
        1
    );
    let engine = db.engine(CatchUp::Latest, 10);
    engine.sweep(now + TimeDelta::days(40)).await.unwrap();
    let discounted = db
        .scalar("SELECT COUNT(*) FROM order_lines WHERE kind = 'coupon'")
        .await;
    assert_eq!(
        discounted, 1,
        "the redeeming subscription's renewal is discounted"
    );
}

/// `adopt_payment_customer` records a customer's provider customer only when none is on file
/// (two card pages racing keep the first), touching neither the card nor the payments.
async fn the_first_provider_customer_recorded_stays(backend: Backend) {
    let db = TestDb::new(backend).await;
    let now = at("2026-01-01T12:00:00Z");
    let a = db.customer("a@example.com", "UTC", None, now).await;
    assert_eq!(
        db.store
            .adopt_payment_customer(a.id, "cus_first")
            .await
            .unwrap(),
        "cus_first"
    );
    assert_eq!(
        db.store
            .adopt_payment_customer(a.id, "cus_second")
            .await
            .unwrap(),
        "cus_first"
    );
    let refs = db.store.payment_refs(a.id).await.unwrap().unwrap();
    assert_eq!(
        (refs.customer_ref.as_deref(), refs.method_ref),
        (Some("cus_first"), None)
    );
    assert!(matches!(
        db.store.adopt_payment_customer(a.id + 1, "cus_x").await,
        Err(StoreError::NotFound(_))
    ));
}

async fn start_up_check_names_subscriptions_without_a_plan(backend: Backend) {
    let db = TestDb::new(backend).await;
    let now = at("2026-01-01T12:00:00Z");
    let c = db.customer("s@example.com", "UTC", None, now).await;
    db.subscribe(&c, "1-pack", Start::AfterCheckout, None, now)
        .await;
    assert!(check_plans(db.store.as_ref(), &db.catalog).await.is_ok());
    let mut smaller = (*db.catalog).clone();
    smaller.plans.retain(|p| p.id.as_str() != "1-pack");
    let err = check_plans(db.store.as_ref(), &smaller)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"1-pack\"") && err.contains("subscriptions 1"),
        "{err}"
    );
}

/// A year stepped day by day over a mix of plans, intervals, zones, coupons, loyalty tiers,
/// skips and pauses. The database's orders equal what the pure core (`lifecycle::apply` and
/// `renewal::plan` on in-memory state) predicts, and every order's lines sum to its total.
async fn a_simulated_year_matches_the_pure_core(backend: Backend) {
    let db = TestDb::new(backend).await;
    let start = at("2026-01-01T00:00:00Z");
    for (code, value, duration) in [
        (
            "ONCE10",
            CouponValue::Percent(BasisPoints::new(1000).unwrap()),
            CouponDuration::Once,
        ),
        (
            "REP3",
            CouponValue::Amount(Money::from_minor(500, Currency::Usd)),
            CouponDuration::Repeating(3),
        ),
        (
            "FOREVER5",
            CouponValue::Percent(BasisPoints::new(500).unwrap()),
            CouponDuration::Forever,
        ),
    ] {
        db.store
            .create_coupon(
                &NewCoupon {
                    code: code.into(),
                    currency: Currency::Usd,
                    value,
                    duration,
                    plan: None,
                    expires_at: None,
                    max_redemptions: None,
                },
                start,
            )
            .await
            .unwrap();
    }
    let zones = [
        "America/New_York",
        "Europe/Berlin",
        "Australia/Lord_Howe",
        "Asia/Tokyo",
        "America/Los_Angeles",
    ];
    let regions = [Some("US-CA"), Some("DE"), None, Some("US-NY"), Some("FR")];
    let plans = ["1-pack", "2-pack", "3-pack", "6-pack"];
    let coupons = [None, Some("ONCE10"), Some("REP3"), Some("FOREVER5")];
    let mut model: BTreeMap<i64, Subscription> = BTreeMap::new();
    let mut customers = BTreeMap::new();
    for i in 0..16usize {
        let c = db
            .customer(
                &format!("y{i}@example.com"),
                zones[i % 5],
                regions[i % 5],
                start,
            )
            .await;
        let start_kind = match i % 3 {
            0 => Start::AfterCheckout,
            1 => Start::Now,
            _ => Start::FirstRenewalOn("2026-01-20".parse().unwrap()),
        };
        let mut new = lifecycle::new_subscription(
            &db.catalog,
            &c,
            plans[i % 4],
            1 + (i % 2) as u32,
            (i % 4 == 0 && i % 8 == 0).then(|| "1 month".parse().unwrap()),
            start_kind,
            "09:00".parse().unwrap(),
            start,
        )
        .unwrap();
        new.coupon_code = coupons[(i / 4) % 4].map(str::to_owned);
        let sub = db
            .store
            .create_subscription(&new, &db.catalog, &actor(), start)
            .await
            .unwrap();
        customers.insert(sub.id, c);
        model.insert(sub.id, sub);
    }
    // Operations on given days, applied to the database and to the model alike.
    let ids: Vec<i64> = model.keys().copied().collect();
    let script: Vec<(u64, i64, Operation)> = vec![
        (20, ids[0], Operation::Skip),
        (
            45,
            ids[1],
            Operation::Pause {
                until: Some(at("2026-05-01T00:00:00Z")),
            },
        ),
        (
            70,
            ids[2],
            Operation::Change {
                plan: Some(subsave::core::catalog::PlanId::parse("6-pack").unwrap()),
                quantity: None,
                interval: Some("180 days".parse().unwrap()),
                ship_to: None,
            },
        ),
        (100, ids[3], Operation::Pause { until: None }),
        (160, ids[3], Operation::Resume),
        (
            200,
            ids[4],
            Operation::Cancel {
                reason: "moved abroad".into(),
            },
        ),
        (
            230,
            ids[5],
            Operation::Change {
                plan: None,
                quantity: Some(3),
                interval: None,
                ship_to: None,
            },
        ),
        (250, ids[6], Operation::Skip),
    ];
    let engine = db.engine(CatchUp::Latest, 5);
    let mut expected = Vec::new();
    for day in 0..365u64 {
        let now = start.checked_add_days(Days::new(day)).unwrap();
        for (_, id, op) in script.iter().filter(|(d, _, _)| *d == day) {
            let catalog = db.catalog.clone();
            let op2 = op.clone();
            db.store
                .transition(*id, &|s, c| {
                    lifecycle::apply(s, c, &op2, &catalog, &actor(), now)
                })
                .await
                .unwrap();
            let sub = &model[id];
            let change =
                lifecycle::apply(sub, &customers[id], op, &db.catalog, &actor(), now).unwrap();
            model.insert(*id, change.after);
        }
        engine.sweep(now).await.unwrap();
        for (id, sub) in model.iter_mut() {
            if sub.status == Status::Paused && sub.paused_until.is_some_and(|u| u <= now) {
                *sub = lifecycle::resumed(sub, sub.paused_until.unwrap(), true).unwrap();
            }
            if sub.status == Status::Active
                && sub.hold_reason.is_none()
                && sub.next_renewal_at.is_some_and(|t| t <= now)
            {
                let change =
                    renewal::plan(sub, &customers[id], &db.catalog, CatchUp::Latest, now).unwrap();
                expected.extend(change.orders.iter().map(|o| {
                    (
                        o.order_number.clone(),
                        o.scheduled_for,
                        o.total.minor(),
                        o.lines.iter().map(|l| l.amount.minor()).collect::<Vec<_>>(),
                    )
                }));
                *sub = change.after;
            }
        }
    }
    let orders = db
        .store
        .orders(&OrderFilter {
            limit: 10_000,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut actual: Vec<_> = orders
        .iter()
        .map(|o| {
            (
                o.order_number.clone(),
                o.scheduled_for,
                o.total.minor(),
                o.lines.iter().map(|l| l.amount.minor()).collect::<Vec<_>>(),
            )
        })
        .collect();
    actual.sort();
    expected.sort();
    assert!(
        expected.len() > 40,
        "the year bills a real number of orders: {}",
        expected.len()
    );
    assert_eq!(actual, expected);
    for o in &orders {
        let sum: i64 = o.lines.iter().map(|l| l.amount.minor()).sum();
        assert_eq!(sum, o.total.minor(), "{}", o.order_number);
        assert!(o.total.minor() >= 0);
    }
    // Every subscription's stored state equals the model's (schedule, counts, coupon use).
    for (id, sub) in &model {
        let stored = db.store.subscription(*id).await.unwrap().unwrap();
        assert_eq!(
            (
                stored.status,
                stored.next_cycle,
                stored.next_renewal_at,
                stored.orders_count
            ),
            (
                sub.status,
                sub.next_cycle,
                sub.next_renewal_at,
                sub.orders_count
            ),
            "subscription {id}"
        );
        assert_eq!(
            stored.coupon.map(|g| g.orders_used),
            sub.coupon.as_ref().map(|g| g.orders_used),
            "subscription {id}"
        );
    }
    // Every order has exactly one confirmation.
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'order_confirmation'")
            .await,
        orders.len() as i64
    );
    // A skipped cycle never gets an order.
    let skipped: Vec<u32> = db
        .store
        .events(ids[0])
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind == "skip")
        .filter_map(|e| e.cycle)
        .collect();
    assert_eq!(skipped.len(), 1);
    assert!(
        orders
            .iter()
            .all(|o| !(o.subscription_id == ids[0] && o.cycle == skipped[0]))
    );
}

/// A mailer whose lease expired must not overwrite what the next holder recorded: outcomes
/// are recorded against the lease they were sent under. The clock reads nanoseconds, which
/// PostgreSQL truncates to microseconds: the comparison must use the lease as stored.
async fn only_the_current_lease_records_an_outcome(backend: Backend) {
    let db = TestDb::new(backend).await;
    let now = at("2026-01-10T15:00:00.123456789Z");
    for email in ["a@example.com", "b@example.com"] {
        let c = db.customer(email, "UTC", None, now).await;
        db.subscribe(&c, "1-pack", Start::AfterCheckout, None, now)
            .await;
    }
    let lease = TimeDelta::minutes(5);
    let first = db.store.claim_messages(now, now + lease, 10).await.unwrap();
    assert_eq!(first.len(), 2);
    // The first lease expires; another mailer claims both and sends one of them.
    let later = now + lease + TimeDelta::microseconds(1);
    let second = db
        .store
        .claim_messages(later, later + lease, 10)
        .await
        .unwrap();
    assert_eq!(second.len(), 2);
    let sent = Delivery::Sent("250 2.0.0 queued".into());
    assert_eq!(
        db.store
            .finish_messages(&[(second[0].clone(), sent.clone())], later)
            .await
            .unwrap(),
        1
    );
    // The first mailer's late outcomes, sent under the expired lease, are dropped.
    let late: Vec<_> = first
        .iter()
        .map(|m| (m.clone(), Delivery::Failed("550 late".into())))
        .collect();
    assert_eq!(db.store.finish_messages(&late, later).await.unwrap(), 0);
    // The current holder records the other one; nothing is recorded twice.
    let retry = Delivery::Retry {
        at: later + TimeDelta::minutes(1),
        error: "451 later".into(),
    };
    assert_eq!(
        db.store
            .finish_messages(
                &[(second[1].clone(), retry), (second[0].clone(), sent)],
                later
            )
            .await
            .unwrap(),
        1
    );
    let rows = db
        .store
        .messages(&MessageFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let state = |id: i64| {
        let m = rows.iter().find(|m| m.id == id).unwrap();
        (m.status, m.last_error.clone(), m.lease_until)
    };
    assert_eq!(
        state(second[0].id),
        (MessageStatus::Sent, Some("250 2.0.0 queued".into()), None)
    );
    assert_eq!(
        state(second[1].id),
        (MessageStatus::Pending, Some("451 later".into()), None)
    );
}

async fn finished_mail_is_purged_after_its_retention_and_pending_mail_never(backend: Backend) {
    let db = TestDb::new(backend).await;
    let old = at("2026-01-10T15:00:00Z");
    for i in 0..5 {
        let c = db
            .customer(&format!("p{i}@example.com"), "UTC", None, old)
            .await;
        db.subscribe(&c, "1-pack", Start::AfterCheckout, None, old)
            .await;
    }
    // Three of the five welcome messages were sent, one failed, one is still pending; one of
    // the sent ones is leased again by nobody, and a newer message is sent too.
    let claimed = db
        .store
        .claim_messages(old, old + TimeDelta::minutes(5), 10)
        .await
        .unwrap();
    let outcomes: Vec<(subsave::core::model::Message, Delivery)> = claimed
        .iter()
        .take(4)
        .enumerate()
        .map(|(i, m)| {
            let outcome = if i < 3 {
                Delivery::Sent("250".into())
            } else {
                Delivery::Failed("550".into())
            };
            (m.clone(), outcome)
        })
        .collect();
    db.store.finish_messages(&outcomes, old).await.unwrap();
    let leases: Vec<subsave::store::Lease> = claimed[4..].iter().map(Into::into).collect();
    db.store.release_messages(&leases).await.unwrap();
    let recent = at("2026-06-01T00:00:00Z");
    let c = db.customer("new@example.com", "UTC", None, recent).await;
    db.subscribe(&c, "1-pack", Start::AfterCheckout, None, recent)
        .await;

    // A cutoff between the two: the four finished old ones go, in batches of 3.
    let cutoff = at("2026-03-01T00:00:00Z");
    assert_eq!(db.store.purge_finished(cutoff, 3).await.unwrap(), 3);
    assert_eq!(db.store.purge_finished(cutoff, 3).await.unwrap(), 1);
    assert_eq!(db.store.purge_finished(cutoff, 3).await.unwrap(), 0);
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")
            .await,
        2,
        "the old pending message and the new one stay"
    );
    assert_eq!(db.scalar("SELECT COUNT(*) FROM outbox").await, 2);
}

/// A reminder's total is kept: the shipping fee rises after the reminder, and the renewal
/// charges the reminded total, the difference a `price_promise` line that finance sees.
async fn the_reminded_total_is_what_the_renewal_charges(backend: Backend) {
    let db = TestDb::new(backend).await;
    let created = at("2026-01-10T15:00:00Z");
    let c = db
        .customer(
            "promise@example.com",
            "America/New_York",
            Some("US-CA"),
            created,
        )
        .await;
    let sub = db
        .subscribe(&c, "1-pack", Start::AfterCheckout, None, created)
        .await;
    let renewal = sub.next_renewal_at.unwrap();
    let reminders = subsave::config::ReminderSettings {
        lead_days: vec![3],
        window: subsave::core::schedule::DeliveryWindow {
            start: "09:00".parse().unwrap(),
            end: "20:00".parse().unwrap(),
        },
    };
    db.engine(CatchUp::Latest, 10)
        .with_reminders(reminders)
        .sweep(renewal - TimeDelta::days(3))
        .await
        .unwrap();
    let reminded = db
        .scalar("SELECT promised_total_minor FROM subscriptions")
        .await;
    assert!(reminded > 0);

    let mut dearer = (*db.catalog).clone();
    dearer.shipping.flat_fee =
        Money::from_minor(dearer.shipping.flat_fee.minor() + 500, Currency::Usd);
    subsave::engine::Engine::new(
        db.store.clone(),
        std::sync::Arc::new(dearer),
        CatchUp::Latest,
        10,
    )
    .sweep(renewal)
    .await
    .unwrap();
    assert_eq!(db.scalar("SELECT total_minor FROM orders").await, reminded);
    assert_eq!(
        db.scalar("SELECT amount_minor FROM order_lines WHERE kind = 'price_promise'")
            .await,
        -500
    );
    assert_eq!(
        db.scalar("SELECT price_promise_discount_minor FROM finance_orders")
            .await,
        500
    );
    assert_eq!(
        db.scalar("SELECT CAST(SUM(amount_minor) AS BIGINT) FROM order_lines")
            .await,
        reminded,
        "the lines still add up to the total"
    );
}

fn metadata_patch(pairs: &[(&str, Option<&str>)]) -> MetadataPatch {
    MetadataPatch::parse(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
            .collect(),
    )
    .unwrap()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// An external id is unique among customers and among subscriptions (the database refuses a
/// second one, named as the external id's conflict, not the email's), but a customer and a
/// subscription may share one; metadata merges under the row's lock and keeps its bounds;
/// `updated_at` moves with each change, and a customer inserted without one starts at its
/// creation.
async fn external_ids_are_unique_per_kind_and_metadata_merges(backend: Backend) {
    let db = TestDb::new(backend).await;
    let now = at("2026-01-01T12:00:00Z");
    let new_customer = |email: &str, external: &str| subsave::core::model::NewCustomer {
        email: email.parse().unwrap(),
        name: "Ada".into(),
        time_zone: "UTC".parse().unwrap(),
        locale: "en-US".into(),
        tax_region: None,
        external_id: Some(ExternalId::parse(external).unwrap()),
        metadata: Metadata::default()
            .merged(&metadata_patch(&[("tier", Some("gold"))]))
            .unwrap(),
    };
    let ada = db
        .store
        .add_customer(&new_customer("ada@example.com", "shop-1"), now)
        .await
        .unwrap();
    assert_eq!(ada.external_id.as_ref().unwrap().as_str(), "shop-1");
    assert_eq!(ada.metadata.as_map(), &map(&[("tier", "gold")]));
    assert_eq!(ada.updated_at, now);
    assert_eq!(db.store.customer(ada.id).await.unwrap(), Some(ada.clone()));
    match db
        .store
        .add_customer(&new_customer("bob@example.com", "shop-1"), now)
        .await
    {
        Err(StoreError::Conflict(message)) => {
            assert!(message.contains("external_id \"shop-1\""), "{message}")
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let bob = db
        .store
        .add_customer(&new_customer("bob@example.com", "shop-2"), now)
        .await
        .unwrap();
    // A merge: one key set, one removed, one kept; then the external id taken by Ada.
    let later = now + TimeDelta::hours(1);
    let update = |external: Option<Option<&str>>, pairs: &[(&str, Option<&str>)]| {
        subsave::core::model::CustomerUpdate {
            storefront: MetadataUpdate {
                external_id: external.map(|e| e.map(|e| ExternalId::parse(e).unwrap())),
                metadata: metadata_patch(pairs),
            },
            ..Default::default()
        }
    };
    let bob = db
        .store
        .update_customer(
            bob.id,
            &update(None, &[("tier", None), ("note", Some("gift"))]),
            later,
        )
        .await
        .unwrap();
    assert_eq!(bob.metadata.as_map(), &map(&[("note", "gift")]));
    assert_eq!((bob.created_at, bob.updated_at), (now, later));
    match db
        .store
        .update_customer(bob.id, &update(Some(Some("shop-1")), &[]), later)
        .await
    {
        Err(StoreError::Conflict(message)) => assert!(message.contains("external_id"), "{message}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let cleared = db
        .store
        .update_customer(bob.id, &update(Some(None), &[]), later)
        .await
        .unwrap();
    assert_eq!(
        (cleared.external_id, cleared.metadata),
        (None, bob.metadata.clone())
    );
    // Fifty keys are the most a map holds, counted after the merge: refused, nothing changed.
    let fifty: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
    let pairs: Vec<(&str, Option<&str>)> = fifty.iter().map(|k| (k.as_str(), Some("v"))).collect();
    match db
        .store
        .update_customer(bob.id, &update(None, &pairs), later)
        .await
    {
        Err(StoreError::Refused(e)) => assert!(e.to_string().contains("51 keys"), "{e}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        db.store.customer(bob.id).await.unwrap().unwrap().metadata,
        bob.metadata
    );
    // Rows written without the new columns (an older fixture, a bulk load).
    db.execute(
        "INSERT INTO customers (email, name, time_zone, created_at) \
         VALUES ('raw@example.com', 'Raw', 'UTC', '2026-01-01T00:00:00Z')",
    )
    .await
    .unwrap();
    let raw = db
        .store
        .customer_by_email(&"raw@example.com".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (raw.updated_at, raw.external_id, raw.metadata.is_empty()),
        (raw.created_at, None, true)
    );

    // Subscriptions: unique among themselves, not against customers.
    let mut new = lifecycle::new_subscription(
        &db.catalog,
        &ada,
        "1-pack",
        1,
        None,
        Start::AfterCheckout,
        "09:00".parse().unwrap(),
        now,
    )
    .unwrap();
    new.external_id = Some(ExternalId::parse("shop-1").unwrap());
    let sub = db
        .store
        .create_subscription(&new, &db.catalog, &actor(), now)
        .await
        .unwrap();
    assert_eq!(sub.external_id.as_ref().unwrap().as_str(), "shop-1");
    match db
        .store
        .create_subscription(&new, &db.catalog, &actor(), now)
        .await
    {
        Err(StoreError::Conflict(message)) => {
            assert!(message.contains("another subscription"), "{message}")
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(db.scalar("SELECT COUNT(*) FROM subscriptions").await, 1);
    let changed = db
        .store
        .update_subscription_metadata(
            sub.id,
            &MetadataUpdate {
                external_id: Some(Some(ExternalId::parse("shop-sub-1").unwrap())),
                metadata: metadata_patch(&[("channel", Some("web"))]),
            },
            later,
        )
        .await
        .unwrap();
    assert_eq!(changed.external_id.as_ref().unwrap().as_str(), "shop-sub-1");
    assert_eq!(changed.metadata.as_map(), &map(&[("channel", "web")]));
    assert_eq!(changed.updated_at, later);
    // Nothing else of the subscription changed, and no event was written for it.
    assert_eq!(
        Subscription {
            external_id: sub.external_id.clone(),
            metadata: sub.metadata.clone(),
            updated_at: sub.updated_at,
            ..changed.clone()
        },
        sub
    );
    assert_eq!(db.store.events(sub.id).await.unwrap().len(), 1);
    assert!(matches!(
        db.store
            .update_subscription_metadata(9999, &MetadataUpdate::default(), later)
            .await,
        Err(StoreError::NotFound(_))
    ));
}

/// Lists by exact external id and by half-open `created`/`updated` ranges, paged by id.
async fn lists_filter_by_external_id_and_time_ranges(backend: Backend) {
    let db = TestDb::new(backend).await;
    let day = |d: u64| at("2026-01-01T00:00:00Z") + Days::new(d);
    let mut customers = Vec::new();
    for d in 0..5 {
        customers.push(
            db.customer(&format!("c{d}@example.com"), "UTC", None, day(d))
                .await,
        );
    }
    let mut subs = Vec::new();
    for c in &customers {
        subs.push(
            db.subscribe(c, "1-pack", Start::AfterCheckout, None, c.created_at)
                .await,
        );
    }
    // Customer 3 changes on day 10.
    db.store
        .update_customer(
            customers[3].id,
            &subsave::core::model::CustomerUpdate {
                name: Some("Changed".into()),
                ..Default::default()
            },
            day(10),
        )
        .await
        .unwrap();
    let range = |from: Option<u64>, before: Option<u64>| TimeRange {
        from: from.map(day),
        before: before.map(day),
    };
    let customer_ids = |filter: CustomerFilter| {
        let store = db.store.clone();
        async move {
            let mut ids = Vec::new();
            let mut after_id = None;
            loop {
                let page = store
                    .customers_where(&CustomerFilter {
                        after_id,
                        limit: 2,
                        ..filter.clone()
                    })
                    .await
                    .unwrap();
                if page.is_empty() {
                    return ids;
                }
                after_id = page.last().map(|c| c.id);
                ids.extend(page.iter().map(|c| c.id));
            }
        }
    };
    let ids_of =
        |indexes: &[usize]| -> Vec<i64> { indexes.iter().map(|&i| customers[i].id).collect() };
    assert_eq!(
        customer_ids(CustomerFilter {
            created: range(Some(1), Some(4)),
            ..Default::default()
        })
        .await,
        ids_of(&[1, 2, 3])
    );
    assert_eq!(
        customer_ids(CustomerFilter {
            created: range(Some(1), None),
            updated: range(None, Some(5)),
            ..Default::default()
        })
        .await,
        ids_of(&[1, 2, 4])
    );
    assert_eq!(
        customer_ids(CustomerFilter {
            updated: range(Some(10), None),
            ..Default::default()
        })
        .await,
        ids_of(&[3])
    );
    assert_eq!(
        customer_ids(CustomerFilter {
            created: range(Some(3), Some(3)),
            ..Default::default()
        })
        .await,
        Vec::<i64>::new()
    );
    let tagged = db
        .store
        .update_subscription_metadata(
            subs[2].id,
            &MetadataUpdate {
                external_id: Some(Some(ExternalId::parse("sub-two").unwrap())),
                metadata: MetadataPatch::default(),
            },
            day(20),
        )
        .await
        .unwrap();
    let sub_ids = |filter: SubscriptionFilter| {
        let store = db.store.clone();
        async move {
            store
                .subscriptions(&SubscriptionFilter {
                    limit: 100,
                    ..filter
                })
                .await
                .unwrap()
                .iter()
                .map(|s| s.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        sub_ids(SubscriptionFilter {
            external_id: Some(ExternalId::parse("sub-two").unwrap()),
            ..Default::default()
        })
        .await,
        vec![tagged.id]
    );
    assert_eq!(
        sub_ids(SubscriptionFilter {
            external_id: Some(ExternalId::parse("nobody").unwrap()),
            ..Default::default()
        })
        .await,
        Vec::<i64>::new()
    );
    assert_eq!(
        sub_ids(SubscriptionFilter {
            created: range(Some(0), Some(2)),
            ..Default::default()
        })
        .await,
        vec![subs[0].id, subs[1].id]
    );
    assert_eq!(
        sub_ids(SubscriptionFilter {
            updated: range(Some(20), Some(21)),
            ..Default::default()
        })
        .await,
        vec![tagged.id]
    );
}
