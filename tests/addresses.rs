//! Ship-to addresses on both backends, through the application layer as every door uses it:
//! one default per customer (the database's rule too), bad input refused naming its field and
//! changing nothing, and a subscription that ships only to its own customer's address (refused
//! by the rules, and by the database when the rules are bypassed). The ship-to country picks
//! the market: Germany pays the EU market's EUR prices, the US the default market's USD, and a
//! move between them is a price change confirmed first that releases a reminded total.

mod common;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use common::{Backend, TestDb, at, berlin};
use subsave::app::addresses::{self, AddressInput};
use subsave::app::idempotency::Commit;
use subsave::app::subscriptions::{self, Action, ChangeInput, SubscriptionInput};
use subsave::app::views::{AddressView, ChangeView};
use subsave::app::{App, AppError, CustomerRef, PageRequest};
use subsave::clock::FixedClock;
use subsave::core::address::RawAddress;
use subsave::core::lifecycle::Start;
use subsave::core::model::CouponDuration;
use subsave::core::model::{Actor, Customer, MessageKind, Order};
use subsave::core::money::{Currency, Money};
use subsave::core::pricing::CouponValue;
use subsave::core::renewal::CatchUp;
use subsave::store::MessageFilter;

on_both_backends!(
    a_customer_has_one_default_address,
    bad_addresses_are_refused_naming_the_field_and_change_nothing,
    a_subscription_ships_only_to_its_own_customers_address,
    orders_are_taxed_where_they_ship_and_keep_the_address_they_shipped_to,
    a_new_address_that_changes_the_price_is_shown_before_it_is_confirmed,
    a_reminded_total_stays_the_ceiling_when_the_address_changes,
    a_move_to_another_market_releases_the_reminded_total,
    an_amount_coupon_is_redeemed_only_in_its_currency,
);

fn now() -> DateTime<Utc> {
    at("2026-12-01T10:00:00Z")
}

fn app(db: &TestDb) -> App {
    App::new(
        db.store.clone(),
        Arc::new(subsave::config::load(None).unwrap()),
        Arc::new(FixedClock(now())),
    )
}

fn san_francisco() -> RawAddress {
    RawAddress {
        name: "Ada Lovelace".into(),
        line1: "1 Market St".into(),
        line2: Some("Suite 200".into()),
        city: "San Francisco".into(),
        subdivision: Some("CA".into()),
        postal_code: Some("94105-1420".into()),
        country: "us".into(),
        phone: Some("+1 415 555 0100".into()),
    }
}

async fn add(
    app: &App,
    customer: &Customer,
    address: RawAddress,
    make_default: bool,
) -> Result<AddressView, AppError> {
    addresses::add(
        app,
        AddressInput {
            customer: CustomerRef::Id(customer.id),
            address,
            make_default,
        },
        Commit::Plain,
    )
    .await
}

async fn listed(app: &App, customer: &Customer) -> Vec<(i64, bool)> {
    addresses::list(app, &CustomerRef::Id(customer.id), PageRequest::first(100))
        .await
        .unwrap()
        .data
        .iter()
        .map(|a| (a.id, a.is_default))
        .collect()
}

