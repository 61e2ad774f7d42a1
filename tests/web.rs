//! The customer pages over HTTP on both backends: every action through its form, the page of
//! all of a customer's subscriptions, GETs that change nothing, double posts, CSRF, bad and expired links, fresh links, rate limits, key
//! rotation and the security headers.

mod common;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use common::pages::{KEY_NEW, KEY_OLD, Pages, hidden, settings, signer};
use common::{Backend, TestDb, at};
use subsave::core::lifecycle::{self, Start};
use subsave::core::model::Subscription;

fn now() -> DateTime<Utc> {
    at("2026-12-02T12:00:00Z")
}

async fn subscribed(db: &TestDb, email: &str) -> Subscription {
    let customer = db
        .customer(email, "America/New_York", Some("US-NY"), now())
        .await;
    db.subscribe(
        &customer,
        "3-pack",
        Start::FirstRenewalOn(NaiveDate::from_ymd_opt(2026, 12, 20).unwrap()),
        None,
        now(),
    )
    .await
}

/// What a GET must leave alone: every row that records a change, and the subscription.
async fn snapshot(db: &TestDb, id: i64) -> (i64, i64, i64, String) {
    let sub = db.store.subscription(id).await.unwrap().unwrap();
    (
        db.scalar("SELECT COUNT(*) FROM subscription_events").await,
        db.scalar("SELECT COUNT(*) FROM outbox").await,
        db.scalar("SELECT COUNT(*) FROM orders").await,
        format!("{} {}", lifecycle::fingerprint(&sub), sub.updated_at),
    )
}

async fn events_by(db: &TestDb, id: i64, actor: &str) -> i64 {
    db.scalar(&format!(
        "SELECT COUNT(*) FROM subscription_events WHERE subscription_id = {id} AND actor = '{actor}'"
    ))
    .await
}

/// Opens the action's form and posts it with `fields`; returns the post's status and body. A
/// change's form is on its preview, which the fields choose.
async fn act(pages: &Pages, token: &str, action: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let query = if action == "change" {
        let pairs: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", common::pages::encode(v)))
            .collect();
        format!("?{}", pairs.join("&"))
    } else {
        String::new()
    };
    let (status, _, form) = pages.get(&format!("/s/{token}/{action}{query}")).await;
    assert_eq!(status, 200, "{action} form:\n{form}");
    let csrf = hidden(&form, "csrf");
    let seen = hidden(&form, "seen");
    let mut all = vec![("csrf", csrf.as_str()), ("seen", seen.as_str())];
    all.extend_from_slice(fields);
    let (status, headers, body) = pages.post(&format!("/s/{token}/{action}"), &all).await;
    if status == 303 {
        assert_eq!(
            headers["location"].to_str().unwrap(),
            format!("/s/{token}?done={action}")
        );
    }
    (status, body)
}

