//! The customer portal on both backends: a cancelled subscription restarted with `subs
//! restart` (the real binary) within `web.restart_days`, and refused (exit 2, nothing changed)
//! when it is not cancelled or the window has ended; a subscription's page listing its orders
//! and next renewals, and each order's receipt agreeing with `orders show --json` to the cent.

mod common;

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use common::pages::{KEY_NEW, Pages, hidden, settings, signer};
use common::{Backend, TestDb, at, subsave_stdout};
use subsave::app::idempotency::Commit;
use subsave::app::{Actor, App, payments};
use subsave::clock::FixedClock;
use subsave::core::locale::{format_money, format_percent};
use subsave::core::money::{BasisPoints, Money};
use subsave::core::renewal::CatchUp;

fn now() -> DateTime<Utc> {
    at("2026-12-02T12:00:00Z")
}

/// `subsave --now AT ARGS` on `db`, expected to be refused: its standard error.
fn refused(db: &TestDb, at: DateTime<Utc>, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_subsave"))
        .arg("--now")
        .arg(at.to_rfc3339())
        .args(args)
        .env("SUBSAVE_DATABASE__URL", &db.url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn subs_restart_works_within_the_window_only(backend: Backend) {
    let db = TestDb::new(backend).await;
    let [sub, late] = db.subscribed_to(["3-pack", "1-pack"], now()).await;
    let (id, late_id) = (sub.id.to_string(), late.id.to_string());
    let stderr = refused(&db, now(), &["subs", "restart", &id]);
    assert!(stderr.contains("it is active, not cancelled"), "{stderr}");
    let at_now = now().to_rfc3339();
    for id in [&id, &late_id] {
        subsave_stdout(
            &db,
            &["--now", &at_now, "subs", "cancel", id, "--reason", "moving"],
            &[],
        );
    }

    let later = now() + TimeDelta::days(90);
    let out = subsave_stdout(
        &db,
        &["--now", &later.to_rfc3339(), "subs", "restart", &id],
        &[],
    );
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.starts_with(&format!(
            "subscription {id}: active, next renewal 2027-03-02T13:00"
        )),
        "{out}"
    );
    let after = db.store.subscription(sub.id).await.unwrap().unwrap();
    assert_eq!(after.next_renewal_at, Some(later), "due at once");
    let consents = |id: i64, actor: &str| {
        format!(
            "SELECT COUNT(*) FROM consents WHERE subscription_id = {id} AND actor = '{actor}' AND channel = '{actor}'"
        )
    };
    assert_eq!(db.scalar(&consents(sub.id, "cli")).await, 1);
    let stderr = refused(&db, later, &["subs", "restart", &id]);
    assert!(stderr.contains("it is active, not cancelled"), "{stderr}");

    let past = now() + TimeDelta::days(90) + TimeDelta::seconds(1);
    let before = db.store.subscription(late.id).await.unwrap().unwrap();
    let stderr = refused(&db, past, &["subs", "restart", &late_id]);
    assert!(
        stderr.contains("it was cancelled on 2026-12-02, and it could be restarted until 2027-03-02 (90 days); subscribe again from the storefront"),
        "{stderr}"
    );
    assert_eq!(
        db.store.subscription(late.id).await.unwrap().unwrap(),
        before
    );
    assert_eq!(db.scalar(&consents(late.id, "cli")).await, 0);
}

/// The page lists the subscription's order (with its payment state and refund) and the next
/// three renewals; the order's receipt shows each line, the total, the tax with its rate, what
/// was paid and refunded, all equal to `orders show --json` and the credit notes to the cent;
/// another subscription's order through this link gets the very page an unknown order does.
async fn receipts_agree_with_the_orders_to_the_cent(backend: Backend) {
    let db = TestDb::new(backend).await;
    let [sub, other] = db.subscribed_to(["3-pack", "1-pack"], now()).await;
    let due = sub
        .next_renewal_at
        .unwrap()
        .max(other.next_renewal_at.unwrap());
    db.engine(CatchUp::Latest, 10).sweep(due).await.unwrap();
    let number = format!("BB-{:07}-001", sub.id);
    let app = App::new(
        db.store.clone(),
        Arc::new(settings(&db, KEY_NEW)),
        Arc::new(FixedClock(due)),
    );
    let refund = Money::from_minor(500, db.catalog.currency);
    payments::refund(
        &app,
        &number,
        Some(refund),
        "a dented tin",
        &Actor::cli(),
        Commit::Plain,
    )
    .await
    .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&subsave_stdout(
        &db,
        &["orders", "show", &number, "--json"],
        &[],
    ))
    .unwrap();
    let money = |value: &serde_json::Value| {
        format_money(
            Money::from_minor(value["amount_minor"].as_i64().unwrap(), db.catalog.currency),
            "en-US",
        )
    };

    let pages = Pages::start(&db, settings(&db, KEY_NEW), due).await;
    let token = signer(KEY_NEW).sign(sub.id, due + TimeDelta::days(30));
    let (status, _, page) = pages.get(&format!("/s/{token}")).await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("href=\"/s/{token}/orders/{number}\"")),
        "{page}"
    );
    assert!(
        page.contains(&format!("{number} · partly refunded · $5.00 refunded")),
        "{page}"
    );
    let after = db.store.subscription(sub.id).await.unwrap().unwrap();
    let upcoming = subsave::core::renewal::upcoming(
        &after,
        &db.store.customer(after.customer_id).await.unwrap().unwrap(),
        &db.catalog,
        3,
    );
    assert_eq!(upcoming.len(), 3);
    let renewals = &page[page.find("Next renewals").expect("the next renewals")..];
    for order in &upcoming {
        let date = subsave::core::locale::format_date(
            order
                .scheduled_for
                .with_timezone(&after.time_zone)
                .date_naive(),
            "en-US",
        );
        let row = format!(
            "<td>{date}</td><td class=\"amount\">{}</td>",
            format_money(order.total, "en-US")
        );
        assert!(renewals.contains(&row), "{row}:\n{renewals}");
    }

    let (status, _, receipt) = pages.get(&format!("/s/{token}/orders/{number}")).await;
    assert_eq!(status, 200, "{receipt}");
    assert!(!receipt.contains("<script"), "a receipt loads no script");
    for line in json["lines"].as_array().unwrap() {
        let row = format!(
            "<td>{}</td><td class=\"amount\">{}</td>",
            line["label"].as_str().unwrap().replace('&', "&amp;"),
            money(&line["amount"])
        );
        assert!(receipt.contains(&row), "{row}:\n{receipt}");
    }
    assert!(
        receipt.contains(&format!(
            "<td class=\"amount\" data-total>{}</td>",
            money(&json["total"])
        )),
        "{receipt}"
    );
    let vat = format!(
        "Including tax at {}</td><td class=\"amount muted\">{}</td>",
        format_percent(BasisPoints::new(1900).unwrap(), "en-US"),
        money(&json["tax_included"])
    );
    assert!(receipt.contains(&vat), "{vat}:\n{receipt}");
    assert!(
        receipt.contains(&format!(
            "<td class=\"amount\" data-paid>{}</td>",
            money(&json["total"])
        )),
        "the storefront collected the total:\n{receipt}"
    );
    let (_, notes) = payments::of_order(&app, &number).await.unwrap();
    assert_eq!(notes.len(), 1);
    assert!(
        receipt.contains(&format!(
            "<td class=\"amount\" data-refunded>{}</td>",
            format_money(notes[0].amount, "en-US")
        )),
        "{receipt}"
    );
    assert!(
        receipt.contains(&format!("-{}", format_money(refund, "en-US"))),
        "{receipt}"
    );

    let others = format!("BB-{:07}-001", other.id);
    let (status, _, theirs) = pages.get(&format!("/s/{token}/orders/{others}")).await;
    let (unknown_status, _, unknown) = pages
        .get(&format!("/s/{token}/orders/BB-9999999-001"))
        .await;
    assert_eq!((status, unknown_status), (404, 404));
    assert_eq!(
        theirs, unknown,
        "another subscription's order looks unknown"
    );
    assert!(
        !theirs.contains(&others) && !theirs.contains("Receipt"),
        "{theirs}"
    );
}

