//! The operations and finance console over a real socket on both backends: sign-in with admin
//! keys (wrong, revoked and non-admin keys alike refused), the session cookie's flags, sign-out
//! and key revocation ending sessions, CSRF, the trusted proxy header, and an overview whose
//! numbers are `report metrics`' to the cent.

mod common;

use chrono::{DateTime, Days, TimeDelta, Utc};
use common::console::{Console, cookie_pair, set_cookie};
use common::pages::{KEY_NEW, hidden, settings};
use common::{Backend, TestDb, at};
use subsave::core::lifecycle::{self, Operation, Start};
use subsave::core::model::{Actor, Scope};
use subsave::core::renewal::CatchUp;

fn now() -> DateTime<Utc> {
    at("2026-03-05T12:00:00Z")
}

async fn console(db: &TestDb) -> Console {
    Console::start(db, settings(db, KEY_NEW), now()).await
}

/// The words every refused sign-in shows.
const REFUSED: &str = "That key does not open the console.";

async fn an_admin_key_opens_a_session_with_a_strict_cookie(backend: Backend) {
    let db = TestDb::new(backend).await;
    let console = console(&db).await;
    let key = console.key("ops", Scope::Admin).await;

    // Signed out, a page sends to the sign-in form.
    let (status, headers, _) = console.get("/", "", &[]).await;
    assert_eq!(status, 303);
    assert_eq!(headers["location"], "/sign-in");

    let ((status, headers, _), session) = console.sign_in(&key).await;
    assert_eq!(status, 303);
    assert_eq!(headers["location"], "/");
    let line = set_cookie(&headers, "subsave_console").unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(line.contains(flag), "{flag} in {line}");
    }
    assert!(!line.contains("Secure"), "plain http: {line}");
    let session = session.unwrap();
    let (status, headers, page) = console.get("/", &session, &[]).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Sign out ops"), "{page}");
    assert_eq!(headers["cache-control"], "no-store");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"));
    assert!(!page.contains("<script"));
    // The sign-in form is no-store too.
    let (_, headers, _) = console.get("/sign-in", "", &[]).await;
    assert_eq!(headers["cache-control"], "no-store");

    // Behind TLS the cookie is Secure.
    let mut tls = settings(&db, KEY_NEW);
    tls.admin.public_url = Some("https://console.shop.example".into());
    let behind_tls = Console::start(&db, tls, now()).await;
    let ((_, headers, _), _) = behind_tls.sign_in(&key).await;
    assert!(
        set_cookie(&headers, "subsave_console")
            .unwrap()
            .contains("; Secure")
    );
}

async fn wrong_revoked_and_non_admin_keys_hear_the_same(backend: Backend) {
    let db = TestDb::new(backend).await;
    let console = console(&db).await;
    let revoked = console.key("gone", Scope::Admin).await;
    subsave::app::api_keys::revoke(&console.app, "gone")
        .await
        .unwrap();
    let writer = console.key("shop", Scope::Write).await;
    let mut answers = Vec::new();
    for key in [
        "ssk_wrong".to_owned(),
        revoked,
        writer,
        String::new(),
        "' OR 1=1 --".to_owned(),
    ] {
        let ((status, _, page), session) = console.sign_in(&key).await;
        assert_eq!(status, 401, "{key}: {page}");
        assert!(session.is_none(), "{key}: no session");
        assert!(page.contains(REFUSED), "{page}");
        // The page differs only by its fresh CSRF token.
        answers.push(page.replace(&hidden(&page, "csrf"), ""));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "one answer");
}

async fn sign_out_and_revocation_end_the_session(backend: Backend) {
    let db = TestDb::new(backend).await;
    let console = console(&db).await;
    let key = console.key("ops", Scope::Admin).await;
    let (_, session) = console.sign_in(&key).await;
    let session = session.unwrap();
    let (_, _, page) = console.get("/", &session, &[]).await;
    let csrf = hidden(&page, "csrf");

    // Without the token, or with another, sign-out is refused and the session lives on.
    for form in [vec![], vec![("csrf", "0".repeat(64))]] {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, _, _) = console.post("/sign-out", &session, &[], &form).await;
        assert_eq!(status, 403);
        assert_eq!(console.get("/", &session, &[]).await.0, 200);
    }

    let (status, headers, _) = console
        .post("/sign-out", &session, &[], &[("csrf", &csrf)])
        .await;
    assert_eq!(status, 303);
    assert_eq!(headers["location"], "/sign-in");
    assert!(
        set_cookie(&headers, "subsave_console")
            .unwrap()
            .contains("Max-Age=0")
    );
    // The old cookie, kept by a thief, opens nothing now.
    let (status, headers, _) = console.get("/", &session, &[]).await;
    assert_eq!(status, 303);
    assert_eq!(headers["location"], "/sign-in");
    let (status, _, _) = console
        .post("/sign-out", &session, &[], &[("csrf", &csrf)])
        .await;
    assert_eq!(status, 403);

    // Revoking the key ends its sessions at once.
    let (_, session) = console.sign_in(&key).await;
    let session = session.unwrap();
    assert_eq!(console.get("/", &session, &[]).await.0, 200);
    subsave::app::api_keys::revoke(&console.app, "ops")
        .await
        .unwrap();
    assert_eq!(console.get("/", &session, &[]).await.0, 303);
}

async fn the_sign_in_form_needs_its_own_token(backend: Backend) {
    let db = TestDb::new(backend).await;
    let console = console(&db).await;
    let key = console.key("ops", Scope::Admin).await;
    let (_, headers, form) = console.get("/sign-in", "", &[]).await;
    let pre = cookie_pair(&headers, "subsave_console_sign_in").unwrap();
    let csrf = hidden(&form, "csrf");
    // A form posted from elsewhere has neither the cookie nor its token.
    for (cookies, token) in [("", csrf.as_str()), (pre.as_str(), ""), (pre.as_str(), "x")] {
        let (status, headers, _) = console
            .post("/sign-in", cookies, &[], &[("csrf", token), ("key", &key)])
            .await;
        assert_eq!(status, 403);
        assert!(cookie_pair(&headers, "subsave_console").is_none());
    }
}

