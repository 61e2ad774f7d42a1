//! Webhooks out, on both backends: events written to the outbox with the change that made
//! them, POSTed to a real HTTP receiver that first answers 500 and then 200 (retried with the
//! same `webhook-id`), and signatures checked by an independent implementation (Python's hmac);
//! a payment's events whoever records its outcome (the worker, or Stripe's webhook), and a
//! refund's with its credit note.

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use common::pages::{KEY_NEW, settings};
use common::{Backend, TestDb, at};
use subsave::app::idempotency::Commit;
use subsave::app::subscriptions::{self, SubscriptionInput};
use subsave::app::{App, CustomerRef, outbox, renewals};
use subsave::clock::FixedClock;
use subsave::config::{MailTransport, Settings};
use subsave::core::lifecycle::Start;
use subsave::core::model::{Actor, ProviderKind};
use subsave::core::secret::Secret;

/// What the receiver saw: each request's headers and body.
type Seen = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// A receiver that answers 500 to its first request and 200 to the others.
async fn receiver() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route(
            "/hooks",
            post(
                |State(seen): State<Seen>, headers: HeaderMap, body: Bytes| async move {
                    let mut seen = seen.lock().unwrap();
                    seen.push((headers, String::from_utf8_lossy(&body).into_owned()));
                    if seen.len() == 1 {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                },
            ),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn secret() -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([7u8; 32])
    )
}

fn app_at(db: &TestDb, settings: &Settings, now: DateTime<Utc>) -> App {
    App::new(
        db.store.clone(),
        Arc::new(settings.clone()),
        Arc::new(FixedClock(now)),
    )
}

/// Checks a delivery's signature with Python's hmac, as a receiver in another language would.
fn python_verifies(headers: &HeaderMap, body: &str) -> bool {
    let header = |name: &str| headers[name].to_str().unwrap().to_owned();
    let script = r#"
import base64, hashlib, hmac, sys
secret, msg_id, timestamp, signature = sys.argv[1:5]
body = sys.stdin.read()
key = base64.b64decode(secret.split("_", 1)[1])
expected = base64.b64encode(hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()).decode()
sys.exit(0 if any(hmac.compare_digest(s.split(",", 1)[1], expected) for s in signature.split(" ")) else 1)
"#;
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            script,
            &secret(),
            &header("webhook-id"),
            &header("webhook-timestamp"),
            &header("webhook-signature"),
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    child.wait().unwrap().success()
}