async fn every_action_works_and_is_the_customers(backend: Backend) {
    let db = TestDb::new(backend).await;
    let sub = subscribed(&db, "ada@example.com").await;
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let token = signer(KEY_NEW).sign(sub.id, now() + TimeDelta::days(30));

    let (status, _, page) = pages.get(&format!("/s/{token}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("Sunday, December 20, 2026"), "{page}");
    assert!(page.contains("Total"), "the page shows the quote:\n{page}");

    assert_eq!(act(&pages, &token, "skip", &[]).await.0, 303);
    let after = db.store.subscription(sub.id).await.unwrap().unwrap();
    assert_eq!(after.next_cycle, sub.next_cycle + 1, "skipped one renewal");

    assert_eq!(
        act(&pages, &token, "move", &[("date", "2027-01-10")])
            .await
            .0,
        303
    );
    let after = db.store.subscription(sub.id).await.unwrap().unwrap();
    assert_eq!(
        after.next_renewal_at.unwrap(),
        at("2027-01-10T14:00:00Z"),
        "moved to 9:00 New York time"
    );
    let (status, body) = act(&pages, &token, "move", &[("date", "2031-01-01")]).await;
    assert_eq!(status, 422, "beyond web.move_max_days:\n{body}");
    // The window is around the renewal (2027-01-10), not today (2026-12-02): 60 days past it
    // is allowed, though it is over 60 days from today.
    assert_eq!(
        act(&pages, &token, "move", &[("date", "2027-03-10")])
            .await
            .0,
        303
    );
    let (status, body) = act(&pages, &token, "move", &[("date", "2027-05-10")]).await;
    assert_eq!(status, 422, "60 days past the renewal at most:\n{body}");
    assert!(body.contains("to 2027-05-09"), "{body}");
    // The form's quantity bound is the server's (the catalog's limits.max_quantity): a post
    // past it, from a valid form, is refused.
    let (status, _, form) = pages
        .get(&format!(
            "/s/{token}/change?plan=1-pack&quantity=2&interval=30+days"
        ))
        .await;
    assert_eq!(status, 200, "{form}");
    assert!(form.contains("max=\"20\""), "{form}");
    let (csrf, seen) = (hidden(&form, "csrf"), hidden(&form, "seen"));
    let (status, _, body) = pages
        .post(
            &format!("/s/{token}/change"),
            &[
                ("csrf", csrf.as_str()),
                ("seen", seen.as_str()),
                ("plan", "1-pack"),
                ("quantity", "1000"),
                ("interval", "30 days"),
            ],
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("choose 1 to 20"), "{body}");

    // A change shows its price first (a GET), then is confirmed.
    let (status, _, preview) = pages
        .get(&format!(
            "/s/{token}/change?plan=6-pack&quantity=1&interval=180+days"
        ))
        .await;
    assert_eq!(status, 200);
    assert!(preview.contains("Confirm the change"), "{preview}");
    assert_eq!(
        snapshot(&db, sub.id).await.3,
        {
            let s = db.store.subscription(sub.id).await.unwrap().unwrap();
            format!("{} {}", lifecycle::fingerprint(&s), s.updated_at)
        },
        "a preview changes nothing"
    );
    assert_eq!(
        act(
            &pages,
            &token,
            "change",
            &[
                ("plan", "6-pack"),
                ("quantity", "1"),
                ("interval", "180 days")
            ]
        )
        .await
        .0,
        303
    );
    let after = db.store.subscription(sub.id).await.unwrap().unwrap();
    assert_eq!(after.plan.as_str(), "6-pack");

    let (_, _, pause_form) = pages.get(&format!("/s/{token}/pause")).await;
    assert!(
        pause_form.contains("1 delivery (back on") && pause_form.contains("2 deliveries (back on"),
        "{pause_form}"
    );
    assert_eq!(
        act(&pages, &token, "pause", &[("renewals", "2")]).await.0,
        303
    );
    let after = db.store.subscription(sub.id).await.unwrap().unwrap();
    assert_eq!(after.status.to_string(), "paused");
    assert!(after.paused_until.is_some(), "paused for two renewals ends");

    assert_eq!(act(&pages, &token, "resume", &[]).await.0, 303);
    assert_eq!(act(&pages, &token, "renew", &[]).await.0, 303);
    let after = db.store.subscription(sub.id).await.unwrap().unwrap();
    assert_eq!(after.next_renewal_at, Some(now()), "due now");

    let (status, _, cancel_form) = pages.get(&format!("/s/{token}/cancel")).await;
    assert_eq!(status, 200);
    assert!(
        cancel_form.contains("Skip it instead"),
        "one offer before cancelling:\n{cancel_form}"
    );
    assert_eq!(
        act(&pages, &token, "cancel", &[("reason", "moving abroad")])
            .await
            .0,
        303
    );
    let after = db.store.subscription(sub.id).await.unwrap().unwrap();
    assert_eq!(after.status.to_string(), "cancelled");
    assert_eq!(after.cancel_reason.as_deref(), Some("moving abroad"));
    let (_, _, page) = pages.get(&format!("/s/{token}?done=cancel")).await;
    assert!(page.contains("nothing more will be charged"), "{page}");

    // skip, move twice, change, pause, resume, renew, cancel: each one event by the customer,
    // and one confirmation email each (beside the welcome).
    assert_eq!(events_by(&db, sub.id, "customer:link").await, 8);
    assert_eq!(
        db.scalar(&format!(
            "SELECT COUNT(*) FROM outbox WHERE subscription_id = {} AND kind <> 'subscription_created'",
            sub.id
        ))
        .await,
        8
    );
}

async fn a_get_changes_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let sub = subscribed(&db, "ada@example.com").await;
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let token = signer(KEY_NEW).sign(sub.id, now() + TimeDelta::days(30));
    let before = snapshot(&db, sub.id).await;
    for path in [
        String::new(),
        "/skip".into(),
        "/move".into(),
        "/change".into(),
        "/change?plan=1-pack&quantity=2&interval=30+days".into(),
        "/pause".into(),
        "/resume".into(),
        "/cancel".into(),
        "/renew".into(),
        "/fresh".into(),
        "/nonsense".into(),
    ] {
        let (status, _, _) = pages.get(&format!("/s/{token}{path}")).await;
        assert!(
            [200, 404, 405].contains(&status),
            "GET /s/TOKEN{path}: {status}"
        );
    }
    assert_eq!(
        snapshot(&db, sub.id).await,
        before,
        "GETs changed something"
    );
    // A banner is the server's word, not the URL's: an active subscription's page opened
    // with `?done=cancel` says nothing of a cancellation.
    for done in ["cancel", "skip", "pause"] {
        let (status, _, page) = pages.get(&format!("/s/{token}?done={done}")).await;
        assert_eq!(status, 200);
        assert!(!page.contains("Done:"), "?done={done} shown:\n{page}");
    }
}

async fn a_second_post_does_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let sub = subscribed(&db, "ada@example.com").await;
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let token = signer(KEY_NEW).sign(sub.id, now() + TimeDelta::days(30));
    let (_, _, form) = pages.get(&format!("/s/{token}/skip")).await;
    let fields = [
        ("csrf", hidden(&form, "csrf")),
        ("seen", hidden(&form, "seen")),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (first, _, _) = pages.post(&format!("/s/{token}/skip"), &fields).await;
    let after_first = snapshot(&db, sub.id).await;
    let (second, _, body) = pages.post(&format!("/s/{token}/skip"), &fields).await;
    assert_eq!((first, second), (303, 409));
    assert!(body.contains("Nothing was done"), "{body}");
    assert_eq!(snapshot(&db, sub.id).await, after_first, "skipped twice");
    let after = db.store.subscription(sub.id).await.unwrap().unwrap();
    assert_eq!(after.next_cycle, sub.next_cycle + 1);
}

async fn forms_need_their_links_csrf_token(backend: Backend) {
    let db = TestDb::new(backend).await;
    let sub = subscribed(&db, "ada@example.com").await;
    let other = subscribed(&db, "bob@example.com").await;
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let keys = signer(KEY_NEW);
    let token = keys.sign(sub.id, now() + TimeDelta::days(30));
    let other_token = keys.sign(other.id, now() + TimeDelta::days(30));
    let (_, _, form) = pages.get(&format!("/s/{token}/cancel")).await;
    let seen = hidden(&form, "seen");
    let (_, _, other_form) = pages.get(&format!("/s/{other_token}/cancel")).await;
    let before = snapshot(&db, sub.id).await;
    for csrf in [
        None,
        Some(String::new()),
        Some("forged".into()),
        Some(hidden(&other_form, "csrf")),
    ] {
        let mut fields = vec![("seen", seen.as_str())];
        if let Some(csrf) = &csrf {
            fields.push(("csrf", csrf.as_str()));
        }
        let (status, _, _) = pages.post(&format!("/s/{token}/cancel"), &fields).await;
        assert_eq!(status, 403, "csrf {csrf:?}");
    }
    assert_eq!(snapshot(&db, sub.id).await, before);
}

async fn bad_links_reveal_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let sub = subscribed(&db, "ada@example.com").await;
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let keys = signer(KEY_NEW);
    let token = keys.sign(sub.id, now() + TimeDelta::days(30));
    let name = "Customer ada@example.com";
    let tampered_id = token.replacen(&format!(".{}.", sub.id), &format!(".{}.", sub.id + 1), 1);
    let unknown_key =
        signer(&KEY_OLD.replace("old-key", "bad-key")).sign(sub.id, now() + TimeDelta::days(30));
    for bad in [
        tampered_id.as_str(),
        unknown_key.as_str(),
        "nonsense",
        "k2.1.2.3",
    ] {
        for path in ["", "/skip"] {
            let (status, headers, body) = pages.get(&format!("/s/{bad}{path}")).await;
            assert_eq!(status, 403, "{bad}{path}");
            assert!(!body.contains(name) && !body.contains("3-pack"), "{body}");
            assert_eq!(headers["cache-control"], "no-store");
        }
    }
    // Expired: 410, still nothing shown, and a fresh link mailed to the address on file.
    let expired = keys.sign(sub.id, now() - TimeDelta::seconds(1));
    let (status, _, body) = pages.get(&format!("/s/{expired}")).await;
    assert_eq!(status, 410);
    assert!(!body.contains(name) && !body.contains("3-pack"), "{body}");
    let before = snapshot(&db, sub.id).await;
    let (status, _, _) = pages
        .post(
            &format!("/s/{expired}/skip"),
            &[("csrf", &keys.form_token(&expired)), ("seen", "x")],
        )
        .await;
    assert_eq!(status, 410, "an expired link changes nothing");
    assert_eq!(snapshot(&db, sub.id).await, before);
    let (status, _, body) = pages
        .post(
            &format!("/s/{expired}/fresh"),
            &[("csrf", &hidden(&body, "csrf"))],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        db.scalar(&format!(
            "SELECT COUNT(*) FROM outbox WHERE kind = 'link_request' AND subscription_id = {} AND recipient = 'ada@example.com'",
            sub.id
        ))
        .await,
        1
    );
    // Asked again at once: the same answer, and no second email (rate limited).
    let (status, _, _) = pages
        .post(
            &format!("/s/{expired}/fresh"),
            &[("csrf", &keys.form_token(&expired))],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'link_request'")
            .await,
        1
    );
}

