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

on_both_backends!(
    an_admin_key_opens_a_session_with_a_strict_cookie,
    wrong_revoked_and_non_admin_keys_hear_the_same,
    sign_out_and_revocation_end_the_session,
    the_sign_in_form_needs_its_own_token,
    the_proxy_header_counts_only_from_a_trusted_address,
    the_overview_shows_report_metrics_numbers,
);