async fn events_are_signed_and_retried_until_delivered(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (url, seen) = receiver().await;
    let mut config = settings(&db, KEY_NEW);
    config.mail.transport = MailTransport::Log;
    config.webhooks.endpoints = vec![
        subsave::core::webhooks::Endpoint::new(
            "warehouse",
            &url,
            &secret(),
            &[
                "subscription.created".into(),
                "subscription.cancelled".into(),
                "order.created".into(),
            ],
        )
        .unwrap(),
    ];
    let t0 = at("2026-12-02T12:00:00Z");
    let customer = db
        .customer("ada@example.com", "UTC", Some("US-NY"), t0)
        .await;
    let app = app_at(&db, &config, t0);
    // The warehouse learns where to ship from order.created: the customer's address.
    subsave::app::addresses::add(
        &app,
        subsave::app::addresses::AddressInput {
            customer: CustomerRef::Id(customer.id),
            address: subsave::core::address::RawAddress {
                name: "Ada Lovelace".into(),
                line1: "350 5th Ave".into(),
                city: "New York".into(),
                subdivision: Some("NY".into()),
                postal_code: Some("10118".into()),
                country: "US".into(),
                ..Default::default()
            },
            make_default: false,
        },
        subsave::app::idempotency::Commit::Plain,
    )
    .await
    .unwrap();
    let sub = subscriptions::create(
        &app,
        &Actor::cli(),
        SubscriptionInput {
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
        },
        Commit::Plain,
    )
    .await
    .unwrap();
    let queued = "SELECT COUNT(*) FROM outbox WHERE kind = 'webhook' AND recipient = 'warehouse'";
    assert_eq!(db.scalar(queued).await, 1, "written with the subscription");

    // First delivery: the receiver answers 500; the message waits for its retry.
    outbox::deliver(&app, &common::pages::links(app.settings()))
        .await
        .unwrap();
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'webhook' AND status = 'pending' AND attempts = 1")
            .await,
        1
    );
    // Later: delivered, with the same webhook-id.
    let later = app_at(&db, &config, t0 + TimeDelta::hours(2));
    outbox::deliver(&later, &common::pages::links(later.settings()))
        .await
        .unwrap();
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].0["webhook-id"], seen[1].0["webhook-id"]);
        assert_eq!(seen[0].1, seen[1].1, "the same event");
        let event: serde_json::Value = serde_json::from_str(&seen[1].1).unwrap();
        assert_eq!(event["type"], "subscription.created");
        assert_eq!(event["data"]["subscription"]["id"], sub.id);
        for (headers, body) in seen.iter() {
            assert!(python_verifies(headers, body), "signature of {body}");
            // Signed with the real clock, not the app's (a receiver refuses a timestamp
            // minutes away from its own clock, as under `--now`).
            let stamped: i64 = headers["webhook-timestamp"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let real = chrono::Utc::now().timestamp();
            assert!(
                (real - 60..=real).contains(&stamped),
                "webhook-timestamp {stamped}, now {real}"
            );
            let mut tampered = body.clone();
            tampered.push(' ');
            assert!(!python_verifies(headers, &tampered), "a changed body fails");
        }
    }
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'webhook' AND status = 'sent'")
            .await,
        1
    );

    // The sweep bills the first cycle: order.created, with its lines.
    renewals::sweep(&later).await.unwrap();
    outbox::deliver(&later, &common::pages::links(later.settings()))
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    let order: serde_json::Value = serde_json::from_str(&seen.last().unwrap().1).unwrap();
    assert_eq!(order["type"], "order.created", "{order}");
    assert_eq!(order["data"]["order"]["subscription_id"], sub.id);
    let ship_to = &order["data"]["order"]["ship_to"];
    assert_eq!(
        (
            &ship_to["line1"],
            &ship_to["subdivision"],
            &ship_to["postal_code"],
            &order["data"]["order"]["tax_region"]
        ),
        (
            &serde_json::json!("350 5th Ave"),
            &serde_json::json!("US-NY"),
            &serde_json::json!("10118"),
            &serde_json::json!("US-NY")
        ),
        "{order}"
    );
    let lines = order["data"]["order"]["lines"].as_array().unwrap();
    let sum: i64 = lines
        .iter()
        .map(|l| l["amount"]["amount_minor"].as_i64().unwrap())
        .sum();
    assert_eq!(
        sum,
        order["data"]["order"]["total"]["amount_minor"]
            .as_i64()
            .unwrap()
    );
    assert!(python_verifies(
        &seen.last().unwrap().0,
        &seen.last().unwrap().1
    ));
}

