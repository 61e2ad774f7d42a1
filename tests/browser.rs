//! A customer in a real browser (headless Chromium at 375 × 812 CSS pixels): opens the link in
//! a delivered reminder (.eml), skips the next delivery, then cancels from the page, counting
//! the interactions, and restarts it at 320 px; every page and every email's HTML part must fit
//! the width (no sideways scrolling). Screenshots are saved under `target/tmp/browser/` (CARGO_TARGET_TMPDIR).

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use common::browser::{Browser, Shots, emails, href};
use common::pages::{KEY_NEW, Pages, settings, signer};
use common::{Backend, TestDb, at};
use subsave::app::App;
use subsave::clock::FixedClock;
use subsave::config::MailTransport;
use subsave::core::lifecycle::Start;

const WIDTH: u32 = 375;
/// The narrowest phone the pages and emails must fit too.
const NARROWEST: u32 = 320;

fn now() -> DateTime<Utc> {
    // Three days before the renewal, inside the reminder window (09:00-20:00 UTC).
    at("2026-12-17T15:00:00Z")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_skips_then_cancels_from_a_reminder_on_a_phone() {
    let db = TestDb::new(Backend::Postgres).await;
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser");
    let _ = std::fs::remove_dir_all(&out);
    let mail_dir = out.join("mail");
    std::fs::create_dir_all(&mail_dir).unwrap();

    let customer = db
        .customer(
            "zoe@example.com",
            "UTC",
            Some("US-NY"),
            now() - TimeDelta::days(30),
        )
        .await;
    let sub = db
        .subscribe(
            &customer,
            "3-pack",
            Start::FirstRenewalOn(NaiveDate::from_ymd_opt(2026, 12, 20).unwrap()),
            None,
            now() - TimeDelta::days(30),
        )
        .await;

    let mut config = settings(&db, KEY_NEW);
    let pages = Pages::start(&db, config.clone(), now()).await;
    config.web.public_url = pages.base.clone();
    config.mail.transport = MailTransport::File;
    config.mail.file_dir = mail_dir.clone();
    let app = App::new(
        db.store.clone(),
        Arc::new(config),
        Arc::new(FixedClock(now())),
    );
    subsave::app::renewals::sweep(&app).await.unwrap();
    subsave::app::outbox::deliver(&app, &common::pages::links(app.settings()))
        .await
        .unwrap();
    let delivered = emails(&mail_dir);
    let (_, _, reminder) = delivered
        .iter()
        .find(|(_, subject, _)| subject.contains("renews on"))
        .expect("the reminder was delivered");

    let mut browser = Browser::start(WIDTH, 812).await;
    let mut shots = Shots::new(out.clone(), WIDTH, NARROWEST);

    // Skip: open the reminder's link, press the button.
    browser
        .open(&href(reminder, "Skip the next delivery"))
        .await;
    shots.check(&browser, "page-skip-form").await;
    browser.click("form[action$='/skip'] button").await;
    browser.wait_for_text("the next delivery is skipped").await;
    shots.check(&browser, "page-after-skip").await;
    assert_eq!(browser.interactions, 2, "skipping takes two interactions");
    let after = db.store.subscription(sub.id).await.unwrap().unwrap();
    assert_eq!(after.next_cycle, sub.next_cycle + 1);

    // Every other page, as a customer would see it (looked at, not counted).
    let token = signer(KEY_NEW).sign(sub.id, now() + TimeDelta::days(30));
    for (name, path) in [
        ("page-subscription", format!("/s/{token}")),
        ("page-move-form", format!("/s/{token}/move")),
        ("page-change-form", format!("/s/{token}/change")),
        (
            "page-change-preview",
            format!("/s/{token}/change?plan=6-pack&quantity=2&interval=180+days"),
        ),
        ("page-pause-form", format!("/s/{token}/pause")),
        ("page-renew-form", format!("/s/{token}/renew")),
        ("page-cancel-form", format!("/s/{token}/cancel")),
        ("page-ask-for-a-link", "/s".into()),
        ("page-bad-link", "/s/not-a-link".into()),
        (
            "page-expired-link",
            format!(
                "/s/{}",
                signer(KEY_NEW).sign(sub.id, now() - TimeDelta::days(1))
            ),
        ),
    ] {
        shots
            .look(&mut browser, name, format!("{}{path}", pages.base))
            .await;
    }

    // Every page fits the narrowest phone too (before the cancellation turns them away).
    shots.narrowest(|url| url.starts_with("http")).await;

    // Cancel from the reminder's main link: open, "Cancel the subscription", confirm.
    browser.interactions = 0;
    browser
        .open(&href(reminder, "Manage your subscription"))
        .await;
    browser.click("a[href$='/cancel']").await;
    browser.wait_for_text("Why are you leaving?").await;
    browser
        .type_into("#reason", "Too many capsules in the cupboard")
        .await;
    browser.click("form[action$='/cancel'] button.danger").await;
    assert_eq!(
        browser.interactions, 3,
        "cancelling from a reminder: open the link, cancel, confirm"
    );
    browser.wait_for_text("nothing more will be charged").await;
    assert!(
        browser
            .text()
            .await
            .contains("nothing more will be charged")
    );
    shots.check(&browser, "page-after-cancel").await;
    let after = db.store.subscription(sub.id).await.unwrap().unwrap();
    assert_eq!(after.status.to_string(), "cancelled");
    assert_eq!(
        after.cancel_reason.as_deref(),
        Some("Too many capsules in the cupboard")
    );

    // The confirmations went out, and every email fits the phone too.
    subsave::app::outbox::deliver(&app, &common::pages::links(app.settings()))
        .await
        .unwrap();
    let delivered = emails(&mail_dir);
    let subjects: Vec<&str> = delivered.iter().map(|(_, s, _)| s.as_str()).collect();
    assert!(
        subjects.contains(&"Your next delivery is skipped")
            && subjects.contains(&"Your subscription is cancelled"),
        "{subjects:?}"
    );
    let welcome = &delivered
        .iter()
        .find(|(_, s, _)| s == "Welcome: your subscription is set up")
        .unwrap()
        .2;
    assert!(
        welcome.contains("Your next renewal") && welcome.contains("Total"),
        "the welcome shows the first renewal's price:\n{welcome}"
    );
    let cancelled = &delivered
        .iter()
        .find(|(_, s, _)| s == "Your subscription is cancelled")
        .unwrap()
        .2;
    assert!(cancelled.contains("Nothing more will be shipped or charged"));
    assert!(
        db.scalar(&format!(
            "SELECT COUNT(*) FROM subscription_events WHERE subscription_id = {} AND actor = 'customer:link'",
            sub.id
        ))
        .await
            == 2
    );
    for (file, _, html) in &delivered {
        shots.look_email(&mut browser, file, html).await;
    }
    browser.quit().await;

    // Every email fits the narrowest phone too.
    shots.narrowest(|url| url.starts_with("file://")).await;

    // Restart the cancelled subscription at the narrowest width: open the link, press
    // "Restart" (the page shows the plan and today's price first).
    let mut narrow = Browser::start(NARROWEST, 640).await;
    narrow
        .open(&href(reminder, "Manage your subscription"))
        .await;
    narrow.wait_for_text("at today's price").await;
    shots
        .check_at(&narrow, &format!("page-restart-{NARROWEST}"), NARROWEST)
        .await;
    narrow.click("form[action$='/restart'] button").await;
    narrow.wait_for_text("your subscription is restarted").await;
    shots
        .check_at(
            &narrow,
            &format!("page-after-restart-{NARROWEST}"),
            NARROWEST,
        )
        .await;
    assert_eq!(narrow.interactions, 2, "restarting: open the link, restart");
    narrow.quit().await;
    let after = db.store.subscription(sub.id).await.unwrap().unwrap();
    assert_eq!(after.status.to_string(), "active");
    println!(
        "checked at {WIDTH} and {NARROWEST} px, screenshots in {}:\n  {}",
        out.display(),
        shots.taken.join("\n  ")
    );
}

/// Support in the console, in Chromium at 1280 and at 375 px: sign in with an admin key, find
/// a customer by an order number, refund part of that order with a reason (shown, then
/// confirmed), and see the credit note in the timeline and in `report payments`. Every console
/// page is looked at on the way (each must fit the width) and saved as a screenshot under
/// `target/tmp/console/` (CARGO_TARGET_TMPDIR).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_refunds_part_of_an_order_in_the_console_at_1280_and_375_px() {
    use common::console::Console;
    use subsave::core::model::Scope;
    use subsave::core::renewal::CatchUp;

    let db = TestDb::new(Backend::Postgres).await;
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    // Four monthly subscriptions from January, billed by the engine to March 5.
    let start = at("2026-01-05T09:00:00Z");
    let mut customers = Vec::new();
    for (i, plan) in ["1-pack", "2-pack", "3-pack", "6-pack"].iter().enumerate() {
        let c = db
            .customer(&format!("shop{i}@example.com"), "UTC", Some("US-NY"), start)
            .await;
        db.subscribe(&c, plan, Start::Now, None, start).await;
        customers.push(c);
    }
    let engine = db.engine(CatchUp::Latest, 10);
    for day in 0..60 {
        engine
            .sweep(start + TimeDelta::days(day) + TimeDelta::hours(1))
            .await
            .unwrap();
    }
    // One message failed, for the queues page.
    db.execute(
        "UPDATE outbox SET status = 'failed', attempts = 5, last_error = '550 5.1.1 mailbox unavailable' WHERE id = (SELECT MIN(id) FROM outbox)",
    )
    .await
    .unwrap();
    let now = at("2026-03-05T12:00:00Z");
    let console = Console::start(&db, settings(&db, KEY_NEW), now).await;
    let key = console.key("ops", Scope::Admin).await;
    let orders = |customer: i64| {
        let db = &db;
        async move {
            db.store
                .orders(&subsave::store::OrderFilter {
                    subscription_id: None,
                    customer_id: Some(customer),
                    limit: 10,
                    after_id: None,
                    lag_ok: false,
                    ..Default::default()
                })
                .await
                .unwrap()
        }
    };
    let mut taken = Vec::new();
    let mut refunded = 0;
    for (width, customer, amount) in [
        (1280u32, &customers[1], "1.50"),
        (375, &customers[2], "2.25"),
    ] {
        let order = orders(customer.id).await[0].order_number.clone();
        let mut browser = Browser::start(width, 900).await;
        let shot = |name: &str| out.join(format!("{name}-{width}.png"));
        macro_rules! page {
            ($name:expr) => {{
                let (scroll, inner) = browser.widths().await;
                assert_eq!(inner, u64::from(width));
                assert!(
                    scroll <= inner,
                    "{} scrolls sideways at {width} px: {scroll} > {inner}",
                    $name
                );
                browser.screenshot(&shot($name)).await;
                taken.push(format!("{}-{width}.png", $name));
            }};
        }

        // Sign in.
        browser.open(&format!("{}/sign-in", console.base)).await;
        browser.wait_for_text("Admin key").await;
        page!("sign-in");
        browser.type_into("input[name=key]", &key).await;
        browser.click("main form button").await;
        browser.wait_for_text("Metrics computed at").await;
        page!("overview");
        // The header's search button sits beside its field, not under it.
        let boxes = browser
            .script(
                "const f = document.querySelector('#q').getBoundingClientRect(); \
                 const b = document.querySelector('form[role=search] button').getBoundingClientRect(); \
                 return [f.top, f.bottom, b.top, b.bottom, f.width];",
            )
            .await;
        let [
            field_top,
            field_bottom,
            button_top,
            button_bottom,
            field_width,
        ] = [0, 1, 2, 3, 4].map(|i| boxes[i].as_f64().unwrap());
        assert!(
            button_top < field_bottom && button_bottom > field_top && field_width >= 150.0,
            "at {width} px the search button is not beside a usable field: {boxes}"
        );

        // Find the customer by the order number.
        browser.type_into("#q", &order).await;
        browser.click("form[role=search] button").await;
        browser.wait_for_text(&format!("order {order}")).await;
        page!("search");
        browser.click("main a[href^='/customers/']").await;
        browser.wait_for_text("Timeline").await;
        page!("customer");

        // Refund part of it, with a reason: shown first, then confirmed.
        browser
            .click(&format!("a[href='/orders/{order}/refund']"))
            .await;
        browser.wait_for_text("is left to refund").await;
        page!("refund");
        let reason = format!("dented box, photo sent ({width} px)");
        browser.type_into("#amount", amount).await;
        browser.type_into("#reason", &reason).await;
        browser.click("main form button").await;
        browser.wait_for_text("This refunds").await;
        page!("refund-confirm");
        browser.click("button.danger").await;
        let done = browser.wait_for_text("Refunded").await;
        assert!(
            done.contains(&format!("refunds {amount} USD of order {order}")),
            "{done}"
        );
        page!("refunded");
        refunded += amount.replace('.', "").parse::<i64>().unwrap();

        // The timeline shows the credit note with its reason.
        browser
            .open(&format!("{}/customers/{}", console.base, customer.id))
            .await;
        let timeline = browser.wait_for_text("credit note").await;
        assert!(
            timeline.contains(&format!("by admin:ops: {reason}")),
            "{timeline}"
        );
        page!("customer-after-refund");

        // The other console pages: each action's form and confirmation, a message's resend,
        // the queues, a refusal.
        let sub = db
            .scalar(&format!(
                "SELECT id FROM subscriptions WHERE customer_id = {}",
                customer.id
            ))
            .await;
        let message = db
            .scalar(&format!(
                "SELECT MIN(id) FROM outbox WHERE subscription_id = {sub}"
            ))
            .await;
        db.execute(&format!(
            "UPDATE outbox SET status = 'sent' WHERE id = {message}"
        ))
        .await
        .unwrap();
        for (name, path) in [
            ("skip", format!("/subscriptions/{sub}/skip")),
            (
                "skip-confirm",
                format!("/subscriptions/{sub}/skip?reason=on+holiday"),
            ),
            (
                "pause-confirm",
                format!("/subscriptions/{sub}/pause?until=2026-05-01&reason=asked+by+phone"),
            ),
            ("change", format!("/subscriptions/{sub}/change")),
            (
                "change-confirm",
                format!(
                    "/subscriptions/{sub}/change?plan=6-pack&quantity=2&interval=6+months&reason=wants+more"
                ),
            ),
            (
                "cancel-confirm",
                format!("/subscriptions/{sub}/cancel?reason=moving+abroad"),
            ),
            (
                "link-confirm",
                format!("/subscriptions/{sub}/link?reason=lost+the+email"),
            ),
            (
                "resend-confirm",
                format!("/messages/{message}/resend?reason=not+received"),
            ),
            ("no-reason", format!("/subscriptions/{sub}/skip?reason=+")),
            ("queues", "/queues".to_owned()),
            ("not-found", "/nowhere".to_owned()),
        ] {
            browser.look_at(&format!("{}{path}", console.base)).await;
            browser.wait_for_text("subsave console").await;
            page!(name);
        }
        browser.quit().await;
    }

    // `report payments` counts both refunds on the day they were made.
    let report = common::subsave_stdout(
        &db,
        &[
            "report",
            "payments",
            "--from",
            "2026-03-05",
            "--to",
            "2026-03-05",
            "--json",
        ],
        &[],
    );
    let days: serde_json::Value = serde_json::from_slice(&report).unwrap();
    let in_report: i64 = days
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["refunded_minor"].as_i64().unwrap())
        .sum();
    assert_eq!(in_report, refunded, "{days}");
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM credit_notes WHERE actor = 'admin:ops'")
            .await,
        2
    );
    println!(
        "console checked at 1280 and 375 px, screenshots in {}:\n  {}",
        out.display(),
        taken.join("\n  ")
    );
}

