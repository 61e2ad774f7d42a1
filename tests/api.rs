//! The HTTP API over a real socket on both backends: authentication and scopes, problem+json
//! shapes, keyset pages that visit every row exactly once while rows are added, and the
//! per-key rate limit.

mod common;

use chrono::{DateTime, Utc};
use common::pages::{KEY_NEW, Pages, settings};
use common::{Backend, TestDb, at};
use subsave::app::{App, api_keys};
use subsave::clock::FixedClock;
use subsave::lifecycle::Start;
use subsave::model::Scope;

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

on_both_backends!(
    keys_and_scopes_guard_every_endpoint,
    pages_visit_every_row_once_while_rows_are_added,
    a_key_sending_too_much_waits,
);
