//! The HTTP API over a real socket on both backends: authentication and scopes, problem+json
//! shapes (every error under `/v1`, the listener's own included), keyset pages that visit every
//! row exactly once while rows are added, unknown query parameters refused, request ids, the
//! per-key rate limit, idempotency (replays, key order in bodies, keys given back by requests
//! cut short), and a database outage logged once.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::pages::{KEY_NEW, Pages, settings};
use common::{Backend, TestDb, at, eventually};
use subsave::app::{App, api_keys};
use subsave::clock::FixedClock;
use subsave::config::Settings;
use subsave::core::lifecycle::Start;
use subsave::core::model::{ProviderKind, Scope};
use subsave::core::secret::Secret;
use subsave::store::ReplyTo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn now() -> DateTime<Utc> {
    at("2026-12-02T12:00:00Z")
}

/// A key of `scope`, made through the same use case as `subsave api-keys create`.
async fn key(db: &TestDb, name: &str, scope: Scope) -> String {
    let app = App::new(
        db.store.clone(),
        std::sync::Arc::new(settings(db, KEY_NEW)),
        std::sync::Arc::new(FixedClock(now())),
    );
    api_keys::create(&app, name, scope).await.unwrap().key
}

async fn get(pages: &Pages, path: &str, key: Option<&str>) -> (u16, String, serde_json::Value) {
    let mut request = pages.client.get(format!("{}{path}", pages.base));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.text().await.unwrap();
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    (status, kind, json)
}

/// A refusal is problem+json with a stable type, the status, and a detail.
fn assert_problem(reply: &(u16, String, serde_json::Value), status: u16, kind: &str) {
    let (got, content_type, body) = reply;
    assert_eq!(*got, status, "{body}");
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(
        body["type"],
        format!("urn:subsave:problem:{kind}"),
        "{body}"
    );
    assert_eq!(body["status"], status);
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    assert!(body["title"].is_string());
}

async fn keys_and_scopes_guard_every_endpoint(backend: Backend) {
    let db = TestDb::new(backend).await;
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let read = key(&db, "support", Scope::Read).await;
    let admin = key(&db, "ops", Scope::Admin).await;
    let revoked = key(&db, "old", Scope::Admin).await;
    let app = App::new(
        db.store.clone(),
        std::sync::Arc::new(settings(&db, KEY_NEW)),
        std::sync::Arc::new(FixedClock(now())),
    );
    api_keys::revoke(&app, "old").await.unwrap();

    assert_problem(&get(&pages, "/v1/plans", None).await, 401, "unauthorized");
    assert_problem(
        &get(&pages, "/v1/plans", Some("ssk_nope")).await,
        401,
        "unauthorized",
    );
    assert_problem(
        &get(&pages, "/v1/plans", Some(&revoked)).await,
        401,
        "unauthorized",
    );
    let (status, kind, plans) = get(&pages, "/v1/plans", Some(&read)).await;
    assert_eq!((status, kind.as_str()), (200, "application/json"));
    assert_eq!(plans["data"].as_array().unwrap().len(), 4);
    assert_eq!(plans["has_more"], false);
    assert_problem(
        &get(&pages, "/v1/outbox", Some(&read)).await,
        403,
        "forbidden",
    );
    assert_eq!(get(&pages, "/v1/outbox", Some(&admin)).await.0, 200);
    assert_problem(
        &get(&pages, "/v1/subscriptions/9999", Some(&read)).await,
        404,
        "not-found",
    );
    assert_problem(
        &get(&pages, "/v1/subscriptions/abc", Some(&read)).await,
        404,
        "not-found",
    );
    assert_problem(
        &get(&pages, "/v1/nowhere", Some(&read)).await,
        404,
        "not-found",
    );
    let refused = get(&pages, "/v1/subscriptions?limit=0", Some(&read)).await;
    assert_problem(&refused, 400, "bad-request");
    assert_eq!(refused.2["field"], "limit");
    assert_problem(
        &get(&pages, "/v1/subscriptions?status=asleep", Some(&read)).await,
        400,
        "bad-request",
    );
    // The keys' uses are recorded; the keys themselves are not stored.
    let listed = api_keys::list(&app).await.unwrap();
    assert!(
        listed
            .iter()
            .find(|k| k.name == "support")
            .unwrap()
            .last_used_at
            .is_some()
    );
    let stored = db
        .scalar(&format!(
            "SELECT COUNT(*) FROM api_keys WHERE key_prefix = '{}'",
            &read[..10]
        ))
        .await;
    assert_eq!(stored, 1);
}

async fn pages_visit_every_row_once_while_rows_are_added(backend: Backend) {
    let db = TestDb::new(backend).await;
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let read = key(&db, "support", Scope::Read).await;
    let customer = db.customer("ada@example.com", "UTC", None, now()).await;
    for _ in 0..25 {
        db.subscribe(&customer, "1-pack", Start::AfterCheckout, None, now())
            .await;
    }
    let mut seen: Vec<i64> = Vec::new();
    let mut after: Option<i64> = None;
    let mut added = 0;
    loop {
        let path = match after {
            Some(id) => format!("/v1/subscriptions?limit=7&starting_after={id}"),
            None => "/v1/subscriptions?limit=7".into(),
        };
        let (status, _, page) = get(&pages, &path, Some(&read)).await;
        assert_eq!(status, 200, "{page}");
        let ids: Vec<i64> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_i64().unwrap())
            .collect();
        seen.extend(&ids);
        // Rows keep arriving while the client pages.
        if added < 6 {
            for _ in 0..3 {
                db.subscribe(&customer, "2-pack", Start::AfterCheckout, None, now())
                    .await;
                added += 1;
            }
        }
        if page["has_more"] == false {
            break;
        }
        after = ids.last().copied();
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "a row was seen twice: {seen:?}");
    assert_eq!(
        seen.len(),
        25 + added,
        "every row, including those added while paging"
    );
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "stable order by id");
}

async fn a_key_sending_too_much_waits(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut limited = settings(&db, KEY_NEW);
    limited.api.requests_per_minute = 3;
    let pages = Pages::start(&db, limited, now()).await;
    let read = key(&db, "support", Scope::Read).await;
    let other = key(&db, "other", Scope::Read).await;
    for _ in 0..3 {
        assert_eq!(get(&pages, "/v1/plans", Some(&read)).await.0, 200);
    }
    let limited = pages
        .client
        .get(format!("{}/v1/plans", pages.base))
        .bearer_auth(&read)
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status().as_u16(), 429);
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait));
    assert_eq!(
        get(&pages, "/v1/plans", Some(&other)).await.0,
        200,
        "per key"
    );
}

async fn post(
    pages: &Pages,
    path: &str,
    key: &str,
    idempotency: Option<&str>,
    body: serde_json::Value,
) -> (u16, Option<String>, serde_json::Value) {
    let mut request = pages
        .client
        .post(format!("{}{path}", pages.base))
        .bearer_auth(key)
        .json(&body);
    if let Some(idempotency) = idempotency {
        request = request.header("Idempotency-Key", idempotency);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    (
        status,
        replayed,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}")),
    )
}