/// The webhook events queued for endpoint `shop`, oldest first.
async fn shop_events(db: &TestDb) -> Vec<serde_json::Value> {
    let count = db
        .scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'webhook' AND recipient = 'shop'")
        .await;
    let store = db.store.clone();
    let messages = store
        .messages(&subsave::store::MessageFilter {
            kind: Some(subsave::core::model::MessageKind::Webhook),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(messages.len() as i64, count);
    messages
        .into_iter()
        .map(|m| m.payload.json().unwrap())
        .collect()
}

/// Settings with an endpoint `shop` subscribed to `events`.
fn shop_settings(db: &TestDb, provider: ProviderKind, events: &[&str]) -> Settings {
    let mut config = settings(db, KEY_NEW);
    config.mail.transport = MailTransport::Log;
    config.payments.provider = provider;
    config.payments.stripe.api_base = "http://127.0.0.1:9".into();
    config.payments.stripe.secret_key = Some(Secret::new("sk_test_unused".to_owned()));
    config.payments.stripe.webhook_secrets = Some(Secret::new("whsec_stripe_test".to_owned()));
    config.webhooks.endpoints = vec![
        subsave::core::webhooks::Endpoint::new(
            "shop",
            "http://127.0.0.1:9/hooks",
            &secret(),
            &events.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        )
        .unwrap(),
    ];
    config
}

/// A customer with their provider references and a subscription whose first order is billed
/// at `t0`; returns the subscription's id.
async fn billed(db: &TestDb, config: &Settings, method: &str, t0: DateTime<Utc>) -> i64 {
    let customer = db.customer("ada@example.com", "UTC", None, t0).await;
    db.store
        .set_payment_refs(
            customer.id,
            &subsave::core::model::PaymentRefs {
                customer_ref: Some("cus_ada".into()),
                method_ref: Some(method.into()),
            },
            7,
            t0,
        )
        .await
        .unwrap();
    let sub = db
        .subscribe(&customer, "1-pack", Start::Now, None, t0)
        .await;
    renewals::sweep(&app_at(db, config, t0)).await.unwrap();
    sub.id
}

async fn a_payment_completed_by_stripes_webhook_tells_the_shop(backend: Backend) {
    let db = TestDb::new(backend).await;
    let config = shop_settings(
        &db,
        ProviderKind::Stripe,
        &["payment.succeeded", "payment.failed"],
    );
    // The signature's timestamp is checked against the app's clock: one fixed instant.
    let now = at("2027-03-01T09:00:00Z");
    let sub = billed(&db, &config, "pm_card_visa", now).await;
    // 3-D Secure: the charge waits for the customer; Stripe's event completes it.
    db.execute(
        "UPDATE payments SET status = 'requires_action', next_attempt_at = NULL, \
         provider_payment_ref = 'pi_waiting'",
    )
    .await
    .unwrap();
    let pages = common::pages::Pages::start(&db, config, now).await;
    let event = serde_json::json!({
        "id": "evt_1",
        "type": "payment_intent.succeeded",
        "data": {"object": {"id": "pi_waiting", "object": "payment_intent", "status": "succeeded"}},
    })
    .to_string();
    let signature =
        subsave::payments::stripe::sign(event.as_bytes(), "whsec_stripe_test", now.timestamp());
    let answer = pages
        .client
        .post(format!("{}/webhooks/stripe", pages.base))
        .header("stripe-signature", signature)
        .body(event)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let events = shop_events(&db).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "payment.succeeded");
    assert_eq!(events[0]["data"]["subscription_id"], sub);
    assert_eq!(events[0]["data"]["payment"]["attempt"], 1);
    assert_eq!(events[0]["data"]["actor"], "payments");
}

async fn a_refund_tells_the_shop_with_its_credit_note(backend: Backend) {
    let db = TestDb::new(backend).await;
    let config = shop_settings(
        &db,
        ProviderKind::Simulated,
        &["payment.succeeded", "refund.created"],
    );
    let t0 = at("2027-03-01T09:00:00Z");
    let sub = billed(&db, &config, "pm_card_visa", t0).await;
    let app = app_at(&db, &config, t0);
    subsave::app::payments::collect(&app).await.unwrap();
    let order = db
        .store
        .orders(&subsave::store::OrderFilter {
            subscription_id: Some(sub),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .remove(0);
    let note = subsave::app::payments::refund(
        &app,
        &order.order_number,
        Some(subsave::core::money::Money::from_minor(
            500,
            subsave::core::money::Currency::Usd,
        )),
        "one pack arrived damaged",
        &Actor::cli(),
        subsave::app::idempotency::Commit::Plain,
    )
    .await
    .unwrap();
    let events = shop_events(&db).await;
    let kinds: Vec<_> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["payment.succeeded", "refund.created"]);
    let refund = &events[1]["data"];
    assert_eq!(refund["subscription_id"], sub);
    assert_eq!(refund["actor"], "cli");
    assert_eq!(refund["refund"]["credit_note"], note.number.as_str());
    assert_eq!(refund["refund"]["order"], order.order_number.as_str());
    assert_eq!(refund["refund"]["amount_minor"], 500);
    assert_eq!(refund["refund"]["currency"], "USD");
    assert_eq!(refund["refund"]["reason"], "one pack arrived damaged");
}

on_both_backends!(
    events_are_signed_and_retried_until_delivered,
    a_payment_completed_by_stripes_webhook_tells_the_shop,
    a_refund_tells_the_shop_with_its_credit_note,
);