async fn the_proxy_header_counts_only_from_a_trusted_address(backend: Backend) {
    let db = TestDb::new(backend).await;
    let header = [("x-forwarded-user", "ana@shop.example")];
    // The test connects from 127.0.0.1: not the proxy's address.
    let mut elsewhere = settings(&db, KEY_NEW);
    elsewhere.admin.trusted_header = Some("x-forwarded-user".into());
    elsewhere.admin.trusted_proxies = vec!["127.0.0.2".parse().unwrap()];
    let untrusted = Console::start(&db, elsewhere, now()).await;
    let (status, headers, _) = untrusted.get("/", "", &header).await;
    assert_eq!(status, 303);
    assert_eq!(headers["location"], "/sign-in");
    let (status, _, _) = untrusted.post("/sign-out", "", &header, &[]).await;
    assert_eq!(status, 403);

    let mut proxied = settings(&db, KEY_NEW);
    proxied.admin.trusted_header = Some("x-forwarded-user".into());
    proxied.admin.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    let trusted = Console::start(&db, proxied, now()).await;
    let (status, _, page) = trusted.get("/", "", &header).await;
    assert_eq!(status, 200);
    assert!(page.contains("Sign out ana@shop.example"), "{page}");
    // Its forms still need the token.
    let (status, _, _) = trusted.post("/sign-out", "", &header, &[]).await;
    assert_eq!(status, 403);
    let csrf = hidden(&page, "csrf");
    let (status, _, _) = trusted
        .post("/sign-out", "", &header, &[("csrf", &csrf)])
        .await;
    assert_eq!(status, 303);
    // A name that could not be an actor's is not believed.
    let (status, _, _) = trusted
        .get("/", "", &[("x-forwarded-user", "ana admin")])
        .await;
    assert_eq!(status, 303);
}

/// Three monthly 1-pack subscriptions from January 5, billed by the engine to March 5, one
/// cancelled in February.
async fn a_small_shop(db: &TestDb) {
    let start = at("2026-01-05T09:00:00Z");
    let mut subs = Vec::new();
    for i in 0..3 {
        let c = db
            .customer(&format!("m{i}@example.com"), "UTC", None, start)
            .await;
        subs.push(db.subscribe(&c, "1-pack", Start::Now, None, start).await.id);
    }
    let engine = db.engine(CatchUp::Latest, 10);
    for day in 0..60u64 {
        let t = start.checked_add_days(Days::new(day)).unwrap() + TimeDelta::hours(1);
        if t.format("%m-%d").to_string() == "02-20" {
            let catalog = db.catalog.clone();
            db.store
                .transition(subs[2], &|s, c| {
                    let cancel = Operation::Cancel {
                        reason: "moving abroad".into(),
                    };
                    lifecycle::apply(s, c, &cancel, &catalog, &Actor::cli(), t)
                })
                .await
                .unwrap();
        }
        engine.sweep(t).await.unwrap();
    }
}

async fn the_overview_shows_report_metrics_numbers(backend: Backend) {
    let db = TestDb::new(backend).await;
    a_small_shop(&db).await;
    let console = console(&db).await;
    let key = console.key("ops", Scope::Admin).await;
    let (_, session) = console.sign_in(&key).await;
    let session = session.unwrap();

    // The default period is the last 6 months: October 1 to today.
    let (status, _, page) = console.get("/", &session, &[]).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(r#"value="2025-10-01""#) && page.contains(r#"value="2026-03-05""#));
    for needle in [
        "<svg",
        "MRR by month, USD",
        "No payment was declined in this period",
        "Units forecast",
        "Cohorts",
        "moving abroad",
        "Messages waiting",
        "shade-",
    ] {
        assert!(page.contains(needle), "{needle} in the overview");
    }

    // Every CSV section is `report metrics --format csv`'s rows of that section.
    let cli = common::subsave_stdout(
        &db,
        &[
            "--now",
            "2026-03-05T12:00:00Z",
            "report",
            "metrics",
            "--from",
            "2025-10-01",
            "--to",
            "2026-03-05",
            "--format",
            "csv",
        ],
        &[],
    );
    let cli = String::from_utf8(cli).unwrap();
    let mut lines = cli.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    for section in [
        "mrr",
        "cohort",
        "dunning",
        "cancellations",
        "units_forecast",
    ] {
        let (status, headers, csv) = console
            .get(
                &format!("/overview.csv?section={section}&from=2025-10-01&to=2026-03-05"),
                &session,
                &[],
            )
            .await;
        assert_eq!(status, 200);
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        let expected: Vec<&str> = std::iter::once(header)
            .chain(
                rows.iter()
                    .copied()
                    .filter(|r| r.starts_with(&format!("{section},"))),
            )
            .collect();
        // No payment of this shop was declined (the storefront collects): no dunning rows.
        assert_eq!(expected.len() > 1, section != "dunning", "{section}'s rows");
        assert_eq!(csv.lines().collect::<Vec<_>>(), expected, "{section}");
    }
    // The MRR table shows the report's figures: February's MRR at its end, say.
    let february = rows
        .iter()
        .find_map(|r| r.strip_prefix("mrr,2026-02,USD,mrr_end,"))
        .expect("February's MRR in the report");
    assert_ne!(february, "0.00", "two subscriptions bring MRR");
    assert!(
        page.contains(&format!("<td class=\"num\">{february}</td>")),
        "{page}"
    );

    // A bad period is refused with what to type.
    let (status, _, page) = console.get("/?from=yesterday", &session, &[]).await;
    assert_eq!(status, 422);
    assert!(page.contains("expected a date"));
}

/// `subsave run` serves the console on `admin.listen`, and its sign-in form under the same
/// headers as the tests' listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_serves_the_console_on_admin_listen() {
    let db = TestDb::new(Backend::Sqlite).await;
    let peer = common::smtp::SmtpPeer::start().await;
    let port = common::smtp::free_port();
    let address = format!("127.0.0.1:{port}");
    let daemon =
        common::daemon::Daemon::start(&db, peer.port(), &[("SUBSAVE_ADMIN__LISTEN", &address)]);
    common::eventually(
        std::time::Duration::from_secs(20),
        "the console answers",
        || async {
            common::daemon::http_get_raw(port, "/sign-in", "")
                .await
                .is_some()
        },
    )
    .await;
    let answer = common::daemon::http_get_raw(port, "/sign-in", "")
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("cache-control: no-store")
    );
    assert!(answer.contains("Admin key"));
    // The customer pages' listener does not serve it.
    let (status, _) = common::daemon::http_get(daemon.web_port, "/sign-in")
        .await
        .unwrap();
    assert_eq!(status, 404);
    assert_eq!(daemon.terminate(std::time::Duration::from_secs(20)), 0);
}

