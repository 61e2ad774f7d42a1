//! Payments against real peers: the `stripe` provider charging through localstripe (a
//! stateful fake Stripe server) on PostgreSQL, dunning under time travel, 3-D Secure completed
//! through localstripe's signed webhook, a worker killed between the provider's answer and
//! its commit (in process, and `kill -9` of `subsave payments collect` over 1,000 due
//! payments), and a scripted in-process Stripe for what localstripe cannot do (500s, time
//! outs). Refunds, the finance reconciliation and the accounting journal run on both backends
//! with the simulated provider.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use common::localstripe::{LocalStripe, SECRET_KEY};
use common::{Backend, TestDb, at};
use subsave::app::App;
use subsave::app::idempotency::Commit;
use subsave::app::payments::{self, PaymentQuery};
use subsave::app::{CustomerRef, PageRequest};
use subsave::clock::FixedClock;
use subsave::config::Settings;
use subsave::core::dunning;
use subsave::core::lifecycle::Start;
use subsave::core::model::{Actor, Payment, PaymentRefs, PaymentStatus, ProviderKind, Status};
use subsave::core::money::{Currency, Money};
use subsave::core::secret::Secret;
use subsave::engine::Engine;
use subsave::payments::{ChargeRequest, Provider};
use subsave::store::PaymentFilter;

const WEBHOOK_SECRET: &str = "whsec_subsave_test";
const VISA: &str = "4242424242424242";
const DECLINED: &str = "4000000000000341";
const THREE_D_SECURE: &str = "4000002760003184";

fn t0() -> DateTime<Utc> {
    at("2027-03-01T09:00:00Z")
}

fn days(n: i64) -> TimeDelta {
    TimeDelta::days(n)
}

fn settings(db: &TestDb, provider: ProviderKind, api_base: &str) -> Settings {
    let mut settings = common::pages::settings(db, common::pages::KEY_NEW);
    settings.payments.provider = provider;
    settings.payments.stripe.api_base = api_base.to_owned();
    settings.payments.stripe.secret_key = Some(Secret::new(SECRET_KEY.to_owned()));
    settings.payments.stripe.webhook_secrets = Some(Secret::new(WEBHOOK_SECRET.to_owned()));
    settings
}

fn app(db: &TestDb, settings: &Settings, now: DateTime<Utc>) -> App {
    App::new(
        db.store.clone(),
        Arc::new(settings.clone()),
        Arc::new(FixedClock(now)),
    )
}

async fn bill(db: &TestDb, settings: &Settings, now: DateTime<Utc>) -> usize {
    Engine::from_settings(db.store.clone(), settings)
        .sweep(now)
        .await
        .unwrap()
        .orders
}

async fn collect(
    db: &TestDb,
    settings: &Settings,
    now: DateTime<Utc>,
) -> subsave::payments::CollectReport {
    payments::collect(&app(db, settings, now)).await.unwrap()
}

/// The payments of a subscription, oldest first.
async fn payments_of(db: &TestDb, subscription: i64) -> Vec<Payment> {
    db.store
        .payments(&PaymentFilter {
            subscription_id: Some(subscription),
            limit: 100,
            ..PaymentFilter::default()
        })
        .await
        .unwrap()
}

async fn mails(db: &TestDb, kind: &str, subscription: i64) -> i64 {
    db.scalar(&format!(
        "SELECT COUNT(*) FROM outbox WHERE kind = '{kind}' AND subscription_id = {subscription}"
    ))
    .await
}

async fn paid_rows(db: &TestDb) -> i64 {
    db.scalar("SELECT COUNT(*) FROM payments WHERE status = 'paid'")
        .await
}

/// A customer with a subscription billed at once (cycle 0 due at `t0`), and, when given, the
/// provider's references.
async fn subscriber(db: &TestDb, email: &str, refs: Option<(String, String)>) -> i64 {
    subscriber_in(db, email, ("UTC", None), "1-pack", refs).await
}

/// [`subscriber`] in a time zone and tax region, on a plan.
async fn subscriber_in(
    db: &TestDb,
    email: &str,
    (tz, region): (&str, Option<&str>),
    plan: &str,
    refs: Option<(String, String)>,
) -> i64 {
    let customer = db.customer(email, tz, region, t0()).await;
    let sub = db.subscribe(&customer, plan, Start::Now, None, t0()).await;
    if let Some(refs) = refs {
        db.set_refs(customer.id, refs, t0()).await;
    }
    sub.id
}

/// A [`subscriber`] with their own customer and card `number` at localstripe.
async fn stripe_subscriber(db: &TestDb, stripe: &LocalStripe, email: &str, number: &str) -> i64 {
    subscriber(
        db,
        email,
        Some(stripe.customer_with_card(email, number).await),
    )
    .await
}