async fn a_link_by_address_answers_the_same_either_way(backend: Backend) {
    let db = TestDb::new(backend).await;
    let sub = subscribed(&db, "ada@example.com").await;
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let (known_status, _, known) = pages.post("/s", &[("email", "ada@example.com")]).await;
    let (unknown_status, _, unknown) = pages.post("/s", &[("email", "nobody@example.com")]).await;
    assert_eq!((known_status, known), (unknown_status, unknown));
    let count = format!(
        "SELECT COUNT(*) FROM outbox WHERE kind = 'link_request' AND subscription_id = {}",
        sub.id
    );
    // The lookup happens after the answer.
    for _ in 0..50 {
        if db.scalar(&count).await == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(db.scalar(&count).await, 1);
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'link_request'")
            .await,
        1
    );
}

async fn links_signed_with_a_listed_old_key_still_work(backend: Backend) {
    let db = TestDb::new(backend).await;
    let sub = subscribed(&db, "ada@example.com").await;
    let old_email_token = signer(KEY_OLD).sign(sub.id, now() + TimeDelta::days(30));
    let rotated = Pages::start(&db, settings(&db, &format!("{KEY_NEW}\n{KEY_OLD}")), now()).await;
    assert_eq!(rotated.get(&format!("/s/{old_email_token}")).await.0, 200);
    let (status, _) = act(&rotated, &old_email_token, "skip", &[]).await;
    assert_eq!(status, 303);
    drop(rotated);
    let dropped = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    assert_eq!(dropped.get(&format!("/s/{old_email_token}")).await.0, 403);
}

async fn too_many_requests_wait(backend: Backend) {
    let db = TestDb::new(backend).await;
    let sub = subscribed(&db, "ada@example.com").await;
    let mut limited = settings(&db, KEY_NEW);
    limited.web.link_requests_per_minute = 3;
    let pages = Pages::start(&db, limited, now()).await;
    let token = signer(KEY_NEW).sign(sub.id, now() + TimeDelta::days(30));
    for _ in 0..3 {
        assert_eq!(pages.get(&format!("/s/{token}")).await.0, 200);
    }
    let (status, headers, _) = pages.get(&format!("/s/{token}")).await;
    assert_eq!(status, 429);
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");

    let mut per_client = settings(&db, KEY_NEW);
    per_client.web.requests_per_minute = 2;
    let pages = Pages::start(&db, per_client, now()).await;
    assert_eq!(pages.get("/s").await.0, 200);
    assert_eq!(pages.get("/assets/site.css").await.0, 200);
    assert_eq!(pages.get("/s").await.0, 429);
}

async fn every_response_is_hardened(backend: Backend) {
    let db = TestDb::new(backend).await;
    let sub = subscribed(&db, "ada@example.com").await;
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let token = signer(KEY_NEW).sign(sub.id, now() + TimeDelta::days(30));
    for path in [
        format!("/s/{token}"),
        format!("/s/{token}/cancel"),
        "/s".into(),
        "/nowhere".into(),
        "/s/bad".into(),
    ] {
        let (_, headers, body) = pages.get(&path).await;
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["cache-control"], "no-store");
        assert!(!body.contains("<script"), "no script on {path}");
    }
    // A body past the listener's limit is refused before any handler reads it.
    let big = "x".repeat(200_000);
    let (status, _, _) = pages
        .post(&format!("/s/{token}/cancel"), &[("reason", &big)])
        .await;
    assert_eq!(status, 413);
}