/// The page repeats the total the next renewal's reminder announced, the most it charges,
/// only while that promise is in the currency the renewal is billed in: a promise kept in
/// another currency (a country the catalog moved to another market) caps nothing and is not
/// shown; one written before markets (no currency) is in the catalog's.
async fn the_page_repeats_a_reminded_total_only_in_its_currency(backend: Backend) {
    let db = TestDb::new(backend).await;
    let [sub] = db.subscribed_to(["3-pack"], now()).await;
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let token = signer(KEY_NEW).sign(sub.id, now() + TimeDelta::days(30));
    let promise = |currency: &str| {
        format!(
            "UPDATE subscriptions SET promised_cycle = next_cycle, promised_price_minor = 9000, \
             promised_total_minor = 9999, promise_currency = {currency}"
        )
    };
    for (currency, shown) in [("'USD'", true), ("'EUR'", false), ("NULL", true)] {
        db.execute(&promise(currency)).await.unwrap();
        let (status, _, page) = pages.get(&format!("/s/{token}")).await;
        assert_eq!(status, 200);
        assert_eq!(
            page.contains("this renewal costs no more than $99.99."),
            shown,
            "a promise in {currency}: {page}"
        );
    }
}

/// A German customer's page and receipt are German, as the emails are: `lang="de"`, German
/// text, money with a decimal comma and the symbol after it, German dates; back to English
/// once the customer's locale is English.
async fn a_german_customers_pages_are_german(backend: Backend) {
    let db = TestDb::new(backend).await;
    let [sub] = db.subscribed_to(["3-pack"], now()).await;
    db.engine(CatchUp::Latest, 10)
        .sweep(sub.next_renewal_at.unwrap())
        .await
        .unwrap();
    db.execute("UPDATE customers SET locale = 'de-DE'")
        .await
        .unwrap();
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let token = signer(KEY_NEW).sign(sub.id, now() + TimeDelta::days(30));
    let (status, _, page) = pages.get(&format!("/s/{token}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("<html lang=\"de\">"), "{page}");
    assert!(
        page.contains("<h1>Ihr Abo</h1>") && page.contains("Nächste Lieferung überspringen"),
        "{page}"
    );
    assert!(page.contains("1 × 3er-Packung alle 90 Tage"), "{page}");
    let after = db.store.subscription(sub.id).await.unwrap().unwrap();
    let customer = db.store.customer(sub.customer_id).await.unwrap().unwrap();
    let quote = subsave::core::renewal::upcoming(&after, &customer, &db.catalog, 1);
    let total = format_money(quote[0].total, "de-DE");
    assert!(
        total.contains(',') && total.ends_with('$'),
        "German money: {total}"
    );
    assert!(
        page.contains(&format!("<td>Gesamt</td><td class=\"amount\">{total}</td>")),
        "{page}"
    );
    let date = subsave::core::locale::format_date(
        quote[0]
            .scheduled_for
            .with_timezone(&after.time_zone)
            .date_naive(),
        "de-DE",
    );
    assert!(
        date.contains(". ") && page.contains(&date),
        "German date {date}:\n{page}"
    );
    let number = format!("BB-{:07}-001", sub.id);
    let (status, _, receipt) = pages.get(&format!("/s/{token}/orders/{number}")).await;
    assert_eq!(status, 200);
    assert!(
        receipt.contains("<html lang=\"de\">") && receipt.contains("<h1>Beleg</h1>"),
        "{receipt}"
    );
    let vat = format!(
        "inkl. {} MwSt.",
        format_percent(BasisPoints::new(1900).unwrap(), "de-DE")
    );
    assert!(
        receipt.contains(&vat) && receipt.contains("<td>Versand</td>"),
        "{receipt}"
    );

    // A done action's banner is German too.
    let (_, _, form) = pages.get(&format!("/s/{token}/skip")).await;
    let (csrf, seen) = (hidden(&form, "csrf"), hidden(&form, "seen"));
    let fields = [("csrf", csrf.as_str()), ("seen", seen.as_str())];
    let (status, headers, _) = pages.post(&format!("/s/{token}/skip"), &fields).await;
    assert_eq!(status, 303);
    let (_, _, done) = pages.get(headers["location"].to_str().unwrap()).await;
    assert!(
        done.contains("Erledigt: Die nächste Lieferung wird übersprungen. Wir haben Ihnen eine Bestätigung geschickt."),
        "{done}"
    );

    db.execute("UPDATE customers SET locale = 'en-US'")
        .await
        .unwrap();
    let (_, _, page) = pages.get(&format!("/s/{token}")).await;
    assert!(
        page.contains("<html lang=\"en\">") && page.contains("<h1>Your subscription</h1>"),
        "{page}"
    );
}

on_both_backends!(
    a_german_customers_pages_are_german,
    the_page_repeats_a_reminded_total_only_in_its_currency,
    subs_restart_works_within_the_window_only,
    receipts_agree_with_the_orders_to_the_cent,
);