async fn a_customer_has_one_default_address(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = app(&db);
    let ada = db.customer("ada@example.com", "UTC", None, now()).await;
    let home = add(&app, &ada, berlin(), false).await.unwrap();
    assert!(home.is_default, "the first address is the default");
    assert_eq!(
        (
            home.address.postal_code.as_deref(),
            home.address.country.as_str()
        ),
        (Some("10117"), "DE")
    );
    let office = add(&app, &ada, san_francisco(), false).await.unwrap();
    assert_eq!(
        (
            office.is_default,
            office.address.subdivision.as_deref(),
            office.address.country.as_str()
        ),
        (false, Some("US-CA"), "US")
    );
    assert_eq!(
        listed(&app, &ada).await,
        [(home.id, true), (office.id, false)]
    );
    addresses::set_default(&app, &CustomerRef::Id(ada.id), office.id)
        .await
        .unwrap();
    assert_eq!(
        listed(&app, &ada).await,
        [(home.id, false), (office.id, true)]
    );
    // Added as the default, it takes over.
    let third = add(&app, &ada, berlin(), true).await.unwrap();
    assert_eq!(
        listed(&app, &ada).await,
        [(home.id, false), (office.id, false), (third.id, true)]
    );

    // The database keeps one default per customer whatever the code does.
    let yes = match backend {
        Backend::Postgres => "true",
        Backend::Sqlite => "1",
    };
    let second_default = db
        .execute(&format!(
            "UPDATE addresses SET is_default = {yes} WHERE id = {}",
            home.id
        ))
        .await;
    assert!(second_default.is_err(), "{second_default:?}");

    // Another customer's address cannot be made ada's default.
    let bob = db.customer("bob@example.com", "UTC", None, now()).await;
    let bobs = add(&app, &bob, berlin(), false).await.unwrap();
    let refused = addresses::set_default(&app, &CustomerRef::Id(ada.id), bobs.id).await;
    assert!(
        matches!(&refused, Err(AppError::NotFound(m)) if m.contains("has no address")),
        "{refused:?}"
    );
    assert_eq!(
        listed(&app, &ada).await,
        [(home.id, false), (office.id, false), (third.id, true)],
        "the refused change left the default alone"
    );
}

async fn bad_addresses_are_refused_naming_the_field_and_change_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = app(&db);
    let ada = db.customer("ada@example.com", "UTC", None, now()).await;
    type Breakage = fn(&mut RawAddress);
    let cases: [(Breakage, &str, &str); 10] = [
        (
            |a| a.country = "XX".into(),
            "country",
            "not an ISO 3166-1 alpha-2 country code",
        ),
        (
            |a| {
                a.country = "GB".into();
                a.postal_code = Some("SW1A 1AA".into());
            },
            "country",
            "the shop does not ship to United Kingdom of Great Britain and Northern Ireland; it ships to DE, FR, US",
        ),
        (
            |a| a.subdivision = Some("ZZ".into()),
            "subdivision",
            "not an ISO 3166-2 subdivision of DE",
        ),
        (
            |a| a.postal_code = Some("1011".into()),
            "postal_code",
            "not a postal code of DE",
        ),
        (
            |a| a.line1 = "Unter den Linden ".repeat(600),
            "line1",
            "at most 100 characters",
        ),
        (
            |a| a.name = "Ada\r\nBcc: all@example.com".into(),
            "name",
            "control character U+000D",
        ),
        (
            |a| a.city = "Berlin\n".repeat(2),
            "city",
            "control character U+000A",
        ),
        (
            |a| a.line2 = Some("Hof \u{202E}2".into()),
            "line2",
            "bidirectional formatting character U+202E",
        ),
        (
            |a| a.phone = Some("+49 30 \u{2066}1234".into()),
            "phone",
            "bidirectional",
        ),
        (|a| a.city = String::new(), "city", "must not be empty"),
    ];
    for (break_it, field, says) in cases {
        let mut address = berlin();
        break_it(&mut address);
        match add(&app, &ada, address, false).await {
            Err(AppError::InvalidInput {
                field: Some(named),
                message,
            }) => {
                assert_eq!(named, field, "{message}");
                assert!(message.contains(says), "{field}: {message}");
            }
            other => panic!("{field}: expected a refusal naming it, got {other:?}"),
        }
    }
    assert_eq!(db.scalar("SELECT COUNT(*) FROM addresses").await, 0);
}