async fn writes_are_idempotent(backend: Backend) {
    let db = TestDb::new(backend).await;
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let write = key(&db, "storefront", Scope::Write).await;
    let read = key(&db, "support", Scope::Read).await;
    let (status, _, customer) = post(
        &pages,
        "/v1/customers",
        &write,
        Some("cust-1"),
        serde_json::json!({ "email": "ada@example.com", "name": "Ada", "time_zone": "Europe/Berlin", "region": "DE" }),
    )
    .await;
    assert_eq!(status, 201, "{customer}");
    let create = serde_json::json!({ "customer": customer["id"], "plan": "3-pack", "first_renewal": "2026-12-20" });
    let first = post(
        &pages,
        "/v1/subscriptions",
        &write,
        Some("sub-1"),
        create.clone(),
    )
    .await;
    assert_eq!((first.0, first.1.as_deref()), (201, None), "{}", first.2);
    let again = post(
        &pages,
        "/v1/subscriptions",
        &write,
        Some("sub-1"),
        create.clone(),
    )
    .await;
    assert_eq!((again.0, again.1.as_deref()), (201, Some("true")));
    assert_eq!(again.2, first.2, "the replay is the first response");
    assert_eq!(db.scalar("SELECT COUNT(*) FROM subscriptions").await, 1);
    assert_eq!(
        db.scalar(
            "SELECT COUNT(*) FROM consents WHERE channel = 'api' AND actor = 'api:storefront'"
        )
        .await,
        1
    );
    let other_body = serde_json::json!({ "customer": customer["id"], "plan": "1-pack" });
    let reused = post(
        &pages,
        "/v1/subscriptions",
        &write,
        Some("sub-1"),
        other_body,
    )
    .await;
    assert_eq!(reused.0, 422);
    assert_eq!(
        reused.2["type"],
        "urn:subsave:problem:idempotency-key-reused"
    );
    let missing = post(&pages, "/v1/subscriptions", &write, None, create.clone()).await;
    assert_eq!(missing.0, 400);
    assert_eq!(missing.2["field"], "Idempotency-Key");
    let forbidden = post(&pages, "/v1/subscriptions", &read, Some("sub-2"), create).await;
    assert_eq!(forbidden.0, 403);

    // An action: done once, whatever the retries.
    let id = first.2["id"].as_i64().unwrap();
    let skip = format!("/v1/subscriptions/{id}/skip");
    let skipped = post(&pages, &skip, &write, Some("skip-1"), serde_json::json!({})).await;
    assert_eq!(skipped.0, 200, "{}", skipped.2);
    let retried = post(&pages, &skip, &write, Some("skip-1"), serde_json::json!({})).await;
    assert_eq!((retried.0, retried.1.as_deref()), (200, Some("true")));
    assert_eq!(
        skipped.2["next_cycle"],
        first.2["next_cycle"].as_i64().unwrap() + 1
    );
    assert_eq!(
        db.scalar(&format!(
            "SELECT COUNT(*) FROM subscription_events WHERE subscription_id = {id} AND kind = 'skip' AND actor = 'api:storefront'"
        ))
        .await,
        1
    );
    // A refusal is answered the same way on a retry.
    let cancel = format!("/v1/subscriptions/{id}/cancel");
    let refused = post(
        &pages,
        &cancel,
        &write,
        Some("cancel-1"),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(refused.0, 422, "{}", refused.2);
    let refused_again = post(
        &pages,
        &cancel,
        &write,
        Some("cancel-1"),
        serde_json::json!({}),
    )
    .await;
    assert_eq!((refused_again.0, refused_again.2), (422, refused.2));
    assert_eq!(refused_again.1.as_deref(), Some("true"));
}

async fn one_key_in_two_concurrent_requests_makes_one_subscription(backend: Backend) {
    let db = TestDb::new(backend).await;
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let write = key(&db, "storefront", Scope::Write).await;
    let customer = db.customer("ada@example.com", "UTC", None, now()).await;
    let body = serde_json::json!({ "customer": customer.id, "plan": "1-pack" });
    for round in 0..5 {
        let idem = format!("race-{round}");
        let (a, b) = tokio::join!(
            post(
                &pages,
                "/v1/subscriptions",
                &write,
                Some(&idem),
                body.clone()
            ),
            post(
                &pages,
                "/v1/subscriptions",
                &write,
                Some(&idem),
                body.clone()
            ),
        );
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert!(
            statuses == [201, 201] || statuses == [201, 409],
            "round {round}: {statuses:?} {} {}",
            a.2,
            b.2
        );
        if statuses == [201, 201] {
            assert_eq!(a.2, b.2, "the second is the first's replay");
        }
        assert_eq!(
            db.scalar("SELECT COUNT(*) FROM subscriptions").await,
            round + 1,
            "one subscription per key"
        );
    }
}

async fn a_failed_change_gives_its_key_back(backend: Backend) {
    let db = TestDb::new(backend).await;
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let write = key(&db, "storefront", Scope::Write).await;
    let customer = db.customer("ada@example.com", "UTC", None, now()).await;
    let sub = db
        .subscribe(&customer, "1-pack", Start::AfterCheckout, None, now())
        .await;
    let skip = format!("/v1/subscriptions/{}/skip", sub.id);
    db.fail_subscription_updates().await;
    let failed = post(&pages, &skip, &write, Some("k"), serde_json::json!({})).await;
    assert_eq!(failed.0, 503, "{}", failed.2);
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM idempotency_keys").await,
        0,
        "nothing committed, and the key is free again"
    );
    db.heal().await;
    let retried = post(&pages, &skip, &write, Some("k"), serde_json::json!({})).await;
    assert_eq!((retried.0, retried.1), (200, None), "{}", retried.2);
    let after = db.store.subscription(sub.id).await.unwrap().unwrap();
    assert_eq!(after.next_cycle, sub.next_cycle + 1, "skipped once");
    // A reservation left by a process that died is taken over once it is old; a fresh one is
    // a request in flight.
    let api_key = db.scalar("SELECT MIN(id) FROM api_keys").await;
    let fingerprint: String = subsave::api::fingerprint("POST", &skip, b"{}")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    for (name, age) in [
        ("stale", "2026-12-02T11:00:00+00:00"),
        ("fresh", "2026-12-02T12:00:00+00:00"),
    ] {
        let bytes = match db.backend {
            Backend::Postgres => format!("decode('{fingerprint}', 'hex')"),
            Backend::Sqlite => format!("x'{fingerprint}'"),
        };
        db.execute(&format!(
            "INSERT INTO idempotency_keys (api_key_id, key, route, fingerprint, created_at, locked_at)              VALUES ({api_key}, '{name}', 'POST {skip}', {bytes}, '{age}', '{age}')"
        ))
        .await
        .unwrap();
    }
    let stale = post(&pages, &skip, &write, Some("stale"), serde_json::json!({})).await;
    assert_eq!(stale.0, 200, "{}", stale.2);
    let fresh = post(&pages, &skip, &write, Some("fresh"), serde_json::json!({})).await;
    assert_eq!(fresh.0, 409);
    assert_eq!(
        fresh.2["type"],
        "urn:subsave:problem:idempotency-key-in-flight"
    );
}

/// `docs/openapi.json` is the document the code serves. After changing an endpoint, run
/// `WRITE_OPENAPI=1 cargo nextest run --test api openapi` to write it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_committed_openapi_document_is_the_served_one() {
    let generated = subsave::api::openapi_document();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
    if std::env::var_os("WRITE_OPENAPI").is_some() {
        std::fs::write(path, format!("{generated}\n")).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert_eq!(
        committed.trim_end(),
        generated,
        "docs/openapi.json is out of date; run WRITE_OPENAPI=1 cargo nextest run --test api openapi"
    );
    let document: serde_json::Value = serde_json::from_str(&generated).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let db = TestDb::new(Backend::Sqlite).await;
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let served = pages
        .client
        .get(format!("{}/v1/openapi.json", pages.base))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status().as_u16(), 200, "served without a key");
    assert_eq!(served.text().await.unwrap(), generated);
}