/// A signed-in console over a small shop.
async fn signed_in(db: &TestDb) -> (Console, String) {
    let console = console(db).await;
    let key = console.key("ops", Scope::Admin).await;
    let (_, session) = console.sign_in(&key).await;
    (console, session.unwrap())
}

async fn search_takes_any_text_literally_and_escapes_it(backend: Backend) {
    let db = TestDb::new(backend).await;
    let t = at("2026-01-05T09:00:00Z");
    let ada = db.customer("ada@example.com", "UTC", None, t).await;
    let sub = db.subscribe(&ada, "1-pack", Start::Now, None, t).await;
    db.engine(CatchUp::Latest, 10)
        .sweep(t + TimeDelta::hours(1))
        .await
        .unwrap();
    let order: String = db
        .store
        .orders(&subsave::store::OrderFilter {
            subscription_id: Some(sub.id),
            customer_id: None,
            limit: 1,
            after_id: None,
            lag_ok: false,
            ..Default::default()
        })
        .await
        .unwrap()[0]
        .order_number
        .clone();
    // A name full of metacharacters, stored as typed.
    let odd_name = "<b>O'Brien</b> 100%_\\";
    let odd = db
        .store
        .add_customer(
            &subsave::core::model::NewCustomer {
                email: "odd@example.com".parse().unwrap(),
                name: odd_name.into(),
                time_zone: "UTC".parse().unwrap(),
                locale: "en-US".into(),
                tax_region: None,
                external_id: None,
                metadata: Default::default(),
            },
            t,
        )
        .await
        .unwrap();
    let (console, session) = signed_in(&db).await;
    let find = |q: &str| {
        let path = format!("/search?q={}", common::pages::encode(q));
        let console = &console;
        let session = session.clone();
        async move { console.get(&path, &session, &[]).await }
    };

    // By part of an address, any case; by name; by order number; by subscription id.
    for q in ["ADA@", "odd@example", &order, &sub.id.to_string()] {
        let (status, _, page) = find(q).await;
        assert_eq!(status, 200, "{q}: {page}");
        assert!(page.contains("/customers/"), "{q} finds someone: {page}");
    }
    let (_, _, page) = find(&order).await;
    assert!(
        page.contains(&format!("order {order}"))
            && page.contains(&format!("/customers/{}", ada.id))
    );
    // Metacharacters are plain text: `%` and `_` match only themselves, SQL is a string.
    for (q, finds_odd) in [
        ("%", true),
        ("_", true),
        ("100%_", true),
        ("O'Brien", true),
        ("' OR '1'='1", false),
        ("%' --", false),
        ("a%a", false),
        ("<script>alert(1)</script>", false),
    ] {
        let (status, _, page) = find(q).await;
        assert_eq!(status, 200, "{q}");
        assert_eq!(
            page.contains(&format!("/customers/{}", odd.id)),
            finds_odd,
            "{q}: {page}"
        );
        assert!(
            !page.contains(&format!("/customers/{}\"", ada.id)),
            "{q} finds not Ada: {page}"
        );
        assert!(
            !page.contains("<script>") && !page.contains("<b>O"),
            "{q}: escaped"
        );
    }
    let (_, _, page) = find("<script>alert(1)</script>").await;
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "{page}"
    );
    let (_, _, page) = find("brien").await;
    assert!(
        page.contains("&lt;b&gt;O&#x27;Brien&lt;&#x2f;b&gt;"),
        "{page}"
    );
    // Nothing but spaces, or too long, is refused with what to type.
    let (status, _, _) = find(&"x".repeat(201)).await;
    assert_eq!(status, 422);
}

async fn search_pages_by_fifty(backend: Backend) {
    let db = TestDb::new(backend).await;
    let t = at("2026-01-05T09:00:00Z");
    for i in 0..120 {
        db.customer(&format!("many{i:03}@example.com"), "UTC", None, t)
            .await;
    }
    let (console, session) = signed_in(&db).await;
    let mut seen = std::collections::BTreeSet::new();
    let mut path = "/search?q=many".to_owned();
    let mut pages = 0;
    loop {
        let (status, _, page) = console.get(&path, &session, &[]).await;
        assert_eq!(status, 200);
        pages += 1;
        let rows = page.matches("@example.com</td>").count();
        assert!(rows <= 50);
        for part in page.split("/customers/").skip(1) {
            seen.insert(part.split('"').next().unwrap().to_owned());
        }
        match page.split("after=").nth(1) {
            Some(rest) => {
                path = format!("/search?q=many&after={}", rest.split('"').next().unwrap())
            }
            None => break,
        }
    }
    assert_eq!((pages, seen.len()), (3, 120));
}

/// Posts a confirmation form.
async fn confirm(
    console: &Console,
    session: &str,
    csrf: &str,
    token: &str,
) -> common::console::Answer {
    console
        .post(
            "/confirm",
            session,
            &[],
            &[("csrf", csrf), ("token", token)],
        )
        .await
}

/// The CLI's `report payments --json` for one day.
fn refunded_on(db: &TestDb, day: &str) -> i64 {
    let out = common::subsave_stdout(
        db,
        &["report", "payments", "--from", day, "--to", day, "--json"],
        &[],
    );
    let days: serde_json::Value = serde_json::from_slice(&out).unwrap();
    days.as_array()
        .unwrap()
        .iter()
        .map(|d| d["refunded_minor"].as_i64().unwrap())
        .sum()
}