/// A cancelled subscription's page offers a restart at today's price while its window is
/// open: a GET (of the page or of `/restart`) changes nothing, the posted form restarts it
/// once (active, due now, a fresh consent, one `resumed` email marked restarted), and the same
/// form posted again does nothing. After the window the page offers the storefront, and a
/// forged post is refused with nothing changed; so is a restart of a subscription that is not
/// cancelled.
async fn a_cancelled_subscription_restarts_from_its_page_within_its_window(backend: Backend) {
    let db = TestDb::new(backend).await;
    let sub = subscribed(&db, "ada@example.com").await;
    let late = subscribed(&db, "bob@example.com").await;
    let keys = signer(KEY_NEW);
    let token = keys.sign(sub.id, now() + TimeDelta::days(200));
    let late_token = keys.sign(late.id, now() + TimeDelta::days(200));
    let mut with_shop = settings(&db, KEY_NEW);
    with_shop.web.storefront_url = Some("https://shop.example/subscribe".into());
    let pages = Pages::start(&db, with_shop.clone(), now()).await;
    // A form forged for an active subscription (its page offers none).
    let (csrf, seen) = (keys.form_token(&token), lifecycle::fingerprint(&sub));
    let (status, _, body) = pages
        .post(
            &format!("/s/{token}/restart"),
            &[("csrf", csrf.as_str()), ("seen", seen.as_str())],
        )
        .await;
    assert_eq!(
        status, 409,
        "an active subscription is not restarted:\n{body}"
    );
    assert!(body.contains("it is active, not cancelled."), "{body}");
    assert_eq!(events_by(&db, sub.id, "customer:link").await, 0);
    assert_eq!(act(&pages, &token, "cancel", &[]).await.0, 303);
    assert_eq!(act(&pages, &late_token, "cancel", &[]).await.0, 303);

    // 30 days later: within the 90-day window.
    let later = now() + TimeDelta::days(30);
    let pages = Pages::start(&db, with_shop.clone(), later).await;
    let before = snapshot(&db, sub.id).await;
    let (status, _, page) = pages.get(&format!("/s/{token}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("Restart my subscription"), "{page}");
    assert!(
        page.contains("possible until Tuesday, March 2, 2027"),
        "{page}"
    );
    assert!(
        page.contains("$") && page.contains("Total"),
        "today's price:\n{page}"
    );
    let (status, _, _) = pages.get(&format!("/s/{token}/restart")).await;
    assert_eq!(status, 200);
    assert_eq!(
        snapshot(&db, sub.id).await,
        before,
        "a GET restarts nothing"
    );
    let consents = format!(
        "SELECT COUNT(*) FROM consents WHERE subscription_id = {}",
        sub.id
    );
    let consents_before = db.scalar(&consents).await;

    let fields = [
        ("csrf", hidden(&page, "csrf")),
        ("seen", hidden(&page, "seen")),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, headers, _) = pages.post(&format!("/s/{token}/restart"), &fields).await;
    assert_eq!(status, 303);
    let (_, _, done) = pages.get(headers["location"].to_str().unwrap()).await;
    assert!(
        done.contains("Done: your subscription is restarted"),
        "{done}"
    );
    let after = db.store.subscription(sub.id).await.unwrap().unwrap();
    assert_eq!(after.status.to_string(), "active");
    assert_eq!(
        after.next_renewal_at,
        Some(later),
        "due now, at today's price"
    );
    assert_eq!(after.cancel_reason, None);
    assert_eq!(
        db.scalar(&consents).await,
        consents_before + 1,
        "a fresh consent"
    );
    assert_eq!(
        db.scalar(&format!(
            "SELECT COUNT(*) FROM consents WHERE subscription_id = {} AND actor = 'customer:link' AND channel = 'customer'",
            sub.id
        ))
        .await,
        1
    );
    let restart_mail = format!(
        "SELECT COUNT(*) FROM outbox WHERE subscription_id = {} AND kind = 'resumed'",
        sub.id
    );
    assert_eq!(db.scalar(&restart_mail).await, 1, "one confirmation");
    let restarted = snapshot(&db, sub.id).await;
    let (status, _, body) = pages.post(&format!("/s/{token}/restart"), &fields).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("Nothing was done"), "{body}");
    assert_eq!(snapshot(&db, sub.id).await, restarted, "restarted twice");

    // 91 days after the cancellation: the window has ended.
    let past = now() + TimeDelta::days(91);
    let pages = Pages::start(&db, with_shop, past).await;
    let before = snapshot(&db, late.id).await;
    let (status, _, page) = pages.get(&format!("/s/{late_token}")).await;
    assert_eq!(status, 200);
    assert!(!page.contains("Restart my subscription"), "{page}");
    assert!(
        page.contains(
            "It can no longer be restarted (that was possible until Tuesday, March 2, 2027)"
        ),
        "{page}"
    );
    // minijinja escapes the slashes of an attribute's value; the browser reads them back.
    assert!(
        page.contains("href=\"https:&#x2f;&#x2f;shop.example&#x2f;subscribe\""),
        "{page}"
    );
    let cancelled = db.store.subscription(late.id).await.unwrap().unwrap();
    let seen = lifecycle::fingerprint(&cancelled);
    let csrf = keys.form_token(&late_token);
    let (status, _, body) = pages
        .post(
            &format!("/s/{late_token}/restart"),
            &[("csrf", csrf.as_str()), ("seen", seen.as_str())],
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body.contains("it could be restarted until 2027-03-02 (90 days)"),
        "{body}"
    );
    assert_eq!(snapshot(&db, late.id).await, before, "nothing changed");
}

/// The tokens of the subscription pages a page links to (`href="/s/TOKEN"`), in order.
fn page_links(html: &str) -> Vec<String> {
    html.split("href=\"/s/")
        .skip(1)
        .filter_map(|rest| rest.split_once('"').map(|(path, _)| path))
        .filter(|path| !path.contains('/'))
        .map(str::to_owned)
        .collect()
}

/// A customer link (welcome and annual emails) opens one page with every subscription of
/// that customer and none of another's, each linking to its own page and actions with links
/// that expire with the customer link; in German for a German customer. A tampered, expired
/// or wrong-kind link opens nothing, and nothing changes.
async fn one_link_opens_all_of_a_customers_subscriptions(backend: Backend) {
    let db = TestDb::new(backend).await;
    let subs = db
        .subscribed_to(["3-pack", "1-pack", "3-pack"], now())
        .await;
    let other = subscribed(&db, "bob@example.com").await;
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let keys = signer(KEY_NEW);
    let expires = now() + TimeDelta::days(30);
    let customer_id = subs[0].customer_id;
    let token = keys.sign_customer(customer_id, expires);
    let before = (
        snapshot(&db, subs[0].id).await,
        snapshot(&db, other.id).await,
    );

    let (status, _, page) = pages.get(&format!("/c/{token}")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Your subscriptions"), "{page}");
    assert!(page.contains("Next renewal"), "{page}");
    let mut linked = Vec::new();
    for link in page_links(&page) {
        if !linked.contains(&link) {
            linked.push(link);
        }
    }
    let claims: Vec<_> = linked
        .iter()
        .map(|t| keys.verify(t, now()).expect("a genuine subscription link"))
        .collect();
    let ids: Vec<i64> = claims.iter().map(|c| c.subscription_id).collect();
    assert_eq!(ids, subs.iter().map(|s| s.id).collect::<Vec<_>>(), "{page}");
    assert!(claims.iter().all(|c| c.expires_at == expires));
    for link in &linked {
        assert!(
            page.contains(&format!("/s/{link}/skip")),
            "same actions:\n{page}"
        );
        let (status, _, sub_page) = pages.get(&format!("/s/{link}")).await;
        assert_eq!(status, 200, "{sub_page}");
    }
    assert!(!page.contains("bob@example.com"), "{page}");

    db.execute(&format!(
        "UPDATE customers SET locale = 'de-DE' WHERE id = {customer_id}"
    ))
    .await
    .unwrap();
    let (status, _, german) = pages.get(&format!("/c/{token}")).await;
    assert_eq!(status, 200, "{german}");
    for text in [
        "lang=\"de\"",
        "Ihre Abos",
        "Nächste Verlängerung",
        "Nächste Lieferung überspringen",
    ] {
        assert!(german.contains(text), "{text}:\n{german}");
    }

    // Another customer's id in the token, the subscription links of either kind swapped,
    // an expired link: nothing opens, and nothing names anyone.
    let tampered = token.replacen(
        &format!(".{customer_id}."),
        &format!(".{}.", other.customer_id),
        1,
    );
    let wrong_kind = keys.sign(other.id, expires);
    for (path, wanted) in [
        (format!("/c/{tampered}"), 403),
        (format!("/c/{wrong_kind}"), 403),
        (format!("/s/{token}"), 403),
        (format!("/s/{token}/skip"), 403),
        (
            format!("/c/{}", keys.sign_customer(customer_id, now())),
            410,
        ),
    ] {
        let (status, _, body) = pages.get(&path).await;
        assert_eq!(status, wanted, "{path}:\n{body}");
        assert!(!body.contains("Customer "), "{path}:\n{body}");
    }
    assert_eq!(
        (
            snapshot(&db, subs[0].id).await,
            snapshot(&db, other.id).await,
        ),
        before,
        "GETs changed something"
    );
}

/// What a coupon's redemption writes: the subscription's coupon, the coupons' redemption
/// counts and records, events and emails.
async fn coupon_rows(db: &TestDb, id: i64) -> (Option<String>, i64, i64, i64, i64) {
    let sub = db.store.subscription(id).await.unwrap().unwrap();
    (
        sub.coupon.map(|c| c.code),
        db.scalar("SELECT CAST(COALESCE(SUM(redemptions), 0) AS BIGINT) FROM coupons")
            .await,
        db.scalar("SELECT COUNT(*) FROM coupon_redemptions").await,
        db.scalar("SELECT COUNT(*) FROM subscription_events").await,
        db.scalar("SELECT COUNT(*) FROM outbox").await,
    )
}

/// A customer applies a coupon code from the page by the operator's coupons' rules: the GETs
/// (the form, the price with the code) change nothing; a code that does not exist, is
/// disabled, expired, used up or for another plan is refused in the same words (no more is
/// revealed of which codes exist), as is a post without the link's CSRF token, from a stale
/// page or for another price than shown; a good code is redeemed once (counted, recorded,
/// with its event and email), and a second one is refused.
async fn a_coupon_code_applies_from_the_page(backend: Backend) {
    use subsave::core::model::{CouponDuration, NewCoupon};
    use subsave::core::money::BasisPoints;
    use subsave::core::pricing::CouponValue;
    let db = TestDb::new(backend).await;
    let sub = subscribed(&db, "ada@example.com").await;
    let coupon = |code: &str, plan: Option<&str>, expires: Option<DateTime<Utc>>, max| NewCoupon {
        code: code.into(),
        currency: db.catalog.currency,
        value: CouponValue::Percent(BasisPoints::new(1000).unwrap()),
        duration: CouponDuration::Forever,
        plan: plan.map(|p| subsave::core::catalog::PlanId::parse(p).unwrap()),
        expires_at: expires,
        max_redemptions: max,
    };
    let earlier = now() - TimeDelta::days(1);
    for new in [
        coupon("SAVE10", None, None, None),
        coupon("ONEPACK", Some("1-pack"), None, None),
        coupon("OLD", None, Some(earlier), None),
        coupon("OFF", None, None, None),
        coupon("USEDUP", None, None, Some(1)),
    ] {
        db.store.create_coupon(&new, earlier).await.unwrap();
    }
    db.store.disable_coupon("OFF", earlier).await.unwrap();
    let customer = db
        .customer("bob@example.com", "America/New_York", Some("US-NY"), now())
        .await;
    db.subscribe(
        &customer,
        "3-pack",
        lifecycle::Start::AfterCheckout,
        Some("USEDUP"),
        now(),
    )
    .await;
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let token = signer(KEY_NEW).sign(sub.id, now() + TimeDelta::days(30));
    let (_, _, page) = pages.get(&format!("/s/{token}")).await;
    assert!(page.contains(&format!("/s/{token}/coupon")), "{page}");
    let before = (snapshot(&db, sub.id).await, coupon_rows(&db, sub.id).await);

    let (status, _, form) = pages.get(&format!("/s/{token}/coupon")).await;
    assert_eq!(status, 200, "{form}");
    assert!(form.contains("Apply a coupon code"), "{form}");
    let (status, _, preview) = pages.get(&format!("/s/{token}/coupon?code=save10")).await;
    assert_eq!(status, 200, "{preview}");
    assert!(
        preview.contains("SAVE10") && preview.contains("Instead of"),
        "{preview}"
    );
    let (csrf, seen, total) = (
        hidden(&preview, "csrf"),
        hidden(&preview, "seen"),
        hidden(&preview, "total"),
    );
    let (csrf, seen, total) = (csrf.as_str(), seen.as_str(), total.as_str());
    assert_eq!(
        (snapshot(&db, sub.id).await, coupon_rows(&db, sub.id).await),
        before,
        "GETs changed something"
    );

    const REFUSED: &str = "This code cannot be used here or now.";
    for code in ["NOPE", "ONEPACK", "OLD", "OFF", "USEDUP", "onepack"] {
        let (status, _, body) = pages.get(&format!("/s/{token}/coupon?code={code}")).await;
        assert_eq!(status, 200, "{code}: {body}");
        assert!(body.contains(REFUSED), "{code}:\n{body}");
        let (status, _, body) = pages
            .post(
                &format!("/s/{token}/coupon"),
                &[
                    ("csrf", csrf),
                    ("seen", seen),
                    ("code", code),
                    ("total", total),
                ],
            )
            .await;
        assert_eq!(status, 409, "{code}: {body}");
        assert!(body.contains(REFUSED), "{code}:\n{body}");
    }
    for (fields, wanted) in [
        (
            vec![("seen", seen), ("code", "SAVE10"), ("total", total)],
            403,
        ),
        (
            vec![
                ("csrf", "forged"),
                ("seen", seen),
                ("code", "SAVE10"),
                ("total", total),
            ],
            403,
        ),
        (
            vec![
                ("csrf", csrf),
                ("seen", "stale"),
                ("code", "SAVE10"),
                ("total", total),
            ],
            409,
        ),
        (
            vec![
                ("csrf", csrf),
                ("seen", seen),
                ("code", "SAVE10"),
                ("total", "1"),
            ],
            409,
        ),
    ] {
        let (status, _, body) = pages.post(&format!("/s/{token}/coupon"), &fields).await;
        assert_eq!(status, wanted, "{fields:?}:\n{body}");
    }
    assert_eq!(
        (snapshot(&db, sub.id).await, coupon_rows(&db, sub.id).await),
        before,
        "a refused post changed something"
    );

    let fields = [
        ("csrf", csrf),
        ("seen", seen),
        ("code", "save10"),
        ("total", total),
    ];
    let (status, headers, body) = pages.post(&format!("/s/{token}/coupon"), &fields).await;
    assert_eq!(status, 303, "{body}");
    assert_eq!(
        headers["location"].to_str().unwrap(),
        format!("/s/{token}?done=coupon")
    );
    let (code, redemptions, records, events, emails) = coupon_rows(&db, sub.id).await;
    assert_eq!(code.as_deref(), Some("SAVE10"));
    assert_eq!(
        (redemptions, records, events, emails),
        (
            before.1.1 + 1,
            before.1.2 + 1,
            before.1.3 + 1,
            before.1.4 + 1
        ),
        "one redemption, counted and recorded, one event, one email"
    );
    assert_eq!(events_by(&db, sub.id, "customer:link").await, 1);
    let (_, _, page) = pages.get(&format!("/s/{token}?done=coupon")).await;
    assert!(page.contains("Done: your coupon applies"), "{page}");
    assert!(
        !page.contains(&format!("/s/{token}/coupon")),
        "one coupon at most:\n{page}"
    );
    let after = coupon_rows(&db, sub.id).await;
    let (status, _, body) = pages.post(&format!("/s/{token}/coupon"), &fields).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(coupon_rows(&db, sub.id).await, after, "redeemed twice");

    // A German customer is refused in German.
    db.execute("UPDATE customers SET locale = 'de-DE' WHERE email = 'bob@example.com'")
        .await
        .unwrap();
    let bobs = db
        .subscribe(
            &customer,
            "1-pack",
            lifecycle::Start::AfterCheckout,
            None,
            now(),
        )
        .await;
    let token = signer(KEY_NEW).sign(bobs.id, now() + TimeDelta::days(30));
    let (status, _, body) = pages.get(&format!("/s/{token}/coupon?code=NOPE")).await;
    assert_eq!(status, 200);
    for text in [
        "lang=\"de\"",
        "Gutscheincode einlösen",
        "Dieser Code kann hier oder jetzt nicht verwendet werden.",
    ] {
        assert!(body.contains(text), "{text}:\n{body}");
    }
}

/// A German customer's action pages are German (`lang`, headings, forms, dates, the field
/// errors of a bad post and a refusal's frame), as their subscription page is.
async fn action_pages_speak_the_customers_language(backend: Backend) {
    let db = TestDb::new(backend).await;
    let sub = subscribed(&db, "ada@example.com").await;
    db.execute("UPDATE customers SET locale = 'de-DE'")
        .await
        .unwrap();
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let token = signer(KEY_NEW).sign(sub.id, now() + TimeDelta::days(30));
    for (action, texts) in [
        (
            "skip",
            &[
                "Nächste Lieferung überspringen",
                "Sonntag, 20. Dezember 2026",
            ][..],
        ),
        ("move", &["Neues Datum", "Lieferung verschieben"][..]),
        ("change", &["Wie oft", "Neuen Preis ansehen"][..]),
        ("pause", &["Pausieren für", "Mein Abo pausieren"][..]),
        ("renew", &["Jetzt liefern", "Gesamt"][..]),
        ("cancel", &["Ihr Abo kündigen", "Mein Abo kündigen"][..]),
    ] {
        let (status, _, page) = pages.get(&format!("/s/{token}/{action}")).await;
        assert_eq!(status, 200, "{action}: {page}");
        for text in texts.iter().chain(&["lang=\"de\"", "Zurück zu Ihrem Abo"]) {
            assert!(page.contains(text), "{action}: {text}:\n{page}");
        }
    }
    let (status, body) = act(&pages, &token, "move", &[("date", "soon")]).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("wählen Sie ein Datum (Jahr-Monat-Tag)"),
        "{body}"
    );
    let (_, _, form) = pages.get(&format!("/s/{token}/skip")).await;
    let fields = [
        ("csrf", hidden(&form, "csrf")),
        ("seen", "stale".to_owned()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _, body) = pages.post(&format!("/s/{token}/skip"), &fields).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("Nichts wurde getan"), "{body}");
}

/// The pages that know no customer (a bad or expired link, an unknown page, the link-request
/// form and its answers) speak the language the browser asks for, say that they vary by it,
/// and still answer the same whether an address is known or not.
async fn message_pages_speak_the_visitors_language(backend: Backend) {
    let db = TestDb::new(backend).await;
    let sub = subscribed(&db, "ada@example.com").await;
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let keys = signer(KEY_NEW);
    let expired = keys.sign(sub.id, now() - TimeDelta::seconds(1));
    let german = Some("de-DE,de;q=0.9,en;q=0.8");
    let english = Some("en-US,en;q=0.9,de;q=0.5");
    for (language, path, status, text) in [
        (
            german,
            "/s/nonsense".to_owned(),
            403,
            "Dieser Link funktioniert nicht",
        ),
        (
            english,
            "/s/nonsense".to_owned(),
            403,
            "This link does not work",
        ),
        (
            None,
            "/s/nonsense/skip".to_owned(),
            403,
            "This link does not work",
        ),
        (
            german,
            format!("/s/{expired}"),
            410,
            "Dieser Link ist abgelaufen",
        ),
        (
            english,
            format!("/s/{expired}"),
            410,
            "This link has expired",
        ),
        (german, "/c/nonsense".to_owned(), 403, "Ihre E-Mail-Adresse"),
        (german, "/nowhere".to_owned(), 404, "Seite nicht gefunden"),
        (german, "/s".to_owned(), 200, "Ihr Abo verwalten"),
        (english, "/s".to_owned(), 200, "Manage your subscription"),
    ] {
        let (got, headers, body) = pages.get_as(&path, language).await;
        assert_eq!(got, status, "{path} {language:?}: {body}");
        assert!(body.contains(text), "{path} {language:?}: {text}\n{body}");
        let lang = if language == german { "de" } else { "en" };
        assert!(body.contains(&format!("<html lang=\"{lang}\">")), "{body}");
        assert_eq!(headers["vary"], "accept-language", "{path}");
        assert!(!body.contains("3-pack") && !body.contains("ada@"), "{body}");
    }
    let mut answers = Vec::new();
    for address in ["ada@example.com", "nobody@example.com"] {
        let (status, headers, body) = pages.post_as("/s", &[("email", address)], german).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(headers["vary"], "accept-language");
        assert!(body.contains("Sehen Sie in Ihre E-Mails"), "{body}");
        answers.push(body);
    }
    assert_eq!(
        answers[0], answers[1],
        "a known address answers as an unknown one"
    );
    let (status, _, body) = pages.post_as("/s", &[("email", "ada")], german).await;
    assert_eq!(status, 422);
    assert!(body.contains("Das ist keine E-Mail-Adresse"), "{body}");
    let (status, _, body) = pages.post_as("/s", &[("email", "ada")], english).await;
    assert_eq!(status, 422);
    assert!(body.contains("That is not an email address"), "{body}");
}

/// The pages over `db` with a German customer's subscription and an English one's: their
/// links.
async fn german_and_english(db: &TestDb) -> (Pages, String, String) {
    let sub = subscribed(db, "ada@example.com").await;
    let english_sub = subscribed(db, "bob@example.com").await;
    db.execute(&format!(
        "UPDATE customers SET locale = 'de-DE' WHERE id = {}",
        sub.customer_id
    ))
    .await
    .unwrap();
    let pages = Pages::start(db, settings(db, KEY_NEW), now()).await;
    let keys = signer(KEY_NEW);
    let token = keys.sign(sub.id, now() + TimeDelta::days(30));
    let english_token = keys.sign(english_sub.id, now() + TimeDelta::days(30));
    (pages, token, english_token)
}

/// A German customer's pages name the plan as the catalog does in German (`[plans.ID.names]`),
/// an English customer's by its id.
async fn pages_name_plans_in_the_customers_language(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (pages, token, english_token) = german_and_english(&db).await;
    for path in [format!("/s/{token}"), format!("/s/{token}/change")] {
        let (status, _, body) = pages.get(&path).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("3er-Packung"), "{path}: {body}");
    }
    let (_, _, body) = pages.get(&format!("/s/{token}/change")).await;
    assert!(body.contains("6er-Packung"), "{body}");
    let (_, _, body) = pages.get(&format!("/s/{english_token}")).await;
    assert!(
        body.contains("3-pack") && !body.contains("3er-Packung"),
        "{body}"
    );
}

