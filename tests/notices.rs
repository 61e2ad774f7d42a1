//! The customer-rights notices on both backends: the consent recorded with a new subscription
//! (append-only), the annual notice once a year, and the price-change notice before the first
//! renewal at a higher total (or, too late for 7 days' notice, that renewal billed at the last
//! total). Driven through the engine at chosen "now"s, with a catalog whose price rises.

mod common;

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use common::{Backend, TestDb, at};
use subsave::app::subscriptions::{self, SubscriptionInput};
use subsave::app::{App, CustomerRef};
use subsave::clock::FixedClock;
use subsave::config::{DEFAULT_CATALOG, load_catalog_text};
use subsave::core::catalog::Catalog;
use subsave::core::lifecycle::Start;
use subsave::core::model::Actor;
use subsave::core::renewal::CatchUp;
use subsave::core::schedule::DeliveryWindow;
use subsave::engine::{Engine, Notices};

fn created() -> DateTime<Utc> {
    at("2026-01-05T15:00:00Z")
}

fn engine(db: &TestDb, catalog: Catalog) -> Engine {
    Engine::new(db.store.clone(), Arc::new(catalog), CatchUp::Latest, 100).with_notices(Notices {
        price_change_days: 14,
        window: DeliveryWindow {
            start: "09:00".parse().unwrap(),
            end: "20:00".parse().unwrap(),
        },
    })
}

/// The default catalog with the 1-pack at a higher price.
fn dearer() -> Catalog {
    load_catalog_text(&DEFAULT_CATALOG.replacen("price = \"49.99\"", "price = \"54.99\"", 1))
        .unwrap()
}

async fn count(db: &TestDb, kind: &str) -> i64 {
    db.scalar(&format!(
        "SELECT COUNT(*) FROM outbox WHERE kind = '{kind}'"
    ))
    .await
}