async fn a_partial_refund_with_a_reason_is_confirmed_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    a_small_shop(&db).await;
    let (console, session) = signed_in(&db).await;
    let customer = db
        .store
        .customer_by_email(&"m0@example.com".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let (status, _, page) = console
        .get(&format!("/customers/{}", customer.id), &session, &[])
        .await;
    assert_eq!(status, 200, "{page}");
    let refund_path = page
        .split("href=\"")
        .find_map(|p| p.split('"').next().filter(|h| h.ends_with("/refund")))
        .expect("a refundable order")
        .to_owned();
    let order = refund_path
        .trim_start_matches("/orders/")
        .trim_end_matches("/refund")
        .to_owned();

    // More than paid is refused at the confirmation, and by `app` too.
    let (status, _, form) = console.get(&refund_path, &session, &[]).await;
    assert_eq!(status, 200, "{form}");
    let (status, _, page) = console
        .get(
            &format!("{refund_path}?amount=500.00&reason=broken"),
            &session,
            &[],
        )
        .await;
    assert_eq!(status, 422);
    assert!(page.contains("is left to refund"), "{page}");
    // No reason, no refund.
    let (status, _, _) = console
        .get(
            &format!("{refund_path}?amount=5.00&reason=+"),
            &session,
            &[],
        )
        .await;
    assert_eq!(status, 422);

    // The confirmation shows the effect; nothing is written until it is posted.
    let reason = "arrived damaged <photo>";
    let (status, _, page) = console
        .get(
            &format!(
                "{refund_path}?amount=5.00&reason={}",
                common::pages::encode(reason)
            ),
            &session,
            &[],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("This refunds <strong>5.00"), "{page}");
    assert!(page.contains("arrived damaged &lt;photo&gt;"));
    assert_eq!(db.scalar("SELECT COUNT(*) FROM credit_notes").await, 0);
    let token = hidden(&page, "token");
    let csrf = hidden(&page, "csrf");

    // Without the session's CSRF token nothing happens.
    let (status, _, _) = confirm(&console, &session, "forged", &token).await;
    assert_eq!(status, 403);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM credit_notes").await, 0);

    let (status, _, page) = confirm(&console, &session, &csrf, &token).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Refunded"), "{page}");
    // Posted again (a double click, a reload): nothing more.
    let (status, _, page) = confirm(&console, &session, &csrf, &token).await;
    assert_eq!(status, 200);
    assert!(page.contains("used already"), "{page}");
    assert_eq!(db.scalar("SELECT COUNT(*) FROM credit_notes").await, 1);
    assert_eq!(
        db.scalar(
            "SELECT COUNT(*) FROM credit_notes WHERE actor = 'admin:ops' AND amount_minor = 500"
        )
        .await,
        1
    );
    // An unknown token changes nothing.
    let (status, _, _) = confirm(&console, &session, &csrf, "0").await;
    assert_eq!(status, 410);

    // The timeline shows the credit note with its reason; report payments counts it.
    let (_, _, page) = console
        .get(&format!("/customers/{}", customer.id), &session, &[])
        .await;
    assert!(page.contains("credit note"), "{page}");
    assert!(
        page.contains("by admin:ops: arrived damaged &lt;photo&gt;"),
        "{page}"
    );
    assert_eq!(refunded_on(&db, "2026-03-05"), 500);

    // The rest of the order, and not a cent more.
    let (_, _, form) = console.get(&refund_path, &session, &[]).await;
    let left = form
        .split("<strong>")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    let too_much = {
        let cents: i64 = left.replace('.', "").parse().unwrap();
        format!("{}.{:02}", (cents + 1) / 100, (cents + 1) % 100)
    };
    let (status, _, _) = console
        .get(
            &format!("{refund_path}?amount={too_much}&reason=rest"),
            &session,
            &[],
        )
        .await;
    assert_eq!(status, 422, "{too_much} of {left} left");
    let (status, _, page) = console
        .get(&format!("{refund_path}?amount=&reason=rest"), &session, &[])
        .await;
    assert_eq!(status, 200);
    let token = hidden(&page, "token");
    let (status, _, _) = confirm(&console, &session, &csrf, &token).await;
    assert_eq!(status, 200);
    // Nothing is left: the order has no refund link any more, and `app` refuses another.
    let (_, _, page) = console
        .get(&format!("/customers/{}", customer.id), &session, &[])
        .await;
    assert!(!page.contains(&format!("/orders/{order}/refund")), "{page}");
    let (status, _, page) = console
        .get(
            &format!("{refund_path}?amount=0.01&reason=again"),
            &session,
            &[],
        )
        .await;
    assert_eq!(status, 422, "{page}");
}

async fn a_cancel_with_a_reason_is_confirmed_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    a_small_shop(&db).await;
    let (console, session) = signed_in(&db).await;
    let customer = db
        .store
        .customer_by_email(&"m1@example.com".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let (_, _, page) = console
        .get(&format!("/customers/{}", customer.id), &session, &[])
        .await;
    let cancel = page
        .split("href=\"")
        .find_map(|p| p.split('"').next().filter(|h| h.ends_with("/cancel")))
        .expect("a cancel link")
        .to_owned();
    let id: i64 = cancel.split('/').nth(2).unwrap().parse().unwrap();
    // No reason, no confirmation.
    let (status, _, _) = console
        .get(&format!("{cancel}?reason=+"), &session, &[])
        .await;
    assert_eq!(status, 422);
    let (status, _, page) = console
        .get(&format!("{cancel}?reason=asked+by+phone"), &session, &[])
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("This cancels subscription"));
    let cancelled =
        format!("SELECT COUNT(*) FROM subscriptions WHERE id = {id} AND status = 'cancelled'");
    assert_eq!(db.scalar(&cancelled).await, 0, "a GET changes nothing");
    let token = hidden(&page, "token");
    let csrf = hidden(&page, "csrf");
    let (status, _, page) = confirm(&console, &session, &csrf, &token).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(db.scalar(&cancelled).await, 1);
    let (status, _, page) = confirm(&console, &session, &csrf, &token).await;
    assert_eq!(status, 200);
    assert!(page.contains("used already"));
    assert_eq!(
        db.scalar(&format!(
            "SELECT COUNT(*) FROM subscription_events WHERE subscription_id = {id} AND actor = 'admin:ops' AND kind = 'cancel'"
        ))
        .await,
        1
    );
    let (_, _, page) = console
        .get(&format!("/customers/{}", customer.id), &session, &[])
        .await;
    assert!(page.contains("cancelled (asked by phone)"), "{page}");
    assert!(page.contains("cancel by admin:ops"), "{page}");
}