async fn a_subscription_ships_only_to_its_own_customers_address(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = app(&db);
    let ada = db.customer("ada@example.com", "UTC", None, now()).await;
    let bob = db.customer("bob@example.com", "UTC", None, now()).await;
    let home = add(&app, &ada, berlin(), false).await.unwrap();
    let office = add(&app, &ada, san_francisco(), false).await.unwrap();
    let bobs = add(&app, &bob, berlin(), false).await.unwrap();
    let create = |ship_to: Option<i64>| SubscriptionInput {
        customer: CustomerRef::Id(ada.id),
        plan: "3-pack".into(),
        quantity: 1,
        interval: None,
        start: Start::AfterCheckout,
        coupon: None,
        consent_channel: None,
        terms_version: None,
        ship_to,
        external_id: None,
        metadata: Default::default(),
    };
    let actor = Actor::cli();
    let refused = subscriptions::create(&app, &actor, create(Some(bobs.id)), Commit::Plain).await;
    assert!(
        matches!(&refused, Err(AppError::InvalidInput { message, .. })
            if message.contains(&format!("address {} is not one of customer {}'s addresses", bobs.id, ada.id))),
        "{refused:?}"
    );
    assert_eq!(db.scalar("SELECT COUNT(*) FROM subscriptions").await, 0);

    // Without --ship-to: the customer's default address.
    let sub = subscriptions::create(&app, &actor, create(None), Commit::Plain)
        .await
        .unwrap();
    assert_eq!(sub.shipping_address.as_ref().map(|a| a.id), Some(home.id));

    let change = |ship_to: i64| {
        Action::Change(ChangeInput {
            ship_to: Some(ship_to),
            ..Default::default()
        })
    };
    let refused =
        subscriptions::perform(&app, &actor, sub.id, &change(bobs.id), Commit::Plain).await;
    assert!(
        matches!(&refused, Err(AppError::InvalidInput { message, .. }) if message.contains("is not one of customer")),
        "{refused:?}"
    );
    let missing = subscriptions::perform(&app, &actor, sub.id, &change(9999), Commit::Plain).await;
    assert!(
        matches!(&missing, Err(AppError::NotFound(m)) if m.contains("no address 9999")),
        "{missing:?}"
    );
    let moved = subscriptions::perform(&app, &actor, sub.id, &change(office.id), Commit::Plain)
        .await
        .unwrap();
    assert_eq!(
        moved
            .shipping_address
            .as_ref()
            .and_then(|a| a.address.subdivision.as_deref()),
        Some("US-CA")
    );
    let again =
        subscriptions::perform(&app, &actor, sub.id, &change(office.id), Commit::Plain).await;
    assert!(
        matches!(&again, Err(AppError::InvalidInput { message, .. }) if message.contains("nothing changes")),
        "{again:?}"
    );
    let events = db
        .scalar(&format!(
            "SELECT COUNT(*) FROM subscription_events WHERE subscription_id = {} AND kind = 'change'",
            sub.id
        ))
        .await;
    assert_eq!(events, 1, "one change recorded, none for the refusals");

    // The database refuses another customer's address even when the rules are bypassed.
    let bypass = db
        .execute(&format!(
            "UPDATE subscriptions SET address_id = {} WHERE id = {}",
            bobs.id, sub.id
        ))
        .await;
    assert!(bypass.is_err(), "{bypass:?}");
    let stored = subscriptions::find(&app, sub.id).await.unwrap();
    assert_eq!(stored.ship_to.map(|a| a.id), Some(office.id));
}

async fn order(db: &TestDb, number: &str) -> Order {
    db.store.order(number).await.unwrap().unwrap()
}

fn shipped_to(order: &Order) -> (Option<&str>, Option<&str>, Option<&str>) {
    let ship_to = order.ship_to.as_ref();
    (
        order.tax_region.as_deref(),
        ship_to.map(|a| a.country.code()),
        ship_to.and_then(|a| a.subdivision.map(|s| s.code())),
    )
}

