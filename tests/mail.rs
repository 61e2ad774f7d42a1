//! Email end to end: the engine queues, the mailer delivers through lettre to a real SMTP
//! conversation on 127.0.0.1 (the scripted peer in `common/smtp.rs`), and what arrives parses
//! as MIME with the right recipient, subject, Message-ID and amounts.

mod common;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use chrono::TimeDelta;
use common::smtp::{SmtpPeer, free_port};
use common::{Backend, TestDb, at, mail_settings};
use mail_parser::{MessageParser, MimeHeaders};
use subsave::clock::FixedClock;
use subsave::config::{MailTransport, ReminderSettings};
use subsave::core::lifecycle::{self, Operation, Start};
use subsave::core::model::{Actor, Message, MessageKind, MessageStatus, NewCustomer};
use subsave::core::renewal::CatchUp;
use subsave::core::schedule::{DeliveryWindow, TimeOfDay};
use subsave::mail::mailer::Mailer;
use subsave::mail::transport;
use subsave::store::MessageFilter;

fn mailer_for(db: &TestDb, settings: &subsave::config::MailSettings) -> Mailer {
    let transport = transport::from_settings(settings).unwrap();
    Mailer::new(db.store.clone(), Arc::from(transport), settings)
}

async fn outbox(db: &TestDb) -> Vec<Message> {
    db.store
        .messages(&MessageFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
}

fn reminders() -> ReminderSettings {
    ReminderSettings {
        lead_days: vec![3],
        window: DeliveryWindow {
            start: "09:00".parse().unwrap(),
            end: "20:00".parse().unwrap(),
        },
    }
}

/// A customer with a non-ASCII name and one 3-pack subscription, created 2026-01-10 in New
/// York (first renewal 2026-04-10 09:00 EDT = 13:00 UTC).
async fn one_subscription(db: &TestDb, renewal_time: &str) -> subsave::core::model::Subscription {
    let created = at("2026-01-10T15:00:00Z");
    let c = db
        .customer(
            "zoe@example.com",
            "America/New_York",
            Some("US-CA"),
            created,
        )
        .await;
    let mut new = lifecycle::new_subscription(
        &db.catalog,
        &c,
        "3-pack",
        1,
        None,
        Start::AfterCheckout,
        TimeOfDay::from_str(renewal_time).unwrap(),
        created,
    )
    .unwrap();
    new.coupon_code = None;
    let sub = db
        .store
        .create_subscription(&new, &db.catalog, &Actor("test".into()), created)
        .await
        .unwrap();
    db.execute(&format!(
        "UPDATE customers SET name = 'Zoë Ångström-Łukasz' WHERE id = {}",
        c.id
    ))
    .await
    .unwrap();
    sub
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_messages_are_valid_mime_with_the_quoted_amounts() {
    let db = TestDb::new(Backend::Postgres).await;
    let sub = one_subscription(&db, "09:00").await;
    // The created confirmation was queued with the old name; deliver it first.
    let peer = SmtpPeer::start().await;
    let settings = mail_settings(peer.port());
    let mailer = mailer_for(&db, &settings);
    let engine = db.engine(CatchUp::Latest, 50).with_reminders(reminders());

    // 3 days before 2026-04-10 09:00 EDT: the reminder, then the renewal and its confirmation.
    engine.sweep(at("2026-04-07T00:00:00Z")).await.unwrap();
    let report = mailer
        .deliver_due(&FixedClock(at("2026-04-07T13:00:00Z")))
        .await
        .unwrap();
    assert_eq!((report.sent, report.failed), (2, 0), "created + reminder");
    engine.sweep(at("2026-04-10T13:00:00Z")).await.unwrap();
    let report = mailer
        .deliver_due(&FixedClock(at("2026-04-10T13:00:01Z")))
        .await
        .unwrap();
    assert_eq!(report.sent, 1, "the order confirmation");

    let received = peer.received();
    assert_eq!(received.len(), 3);
    let messages = outbox(&db).await;
    // Deliveries run concurrently: match what arrived to its outbox row by Message-ID.
    let arrived = |row: &Message| {
        received
            .iter()
            .find(|mail| {
                let parsed = MessageParser::default().parse(&mail.data).unwrap();
                parsed
                    .message_id()
                    .unwrap()
                    .starts_with(&format!("outbox-{}.", row.id))
            })
            .unwrap_or_else(|| panic!("outbox {} was not delivered", row.id))
    };
    for row in &messages {
        assert_eq!(row.status, MessageStatus::Sent);
        let mail = arrived(row);
        assert_eq!(mail.to, ["TO:<zoe@example.com>"]);
        assert_eq!(mail.from, "FROM:<orders@blackbala.example>");
        let parsed = MessageParser::default()
            .parse(&mail.data)
            .expect("valid MIME");
        let content_type = parsed.content_type().unwrap();
        assert_eq!(
            (content_type.ctype(), content_type.subtype()),
            ("multipart", Some("alternative"))
        );
        assert_eq!(parsed.text_body_count(), 1);
        assert_eq!(parsed.html_body_count(), 1);
        assert!(parsed.message_id().unwrap().ends_with("@blackbala.example"));
        assert_eq!(
            parsed
                .reply_to()
                .unwrap()
                .first()
                .unwrap()
                .address()
                .unwrap(),
            "support@blackbala.example"
        );
        assert!(parsed.date().is_some());
    }
    let of_kind = |kind: &str| {
        let row = messages.iter().find(|m| m.kind.as_str() == kind).unwrap();
        MessageParser::default()
            .parse(&arrived(row).data)
            .unwrap()
            .into_owned()
    };
    let reminder = of_kind("renewal_reminder");
    assert_eq!(
        reminder.subject().unwrap(),
        "Your 3-pack renews on Friday, April 10, 2026"
    );
    assert_eq!(
        reminder.to().unwrap().first().unwrap().name().unwrap(),
        "Zoë Ångström-Łukasz",
        "non-ASCII names are encoded and decode back"
    );
    let text = reminder.body_text(0).unwrap();
    assert!(
        text.contains("$134.99") && text.contains("-$20.25") && text.contains("Total: $123.06"),
        "{text}"
    );
    let confirmation = of_kind("order_confirmation");
    let order_number = format!("BB-{:07}-001", sub.id);
    assert_eq!(
        confirmation.subject().unwrap(),
        format!("Order {order_number} confirmed: $123.06")
    );
    let html = confirmation.body_html(0).unwrap();
    assert!(
        html.contains("$123.06") && html.contains("California sales tax 7.25%"),
        "{html}"
    );
    assert!(!html.to_lowercase().contains("<script"));
    // The reminder promised what the renewal charged.
    assert!(text.contains("$123.06") && html.contains("$123.06"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_wait_while_the_server_is_down_and_arrive_once_when_it_is_up() {
    let db = TestDb::new(Backend::Sqlite).await;
    one_subscription(&db, "09:00").await;
    let port = free_port();
    let settings = mail_settings(port);
    let mailer = mailer_for(&db, &settings);
    let now = at("2026-01-10T15:00:00Z");
    let report = mailer.deliver_due(&FixedClock(now)).await.unwrap();
    assert_eq!((report.sent, report.retried), (0, 1));
    let row = &outbox(&db).await[0];
    assert_eq!((row.status.as_str(), row.attempts), ("pending", 1));
    assert!(
        row.next_attempt_at >= now + TimeDelta::seconds(60),
        "backs off at least the base delay"
    );
    // The batch's clock moves on with real time from the fixed "now" (a few milliseconds
    // here), so a jitter drawn near its 50 % top lands just past 90 s.
    assert!(
        row.next_attempt_at <= now + TimeDelta::seconds(95),
        "at most base + 50 % jitter, counted from the failure"
    );
    assert!(
        row.last_error
            .as_deref()
            .unwrap()
            .to_lowercase()
            .contains("connection"),
        "{:?}",
        row.last_error
    );
    // Before the retry instant nothing is attempted.
    assert_eq!(
        mailer
            .deliver_due(&FixedClock(now + TimeDelta::seconds(30)))
            .await
            .unwrap(),
        Default::default()
    );

    let peer = SmtpPeer::start_on(port).await;
    let report = mailer
        .deliver_due(&FixedClock(now + TimeDelta::minutes(5)))
        .await
        .unwrap();
    assert_eq!(report.sent, 1);
    assert_eq!(
        mailer
            .deliver_due(&FixedClock(now + TimeDelta::hours(5)))
            .await
            .unwrap()
            .sent,
        0,
        "nothing twice"
    );
    assert_eq!(peer.received().len(), 1);
    assert_eq!(outbox(&db).await[0].status, MessageStatus::Sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4xx_is_retried_and_a_5xx_fails_at_once_with_the_reply_kept() {
    let db = TestDb::new(Backend::Sqlite).await;
    one_subscription(&db, "09:00").await;
    let peer = SmtpPeer::start().await;
    let mailer = mailer_for(&db, &mail_settings(peer.port()));
    let now = at("2026-01-10T15:00:00Z");
    peer.script_data(&["451 4.3.0 try again later"]);
    assert_eq!(
        mailer.deliver_due(&FixedClock(now)).await.unwrap().retried,
        1
    );
    let row = &outbox(&db).await[0];
    assert!(
        row.last_error.as_deref().unwrap().contains("451"),
        "{:?}",
        row.last_error
    );
    assert_eq!(
        mailer
            .deliver_due(&FixedClock(now + TimeDelta::hours(1)))
            .await
            .unwrap()
            .sent,
        1
    );
    assert_eq!(peer.received().len(), 1);
    assert_eq!(outbox(&db).await[0].attempts, 2);

    // A permanent refusal: failed at once, the reply stored, never retried.
    let db = TestDb::new(Backend::Sqlite).await;
    one_subscription(&db, "09:00").await;
    let peer = SmtpPeer::start().await;
    peer.refuse_recipients("550 5.1.1 no such mailbox here");
    let mailer = mailer_for(&db, &mail_settings(peer.port()));
    assert_eq!(
        mailer.deliver_due(&FixedClock(now)).await.unwrap().failed,
        1
    );
    let row = &outbox(&db).await[0];
    assert_eq!((row.status.as_str(), row.attempts), ("failed", 1));
    assert!(
        row.last_error.as_deref().unwrap().contains("550")
            && row
                .last_error
                .as_deref()
                .unwrap()
                .contains("no such mailbox"),
        "{:?}",
        row.last_error
    );
    assert_eq!(
        mailer
            .deliver_due(&FixedClock(now + TimeDelta::days(1)))
            .await
            .unwrap(),
        Default::default(),
        "not retried"
    );
    // An operator can queue it again.
    assert_eq!(db.store.retry_failed(None, now).await.unwrap(), 1);
    assert_eq!(outbox(&db).await[0].status, MessageStatus::Pending);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_for_a_skipped_cycle_is_suppressed_not_sent() {
    let db = TestDb::new(Backend::Postgres).await;
    let sub = one_subscription(&db, "09:00").await;
    let peer = SmtpPeer::start().await;
    let mailer = mailer_for(&db, &mail_settings(peer.port()));
    mailer
        .deliver_due(&FixedClock(at("2026-01-10T15:00:00Z")))
        .await
        .unwrap();
    let engine = db.engine(CatchUp::Latest, 50).with_reminders(reminders());
    let report = engine.sweep(at("2026-04-07T00:00:00Z")).await.unwrap();
    assert_eq!(report.reminders, 1);
    // Queued; then the customer skips that renewal before it is sent.
    let catalog = db.catalog.clone();
    db.store
        .transition(sub.id, &|s, c| {
            lifecycle::apply(
                s,
                c,
                &Operation::Skip,
                &catalog,
                &Actor("customer".into()),
                at("2026-04-07T12:00:00Z"),
            )
        })
        .await
        .unwrap();
    let before = peer.received().len();
    let report = mailer
        .deliver_due(&FixedClock(at("2026-04-07T13:00:00Z")))
        .await
        .unwrap();
    assert_eq!(report.suppressed, 1);
    let reminder = db
        .store
        .messages(&MessageFilter {
            kind: Some(MessageKind::RenewalReminder),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(reminder[0].status, MessageStatus::Suppressed);
    assert!(
        reminder[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("skipped"),
        "{:?}",
        reminder[0].last_error
    );
    // Only the skip confirmation went out.
    let sent: Vec<String> = peer.received()[before..]
        .iter()
        .map(|m| {
            MessageParser::default()
                .parse(&m.data)
                .unwrap()
                .subject()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(sent, ["Your next delivery is skipped"]);
    // At most one reminder per (subscription, cycle, lead time): the database does not write
    // another. (The outbox is partitioned; its keys table drops the duplicate the way the
    // outbox's own `INSERT ... ON CONFLICT DO NOTHING` does.)
    let duplicate = format!(
        "INSERT INTO outbox (kind, recipient, subscription_id, cycle, lead_days, payload, next_attempt_at, created_at) \
         VALUES ('renewal_reminder', 'x@example.com', {}, 1, 3, '{{}}', '2026-04-07T00:00:00Z', '2026-04-07T00:00:00Z')",
        sub.id
    );
    assert_eq!(db.execute(&duplicate).await, Ok(0));
    let reminders = format!(
        "SELECT COUNT(*) FROM outbox WHERE kind = 'renewal_reminder' AND subscription_id = {} \
         AND cycle = 1 AND lead_days = 3",
        sub.id
    );
    assert_eq!(db.scalar(&reminders).await, 1);
}

/// The mailer claims its next batch while sending the current one. Stopped mid-batch, it
/// finishes the batch in hand and gives the next one back: no lease is left to expire, no
/// attempt is counted, and another mailer sends the rest at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_mailer_gives_back_the_batch_it_claimed_ahead() {
    let db = TestDb::new(Backend::Postgres).await;
    let now = at("2026-01-10T15:00:00Z");
    welcome(&db, "s", 30, now).await;
    let peer = SmtpPeer::start().await;
    let mut settings = mail_settings(peer.port());
    settings.delivery.rate_per_second = 20;
    settings.delivery.batch_size = 10;
    let stop = tokio_util::sync::CancellationToken::new();
    let mailer = mailer_for(&db, &settings).with_stop(stop.clone());
    let delivery = tokio::spawn(async move { mailer.deliver_due(&FixedClock(now)).await });
    // Ten messages at 20 a second take half a second; stop once the first has arrived, in
    // the middle of the first batch.
    while peer.received().is_empty() {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    stop.cancel();
    let report = delivery.await.unwrap().unwrap();
    assert_eq!(report.sent, 10, "{report:?}");
    let rest: Vec<Message> = outbox(&db)
        .await
        .into_iter()
        .filter(|m| m.status == MessageStatus::Pending)
        .collect();
    assert_eq!(rest.len(), 20);
    assert!(
        rest.iter()
            .all(|m| m.lease_until.is_none() && m.attempts == 0),
        "{rest:?}"
    );
    let report = mailer_for(&db, &settings)
        .deliver_due(&FixedClock(now))
        .await
        .unwrap();
    assert_eq!(report.sent, 20);
    assert_eq!(peer.received().len(), 30);
}

/// A batch's reminders are checked against their subscriptions read at most a second before
/// each send: at one message a second, a skip made while the batch is being sent is seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skip_made_while_a_slow_batch_is_sent_suppresses_its_reminder() {
    let db = TestDb::new(Backend::Postgres).await;
    let created = at("2026-01-10T15:00:00Z");
    let mut subs = Vec::new();
    for name in ["a", "b", "c"] {
        let c = db
            .customer(&format!("{name}@example.com"), "UTC", None, created)
            .await;
        subs.push(
            db.subscribe(&c, "3-pack", Start::AfterCheckout, None, created)
                .await,
        );
    }
    let engine = db.engine(CatchUp::Latest, 50).with_reminders(reminders());
    let queued = engine
        .sweep(subs[0].next_renewal_at.unwrap() - TimeDelta::days(3))
        .await
        .unwrap();
    assert_eq!(queued.reminders, 3);
    db.execute("UPDATE outbox SET status = 'sent' WHERE kind <> 'renewal_reminder'")
        .await
        .unwrap();
    let peer = SmtpPeer::start().await;
    let mut settings = mail_settings(peer.port());
    settings.delivery.rate_per_second = 1;
    settings.delivery.concurrency = 1;
    let mailer = mailer_for(&db, &settings);
    let send_at = subs[0].next_renewal_at.unwrap() - TimeDelta::days(2);
    let delivery = tokio::spawn(async move { mailer.deliver_due(&FixedClock(send_at)).await });
    // The first reminder goes at once, the others one and two seconds later.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let catalog = db.catalog.clone();
    db.store
        .transition(subs[2].id, &|s, c| {
            lifecycle::apply(
                s,
                c,
                &Operation::Skip,
                &catalog,
                &Actor("customer".into()),
                send_at,
            )
        })
        .await
        .unwrap();
    let report = delivery.await.unwrap().unwrap();
    assert_eq!((report.sent, report.suppressed), (2, 1), "{report:?}");
    let skipped = outbox(&db)
        .await
        .into_iter()
        .find(|m| m.kind == MessageKind::RenewalReminder && m.subscription_id == Some(subs[2].id))
        .unwrap();
    assert_eq!(skipped.status, MessageStatus::Suppressed);
    assert_eq!(peer.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_due_at_2am_is_delivered_when_the_window_opens() {
    let db = TestDb::new(Backend::Sqlite).await;
    // Renewals at 02:00 New York: the reminder 3 days before is due at 02:00 local.
    one_subscription(&db, "02:00").await;
    let peer = SmtpPeer::start().await;
    let mailer = mailer_for(&db, &mail_settings(peer.port()));
    mailer
        .deliver_due(&FixedClock(at("2026-01-10T15:00:00Z")))
        .await
        .unwrap();
    let engine = db.engine(CatchUp::Latest, 50).with_reminders(reminders());
    // Sweeps run all day; the one at noon on April 6 queues the reminder.
    engine.sweep(at("2026-04-06T12:00:00Z")).await.unwrap();
    let reminder = db
        .store
        .messages(&MessageFilter {
            kind: Some(MessageKind::RenewalReminder),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    // 2026-04-07 09:00 EDT = 13:00 UTC, not 02:00 EDT (06:00 UTC).
    assert_eq!(reminder[0].next_attempt_at, at("2026-04-07T13:00:00Z"));
    let before = peer.received().len();
    assert_eq!(
        mailer
            .deliver_due(&FixedClock(at("2026-04-07T06:00:00Z")))
            .await
            .unwrap()
            .sent,
        0,
        "not at 2 a.m."
    );
    assert_eq!(
        mailer
            .deliver_due(&FixedClock(at("2026-04-07T12:59:59Z")))
            .await
            .unwrap()
            .sent,
        0
    );
    assert_eq!(
        mailer
            .deliver_due(&FixedClock(at("2026-04-07T13:00:00Z")))
            .await
            .unwrap()
            .sent,
        1,
        "at the window's opening"
    );
    assert_eq!(peer.received().len(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_rate_limit_holds_and_the_pool_reuses_connections() {
    let db = TestDb::new(Backend::Postgres).await;
    let now = at("2026-01-10T15:00:00Z");
    for i in 0..30 {
        let c = db
            .customer(&format!("r{i}@example.com"), "UTC", None, now)
            .await;
        db.subscribe(&c, "1-pack", Start::AfterCheckout, None, now)
            .await;
    }
    let peer = SmtpPeer::start().await;
    let mut settings = mail_settings(peer.port());
    settings.delivery.rate_per_second = 20;
    settings.delivery.concurrency = 3;
    settings.smtp.pool_size = 3;
    let mailer = mailer_for(&db, &settings);
    let started = Instant::now();
    let report = mailer.deliver_due(&FixedClock(now)).await.unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(report.sent, 30);
    println!(
        "30 messages at 20/s took {elapsed:.2} s over {} connection(s)",
        peer.connections()
    );
    // 30 sends spaced 50 ms apart take at least 29 × 50 ms.
    assert!(elapsed >= 1.40, "rate limit exceeded: {elapsed:.2} s");
    assert!(elapsed < 6.0, "far slower than the limit: {elapsed:.2} s");
    // At most one connection per message in flight, reused for the rest: 30 messages, ≤ 3 connections.
    assert!(
        peer.connections() <= 3,
        "the pool reuses its connections, saw {}",
        peer.connections()
    );
    assert_eq!(peer.received().len(), 30);
    // Every session was reused within a second of its last message: none was probed, and
    // every transaction went out pipelined (the peer offers PIPELINING).
    assert_eq!(peer.noops(), 0);
    assert_eq!(peer.pipelined(), 30);
}

/// `count` customers subscribing at `now`: one welcome message each in the outbox.
async fn welcome(db: &TestDb, prefix: &str, count: usize, now: chrono::DateTime<chrono::Utc>) {
    for i in 0..count {
        let c = db
            .customer(&format!("{prefix}{i}@example.com"), "UTC", None, now)
            .await;
        db.subscribe(&c, "1-pack", Start::AfterCheckout, None, now)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_pipelining_each_command_waits_for_its_reply() {
    let db = TestDb::new(Backend::Sqlite).await;
    let now = at("2026-01-10T15:00:00Z");
    welcome(&db, "w", 5, now).await;
    let peer = SmtpPeer::start_without_pipelining().await;
    let mailer = mailer_for(&db, &mail_settings(peer.port()));
    assert_eq!(mailer.deliver_due(&FixedClock(now)).await.unwrap().sent, 5);
    assert_eq!(peer.received().len(), 5);
    assert_eq!(peer.pipelined(), 0);

    // A refused recipient in a pipelined transaction: the DATA sent with it is refused too,
    // the message fails with the recipient's reply, and the next one goes out on a clean
    // session.
    let db = TestDb::new(Backend::Sqlite).await;
    welcome(&db, "p", 1, now).await;
    let peer = SmtpPeer::start().await;
    let mut settings = mail_settings(peer.port());
    settings.delivery.concurrency = 1;
    let mailer = mailer_for(&db, &settings);
    peer.refuse_recipients("550 5.1.1 no such mailbox here");
    let report = mailer.deliver_due(&FixedClock(now)).await.unwrap();
    assert_eq!(report.failed, 1, "{report:?}");
    let row = &outbox(&db).await[0];
    assert!(
        row.last_error
            .as_deref()
            .unwrap()
            .contains("no such mailbox"),
        "{:?}",
        row.last_error
    );
    peer.accept_recipients();
    welcome(&db, "q", 1, now).await;
    assert_eq!(mailer.deliver_due(&FixedClock(now)).await.unwrap().sent, 1);
    assert_eq!(peer.connections(), 2, "the refused session was closed");
    assert_eq!(peer.pipelined(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_requires_auth_gets_the_configured_credentials() {
    let db = TestDb::new(Backend::Sqlite).await;
    let now = at("2026-01-10T15:00:00Z");
    welcome(&db, "u", 3, now).await;
    let peer = SmtpPeer::start().await;
    // base64("\0ops\0s3cret")
    peer.require_auth("AG9wcwBzM2NyZXQ=");
    let mut settings = mail_settings(peer.port());
    settings.delivery.concurrency = 1;
    settings.smtp.username = Some("ops".into());
    settings.smtp.password = Some(subsave::config::Secret::new("s3cret".into()));
    let mailer = mailer_for(&db, &settings);
    assert_eq!(mailer.deliver_due(&FixedClock(now)).await.unwrap().sent, 3);
    // Once per session, and the transactions were still pipelined after AUTH.
    assert_eq!(peer.auths(), ["AUTH PLAIN AG9wcwBzM2NyZXQ="]);
    assert_eq!(peer.pipelined(), 3);

    // Without credentials the server refuses MAIL: a permanent failure with its reply.
    let db = TestDb::new(Backend::Sqlite).await;
    welcome(&db, "v", 1, now).await;
    let mailer = mailer_for(&db, &mail_settings(peer.port()));
    assert_eq!(
        mailer.deliver_due(&FixedClock(now)).await.unwrap().failed,
        1
    );
    let row = &outbox(&db).await[0];
    assert!(
        row.last_error
            .as_deref()
            .unwrap()
            .contains("authentication required"),
        "{:?}",
        row.last_error
    );
}

/// STARTTLS and implicit TLS against a peer whose certificate comes from a private CA: with
/// `mail.smtp.ca_file` naming that CA the mail goes out encrypted; without it the certificate
/// is refused and nothing is sent in the clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_sessions_verify_the_server_against_the_configured_ca() {
    use common::smtp::PeerTls;
    use subsave::config::TlsMode;
    let now = at("2026-01-10T15:00:00Z");
    for (mode, tls) in [
        (PeerTls::Starttls, TlsMode::Starttls),
        (PeerTls::Implicit, TlsMode::Tls),
    ] {
        let (peer, ca_pem) = SmtpPeer::start_tls(mode).await;
        let ca_file = std::env::temp_dir().join(format!(
            "subsave-test-ca-{}-{}.pem",
            std::process::id(),
            peer.port()
        ));
        std::fs::write(&ca_file, ca_pem).unwrap();
        let mut settings = mail_settings(peer.port());
        settings.smtp.tls = tls;
        settings.delivery.concurrency = 1;

        // The public roots alone do not vouch for a private CA: refused, retried later.
        let db = TestDb::new(Backend::Sqlite).await;
        welcome(&db, "x", 1, now).await;
        let report = mailer_for(&db, &settings)
            .deliver_due(&FixedClock(now))
            .await
            .unwrap();
        assert_eq!((report.sent, report.retried), (0, 1), "{tls:?}");
        let error = outbox(&db).await[0].last_error.clone().unwrap();
        assert!(
            error.to_lowercase().contains("certificate"),
            "{tls:?}: {error}"
        );
        assert!(peer.received().is_empty());

        settings.smtp.ca_file = Some(ca_file.clone());
        let db = TestDb::new(Backend::Sqlite).await;
        welcome(&db, "y", 3, now).await;
        let report = mailer_for(&db, &settings)
            .deliver_due(&FixedClock(now))
            .await
            .unwrap();
        assert_eq!(report.sent, 3, "{tls:?}: {report:?}");
        assert_eq!(peer.received().len(), 3);
        assert_eq!(peer.encrypted_sessions(), 1, "{tls:?}: one session, reused");
        assert_eq!(peer.pipelined(), 3, "{tls:?}");
        std::fs::remove_file(&ca_file).unwrap();
    }
}

#[test]
fn a_bad_ca_file_is_refused_at_start_with_its_name() {
    let mut settings = mail_settings(25);
    settings.smtp.tls = subsave::config::TlsMode::Starttls;
    let missing = std::env::temp_dir().join("subsave-no-such-ca.pem");
    settings.smtp.ca_file = Some(missing.clone());
    let error = transport::from_settings(&settings).err().unwrap();
    assert!(
        error.contains("mail.smtp.ca_file") && error.contains(&missing.display().to_string()),
        "{error}"
    );
    let not_pem = std::env::temp_dir().join(format!("subsave-not-pem-{}.txt", std::process::id()));
    std::fs::write(&not_pem, "hello").unwrap();
    settings.smtp.ca_file = Some(not_pem.clone());
    let error = transport::from_settings(&settings).err().unwrap();
    assert!(error.contains("not a PEM certificate"), "{error}");
    std::fs::remove_file(&not_pem).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_is_probed_and_a_closed_one_replaced() {
    let db = TestDb::new(Backend::Sqlite).await;
    let now = at("2026-01-10T15:00:00Z");
    let peer = SmtpPeer::start().await;
    let mut settings = mail_settings(peer.port());
    settings.delivery.concurrency = 1;
    let mailer = mailer_for(&db, &settings);
    welcome(&db, "a", 1, now).await;
    assert_eq!(mailer.deliver_due(&FixedClock(now)).await.unwrap().sent, 1);

    // Idle for longer than `FRESH`: probed with one NOOP, then reused.
    tokio::time::sleep(subsave::mail::smtp::FRESH + std::time::Duration::from_millis(200)).await;
    welcome(&db, "b", 1, now).await;
    assert_eq!(mailer.deliver_due(&FixedClock(now)).await.unwrap().sent, 1);
    assert_eq!((peer.noops(), peer.connections()), (1, 1));

    // The server closes idle sessions; the probe notices and a new session carries the mail.
    peer.hang_up();
    tokio::time::sleep(subsave::mail::smtp::FRESH + std::time::Duration::from_millis(200)).await;
    welcome(&db, "c", 1, now).await;
    assert_eq!(mailer.deliver_due(&FixedClock(now)).await.unwrap().sent, 1);
    assert_eq!(peer.connections(), 2);

    // Closed right after use (no probe within `FRESH`): that message fails transiently and is
    // retried on a new session; nothing is lost or sent twice.
    peer.hang_up();
    // Let the peer close its sockets; still well within `FRESH` of the last use.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    welcome(&db, "d", 1, now).await;
    let report = mailer.deliver_due(&FixedClock(now)).await.unwrap();
    assert_eq!((report.sent, report.retried), (0, 1));
    let report = mailer
        .deliver_due(&FixedClock(now + TimeDelta::hours(1)))
        .await
        .unwrap();
    assert_eq!(report.sent, 1);
    assert_eq!(peer.received().len(), 4);
    assert_eq!(peer.connections(), 3);
}

/// A server that accepts connections and says nothing, ever: its port, and the task holding
/// the connections open (abort it to close them).
async fn silent_server() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    (port, held)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_times_out_and_the_message_waits() {
    let db = TestDb::new(Backend::Sqlite).await;
    let now = at("2026-01-10T15:00:00Z");
    welcome(&db, "t", 1, now).await;
    let (port, held) = silent_server().await;
    let mut settings = mail_settings(port);
    settings.smtp.timeout_secs = 1;
    let mailer = mailer_for(&db, &settings);
    let started = Instant::now();
    let report = mailer.deliver_due(&FixedClock(now)).await.unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    held.abort();
    assert_eq!((report.sent, report.retried), (0, 1));
    assert!(elapsed < 3.0, "gave up after {elapsed:.1} s");
    let row = &outbox(&db).await[0];
    assert!(
        row.last_error
            .as_deref()
            .unwrap()
            .contains("did not answer within 1 s"),
        "{:?}",
        row.last_error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_transport_writes_parseable_eml_files() {
    let db = TestDb::new(Backend::Sqlite).await;
    one_subscription(&db, "09:00").await;
    let mut settings = mail_settings(free_port());
    settings.transport = MailTransport::File;
    let _ = std::fs::remove_dir_all(&settings.file_dir);
    let mailer = mailer_for(&db, &settings);
    let engine = db.engine(CatchUp::Latest, 50).with_reminders(reminders());
    engine.sweep(at("2026-04-10T13:00:00Z")).await.unwrap();
    let report = mailer
        .deliver_due(&FixedClock(at("2026-04-10T13:00:00Z")))
        .await
        .unwrap();
    assert!(report.sent >= 2, "{report:?}");
    let files: Vec<_> = std::fs::read_dir(&settings.file_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), report.sent);
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let parsed = MessageParser::default()
            .parse(&bytes)
            .expect("parseable .eml");
        assert!(
            parsed.subject().is_some()
                && parsed.body_text(0).is_some()
                && parsed.body_html(0).is_some(),
            "{}",
            file.display()
        );
        assert_eq!(
            parsed.to().unwrap().first().unwrap().address().unwrap(),
            "zoe@example.com"
        );
    }
    std::fs::remove_dir_all(&settings.file_dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_mailers_lease_expires_and_the_message_is_delivered_once() {
    let db = TestDb::new(Backend::Postgres).await;
    one_subscription(&db, "09:00").await;
    let now = at("2026-01-10T15:00:00Z");
    // A mailer leases the message for five minutes, then dies without recording anything.
    let leased = db
        .store
        .claim_messages(now, now + TimeDelta::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!(leased.len(), 1);
    let peer = SmtpPeer::start().await;
    let mailer = mailer_for(&db, &mail_settings(peer.port()));
    assert_eq!(
        mailer
            .deliver_due(&FixedClock(now + TimeDelta::minutes(1)))
            .await
            .unwrap()
            .sent,
        0,
        "still leased"
    );
    assert_eq!(
        mailer
            .deliver_due(&FixedClock(now + TimeDelta::minutes(5)))
            .await
            .unwrap()
            .sent,
        1,
        "the lease expired"
    );
    assert_eq!(peer.received().len(), 1);
    let row = &outbox(&db).await[0];
    assert_eq!(
        (row.attempts, row.claims),
        (1, 2),
        "attempts count the one send; the crashed mailer's lease counts only as a claim"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_test_reports_success_and_the_servers_refusal() {
    let peer = SmtpPeer::start().await;
    let dir = std::env::temp_dir().join(format!("subsave-mailtest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |port: u16| {
        let dir = dir.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                std::process::Command::new(env!("CARGO_BIN_EXE_subsave"))
                    .current_dir(&dir)
                    .args(["mail", "test", "--to", "Ops <ops@example.com>"])
                    .env("SUBSAVE_MAIL__TRANSPORT", "smtp")
                    .env(
                        "SUBSAVE_MAIL__REPLY_TO",
                        "Support <support@blackbala.example>",
                    )
                    .env("SUBSAVE_MAIL__SMTP__PORT", port.to_string())
                    .env("RUST_LOG", "warn")
                    .output()
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    let ok = run(peer.port()).await;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        String::from_utf8_lossy(&ok.stdout).contains("250"),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert_eq!(peer.received().len(), 1);
    peer.refuse_recipients("550 5.7.1 relaying denied");
    let refused = run(peer.port()).await;
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("550") && err.contains("relaying denied"),
        "{err}"
    );
    let down = run(free_port()).await;
    assert_eq!(down.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("check host, port"),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
}

/// A customer whose stored name holds a line break (as one could be stored before names were
/// checked at the edge): their email cannot be built. It fails once, with the reason, counts
/// no send, and the other customers' mail goes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_cannot_be_built_fails_once_and_the_rest_go_out() {
    let db = TestDb::new(Backend::Sqlite).await;
    let now = at("2026-01-10T15:00:00Z");
    welcome(&db, "fine", 3, now).await;
    let poisoned = db
        .store
        .add_customer(
            &NewCustomer {
                email: "poison@example.com".parse().unwrap(),
                name: "Mallory\r\nBcc: everyone@example.com".into(),
                time_zone: "UTC".parse().unwrap(),
                locale: "en-US".into(),
                tax_region: None,
                external_id: None,
                metadata: Default::default(),
            },
            now,
        )
        .await
        .unwrap();
    db.subscribe(&poisoned, "1-pack", Start::AfterCheckout, None, now)
        .await;
    let peer = SmtpPeer::start().await;
    let mailer = mailer_for(&db, &mail_settings(peer.port()));
    let report = mailer.deliver_due(&FixedClock(now)).await.unwrap();
    assert_eq!((report.sent, report.failed), (3, 1), "{report:?}");
    assert_eq!(peer.received().len(), 3);
    let rows = outbox(&db).await;
    let row = rows
        .iter()
        .find(|m| m.recipient == "poison@example.com")
        .unwrap();
    assert_eq!(row.status, MessageStatus::Failed);
    assert_eq!(row.attempts, 0, "nothing reached the server");
    // The reason says what is wrong and what to do, not a caught panic's words.
    assert!(
        row.last_error.as_deref().is_some_and(|e| {
            e.contains("the customer's name holds a control character")
                && e.contains("correct the name")
                && !e.contains("panic")
        }),
        "{:?}",
        row.last_error
    );
    // Nothing is left to do, and a second pass does not touch it again.
    let again = mailer.deliver_due(&FixedClock(now)).await.unwrap();
    assert_eq!((again.sent, again.failed), (0, 0));
}

/// A transient failure's backoff counts from when the send failed, not from the claim: a send
/// that waited out a 1 s timeout is retried no earlier than 1 s + the backoff after the claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_counts_from_the_failure_not_the_claim() {
    let db = TestDb::new(Backend::Sqlite).await;
    let now = at("2026-01-10T15:00:00Z");
    welcome(&db, "b", 1, now).await;
    let (port, held) = silent_server().await;
    let mut settings = mail_settings(port);
    settings.smtp.timeout_secs = 1;
    settings.delivery.retry_base_secs = 1;
    settings.delivery.retry_max_secs = 1;
    let report = mailer_for(&db, &settings)
        .deliver_due(&FixedClock(now))
        .await
        .unwrap();
    held.abort();
    assert_eq!(report.retried, 1);
    let row = &outbox(&db).await[0];
    // Backoff 1 s (+ up to 50 % jitter) after a failure that came 1 s after the claim.
    assert!(
        row.next_attempt_at >= now + TimeDelta::seconds(2),
        "retry at {} for a claim at {now}",
        row.next_attempt_at
    );
    assert_eq!(row.attempts, 1);
}

/// A send is not started when it could outlast the message's lease (another mailer may hold
/// the message by its end): the message goes back to the queue unsent and uncounted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_that_could_outlast_its_lease_is_not_started() {
    let db = TestDb::new(Backend::Sqlite).await;
    let now = at("2026-01-10T15:00:00Z");
    welcome(&db, "l", 2, now).await;
    let peer = SmtpPeer::start().await;
    let mut settings = mail_settings(peer.port());
    // A lease shorter than one send may take: config refuses it, the mailer must hold anyway.
    settings.delivery.lease_secs = 3;
    settings.smtp.timeout_secs = 5;
    let report = mailer_for(&db, &settings)
        .deliver_due(&FixedClock(now))
        .await
        .unwrap();
    assert_eq!((report.sent, report.released), (0, 2), "{report:?}");
    assert!(peer.received().is_empty());
    for row in outbox(&db).await {
        assert_eq!(row.status, MessageStatus::Pending);
        // The claim made while the first batch was in hand may have leased them again; it is
        // given back too when the pass ends.
        assert_eq!(row.attempts, 0, "no send counted");
        assert!(row.claims >= 1);
        assert_eq!(row.lease_until, None, "given back at once");
    }
}

/// A reminder whose send fails late in the day is retried when the customer's delivery window
/// opens again, not in the night.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminders_retry_waits_for_the_delivery_window() {
    let db = TestDb::new(Backend::Sqlite).await;
    one_subscription(&db, "09:00").await;
    let peer = SmtpPeer::start().await;
    peer.script_data(&["250 2.0.0 queued", "451 4.3.0 try later"]);
    let mut settings = mail_settings(peer.port());
    settings.delivery.concurrency = 1;
    let mailer = mailer_for(&db, &settings).with_delivery_window(reminders().window);
    let engine = db.engine(CatchUp::Latest, 50).with_reminders(reminders());
    engine.sweep(at("2026-04-07T00:00:00Z")).await.unwrap();
    // 19:59 in New York: the welcome goes out, the reminder fails, and a 60 s backoff would
    // retry it at 20:00, when the window has closed.
    let report = mailer
        .deliver_due(&FixedClock(at("2026-04-07T23:59:00Z")))
        .await
        .unwrap();
    assert_eq!((report.sent, report.retried), (1, 1), "{report:?}");
    let reminder = outbox(&db)
        .await
        .into_iter()
        .find(|m| m.kind == MessageKind::RenewalReminder)
        .unwrap();
    assert_eq!(
        reminder.next_attempt_at,
        at("2026-04-08T13:00:00Z"),
        "09:00 New York the next morning"
    );
}

/// The next batch is claimed while one is sent: its lease runs from its claim, not from when
/// its send begins. A message claimed at 0 with a 3 s lease, whose turn comes at 2 s (the
/// batch before it hung for the 2 s SMTP timeout), has 1 s left: too little for a send that
/// may take 2 s, so it goes back unsent; and the hung message's retry counts from its
/// failure, never before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_claimed_ahead_measures_its_lease_from_its_claim() {
    let db = TestDb::new(Backend::Sqlite).await;
    let now = at("2026-01-10T15:00:00Z");
    welcome(&db, "ahead", 2, now).await;
    let peer = SmtpPeer::start().await;
    peer.script_data(&["HANG"]);
    let mut settings = mail_settings(peer.port());
    settings.delivery.lease_secs = 3;
    settings.smtp.timeout_secs = 2;
    settings.delivery.concurrency = 1;
    settings.delivery.batch_size = 1;
    let report = mailer_for(&db, &settings)
        .deliver_due(&FixedClock(now))
        .await
        .unwrap();
    assert_eq!(
        (report.sent, report.retried, report.released),
        (0, 1, 1),
        "{report:?}"
    );
    assert_eq!(
        peer.transmissions().len(),
        1,
        "the second message was not sent"
    );
    let rows = outbox(&db).await;
    let retried = rows.iter().find(|m| m.attempts == 1).unwrap();
    let next = retried.next_attempt_at;
    assert!(
        next >= now + TimeDelta::seconds(2 + 60),
        "retry at {next}: the backoff counts from the failure, 2 s after the claim"
    );
}

/// Every text colour in the email and page templates reads on white at WCAG AA's 4.5:1 or
/// more (white text, which sits on the brand's dark buttons and headers, aside).
#[test]
fn template_text_colours_meet_wcag_aa_on_white() {
    fn channel(c: u8) -> f64 {
        let c = f64::from(c) / 255.0;
        if c <= 0.03928 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    }
    fn luminance(hex: &str) -> f64 {
        let full: String = if hex.len() == 3 {
            hex.chars().flat_map(|c| [c, c]).collect()
        } else {
            hex.to_owned()
        };
        let byte = |i: usize| u8::from_str_radix(&full[i..i + 2], 16).unwrap();
        0.2126 * channel(byte(0)) + 0.7152 * channel(byte(2)) + 0.0722 * channel(byte(4))
    }
    let mut checked = 0;
    let mut folders = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/templates"
    ))];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (at, _) in text.match_indices("color:") {
                if text[..at].ends_with("background-") || text[..at].ends_with("border-") {
                    continue;
                }
                let value = text[at + "color:".len()..].trim_start();
                let Some(hex) = value.strip_prefix('#') else {
                    continue;
                };
                let hex: String = hex.chars().take_while(char::is_ascii_hexdigit).collect();
                if hex.eq_ignore_ascii_case("fff") || hex.eq_ignore_ascii_case("ffffff") {
                    continue;
                }
                let ratio = 1.05 / (luminance(&hex) + 0.05);
                assert!(
                    ratio >= 4.5,
                    "{}: color #{hex} has contrast {ratio:.2}:1 on white",
                    path.display()
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 10, "only {checked} colours found");
}