/// The console's page at `path` (an action's form with its fields): status, page, and the
/// confirmation's token and CSRF token when it shows one.
async fn shown(
    console: &Console,
    session: &str,
    path: &str,
) -> (u16, String, Option<(String, String)>) {
    let (status, _, page) = console.get(path, session, &[]).await;
    let tokens = page
        .contains("name=\"token\"")
        .then(|| (hidden(&page, "token"), hidden(&page, "csrf")));
    (status, page, tokens)
}

/// Posts a shown confirmation twice: both answer 200 (the second says it was used already).
async fn confirmed_twice(console: &Console, session: &str, tokens: Option<(String, String)>) {
    let (token, csrf) = tokens.expect("a confirmation");
    assert_eq!(confirm(console, session, &csrf, &token).await.0, 200);
    let (status, _, page) = confirm(console, session, &csrf, &token).await;
    assert_eq!(status, 200);
    assert!(page.contains("used already"), "{page}");
}

/// The id of m0's subscription (active, monthly 1-pack) and its customer's id.
async fn m0(db: &TestDb) -> (i64, i64) {
    let customer = db
        .store
        .customer_by_email(&"m0@example.com".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let sub = db
        .scalar(&format!(
            "SELECT id FROM subscriptions WHERE customer_id = {}",
            customer.id
        ))
        .await;
    (sub, customer.id)
}

async fn every_support_action_shows_its_effect_and_is_done_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    a_small_shop(&db).await;
    let (console, session) = signed_in(&db).await;
    let (id, customer) = m0(&db).await;
    let events = |kind: &str| {
        format!(
            "SELECT COUNT(*) FROM subscription_events WHERE subscription_id = {id} AND actor = 'admin:ops' AND kind = '{kind}'"
        )
    };
    // The customer's page links every action that fits the subscription's state.
    let (_, _, page) = console
        .get(&format!("/customers/{customer}"), &session, &[])
        .await;
    for action in ["skip", "pause", "change", "cancel", "link"] {
        assert!(
            page.contains(&format!("/subscriptions/{id}/{action}\"")),
            "{action}: {page}"
        );
    }
    assert!(!page.contains(&format!("/subscriptions/{id}/resume\"")));

    // (action, query, event kind, a line of the effect, the state after)
    let steps: [(&str, &str, &str, &str, &str); 4] = [
        (
            "skip",
            "reason=on+holiday",
            "skip",
            "Next renewal: 2026-03-06 09:00 UTC → 2026-04-05 09:00 UTC",
            "SELECT COUNT(*) FROM subscription_events WHERE subscription_id = {id} AND kind = 'skip'",
        ),
        (
            "pause",
            "until=&reason=asked+by+phone",
            "pause",
            "Status: active → paused",
            "SELECT COUNT(*) FROM subscriptions WHERE id = {id} AND status = 'paused'",
        ),
        (
            "resume",
            "reason=back+home",
            "resume",
            "Status: paused → active",
            "SELECT COUNT(*) FROM subscriptions WHERE id = {id} AND status = 'active'",
        ),
        (
            "change",
            "plan=2-pack&quantity=&interval=2+months&reason=wants+more",
            "change",
            "Plan: 1 × 1-pack → 1 × 2-pack",
            "SELECT COUNT(*) FROM subscriptions WHERE id = {id} AND plan_id = '2-pack' AND interval_count = 2 AND interval_unit = 'month'",
        ),
    ];
    for (action, query, kind, effect, after) in steps {
        let after = after.replace("{id}", &id.to_string());
        let (status, form, tokens) =
            shown(&console, &session, &format!("/subscriptions/{id}/{action}")).await;
        assert_eq!(status, 200, "{action}: {form}");
        assert!(
            tokens.is_none() && form.contains("name=\"reason\""),
            "{action}: a form first"
        );
        let (status, page, tokens) = shown(
            &console,
            &session,
            &format!("/subscriptions/{id}/{action}?{query}"),
        )
        .await;
        assert_eq!(status, 200, "{action}: {page}");
        assert!(page.contains(effect), "{action} shows {effect}: {page}");
        assert!(page.contains("Next charge:"), "{action}: the quote");
        assert_eq!(
            db.scalar(&events(kind)).await,
            0,
            "{action}: a GET changes nothing"
        );
        assert_eq!(db.scalar(&after).await, 0, "{action}: not yet");
        let (token, csrf) = tokens.expect("a confirmation");
        let (status, _, page) = confirm(&console, &session, &csrf, &token).await;
        assert_eq!(status, 200, "{action}: {page}");
        assert_eq!(db.scalar(&after).await, 1, "{action} done: {page}");
        // Posted twice: done once.
        let (status, _, page) = confirm(&console, &session, &csrf, &token).await;
        assert_eq!(status, 200);
        assert!(page.contains("used already"), "{page}");
        assert_eq!(db.scalar(&events(kind)).await, 1, "{action}: one event");
    }
    // The reasons are kept in the events.
    let (_, _, page) = console
        .get(&format!("/customers/{customer}"), &session, &[])
        .await;
    let detail = match backend {
        Backend::Postgres => "detail::text",
        Backend::Sqlite => "detail",
    };
    for reason in ["on holiday", "asked by phone", "back home", "wants more"] {
        assert_eq!(
            db.scalar(&format!(
                "SELECT COUNT(*) FROM subscription_events WHERE subscription_id = {id} AND actor = 'admin:ops' AND {detail} LIKE '%support_reason%{reason}%'"
            ))
            .await,
            1,
            "{reason}"
        );
    }
    assert!(page.contains("skip by admin:ops: on holiday"), "{page}");

    // A fresh link: the customer's email and an event naming the person and the reason.
    let links = "SELECT COUNT(*) FROM outbox WHERE kind = 'link_request'";
    let before = db.scalar(links).await;
    let (status, page, tokens) = shown(
        &console,
        &session,
        &format!("/subscriptions/{id}/link?reason=lost+the+email"),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("m0@example.com"), "{page}");
    confirmed_twice(&console, &session, tokens).await;
    assert_eq!(db.scalar(links).await, before + 1);
    assert_eq!(db.scalar(&events("link_sent")).await, 1);

    // Resending a sent message: shown as it would go out, queued once more.
    let message = db
        .scalar(&format!("SELECT MIN(id) FROM outbox WHERE subscription_id = {id} AND kind = 'order_confirmation'"))
        .await;
    db.execute(&format!(
        "UPDATE outbox SET status = 'sent' WHERE id = {message}"
    ))
    .await
    .unwrap();
    let (_, _, page) = console
        .get(&format!("/customers/{customer}"), &session, &[])
        .await;
    assert!(
        page.contains(&format!("/messages/{message}/resend")),
        "{page}"
    );
    let (status, page, tokens) = shown(
        &console,
        &session,
        &format!("/messages/{message}/resend?reason=not+received"),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Subject:"), "the rendered message: {page}");
    confirmed_twice(&console, &session, tokens).await;
    assert_eq!(
        db.scalar(&format!(
            "SELECT COUNT(*) FROM outbox WHERE id = {message} AND status = 'pending'"
        ))
        .await,
        1
    );
    assert_eq!(db.scalar(&events("message_resent")).await, 1);
    // A pending message is not resent.
    let (status, _, _) = shown(
        &console,
        &session,
        &format!("/messages/{message}/resend?reason=again"),
    )
    .await;
    assert_eq!(status, 422);
}

async fn support_actions_refuse_forgeries_missing_reasons_and_stale_forms(backend: Backend) {
    let db = TestDb::new(backend).await;
    a_small_shop(&db).await;
    let (console, session) = signed_in(&db).await;
    let (id, customer) = m0(&db).await;
    let skips = format!(
        "SELECT COUNT(*) FROM subscription_events WHERE subscription_id = {id} AND kind = 'skip'"
    );

    // No reason, no confirmation, for every action.
    let message = db
        .scalar(&format!(
            "SELECT MIN(id) FROM outbox WHERE subscription_id = {id}"
        ))
        .await;
    db.execute(&format!(
        "UPDATE outbox SET status = 'sent' WHERE id = {message}"
    ))
    .await
    .unwrap();
    for path in [
        format!("/subscriptions/{id}/skip?reason=+"),
        format!("/subscriptions/{id}/pause?until=&reason="),
        format!("/subscriptions/{id}/change?plan=2-pack&reason=+"),
        format!("/subscriptions/{id}/cancel?reason=+"),
        format!("/subscriptions/{id}/link?reason="),
        format!("/messages/{message}/resend?reason=+"),
    ] {
        let (status, page, tokens) = shown(&console, &session, &path).await;
        assert_eq!(status, 422, "{path}: {page}");
        assert!(
            tokens.is_none() && page.contains("Say why"),
            "{path}: {page}"
        );
    }
    // Nonsense is refused with what to type; an unknown action is not a page.
    for path in [
        format!("/subscriptions/{id}/change?plan=&quantity=&interval=&reason=x"),
        format!("/subscriptions/{id}/change?interval=fortnightly&reason=x"),
        format!("/subscriptions/{id}/change?quantity=-1&reason=x"),
        format!("/subscriptions/{id}/pause?until=soon&reason=x"),
        format!("/subscriptions/{id}/resume?reason=x"),
    ] {
        let (status, page, tokens) = shown(&console, &session, &path).await;
        assert_eq!(status, 422, "{path}: {page}");
        assert!(tokens.is_none(), "{path}");
    }
    assert_eq!(
        console
            .get(&format!("/subscriptions/{id}/explode"), &session, &[])
            .await
            .0,
        404
    );

    // Without the session's CSRF token, or with another, the confirmation does nothing and
    // stays open.
    let (_, _, tokens) = shown(
        &console,
        &session,
        &format!("/subscriptions/{id}/skip?reason=holiday"),
    )
    .await;
    let (token, csrf) = tokens.unwrap();
    for forged in [
        vec![("token", token.as_str())],
        vec![("token", token.as_str()), ("csrf", "0")],
    ] {
        let (status, _, _) = console.post("/confirm", &session, &[], &forged).await;
        assert_eq!(status, 403);
    }
    // Nor from another person: their session, their token, someone else's confirmation.
    let ana = console.key("ana", Scope::Admin).await;
    let (_, ana) = console.sign_in(&ana).await;
    let ana = ana.unwrap();
    let (_, _, page) = console.get("/", &ana, &[]).await;
    let (status, _, _) = confirm(&console, &ana, &hidden(&page, "csrf"), &token).await;
    assert_eq!(status, 410);
    assert_eq!(db.scalar(&skips).await, 0);

    // A stale form: a second confirmation shown at the same state, the first applied, then
    // the second posted: the subscription changed since it was shown, nothing more is done.
    let (_, _, second) = shown(
        &console,
        &session,
        &format!("/subscriptions/{id}/skip?reason=holiday"),
    )
    .await;
    let (second, _) = second.unwrap();
    assert_eq!(confirm(&console, &session, &csrf, &token).await.0, 200);
    assert_eq!(db.scalar(&skips).await, 1);
    let (status, _, page) = confirm(&console, &session, &csrf, &second).await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("changed since"), "{page}");
    assert_eq!(db.scalar(&skips).await, 1);
    // The refused one is spent: posted again it says what happened, still nothing done.
    let (_, _, page) = confirm(&console, &session, &csrf, &second).await;
    assert!(page.contains("used already"), "{page}");
    assert_eq!(db.scalar(&skips).await, 1);

    // A stale refund: two confirmations of 1.00 shown; the second, posted after the first,
    // finds the order refunded since.
    let (_, _, page) = console
        .get(&format!("/customers/{customer}"), &session, &[])
        .await;
    let refund = page
        .split("href=\"")
        .find_map(|p| p.split('"').next().filter(|h| h.ends_with("/refund")))
        .unwrap()
        .to_owned();
    let refund_of = |amount: &str| format!("{refund}?amount={amount}&reason=dented");
    let (_, _, first) = shown(&console, &session, &refund_of("1.00")).await;
    let (_, _, again) = shown(&console, &session, &refund_of("1.00")).await;
    assert_eq!(
        confirm(&console, &session, &csrf, &first.unwrap().0)
            .await
            .0,
        200
    );
    let (status, _, page) = confirm(&console, &session, &csrf, &again.unwrap().0).await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("since it was shown"), "{page}");
    assert_eq!(db.scalar("SELECT COUNT(*) FROM credit_notes").await, 1);

    // A stale resend: the message failed (or was sent) meanwhile.
    let (_, _, tokens) = shown(
        &console,
        &session,
        &format!("/messages/{message}/resend?reason=lost"),
    )
    .await;
    db.execute(&format!(
        "UPDATE outbox SET status = 'failed' WHERE id = {message}"
    ))
    .await
    .unwrap();
    let (status, _, page) = confirm(&console, &session, &csrf, &tokens.unwrap().0).await;
    assert_eq!(status, 422, "{page}");
    assert_eq!(
        db.scalar(&format!(
            "SELECT COUNT(*) FROM outbox WHERE id = {message} AND status = 'failed'"
        ))
        .await,
        1
    );
}