#[tokio::test]
async fn stripe_charges_each_order_once_dunning_follows_the_schedule_and_recoveries_stop_it() {
    let db = TestDb::new(Backend::Postgres).await;
    let stripe = LocalStripe::start().await;
    let settings = settings(&db, ProviderKind::Stripe, &stripe.base);
    let ada = stripe_subscriber(&db, &stripe, "ada@example.com", VISA).await;
    let bob = stripe_subscriber(&db, &stripe, "bob@example.com", DECLINED).await;
    let cy_refs = stripe
        .customer_with_card("cy@example.com", THREE_D_SECURE)
        .await;
    let cy = subscriber(&db, "cy@example.com", Some(cy_refs.clone())).await;
    let dee = subscriber(&db, "dee@example.com", None).await;

    assert_eq!(bill(&db, &settings, t0()).await, 4);
    let first = collect(&db, &settings, t0()).await;
    assert_eq!(
        (
            first.claimed,
            first.paid,
            first.declined,
            first.requires_action
        ),
        (4, 1, 2, 1),
        "{first:?}"
    );
    let ada_pay = &payments_of(&db, ada).await[0];
    assert_eq!(ada_pay.status, PaymentStatus::Paid);
    assert!(
        ada_pay
            .provider_payment_ref
            .as_deref()
            .unwrap()
            .starts_with("pi_")
    );
    let bob_pay = &payments_of(&db, bob).await[0];
    assert_eq!(bob_pay.status, PaymentStatus::Failed);
    assert_eq!(bob_pay.decline_code.as_deref(), Some("card_declined"));
    assert_eq!(
        (bob_pay.attempt, bob_pay.next_attempt_at),
        (2, Some(t0() + days(1)))
    );
    assert_eq!(
        payments_of(&db, cy).await[0].status,
        PaymentStatus::RequiresAction
    );
    let dee_pay = &payments_of(&db, dee).await[0];
    assert_eq!(
        dee_pay.decline_code.as_deref(),
        Some("payment_method_missing")
    );
    assert_eq!(mails(&db, "payment_failed", bob).await, 1);
    assert_eq!(mails(&db, "payment_action_required", cy).await, 1);
    // "Renew now" while an order is unpaid would bill nothing (renewals wait for it): refused
    // with the order to pay, for a declined card and for a 3-D Secure payment alike.
    for (sub, who) in [(bob, "bob"), (cy, "cy")] {
        let refused = subsave::app::subscriptions::perform(
            &app(&db, &settings, t0() + TimeDelta::hours(1)),
            &Actor::cli(),
            sub,
            &subsave::app::subscriptions::Action::RenewNow,
            subsave::app::idempotency::Commit::Plain,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            refused.contains("is not paid yet") && refused.contains("payment method"),
            "{who}: {refused}"
        );
    }
    assert_eq!(mails(&db, "payment_failed", ada).await, 0);
    assert_eq!(
        stripe.succeeded_charges().await.len() as i64,
        paid_rows(&db).await
    );

    // Day 1: the retries come, and fail again; then Dee saves a card, which is tried at once.
    let day1 = collect(&db, &settings, t0() + days(1)).await;
    assert_eq!((day1.claimed, day1.declined), (2, 2), "{day1:?}");
    let (dee_customer, dee_card) = stripe.customer_with_card("dee@example.com", VISA).await;
    let set = payments::set_payment_method(
        &app(&db, &settings, t0() + days(1)),
        &CustomerRef::Email("dee@example.com".parse().unwrap()),
        PaymentRefs {
            customer_ref: Some(dee_customer),
            method_ref: Some(dee_card),
        },
    )
    .await
    .unwrap();
    assert_eq!(set.payments_retried, 1);
    let recovered = collect(&db, &settings, t0() + days(1) + TimeDelta::minutes(5)).await;
    assert_eq!((recovered.claimed, recovered.paid), (1, 1), "{recovered:?}");
    assert_eq!(payments_of(&db, dee).await[0].status, PaymentStatus::Paid);
    assert_eq!(mails(&db, "payment_received", dee).await, 1);

    // Days 3, 5 and 7: Bob's card keeps failing; after the last try he is past due, then paused.
    for day in [3, 5, 7] {
        let report = collect(&db, &settings, t0() + days(day)).await;
        assert_eq!(
            (report.claimed, report.declined),
            (1, 1),
            "day {day}: {report:?}"
        );
    }
    let bob_pay = &payments_of(&db, bob).await[0];
    assert_eq!(
        (bob_pay.status, bob_pay.next_attempt_at),
        (PaymentStatus::Failed, None)
    );
    let bob_sub = db.store.subscription(bob).await.unwrap().unwrap();
    assert_eq!(bob_sub.status, Status::Paused);
    let kinds: Vec<String> = db
        .store
        .events(bob)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "payment_failed").count(),
        5,
        "{kinds:?}"
    );
    assert!(
        kinds.ends_with(&["past_due".into(), "pause".into()]),
        "{kinds:?}"
    );
    // One email per failure, each sent once; nothing more however often the worker runs.
    assert_eq!(mails(&db, "payment_failed", bob).await, 5);
    for _ in 0..2 {
        let idle = collect(&db, &settings, t0() + days(8)).await;
        assert_eq!(idle.claimed, 0);
    }
    assert_eq!(mails(&db, "payment_failed", bob).await, 5);
    assert_eq!(mails(&db, "payment_failed", dee).await, 2);
    let last: serde_json::Value = serde_json::from_str(
        &db_text(&db, &format!("SELECT payload::text FROM outbox WHERE kind = 'payment_failed' AND subscription_id = {bob} ORDER BY id DESC LIMIT 1")).await,
    )
    .unwrap();
    assert_eq!(last["final_action"], "pause");

    // Cy's payment waits for 3-D Secure, and so does Cy's next renewal.
    assert_eq!(
        bill(&db, &settings, t0() + days(30)).await,
        2,
        "Ada's and Dee's"
    );
    assert_eq!(payments_of(&db, cy).await.len(), 1);
    assert_eq!(
        mails(&db, "renewal_reminder", cy).await,
        0,
        "no reminder promises a renewal that waits for a payment"
    );

    // Cy confirms at the bank; localstripe's signed webhook tells subsave.
    let pages = common::pages::Pages::start(&db, settings.clone(), Utc::now()).await;
    stripe
        .send_webhooks_to(&format!("{}/webhooks/stripe", pages.base), WEBHOOK_SECRET)
        .await;
    let intent = payments_of(&db, cy).await[0]
        .provider_payment_ref
        .clone()
        .unwrap();
    stripe.authenticate(&intent).await;
    let mut status = PaymentStatus::RequiresAction;
    for _ in 0..100 {
        status = payments_of(&db, cy).await[0].status;
        if status == PaymentStatus::Paid {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        status,
        PaymentStatus::Paid,
        "the webhook marked Cy's payment paid"
    );
    assert_eq!(mails(&db, "payment_received", cy).await, 1);
    assert_eq!(
        bill(&db, &settings, t0() + days(30) + TimeDelta::hours(1)).await,
        1,
        "Cy's renewal, no longer held"
    );
    collect(&db, &settings, t0() + days(30) + TimeDelta::hours(2)).await;
    // localstripe's successful charges are our paid rows, one for one.
    let charges = stripe.succeeded_charges().await;
    assert_eq!(charges.len() as i64, paid_rows(&db).await);
    let mut intents: Vec<String> = charges
        .iter()
        .map(|c| c["payment_intent"].as_str().unwrap().to_owned())
        .collect();
    intents.sort();
    let mut ours: Vec<String> = db_texts(
        &db,
        "SELECT provider_payment_ref FROM payments WHERE status = 'paid' ORDER BY 1",
    )
    .await;
    ours.sort();
    assert_eq!(intents, ours);
    let audit = subsave::app::finance::audit(&app(&db, &settings, t0() + days(31)))
        .await
        .unwrap();
    assert!(audit.is_empty(), "{audit:?}");

    // Bob's given-up order is not forgotten. A new card while paused charges nothing (a
    // paused subscription is never charged); the resume tries the order again at once, with
    // the new card, before any new renewal is billed.
    let later = t0() + days(32);
    let (bob_customer, bob_card) = stripe.customer_with_card("bob@example.com", VISA).await;
    let set = payments::set_payment_method(
        &app(&db, &settings, later),
        &CustomerRef::Email("bob@example.com".parse().unwrap()),
        PaymentRefs {
            customer_ref: Some(bob_customer),
            method_ref: Some(bob_card),
        },
    )
    .await
    .unwrap();
    assert_eq!(set.payments_retried, 0, "paused: nothing is charged");
    subsave::app::subscriptions::perform(
        &app(&db, &settings, later),
        &Actor::cli(),
        bob,
        &subsave::app::subscriptions::Action::Resume,
        subsave::app::idempotency::Commit::Plain,
    )
    .await
    .unwrap();
    let retried = &payments_of(&db, bob).await[0];
    assert_eq!(
        (retried.status, retried.attempt, retried.next_attempt_at),
        (PaymentStatus::Failed, 6, Some(later)),
        "tried again at once, as a new attempt"
    );
    assert_eq!(
        db.scalar(&format!(
            "SELECT COUNT(*) FROM subscriptions WHERE id = {bob} AND unpaid_order_id IS NOT NULL"
        ))
        .await,
        1,
        "renewals wait for it"
    );
    let paid = collect(&db, &settings, later + TimeDelta::minutes(1)).await;
    assert_eq!(paid.paid, 1, "{paid:?}");
    assert_eq!(payments_of(&db, bob).await[0].status, PaymentStatus::Paid);
    assert_eq!(mails(&db, "payment_received", bob).await, 1);
    assert_eq!(
        db.scalar(&format!("SELECT COUNT(*) FROM subscriptions WHERE id = {bob} AND unpaid_order_id IS NULL AND status = 'active'")).await,
        1
    );
}

