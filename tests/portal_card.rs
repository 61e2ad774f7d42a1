//! A new card and 3-D Secure from the customer's own link, against localstripe (a stateful
//! fake Stripe that also serves a fake Stripe.js at `/js.stripe.com/v3/`) on PostgreSQL:
//!
//! - over HTTP: the card page's CSP (the only page with a script), the SetupIntent made for
//!   the link's customer, and the returns refusing another customer's SetupIntent, a failed
//!   one, an unknown one, a PaymentIntent of another order, a GET of the return URL and a
//!   wrong token or CSRF token, each with nothing changed; a good return saving the card and
//!   charging the declined order at once, and its replay (and Stripe's webhook for the same
//!   PaymentIntent) changing nothing more;
//! - in Chromium (`tests/common/browser.rs`): a declined renewal fixed from the
//!   `payment_failed` email's link (open, enter card 4242…, save: done), and a 3-D Secure
//!   renewal (4000002760003184) completed from its email; every page at 375 and 320 px without
//!   sideways scrolling, screenshots in `target/tmp/portal_card/` (CARGO_TARGET_TMPDIR);
//! - the simulated provider's test-card page (no script) on SQLite.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use common::browser::{Browser, Shots, emails, href};
use common::localstripe::{LocalStripe, SECRET_KEY};
use common::pages::{KEY_NEW, Pages, hidden, signer};
use common::{Backend, TestDb, at};
use subsave::app::App;
use subsave::app::payments::{self, EventOutcome};
use subsave::clock::FixedClock;
use subsave::config::{MailTransport, Settings};
use subsave::core::lifecycle::Start;
use subsave::core::model::{Payment, PaymentStatus, ProviderKind};
use subsave::core::secret::Secret;
use subsave::engine::Engine;
use subsave::store::{PaymentFilter, Recorded};

const PUBLISHABLE_KEY: &str = "pk_test_subsave";
const VISA: &str = "4242424242424242";
/// Attaches, then every charge is declined.
const DECLINED: &str = "4000000000000341";
const THREE_D_SECURE: &str = "4000002760003184";
const WIDTH: u32 = 375;
const NARROWEST: u32 = 320;

fn t0() -> DateTime<Utc> {
    at("2027-03-01T09:00:00Z")
}

fn settings(db: &TestDb, provider: ProviderKind, stripe_base: &str) -> Settings {
    let mut settings = common::pages::settings(db, KEY_NEW);
    settings.payments.provider = provider;
    settings.payments.stripe.api_base = stripe_base.to_owned();
    settings.payments.stripe.secret_key = Some(Secret::new(SECRET_KEY.to_owned()));
    settings.payments.stripe.publishable_key = Some(PUBLISHABLE_KEY.to_owned());
    settings.payments.stripe.js_url = format!("{stripe_base}/js.stripe.com/v3/");
    settings
}

fn app(db: &TestDb, settings: &Settings) -> App {
    App::new(
        db.store.clone(),
        Arc::new(settings.clone()),
        Arc::new(FixedClock(t0())),
    )
}

/// A customer billed at once (cycle 0 due at `t0`) with `refs` at the provider: the
/// subscription id and the customer id.
async fn subscriber(db: &TestDb, email: &str, refs: Option<(String, String)>) -> (i64, i64) {
    let customer = db.customer(email, "UTC", None, t0()).await;
    let sub = db
        .subscribe(&customer, "1-pack", Start::Now, None, t0())
        .await;
    if let Some(refs) = refs {
        db.set_refs(customer.id, refs, t0()).await;
    }
    (sub.id, customer.id)
}

/// Bills everything due at `t0` and charges it once.
async fn bill_and_collect(db: &TestDb, settings: &Settings) {
    Engine::from_settings(db.store.clone(), settings)
        .sweep(t0())
        .await
        .unwrap();
    payments::collect(&app(db, settings)).await.unwrap();
}

async fn payment_of(db: &TestDb, subscription: i64) -> Payment {
    db.store
        .payments(&PaymentFilter {
            subscription_id: Some(subscription),
            limit: 10,
            ..PaymentFilter::default()
        })
        .await
        .unwrap()
        .remove(0)
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    db.scalar(sql).await
}

