//! A customer's personal data on both backends: everything held about them exported as JSON,
//! and its erasure, which forgets the person (name, email, street lines, phone: in the
//! customer, the addresses, the orders' ship-to snapshots and the outbox) and keeps the books:
//! `report revenue`, `report payments` and the finance export identical to the cent.

mod common;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use common::{Backend, TestDb, at, subsave_stdout};
use subsave::app::addresses::{self, AddressInput};
use subsave::app::idempotency::Commit;
use subsave::app::subscriptions::{self, Action, SubscriptionInput};
use subsave::app::{App, AppError, CustomerRef, privacy, self_service};
use subsave::clock::FixedClock;
use subsave::core::address::RawAddress;
use subsave::core::lifecycle::Start;
use subsave::core::model::{Actor, Customer};
use subsave::core::renewal::CatchUp;

on_both_backends!(
    an_erasure_forgets_the_person_and_keeps_the_books_to_the_cent,
    a_customer_with_a_running_subscription_is_not_erased,
);

fn now() -> DateTime<Utc> {
    at("2026-12-01T10:00:00Z")
}

fn app_at(db: &TestDb, at: DateTime<Utc>) -> App {
    App::new(
        db.store.clone(),
        Arc::new(subsave::config::load(None).unwrap()),
        Arc::new(FixedClock(at)),
    )
}

fn berlin(name: &str) -> RawAddress {
    RawAddress {
        name: name.into(),
        line1: "Unter den Linden 1".into(),
        line2: Some("Hinterhaus".into()),
        city: "Berlin".into(),
        postal_code: Some("10117".into()),
        country: "DE".into(),
        phone: Some("+49 30 1234567".into()),
        ..Default::default()
    }
}

fn san_francisco(name: &str) -> RawAddress {
    RawAddress {
        name: name.into(),
        line1: "1 Market St".into(),
        city: "San Francisco".into(),
        subdivision: Some("CA".into()),
        postal_code: Some("94105".into()),
        country: "US".into(),
        ..Default::default()
    }
}

/// A 3-pack for customer `id`, shipped to their default address, billed from now, with a
/// storefront's note that names the person (erased with them).
fn three_pack(id: i64) -> SubscriptionInput {
    SubscriptionInput {
        customer: CustomerRef::Id(id),
        plan: "3-pack".into(),
        quantity: 1,
        interval: None,
        start: Start::Now,
        coupon: None,
        consent_channel: None,
        terms_version: None,
        ship_to: None,
        external_id: None,
        metadata: subsave::core::metadata::MetadataPatch::parse(
            [("gift_note".to_owned(), Some("from Ada Lovelace".to_owned()))].into(),
        )
        .unwrap(),
    }
}

async fn subscribed(app: &App, db: &TestDb, email: &str, address: RawAddress) -> (Customer, i64) {
    let customer = db.customer(email, "Europe/Berlin", None, now()).await;
    addresses::add(
        app,
        AddressInput {
            customer: CustomerRef::Id(customer.id),
            address,
            make_default: true,
        },
        Commit::Plain,
    )
    .await
    .unwrap();
    let sub = subscriptions::create(app, &Actor::cli(), three_pack(customer.id), Commit::Plain)
        .await
        .unwrap();
    (customer, sub.id)
}

/// What finance reads, as the binary prints it: revenue by month and by region, the payments
/// reconciliation, and the finance export without its email column (the one personal field
/// it has).
fn books(db: &TestDb) -> Vec<String> {
    let period = ["--from", "2026-11-01", "--to", "2027-03-31"];
    let run = |args: &[&str]| {
        String::from_utf8(subsave_stdout(db, &[args, &period[..]].concat(), &[])).unwrap()
    };
    let (header, rows) = common::csv_rows(run(&["orders", "export", "--format", "csv"]).as_bytes());
    let email = header.iter().position(|h| h == "customer_email").unwrap();
    let export: Vec<String> = rows
        .iter()
        .map(|row| {
            let mut row = row.clone();
            row.remove(email);
            row.join(",")
        })
        .collect();
    vec![
        run(&["report", "revenue", "--json"]),
        run(&["report", "revenue", "--by", "region", "--json"]),
        run(&["report", "revenue", "--format", "csv"]),
        run(&["report", "payments", "--json"]),
        export.join("\n"),
    ]
}