async fn db_text(db: &TestDb, sql: &str) -> String {
    db_texts(db, sql).await.remove(0)
}

async fn db_texts(db: &TestDb, sql: &str) -> Vec<String> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(&mut conn)
        .await
        .unwrap()
}

/// An order in EUR (a Berlin address: the catalog's EU market) is charged in EUR at Stripe:
/// the PaymentIntent carries the order's currency, lower-cased, and its amount.
#[tokio::test]
async fn stripe_charges_an_order_in_its_own_currency() {
    let db = TestDb::new(Backend::Postgres).await;
    let stripe = LocalStripe::start().await;
    let settings = settings(&db, ProviderKind::Stripe, &stripe.base);
    let customer = db
        .customer("ada@example.com", "Europe/Berlin", None, t0())
        .await;
    let sub = db
        .subscribe_shipped(
            &customer,
            "1-pack",
            Start::Now,
            None,
            Some(common::berlin()),
            t0(),
        )
        .await;
    let refs = stripe.customer_with_card("ada@example.com", VISA).await;
    db.set_refs(customer.id, refs, t0()).await;
    assert_eq!(bill(&db, &settings, t0()).await, 1);
    assert_eq!(collect(&db, &settings, t0()).await.paid, 1);
    // 45.99 EUR less 10 % is 41.39, and 6.95 shipping below 80.00.
    let payment = &payments_of(&db, sub.id).await[0];
    assert_eq!(
        (payment.status, payment.amount),
        (PaymentStatus::Paid, Money::from_minor(4834, Currency::Eur))
    );
    let charges = stripe.succeeded_charges().await;
    assert_eq!(
        charges
            .iter()
            .map(|c| (c["amount"].clone(), c["currency"].clone()))
            .collect::<Vec<_>>(),
        [(serde_json::json!(4834), serde_json::json!("eur"))]
    );
}

#[tokio::test]
async fn an_attempt_charged_before_a_crash_is_found_not_charged_again() {
    let db = TestDb::new(Backend::Postgres).await;
    let stripe = LocalStripe::start().await;
    let settings = settings(&db, ProviderKind::Stripe, &stripe.base);
    let charged = stripe_subscriber(&db, &stripe, "ada@example.com", VISA).await;
    let lost = stripe_subscriber(&db, &stripe, "bob@example.com", VISA).await;
    bill(&db, &settings, t0()).await;

    // A worker claims both and charges Ada's, then dies before recording anything; Bob's
    // request never left it.
    let claimed = db
        .store
        .claim_payments(t0(), t0() + TimeDelta::seconds(300), 10, None)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    let provider = Provider::from_settings(&settings.payments)
        .unwrap()
        .unwrap();
    let ada = claimed
        .iter()
        .find(|c| c.payment.subscription_id == charged)
        .unwrap();
    let key = dunning::idempotency_key(ada.payment.order_id, ada.payment.attempt);
    let outcome = provider
        .charge(&ChargeRequest {
            idempotency_key: &key,
            amount: ada.payment.amount,
            customer_ref: ada.refs.customer_ref.as_deref().unwrap(),
            method_ref: ada.refs.method_ref.as_deref().unwrap(),
            order_number: &ada.payment.order_number,
        })
        .await
        .unwrap();
    assert!(matches!(outcome, dunning::ChargeOutcome::Succeeded { .. }));
    assert_eq!(stripe.succeeded_charges().await.len(), 1);

    // Their leases still hold: nobody else touches them.
    assert_eq!(
        collect(&db, &settings, t0() + TimeDelta::seconds(10))
            .await
            .claimed,
        0
    );
    // After the lease, the next worker asks Stripe first: Ada's charge is found and recorded,
    // Bob's is made once.
    let after = collect(&db, &settings, t0() + TimeDelta::seconds(301)).await;
    assert_eq!((after.claimed, after.paid), (2, 2), "{after:?}");
    assert_eq!(stripe.succeeded_charges().await.len(), 2);
    for sub in [charged, lost] {
        assert_eq!(payments_of(&db, sub).await[0].status, PaymentStatus::Paid);
    }
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM payment_attempts WHERE outcome = 'succeeded'")
            .await,
        2
    );
}

