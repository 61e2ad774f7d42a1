//! The customer-rights notices on both backends: the consent recorded with a new subscription
//! (append-only), the annual notice once a year, and the price-change notice before the first
//! renewal at a higher total (or, too late for 7 days' notice, that renewal billed at the last
//! total). Driven through the engine at chosen "now"s, with a catalog whose price rises. A
//! reminded total and a last total keep their currency when the catalog moves a country to
//! another market.

mod common;

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use common::{Backend, TestDb, at};
use subsave::app::idempotency::Commit;
use subsave::app::subscriptions::{self, SubscriptionInput};
use subsave::app::{App, CustomerRef};
use subsave::clock::FixedClock;
use subsave::config::{DEFAULT_CATALOG, load_catalog_text};
use subsave::core::catalog::Catalog;
use subsave::core::lifecycle::Start;
use subsave::core::model::{Actor, NewOrder};
use subsave::core::money::{Currency, Money};
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

/// The default catalog before markets reached Germany: the 1-pack at 19.99 USD (17.99 with
/// subscribe-and-save, 23.94 shipped), and Germany in the default (USD) market.
fn cheaper_in_usd_with_germany() -> Catalog {
    let text = DEFAULT_CATALOG
        .replacen("price = \"49.99\"", "price = \"19.99\"", 1)
        .replacen("countries = [\"DE\", \"FR\"]", "countries = [\"FR\"]", 1);
    assert_ne!(text, DEFAULT_CATALOG);
    load_catalog_text(&text).unwrap()
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
        Commit::Plain,
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
    let payload = welcome[0].payload.json().unwrap();
    assert!(
        payload["quote"]["total"]["amount_minor"].as_i64() > Some(0),
        "{payload}"
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

/// A 1-pack every 30 days for a new customer `email`, first renewed on 2026-02-`day` at 09:00
/// UTC, shipped to Berlin or to no address.
async fn one_pack(db: &TestDb, email: &str, day: u32, berlin: bool) -> i64 {
    let address = berlin.then(common::berlin);
    db.subscribe_shipped(
        &db.customer(email, "UTC", None, created()).await,
        "1-pack",
        Start::FirstRenewalOn(NaiveDate::from_ymd_opt(2026, 2, day).unwrap()),
        None,
        address,
        created(),
    )
    .await
    .id
}

/// While Germany is in the default market (USD, 23.94 a 1-pack shipped), four 1-packs are
/// billed: Ada (Berlin) and Bob (no address) renewing Mar 3 and reminded 3 days before, Cy
/// (Berlin) and Dee (no address) renewing Mar 6, not yet reminded. Bob's and Dee's currencies
/// are then cleared, as in a row written before markets existed. The catalog then moves
/// Germany to the EU market (EUR) and raises the USD price, and its price check runs 6 days
/// before Cy's renewal: too late for a notice, so a rise would be held at the last total.
/// Ada's USD promise and Cy's USD last total say nothing about a renewal in EUR: nothing is
/// held, and both are billed at the EUR price with no `price_promise` line. Bob and Dee are
/// as before markets: Bob's promise caps his renewal, Dee's rise is held at her last total (a
/// `price_promise` line).
async fn a_usd_promise_or_last_total_is_no_ceiling_after_a_move_to_the_eur_market(
    backend: Backend,
) {
    let mut db = TestDb::new(backend).await;
    db.catalog = Arc::new(cheaper_in_usd_with_germany());
    let ada = one_pack(&db, "ada@example.com", 1, true).await;
    let bob = one_pack(&db, "bob@example.com", 1, false).await;
    let cy = one_pack(&db, "cy@example.com", 4, true).await;
    let dee = one_pack(&db, "dee@example.com", 4, false).await;
    let reminders = subsave::config::ReminderSettings {
        lead_days: vec![3],
        window: DeliveryWindow {
            start: "00:00".parse().unwrap(),
            end: "23:59".parse().unwrap(),
        },
    };
    let before = db.engine(CatchUp::Latest, 10).with_reminders(reminders);
    before.sweep(at("2026-02-04T09:00:00Z")).await.unwrap();
    before.sweep(at("2026-02-28T09:00:00Z")).await.unwrap();
    let kept = |id: i64, promised: bool| {
        let promise = match promised {
            true => "promised_total_minor = 2394 AND promise_currency = 'USD'",
            false => "promised_total_minor IS NULL AND promise_currency IS NULL",
        };
        format!(
            "SELECT COUNT(*) FROM subscriptions WHERE id = {id} AND {promise} \
             AND last_total_minor = 2394 AND last_total_currency = 'USD'"
        )
    };
    for (id, promised) in [(ada, true), (bob, true), (cy, false), (dee, false)] {
        assert_eq!(db.scalar(&kept(id, promised)).await, 1, "{id}: kept in USD");
    }
    db.execute(&format!(
        "UPDATE subscriptions SET promise_currency = NULL, last_total_currency = NULL \
         WHERE id IN ({bob}, {dee})"
    ))
    .await
    .unwrap();

    let after = engine(&db, load_catalog_text(DEFAULT_CATALOG).unwrap());
    after.sweep(at("2026-02-28T09:00:00Z")).await.unwrap();
    let held = |id: i64| {
        format!(
            "SELECT COUNT(*) FROM subscription_events WHERE subscription_id = {id} AND kind = 'price_held'"
        )
    };
    assert_eq!(
        db.scalar(&held(cy)).await,
        0,
        "a USD total is no measure of EUR"
    );
    assert_eq!(
        db.scalar(&held(dee)).await,
        1,
        "a legacy total holds as before"
    );
    assert_eq!(count(&db, "price_change").await, 0);

    after.sweep(at("2026-03-06T09:00:00Z")).await.unwrap();
    for (id, total, promise_line) in [
        (ada, Money::from_minor(4834, Currency::Eur), false),
        (cy, Money::from_minor(4834, Currency::Eur), false),
        // Bob's promised plan price alone keeps his total; Dee's held total needs its line.
        (bob, Money::from_minor(2394, Currency::Usd), false),
        (dee, Money::from_minor(2394, Currency::Usd), true),
    ] {
        let order = db
            .store
            .order(&NewOrder::number_for(id, 2))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(order.total, total, "{id}: {:?}", order.lines);
        assert_eq!(
            order.lines.iter().any(|l| l.kind == "price_promise"),
            promise_line,
            "{id}: {:?}",
            order.lines
        );
        let currency = total.currency().code();
        let last = db
            .scalar(&format!(
                "SELECT COUNT(*) FROM subscriptions WHERE id = {id} AND promise_currency IS NULL \
                 AND last_total_currency = '{currency}'"
            ))
            .await;
        assert_eq!(last, 1, "{id}: the last total is written with its currency");
    }
}

on_both_backends!(
    consent_is_recorded_at_creation_and_never_changes,
    the_annual_notice_comes_once_a_year,
    a_price_rise_is_announced_in_time_or_waits_a_renewal,
    a_usd_promise_or_last_total_is_no_ceiling_after_a_move_to_the_eur_market,
);