/// A customer is known behind a genuine link: a refused form (CSRF), an unknown order and the
/// core's refusals speak their language, whatever the browser asks for.
async fn refusals_speak_the_customers_language(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (pages, token, english_token) = german_and_english(&db).await;
    let english = Some("en-US");

    let (status, _, body) = pages
        .post_as(&format!("/s/{token}/skip"), &[("csrf", "forged")], english)
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("lang=\"de\""), "{body}");
    assert!(
        body.contains("Dieses Formular kann nicht gesendet werden"),
        "{body}"
    );
    let (status, _, body) = pages
        .post(&format!("/s/{english_token}/skip"), &[("csrf", "forged")])
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("This form cannot be sent"), "{body}");

    let (status, _, body) = pages
        .get_as(&format!("/s/{token}/orders/NO-SUCH"), english)
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("Diese Bestellung gibt es nicht"), "{body}");
    let (status, _, body) = pages
        .get(&format!("/s/{english_token}/orders/NO-SUCH"))
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("No such order"), "{body}");

    // A bound from the core, shown on the change's preview.
    let (status, _, body) = pages.get(&format!("/s/{token}/change?quantity=99")).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("wählen Sie eine Menge von 1 bis 20"),
        "{body}"
    );
    assert!(!body.contains("choose 1 to"), "{body}");
    let (_, _, body) = pages
        .get(&format!("/s/{english_token}/change?quantity=99"))
        .await;
    assert!(body.contains("choose 1 to 20"), "{body}");

    // A lifecycle refusal: a paused subscription cannot be skipped.
    for token in [&token, &english_token] {
        assert_eq!(
            act(&pages, token, "pause", &[("renewals", "2")]).await.0,
            303
        );
    }
    let (status, body) = act(&pages, &token, "skip", &[]).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body.contains("Nichts wurde getan: Ihr Abo ist pausiert; setzen Sie es zuerst fort."),
        "{body}"
    );
    let (status, body) = act(&pages, &english_token, "skip", &[]).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("Nothing was done: it is paused."), "{body}");
}