#[tokio::test]
async fn kill_9_of_the_payment_worker_mid_batch_charges_1000_orders_exactly_once() {
    const N: usize = 1000;
    let db = TestDb::new(Backend::Postgres).await;
    let stripe = Arc::new(LocalStripe::start().await);
    let settings = settings(&db, ProviderKind::Stripe, &stripe.base);
    // Each customer has their own Stripe customer and card, made 8 at a time.
    let refs: Vec<(String, String)> = futures_util::future::join_all((0..8).map(|lane| {
        let stripe = stripe.clone();
        async move {
            let mut refs = Vec::new();
            for i in (lane..N).step_by(8) {
                refs.push((
                    i,
                    stripe
                        .customer_with_card(&format!("c{i}@example.com"), VISA)
                        .await,
                ));
            }
            refs
        }
    }))
    .await
    .into_iter()
    .flatten()
    .map(|(_, r)| r)
    .collect();
    for (i, r) in refs.into_iter().enumerate() {
        subscriber(&db, &format!("c{i}@example.com"), Some(r)).await;
    }
    assert_eq!(bill(&db, &settings, t0()).await, N);

    let collect_process = |now: DateTime<Utc>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_subsave"));
        cmd.args(["--now", &now.to_rfc3339(), "payments", "collect"])
            .env("SUBSAVE_DATABASE__URL", &db.url)
            .env("SUBSAVE_PAYMENTS__PROVIDER", "stripe")
            .env("SUBSAVE_PAYMENTS__STRIPE__API_BASE", &stripe.base)
            .env("SUBSAVE_PAYMENTS__STRIPE__SECRET_KEY", SECRET_KEY)
            .env("SUBSAVE_PAYMENTS__BATCH_SIZE", "20")
            .env("SUBSAVE_PAYMENTS__CONCURRENCY", "8")
            .env("SUBSAVE_WEB__LINK_KEYS", common::pages::KEY_NEW)
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd
    };
    let mut first = collect_process(t0()).spawn().unwrap();
    let mut paid_when_killed = 0;
    for _ in 0..6000 {
        paid_when_killed = paid_rows(&db).await;
        if paid_when_killed >= (N / 3) as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill().unwrap(); // SIGKILL: no cleanup, leases and in-flight charges left as they are
    first.wait().unwrap();
    let charged_when_killed = stripe.succeeded_charges().await.len() as i64;
    assert!(
        paid_when_killed > 0 && paid_when_killed < N as i64,
        "killed mid-batch: {paid_when_killed} paid"
    );
    // The leases (300 s) of the dead worker's batch end; then a new worker finishes.
    let second = collect_process(t0() + TimeDelta::seconds(301))
        .output()
        .unwrap();
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let logs = String::from_utf8_lossy(&second.stdout).to_string()
        + &String::from_utf8_lossy(&second.stderr);
    let recovered = logs
        .matches("an attempt sent before a restart had an outcome")
        .count();
    println!(
        "killed with {paid_when_killed} paid rows and {charged_when_killed} charges at localstripe; \
         the restart found {recovered} charged-but-unrecorded attempts"
    );

    assert_eq!(paid_rows(&db).await, N as i64);
    let charges = stripe.succeeded_charges().await;
    assert_eq!(charges.len(), N, "one charge per order at the provider");
    let mut customers: Vec<&str> = charges
        .iter()
        .map(|c| c["customer"].as_str().unwrap())
        .collect();
    customers.sort();
    customers.dedup();
    assert_eq!(customers.len(), N, "no customer charged twice");
}