async fn mails(db: &TestDb, kind: &str, subscription: i64) -> i64 {
    count(
        db,
        &format!(
            "SELECT COUNT(*) FROM outbox WHERE kind = '{kind}' AND subscription_id = {subscription}"
        ),
    )
    .await
}

async fn method_ref(db: &TestDb, customer: i64) -> Option<String> {
    db.store
        .payment_refs(customer)
        .await
        .unwrap()
        .and_then(|r| r.method_ref)
}

/// localstripe's succeeded charges to Stripe customer `customer_ref`.
async fn charges_of(stripe: &LocalStripe, customer_ref: &str) -> usize {
    stripe
        .succeeded_charges()
        .await
        .iter()
        .filter(|c| c["customer"] == customer_ref)
        .count()
}

/// A SetupIntent for `customer_ref` (naming our `customer` in its metadata, as ours do),
/// confirmed with card `number` as Stripe.js would: its id.
async fn confirmed_setup(
    stripe: &LocalStripe,
    customer_ref: &str,
    customer: i64,
    number: &str,
) -> String {
    let customer = customer.to_string();
    let seti = stripe
        .post(
            "/v1/setup_intents",
            &[
                ("customer", customer_ref),
                ("metadata[subsave_customer]", &customer),
            ],
        )
        .await;
    let id = seti["id"].as_str().unwrap().to_owned();
    confirm_setup(stripe, &id, seti["client_secret"].as_str().unwrap(), number).await;
    id
}

async fn confirm_setup(stripe: &LocalStripe, id: &str, secret: &str, number: &str) {
    let confirmed = stripe
        .post(
            &format!("/v1/setup_intents/{id}/confirm"),
            &[
                ("client_secret", secret),
                ("payment_method_data[type]", "card"),
                ("payment_method_data[card][number]", number),
                ("payment_method_data[card][exp_month]", "12"),
                ("payment_method_data[card][exp_year]", "2031"),
                ("payment_method_data[card][cvc]", "123"),
            ],
        )
        .await;
    assert_eq!(confirmed["status"], "succeeded", "{confirmed}");
}

/// What must not move when a request is refused: the payment's state and attempt, the
/// customer's card, localstripe's charges, the receipts.
async fn snapshot(
    db: &TestDb,
    stripe: &LocalStripe,
    sub: i64,
    customer: i64,
) -> (String, u32, Option<String>, usize, i64, i64) {
    let payment = payment_of(db, sub).await;
    (
        payment.status.as_str().to_owned(),
        payment.attempt,
        method_ref(db, customer).await,
        stripe.charges().await.len(),
        mails(db, "payment_received", sub).await,
        count(db, "SELECT COUNT(*) FROM payment_attempts").await,
    )
}

/// Posts `field` to link `token`'s card page with the CSRF token the page gives: the status
/// and the page.
async fn post_card_page(pages: &Pages, token: &str, field: (&str, &str)) -> (u16, String) {
    let path = format!("/s/{token}/payment-method");
    let csrf = hidden(&pages.get(&path).await.2, "csrf");
    let (status, _, body) = pages.post(&path, &[("csrf", &csrf), field]).await;
    (status, body)
}