on_both_backends!(
    message_pages_speak_the_visitors_language,
    refusals_speak_the_customers_language,
    pages_name_plans_in_the_customers_language,
    action_pages_speak_the_customers_language,
    a_coupon_code_applies_from_the_page,
    one_link_opens_all_of_a_customers_subscriptions,
    every_action_works_and_is_the_customers,
    a_cancelled_subscription_restarts_from_its_page_within_its_window,
    a_get_changes_nothing,
    a_second_post_does_nothing,
    forms_need_their_links_csrf_token,
    bad_links_reveal_nothing,
    a_link_by_address_answers_the_same_either_way,
    links_signed_with_a_listed_old_key_still_work,
    too_many_requests_wait,
    every_response_is_hardened,
    the_delivery_address_changes_from_the_page,
);

/// A customer with a default address, and a subscription (3-pack, first renewal 2026-12-20)
/// shipping there, created as every door does.
async fn shipping_to(
    db: &TestDb,
    email: &str,
    locale: &str,
    address: subsave::core::address::RawAddress,
) -> subsave::app::views::SubscriptionView {
    use subsave::app::{App, CustomerRef};
    let app = App::new(
        db.store.clone(),
        std::sync::Arc::new(subsave::config::load(None).unwrap()),
        std::sync::Arc::new(subsave::clock::FixedClock(now())),
    );
    let customer = subsave::app::customers::create(
        &app,
        subsave::app::customers::CustomerInput {
            email: email.parse().unwrap(),
            name: "Ada Lovelace".into(),
            time_zone: "America/New_York".parse().unwrap(),
            locale: locale.into(),
            tax_region: None,
            external_id: None,
            metadata: Default::default(),
        },
        subsave::app::idempotency::Commit::Plain,
    )
    .await
    .unwrap();
    subsave::app::addresses::add(
        &app,
        subsave::app::addresses::AddressInput {
            customer: CustomerRef::Id(customer.id),
            address,
            make_default: true,
        },
        subsave::app::idempotency::Commit::Plain,
    )
    .await
    .unwrap();
    subsave::app::subscriptions::create(
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
    .unwrap()
}

fn san_francisco() -> subsave::core::address::RawAddress {
    subsave::core::address::RawAddress {
        name: "Ada Lovelace".into(),
        line1: "1 Market St".into(),
        city: "San Francisco".into(),
        subdivision: Some("CA".into()),
        postal_code: Some("94105".into()),
        country: "US".into(),
        ..Default::default()
    }
}

/// "Change the delivery address": the form labelled for the country (ZIP code and state in
/// the US, Postleitzahl on a German page), a GET that changes nothing, CSRF, a bad postal code
/// refused naming it, a move to Germany (the EU market: EUR) shown at its new price before it
/// is confirmed,
/// then made once (a second post of the confirmation does nothing) with its email.
async fn the_delivery_address_changes_from_the_page(backend: Backend) {
    let db = TestDb::new(backend).await;
    let sub = shipping_to(&db, "ada@example.com", "en-US", san_francisco()).await;
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let token = signer(KEY_NEW).sign(sub.id, now() + TimeDelta::days(30));
    let address_id = || async {
        db.scalar(&format!(
            "SELECT address_id FROM subscriptions WHERE id = {}",
            sub.id
        ))
        .await
    };
    let home = address_id().await;

    let (status, _, page) = pages.get(&format!("/s/{token}")).await;
    assert_eq!(status, 200);
    assert!(page.contains(&format!("/s/{token}/address")), "{page}");
    let before = snapshot(&db, sub.id).await;
    let (status, _, form) = pages.get(&format!("/s/{token}/address")).await;
    assert_eq!(status, 200, "{form}");
    for label in [
        "Change the delivery address",
        "ZIP code",
        "State",
        "California",
        "1 Market St",
    ] {
        assert!(form.contains(label), "{label}:\n{form}");
    }
    let (status, _, german_form) = pages.get(&format!("/s/{token}/address?country=DE")).await;
    assert_eq!(status, 200);
    assert!(german_form.contains(">Postal code<"), "{german_form}");
    assert!(!german_form.contains("ZIP code"), "{german_form}");
    assert_eq!(snapshot(&db, sub.id).await, before, "a GET changes nothing");

    let csrf = hidden(&form, "csrf");
    let seen = hidden(&form, "seen");
    let berlin = [
        ("name", "Ada Lovelace"),
        ("line1", "Unter den Linden 1"),
        ("city", "Berlin"),
        ("postal_code", "10117"),
        ("country", "DE"),
    ];
    let post = |fields: Vec<(&'static str, String)>| {
        let pages = &pages;
        let token = token.clone();
        async move {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            pages.post(&format!("/s/{token}/address"), &fields).await
        }
    };
    let with = |extra: &[(&'static str, &str)]| {
        let mut all: Vec<(&'static str, String)> =
            berlin.iter().map(|(k, v)| (*k, v.to_string())).collect();
        for (k, v) in extra {
            all.retain(|(key, _)| key != k);
            all.push((k, v.to_string()));
        }
        all
    };

    // A forged form, and a postal code that is not German: refused, nothing changed.
    let (status, _, _) = post(with(&[("csrf", "forged"), ("seen", &seen)])).await;
    assert_eq!(status, 403);
    let (status, _, body) = post(with(&[
        ("csrf", &csrf),
        ("seen", &seen),
        ("postal_code", "1011"),
    ]))
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("postal_code") && body.contains("not a postal code of DE"),
        "{body}"
    );
    assert_eq!(snapshot(&db, sub.id).await, before);

    // Germany is the EU market: 123.99 EUR less 15 %, VAT contained. Shown first.
    let (status, _, confirm) = post(with(&[("csrf", &csrf), ("seen", &seen)])).await;
    assert_eq!(status, 200, "{confirm}");
    assert!(
        confirm.contains("The new price") && confirm.contains("105.39"),
        "{confirm}"
    );
    assert!(
        confirm.contains("123.06"),
        "the price it has now: {confirm}"
    );
    assert_eq!(
        hidden(&confirm, "confirm"),
        "10539 EUR",
        "the price confirmed, in its currency"
    );
    assert_eq!(
        address_id().await,
        home,
        "nothing changes before the confirmation"
    );
    assert_eq!(snapshot(&db, sub.id).await, before);

    // A confirmation of another price (the page was older than the price), or of the same
    // amount in another currency, is shown again.
    for stale in ["12000 EUR", "10539 USD", "10539"] {
        let (status, _, again) = post(with(&[
            ("csrf", &csrf),
            ("seen", &hidden(&confirm, "seen")),
            ("confirm", stale),
        ]))
        .await;
        assert_eq!(status, 200, "{stale}: {again}");
        assert!(again.contains("The new price"), "{again}");
        assert_eq!(address_id().await, home);
    }
    let confirmed = with(&[
        ("csrf", &csrf),
        ("seen", &hidden(&confirm, "seen")),
        ("confirm", "10539 EUR"),
    ]);
    let (status, headers, body) = post(confirmed.clone()).await;
    assert_eq!(status, 303, "{body}");
    assert_eq!(
        headers["location"].to_str().unwrap(),
        format!("/s/{token}?done=change")
    );
    let moved = address_id().await;
    assert_ne!(moved, home);
    assert_eq!(
        db.scalar(&format!(
            "SELECT COUNT(*) FROM addresses WHERE id = {moved} AND country = 'DE' AND postal_code = '10117'"
        ))
        .await,
        1
    );
    assert_eq!(events_by(&db, sub.id, "customer:link").await, 1);
    let emails = format!(
        "SELECT COUNT(*) FROM outbox WHERE subscription_id = {} AND kind = 'changed'",
        sub.id
    );
    assert_eq!(db.scalar(&emails).await, 1, "a confirmation email");
    let email_id = db
        .scalar(&format!(
            "SELECT id FROM outbox WHERE subscription_id = {} AND kind = 'changed'",
            sub.id
        ))
        .await;
    let config = settings(&db, KEY_NEW);
    let links = common::pages::links(&config);
    let app = subsave::app::App::new(
        db.store.clone(),
        std::sync::Arc::new(config),
        std::sync::Arc::new(subsave::clock::FixedClock(now())),
    );
    let email = subsave::app::outbox::show(&app, &links, email_id)
        .await
        .unwrap()
        .rendered;
    assert!(
        email.contains(
            "From then on it ships to: Ada Lovelace, Unter den Linden 1, Berlin 10117, DE"
        ),
        "the email names the new address: {email}"
    );
    let (_, _, page) = pages.get(&format!("/s/{token}?done=change")).await;
    assert!(
        page.contains("105.39"),
        "the page shows the new price: {page}"
    );

    // The same confirmation again (a double click, a stale tab): nothing more.
    let (status, _, body) = post(confirmed).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(address_id().await, moved);
    assert_eq!(db.scalar(&emails).await, 1);
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM addresses WHERE postal_code = '10117'")
            .await,
        1,
        "the address is added once"
    );

    // A German customer's form, in German.
    let berliner = shipping_to(
        &db,
        "bea@example.com",
        "de-DE",
        subsave::core::address::RawAddress {
            name: "Bea Berliner".into(),
            line1: "Karl-Marx-Allee 1".into(),
            city: "Berlin".into(),
            postal_code: Some("10178".into()),
            country: "DE".into(),
            ..Default::default()
        },
    )
    .await;
    let token = signer(KEY_NEW).sign(berliner.id, now() + TimeDelta::days(30));
    let (status, _, form) = pages.get(&format!("/s/{token}/address")).await;
    assert_eq!(status, 200, "{form}");
    for label in [
        "Lieferadresse ändern",
        ">Postleitzahl<",
        "Karl-Marx-Allee 1",
        "lang=\"de\"",
    ] {
        assert!(form.contains(label), "{label}:\n{form}");
    }
    let (_, _, us_form) = pages.get(&format!("/s/{token}/address?country=US")).await;
    assert!(
        us_form.contains(">ZIP-Code<") && us_form.contains(">Bundesstaat<"),
        "{us_form}"
    );
    // A refused field is named in German, as the form labels it, with nothing changed.
    let before = snapshot(&db, berliner.id).await;
    let fields = [
        ("csrf", hidden(&form, "csrf")),
        ("seen", hidden(&form, "seen")),
        ("name", "Bea Berliner".into()),
        ("line1", "Karl-Marx-Allee 1".into()),
        ("city", "Berlin".into()),
        ("postal_code", "1017".into()),
        ("country", "DE".into()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _, body) = pages.post(&format!("/s/{token}/address"), &fields).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("Postleitzahl: Bitte prüfen Sie diese Angabe (zum Beispiel 10115)."),
        "{body}"
    );
    assert_eq!(snapshot(&db, berliner.id).await, before);
}