/// A stand-in for Stripe's API that fails as scripted (500, then a hang past the timeout),
/// then succeeds, recording the Idempotency-Key of every request.
#[tokio::test]
async fn provider_failures_retry_the_same_attempt_with_the_same_key() {
    use axum::http::HeaderMap;
    let db = TestDb::new(Backend::Sqlite).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let keys = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let router = axum::Router::new()
        // The lookup of an attempt in doubt (after the time-out): nothing was charged.
        .route(
            "/v1/charges",
            axum::routing::get(|| async {
                axum::Json(serde_json::json!({"data": [], "has_more": false}))
            }),
        )
        .route(
            "/v1/payment_intents",
            axum::routing::post({
                let (calls, keys) = (calls.clone(), keys.clone());
                move |headers: HeaderMap| {
                    let (calls, keys) = (calls.clone(), keys.clone());
                    async move {
                        let n = calls.fetch_add(1, Ordering::SeqCst);
                        keys.lock()
                            .unwrap()
                            .push(headers["idempotency-key"].to_str().unwrap().to_owned());
                        match n {
                            0 => (
                                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                                axum::Json(
                                    serde_json::json!({"error": {"message": "scripted outage"}}),
                                ),
                            ),
                            1 => {
                                tokio::time::sleep(Duration::from_secs(5)).await;
                                (
                                    axum::http::StatusCode::OK,
                                    axum::Json(serde_json::json!({})),
                                )
                            }
                            _ => (
                                axum::http::StatusCode::OK,
                                axum::Json(
                                    serde_json::json!({"id": "pi_scripted", "status": "succeeded"}),
                                ),
                            ),
                        }
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let mut settings = settings(&db, ProviderKind::Stripe, &base);
    settings.payments.timeout_secs = 1;
    let sub = subscriber(
        &db,
        "ada@example.com",
        Some(("cus_1".into(), "pm_1".into())),
    )
    .await;
    bill(&db, &settings, t0()).await;

    let outage = collect(&db, &settings, t0()).await;
    assert_eq!((outage.claimed, outage.postponed), (1, 1), "{outage:?}");
    let payment = payments_of(&db, sub).await.remove(0);
    assert_eq!(
        (payment.status, payment.attempt),
        (PaymentStatus::Pending, 1)
    );
    assert_eq!(payment.next_attempt_at, Some(t0() + TimeDelta::seconds(30)));
    assert!(
        payment.last_error.as_deref().unwrap().contains("500"),
        "{:?}",
        payment.last_error
    );
    // Not before its time; then the hang times out and is postponed again (the wait grows).
    assert_eq!(
        collect(&db, &settings, t0() + TimeDelta::seconds(10))
            .await
            .claimed,
        0
    );
    let hang = collect(&db, &settings, t0() + TimeDelta::seconds(30)).await;
    assert_eq!(hang.postponed, 1, "{hang:?}");
    let payment = payments_of(&db, sub).await.remove(0);
    assert_eq!(payment.next_attempt_at, Some(t0() + TimeDelta::seconds(60)));
    let paid = collect(&db, &settings, t0() + TimeDelta::seconds(60)).await;
    assert_eq!(paid.paid, 1, "{paid:?}");
    let keys = keys.lock().unwrap().clone();
    assert_eq!(keys.len(), 3);
    assert!(
        keys.iter().all(|k| *k == keys[0]),
        "the same key each time: {keys:?}"
    );
    assert_eq!(keys[0], dunning::idempotency_key(payment.order_id, 1));
}

#[tokio::test]
async fn stripe_webhooks_are_verified_and_applied_once() {
    let db = TestDb::new(Backend::Postgres).await;
    // The provider is never called here: the payment is put in `requires_action` by hand.
    let settings = settings(&db, ProviderKind::Stripe, "http://127.0.0.1:9");
    let sub = subscriber(
        &db,
        "ada@example.com",
        Some(("cus_1".into(), "pm_1".into())),
    )
    .await;
    bill(&db, &settings, t0()).await;
    db.execute("UPDATE payments SET status = 'requires_action', next_attempt_at = NULL, provider_payment_ref = 'pi_waiting'")
        .await
        .unwrap();
    let now = Utc::now();
    let pages = common::pages::Pages::start(&db, settings.clone(), now).await;
    let event = serde_json::json!({
        "id": "evt_1",
        "type": "payment_intent.succeeded",
        "data": {"object": {"id": "pi_waiting", "object": "payment_intent", "status": "succeeded"}},
    })
    .to_string();
    let post = |signature: String, body: String| {
        let client = pages.client.clone();
        let url = format!("{}/webhooks/stripe", pages.base);
        async move {
            let response = client
                .post(url)
                .header("stripe-signature", signature)
                .body(body)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let sign = |secret: &str, t: DateTime<Utc>| {
        subsave::payments::stripe::sign(event.as_bytes(), secret, t.timestamp())
    };
    for (signature, why) in [
        (sign("whsec_wrong", now), "a wrong secret"),
        (
            sign(WEBHOOK_SECRET, now - TimeDelta::minutes(6)),
            "a stale timestamp",
        ),
        ("t=1".to_owned(), "no signature"),
    ] {
        let (status, body) = post(signature, event.clone()).await;
        assert_eq!(status, 400, "{why}: {body}");
        assert!(!body.contains(WEBHOOK_SECRET));
    }
    let tampered = event.replace("pi_waiting", "pi_other");
    assert_eq!(
        post(sign(WEBHOOK_SECRET, now), tampered).await.0,
        400,
        "a body changed after signing"
    );
    assert_eq!(
        payments_of(&db, sub).await[0].status,
        PaymentStatus::RequiresAction
    );

    // Signed: applied; the same event again (Stripe retries): 200, nothing applied twice.
    for _ in 0..3 {
        let (status, body) = post(sign(WEBHOOK_SECRET, now), event.clone()).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(payments_of(&db, sub).await[0].status, PaymentStatus::Paid);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM provider_events").await, 1);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM payment_attempts").await, 1);
    assert_eq!(mails(&db, "payment_received", sub).await, 1);
}

on_both_backends!(
    refunds_credit_notes_and_the_reconciliation_add_up,
    the_journal_balances_per_order_and_per_day_and_credit_notes_export,
    a_given_up_order_is_retried_when_the_subscription_resumes
);

/// Ada pays, taxed on top (US-CA); Bob's card is declined; Cy pays, VAT included (DE): billed
/// at 02:00 UTC on March 2 (still March 1 in the shop's New York) and collected by the
/// simulated provider. Their subscriptions' ids.
async fn three_billed_in_new_york(db: &TestDb) -> (Settings, [i64; 3]) {
    let mut settings = settings(db, ProviderKind::Simulated, "http://127.0.0.1:9");
    settings.finance.time_zone = "America/New_York".parse().unwrap();
    let refs = |name: &str, card: &str| Some((format!("cus_{name}"), card.to_owned()));
    let ada = subscriber_in(
        db,
        "ada@example.com",
        ("UTC", Some("US-CA")),
        "2-pack",
        refs("ada", "pm_card_visa"),
    )
    .await;
    let bob = subscriber(db, "bob@example.com", refs("bob", "pm_card_declined")).await;
    let cy = subscriber_in(
        db,
        "cy@example.com",
        ("Europe/Berlin", Some("DE")),
        "1-pack",
        refs("cy", "pm_card_visa"),
    )
    .await;
    let billed_at = at("2027-03-02T02:00:00Z");
    assert_eq!(bill(db, &settings, billed_at).await, 3);
    collect(db, &settings, billed_at).await;
    (settings, [ada, bob, cy])
}

async fn refunds_credit_notes_and_the_reconciliation_add_up(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (settings, [ada, bob, cy]) = three_billed_in_new_york(&db).await;
    let ada_pay = payments_of(&db, ada).await.remove(0);
    let cy_pay = payments_of(&db, cy).await.remove(0);
    assert_eq!(ada_pay.status, PaymentStatus::Paid);
    assert_eq!(payments_of(&db, bob).await[0].status, PaymentStatus::Failed);
    let billing_dates = db
        .scalar("SELECT COUNT(*) FROM orders WHERE billing_date = '2027-03-01'")
        .await;
    assert_eq!(billing_dates, 3, "booked on the shop's date on {backend:?}");

    let at_refund = app(&db, &settings, at("2027-03-05T15:00:00Z"));
    let usd = |minor| Money::from_minor(minor, Currency::Usd);
    let ada_order = ada_pay.order_number.clone();
    let part = payments::refund(
        &at_refund,
        &ada_order,
        Some(usd(1000)),
        "one pack arrived damaged",
        &Actor::cli(),
        Commit::Plain,
    )
    .await
    .unwrap();
    let tax_total = db
        .scalar(&format!("SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM order_lines l JOIN orders o ON o.id = l.order_id WHERE o.order_number = '{ada_order}' AND l.kind = 'tax'"))
        .await;
    assert!(tax_total > 0, "Ada's order is taxed");
    assert_eq!(
        part.tax,
        dunning::refund_tax_part(usd(1000), ada_pay.amount, usd(tax_total))
    );
    assert_eq!(
        part.lines.iter().map(|l| l.amount.minor()).sum::<i64>(),
        1000
    );
    assert_eq!(part.number, format!("CN-{ada_order}-1"));
    // More than is left is refused; the rest is refunded; then nothing is left.
    let left = ada_pay.amount.minor() - 1000;
    let too_much = payments::refund(
        &at_refund,
        &ada_order,
        Some(usd(left + 1)),
        "too much",
        &Actor::cli(),
        Commit::Plain,
    )
    .await;
    assert!(too_much.is_err(), "{too_much:?}");
    let rest = payments::refund(
        &at_refund,
        &ada_order,
        None,
        "cancelled by phone",
        &Actor::cli(),
        Commit::Plain,
    )
    .await
    .unwrap();
    assert_eq!(rest.amount.minor(), left);
    assert!(
        payments::refund(
            &at_refund,
            &ada_order,
            None,
            "again",
            &Actor::cli(),
            Commit::Plain
        )
        .await
        .is_err()
    );
    let ada_pay = payments_of(&db, ada).await.remove(0);
    assert_eq!(
        (ada_pay.status, ada_pay.refunded),
        (PaymentStatus::Refunded, ada_pay.amount)
    );
    // An unpaid order refunds nothing.
    let bob_order = payments_of(&db, bob).await[0].order_number.clone();
    assert!(
        payments::refund(
            &at_refund,
            &bob_order,
            None,
            "x",
            &Actor::cli(),
            Commit::Plain
        )
        .await
        .is_err()
    );

    // The reconciliation by billing date adds up to the cent.
    let days = subsave::app::finance::payments(
        &at_refund,
        at("2027-03-01T00:00:00Z").date_naive(),
        at("2027-03-31T00:00:00Z").date_naive(),
    )
    .await
    .unwrap();
    assert_eq!(days.len(), 2, "{days:?}");
    let (billed_day, refund_day) = (&days[0], &days[1]);
    assert_eq!(billed_day.billing_date.to_string(), "2027-03-01");
    assert_eq!(billed_day.orders, 3);
    let bob_amount = payments_of(&db, bob).await[0].amount.minor();
    assert_eq!(
        billed_day.billed_minor,
        ada_pay.amount.minor() + bob_amount + cy_pay.amount.minor()
    );
    assert_eq!(
        billed_day.paid_minor,
        ada_pay.amount.minor() + cy_pay.amount.minor()
    );
    assert_eq!(billed_day.outstanding_minor, bob_amount);
    assert_eq!(
        billed_day.billed_minor,
        billed_day.paid_minor + billed_day.outstanding_minor + billed_day.external_minor
    );
    assert_eq!(refund_day.billing_date.to_string(), "2027-03-05");
    assert_eq!(refund_day.refunded_minor, ada_pay.amount.minor());
    assert!(billed_day.fees_minor > 0);

    // Revenue: with and without tax, and refunds with their tax part.
    let revenue = subsave::app::finance::revenue(
        &at_refund,
        at("2027-03-01T00:00:00Z").date_naive(),
        at("2027-03-31T00:00:00Z").date_naive(),
        subsave::finance::RevenueBy::Month,
    )
    .await
    .unwrap();
    let march = &revenue[&("2027-03".to_owned(), "USD".to_owned())];
    assert_eq!(march.net_minor, billed_day.billed_minor);
    assert_eq!(
        march.net_of_tax_minor,
        march.net_minor - march.tax_added_minor - march.tax_included_minor
    );
    assert_eq!(march.refunds_minor, ada_pay.amount.minor());
    assert_eq!(
        march.refunds_tax_minor, tax_total,
        "a full refund returns all the tax"
    );
    assert_eq!(
        march.net_of_tax_after_refunds_minor,
        march.net_of_tax_minor - (ada_pay.amount.minor() - tax_total)
    );
    let audit = subsave::app::finance::audit(&at_refund).await.unwrap();
    assert!(audit.is_empty(), "{audit:?}");
    // Credit notes are immutable, like orders.
    assert!(
        db.execute("UPDATE credit_notes SET amount_minor = 1")
            .await
            .is_err()
    );
    assert!(db.execute("DELETE FROM payment_attempts").await.is_err());
    let listed = payments::list(
        &at_refund,
        &PaymentQuery {
            status: Some(PaymentStatus::Failed),
            subscription_id: None,
        },
        PageRequest::first(10),
    )
    .await
    .unwrap();
    assert_eq!(listed.data.len(), 1);
}

#[tokio::test]
async fn the_api_refunds_once_per_idempotency_key_and_sets_payment_methods() {
    let db = TestDb::new(Backend::Postgres).await;
    let mut settings = settings(&db, ProviderKind::Simulated, "http://127.0.0.1:9");
    // The storefront hears of payments through its webhook endpoint.
    settings.webhooks.endpoints = vec![
        subsave::core::webhooks::Endpoint::new(
            "shop",
            "http://127.0.0.1:9/hooks",
            "whsec_c2hvcC1zZWNyZXQtc2hvcC1zZWNyZXQtc2hvcC1zZWNyZXQh",
            &["payment.failed".into(), "payment.succeeded".into()],
        )
        .unwrap(),
    ];
    let sub = subscriber(
        &db,
        "ada@example.com",
        Some(("cus_ada".into(), "pm_card_declined".into())),
    )
    .await;
    bill(&db, &settings, t0()).await;
    collect(&db, &settings, t0()).await;
    let key = subsave::app::api_keys::create(
        &app(&db, &settings, t0()),
        "support",
        subsave::core::model::Scope::Admin,
    )
    .await
    .unwrap()
    .key;
    let pages =
        common::pages::Pages::start(&db, settings.clone(), t0() + TimeDelta::hours(1)).await;
    let post = |path: String, idempotency: &'static str, body: serde_json::Value| {
        let request = pages
            .client
            .post(format!("{}{path}", pages.base))
            .bearer_auth(&key)
            .header("idempotency-key", idempotency)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        }
    };
    let order = payments_of(&db, sub).await[0].order_number.clone();
    // Declined: nothing to refund (a refusal, replayed as it is).
    let refused = post(
        format!("/v1/orders/{order}/refunds"),
        "r-0",
        serde_json::json!({"reason": "x"}),
    )
    .await;
    assert_eq!(refused.0, 409, "{:?}", refused.1);
    // A new card: tried at once, paid.
    let customer = db
        .scalar(&format!(
            "SELECT customer_id FROM subscriptions WHERE id = {sub}"
        ))
        .await;
    let set = post(
        format!("/v1/customers/{customer}/payment_method"),
        "m-1",
        serde_json::json!({"customer_ref": "cus_ada", "method_ref": "pm_card_visa"}),
    )
    .await;
    assert_eq!(
        (set.0, set.1["payments_retried"].as_u64()),
        (200, Some(1)),
        "{:?}",
        set.1
    );
    assert_eq!(
        collect(&db, &settings, t0() + TimeDelta::hours(1))
            .await
            .paid,
        1
    );
    let events = db_texts(
        &db,
        "SELECT payload->>'type' FROM outbox WHERE kind = 'webhook' ORDER BY id",
    )
    .await;
    assert_eq!(events, ["payment.failed", "payment.succeeded"]);
    // Refund 5.00 twice with one key: one credit note, the same answer.
    let body = serde_json::json!({"amount_minor": 500, "reason": "late delivery"});
    let first = post(format!("/v1/orders/{order}/refunds"), "r-1", body.clone()).await;
    let again = post(format!("/v1/orders/{order}/refunds"), "r-1", body).await;
    assert_eq!(first.0, 201, "{:?}", first.1);
    assert_eq!(first, again);
    assert_eq!(first.1["amount"]["amount_minor"], 500);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM credit_notes").await, 1);
    let shown = pages
        .client
        .get(format!("{}/v1/orders/{order}/payment", pages.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(shown["payment"]["status"], "partially_refunded");
    assert_eq!(shown["payment"]["refunded"]["amount_minor"], 500);
    assert_eq!(shown["credit_notes"][0]["actor"], "api:support");
}

/// With no retries scheduled, the first decline is final: the subscription pauses and its order
/// stays unpaid. A new card charges nothing while it is paused; its resume tries the order again
/// at once (a new attempt), holding renewals until it is paid; and a given-up order is tried
/// at most twice more.
async fn a_given_up_order_is_retried_when_the_subscription_resumes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut settings = settings(&db, ProviderKind::Simulated, "http://127.0.0.1:9");
    settings.payments.retry_days = vec![];
    let bob = subscriber(
        &db,
        "bob@example.com",
        Some(("cus_bob".into(), "pm_card_declined".into())),
    )
    .await;
    let billed = at("2027-03-02T12:00:00Z");
    assert_eq!(bill(&db, &settings, billed).await, 1);
    collect(&db, &settings, billed).await;
    let sub = db.store.subscription(bob).await.unwrap().unwrap();
    assert_eq!(sub.status, Status::Paused);
    let given_up = &payments_of(&db, bob).await[0];
    assert_eq!(
        (given_up.status, given_up.next_attempt_at),
        (PaymentStatus::Failed, None)
    );
    // The business metrics' dunning funnel: declined, tries over, paused by dunning.
    let amount = given_up.amount.minor();
    let march = |now| {
        let app = app(&db, &settings, now);
        async move {
            let (from, to) = ("2027-03-01".parse().unwrap(), "2027-03-31".parse().unwrap());
            subsave::app::finance::metrics(&app, from, to)
                .await
                .unwrap()
        }
    };
    let funnel = |m: &subsave::finance::MetricsReport| {
        let f = &m.metrics.dunning[0];
        (
            f.declined,
            f.declined_minor,
            f.paused,
            f.recovered,
            f.recovered_minor,
            f.recovery_rate_bp,
        )
    };
    let paused = march(billed).await;
    assert_eq!(funnel(&paused), (1, amount, 1, 0, 0, Some(0)));
    assert_eq!(paused.metrics.months[0].mrr_end_minor, 0, "paused: no MRR");

    let resume = |now| {
        let app = app(&db, &settings, now);
        async move {
            subsave::app::subscriptions::perform(
                &app,
                &Actor::cli(),
                bob,
                &subsave::app::subscriptions::Action::Resume,
                subsave::app::idempotency::Commit::Plain,
            )
            .await
            .unwrap();
        }
    };
    // Resumed with the same declined card: tried again, declined, paused again.
    let day = |n: i64| billed + TimeDelta::days(n);
    resume(day(1)).await;
    assert_eq!(payments_of(&db, bob).await[0].attempt, 2);
    assert_eq!(
        db.scalar(&format!(
            "SELECT COUNT(*) FROM subscriptions WHERE id = {bob} AND unpaid_order_id IS NOT NULL"
        ))
        .await,
        1,
        "renewals wait for the order"
    );
    collect(&db, &settings, day(1)).await;
    let sub = db.store.subscription(bob).await.unwrap().unwrap();
    assert_eq!(sub.status, Status::Paused, "declined again: paused again");
    // A new card while paused charges nothing; the resume charges the order with it.
    let set = payments::set_payment_method(
        &app(&db, &settings, day(2)),
        &CustomerRef::Email("bob@example.com".parse().unwrap()),
        PaymentRefs {
            customer_ref: Some("cus_bob".into()),
            method_ref: Some("pm_card_visa".into()),
        },
    )
    .await
    .unwrap();
    assert_eq!(set.payments_retried, 0);
    resume(day(2)).await;
    collect(&db, &settings, day(2)).await;
    let paid = &payments_of(&db, bob).await[0];
    assert_eq!((paid.status, paid.attempt), (PaymentStatus::Paid, 3));
    // Recovered after all: counted as recovered, and the active subscription's order is MRR:
    // no tax region, so its total, 50.94, every 30 days: 50.94 × 30.4375 ÷ 30 = 51.68 a month.
    let recovered = march(day(2)).await;
    assert_eq!(funnel(&recovered), (1, amount, 0, 1, amount, Some(10_000)));
    let month = &recovered.metrics.months[0];
    assert_eq!(amount, 5094);
    assert_eq!((month.new_minor, month.mrr_end_minor), (5168, 5168));
    assert_eq!(
        db.scalar(&format!("SELECT COUNT(*) FROM subscriptions WHERE id = {bob} AND unpaid_order_id IS NULL AND status = 'active'")).await,
        1
    );
}

/// `subsave ARGS` on the test database with the shop's finance settings (New York's calendar,
/// a revenue account whose name a spreadsheet would run as a formula); its standard output.
fn finance_cli(db: &TestDb, args: &[&str]) -> Vec<u8> {
    common::subsave_stdout(
        db,
        args,
        &[
            ("SUBSAVE_FINANCE__TIME_ZONE", "America/New_York"),
            ("SUBSAVE_FINANCE__ACCOUNTS__REVENUE", "=4000 Sales"),
        ],
    )
}

async fn the_journal_balances_per_order_and_per_day_and_credit_notes_export(backend: Backend) {
    let db = TestDb::new(backend).await;
    // Ada gets 10.00 back.
    let (settings, [ada, bob, _]) = three_billed_in_new_york(&db).await;
    let ada_order = payments_of(&db, ada).await.remove(0).order_number;
    // The metrics' payment backlog: Bob's declined payment is due again a day after its try.
    let retry_at = payments_of(&db, bob).await[0].next_attempt_at.unwrap();
    let backlog = |now| {
        let store = db.store.clone();
        async move { store.payment_backlog(now).await.unwrap() }
    };
    assert_eq!(backlog(retry_at - TimeDelta::seconds(1)).await, (0, None));
    assert_eq!(backlog(retry_at + days(1)).await, (1, Some(retry_at)));
    let at_refund = app(&db, &settings, at("2027-03-05T15:00:00Z"));
    let ten = Money::from_minor(1000, Currency::Usd);
    payments::refund(
        &at_refund,
        &ada_order,
        Some(ten),
        "one pack arrived damaged",
        &Actor::cli(),
        Commit::Plain,
    )
    .await
    .unwrap();

    let period = ["--from", "2027-03-01", "--to", "2027-03-31"];
    let (header, lines) = common::csv_rows(&finance_cli(
        &db,
        &[&["report", "journal"][..], &period, &["--format", "csv"]].concat(),
    ));
    assert_eq!(header, subsave::finance::JOURNAL_COLUMNS);
    let col = |name: &str| header.iter().position(|c| c == name).unwrap();
    let signed =
        |l: &Vec<String>| common::cents(&l[col("debit")]) - common::cents(&l[col("credit")]);
    // Every order, and every day, balances: debits equal credits.
    let mut by_order: std::collections::BTreeMap<String, i64> = Default::default();
    let mut by_day: std::collections::BTreeMap<String, i64> = Default::default();
    for l in &lines {
        *by_order.entry(l[col("order_number")].clone()).or_default() += signed(l);
        *by_day.entry(l[col("date")].clone()).or_default() += signed(l);
    }
    assert_eq!(by_order.len(), 3, "{by_order:?}");
    assert_eq!(
        by_day.keys().collect::<Vec<_>>(),
        ["2027-03-01", "2027-03-05"]
    );
    assert!(
        by_order
            .values()
            .chain(by_day.values())
            .all(|sum| *sum == 0),
        "{by_order:?} {by_day:?}"
    );
    // A reader that closes the pipe mid-stream (`… | head -1`) ends the journal and the
    // exports quietly, as every command.
    for streamed in [
        [&["report", "journal"][..], &period, &["--format", "csv"]].concat(),
        [&["orders", "export"][..], &period].concat(),
        [&["orders", "export", "--format", "jsonl"][..], &period].concat(),
    ] {
        let (code, said) = common::subsave_closed_stdout(&db, &streamed, &[]);
        assert_eq!((code, said.as_str()), (Some(0), ""), "{streamed:?}");
    }
    // The configured account name, made safe for a spreadsheet like every CSV text cell.
    let account = |name: &str| {
        lines
            .iter()
            .filter(|l| l[col("account")] == name)
            .map(signed)
            .sum::<i64>()
    };
    assert!(lines.iter().any(|l| l[col("account")] == "'=4000 Sales"));
    // What the accounts hold equals the finance views: receivable is Bob's unpaid order;
    // revenue less discounts and refunds is revenue net of tax after refunds.
    let bob_total = payments_of(&db, bob).await[0].amount.minor();
    assert_eq!(account("1200 Accounts receivable"), bob_total);
    let revenue: serde_json::Value = serde_json::from_slice(&finance_cli(
        &db,
        &[&["report", "revenue"][..], &period, &["--json"]].concat(),
    ))
    .unwrap();
    let march = &revenue[0]["totals"];
    assert_eq!(
        -(account("'=4000 Sales")
            + account("4900 Sales discounts")
            + account("4950 Sales refunds")),
        march["net_of_tax_after_refunds_minor"].as_i64().unwrap()
    );
    assert_eq!(
        -account("2200 Sales tax payable"),
        march["tax_added_minor"].as_i64().unwrap() + march["tax_included_minor"].as_i64().unwrap()
            - march["refunds_tax_minor"].as_i64().unwrap()
    );
    let paid = db
        .scalar("SELECT CAST(SUM(paid_minor) AS BIGINT) FROM finance_payments")
        .await;
    let fees = db
        .scalar("SELECT CAST(SUM(COALESCE(fee_minor, 0)) AS BIGINT) FROM finance_payments")
        .await;
    assert!(fees > 0);
    assert_eq!(account("1010 Payment provider balance"), paid - fees - 1000);
    assert_eq!(account("6100 Payment processing fees"), fees);

    // Credit notes export like orders.
    let (header, notes) = common::csv_rows(&finance_cli(
        &db,
        &[&["orders", "export", "--credit-notes"][..], &period].concat(),
    ));
    assert_eq!(header, subsave::finance::CREDIT_NOTE_COLUMNS);
    assert_eq!(notes.len(), 1);
    let note = |name: &str| notes[0][header.iter().position(|c| c == name).unwrap()].clone();
    assert_eq!(note("number"), format!("CN-{ada_order}-1"));
    assert_eq!(
        (note("amount"), note("billing_date")),
        ("10.00".into(), "2027-03-05".into())
    );
    assert_eq!(note("reason"), "one pack arrived damaged");

    // Revenue by month with the refunds as their own row: the column adds up after refunds.
    let (header, rows) = common::csv_rows(&finance_cli(
        &db,
        &[&["report", "revenue"][..], &period, &["--format", "csv"]].concat(),
    ));
    assert_eq!(header, subsave::finance::REVENUE_COLUMNS);
    let kinds: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r[0].as_str(), r[2].as_str()))
        .collect();
    assert_eq!(kinds, [("2027-03", "orders"), ("2027-03", "refunds")]);
    assert_eq!(rows[1][7], "-10.00");
    assert_eq!(
        rows.iter().map(|r| common::cents(&r[9])).sum::<i64>(),
        march["net_of_tax_after_refunds_minor"].as_i64().unwrap()
    );
}