async fn consent_is_recorded_at_creation_and_never_changes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let customer = db.customer("ada@example.com", "UTC", None, created()).await;
    let mut settings = subsave::config::load(None).unwrap();
    settings.notices.terms_version = "2026-01".into();
    let app = App::new(
        db.store.clone(),
        Arc::new(settings),
        Arc::new(FixedClock(created())),
    );
    let sub = subscriptions::create(
        &app,
        &Actor::cli(),
        SubscriptionInput {
            customer: CustomerRef::Id(customer.id),
            plan: "1-pack".into(),
            quantity: 1,
            interval: None,
            start: Start::AfterCheckout,
            coupon: None,
            consent_channel: Some("phone".into()),
            terms_version: None,
            ship_to: None,
            external_id: None,
            metadata: Default::default(),
        },
    )
    .await
    .unwrap();
    let detail = subscriptions::show(&app, sub.id).await.unwrap();
    assert_eq!(detail.consents.len(), 1);
    let consent = &detail.consents[0];
    assert_eq!(
        (
            consent.given_at,
            consent.channel.as_str(),
            consent.terms_version.as_str(),
            consent.actor.as_str()
        ),
        (created(), "phone", "2026-01", "cli")
    );
    assert_eq!(
        detail.subscription.next_annual_notice_at,
        Some(at("2027-01-05T15:00:00Z"))
    );
    for statement in [
        "UPDATE consents SET channel = 'web'",
        "DELETE FROM consents",
    ] {
        assert!(db.execute(statement).await.is_err(), "{statement}");
    }
    // The welcome email shows what the first renewal charges.
    let welcome = db
        .store
        .messages(&subsave::store::MessageFilter {
            kind: Some(subsave::core::model::MessageKind::SubscriptionCreated),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(welcome.len(), 1);
    assert!(
        welcome[0].payload["quote"]["total"]["amount_minor"].as_i64() > Some(0),
        "{}",
        welcome[0].payload
    );
}

async fn the_annual_notice_comes_once_a_year(backend: Backend) {
    let db = TestDb::new(backend).await;
    let customer = db.customer("ada@example.com", "UTC", None, created()).await;
    let sub = db
        .subscribe(&customer, "1-pack", Start::AfterCheckout, None, created())
        .await;
    let engine = engine(&db, (*db.catalog).clone());
    engine.sweep(at("2027-01-05T14:59:00Z")).await.unwrap();
    assert_eq!(
        count(&db, "annual_notice").await,
        0,
        "not before the year is up"
    );
    let report = engine.sweep(at("2027-01-05T15:00:00Z")).await.unwrap();
    assert_eq!(report.notices, 1);
    engine.sweep(at("2027-01-06T15:00:00Z")).await.unwrap();
    assert_eq!(count(&db, "annual_notice").await, 1, "once a year");
    let after = db.store.subscription(sub.id).await.unwrap().unwrap();
    assert_eq!(
        after.notices.annual_notice_at,
        Some(at("2028-01-05T15:00:00Z"))
    );
    engine.sweep(at("2028-01-05T15:00:00Z")).await.unwrap();
    assert_eq!(count(&db, "annual_notice").await, 2);
}

async fn a_price_rise_is_announced_in_time_or_waits_a_renewal(backend: Backend) {
    let db = TestDb::new(backend).await;
    let customer = db.customer("ada@example.com", "UTC", None, created()).await;
    // Renewals on Feb 1 and Mar 3 (30 days), 09:00 UTC.
    let first = NaiveDate::from_ymd_opt(2026, 2, 1).unwrap();
    let sub = db
        .subscribe(
            &customer,
            "1-pack",
            Start::FirstRenewalOn(first),
            None,
            created(),
        )
        .await;
    let late = db
        .subscribe(
            &db.customer("bob@example.com", "UTC", None, created()).await,
            "1-pack",
            Start::FirstRenewalOn(first),
            None,
            created(),
        )
        .await;
    let old = engine(&db, (*db.catalog).clone());
    old.sweep(at("2026-02-01T09:00:00Z")).await.unwrap();
    let billed = |id: i64, cycle: u32| {
        format!("SELECT total_minor FROM orders WHERE subscription_id = {id} AND cycle = {cycle}")
    };
    let old_total = db.scalar(&billed(sub.id, 1)).await;
    assert_eq!(
        count(&db, "price_change").await,
        0,
        "the first order sets the baseline"
    );

    // The price rises before the next renewal (Mar 3 09:00). 14 days ahead: a notice to Ada.
    let new = engine(&db, dearer());
    let second = at("2026-03-03T09:00:00Z");
    // Bob's check is the one that runs late: put his first check after Ada's, 6 days ahead.
    db.execute(&format!(
        "UPDATE subscriptions SET price_checked_cycle = 2 WHERE id = {}",
        late.id
    ))
    .await
    .unwrap();
    let report = new.sweep(second - TimeDelta::days(14)).await.unwrap();
    assert_eq!(report.notices, 1);
    let notice = db
        .scalar(&format!(
            "SELECT COUNT(*) FROM outbox WHERE kind = 'price_change' AND subscription_id = {} AND cycle = 2",
            sub.id
        ))
        .await;
    assert_eq!(notice, 1);
    new.sweep(second - TimeDelta::days(10)).await.unwrap();
    assert_eq!(count(&db, "price_change").await, 1, "one notice per rise");

    db.execute(&format!(
        "UPDATE subscriptions SET price_checked_cycle = NULL WHERE id = {}",
        late.id
    ))
    .await
    .unwrap();
    new.sweep(second - TimeDelta::days(6)).await.unwrap();
    assert_eq!(
        count(&db, "price_change").await,
        1,
        "too late for Bob: no notice"
    );
    assert_eq!(
        db.scalar(&format!(
            "SELECT COUNT(*) FROM subscription_events WHERE subscription_id = {} AND kind = 'price_held'",
            late.id
        ))
        .await,
        1
    );

    new.sweep(second).await.unwrap();
    let ada = db.scalar(&billed(sub.id, 2)).await;
    let bob = db.scalar(&billed(late.id, 2)).await;
    assert!(
        ada > old_total,
        "Ada was told: she pays the new price ({ada} > {old_total})"
    );
    assert_eq!(
        bob, old_total,
        "Bob was not told in time: the last total holds"
    );
}

on_both_backends!(
    consent_is_recorded_at_creation_and_never_changes,
    the_annual_notice_comes_once_a_year,
    a_price_rise_is_announced_in_time_or_waits_a_renewal,
);