/// The Stripe customers localstripe has that name our customer `customer`.
async fn stripe_customers_of(stripe: &LocalStripe, customer: i64) -> Vec<String> {
    stripe.get("/v1/customers?limit=100").await["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["metadata"]["subsave_customer"].as_str() == Some(&*customer.to_string()))
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A customer with no Stripe customer yet (subscribed at the storefront without a card, say)
/// can give a card from the page: its GET makes nothing; the first "Save card" (a POST with
/// the page's CSRF token) makes their Stripe customer, once (a second showing of the page
/// and a forged post make no other), and the card saved at it becomes theirs.
#[tokio::test]
async fn a_customer_without_a_stripe_customer_gets_one_when_saving_a_card() {
    let db = TestDb::new(Backend::Postgres).await;
    let stripe = LocalStripe::start().await;
    let settings = settings(&db, ProviderKind::Stripe, &stripe.base);
    let (sub, customer) = subscriber(&db, "dee@example.com", None).await;
    let pages = Pages::start(&db, settings.clone(), t0()).await;
    let token = signer(KEY_NEW).sign(sub, t0() + TimeDelta::days(30));
    let path = format!("/s/{token}/payment-method");
    let refs = || async { db.store.payment_refs(customer).await.unwrap() };

    let (status, _, page) = pages.get(&path).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"card-form\""), "{page}");
    let (csrf, attempt) = (hidden(&page, "csrf"), hidden(&page, "attempt"));
    let setup = format!("{path}/setup");
    let (status, _, _) = pages
        .post(&setup, &[("csrf", "forged"), ("attempt", &attempt)])
        .await;
    assert_eq!(status, 403);
    assert!(
        stripe_customers_of(&stripe, customer).await.is_empty(),
        "a GET or a forged post made one"
    );
    assert_eq!(refs().await.and_then(|r| r.customer_ref), None);

    let mut secrets = Vec::new();
    for attempt in [attempt, hidden(&pages.get(&path).await.2, "attempt")] {
        let (status, _, body) = pages
            .post(&setup, &[("csrf", &csrf), ("attempt", &attempt)])
            .await;
        assert_eq!(status, 200, "{body}");
        secrets.push(
            serde_json::from_str::<serde_json::Value>(&body).unwrap()["client_secret"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let made = stripe_customers_of(&stripe, customer).await;
    assert_eq!(made.len(), 1, "one Stripe customer: {made:?}");
    assert_eq!(
        refs().await.and_then(|r| r.customer_ref).as_deref(),
        Some(made[0].as_str())
    );
    let secret = secrets.pop().unwrap();
    let seti = secret.split("_secret_").next().unwrap().to_owned();
    assert_eq!(
        stripe.get(&format!("/v1/setup_intents/{seti}")).await["customer"],
        made[0].as_str()
    );
    confirm_setup(&stripe, &seti, &secret, VISA).await;
    let (status, _, body) = pages
        .post(&path, &[("csrf", &csrf), ("setup_intent", &seti)])
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("your new card is saved"), "{body}");
    let card = stripe.get(&format!("/v1/setup_intents/{seti}")).await["payment_method"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        method_ref(&db, customer).await.as_deref(),
        Some(card.as_str())
    );
    assert_eq!(
        stripe.get(&format!("/v1/payment_methods/{card}")).await["customer"],
        made[0].as_str()
    );
}

#[tokio::test]
async fn a_new_card_and_3ds_from_the_link_refuse_forged_returns_and_change_nothing_twice() {
    let db = TestDb::new(Backend::Postgres).await;
    let stripe = LocalStripe::start().await;
    let settings = settings(&db, ProviderKind::Stripe, &stripe.base);
    let (ada_cus, ada_card) = stripe.customer_with_card("ada@example.com", DECLINED).await;
    let (ada, ada_id) = subscriber(&db, "ada@example.com", Some((ada_cus.clone(), ada_card))).await;
    let bob_refs = stripe.customer_with_card("bob@example.com", VISA).await;
    let (bob, bob_id) = subscriber(&db, "bob@example.com", Some(bob_refs.clone())).await;
    let cy_refs = stripe
        .customer_with_card("cy@example.com", THREE_D_SECURE)
        .await;
    let (cy, _) = subscriber(&db, "cy@example.com", Some(cy_refs.clone())).await;
    bill_and_collect(&db, &settings).await;
    assert_eq!(payment_of(&db, ada).await.status, PaymentStatus::Failed);
    assert_eq!(payment_of(&db, bob).await.status, PaymentStatus::Paid);
    assert_eq!(
        payment_of(&db, cy).await.status,
        PaymentStatus::RequiresAction
    );

    let pages = Pages::start(&db, settings.clone(), t0()).await;
    let token = |sub: i64| signer(KEY_NEW).sign(sub, t0() + TimeDelta::days(30));
    let (ada_t, bob_t, cy_t) = (token(ada), token(bob), token(cy));

    // The card page: the unpaid order, the form, and the one CSP that lets a script in:
    // localstripe's Stripe.js origin and our script's hash, nothing else.
    let (status, headers, page) = pages.get(&format!("/s/{ada_t}/payment-method")).await;
    assert_eq!(status, 200, "{page}");
    let ada_order = payment_of(&db, ada).await.order_number;
    assert!(
        page.contains(&ada_order) && page.contains("id=\"card-form\""),
        "{page}"
    );
    // (The templates escape `/` in attributes, as a browser reads them.)
    assert!(
        page.replace("&#x2f;", "/")
            .contains(&format!("src=\"{}/js.stripe.com/v3/\"", stripe.base)),
        "{page}"
    );
    let csp = headers["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'sha256-")
            && csp.contains(&format!("' {}; frame-src {};", stripe.base, stripe.base))
            && csp.contains(&format!("connect-src 'self' {};", stripe.base))
            && csp.starts_with("default-src 'none'")
            && !csp.contains("unsafe"),
        "{csp}"
    );
    // The link's token is in the URL: Stripe's script and API never see it as a referrer.
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cache-control"], "no-store");
    for other in [format!("/s/{ada_t}"), format!("/s/{ada_t}/skip")] {
        let (_, headers, _) = pages.get(&other).await;
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(!csp.contains("script-src"), "{other}: {csp}");
    }
    // The page links to it, and so does the payment_failed email (checked in Chromium below).
    let (_, _, overview) = pages.get(&format!("/s/{ada_t}")).await;
    assert!(overview.contains(&format!("/s/{ada_t}/payment-method")));

    // The SetupIntent is made for the link's own Stripe customer, with a CSRF token only.
    let csrf = hidden(&page, "csrf");
    let attempt = hidden(&page, "attempt");
    let path = format!("/s/{ada_t}/payment-method/setup");
    let (status, _, body) = pages
        .post(&path, &[("csrf", "forged"), ("attempt", &attempt)])
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, _, body) = pages
        .post(&path, &[("csrf", &csrf), ("attempt", &attempt)])
        .await;
    assert_eq!(status, 200, "{body}");
    let secret = serde_json::from_str::<serde_json::Value>(&body).unwrap()["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let seti = secret.split("_secret_").next().unwrap().to_owned();
    let made = stripe.get(&format!("/v1/setup_intents/{seti}")).await;
    assert_eq!(made["customer"], ada_cus.as_str());
    assert_eq!(made["metadata"]["subsave_customer"], ada_id.to_string());
    let before = snapshot(&db, &stripe, ada, ada_id).await;

    // Bad returns, each refused with nothing changed: not yet confirmed, another customer's,
    // a cancelled one, an unknown one, a forged CSRF token, a wrong link; and a GET.
    let save = format!("/s/{ada_t}/payment-method");
    let bobs = confirmed_setup(&stripe, &bob_refs.0, bob_id, VISA).await;
    let cancelled = stripe
        .post(
            "/v1/setup_intents",
            &[
                ("customer", ada_cus.as_str()),
                ("metadata[subsave_customer]", &ada_id.to_string()),
            ],
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    stripe
        .post(&format!("/v1/setup_intents/{cancelled}/cancel"), &[])
        .await;
    for (what, seti) in [
        ("not confirmed yet", seti.as_str()),
        ("another customer's", bobs.as_str()),
        ("cancelled", cancelled.as_str()),
        ("unknown", "seti_forged"),
        ("not an id", "seti_1/../../customers"),
        ("none", ""),
    ] {
        let (status, _, body) = pages
            .post(&save, &[("csrf", &csrf), ("setup_intent", seti)])
            .await;
        assert_eq!(status, 409, "{what}: {body}");
        assert!(body.contains("Nothing was changed"), "{what}: {body}");
        assert_eq!(snapshot(&db, &stripe, ada, ada_id).await, before, "{what}");
    }
    confirm_setup(&stripe, &seti, &secret, VISA).await;
    let (status, _, _) = pages
        .post(&save, &[("csrf", "forged"), ("setup_intent", &seti)])
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = pages
        .post(
            &format!("/s/{bob_t}/payment-method"),
            &[("csrf", &csrf), ("setup_intent", &seti)],
        )
        .await;
    assert_eq!(status, 403, "another link's CSRF token");
    let (status, body) = post_card_page(&pages, &bob_t, ("setup_intent", &seti)).await;
    assert_eq!(status, 409, "Ada's SetupIntent on Bob's link: {body}");
    let (status, _, _) = pages
        .post(
            "/s/k2.1.1.AAAA/payment-method",
            &[("csrf", &csrf), ("setup_intent", &seti)],
        )
        .await;
    assert_eq!(status, 403, "a wrong token");
    // A mail scanner (or anyone) opening the return URL: a page, nothing saved or charged.
    let (status, _, _) = pages.get(&format!("{save}?setup_intent={seti}")).await;
    assert_eq!(status, 200);
    assert_eq!(snapshot(&db, &stripe, ada, ada_id).await, before, "a GET");

    // The good return: the card is Ada's, the declined order is charged at once and paid.
    let (status, _, body) = pages
        .post(&save, &[("csrf", &csrf), ("setup_intent", &seti)])
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("your new card is saved")
            && body.contains(&format!("Order {ada_order}"))
            && body.contains("paid with your new card"),
        "{body}"
    );
    let paid = payment_of(&db, ada).await;
    assert_eq!(paid.status, PaymentStatus::Paid);
    assert_eq!(paid.next_attempt_at, None, "dunning stopped");
    let new_card = stripe.get(&format!("/v1/setup_intents/{seti}")).await["payment_method"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        method_ref(&db, ada_id).await.as_deref(),
        Some(new_card.as_str())
    );
    assert_eq!(
        stripe.get(&format!("/v1/payment_methods/{new_card}")).await["customer"],
        ada_cus.as_str(),
        "the card is attached to Ada's Stripe customer"
    );
    assert_eq!(charges_of(&stripe, &ada_cus).await, 1);
    assert_eq!(mails(&db, "payment_received", ada).await, 1);
    assert_eq!(
        count(
            &db,
            &format!(
                "SELECT COUNT(*) FROM subscriptions WHERE id = {ada} AND unpaid_order_id IS NULL"
            )
        )
        .await,
        1,
        "renewals no longer wait"
    );
    // Replayed: nothing more.
    let after = snapshot(&db, &stripe, ada, ada_id).await;
    let (status, _, body) = pages
        .post(&save, &[("csrf", &csrf), ("setup_intent", &seti)])
        .await;
    assert_eq!(status, 200);
    assert!(
        body.contains("already saved: nothing was changed"),
        "{body}"
    );
    assert_eq!(snapshot(&db, &stripe, ada, ada_id).await, after, "a replay");

    // 3-D Secure: Cy's order, from its own link only.
    let cy_payment = payment_of(&db, cy).await;
    let pi = cy_payment.provider_payment_ref.clone().unwrap();
    let pay = format!("/s/{cy_t}/orders/{}/pay", cy_payment.order_number);
    let (status, headers, page) = pages.get(&pay).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&format!("data-secret=\"{pi}_secret_")),
        "{page}"
    );
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src")
    );
    let (status, _, _) = pages
        .get(&format!(
            "/s/{bob_t}/orders/{}/pay",
            cy_payment.order_number
        ))
        .await;
    assert_eq!(status, 404, "another subscription's order looks unknown");
    let cy_csrf = hidden(&page, "csrf");
    let before = snapshot(&db, &stripe, cy, 0).await;
    // Not confirmed at Stripe yet: the return records nothing.
    let (status, _, body) = pages
        .post(&pay, &[("csrf", &cy_csrf), ("payment_intent", &pi)])
        .await;
    assert_eq!(status, 200);
    assert!(body.contains("has not confirmed"), "{body}");
    assert_eq!(snapshot(&db, &stripe, cy, 0).await, before);
    stripe.authenticate(&pi).await;
    // Forged: another order's PaymentIntent (Bob's paid one), an unknown one, no CSRF token.
    let bobs_pi = payment_of(&db, bob).await.provider_payment_ref.unwrap();
    for forged in [bobs_pi.as_str(), "pi_forged"] {
        let (status, _, body) = pages
            .post(&pay, &[("csrf", &cy_csrf), ("payment_intent", forged)])
            .await;
        assert_eq!(status, 409, "{forged}: {body}");
        assert_eq!(snapshot(&db, &stripe, cy, 0).await.0, "requires_action");
    }
    let (status, _, _) = pages.post(&pay, &[("payment_intent", &pi)]).await;
    assert_eq!(status, 403);
    // The return URL opened by a GET: the page (it reads Stripe), nothing recorded.
    let (status, _, page) = pages.get(&format!("{pay}?payment_intent={pi}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("finish here"), "{page}");
    assert_eq!(
        payment_of(&db, cy).await.status,
        PaymentStatus::RequiresAction
    );
    // The return: read from Stripe, recorded as the webhook would, once.
    let (status, _, body) = pages
        .post(&pay, &[("csrf", &cy_csrf), ("payment_intent", &pi)])
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("is paid"), "{body}");
    assert_eq!(payment_of(&db, cy).await.status, PaymentStatus::Paid);
    assert_eq!(charges_of(&stripe, &cy_refs.0).await, 1);
    assert_eq!(mails(&db, "payment_received", cy).await, 1);
    let after = snapshot(&db, &stripe, cy, 0).await;
    let (status, _, body) = pages
        .post(&pay, &[("csrf", &cy_csrf), ("payment_intent", &pi)])
        .await;
    assert_eq!((status, body.contains("is paid")), (200, true));
    // Stripe's own webhook for the same PaymentIntent, after the page: nothing more.
    let event = serde_json::json!({
        "id": "evt_after_the_page",
        "type": "payment_intent.succeeded",
        "data": { "object": stripe.get(&format!("/v1/payment_intents/{pi}")).await },
    });
    assert_eq!(
        payments::apply_stripe_event(&app(&db, &settings), &event)
            .await
            .unwrap(),
        EventOutcome::Applied(Recorded::Unchanged)
    );
    assert_eq!(snapshot(&db, &stripe, cy, 0).await, after, "replays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_fixes_a_declined_card_and_completes_3ds_from_the_emails() {
    let db = TestDb::new(Backend::Postgres).await;
    let stripe = LocalStripe::start().await;
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("portal_card");
    let _ = std::fs::remove_dir_all(&out);
    let mail_dir = out.join("mail");
    std::fs::create_dir_all(&mail_dir).unwrap();

    let mut config = settings(&db, ProviderKind::Stripe, &stripe.base);
    let pages = Pages::start(&db, config.clone(), t0()).await;
    config.web.public_url = pages.base.clone();
    config.mail.transport = MailTransport::File;
    config.mail.file_dir = mail_dir.clone();
    let (ada_cus, ada_card) = stripe.customer_with_card("ada@example.com", DECLINED).await;
    let (ada, _) = subscriber(&db, "ada@example.com", Some((ada_cus.clone(), ada_card))).await;
    let cy_refs = stripe
        .customer_with_card("cy@example.com", THREE_D_SECURE)
        .await;
    let (cy, _) = subscriber(&db, "cy@example.com", Some(cy_refs.clone())).await;
    bill_and_collect(&db, &config).await;
    let app = app(&db, &config);
    subsave::app::outbox::deliver(&app, &common::pages::links(app.settings()))
        .await
        .unwrap();
    let delivered = emails(&mail_dir);
    let email = |subject: &str| {
        delivered
            .iter()
            .find(|(_, s, _)| s.contains(subject))
            .unwrap_or_else(|| panic!("no \"{subject}\" email among {delivered:?}"))
            .clone()
    };
    let declined = email("We could not charge");
    let needs_action = email("Please confirm your payment");
    let card_link = href(&declined.2, "Give a new card");
    let confirm_link = href(&needs_action.2, "Confirm the payment");
    assert!(card_link.ends_with("/payment-method"), "{card_link}");
    assert!(confirm_link.ends_with("/pay"), "{confirm_link}");

    let mut shots = Shots::new(out.clone(), WIDTH, NARROWEST);
    let card_inputs = "#card-element input[placeholder=number]";

    // Both pages fit the narrowest phone with Stripe.js's card fields mounted (looked at:
    // a GET changes nothing).
    let mut narrow = Browser::start(NARROWEST, 640).await;
    for (name, url, shown) in [
        ("card-page-unpaid", &card_link, "localstripe"),
        ("confirm-page-unpaid", &confirm_link, "Confirm the payment"),
    ] {
        narrow.look_at(url).await;
        narrow.wait_for_text(shown).await;
        shots
            .check_at(&narrow, &format!("{name}-{NARROWEST}"), NARROWEST)
            .await;
    }
    assert_eq!(
        narrow
            .script(&format!(
                "return document.querySelectorAll('{card_inputs}').length"
            ))
            .await,
        0,
        "the confirm page has no card fields"
    );
    narrow.quit().await;
    assert_eq!(payment_of(&db, ada).await.status, PaymentStatus::Failed);
    assert_eq!(
        payment_of(&db, cy).await.status,
        PaymentStatus::RequiresAction
    );

    // The declined card, fixed from the email: open, enter the card, save; done.
    let mut browser = Browser::start(WIDTH, 812).await;
    browser.open(&card_link).await;
    browser.wait_for_text("localstripe").await;
    shots.check(&browser, "card-page").await;
    for (field, value) in [
        ("number", VISA),
        ("exp_month", "12"),
        ("exp_year", "31"),
        ("cvc", "123"),
        ("postal_code", "10001"),
    ] {
        browser
            .type_into(&format!("#card-element input[placeholder={field}]"), value)
            .await;
    }
    browser.interactions += 1; // entering the card
    shots.check(&browser, "card-entered").await;
    browser.click("#save-card").await;
    let text = browser.wait_for_text("your new card is saved").await;
    assert!(text.contains("paid with your new card"), "{text}");
    shots.check(&browser, "card-saved").await;
    assert!(
        browser.interactions <= 4,
        "open, enter the card, save: {} interactions",
        browser.interactions
    );
    let paid = payment_of(&db, ada).await;
    assert_eq!(
        (paid.status, paid.next_attempt_at),
        (PaymentStatus::Paid, None)
    );
    assert_eq!(
        charges_of(&stripe, &ada_cus).await,
        1,
        "one charge at localstripe"
    );
    assert_eq!(
        count(
            &db,
            &format!(
                "SELECT COUNT(*) FROM payments WHERE subscription_id = {ada} AND status = 'paid'"
            )
        )
        .await,
        1
    );
    assert_eq!(mails(&db, "payment_received", ada).await, 1);
    let failed_mails = mails(&db, "payment_failed", ada).await;

    // 3-D Secure from its email: open, confirm, authenticate at the bank (localstripe's
    // dialog); done.
    shots
        .look(&mut browser, "confirm-page", confirm_link.clone())
        .await;
    browser.interactions = 0;
    browser.open(&confirm_link).await;
    browser.wait_for_text("Confirm the payment").await;
    browser.click("#confirm-payment").await;
    browser.wait_for_text("Complete authentication").await;
    shots.check(&browser, "confirm-3ds-dialog").await;
    browser.click("body > div > button").await;
    let text = browser.wait_for_text("is paid").await;
    assert!(text.contains("Thank you"), "{text}");
    shots.check(&browser, "confirm-paid").await;
    assert_eq!(browser.interactions, 3, "open, confirm, authenticate");
    assert_eq!(payment_of(&db, cy).await.status, PaymentStatus::Paid);
    assert_eq!(charges_of(&stripe, &cy_refs.0).await, 1);
    assert_eq!(mails(&db, "payment_received", cy).await, 1);

    // Dunning stopped: ten days later nothing is claimed, nothing more is mailed.
    let later = App::new(
        db.store.clone(),
        Arc::new(config.clone()),
        Arc::new(FixedClock(t0() + TimeDelta::days(10))),
    );
    assert_eq!(payments::collect(&later).await.unwrap().claimed, 0);
    assert_eq!(mails(&db, "payment_failed", ada).await, failed_mails);

    // In German too (Cy's pages, now that her order is paid: the card form, the paid order).
    db.execute("UPDATE customers SET locale = 'de-DE' WHERE email = 'cy@example.com'")
        .await
        .unwrap();
    let cy_card_link = format!(
        "{}/payment-method",
        confirm_link.split("/orders/").next().unwrap()
    );
    shots.look(&mut browser, "de-card-page", cy_card_link).await;
    let text = browser.wait_for_text("Karte speichern").await;
    assert!(text.contains("Ihre Zahlungsart"), "{text}");
    assert_eq!(
        browser.script("return document.documentElement.lang").await,
        "de"
    );
    shots
        .look(&mut browser, "de-confirm-page", confirm_link.clone())
        .await;
    browser.wait_for_text("Diese Bestellung ist bezahlt").await;

    // The payment emails fit the phone too.
    for (file, _, html) in [&declined, &needs_action] {
        shots.look_email(&mut browser, file, html).await;
    }
    browser.quit().await;
    shots
        .narrowest(|url| {
            url.starts_with("file://") || url.ends_with("/pay") || url.ends_with("/payment-method")
        })
        .await;
    println!(
        "checked at {WIDTH} and {NARROWEST} px, screenshots in {}:\n  {}",
        out.display(),
        shots.taken.join("\n  ")
    );
}

#[tokio::test]
async fn the_simulated_provider_takes_the_test_card_without_a_script() {
    let db = TestDb::new(Backend::Sqlite).await;
    let settings = settings(&db, ProviderKind::Simulated, "http://127.0.0.1:9");
    let (dee, dee_id) = subscriber(
        &db,
        "dee@example.com",
        Some(("sim_cus_dee".into(), "pm_card_declined".into())),
    )
    .await;
    let (eve, _) = subscriber(
        &db,
        "eve@example.com",
        Some(("sim_cus_eve".into(), "pm_card_authentication".into())),
    )
    .await;
    let (fay, _) = subscriber(
        &db,
        "fay@example.com",
        Some(("sim_cus_fay".into(), "pm_card_declined".into())),
    )
    .await;
    bill_and_collect(&db, &settings).await;
    assert_eq!(payment_of(&db, dee).await.status, PaymentStatus::Failed);
    assert_eq!(
        payment_of(&db, eve).await.status,
        PaymentStatus::RequiresAction
    );
    let pages = Pages::start(&db, settings.clone(), t0()).await;
    let token = signer(KEY_NEW).sign(dee, t0() + TimeDelta::days(30));
    let (status, headers, page) = pages.get(&format!("/s/{token}/payment-method")).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Use the test card") && !page.contains("<script"),
        "{page}"
    );
    assert!(
        !headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src")
    );
    let csrf = hidden(&page, "csrf");
    let (status, _, body) = pages
        .post(
            &format!("/s/{token}/payment-method"),
            &[("csrf", &csrf), ("test_card", "1")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("paid with your new card"), "{body}");
    assert_eq!(payment_of(&db, dee).await.status, PaymentStatus::Paid);
    assert_eq!(
        method_ref(&db, dee_id).await.as_deref(),
        Some("pm_card_visa")
    );
    assert_eq!(mails(&db, "payment_received", dee).await, 1);
    let (_, _, again) = pages
        .post(
            &format!("/s/{token}/payment-method"),
            &[("csrf", &csrf), ("test_card", "1")],
        )
        .await;
    assert!(again.contains("already saved"), "{again}");
    assert_eq!(mails(&db, "payment_received", dee).await, 1);

    // A paused subscription's declined order waits for the resume (which retries it): the page
    // says so and links to the resume.
    subsave::app::subscriptions::perform(
        &app(&db, &settings),
        &subsave::core::model::Actor::cli(),
        fay,
        &subsave::app::subscriptions::Action::Pause { until: None },
        subsave::app::idempotency::Commit::Plain,
    )
    .await
    .unwrap();
    let token = signer(KEY_NEW).sign(fay, t0() + TimeDelta::days(30));
    let (status, body) = post_card_page(&pages, &token, ("test_card", "1")).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("your subscription is paused")
            && body.contains(&format!("href=\"/s/{token}/resume\"")),
        "{body}"
    );
    assert_eq!(payment_of(&db, fay).await.status, PaymentStatus::Failed);

    // A simulated 3-D Secure payment, confirmed from its page once, in German for a German
    // customer.
    db.execute("UPDATE customers SET locale = 'de-DE' WHERE email = 'eve@example.com'")
        .await
        .unwrap();
    let token = signer(KEY_NEW).sign(eve, t0() + TimeDelta::days(30));
    let order = payment_of(&db, eve).await.order_number;
    let pay = format!("/s/{token}/orders/{order}/pay");
    let (status, _, page) = pages.get(&pay).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<html lang=\"de\">")
            && page.contains("Bestätigen (Testzahlung)")
            && !page.contains("<script"),
        "{page}"
    );
    assert_eq!(
        payment_of(&db, eve).await.status,
        PaymentStatus::RequiresAction
    );
    let csrf = hidden(&page, "csrf");
    for _ in 0..2 {
        let (status, _, body) = pages.post(&pay, &[("csrf", &csrf)]).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("ist bezahlt"), "{body}");
    }
    assert_eq!(payment_of(&db, eve).await.status, PaymentStatus::Paid);
    assert_eq!(mails(&db, "payment_received", eve).await, 1);
}