async fn orders_are_taxed_where_they_ship_and_keep_the_address_they_shipped_to(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = app(&db);
    // Their customers' regions say otherwise: the address wins.
    let ada = db
        .customer("ada@example.com", "Europe/Berlin", Some("US-TX"), now())
        .await;
    let carl = db
        .customer("carl@example.com", "America/Los_Angeles", None, now())
        .await;
    add(&app, &ada, berlin(), false).await.unwrap();
    add(&app, &carl, san_francisco(), false).await.unwrap();
    let subscribe = |customer: &Customer| SubscriptionInput {
        customer: CustomerRef::Id(customer.id),
        plan: "3-pack".into(),
        quantity: 1,
        interval: None,
        start: Start::Now,
        coupon: None,
        consent_channel: None,
        terms_version: None,
        ship_to: None,
        external_id: None,
        metadata: Default::default(),
    };
    let actor = Actor::cli();
    let ada_sub = subscriptions::create(&app, &actor, subscribe(&ada), Commit::Plain)
        .await
        .unwrap();
    let carl_sub = subscriptions::create(&app, &actor, subscribe(&carl), Commit::Plain)
        .await
        .unwrap();
    // The customer's page offers the plans at the prices of the market it ships in.
    for (sub, price) in [
        (&ada_sub, Money::from_minor(4139, Currency::Eur)),
        (&carl_sub, Money::from_minor(4499, Currency::Usd)),
    ] {
        let page = subsave::app::self_service::page(&app, sub.id)
            .await
            .unwrap();
        assert_eq!(
            (
                page.plans[0].plan.as_str(),
                page.plans[0].subscribe_and_save_price
            ),
            ("1-pack", price)
        );
    }
    let engine = db.engine(CatchUp::Latest, 100);
    assert_eq!(engine.sweep(now()).await.unwrap().orders, 2);

    // The same plan in two markets. Germany, the EU market: 123.99 EUR less 15 % is 105.39,
    // shipped free (from 80.00), 19 % VAT contained (16.83). California, the default market:
    // 134.99 USD less 15 % is 114.74, shipped free, 7.25 % added on the goods (8.32).
    let ada_first = order(&db, &format!("BB-{:07}-000", ada_sub.id)).await;
    assert_eq!(shipped_to(&ada_first), (Some("DE"), Some("DE"), None));
    let eur = |minor| Money::from_minor(minor, Currency::Eur);
    assert_eq!(
        (
            ada_first.total,
            ada_first.tax_included,
            ada_first.tax_included_rate.map(|r| r.get())
        ),
        (eur(10539), Some(eur(1683)), Some(1900))
    );
    assert_eq!(ada_first.lines[0].label, "3-pack × 1 at 123.99");
    assert!(
        ada_first
            .lines
            .iter()
            .all(|l| l.amount.currency() == Currency::Eur),
        "{:?}",
        ada_first.lines
    );
    let carl_first = order(&db, &format!("BB-{:07}-000", carl_sub.id)).await;
    assert_eq!(
        shipped_to(&carl_first),
        (Some("US-CA"), Some("US"), Some("US-CA"))
    );
    let amounts: Vec<i64> = carl_first.lines.iter().map(|l| l.amount.minor()).collect();
    assert_eq!(amounts, [13499, -2025, 0, 832]);
    assert_eq!(
        (carl_first.total, carl_first.tax_included),
        (Money::from_minor(12306, Currency::Usd), None)
    );
    let street = carl_first.ship_to.as_ref().map(|a| a.line1.as_str());
    assert_eq!(street, Some("1 Market St"));

    // The confirmation and the finance view carry where it ships.
    let confirmations = db
        .store
        .messages(&MessageFilter {
            kind: Some(MessageKind::OrderConfirmation),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let confirmation = confirmations
        .iter()
        .find(|m| m.order_id == Some(ada_first.id))
        .unwrap();
    let payload = confirmation.payload.json().unwrap();
    assert_eq!(
        payload["order"]["ship_to"]["postal_code"], "10117",
        "the confirmation shows the address: {payload}"
    );
    let by_destination = db
        .scalar(
            "SELECT COUNT(*) FROM finance_orders WHERE (ship_country = 'DE' AND ship_subdivision IS NULL \
             AND tax_region = 'DE') OR (ship_country = 'US' AND ship_subdivision = 'US-CA' AND tax_region = 'US-CA')",
        )
        .await;
    assert_eq!(by_destination, 2);

    // Ada moves to California: her next order is taxed and addressed there; the one written
    // stays as it was.
    let moved = add(&app, &ada, san_francisco(), false).await.unwrap();
    subscriptions::perform(
        &app,
        &actor,
        ada_sub.id,
        &Action::Change(ChangeInput {
            ship_to: Some(moved.id),
            ..Default::default()
        }),
        Commit::Plain,
    )
    .await
    .unwrap();
    let later = now() + chrono::TimeDelta::days(91);
    assert_eq!(engine.sweep(later).await.unwrap().orders, 2);
    let ada_second = order(&db, &format!("BB-{:07}-001", ada_sub.id)).await;
    assert_eq!(
        shipped_to(&ada_second),
        (Some("US-CA"), Some("US"), Some("US-CA"))
    );
    assert_eq!(
        (ada_second.total, ada_second.tax_included),
        (Money::from_minor(12306, Currency::Usd), None),
        "the next order is in the new market's currency"
    );
    assert_eq!(
        order(&db, &ada_first.order_number).await,
        ada_first,
        "the order already written keeps its tax and its address"
    );
    let carl_second = order(&db, &format!("BB-{:07}-001", carl_sub.id)).await;
    assert_eq!(shipped_to(&carl_second), shipped_to(&carl_first));
    // Payments carry their order's currency.
    for number in [&ada_first.order_number, &ada_second.order_number] {
        let currency = db
            .scalar(&format!(
                "SELECT COUNT(*) FROM payments p JOIN orders o ON o.id = p.order_id \
                 WHERE o.order_number = '{number}' AND p.currency = o.currency"
            ))
            .await;
        assert_eq!(currency, 1, "{number}");
    }

    // The revenue report has one row per currency, never a sum across them.
    let revenue = subsave::app::finance::revenue(
        &app,
        now().date_naive(),
        later.date_naive(),
        subsave::finance::RevenueBy::Plan,
    )
    .await
    .unwrap();
    let mut rows: Vec<(String, i64, i64)> = revenue
        .iter()
        .map(|((_, currency), totals)| (currency.clone(), totals.orders as i64, totals.net_minor))
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            ("EUR".to_owned(), 1, 10539),
            ("USD".to_owned(), 3, 3 * 12306)
        ]
    );
    let (code, out, err) = cli(
        &db,
        &[
            "report",
            "revenue",
            "--from",
            "2026-12-01",
            "--to",
            "2027-03-31",
        ],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("EUR") && out.contains("USD"), "{out}");

    // The snapshot cannot be rewritten.
    let rewrite = db
        .execute(&format!(
            "UPDATE orders SET ship_country = 'FR' WHERE id = {}",
            ada_first.id
        ))
        .await;
    assert!(rewrite.is_err(), "{rewrite:?}");
}