async fn the_queues_list_failures_and_retry_them(backend: Backend) {
    let db = TestDb::new(backend).await;
    a_small_shop(&db).await;
    let (console, session) = signed_in(&db).await;
    let (id, _) = m0(&db).await;
    let message = db
        .scalar(&format!(
            "SELECT MIN(id) FROM outbox WHERE subscription_id = {id}"
        ))
        .await;
    db.execute(&format!(
        "UPDATE outbox SET status = 'failed', attempts = 5, last_error = '550 mailbox <m0> unavailable' WHERE id = {message}"
    ))
    .await
    .unwrap();
    let order_id = db
        .scalar(&format!(
            "SELECT MIN(order_id) FROM payments WHERE subscription_id = {id}"
        ))
        .await;
    db.execute(&format!(
        "UPDATE payments SET status = 'failed', attempt = 2, next_attempt_at = NULL, decline_code = 'card_declined', last_error = 'Your card was declined.' WHERE order_id = {order_id}"
    ))
    .await
    .unwrap();
    let number: String = db
        .store
        .orders(&subsave::store::OrderFilter {
            subscription_id: Some(id),
            customer_id: None,
            limit: 1,
            after_id: None,
            lag_ok: false,
            ..Default::default()
        })
        .await
        .unwrap()[0]
        .order_number
        .clone();

    let (status, headers, page) = console.get("/queues", &session, &[]).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(headers["cache-control"], "no-store");
    for needle in [
        "550 mailbox &lt;m0&gt; unavailable",
        "Your card was declined.",
        "card_declined",
        &format!("Retry {message}"),
        &format!("Retry {number}"),
    ] {
        assert!(page.contains(needle), "{needle}: {page}");
    }
    let csrf = hidden(&page, "csrf");
    let retry_message = format!("/queues/messages/{message}/retry");
    let retry_payment = format!("/queues/payments/{number}/retry");
    // Forged: nothing happens.
    for path in [&retry_message, &retry_payment] {
        assert_eq!(console.post(path, &session, &[], &[]).await.0, 403);
        assert_eq!(
            console.post(path, &session, &[], &[("csrf", "x")]).await.0,
            403
        );
    }
    assert_eq!(
        db.scalar(&format!(
            "SELECT COUNT(*) FROM outbox WHERE id = {message} AND status = 'failed'"
        ))
        .await,
        1
    );
    // Retried once; the second POST finds nothing to retry and says so.
    for (path, retried, refusal) in [
        (
            &retry_message,
            format!(
                "SELECT COUNT(*) FROM outbox WHERE id = {message} AND status = 'pending' AND attempts = 0"
            ),
            "not failed",
        ),
        (
            &retry_payment,
            format!(
                "SELECT COUNT(*) FROM payments WHERE order_id = {order_id} AND next_attempt_at IS NOT NULL AND attempt = 3"
            ),
            "no retry due",
        ),
    ] {
        let (status, _, page) = console.post(path, &session, &[], &[("csrf", &csrf)]).await;
        assert_eq!(status, 200, "{path}: {page}");
        assert_eq!(db.scalar(&retried).await, 1, "{path}");
        let (status, _, page) = console.post(path, &session, &[], &[("csrf", &csrf)]).await;
        assert_eq!(status, 422, "{path}: {page}");
        assert!(page.contains(refusal), "{path}: {page}");
        assert_eq!(db.scalar(&retried).await, 1, "{path}");
    }
    // Now it is due: listed with its next try, without a retry button.
    let (_, _, page) = console.get("/queues", &session, &[]).await;
    assert!(!page.contains(&format!("Retry {number}")), "{page}");
    assert!(page.contains("No message failed"), "{page}");
}

