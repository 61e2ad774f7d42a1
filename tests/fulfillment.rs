//! Fulfillment on both backends, through the application layer: the unfulfilled orders as a
//! warehouse imports them, and a 3PL-style shipment file (a BOM, CRLF, quoted commas, its own
//! column names, bad rows, duplicates) recorded once per order however often it is imported,
//! with one "shipped" email, one event and one `order.fulfilled` webhook per order.

mod common;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use common::{Backend, TestDb, at};
use subsave::app::addresses::{self, AddressInput};
use subsave::app::fulfillments::{self, Columns};
use subsave::app::idempotency::Commit;
use subsave::app::subscriptions::{self, SubscriptionInput};
use subsave::app::{App, AppError, CustomerRef};
use subsave::clock::FixedClock;
use subsave::core::address::RawAddress;
use subsave::core::fulfillment::RawShipment;
use subsave::core::lifecycle::Start;
use subsave::core::model::Actor;
use subsave::core::renewal::CatchUp;
use subsave::core::webhooks::Endpoint;

on_both_backends!(
    a_shipment_file_is_recorded_once_and_its_bad_rows_listed,
    a_file_that_cannot_be_read_changes_nothing,
);

fn billed() -> DateTime<Utc> {
    at("2026-12-01T10:00:00Z")
}

fn app(db: &TestDb, now: DateTime<Utc>) -> App {
    let mut settings = subsave::config::load(None).unwrap();
    settings.webhooks.endpoints = vec![
        Endpoint::new(
            "warehouse",
            "http://127.0.0.1:9/hooks",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            &["order.fulfilled".into()],
        )
        .unwrap(),
    ];
    App::new(
        db.store.clone(),
        Arc::new(settings),
        Arc::new(FixedClock(now)),
    )
}

/// `n` orders billed at `billed()`, each shipping to Berlin; their numbers.
async fn orders(db: &TestDb, n: usize) -> Vec<String> {
    let app = app(db, billed());
    let ada = db.customer("ada@example.com", "UTC", None, billed()).await;
    addresses::add(
        &app,
        AddressInput {
            customer: CustomerRef::Id(ada.id),
            address: RawAddress {
                name: "Ada, Countess of Lovelace".into(),
                line1: "Unter den Linden 1".into(),
                city: "Berlin".into(),
                postal_code: Some("10117".into()),
                country: "DE".into(),
                ..Default::default()
            },
            make_default: false,
        },
        Commit::Plain,
    )
    .await
    .unwrap();
    let mut numbers = Vec::new();
    for _ in 0..n {
        let sub = subscriptions::create(
            &app,
            &Actor::cli(),
            SubscriptionInput {
                customer: CustomerRef::Id(ada.id),
                plan: "2-pack".into(),
                quantity: 2,
                interval: None,
                start: Start::Now,
                coupon: None,
                consent_channel: None,
                terms_version: None,
                ship_to: None,
                external_id: None,
                metadata: Default::default(),
            },
            Commit::Plain,
        )
        .await
        .unwrap();
        numbers.push(format!("BB-{:07}-000", sub.id));
    }
    let report = db
        .engine(CatchUp::Latest, 100)
        .sweep(billed())
        .await
        .unwrap();
    assert_eq!(report.orders, n);
    numbers
}

async fn unfulfilled(app: &App) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut sink = |row: Vec<String>| {
        rows.push(row);
        Ok(())
    };
    fulfillments::export_unfulfilled(app, &mut sink)
        .await
        .unwrap();
    rows
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    db.scalar(sql).await
}