async fn an_erasure_forgets_the_person_and_keeps_the_books_to_the_cent(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = app_at(&db, now());
    let (ada, ada_sub) = subscribed(&app, &db, "ada@example.com", berlin("Ada Lovelace")).await;
    let (_, bob_sub) = subscribed(&app, &db, "bob@example.com", san_francisco("Bob Bobson")).await;
    let engine = db.engine(CatchUp::Latest, 100);
    assert_eq!(engine.sweep(now()).await.unwrap().orders, 2);
    // A second renewal each, one interval (91 days) later.
    let later = now() + chrono::TimeDelta::days(91);
    assert_eq!(engine.sweep(later).await.unwrap().orders, 2);
    let app = app_at(&db, later);
    subscriptions::perform(
        &app,
        &Actor::cli(),
        ada_sub,
        &Action::Cancel {
            reason: "moving abroad".into(),
        },
        Commit::Plain,
    )
    .await
    .unwrap();

    subsave_stdout(
        &db,
        &[
            "payments",
            "set-method",
            "ada@example.com",
            "--customer-ref",
            "cus_ada",
            "--method-ref",
            "pm_ada",
        ],
        &[],
    );
    // Everything held about her, in one JSON document.
    let exported: serde_json::Value = serde_json::from_slice(&subsave_stdout(
        &db,
        &["customers", "export-data", "ada@example.com"],
        &[],
    ))
    .unwrap();
    assert_eq!(exported["customer"]["email"], "ada@example.com");
    assert_eq!(exported["erasure"], serde_json::Value::Null);
    assert_eq!(
        (
            &exported["payment_customer_ref"],
            &exported["payment_method_ref"]
        ),
        (&serde_json::json!("cus_ada"), &serde_json::json!("pm_ada"))
    );
    assert_eq!(exported["addresses"][0]["line1"], "Unter den Linden 1");
    let subs = exported["subscriptions"].as_array().unwrap();
    assert_eq!(subs.len(), 1);
    let sub = &subs[0];
    assert_eq!(sub["subscription"]["id"], ada_sub);
    let orders = sub["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 2);
    assert_eq!(orders[0]["ship_to"]["name"], "Ada Lovelace");
    assert_eq!(orders[0]["fulfillment"]["status"], "unfulfilled");
    assert!(!orders[0]["lines"].as_array().unwrap().is_empty());
    assert_eq!(sub["payments"].as_array().unwrap().len(), 2);
    assert!(sub["credit_notes"].as_array().unwrap().is_empty());
    assert_eq!(sub["consents"].as_array().unwrap().len(), 1);
    let kinds: Vec<&str> = sub["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"created") && kinds.contains(&"cancel"),
        "{kinds:?}"
    );
    assert!(sub["messages"].as_array().unwrap().len() >= 3);
    assert!(
        !exported.to_string().contains("bob@example.com")
            && !exported.to_string().contains("Bobson"),
        "nothing of another customer"
    );
    // Her cancellation email is still queued: the erasure suppresses it.
    let pending_to_her = format!(
        "SELECT COUNT(*) FROM outbox WHERE kind <> 'webhook' AND status = 'pending' \
         AND subscription_id = {ada_sub}"
    );
    assert!(db.scalar(&pending_to_her).await >= 1);

    let before = books(&db);
    let consents = db.scalar("SELECT COUNT(*) FROM consents").await;
    let events = db.scalar("SELECT COUNT(*) FROM subscription_events").await;

    // Without --yes, nothing happens.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_subsave"))
        .args(["customers", "erase", "ada@example.com"])
        .env("SUBSAVE_DATABASE__URL", &db.url)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes"));
    assert_eq!(db.scalar("SELECT COUNT(*) FROM erasures").await, 0);

    let erased: serde_json::Value = serde_json::from_slice(&subsave_stdout(
        &db,
        &["customers", "erase", &ada.id.to_string(), "--yes", "--json"],
        &[],
    ))
    .unwrap();
    assert_eq!(erased["customer_id"], ada.id);
    assert_eq!(erased["actor"], "cli");
    assert_eq!(erased["addresses"], 1);
    assert_eq!(erased["orders"], 2);
    assert!(erased["suppressed"].as_u64().unwrap() >= 1, "{erased}");

    // The books are the same to the cent.
    assert_eq!(books(&db), before);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM consents").await, consents);
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM subscription_events").await,
        events
    );

    // The person is gone: from the customer, the address, the orders and the outbox.
    let id = ada.id;
    for (what, sql) in [
        (
            "customer",
            format!(
                "SELECT COUNT(*) FROM customers WHERE id = {id} AND name = '[erased]' AND email = 'erased-{id}@erased.invalid'"
            ),
        ),
        (
            "address",
            format!(
                "SELECT COUNT(*) FROM addresses WHERE customer_id = {id} AND name = '[erased]' AND line1 = '[erased]' AND line2 IS NULL AND phone IS NULL AND city = 'Berlin' AND postal_code = '10117' AND country = 'DE'"
            ),
        ),
        (
            "orders",
            format!(
                "SELECT COUNT(*) FROM orders WHERE customer_id = {id} AND ship_name = '[erased]' AND ship_line1 = '[erased]' AND ship_line2 IS NULL AND ship_phone IS NULL AND ship_country = 'DE' AND tax_region = 'DE'"
            ),
        ),
    ] {
        let expected = if what == "orders" { 2 } else { 1 };
        assert_eq!(db.scalar(&sql).await, expected, "{what}");
    }
    for trace in [
        "ada@example.com",
        "Lovelace",
        "Unter den Linden",
        "Hinterhaus",
        "1234567",
    ] {
        let found = db
            .scalar(&format!(
                "SELECT COUNT(*) FROM outbox WHERE recipient LIKE '%{trace}%' OR CAST(payload AS TEXT) LIKE '%{trace}%'"
            ))
            .await;
        assert_eq!(found, 0, "{trace} is still in the outbox");
    }
    assert_eq!(
        db.scalar(&pending_to_her).await,
        0,
        "her unsent email is suppressed"
    );
    // Bob keeps his.
    assert!(
        db.scalar("SELECT COUNT(*) FROM outbox WHERE CAST(payload AS TEXT) LIKE '%Bobson%'")
            .await
            > 0
    );
    // The orders stay immutable but for that: an amount cannot be changed, even now.
    let rewrite = db
        .execute(&format!(
            "UPDATE orders SET total_minor = 1 WHERE customer_id = {id}"
        ))
        .await;
    assert!(rewrite.is_err(), "{rewrite:?}");

    // Her links open nothing; she gets nothing new; she is not erased twice.
    let page = self_service::page(&app, ada_sub).await;
    assert!(matches!(page, Err(AppError::NotFound(_))), "{page:?}");
    assert!(self_service::page(&app, bob_sub).await.is_ok());
    let again = privacy::erase(&app, &Actor::cli(), &CustomerRef::Id(id), Commit::Plain).await;
    assert!(
        matches!(&again, Err(AppError::InvalidState(m)) if m.contains("already erased")),
        "{again:?}"
    );
    let new_sub = subscriptions::create(&app, &Actor::cli(), three_pack(id), Commit::Plain).await;
    assert!(
        matches!(&new_sub, Err(AppError::InvalidState(m)) if m.contains("erased")),
        "{new_sub:?}"
    );
    let restart = subscriptions::restart(&app, &Actor::cli(), ada_sub, None, Commit::Plain).await;
    assert!(
        matches!(&restart, Err(AppError::InvalidState(m)) if m.contains("erased")),
        "{restart:?}"
    );
    let address = addresses::add(
        &app,
        AddressInput {
            customer: CustomerRef::Id(id),
            address: berlin("Ada Again"),
            make_default: false,
        },
        Commit::Plain,
    )
    .await;
    assert!(
        matches!(&address, Err(AppError::InvalidState(_))),
        "{address:?}"
    );
    // The database refuses it too, when the rules are bypassed.
    let bypass = db
        .execute(&format!(
            "INSERT INTO addresses (customer_id, name, line1, city, country, postal_code, is_default, created_at) \
             VALUES ({id}, 'Ada Again', '2 Unter den Linden', 'Berlin', 'DE', '10117', false, '2027-03-02T10:00:00Z')"
        ))
        .await;
    assert!(
        bypass.as_ref().is_err_and(|e| e.contains("erased")),
        "{bypass:?}"
    );
    assert_eq!(
        db.scalar(&format!(
            "SELECT COUNT(*) FROM addresses WHERE customer_id = {id}"
        ))
        .await,
        1
    );
    assert_eq!(
        db.scalar(&format!(
            "SELECT COUNT(*) FROM subscriptions WHERE customer_id = {id}"
        ))
        .await,
        1
    );
    // The export says she was erased, and holds nothing of her.
    let after = privacy::export(&app, &CustomerRef::Id(id)).await.unwrap();
    assert!(after.erasure.is_some());
    let text = serde_json::to_string(&after).unwrap();
    assert!(
        !text.contains("Lovelace") && !text.contains("ada@example.com"),
        "{text}"
    );
}

async fn a_customer_with_a_running_subscription_is_not_erased(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = app_at(&db, now());
    let (bob, sub) = subscribed(&app, &db, "bob@example.com", san_francisco("Bob Bobson")).await;
    let refused =
        privacy::erase(&app, &Actor::cli(), &CustomerRef::Id(bob.id), Commit::Plain).await;
    assert!(
        matches!(&refused, Err(AppError::InvalidState(m))
            if m.contains(&format!("subscription {sub} is not cancelled")) && m.contains("subs cancel")),
        "{refused:?}"
    );
    assert_eq!(db.scalar("SELECT COUNT(*) FROM erasures").await, 0);
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM customers WHERE name = 'Customer bob@example.com'")
            .await,
        1
    );
    let missing = privacy::erase(&app, &Actor::cli(), &CustomerRef::Id(9999), Commit::Plain).await;
    assert!(matches!(missing, Err(AppError::NotFound(_))));
}