/// `subsave ARGS` on `db`: exit code, standard output and standard error.
fn cli(db: &TestDb, args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_subsave"))
        .args(args)
        .env("SUBSAVE_DATABASE__URL", &db.url)
        .env("SUBSAVE_NOW", "2026-12-01T10:00:00Z")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A 3-pack for `customer`, shipped to their default address, first billed by the storefront.
fn three_pack(customer: &Customer) -> SubscriptionInput {
    SubscriptionInput {
        customer: CustomerRef::Id(customer.id),
        plan: "3-pack".into(),
        quantity: 1,
        interval: None,
        start: Start::AfterCheckout,
        coupon: None,
        consent_channel: None,
        terms_version: None,
        ship_to: None,
        external_id: None,
        metadata: Default::default(),
    }
}

fn munich() -> RawAddress {
    RawAddress {
        name: "Ada Lovelace".into(),
        line1: "Marienplatz 8".into(),
        city: "München".into(),
        postal_code: Some("80331".into()),
        country: "DE".into(),
        ..Default::default()
    }
}

async fn ships_to(db: &TestDb, sub: i64) -> i64 {
    db.scalar(&format!(
        "SELECT address_id FROM subscriptions WHERE id = {sub}"
    ))
    .await
}

/// A German subscription moving to California changes market (EUR to USD, 7.25 % added instead
/// of 19 % contained): the CLI prints the new quote and changes nothing without --yes; the
/// API's preview says the same; a move within Germany keeps the price and needs no
/// confirmation.
async fn a_new_address_that_changes_the_price_is_shown_before_it_is_confirmed(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = app(&db);
    let ada = db
        .customer("ada@example.com", "Europe/Berlin", None, now())
        .await;
    let home = add(&app, &ada, berlin(), true).await.unwrap();
    let office = add(&app, &ada, san_francisco(), false).await.unwrap();
    let second_home = add(&app, &ada, munich(), false).await.unwrap();
    let sub = subscriptions::create(&app, &Actor::cli(), three_pack(&ada), Commit::Plain)
        .await
        .unwrap();
    let to_office = ChangeInput {
        ship_to: Some(office.id),
        ..Default::default()
    };
    let preview = subscriptions::preview_change(&app, sub.id, &to_office)
        .await
        .unwrap();
    assert!(preview.price_changes && !preview.applied);
    assert_eq!(
        preview.quote_before.as_ref().unwrap()["total"],
        serde_json::json!({ "amount_minor": 10539, "currency": "EUR" })
    );
    assert_eq!(
        preview.quote.as_ref().unwrap()["total"],
        serde_json::json!({ "amount_minor": 12306, "currency": "USD" })
    );
    assert_eq!(
        preview.quote.as_ref().unwrap()["ship_to"]["subdivision"],
        "US-CA"
    );
    assert_eq!(
        preview.subscription.shipping_address.as_ref().map(|a| a.id),
        Some(office.id)
    );
    assert_eq!(
        ships_to(&db, sub.id).await,
        home.id,
        "a preview changes nothing"
    );

    let id = sub.id.to_string();
    let office_id = office.id.to_string();
    let (code, out, err) = cli(&db, &["subs", "change", &id, "--ship-to", &office_id]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        out.contains("123.06 USD") && out.contains("105.39 EUR"),
        "{out}"
    );
    assert!(
        out.contains("California sales tax 7.25%"),
        "the new quote, line by line: {out}"
    );
    assert!(
        err.contains("--yes") && err.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(ships_to(&db, sub.id).await, home.id);
    let changes = format!(
        "SELECT COUNT(*) FROM subscription_events WHERE subscription_id = {id} AND kind = 'change'"
    );
    assert_eq!(db.scalar(&changes).await, 0);

    let (code, out, err) = cli(
        &db,
        &["subs", "change", &id, "--ship-to", &office_id, "--yes"],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("123.06 USD"), "{out}");
    assert_eq!(ships_to(&db, sub.id).await, office.id);
    assert_eq!(db.scalar(&changes).await, 1);

    // Back to Germany, to another address at the same price: no confirmation needed.
    let (code, _, err) = cli(
        &db,
        &[
            "subs",
            "change",
            &id,
            "--ship-to",
            &home.id.to_string(),
            "--yes",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = cli(
        &db,
        &[
            "subs",
            "change",
            &id,
            "--ship-to",
            &second_home.id.to_string(),
        ],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(ships_to(&db, sub.id).await, second_home.id);
    assert!(!out.contains("as it will be billed"), "{out}");
}

fn portland() -> RawAddress {
    RawAddress {
        name: "Ada Lovelace".into(),
        line1: "1 SW Main St".into(),
        city: "Portland".into(),
        subdivision: Some("OR".into()),
        postal_code: Some("97204".into()),
        country: "US".into(),
        ..Default::default()
    }
}

/// Ada's 3-pack shipping from `from`, reminded three days before its renewal (the engine's
/// sweep at that instant): the subscription and its renewal instant.
async fn reminded(
    db: &TestDb,
    app: &App,
    from: RawAddress,
) -> (subsave::app::views::SubscriptionView, DateTime<Utc>) {
    let ada = db
        .customer("ada@example.com", "Europe/Berlin", None, now())
        .await;
    add(app, &ada, from, true).await.unwrap();
    let sub = subscriptions::create(app, &Actor::cli(), three_pack(&ada), Commit::Plain)
        .await
        .unwrap();
    let renewal = sub.next_renewal_at.unwrap();
    let reminders = subsave::config::ReminderSettings {
        lead_days: vec![3],
        window: subsave::core::schedule::DeliveryWindow {
            start: "00:00".parse().unwrap(),
            end: "23:59".parse().unwrap(),
        },
    };
    let reminded_at = renewal - chrono::TimeDelta::days(3);
    db.engine(CatchUp::Latest, 10)
        .with_reminders(reminders)
        .sweep(reminded_at)
        .await
        .unwrap();
    (sub, reminded_at)
}

/// An hour after the reminder, subscription `sub` is moved to address `to`: the preview, then
/// the change made.
async fn move_after_reminder(
    db: &TestDb,
    sub: i64,
    reminded_at: DateTime<Utc>,
    to: i64,
) -> (ChangeView, ChangeView) {
    let app = App::new(
        db.store.clone(),
        Arc::new(subsave::config::load(None).unwrap()),
        Arc::new(FixedClock(reminded_at + chrono::TimeDelta::hours(1))),
    );
    let change = ChangeInput {
        ship_to: Some(to),
        ..Default::default()
    };
    let preview = subscriptions::preview_change(&app, sub, &change)
        .await
        .unwrap();
    let changed = subscriptions::change_quoted(&app, &Actor::cli(), sub, &change, Commit::Plain)
        .await
        .unwrap();
    (preview, changed)
}

/// A renewal already reminded keeps its reminded total as a ceiling when the address changes
/// to a dearer destination in the same market (Oregon, no sales tax, to California): the
/// preview shows that total, no confirmation is asked, and the renewal ships to the new
/// address at the reminded total (a `price_promise` line).
async fn a_reminded_total_stays_the_ceiling_when_the_address_changes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = app(&db);
    let (sub, reminded_at) = reminded(&db, &app, portland()).await;
    let ada = db.store.customer(sub.customer_id).await.unwrap().unwrap();
    let office = add(&app, &ada, san_francisco(), false).await.unwrap();
    let renewal = sub.next_renewal_at.unwrap();
    let reminded = db
        .scalar(&format!(
            "SELECT promised_total_minor FROM subscriptions WHERE id = {}",
            sub.id
        ))
        .await;
    assert_eq!(reminded, 11474);

    let (preview, changed) = move_after_reminder(&db, sub.id, reminded_at, office.id).await;
    assert_eq!(
        preview.quote.as_ref().unwrap()["total"]["amount_minor"],
        11474,
        "the reminded total is the ceiling: {:?}",
        preview.quote
    );
    assert!(!preview.price_changes);
    assert!(changed.applied && !changed.price_changes);
    db.engine(CatchUp::Latest, 10).sweep(renewal).await.unwrap();
    let number = format!("BB-{:07}-001", sub.id);
    let renewed = order(&db, &number).await;
    assert_eq!(
        renewed.total.minor(),
        reminded,
        "never more than the reminder said"
    );
    assert_eq!(shipped_to(&renewed).1, Some("US"));
    assert!(
        renewed.lines.iter().any(|l| l.kind == "price_promise"),
        "{:?}",
        renewed.lines
    );
}

/// A renewal already reminded in one market, moved to an address in another (Berlin, EUR, to
/// San Francisco, USD): the move is a price change shown before it is confirmed, it releases
/// the reminded total (a total in EUR is no ceiling of one in USD), and the renewal is billed
/// in USD at the Californian price with no `price_promise` line.
async fn a_move_to_another_market_releases_the_reminded_total(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = app(&db);
    let (sub, reminded_at) = reminded(&db, &app, berlin()).await;
    let promised = format!(
        "SELECT COALESCE(promised_total_minor, -1) FROM subscriptions WHERE id = {}",
        sub.id
    );
    assert_eq!(db.scalar(&promised).await, 10539, "reminded in EUR");
    let ada = db.store.customer(sub.customer_id).await.unwrap().unwrap();
    let office = add(&app, &ada, san_francisco(), false).await.unwrap();
    let (preview, changed) = move_after_reminder(&db, sub.id, reminded_at, office.id).await;
    assert!(preview.price_changes, "a move of market is a price change");
    assert_eq!(
        preview.quote.as_ref().unwrap()["total"],
        serde_json::json!({ "amount_minor": 12306, "currency": "USD" })
    );
    assert!(changed.applied && changed.price_changes);
    assert_eq!(db.scalar(&promised).await, -1, "the promise is released");
    db.engine(CatchUp::Latest, 10)
        .sweep(sub.next_renewal_at.unwrap())
        .await
        .unwrap();
    let renewed = order(&db, &format!("BB-{:07}-001", sub.id)).await;
    assert_eq!(renewed.total, Money::from_minor(12306, Currency::Usd));
    assert!(
        !renewed.lines.iter().any(|l| l.kind == "price_promise"),
        "{:?}",
        renewed.lines
    );
    assert!(
        renewed
            .lines
            .iter()
            .all(|l| l.amount.currency() == Currency::Usd)
    );
}

/// An amount coupon is in one currency and applies only to orders in it: a currency the
/// catalog does not price in is refused when the coupon is made; a USD coupon is refused to a
/// subscription billed in EUR (Berlin), a EUR one is redeemed there and takes 5.00 EUR off;
/// a refund's amount is read in the order's currency.
async fn an_amount_coupon_is_redeemed_only_in_its_currency(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = app(&db);
    let coupon = |code: &str, currency: Currency| subsave::app::coupons::CouponInput {
        code: code.into(),
        value: CouponValue::Amount(Money::from_minor(500, currency)),
        duration: CouponDuration::Once,
        plan: None,
        expires: None,
        max_redemptions: None,
    };
    let refused =
        subsave::app::coupons::create(&app, coupon("POUND5", Currency::Gbp), Commit::Plain)
            .await
            .unwrap_err()
            .to_string();
    assert!(
        refused.contains("the catalog prices in USD, EUR"),
        "{refused}"
    );
    subsave::app::coupons::create(&app, coupon("SAVE5", Currency::Usd), Commit::Plain)
        .await
        .unwrap();
    let euro =
        subsave::app::coupons::create(&app, coupon("SAVE5-EUR", Currency::Eur), Commit::Plain)
            .await
            .unwrap();
    assert_eq!(
        euro.value,
        CouponValue::Amount(Money::from_minor(500, Currency::Eur))
    );

    let ada = db
        .customer("ada@example.com", "Europe/Berlin", None, now())
        .await;
    add(&app, &ada, berlin(), true).await.unwrap();
    let with = |code: &str| SubscriptionInput {
        coupon: Some(code.into()),
        start: Start::Now,
        ..three_pack(&ada)
    };
    let refused = subscriptions::create(&app, &Actor::cli(), with("save5"), Commit::Plain)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("billed in EUR") && refused.contains("only in its own currency"),
        "{refused}"
    );
    let redemptions = "SELECT COUNT(*) FROM coupon_redemptions";
    assert_eq!(db.scalar(redemptions).await, 0, "a refusal redeems nothing");
    let sub = subscriptions::create(&app, &Actor::cli(), with("save5-eur"), Commit::Plain)
        .await
        .unwrap();
    assert_eq!(db.scalar(redemptions).await, 1);
    db.engine(CatchUp::Latest, 10).sweep(now()).await.unwrap();
    let first = order(&db, &format!("BB-{:07}-000", sub.id)).await;
    let coupon_line = first.lines.iter().find(|l| l.kind == "coupon").unwrap();
    assert_eq!(coupon_line.amount, Money::from_minor(-500, Currency::Eur));
    // 123.99 less 15 % (18.60) and 5.00: 100.39 EUR, shipped free.
    assert_eq!(first.total, Money::from_minor(10039, Currency::Eur));

    let (code, out, err) = cli(
        &db,
        &[
            "orders",
            "refund",
            &first.order_number,
            "--amount",
            "10.00",
            "--reason",
            "one pack arrived damaged",
            "--json",
        ],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let note: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        note["amount"],
        serde_json::json!({ "amount_minor": 1000, "currency": "EUR" })
    );
}