async fn patch(
    pages: &Pages,
    path: &str,
    key: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let response = pages
        .client
        .patch(format!("{}{path}", pages.base))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn coupons_customers_and_retries(backend: Backend) {
    let db = TestDb::new(backend).await;
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let write = key(&db, "storefront", Scope::Write).await;
    let admin = key(&db, "ops", Scope::Admin).await;
    let coupon = serde_json::json!({ "code": "spring10", "percent": 1000, "duration": "repeating", "duration_orders": 3 });
    let created = post(&pages, "/v1/coupons", &write, Some("c-1"), coupon.clone()).await;
    assert_eq!(created.0, 201, "{}", created.2);
    assert_eq!(created.2["code"], "SPRING10");
    let replay = post(&pages, "/v1/coupons", &write, Some("c-1"), coupon).await;
    assert_eq!((replay.0, replay.1.as_deref()), (201, Some("true")));
    assert_eq!(db.scalar("SELECT COUNT(*) FROM coupons").await, 1);
    let disabled = post(
        &pages,
        "/v1/coupons/spring10/disable",
        &write,
        Some("d-1"),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(disabled.0, 200, "{}", disabled.2);
    assert!(disabled.2["disabled_at"].is_string());
    let (status, _, page) = get(&pages, "/v1/coupons", Some(&write)).await;
    assert_eq!((status, page["data"].as_array().unwrap().len()), (200, 1));

    let customer = db.customer("ada@example.com", "UTC", None, now()).await;
    let path = format!("/v1/customers/{}", customer.id);
    let (status, changed) = patch(
        &pages,
        &path,
        &write,
        serde_json::json!({ "name": "Ada King", "region": "DE", "locale": "de-DE" }),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (
            changed["name"].as_str(),
            changed["tax_region"].as_str(),
            changed["locale"].as_str()
        ),
        (Some("Ada King"), Some("DE"), Some("de-DE"))
    );
    let (status, cleared) =
        patch(&pages, &path, &write, serde_json::json!({ "region": null })).await;
    assert_eq!(
        (
            status,
            cleared["tax_region"].is_null(),
            cleared["name"].as_str()
        ),
        (200, true, Some("Ada King"))
    );
    let (status, refused) =
        patch(&pages, &path, &write, serde_json::json!({ "region": "XX" })).await;
    assert_eq!(status, 422, "{refused}");

    // A failed message, retried by an admin key, once.
    let sub = db
        .subscribe(&customer, "1-pack", Start::AfterCheckout, None, now())
        .await;
    db.execute(&format!(
        "UPDATE outbox SET status = 'failed', last_error = 'test' WHERE subscription_id = {}",
        sub.id
    ))
    .await
    .unwrap();
    let id = db
        .scalar(&format!(
            "SELECT MIN(id) FROM outbox WHERE subscription_id = {}",
            sub.id
        ))
        .await;
    let retry = format!("/v1/outbox/{id}/retry");
    assert_eq!(
        post(&pages, &retry, &write, Some("r-1"), serde_json::json!({}))
            .await
            .0,
        403
    );
    let retried = post(&pages, &retry, &admin, Some("r-1"), serde_json::json!({})).await;
    assert_eq!((retried.0, retried.2["retried"].as_i64()), (200, Some(1)));
    let again = post(&pages, &retry, &admin, Some("r-2"), serde_json::json!({})).await;
    assert_eq!(again.0, 409, "not failed any more: {}", again.2);
    let replayed = post(&pages, &retry, &admin, Some("r-2"), serde_json::json!({})).await;
    assert_eq!((replayed.0, replayed.2), (409, again.2));
}

async fn addresses_and_the_shipping_address(backend: Backend) {
    let db = TestDb::new(backend).await;
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let write = key(&db, "storefront", Scope::Write).await;
    let ada = db.customer("ada@example.com", "UTC", None, now()).await;
    let bob = db.customer("bob@example.com", "UTC", None, now()).await;
    let path = format!("/v1/customers/{}/addresses", ada.id);
    let home = serde_json::json!({ "name": "Ada Lovelace", "line1": "Unter den Linden 1", "city": "Berlin", "postal_code": "10117", "country": "DE" });
    let added = post(&pages, &path, &write, Some("a-1"), home.clone()).await;
    assert_eq!(added.0, 201, "{}", added.2);
    assert_eq!(
        (added.2["is_default"].as_bool(), added.2["country"].as_str()),
        (Some(true), Some("DE"))
    );
    let replay = post(&pages, &path, &write, Some("a-1"), home).await;
    assert_eq!(
        (replay.0, replay.1.as_deref(), &replay.2),
        (201, Some("true"), &added.2)
    );
    let office = serde_json::json!({ "name": "Ada Lovelace", "line1": "1 Market St", "city": "San Francisco", "subdivision": "US-CA", "postal_code": "94105", "country": "US" });
    let office = post(&pages, &path, &write, Some("a-2"), office).await;
    assert_eq!(office.0, 201, "{}", office.2);
    let refused = post(
        &pages,
        &path,
        &write,
        Some("a-3"),
        serde_json::json!({ "name": "Ada", "line1": "1 Main St", "city": "Leeds", "postal_code": "LS1 1UR", "country": "GB" }),
    )
    .await;
    assert_eq!(refused.0, 422, "{}", refused.2);
    assert!(
        refused.2["detail"]
            .as_str()
            .unwrap()
            .contains("it ships to DE, FR, US"),
        "{}",
        refused.2
    );
    let (status, _, page) = get(&pages, &path, Some(&write)).await;
    assert_eq!(
        (
            status,
            page["data"].as_array().unwrap().len(),
            &page["has_more"]
        ),
        (200, 2, &serde_json::json!(false))
    );

    let sub = post(
        &pages,
        "/v1/subscriptions",
        &write,
        Some("s-1"),
        serde_json::json!({ "customer": ada.id, "plan": "3-pack", "shipping_address": office.2["id"] }),
    )
    .await;
    assert_eq!(sub.0, 201, "{}", sub.2);
    assert_eq!(sub.2["shipping_address"]["subdivision"], "US-CA");
    let bobs = post(
        &pages,
        &format!("/v1/customers/{}/addresses", bob.id),
        &write,
        Some("b-1"),
        serde_json::json!({ "name": "Bob", "line1": "Hauptstr. 2", "city": "Köln", "postal_code": "50667", "country": "DE" }),
    )
    .await;
    let sub_path = format!("/v1/subscriptions/{}", sub.2["id"]);
    let (status, refused) = patch(
        &pages,
        &sub_path,
        &write,
        serde_json::json!({ "shipping_address": bobs.2["id"] }),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    // The move to Germany changes the market (USD to EUR) and the price: a preview shows it
    // and changes nothing.
    let (status, preview) = patch(
        &pages,
        &sub_path,
        &write,
        serde_json::json!({ "shipping_address": added.2["id"], "preview": true }),
    )
    .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(
        (
            &preview["applied"],
            &preview["price_changes"],
            &preview["quote_before"]["total"],
            &preview["quote"]["total"],
            &preview["shipping_address"]["country"]
        ),
        (
            &serde_json::json!(false),
            &serde_json::json!(true),
            &serde_json::json!({ "amount_minor": 12306, "currency": "USD" }),
            &serde_json::json!({ "amount_minor": 10539, "currency": "EUR" }),
            &serde_json::json!("DE")
        ),
        "{preview}"
    );
    let (_, _, unchanged) = get(&pages, &sub_path, Some(&write)).await;
    assert_eq!(
        unchanged["shipping_address"]["country"], "US",
        "{unchanged}"
    );
    let (status, moved) = patch(
        &pages,
        &sub_path,
        &write,
        serde_json::json!({ "shipping_address": added.2["id"] }),
    )
    .await;
    assert_eq!(
        (status, &moved["shipping_address"]["country"]),
        (200, &serde_json::json!("DE")),
        "{moved}"
    );
    assert_eq!(
        (
            &moved["applied"],
            &moved["price_changes"],
            &moved["quote"]["total"]["amount_minor"]
        ),
        (
            &serde_json::json!(true),
            &serde_json::json!(true),
            &serde_json::json!(10539)
        ),
        "the change answers its new quote: {moved}"
    );
    // Back to California under an Idempotency-Key: the reply (with its quotes) is stored with
    // the change and replayed, and the change is made once.
    let keyed = || {
        pages
            .client
            .patch(format!("{}{sub_path}", pages.base))
            .bearer_auth(&write)
            .header("Idempotency-Key", "move-back")
            .json(&serde_json::json!({ "shipping_address": office.2["id"] }))
            .send()
    };
    let first = keyed().await.unwrap();
    assert_eq!(first.status().as_u16(), 200);
    let first: serde_json::Value = first.json().await.unwrap();
    assert_eq!(
        (
            &first["price_changes"],
            &first["quote"]["total"]["amount_minor"]
        ),
        (&serde_json::json!(true), &serde_json::json!(12306)),
        "{first}"
    );
    let again = keyed().await.unwrap();
    assert_eq!(
        again.headers()["idempotent-replayed"].to_str().unwrap(),
        "true"
    );
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(again, first);
    assert_eq!(
        db.scalar(&format!(
            "SELECT COUNT(*) FROM subscription_events WHERE subscription_id = {} AND kind = 'change'",
            sub.2["id"]
        ))
        .await,
        2,
        "to Germany and back, once each"
    );
}

async fn a_shipment_is_recorded_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let write = key(&db, "warehouse", Scope::Write).await;
    let ada = db
        .customer("ada@example.com", "UTC", Some("DE"), now())
        .await;
    db.subscribe(&ada, "1-pack", Start::Now, None, now()).await;
    assert_eq!(
        db.engine(subsave::core::renewal::CatchUp::Latest, 10)
            .sweep(now())
            .await
            .unwrap()
            .orders,
        1
    );
    let order_path = "/v1/orders/BB-0000001-000";
    let (status, _, unshipped) = get(&pages, order_path, Some(&write)).await;
    assert_eq!(status, 200, "{unshipped}");
    assert_eq!(
        unshipped["fulfillment"]["status"], "unfulfilled",
        "{unshipped}"
    );
    assert_eq!(
        unshipped["fulfillment"]["tracking_number"],
        serde_json::Value::Null
    );
    let path = "/v1/orders/BB-0000001-000/fulfillments";
    let shipment = serde_json::json!({ "carrier": "usps", "tracking_number": "9400111899", "shipped_at": "2026-12-02T09:30:00Z" });
    let first = post(&pages, path, &write, Some("f-1"), shipment.clone()).await;
    assert_eq!(first.0, 201, "{}", first.2);
    assert_eq!(
        (
            &first.2["status"],
            &first.2["carrier"],
            &first.2["tracking_url"]
        ),
        (
            &serde_json::json!("fulfilled"),
            &serde_json::json!("USPS"),
            &serde_json::json!("https://tools.usps.com/go/TrackConfirmAction?tLabels=9400111899")
        )
    );
    let replay = post(&pages, path, &write, Some("f-1"), shipment.clone()).await;
    assert_eq!(
        (replay.0, replay.1.as_deref(), &replay.2),
        (201, Some("true"), &first.2)
    );
    let resent = post(&pages, path, &write, Some("f-2"), shipment).await;
    assert_eq!(
        (resent.0, &resent.2),
        (200, &first.2),
        "the same shipment under another key"
    );
    let other = post(
        &pages,
        path,
        &write,
        Some("f-3"),
        serde_json::json!({ "carrier": "UPS", "tracking_number": "1Z1" }),
    )
    .await;
    assert_eq!(other.0, 409, "{}", other.2);
    let unknown = post(
        &pages,
        "/v1/orders/BB-0000009-000/fulfillments",
        &write,
        Some("f-4"),
        serde_json::json!({ "carrier": "UPS", "tracking_number": "1Z1" }),
    )
    .await;
    assert_eq!(unknown.0, 404, "{}", unknown.2);
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'order_shipped'")
            .await,
        1
    );
    // The order's own JSON says so, as `orders show --json` does.
    let (_, _, shipped) = get(&pages, order_path, Some(&write)).await;
    let fulfillment = &shipped["fulfillment"];
    assert_eq!(
        (
            &fulfillment["status"],
            &fulfillment["carrier"],
            &fulfillment["tracking_number"],
            &fulfillment["tracking_url"],
            &fulfillment["shipped_at"]
        ),
        (
            &serde_json::json!("fulfilled"),
            &serde_json::json!("USPS"),
            &serde_json::json!("9400111899"),
            &first.2["tracking_url"],
            &serde_json::json!("2026-12-02T09:30:00Z")
        ),
        "{shipped}"
    );
    let shown: serde_json::Value = serde_json::from_slice(&common::subsave_stdout(
        &db,
        &["orders", "show", "BB-0000001-000", "--json"],
        &[],
    ))
    .unwrap();
    assert_eq!(shown["fulfillment"], *fulfillment);
    let (_, _, listed) = get(&pages, "/v1/orders", Some(&write)).await;
    assert_eq!(
        listed["data"][0]["fulfillment"],
        serde_json::Value::Null,
        "lists do not read it"
    );
}

/// `GET /v1/customers/{id}/export` and `POST /v1/customers/{id}/erase` need an admin key; the
/// erasure is refused while a subscription runs, made once (replayed by its key), and refused
/// as already done under another key.
async fn personal_data_is_exported_and_erased_by_an_admin(backend: Backend) {
    let db = TestDb::new(backend).await;
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let write = key(&db, "storefront", Scope::Write).await;
    let admin = key(&db, "privacy", Scope::Admin).await;
    let ada = db
        .customer("ada@example.com", "UTC", Some("DE"), now())
        .await;
    let sub = db
        .subscribe(&ada, "1-pack", Start::AfterCheckout, None, now())
        .await;
    let export = format!("/v1/customers/{}/export", ada.id);
    let erase = format!("/v1/customers/{}/erase", ada.id);
    assert_problem(&get(&pages, &export, Some(&write)).await, 403, "forbidden");
    let forbidden = post(&pages, &erase, &write, Some("e-0"), serde_json::json!({})).await;
    assert_eq!(forbidden.0, 403, "{}", forbidden.2);

    let (status, _, data) = get(&pages, &export, Some(&admin)).await;
    assert_eq!(status, 200, "{data}");
    assert_eq!(data["customer"]["email"], "ada@example.com");
    assert_eq!(data["subscriptions"][0]["subscription"]["id"], sub.id);
    assert_eq!(data["erasure"], serde_json::Value::Null);

    let running = post(&pages, &erase, &admin, Some("e-1"), serde_json::json!({})).await;
    assert_eq!(running.0, 409, "{}", running.2);
    let cancelled = post(
        &pages,
        &format!("/v1/subscriptions/{}/cancel", sub.id),
        &write,
        Some("c-1"),
        serde_json::json!({ "reason": "forget me" }),
    )
    .await;
    assert_eq!(cancelled.0, 200, "{}", cancelled.2);
    let erased = post(&pages, &erase, &admin, Some("e-2"), serde_json::json!({})).await;
    assert_eq!(erased.0, 200, "{}", erased.2);
    assert_eq!(
        (&erased.2["customer_id"], &erased.2["actor"]),
        (
            &serde_json::json!(ada.id),
            &serde_json::json!("api:privacy")
        )
    );
    let replay = post(&pages, &erase, &admin, Some("e-2"), serde_json::json!({})).await;
    assert_eq!(
        (replay.0, replay.1.as_deref(), &replay.2),
        (200, Some("true"), &erased.2)
    );
    let again = post(&pages, &erase, &admin, Some("e-3"), serde_json::json!({})).await;
    assert_eq!(again.0, 409, "{}", again.2);
    assert!(
        again.2["detail"]
            .as_str()
            .unwrap()
            .contains("already erased")
    );
    assert_eq!(db.scalar("SELECT COUNT(*) FROM erasures").await, 1);
    let (_, _, data) = get(&pages, &export, Some(&admin)).await;
    assert_eq!(
        data["customer"]["email"],
        format!("erased-{}@erased.invalid", ada.id)
    );
    assert_eq!(data["erasure"]["actor"], "api:privacy");
    let (status, renamed) = patch(
        &pages,
        &format!("/v1/customers/{}", ada.id),
        &write,
        serde_json::json!({ "name": "Ada Lovelace" }),
    )
    .await;
    assert_eq!(
        status, 409,
        "an erased customer's details stay erased: {renamed}"
    );
}

/// A stand-in for Stripe's refunds: the first refund is answered after `hang`, the others at
/// once. Returns its base URL.
async fn slow_stripe(hang: Duration) -> String {
    let calls = Arc::new(AtomicUsize::new(0));
    let router = axum::Router::new().route(
        "/v1/refunds",
        axum::routing::post(move || {
            let calls = calls.clone();
            async move {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    tokio::time::sleep(hang).await;
                }
                axum::Json(serde_json::json!({"id": "re_scripted", "status": "succeeded"}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

/// Settings that charge through the Stripe at `base`, answering within `timeout_secs`.
fn stripe_settings(db: &TestDb, base: &str, timeout_secs: u64) -> Settings {
    let mut config = settings(db, KEY_NEW);
    config.payments.provider = ProviderKind::Stripe;
    config.payments.stripe.api_base = base.to_owned();
    config.payments.stripe.secret_key = Some(Secret::new("sk_test_scripted".to_owned()));
    config.payments.timeout_secs = 10;
    config.http.request_timeout_secs = timeout_secs;
    config
}

/// The number of an order paid through Stripe (marked paid by hand: no charge is sent).
async fn paid_stripe_order(db: &TestDb, config: &Settings) -> String {
    let customer = db.customer("ada@example.com", "UTC", None, now()).await;
    db.subscribe(&customer, "1-pack", Start::Now, None, now())
        .await;
    let billed = subsave::engine::Engine::from_settings(db.store.clone(), config)
        .sweep(now())
        .await
        .unwrap();
    assert_eq!(billed.orders, 1);
    db.execute(
        "UPDATE payments SET status = 'paid', next_attempt_at = NULL, \
         provider_payment_ref = 'pi_paid', paid_at = created_at",
    )
    .await
    .unwrap();
    let order = db.scalar("SELECT MIN(id) FROM orders").await;
    db.store
        .orders(&subsave::store::OrderFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .find(|o| o.id == order)
        .unwrap()
        .order_number
}

async fn a_request_cut_by_the_timeout_gives_its_key_back(backend: Backend) {
    let db = TestDb::new(backend).await;
    let stripe = slow_stripe(Duration::from_secs(3)).await;
    let config = stripe_settings(&db, &stripe, 1);
    let order = paid_stripe_order(&db, &config).await;
    let pages = Pages::start(&db, config, now()).await;
    let admin = key(&db, "ops", Scope::Admin).await;
    let path = format!("/v1/orders/{order}/refunds");
    let body = serde_json::json!({ "amount_minor": 100, "reason": "one pack arrived damaged" });
    // Stripe hangs past the request timeout: 503, and the key is given back.
    let cut = pages
        .client
        .post(format!("{}{path}", pages.base))
        .bearer_auth(&admin)
        .header("Idempotency-Key", "refund-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(cut.status().as_u16(), 503);
    eventually(Duration::from_secs(5), "the key given back", || async {
        db.scalar("SELECT COUNT(*) FROM idempotency_keys WHERE key = 'refund-1'")
            .await
            == 0
    })
    .await;
    // So the retry the 503 invites runs (Stripe refunds once per its own key).
    let retried = post(&pages, &path, &admin, Some("refund-1"), body.clone()).await;
    assert_eq!(
        (retried.0, retried.1.as_deref()),
        (201, None),
        "{}",
        retried.2
    );
    // A key whose change committed is never given back: giving it back changes nothing.
    let api_key_id = db.scalar("SELECT MIN(id) FROM api_keys").await;
    db.store
        .release_idempotency_key(&ReplyTo {
            api_key_id,
            key: "refund-1".into(),
        })
        .await
        .unwrap();
    let replayed = post(&pages, &path, &admin, Some("refund-1"), body).await;
    assert_eq!((replayed.0, replayed.1.as_deref()), (201, Some("true")));
    assert_eq!(replayed.2, retried.2);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM credit_notes").await, 1);
    // A quote (it changes nothing) answers its retry too, rather than 409 for a minute.
    let quote = serde_json::json!({ "plan": "1-pack" });
    let first = post(&pages, "/v1/quotes", &admin, Some("q-1"), quote.clone()).await;
    let again = post(&pages, "/v1/quotes", &admin, Some("q-1"), quote).await;
    assert_eq!(first.0, 200, "{}", first.2);
    assert_eq!(
        (again.0, again.1.as_deref()),
        (200, Some("true")),
        "{}",
        again.2
    );
}

/// A raw HTTP/1.1 exchange (for what a client library would not send): the status, the
/// headers (lower-cased names) and the body, and how long the answer took.
async fn raw(pages: &Pages, request: &str) -> (u16, Vec<(String, String)>, String, Duration) {
    let address = pages.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let started = Instant::now();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
            .await
            .expect("an answer within 10 s")
            .unwrap_or(0);
        bytes.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .and_then(|n| n.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= length || read == 0 {
                let mut lines = head.lines();
                let status = lines
                    .next()
                    .unwrap()
                    .split(' ')
                    .nth(1)
                    .unwrap()
                    .parse()
                    .unwrap();
                let headers = lines
                    .filter_map(|l| l.split_once(": "))
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
                    .collect();
                return (status, headers, body.to_owned(), started.elapsed());
            }
        }
        assert!(read > 0, "the connection closed without an answer: {text}");
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn every_error_under_v1_is_a_problem(backend: Backend) {
    let logs = common::logs::capture();
    let db = TestDb::new(backend).await;
    let stripe = slow_stripe(Duration::from_secs(5)).await;
    let config = stripe_settings(&db, &stripe, 2);
    let order = paid_stripe_order(&db, &config).await;
    let pages = Pages::start(&db, config, now()).await;
    let admin = key(&db, "ops", Scope::Admin).await;
    let response = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let kind = r.headers()["content-type"].to_str().unwrap().to_owned();
        let headers = r.headers().clone();
        let body: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        ((status, kind, body), headers)
    };

    // A method the endpoint does not take: 405 with Allow.
    let (reply, headers) = response(
        pages
            .client
            .delete(format!("{}/v1/plans", pages.base))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_problem(&reply, 405, "method-not-allowed");
    assert!(headers["allow"].to_str().unwrap().contains("GET"));
    // A body over http.max_body_bytes.
    let (reply, _) = response(
        pages
            .client
            .post(format!("{}/v1/customers", pages.base))
            .bearer_auth(&admin)
            .header("Idempotency-Key", "big")
            .header("content-type", "application/json")
            .body(format!("\"{}\"", "x".repeat(70_000)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_problem(&reply, 413, "too-large");
    // A path that is not UTF-8 once decoded.
    let (reply, _) = response(
        pages
            .client
            .get(format!("{}/v1/customers/%FF", pages.base))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_problem(&reply, 400, "bad-request");

    // A declared body far over the limit is refused at once, not after the timeout.
    let request = format!(
        "POST /v1/customers HTTP/1.1\r\nHost: subsave\r\nAuthorization: Bearer {admin}\r\n\
         Idempotency-Key: huge\r\nContent-Type: application/json\r\n\
         Content-Length: 1000000000000000\r\n\r\n{{}}"
    );
    let (status, headers, body, took) = raw(&pages, &request).await;
    assert_eq!(status, 413, "{body}");
    assert!(took < Duration::from_secs(1), "answered in {took:?}");
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/problem+json")
    );
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["type"], "urn:subsave:problem:too-large");
    // A chunked body that is not chunked: 400.
    let request = format!(
        "POST /v1/customers HTTP/1.1\r\nHost: subsave\r\nAuthorization: Bearer {admin}\r\n\
         Idempotency-Key: chunks\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n"
    );
    let (status, headers, body, _) = raw(&pages, &request).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/problem+json")
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["type"],
        "urn:subsave:problem:bad-request"
    );

    // Stripe hangs past the request timeout: 503 unavailable, with Retry-After, logged.
    let request_id = format!("slow-refund-{backend:?}");
    let (reply, headers) = response(
        pages
            .client
            .post(format!("{}/v1/orders/{order}/refunds", pages.base))
            .bearer_auth(&admin)
            .header("Idempotency-Key", "slow")
            .header("x-request-id", &request_id)
            .json(&serde_json::json!({ "reason": "late" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_problem(&reply, 503, "unavailable");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(headers["x-request-id"], request_id.as_str());
    eventually(Duration::from_secs(2), "the 503 logged", || async {
        logs.lines_with(&["api request", &request_id, "status=503"])
            .len()
            == 1
    })
    .await;
}

async fn unknown_query_parameters_are_refused_and_customers_are_found_by_email(backend: Backend) {
    let logs = common::logs::capture();
    let db = TestDb::new(backend).await;
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let read = key(&db, "support", Scope::Read).await;
    let admin = key(&db, "ops", Scope::Admin).await;
    let write = key(&db, "storefront", Scope::Write).await;
    let ada = db.customer("ada@example.com", "UTC", None, now()).await;
    let bob = db.customer("bob@example.com", "UTC", None, now()).await;
    let ids = |page: &serde_json::Value| -> Vec<i64> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_i64().unwrap())
            .collect()
    };
    // `email` finds the one customer, whatever its case; an unknown address finds nobody.
    let (status, _, found) =
        get(&pages, "/v1/customers?email=Bob%40Example.COM", Some(&read)).await;
    assert_eq!((status, ids(&found)), (200, vec![bob.id]), "{found}");
    let (_, _, none) = get(&pages, "/v1/customers?email=eve%40example.com", Some(&read)).await;
    assert_eq!(ids(&none), Vec::<i64>::new());
    // A misspelt parameter is refused, never ignored (which listed every customer).
    let refused = get(&pages, "/v1/customers?emial=bob%40example.com", Some(&read)).await;
    assert_problem(&refused, 400, "bad-request");
    assert_eq!(refused.2["field"], "emial");
    assert!(
        refused.2["detail"].as_str().unwrap().contains("email"),
        "{}",
        refused.2
    );
    for path in [
        "/v1/plans?expand=all",
        "/v1/subscriptions/1?expand=customer",
        "/v1/orders?limit=5&customer_id=1",
        "/v1/outbox?state=failed",
        "/v1/openapi.json?version=2",
    ] {
        let refused = get(&pages, path, Some(&admin)).await;
        assert_problem(&refused, 400, "bad-request");
        assert!(refused.2["field"].is_string(), "{path}: {}", refused.2);
    }
    let head = pages
        .client
        .head(format!(
            "{}/v1/customers?emial=bob%40example.com",
            pages.base
        ))
        .bearer_auth(&read)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status().as_u16(), 400, "HEAD takes what GET takes");
    let created = post(
        &pages,
        "/v1/customers?dry_run=true",
        &write,
        Some("dry"),
        serde_json::json!({ "email": "cy@example.com", "name": "Cy", "time_zone": "UTC" }),
    )
    .await;
    assert_eq!(
        (created.0, created.2["field"].as_str()),
        (400, Some("dry_run"))
    );
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM customers").await,
        2,
        "nothing made"
    );
    // A page starting after an id that does not exist is refused; an existing one pages.
    for list in [
        "customers",
        "subscriptions",
        "orders",
        "payments",
        "coupons",
        "outbox",
    ] {
        let refused = get(
            &pages,
            &format!("/v1/{list}?starting_after=987654"),
            Some(&admin),
        )
        .await;
        assert_problem(&refused, 400, "bad-request");
        assert_eq!(refused.2["field"], "starting_after", "{list}");
    }
    let (status, _, after) = get(
        &pages,
        &format!("/v1/customers?starting_after={}", ada.id),
        Some(&read),
    )
    .await;
    assert_eq!((status, ids(&after)), (200, vec![bob.id]));
    // A subscription's events are paged like every list.
    let sub = db
        .subscribe(
            &ada,
            "1-pack",
            subsave::core::lifecycle::Start::AfterCheckout,
            None,
            now(),
        )
        .await;
    for _ in 0..2 {
        subsave::app::subscriptions::perform(
            &subsave::app::App::new(
                db.store.clone(),
                Arc::new(settings(&db, KEY_NEW)),
                Arc::new(subsave::clock::FixedClock(now())),
            ),
            &subsave::core::model::Actor::cli(),
            sub.id,
            &subsave::app::subscriptions::Action::Skip,
            subsave::app::idempotency::Commit::Plain,
        )
        .await
        .unwrap();
    }
    let events = |query: &str| {
        let path = format!("/v1/subscriptions/{}/events{query}", sub.id);
        let read = read.clone();
        let pages = &pages;
        async move { get(pages, &path, Some(&read)).await }
    };
    let (status, _, first) = events("?limit=2").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        (ids(&first).len(), first["has_more"].as_bool()),
        (2, Some(true))
    );
    let last_id = ids(&first)[1];
    let (_, _, rest) = events(&format!("?starting_after={last_id}")).await;
    assert_eq!(
        (ids(&rest).len(), rest["has_more"].as_bool()),
        (1, Some(false)),
        "{rest}"
    );
    assert!(ids(&rest)[0] > last_id);
    assert_problem(&events("?starting_after=987654").await, 400, "bad-request");
    assert_problem(&events("?kind=skip").await, 400, "bad-request");

    // Every response carries a request id: the caller's when it is valid, else a new one.
    let with_id = |id: &str| {
        pages
            .client
            .get(format!("{}/v1/plans", pages.base))
            .bearer_auth(&read)
            .header("x-request-id", id)
            .send()
    };
    let echoed = with_id("shop-order-1001").await.unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "shop-order-1001");
    for invalid in ["two words".to_owned(), "x".repeat(300)] {
        let replaced = with_id(&invalid).await.unwrap();
        let id = replaced.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(!id.is_empty() && id != invalid, "{id}");
    }
    let unauthorized = pages
        .client
        .get(format!("{}/v1/plans", pages.base))
        .send()
        .await
        .unwrap();
    assert!(unauthorized.headers().contains_key("x-request-id"));
    // And the request's log line names it.
    eventually(Duration::from_secs(2), "the request id logged", || async {
        logs.lines_with(&["api request", "shop-order-1001"]).len() == 1
    })
    .await;
}

async fn the_same_json_in_another_order_is_the_same_request(backend: Backend) {
    let db = TestDb::new(backend).await;
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let write = key(&db, "storefront", Scope::Write).await;
    let send = |key: &'static str, path: &'static str, body: String| {
        let request = pages
            .client
            .post(format!("{}{path}", pages.base))
            .bearer_auth(&write)
            .header("Idempotency-Key", key)
            .header("content-type", "application/json")
            .body(body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let replayed = response.headers().contains_key("idempotent-replayed");
            let body: serde_json::Value = response.json().await.unwrap();
            (status, replayed, body)
        }
    };
    let first = send(
        "c-1",
        "/v1/customers",
        r#"{"email":"ada@example.com","name":"Ada","time_zone":"UTC"}"#.into(),
    )
    .await;
    assert_eq!((first.0, first.1), (201, false), "{}", first.2);
    // The same request, its keys in another order and spaced out: the first answer again.
    let again = send(
        "c-1",
        "/v1/customers",
        "{ \"time_zone\" : \"UTC\",\n  \"name\": \"Ada\", \"email\": \"ada@example.com\" }".into(),
    )
    .await;
    assert_eq!((again.0, again.1), (201, true), "{}", again.2);
    assert_eq!(again.2, first.2);
    // Another value is another request.
    let other = send(
        "c-1",
        "/v1/customers",
        r#"{"email":"ada@example.com","name":"Ada L.","time_zone":"UTC"}"#.into(),
    )
    .await;
    assert_eq!(
        other.2["type"],
        "urn:subsave:problem:idempotency-key-reused"
    );
    // Nested and numeric: 2.0 is 2, as the body is read.
    let id = first.2["id"].as_i64().unwrap();
    let sub = send(
        "s-1",
        "/v1/subscriptions",
        format!(r#"{{"customer": {id}, "plan": "1-pack", "quantity": 2}}"#),
    )
    .await;
    assert_eq!(sub.0, 201, "{}", sub.2);
    let same = send(
        "s-1",
        "/v1/subscriptions",
        format!(r#"{{"quantity": 2.0, "plan": "1-pack", "customer": {id}}}"#),
    )
    .await;
    assert_eq!((same.0, same.1), (201, true), "{}", same.2);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM subscriptions").await, 1);
}

/// The database goes away (a proxy cut) while requests come in: each is answered 503
/// `unavailable`, and the log says once that the database is unavailable and once that it is
/// back, not a line per request. PostgreSQL only: an SQLite file has no outages to log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_logged_once_not_per_request() {
    let logs = common::logs::capture();
    let db = TestDb::new(Backend::Postgres).await;
    let read = key(&db, "support", Scope::Read).await;
    let proxy = common::proxy::TcpProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let via_proxy = db
        .url
        .replacen("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port), 1);
    let store = subsave::store::connect(&common::settings_for(&via_proxy, 4))
        .await
        .unwrap();
    let mut config = settings(&db, KEY_NEW);
    config.http.request_timeout_secs = 30;
    let pages = Pages::start_on(store, config, now()).await;
    assert_eq!(get(&pages, "/v1/customers", Some(&read)).await.0, 200);

    proxy.cut();
    let requests = (0..8).map(|_| get(&pages, "/v1/customers", Some(&read)));
    for reply in futures_util::future::join_all(requests).await {
        assert_problem(&reply, 503, "unavailable");
    }
    proxy.restore().await;
    eventually(Duration::from_secs(30), "answers again", || async {
        get(&pages, "/v1/customers", Some(&read)).await.0 == 200
    })
    .await;
    let text = logs.text();
    assert_eq!(text.matches("database unavailable").count(), 1, "{text}");
    assert_eq!(
        text.matches("database available again").count(),
        1,
        "{text}"
    );
    assert_eq!(
        text.matches(" WARN subsave").count(),
        0,
        "no line per request:\n{text}"
    );
}

/// `POST /v1/subscriptions/{id}/restart`: refused for an active subscription; after a
/// cancellation, done once by its key (a replay answers the same and restarts nothing again,
/// another key is refused as the subscription is no longer cancelled); refused with nothing
/// changed after `web.restart_days`.
/// `POST /v1/subscriptions/{id}/restart` with `write` and `idempotency`, no body.
async fn restart(
    pages: &Pages,
    write: &str,
    id: i64,
    idempotency: &str,
) -> (u16, Option<String>, serde_json::Value) {
    let path = format!("/v1/subscriptions/{id}/restart");
    post(
        pages,
        &path,
        write,
        Some(idempotency),
        serde_json::json!(null),
    )
    .await
}

async fn a_cancelled_subscription_restarts_once_by_its_key(backend: Backend) {
    let db = TestDb::new(backend).await;
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let write = key(&db, "storefront", Scope::Write).await;
    let [sub, late] = db.subscribed_to(["3-pack", "1-pack"], now()).await;
    let path = |id: i64, action: &str| format!("/v1/subscriptions/{id}/{action}");
    let refused = restart(&pages, &write, sub.id, "r-0").await;
    assert_eq!(refused.0, 409, "{}", refused.2);
    assert_eq!(refused.2["type"], "urn:subsave:problem:invalid-state");
    assert!(
        refused.2["detail"]
            .as_str()
            .unwrap()
            .contains("it is active, not cancelled"),
        "{}",
        refused.2
    );
    for (id, idempotency) in [(sub.id, "c-1"), (late.id, "c-2")] {
        let cancel = post(
            &pages,
            &path(id, "cancel"),
            &write,
            Some(idempotency),
            serde_json::json!({ "reason": "moving" }),
        )
        .await;
        assert_eq!(cancel.0, 200, "{}", cancel.2);
    }

    let later = now() + chrono::TimeDelta::days(10);
    let pages = Pages::start(&db, settings(&db, KEY_NEW), later).await;
    let first = restart(&pages, &write, sub.id, "r-1").await;
    assert_eq!(first.0, 200, "{}", first.2);
    assert_eq!(first.2["status"], "active");
    assert_eq!(first.2["id"], sub.id);
    let replay = restart(&pages, &write, sub.id, "r-1").await;
    assert_eq!((replay.0, replay.1.as_deref()), (200, Some("true")));
    assert_eq!(replay.2, first.2);
    let restarts = format!(
        "SELECT COUNT(*) FROM subscription_events WHERE subscription_id = {} AND kind = 'restart' AND actor = 'api:storefront'",
        sub.id
    );
    assert_eq!(db.scalar(&restarts).await, 1, "restarted once");
    assert_eq!(
        db.scalar(&format!(
            "SELECT COUNT(*) FROM consents WHERE subscription_id = {} AND channel = 'api' AND actor = 'api:storefront'",
            sub.id
        ))
        .await,
        1,
        "a fresh consent"
    );
    let again = restart(&pages, &write, sub.id, "r-2").await;
    assert_eq!(again.0, 409, "{}", again.2);
    assert_eq!(db.scalar(&restarts).await, 1);

    let past = now() + chrono::TimeDelta::days(91);
    let pages = Pages::start(&db, settings(&db, KEY_NEW), past).await;
    let before = db.store.subscription(late.id).await.unwrap().unwrap();
    let expired = restart(&pages, &write, late.id, "r-3").await;
    assert_eq!(expired.0, 409, "{}", expired.2);
    assert!(
        expired.2["detail"].as_str().unwrap().contains(
            "it could be restarted until 2027-03-02 (90 days); subscribe again from the storefront"
        ),
        "{}",
        expired.2
    );
    assert_eq!(
        db.store.subscription(late.id).await.unwrap().unwrap(),
        before
    );
}

on_both_backends!(
    addresses_and_the_shipping_address,
    personal_data_is_exported_and_erased_by_an_admin,
    a_shipment_is_recorded_once,
    coupons_customers_and_retries,
    a_cancelled_subscription_restarts_once_by_its_key,
    writes_are_idempotent,
    one_key_in_two_concurrent_requests_makes_one_subscription,
    a_failed_change_gives_its_key_back,
    keys_and_scopes_guard_every_endpoint,
    pages_visit_every_row_once_while_rows_are_added,
    a_key_sending_too_much_waits,
    a_request_cut_by_the_timeout_gives_its_key_back,
    every_error_under_v1_is_a_problem,
    unknown_query_parameters_are_refused_and_customers_are_found_by_email,
    the_same_json_in_another_order_is_the_same_request,
    external_ids_and_metadata_are_set_merged_and_found,
    lists_filter_by_created_and_updated_ranges_page_by_page,
    orders_are_listed_by_when_they_were_written,
);

/// The ids of a page's objects.
/// Every object of a list, following its pages `limit` at a time: `list` is a path with its
/// query (`/v1/orders?created%5Bgte%5D=…`).
async fn every_object(pages: &Pages, key: &str, list: &str, limit: u32) -> Vec<serde_json::Value> {
    let mut objects = Vec::new();
    let mut after = None::<i64>;
    let joined = if list.contains('?') { '&' } else { '?' };
    loop {
        let starting = after
            .map(|a| format!("&starting_after={a}"))
            .unwrap_or_default();
        let (status, _, page) = get(
            pages,
            &format!("{list}{joined}limit={limit}{starting}"),
            Some(key),
        )
        .await;
        assert_eq!(status, 200, "{list}: {page}");
        after = ids_of(&page).last().copied().or(after);
        objects.extend(page["data"].as_array().unwrap().iter().cloned());
        if page["has_more"] == false {
            return objects;
        }
    }
}

fn ids_of(page: &serde_json::Value) -> Vec<i64> {
    page["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{page}"))
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect()
}

/// A storefront's own ids and metadata on customers and subscriptions: set on create, merged
/// by PATCH ("" and null remove a key), shown, bounded (each refusal names the key), unique per
/// kind (409 naming external_id), found by `?external_id=`, and replayed under a key whatever
/// the order of the metadata's keys.
async fn external_ids_and_metadata_are_set_merged_and_found(backend: Backend) {
    let db = TestDb::new(backend).await;
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let write = key(&db, "storefront", Scope::Write).await;
    let ada = serde_json::json!({
        "email": "ada@example.com", "name": "Ada", "time_zone": "UTC",
        "external_id": "gid://shop/Customer/1", "metadata": { "tier": "gold", "source": "web" }
    });
    let created = post(&pages, "/v1/customers", &write, Some("c-1"), ada.clone()).await;
    assert_eq!(created.0, 201, "{}", created.2);
    assert_eq!(created.2["external_id"], "gid://shop/Customer/1");
    assert_eq!(
        created.2["metadata"],
        serde_json::json!({ "source": "web", "tier": "gold" })
    );
    assert_eq!(created.2["updated_at"], created.2["created_at"]);
    let id = created.2["id"].as_i64().unwrap();
    // The same request with the metadata's keys in the other order is a replay.
    let reordered = serde_json::json!({
        "metadata": { "source": "web", "tier": "gold" }, "external_id": "gid://shop/Customer/1",
        "time_zone": "UTC", "name": "Ada", "email": "ada@example.com"
    });
    let replay = post(&pages, "/v1/customers", &write, Some("c-1"), reordered).await;
    assert_eq!((replay.0, replay.1.as_deref()), (201, Some("true")));
    assert_eq!(replay.2, created.2);
    // Another customer with that external id: refused, naming it; nothing written.
    let mut bob = ada.clone();
    bob["email"] = "bob@example.com".into();
    let taken = post(&pages, "/v1/customers", &write, Some("c-2"), bob.clone()).await;
    assert_eq!(taken.0, 409, "{}", taken.2);
    assert_eq!(taken.2["type"], "urn:subsave:problem:conflict");
    assert!(
        taken.2["detail"]
            .as_str()
            .unwrap()
            .contains("external_id \"gid://shop/Customer/1\""),
        "{}",
        taken.2
    );
    assert_eq!(db.scalar("SELECT COUNT(*) FROM customers").await, 1);
    bob["external_id"] = "gid://shop/Customer/2".into();
    let bob = post(&pages, "/v1/customers", &write, Some("c-3"), bob).await;
    assert_eq!(bob.0, 201, "{}", bob.2);
    let bob_id = bob.2["id"].as_i64().unwrap();

    // PATCH merges: "" and null remove, a new key is added, the rest kept; the external id
    // stays unless named.
    let path = format!("/v1/customers/{id}");
    let merged = patch(
        &pages,
        &path,
        &write,
        serde_json::json!({ "metadata": { "tier": "", "source": null, "note": "gift" } }),
    )
    .await;
    assert_eq!(merged.0, 200, "{}", merged.1);
    assert_eq!(merged.1["metadata"], serde_json::json!({ "note": "gift" }));
    assert_eq!(merged.1["external_id"], "gid://shop/Customer/1");
    // Bounds, each refusal naming the key; nothing changed.
    let long_key = "k".repeat(41);
    let too_many: serde_json::Map<String, serde_json::Value> =
        (0..50).map(|i| (format!("k{i}"), "v".into())).collect();
    for (body, names) in [
        (
            serde_json::json!({ "metadata": { long_key.clone(): "v" } }),
            long_key.as_str(),
        ),
        (
            serde_json::json!({ "metadata": { "note": "x".repeat(501) } }),
            "\"note\" has 501 characters",
        ),
        (
            serde_json::json!({ "metadata": { "line": "a\u{1b}[2Jb" } }),
            "\"line\"",
        ),
        (serde_json::json!({ "metadata": too_many }), "51 keys"),
        (serde_json::json!({ "external_id": "" }), "external_id"),
        (
            serde_json::json!({ "external_id": "x".repeat(256) }),
            "external_id has 256 characters",
        ),
    ] {
        let refused = patch(&pages, &path, &write, body.clone()).await;
        assert_eq!(refused.0, 422, "{body}: {}", refused.1);
        assert!(
            refused.1["detail"].as_str().unwrap().contains(names),
            "{body}: {}",
            refused.1
        );
    }
    let (_, _, unchanged) = get(&pages, &path, Some(&write)).await;
    assert_eq!(unchanged["metadata"], serde_json::json!({ "note": "gift" }));
    // Bob's external id for Ada: a conflict; null clears it.
    let conflict = patch(
        &pages,
        &path,
        &write,
        serde_json::json!({ "external_id": "gid://shop/Customer/2" }),
    )
    .await;
    assert_eq!(conflict.0, 409, "{}", conflict.1);
    assert!(
        conflict.1["detail"]
            .as_str()
            .unwrap()
            .contains("external_id")
    );
    let cleared = patch(
        &pages,
        &path,
        &write,
        serde_json::json!({ "external_id": null }),
    )
    .await;
    assert_eq!(
        (cleared.0, &cleared.1["external_id"]),
        (200, &serde_json::Value::Null)
    );

    // Found by external id: exactly, and nobody for an id no one has or none could have.
    let (status, _, found) = get(
        &pages,
        "/v1/customers?external_id=gid%3A%2F%2Fshop%2FCustomer%2F2",
        Some(&write),
    )
    .await;
    assert_eq!((status, ids_of(&found)), (200, vec![bob_id]), "{found}");
    for query in [
        "external_id=gid%3A%2F%2Fshop%2FCustomer%2F1",
        "external_id=",
        "external_id=a%0Ab",
    ] {
        let (status, _, none) = get(&pages, &format!("/v1/customers?{query}"), Some(&write)).await;
        assert_eq!((status, ids_of(&none)), (200, vec![]), "{query}: {none}");
    }

    // Subscriptions: the same fields, found the same way.
    let sub_body = serde_json::json!({
        "customer": id, "plan": "1-pack", "external_id": "sub-1", "metadata": { "channel": "web" }
    });
    let sub = post(
        &pages,
        "/v1/subscriptions",
        &write,
        Some("s-1"),
        sub_body.clone(),
    )
    .await;
    assert_eq!(sub.0, 201, "{}", sub.2);
    assert_eq!(sub.2["external_id"], "sub-1");
    assert_eq!(sub.2["metadata"], serde_json::json!({ "channel": "web" }));
    let sub_id = sub.2["id"].as_i64().unwrap();
    let twin = post(&pages, "/v1/subscriptions", &write, Some("s-2"), sub_body).await;
    assert_eq!(twin.0, 409, "{}", twin.2);
    assert!(
        twin.2["detail"]
            .as_str()
            .unwrap()
            .contains("external_id \"sub-1\"")
    );
    assert_eq!(db.scalar("SELECT COUNT(*) FROM subscriptions").await, 1);
    let sub_path = format!("/v1/subscriptions/{sub_id}");
    let changed = patch(
        &pages,
        &sub_path,
        &write,
        serde_json::json!({ "metadata": { "channel": null, "gift": "yes" }, "external_id": "sub-one" }),
    )
    .await;
    assert_eq!(changed.0, 200, "{}", changed.1);
    assert_eq!(changed.1["metadata"], serde_json::json!({ "gift": "yes" }));
    assert_eq!(changed.1["external_id"], "sub-one");
    assert_eq!(
        (
            changed.1["applied"].clone(),
            changed.1["price_changes"].clone()
        ),
        (true.into(), false.into())
    );
    // With a change of plan, refused: each is its own request.
    let mixed = patch(
        &pages,
        &sub_path,
        &write,
        serde_json::json!({ "plan": "3-pack", "metadata": { "gift": "no" } }),
    )
    .await;
    assert_eq!(
        (mixed.0, mixed.1["field"].as_str()),
        (422, Some("plan")),
        "{}",
        mixed.1
    );
    let (_, _, shown) = get(&pages, &sub_path, Some(&write)).await;
    assert_eq!(
        (shown["plan"].as_str(), &shown["metadata"]),
        (Some("1-pack"), &serde_json::json!({ "gift": "yes" }))
    );
    let (_, _, found) = get(
        &pages,
        "/v1/subscriptions?external_id=sub-one",
        Some(&write),
    )
    .await;
    assert_eq!(ids_of(&found), vec![sub_id]);
    let (_, _, none) = get(&pages, "/v1/subscriptions?external_id=sub-1", Some(&write)).await;
    assert_eq!(ids_of(&none), Vec::<i64>::new());
}

/// Orders are listed by when they were written, page by page (a storefront's "since my last
/// sync"); a malformed bound is refused naming it.
async fn orders_are_listed_by_when_they_were_written(backend: Backend) {
    let db = TestDb::new(backend).await;
    let read = key(&db, "support", Scope::Read).await;
    let day = |d: i64| at("2026-11-01T09:00:00Z") + chrono::TimeDelta::days(d);
    let engine = db.engine(subsave::core::renewal::CatchUp::Latest, 10);
    for d in 0..5 {
        let c = db
            .customer(&format!("o{d}@example.com"), "UTC", None, day(d))
            .await;
        db.subscribe(&c, "1-pack", Start::Now, None, day(d)).await;
        engine
            .sweep(day(d) + chrono::TimeDelta::hours(1))
            .await
            .unwrap();
    }
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let listed = |query: &'static str| {
        let (pages, read) = (&pages, &read);
        async move {
            every_object(pages, read, &format!("/v1/orders?{query}"), 1)
                .await
                .iter()
                .map(|o| o["created_at"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(listed("").await.len(), 5);
    assert_eq!(
        listed("created%5Bgte%5D=2026-11-02T10:00:00Z&created%5Blt%5D=2026-11-04T10:00:00Z").await,
        vec!["2026-11-02T10:00:00Z", "2026-11-03T10:00:00Z"]
    );
    assert_eq!(
        listed("created%5Bgte%5D=2026-11-05T10:00:00.000001Z").await,
        Vec::<String>::new()
    );
    let refused = get(&pages, "/v1/orders?created%5Blt%5D=soon", Some(&read)).await;
    assert_problem(&refused, 400, "bad-request");
    assert_eq!(refused.2["field"], "created[lt]");
    let refused = get(
        &pages,
        "/v1/orders?updated%5Blt%5D=2026-11-02T00:00:00Z",
        Some(&read),
    )
    .await;
    assert_problem(&refused, 400, "bad-request");
    assert_eq!(refused.2["field"], "updated[lt]");
}

/// `created[gte]`/`created[lt]` and `updated[gte]`/`updated[lt]` on the customers and
/// subscriptions lists: half-open ranges, pages that visit each match once, and a malformed
/// instant refused with 400 naming its parameter.
async fn lists_filter_by_created_and_updated_ranges_page_by_page(backend: Backend) {
    let db = TestDb::new(backend).await;
    let read = key(&db, "support", Scope::Read).await;
    let write = key(&db, "storefront", Scope::Write).await;
    let day = |d: i64| at("2026-11-01T00:00:00Z") + chrono::TimeDelta::days(d);
    let mut customers = Vec::new();
    for d in 0..6 {
        let c = db
            .customer(&format!("c{d}@example.com"), "UTC", None, day(d))
            .await;
        db.subscribe(&c, "1-pack", Start::AfterCheckout, None, day(d))
            .await;
        customers.push(c.id);
    }
    // Customer 4 changes at now() (2026-12-02), through the API.
    let pages = Pages::start(&db, settings(&db, KEY_NEW), now()).await;
    let changed = patch(
        &pages,
        &format!("/v1/customers/{}", customers[4]),
        &write,
        serde_json::json!({ "metadata": { "seen": "yes" } }),
    )
    .await;
    assert_eq!(changed.0, 200, "{}", changed.1);
    let every_page = |list: &'static str, query: String| {
        let (pages, read) = (&pages, &read);
        async move {
            every_object(pages, read, &format!("/v1/{list}?{query}"), 2)
                .await
                .iter()
                .map(|o| o["id"].as_i64().unwrap())
                .collect::<Vec<_>>()
        }
    };
    let between =
        "created%5Bgte%5D=2026-11-02T00:00:00Z&created%5Blt%5D=2026-11-06T00:00:00%2B00:00";
    assert_eq!(
        every_page("customers", between.into()).await,
        customers[1..5].to_vec()
    );
    let subs: Vec<i64> = every_page("subscriptions", between.into()).await;
    assert_eq!(subs.len(), 4, "{subs:?}");
    assert_eq!(
        every_page("customers", "updated%5Bgte%5D=2026-12-02T12:00:00Z".into()).await,
        vec![customers[4]]
    );
    assert_eq!(
        every_page(
            "customers",
            "created%5Bgte%5D=2026-11-01T00:00:00Z&updated%5Blt%5D=2026-12-01T00:00:00Z".into()
        )
        .await,
        [&customers[..4], &customers[5..]].concat()
    );
    // A subscription's updated_at is its last change: each was written when created.
    assert_eq!(
        every_page(
            "subscriptions",
            "updated%5Blt%5D=2026-11-03T00:00:00Z".into()
        )
        .await
        .len(),
        2
    );
    // A date without a time, a zone-less time, or nonsense: 400, naming the parameter.
    for (query, name) in [
        ("/v1/customers?created%5Bgte%5D=2026-11-02", "created[gte]"),
        (
            "/v1/customers?updated%5Blt%5D=2026-11-02T00:00:00",
            "updated[lt]",
        ),
        ("/v1/subscriptions?created%5Blt%5D=yesterday", "created[lt]"),
        (
            "/v1/subscriptions?updated%5Bgte%5D=2026-13-01T00:00:00Z",
            "updated[gte]",
        ),
    ] {
        let refused = get(&pages, query, Some(&read)).await;
        assert_problem(&refused, 400, "bad-request");
        assert_eq!(refused.2["field"], name, "{query}");
    }
    // An operator that is not offered is an unknown parameter.
    let refused = get(
        &pages,
        "/v1/customers?created%5Bgt%5D=2026-11-02T00:00:00Z",
        Some(&read),
    )
    .await;
    assert_problem(&refused, 400, "bad-request");
    assert_eq!(refused.2["field"], "created[gt]");
}