/// "Change the delivery address" in a real browser at 375 and at 320 px: from the
/// subscription's page, choose Germany, type the address, see the new (lower) price, confirm;
/// every page fits the width. Screenshots in `target/tmp/browser-address/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_changes_the_delivery_address_on_a_phone() {
    use subsave::app::CustomerRef;
    let db = TestDb::new(Backend::Postgres).await;
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-address");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let config = settings(&db, KEY_NEW);
    let pages = Pages::start(&db, config.clone(), now()).await;
    let app = App::new(
        db.store.clone(),
        Arc::new(config),
        Arc::new(FixedClock(now())),
    );
    let mut shots = Shots::new(out.clone(), WIDTH, NARROWEST);
    for width in [WIDTH, NARROWEST] {
        let email = format!("phone{width}@example.com");
        let customer = db.customer(&email, "UTC", None, now()).await;
        subsave::app::addresses::add(
            &app,
            subsave::app::addresses::AddressInput {
                customer: CustomerRef::Id(customer.id),
                address: subsave::core::address::RawAddress {
                    name: "Zoe Example".into(),
                    line1: "1 Market St".into(),
                    city: "San Francisco".into(),
                    subdivision: Some("CA".into()),
                    postal_code: Some("94105".into()),
                    country: "US".into(),
                    ..Default::default()
                },
                make_default: true,
            },
            subsave::app::idempotency::Commit::Plain,
        )
        .await
        .unwrap();
        let sub = subsave::app::subscriptions::create(
            &app,
            &subsave::core::model::Actor::cli(),
            subsave::app::subscriptions::SubscriptionInput {
                customer: CustomerRef::Id(customer.id),
                plan: "3-pack".into(),
                quantity: 1,
                interval: None,
                start: Start::FirstRenewalOn(NaiveDate::from_ymd_opt(2026, 12, 20).unwrap()),
                coupon: None,
                consent_channel: None,
                terms_version: None,
                ship_to: None,
                external_id: None,
                metadata: Default::default(),
            },
            subsave::app::idempotency::Commit::Plain,
        )
        .await
        .unwrap();
        let token = signer(KEY_NEW).sign(sub.id, now() + TimeDelta::days(30));
        let mut browser = Browser::start(width, 812).await;
        browser.open(&format!("{}/s/{token}", pages.base)).await;
        browser.click("a[href$='/address']").await;
        browser.wait_for_text("ZIP code").await;
        shots
            .check_at(&browser, &format!("address-form-us-{width}"), width)
            .await;
        // Germany: the fields are labelled for it.
        browser
            .script(
                "document.getElementById('pick').value = 'DE'; document.querySelector('form[method=get]').submit(); return null",
            )
            .await;
        browser.wait_for_text("Postal code").await;
        shots
            .check_at(&browser, &format!("address-form-de-{width}"), width)
            .await;
        for (field, text) in [
            ("#name", "Zoe Example"),
            ("#line1", "Unter den Linden 1"),
            ("#city", "Berlin"),
            ("#postal_code", "10117"),
        ] {
            browser.type_into(field, text).await;
        }
        browser.click("form[method=post] button").await;
        // Berlin is the EU market: the new price is in EUR.
        let shown = browser.wait_for_text("The new price").await;
        assert!(
            shown.contains("105.39") && shown.contains("123.06"),
            "{shown}"
        );
        shots
            .check_at(&browser, &format!("address-new-price-{width}"), width)
            .await;
        browser.click("form[method=post] button").await;
        browser
            .wait_for_text("Done: your subscription is changed")
            .await;
        shots
            .check_at(&browser, &format!("address-done-{width}"), width)
            .await;
        browser.quit().await;
        let country = db
            .scalar(&format!(
                "SELECT COUNT(*) FROM subscriptions s JOIN addresses a ON a.id = s.address_id \
                 WHERE s.id = {} AND a.country = 'DE' AND a.postal_code = '10117'",
                sub.id
            ))
            .await;
        assert_eq!(country, 1, "at {width} px the subscription ships to Berlin");
    }
    println!(
        "address change checked at {WIDTH} and {NARROWEST} px, screenshots in {}:\n  {}",
        out.display(),
        shots.taken.join("\n  ")
    );
}