async fn a_shipment_file_is_recorded_once_and_its_bad_rows_listed(backend: Backend) {
    let db = TestDb::new(backend).await;
    let numbers = orders(&db, 12).await;
    let app = app(&db, at("2026-12-03T08:00:00Z"));

    let before = unfulfilled(&app).await;
    assert_eq!(before.len(), 12);
    // Billed 46 hours ago: late at one day, not at two.
    let late = fulfillments::late(&app, 1).await.unwrap();
    assert_eq!(
        (late.late, late.oldest_billed_at, late.orders.len()),
        (12, Some(billed()), 12)
    );
    assert_eq!(
        (
            late.orders[0].days_waiting,
            late.orders[0].ship_country.as_deref()
        ),
        (1, Some("DE"))
    );
    assert_eq!(fulfillments::late(&app, 2).await.unwrap().late, 0);
    let column = |name: &str| {
        fulfillments::UNFULFILLED_COLUMNS
            .iter()
            .position(|c| *c == name)
            .unwrap()
    };
    // The export runs in order-id order, which a sweep's batch need not give in subscription
    // order: the first subscription's row is looked up by its number.
    let first = before
        .iter()
        .find(|row| row[column("order_number")] == numbers[0])
        .expect("the first subscription's order is in the export");
    assert_eq!(first[column("name")], "Ada, Countess of Lovelace");
    assert_eq!(
        (
            first[column("postal_code")].as_str(),
            first[column("country")].as_str()
        ),
        ("10117", "DE")
    );
    assert_eq!(
        (
            first[column("sku")].as_str(),
            first[column("plan")].as_str(),
            first[column("units")].as_str()
        ),
        ("BBP-30", "2-pack", "4")
    );

    // The last order is cancelled before it ships: it leaves the warehouse's list, and the
    // money the storefront collected is credited back.
    let (cancelled, note) = fulfillments::cancel(&app, &Actor::cli(), &numbers[11], "moved abroad")
        .await
        .unwrap();
    assert_eq!(
        (cancelled.status.as_str(), cancelled.reason.as_deref()),
        ("cancelled", Some("moved abroad"))
    );
    assert!(note.is_some_and(|n| n.order_number == numbers[11]));
    assert_eq!(unfulfilled(&app).await.len(), 11);
    let again = fulfillments::cancel(&app, &Actor::cli(), &numbers[11], "moved abroad")
        .await
        .unwrap();
    assert_eq!(
        (again.0, again.1),
        (cancelled, None),
        "cancelling twice changes nothing"
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM credit_notes").await, 1);

    // A 3PL's export: a BOM, CRLF, its own column names, quoted commas, 3 bad rows (an
    // unknown order, a tracking number with a space, bytes that are not UTF-8) and the
    // first two orders listed twice.
    let mut file: Vec<u8> =
        b"\xEF\xBB\xBFShip Date,Order #,Carrier,Tracking Number,Notes\r\n".to_vec();
    for (i, number) in numbers.iter().enumerate() {
        file.extend(
            format!("2026-12-02,{number},UPS,1Z{i:06},\"fragile, keep dry\"\r\n").as_bytes(),
        );
    }
    file.extend(b"2026-12-02,BB-9999999-000,UPS,1Z999999,\r\n");
    file.extend(format!("2026-12-02,{},UPS,1Z 000,\r\n", numbers[0]).as_bytes());
    file.extend(b"2026-12-02,BB-0000001-000,\xFF\xFEUPS,1Z000000,\r\n");
    for (i, number) in numbers.iter().enumerate().take(2) {
        file.extend(format!("2026-12-02,{number},ups,1Z{i:06},\"again, same\"\r\n").as_bytes());
    }
    let columns =
        Columns::parse("order=Order #,tracking=Tracking Number,shipped_at=Ship Date").unwrap();
    let report = fulfillments::import(&app, &Actor::cli(), &file[..], &columns)
        .await
        .unwrap();
    assert_eq!(
        (
            report.rows,
            report.applied,
            report.unchanged,
            report.refused_count
        ),
        (17, 11, 2, 4),
        "{report:?}"
    );
    let lines: Vec<u64> = report.refused.iter().map(|r| r.line).collect();
    assert_eq!(lines, [13, 14, 15, 16], "{report:?}");
    assert!(
        report.refused[0]
            .reason
            .contains("was cancelled before it shipped")
    );
    assert!(report.refused[1].reason.contains("no order BB-9999999-000"));
    assert!(report.refused[2].reason.contains("tracking_number"));
    assert!(report.refused[3].reason.contains("not UTF-8"));

    let shipped = "SELECT COUNT(*) FROM outbox WHERE kind = 'order_shipped'";
    let events = "SELECT COUNT(*) FROM subscription_events WHERE kind = 'shipped'";
    let hooks = "SELECT COUNT(*) FROM outbox WHERE kind = 'webhook' AND recipient = 'warehouse'";
    assert_eq!(count(&db, shipped).await, 11, "one email per shipped order");
    assert_eq!(count(&db, events).await, 11);
    assert_eq!(
        count(&db, hooks).await,
        11,
        "one order.fulfilled per shipped order"
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM fulfillments").await, 12);
    assert!(unfulfilled(&app).await.is_empty());
    assert_eq!(fulfillments::late(&app, 0).await.unwrap().late, 0);

    let shipment = fulfillments::of_order(&app, &numbers[3])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            shipment.carrier.as_deref(),
            shipment.tracking_number.as_deref(),
            shipment.tracking_url.as_deref()
        ),
        (
            Some("UPS"),
            Some("1Z000003"),
            Some("https://www.ups.com/track?tracknum=1Z000003")
        )
    );
    assert_eq!(shipment.shipped_at, Some(at("2026-12-02T00:00:00Z")));

    // The same file again changes nothing.
    let second = fulfillments::import(&app, &Actor::cli(), &file[..], &columns)
        .await
        .unwrap();
    assert_eq!(
        (second.applied, second.unchanged, second.refused_count),
        (0, 13, 4)
    );
    assert_eq!(count(&db, shipped).await, 11);
    assert_eq!(count(&db, hooks).await, 11);

    // Another tracking number for a shipped order is refused, naming the recorded one.
    let other = fulfillments::record(
        &app,
        &Actor::cli(),
        &numbers[0],
        &RawShipment {
            carrier: "DHL".into(),
            tracking_number: "JD0001".into(),
            ..Default::default()
        },
        Commit::Plain,
    )
    .await;
    assert!(
        matches!(&other, Err(AppError::Conflict(m)) if m.contains("already shipped with UPS 1Z000000")),
        "{other:?}"
    );
    assert_eq!(count(&db, shipped).await, 11);
    let shipped_order = fulfillments::cancel(&app, &Actor::cli(), &numbers[0], "too late").await;
    assert!(
        matches!(&shipped_order, Err(AppError::Conflict(m)) if m.contains("already shipped")),
        "{shipped_order:?}"
    );
}