/// No request computes the metrics: while they are computed (here held up by a lock on the
/// events they read) the overview waits 5 s, then answers 503 with `Retry-After` and a page
/// that reloads itself; once computed, it shows them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_never_computes_within_a_request() {
    use sqlx::Connection;
    let db = TestDb::new(Backend::Postgres).await;
    a_small_shop(&db).await;
    let mut holder = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE subscription_events IN ACCESS EXCLUSIVE MODE")
        .execute(&mut holder)
        .await
        .unwrap();
    let (console, session) = signed_in(&db).await;
    let started = std::time::Instant::now();
    let (status, headers, page) = console.get("/", &session, &[]).await;
    let waited = started.elapsed();
    assert_eq!(status, 503, "{page}");
    assert_eq!(headers["retry-after"], "5");
    assert!(
        page.contains(r#"<meta http-equiv="refresh" content="5">"#),
        "{page}"
    );
    assert!(page.contains("being computed"), "{page}");
    assert!(
        waited >= std::time::Duration::from_secs(5) && waited < std::time::Duration::from_secs(9),
        "waited {waited:?}"
    );
    // The queues are live all the same.
    assert_eq!(console.get("/queues", &session, &[]).await.0, 200);
    sqlx::raw_sql("COMMIT").execute(&mut holder).await.unwrap();
    common::eventually(
        std::time::Duration::from_secs(20),
        "the overview shows the computed metrics",
        || async {
            console
                .get("/", &session, &[])
                .await
                .2
                .contains("Metrics computed at")
        },
    )
    .await;
}