/// A customer with three subscriptions on a phone, at 375 and at 320 px, in English and in
/// German: opens the customer link (one page, all three; a look at one subscription's action
/// pages too), goes to one subscription's coupon form from there, is refused an unknown code, sees the price with a good one, confirms it;
/// every page fits the width. Screenshots in `target/tmp/browser-customer/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_with_three_subscriptions_applies_a_coupon_on_a_phone() {
    use subsave::core::model::{CouponDuration, NewCoupon};
    use subsave::core::money::BasisPoints;
    use subsave::core::pricing::CouponValue;
    let db = TestDb::new(Backend::Postgres).await;
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-customer");
    let _ = std::fs::remove_dir_all(&out);
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    db.store
        .create_coupon(
            &NewCoupon {
                code: "WELCOME10".into(),
                currency: db.catalog.currency,
                value: CouponValue::Percent(BasisPoints::new(1000).unwrap()),
                duration: CouponDuration::Forever,
                plan: None,
                expires_at: None,
                max_redemptions: None,
            },
            now(),
        )
        .await
        .unwrap();
    let mut shots = Shots::new(out.clone(), WIDTH, NARROWEST);
    for (locale, width) in [
        ("en-US", WIDTH),
        ("en-US", NARROWEST),
        ("de-DE", WIDTH),
        ("de-DE", NARROWEST),
    ] {
        let german = locale == "de-DE";
        let pick = |en: &'static str, de: &'static str| if german { de } else { en };
        let email = format!("three-{locale}-{width}@example.com");
        let customer = db
            .customer(&email, "Europe/Berlin", Some("DE"), now())
            .await;
        db.execute(&format!(
            "UPDATE customers SET locale = '{locale}' WHERE id = {}",
            customer.id
        ))
        .await
        .unwrap();
        let mut subs = Vec::new();
        for plan in ["3-pack", "1-pack", "6-pack"] {
            let first = NaiveDate::from_ymd_opt(2026, 12, 20).unwrap();
            subs.push(
                db.subscribe(&customer, plan, Start::FirstRenewalOn(first), None, now())
                    .await,
            );
        }
        let token = signer(KEY_NEW).sign_customer(customer.id, now() + TimeDelta::days(30));
        let name = format!("{}-{width}", &locale[..2]);
        let mut browser = Browser::start(width, 812).await;
        browser.open(&format!("{}/c/{token}", pages.base)).await;
        let page = browser
            .wait_for_text(pick("Your subscriptions", "Ihre Abos"))
            .await;
        // A German page names the plans as the catalog does in German.
        for plan in [
            pick("3-pack", "3er-Packung"),
            pick("1-pack", "1er-Packung"),
            pick("6-pack", "6er-Packung"),
        ] {
            assert!(page.contains(plan), "{plan}:\n{page}");
        }
        shots
            .check_at(&browser, &format!("customer-{name}"), width)
            .await;
        // The first subscription's action pages, in the customer's language, fit too.
        let sub_token = signer(KEY_NEW).sign(subs[0].id, now() + TimeDelta::days(30));
        for action in ["skip", "move", "change", "pause", "renew", "cancel"] {
            browser
                .look_at(&format!("{}/s/{sub_token}/{action}", pages.base))
                .await;
            browser
                .wait_for_text(pick("Back to your subscription", "Zurück zu Ihrem Abo"))
                .await;
            shots
                .check_at(&browser, &format!("action-{action}-{name}"), width)
                .await;
        }
        browser.look_at(&format!("{}/c/{token}", pages.base)).await;
        browser.click("a[href$='/coupon']").await;
        browser
            .wait_for_text(pick("Apply a coupon code", "Gutscheincode einlösen"))
            .await;
        browser.type_into("#code", "NOPE").await;
        browser.click("form[method=get] button").await;
        browser
            .wait_for_text(pick(
                "This code cannot be used here or now.",
                "Dieser Code kann hier oder jetzt nicht verwendet werden.",
            ))
            .await;
        shots
            .check_at(&browser, &format!("coupon-refused-{name}"), width)
            .await;
        browser
            .script("document.getElementById('code').value = ''; return null")
            .await;
        browser.type_into("#code", "welcome10").await;
        browser.click("form[method=get] button").await;
        browser.wait_for_text(pick("Instead of", "Statt")).await;
        shots
            .check_at(&browser, &format!("coupon-price-{name}"), width)
            .await;
        browser.click("form[method=post] button").await;
        browser
            .wait_for_text(pick(
                "Done: your coupon applies",
                "Erledigt: Ihr Gutschein gilt",
            ))
            .await;
        shots
            .check_at(&browser, &format!("coupon-done-{name}"), width)
            .await;
        browser.quit().await;
        let redeemed = db
            .scalar(&format!(
                "SELECT COUNT(*) FROM subscriptions s JOIN coupons c ON c.id = s.coupon_id \
                 WHERE s.customer_id = {} AND c.code = 'WELCOME10'",
                customer.id
            ))
            .await;
        assert_eq!(
            redeemed, 1,
            "{locale} at {width} px: one subscription has the coupon"
        );
    }
    println!(
        "customer page and coupon checked at {WIDTH} and {NARROWEST} px in English and German, screenshots in {}:\n  {}",
        out.display(),
        shots.taken.join("\n  ")
    );
}