async fn a_file_that_cannot_be_read_changes_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let numbers = orders(&db, 1).await;
    let app = app(&db, at("2026-12-03T08:00:00Z"));
    let row = format!("{},UPS,1Z1\n", numbers[0]);
    let cases: [(Vec<u8>, &str, &str); 3] = [
        (Vec::new(), "", "no header row"),
        (
            format!("order_number,carrier,tracking\n{row}").into_bytes(),
            "",
            "--columns tracking=tracking_number: no such column",
        ),
        (
            format!("\u{FEFF}Order,Carrier,Tracking\n{row}").into_bytes(),
            "order=Order,tracking=Trackingnummer",
            "--columns tracking=Trackingnummer",
        ),
    ];
    for (file, spec, says) in cases {
        let columns = Columns::parse(spec).unwrap();
        let refused = fulfillments::import(&app, &Actor::cli(), &file[..], &columns).await;
        assert!(
            matches!(&refused, Err(AppError::InvalidInput { message, .. }) if message.contains(says)),
            "{says}: {refused:?}"
        );
    }
    let not_utf8 = b"Ord\xFFer,carrier,tracking_number\n".to_vec();
    let refused =
        fulfillments::import(&app, &Actor::cli(), &not_utf8[..], &Columns::default()).await;
    assert!(
        matches!(&refused, Err(AppError::InvalidInput { message, .. }) if message.contains("not UTF-8")),
        "{refused:?}"
    );
    assert!(Columns::parse("warehouse=X").is_err());
    assert_eq!(count(&db, "SELECT COUNT(*) FROM fulfillments").await, 0);
    assert_eq!(unfulfilled(&app).await.len(), 1);
}