/// A console that starts (a restarted daemon, another replica) shows the overview the one
/// before it computed at once, from the database, with the time it was computed; a kept
/// report past half its life is shown while it is computed again; one this build cannot
/// read is computed again.
async fn a_started_console_shows_the_kept_overview_at_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    a_small_shop(&db).await;
    let computed_at = |page: &str| {
        let (_, rest) = page
            .split_once("Metrics computed at ")
            .unwrap_or_else(|| panic!("no computation time in {page}"));
        rest.split_once(" (").unwrap().0.to_owned()
    };
    let start = |later: i64, name: &'static str| {
        let db = &db;
        async move {
            let console =
                Console::start(db, settings(db, KEY_NEW), now() + TimeDelta::seconds(later)).await;
            let key = console.key(name, Scope::Admin).await;
            let session = console.sign_in(&key).await.1.unwrap();
            (console, session)
        }
    };
    let first_time = now().format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let (first, session) = start(0, "first").await;
    common::eventually(
        std::time::Duration::from_secs(20),
        "the first console computes the overview",
        || async {
            first
                .get("/", &session, &[])
                .await
                .2
                .contains("Metrics computed at")
        },
    )
    .await;
    let page = first.get("/", &session, &[]).await.2;
    assert_eq!(computed_at(&page), first_time);
    drop(first);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM metrics_reports").await, 1);

    // A minute later (the report's life is 300 s): shown at once, not computed again.
    let (second, session) = start(60, "second").await;
    let (status, _, page) = second.get("/", &session, &[]).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        computed_at(&page),
        first_time,
        "the kept report, not a new one"
    );
    assert!(page.contains("<th scope=\"row\">2026-02</th>"), "{page}");
    drop(second);

    // 200 s later (past half its life): shown at once, and computed again behind it. On
    // PostgreSQL the computation is held up by a lock on the events it reads, so the page
    // must show the kept report; SQLite's small computation may win the race.
    let holder = match backend {
        Backend::Postgres => {
            use sqlx::Connection;
            let mut holder = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::raw_sql("BEGIN; LOCK TABLE subscription_events IN ACCESS EXCLUSIVE MODE")
                .execute(&mut holder)
                .await
                .unwrap();
            Some(holder)
        }
        Backend::Sqlite => None,
    };
    let (third, session) = start(200, "third").await;
    let (status, _, page) = third.get("/", &session, &[]).await;
    assert_eq!(status, 200, "{page}");
    let third_time = (now() + TimeDelta::seconds(200))
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string();
    if let Some(mut holder) = holder {
        assert_eq!(
            computed_at(&page),
            first_time,
            "the kept report while computing"
        );
        sqlx::raw_sql("COMMIT").execute(&mut holder).await.unwrap();
    } else {
        assert!(
            [&first_time, &third_time].contains(&&computed_at(&page)),
            "{page}"
        );
    }
    common::eventually(
        std::time::Duration::from_secs(20),
        "the third console computes the overview again",
        || async { computed_at(&third.get("/", &session, &[]).await.2) == third_time },
    )
    .await;
    drop(third);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM metrics_reports").await, 1);

    // A kept report in a shape this build cannot read is computed again, not shown.
    db.execute("UPDATE metrics_reports SET report = '{\"months\": 3}'")
        .await
        .unwrap();
    let (fourth, session) = start(210, "fourth").await;
    let fourth_time = (now() + TimeDelta::seconds(210))
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string();
    common::eventually(
        std::time::Duration::from_secs(20),
        "the fourth console computes the overview",
        || async {
            let page = fourth.get("/", &session, &[]).await.2;
            page.contains("Metrics computed at") && computed_at(&page) == fourth_time
        },
    )
    .await;
}

/// `subsave demo`'s admin key signs in to a console over the demo's database, whose overview
/// shows the demo's six months.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demos_key_opens_its_overview() {
    let dir = std::env::temp_dir().join(format!("subsave-console-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_subsave"))
        .current_dir(&dir)
        .args([
            "--now",
            "2026-01-01T00:00:00Z",
            "demo",
            "--dir",
            "shop",
            "--months",
            "6",
            "--customers",
            "20",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let url = report["database"].as_str().unwrap();
    let mut settings = subsave::config::load(None).unwrap();
    settings.database = common::settings_for(url, 4);
    let store = subsave::store::connect(&settings.database).await.unwrap();
    let console = Console::start_on(store, settings, at("2026-01-01T00:00:00Z")).await;
    let ((status, _, _), session) = console
        .sign_in(report["console_key"].as_str().unwrap())
        .await;
    assert_eq!(status, 303);
    let session = session.unwrap();
    let (status, _, page) = console.get("/", &session, &[]).await;
    assert_eq!(status, 200, "{page}");
    for month in ["2025-08", "2025-09", "2025-10", "2025-11", "2025-12"] {
        assert!(
            page.contains(&format!("<th scope=\"row\">{month}</th>")),
            "{month}: {page}"
        );
    }
    // Its first orders (July, before the default period) include declined cards.
    let (status, _, page) = console
        .get("/?from=2025-07-01&to=2026-01-01", &session, &[])
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("Dunning funnel, USD"), "{page}");
    let _ = std::fs::remove_dir_all(&dir);
}

on_both_backends!(
    an_admin_key_opens_a_session_with_a_strict_cookie,
    wrong_revoked_and_non_admin_keys_hear_the_same,
    sign_out_and_revocation_end_the_session,
    the_sign_in_form_needs_its_own_token,
    the_proxy_header_counts_only_from_a_trusted_address,
    the_overview_shows_report_metrics_numbers,
    a_started_console_shows_the_kept_overview_at_once,
    search_takes_any_text_literally_and_escapes_it,
    search_pages_by_fifty,
    a_partial_refund_with_a_reason_is_confirmed_once,
    a_cancel_with_a_reason_is_confirmed_once,
    every_support_action_shows_its_effect_and_is_done_once,
    support_actions_refuse_forgeries_missing_reasons_and_stale_forms,
    the_queues_list_failures_and_retry_them,
);
