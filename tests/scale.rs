//! Past one database server: the daemon through PgBouncer in transaction mode, a streaming
//! replica for reading work, and a primary that fails over to its standby. The replica and the
//! failover use PostgreSQL clusters this test makes (initdb, pg_basebackup) on free ports and
//! removes; the shared server's settings are never touched.

mod common;

use std::time::Duration;

use common::cluster::Cluster;
use common::daemon::{Daemon, http_get, metric, unique_message_ids};
use common::pgbouncer::PgBouncer;
use common::smtp::SmtpPeer;
use common::{Backend, TestDb, eventually, seed_due_at};

const DUE: u32 = 300;

/// The customers the seed made pay with the simulated provider's card that succeeds.
async fn give_every_customer_a_card(db: &TestDb) {
    db.execute(
        "UPDATE customers SET payment_customer_ref = 'cus_sim_' || id, payment_method_ref = 'pm_sim_ok'",
    )
    .await
    .unwrap();
}

async fn api_post(
    base: &str,
    key: &str,
    idempotency: &str,
    path: &str,
    body: serde_json::Value,
) -> (u16, Option<String>, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(key)
        .header("Idempotency-Key", idempotency)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, replayed, response.json().await.unwrap())
}

/// `subsave ARGS` with these environment variables; its standard output, once it succeeded.
fn subsave(env: &[(&str, &str)], args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_subsave"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// An API key made by the CLI (through the same URL and pooler setting as the daemons).
fn api_key(url: &str) -> String {
    let created: serde_json::Value = serde_json::from_str(&subsave(
        &[
            ("SUBSAVE_DATABASE__URL", url),
            ("SUBSAVE_DATABASE__POOLER", "transaction"),
        ],
        &[
            "api-keys",
            "create",
            "--name",
            "storefront",
            "--scope",
            "write",
            "--json",
        ],
    ))
    .unwrap();
    created["key"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_renew_mail_charge_and_take_idempotent_writes_through_pgbouncer() {
    let db = TestDb::new(Backend::Postgres).await;
    seed_due_at(&db, DUE, chrono::Utc::now() - chrono::TimeDelta::minutes(1)).await;
    give_every_customer_a_card(&db).await;
    // Two server connections for two daemons of up to 6 connections each: every server
    // connection serves several clients in turn, as behind a production PgBouncer.
    let bouncer = PgBouncer::start(5432, 2);
    let url = bouncer.url(db.database_name());
    let key = api_key(&url);
    let peer = SmtpPeer::start().await;
    let through_pgbouncer = [
        ("SUBSAVE_DATABASE__POOLER", "transaction"),
        ("SUBSAVE_DATABASE__MAX_CONNECTIONS", "6"),
        ("SUBSAVE_DATABASE__MIGRATE_ON_START", "true"),
        ("SUBSAVE_ENGINE__BATCH_SIZE", "25"),
        ("SUBSAVE_PAYMENTS__PROVIDER", "simulated"),
        ("SUBSAVE_PAYMENTS__POLL_SECS", "1"),
    ];
    // One daemon LISTENs on a direct connection; the other polls.
    let direct = db.url.clone();
    let mut listening = through_pgbouncer.to_vec();
    listening.push(("SUBSAVE_DATABASE__LISTEN_URL", &direct));
    let a = Daemon::start_on(&url, peer.port(), &listening, &[]);
    let b = Daemon::start_on(&url, peer.port(), &through_pgbouncer, &[]);
    let base = format!("http://127.0.0.1:{}", a.web_port);
    eventually(Duration::from_secs(20), "the API to answer", || async {
        reqwest::get(format!("{base}/v1/plans")).await.is_ok()
    })
    .await;

    // API writes with idempotency keys, each sent twice (the replay comes from the reply the
    // writing transaction stored).
    let customer = serde_json::json!({ "email": "ada@example.com", "name": "Ada", "time_zone": "Europe/Berlin", "region": "DE" });
    let first = api_post(&base, &key, "cust-ada", "/v1/customers", customer.clone()).await;
    assert_eq!(first.0, 201, "{}", first.2);
    let again = api_post(&base, &key, "cust-ada", "/v1/customers", customer).await;
    assert_eq!((again.0, again.1.as_deref()), (201, Some("true")));
    assert_eq!(again.2, first.2);
    let create = serde_json::json!({ "customer": first.2["id"], "plan": "3-pack", "first_renewal": "2027-01-20" });
    let sub = api_post(&base, &key, "sub-ada", "/v1/subscriptions", create.clone()).await;
    assert_eq!(sub.0, 201, "{}", sub.2);
    let sub_again = api_post(&base, &key, "sub-ada", "/v1/subscriptions", create).await;
    assert_eq!(sub_again.2, sub.2);

    let started = std::time::Instant::now();
    loop {
        let counts = (
            db.scalar("SELECT COUNT(*) FROM orders").await,
            db.scalar("SELECT COUNT(*) FROM payments WHERE status = 'paid'")
                .await,
            db.scalar(
                "SELECT COUNT(*) FROM outbox WHERE kind = 'order_confirmation' AND status = 'sent'",
            )
            .await,
        );
        if counts == (i64::from(DUE), i64::from(DUE), i64::from(DUE)) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "(orders, paid, mailed) = {counts:?}; logs:\n{}\n{}\npgbouncer:\n{}",
            a.log_text(),
            b.log_text(),
            bouncer.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        db.scalar(&format!(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = '{}' \
             AND application_name = 'subsave' AND query LIKE 'LISTEN%subsave_outbox%'",
            db.database_name()
        ))
        .await,
        1,
        "one daemon listens on its direct connection, none through PgBouncer"
    );
    let logs = format!("{}\n{}", a.log_text(), b.log_text());
    assert_eq!(a.terminate(Duration::from_secs(20)), 0);
    assert_eq!(b.terminate(Duration::from_secs(20)), 0);

    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM orders").await,
        i64::from(DUE)
    );
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM (SELECT subscription_id, cycle FROM orders GROUP BY 1, 2 HAVING COUNT(*) > 1) x").await,
        0
    );
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM payments").await,
        i64::from(DUE)
    );
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM customers WHERE email = 'ada@example.com'")
            .await,
        1
    );
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM subscriptions WHERE customer_id = (SELECT id FROM customers WHERE email = 'ada@example.com')").await,
        1
    );
    let (received, unique) = unique_message_ids(&peer);
    assert_eq!(received, unique, "each message sent once");
    assert_eq!(
        received as i64,
        db.scalar("SELECT COUNT(*) FROM outbox WHERE status = 'sent'")
            .await,
        "every message recorded as sent reached the SMTP peer"
    );
    assert!(
        !logs.contains("prepared statement"),
        "no statement was lost between server connections:\n{logs}"
    );
    assert!(
        !logs.contains(" ERROR ") && !logs.contains("\"level\":\"ERROR\""),
        "{logs}"
    );
}

/// `subsave` with `database.read_url` at `read_url`, on the primary at `url`; its stdout.
fn cli_with_replica(url: &str, read_url: &str, args: &[&str]) -> String {
    subsave(
        &[
            ("SUBSAVE_DATABASE__URL", url),
            ("SUBSAVE_DATABASE__READ_URL", read_url),
            ("SUBSAVE_DATABASE__MIGRATE_ON_START", "false"),
        ],
        args,
    )
}

/// Orders in a CSV export (its rows after the header).
fn exported_orders(csv: &str) -> usize {
    csv.lines().count().saturating_sub(1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_and_lists_read_the_replica_whose_lag_readyz_and_metrics_show() {
    let primary = Cluster::primary();
    primary.execute("postgres", "CREATE DATABASE subsave").await;
    let standby = Cluster::standby_of(&primary);
    let (url, read_url) = (primary.url("subsave"), standby.url("subsave"));
    let db = TestDb::on_postgres(&url).await;
    let now = chrono::Utc::now();
    seed_due_at(&db, 50, now - chrono::TimeDelta::minutes(1)).await;
    let engine = db.engine(subsave::core::renewal::CatchUp::Latest, 100);
    assert_eq!(engine.sweep(now).await.unwrap().orders, 50);
    standby.caught_up_with(&primary).await;
    let day = now.date_naive().to_string();
    let export = ["orders", "export", "--from", &day, "--to", &day];
    assert_eq!(
        exported_orders(&cli_with_replica(&url, &read_url, &export)),
        50
    );

    // The replica stops replaying; the primary bills ten more.
    standby
        .execute("subsave", "SELECT pg_wal_replay_pause()")
        .await;
    db.execute(
        "UPDATE subscriptions SET next_renewal_at = now() - interval '1 minute' WHERE id <= 10",
    )
    .await
    .unwrap();
    assert_eq!(engine.sweep(chrono::Utc::now()).await.unwrap().orders, 10);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM orders").await, 60);

    // Exports, reports and list pages read the replica (50 orders); a single order and the
    // work the daemon does read the primary.
    assert_eq!(
        exported_orders(&cli_with_replica(&url, &read_url, &export)),
        50
    );
    let listed: serde_json::Value = serde_json::from_str(&cli_with_replica(
        &url,
        &read_url,
        &["orders", "list", "--limit", "500", "--json"],
    ))
    .unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(50), "{listed}");
    let revenue: serde_json::Value = serde_json::from_str(&cli_with_replica(
        &url,
        &read_url,
        &["report", "revenue", "--from", &day, "--to", &day, "--json"],
    ))
    .unwrap();
    assert!(revenue.to_string().contains("\"orders\":50"), "{revenue}");
    let newest: String = {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query_scalar("SELECT order_number FROM orders ORDER BY id DESC LIMIT 1")
            .fetch_one(&mut conn)
            .await
            .unwrap()
    };
    cli_with_replica(&url, &read_url, &["orders", "show", &newest]);

    // The daemon shows the lag while the replica is behind, and 0 once it caught up.
    let peer = SmtpPeer::start().await;
    let daemon = Daemon::start_on(
        &url,
        peer.port(),
        &[("SUBSAVE_DATABASE__READ_URL", &read_url)],
        &[],
    );
    eventually(
        Duration::from_secs(20),
        "readyz to show the lag",
        || async {
            http_get(daemon.http_port, "/readyz")
                .await
                .is_some_and(|(status, body)| {
                    status == 200
                        && body.starts_with("ready\n")
                        && body.contains("bytes behind")
                        && !body.contains("replica: 0 bytes")
                })
        },
    )
    .await;
    let (_, metrics) = http_get(daemon.http_port, "/metrics").await.unwrap();
    assert!(
        metric(&metrics, "subsave_replica_lag_bytes") > 0.0,
        "{metrics}"
    );
    standby
        .execute("subsave", "SELECT pg_wal_replay_resume()")
        .await;
    standby.caught_up_with(&primary).await;
    eventually(Duration::from_secs(20), "the lag back to 0", || async {
        http_get(daemon.http_port, "/readyz")
            .await
            .is_some_and(|(status, body)| status == 200 && body.contains("replica: 0 bytes"))
    })
    .await;
    assert_eq!(
        exported_orders(&cli_with_replica(&url, &read_url, &export)),
        60
    );
    assert_eq!(daemon.terminate(Duration::from_secs(20)), 0);
}

/// What a failover cost, counted on the promoted standby and at the SMTP peer.
#[derive(Debug)]
struct Failover {
    /// Orders the test read on the primary (committed there) just before it crashed.
    orders_seen_before_crash: i64,
    /// Orders on the standby the moment it was promoted.
    orders_at_promotion: i64,
    orders: i64,
    duplicate_orders: i64,
    payments_paid: i64,
    confirmations_sent: i64,
    emails_received: usize,
    emails_received_twice: usize,
}

const FAILOVER_DUE: u32 = 3000;

impl Failover {
    /// One order, one paid payment and one confirmation per due subscription on the promoted
    /// standby, and every confirmation at the mail server (a message whose "sent" was lost
    /// in the crash may arrive twice: that is counted, not hidden).
    fn assert_every_renewal_billed_paid_and_mailed_once(&self) {
        let due = i64::from(FAILOVER_DUE);
        assert_eq!((self.orders, self.duplicate_orders), (due, 0), "{self:?}");
        assert_eq!(self.payments_paid, due, "{self:?}");
        assert_eq!(self.confirmations_sent, due, "{self:?}");
        assert!(
            self.emails_received - self.emails_received_twice >= FAILOVER_DUE as usize,
            "every confirmation reached the mail server: {self:?}"
        );
    }
}

/// Bills, charges and mails `FAILOVER_DUE` renewals through a TCP address that points at a
/// primary; crashes the primary (`immediate`) mid-sweep and mid-mail, promotes the standby and
/// points the address at it, as an operator's proxy would; the same daemon finishes the work.
async fn fail_over_mid_sweep(synchronous: bool) -> Failover {
    use common::proxy::TcpProxy;
    use sqlx::Connection;
    let primary = Cluster::primary();
    primary.execute("postgres", "CREATE DATABASE subsave").await;
    let standby = Cluster::standby_of(&primary);
    if synchronous {
        primary.require_synchronous_standby().await;
    }
    let db = TestDb::on_postgres(&primary.url("subsave")).await;
    seed_due_at(
        &db,
        FAILOVER_DUE,
        chrono::Utc::now() - chrono::TimeDelta::minutes(1),
    )
    .await;
    give_every_customer_a_card(&db).await;
    standby.caught_up_with(&primary).await;
    let proxy = TcpProxy::start(([127, 0, 0, 1], primary.port).into()).await;
    let through_proxy = format!("postgres://postgres@127.0.0.1:{}/subsave", proxy.port);
    let peer = SmtpPeer::start().await;
    let daemon = Daemon::start_on(
        &through_proxy,
        peer.port(),
        &[
            ("SUBSAVE_ENGINE__BATCH_SIZE", "20"),
            ("SUBSAVE_PAYMENTS__PROVIDER", "simulated"),
            ("SUBSAVE_PAYMENTS__POLL_SECS", "1"),
            // Payments in hand at the crash are asked about once their lease runs out.
            ("SUBSAVE_PAYMENTS__TIMEOUT_SECS", "2"),
            ("SUBSAVE_PAYMENTS__LEASE_SECS", "5"),
            ("SUBSAVE_PAYMENTS__BATCH_SIZE", "4"),
        ],
        &[],
    );
    // Mid-sweep and mid-mail: some orders written, some confirmations sent, most not.
    let mut watcher = sqlx::PgConnection::connect(&primary.url("subsave"))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let orders_seen_before_crash = loop {
        let (orders, sent): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM orders), \
             (SELECT COUNT(*) FROM outbox WHERE status = 'sent')",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        if orders >= i64::from(FAILOVER_DUE) / 4 && sent > 0 {
            break orders;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the daemon never got going: {}",
            daemon.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        orders_seen_before_crash < i64::from(FAILOVER_DUE),
        "the crash must come mid-sweep"
    );
    drop(watcher);
    primary.crash();
    proxy.cut();
    standby.promote();
    let orders_at_promotion = standby
        .scalar("subsave", "SELECT COUNT(*) FROM orders")
        .await;
    proxy
        .restore_to(([127, 0, 0, 1], standby.port).into())
        .await;

    let due = i64::from(FAILOVER_DUE);
    let started = std::time::Instant::now();
    loop {
        let progress: (i64, i64, i64) = {
            let mut conn = sqlx::PgConnection::connect(&standby.url("subsave"))
                .await
                .unwrap();
            sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM orders), \
                 (SELECT COUNT(*) FROM payments WHERE status = 'paid'), \
                 (SELECT COUNT(*) FROM outbox WHERE kind = 'order_confirmation' AND status = 'sent')",
            )
            .fetch_one(&mut conn)
            .await
            .unwrap()
        };
        if progress == (due, due, due) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the work did not resume on the promoted standby: (orders, paid, confirmed) = {progress:?}\n{}",
            daemon.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(daemon.terminate(Duration::from_secs(30)), 0);
    let received = peer.received().len();
    let (_, unique) = unique_message_ids(&peer);
    Failover {
        orders_seen_before_crash,
        orders_at_promotion,
        orders: standby.scalar("subsave", "SELECT COUNT(*) FROM orders").await,
        duplicate_orders: standby
            .scalar(
                "subsave",
                "SELECT COUNT(*) FROM (SELECT subscription_id, cycle FROM orders GROUP BY 1, 2 HAVING COUNT(*) > 1) x",
            )
            .await,
        payments_paid: standby
            .scalar("subsave", "SELECT COUNT(*) FROM payments WHERE status = 'paid'")
            .await,
        confirmations_sent: standby
            .scalar(
                "subsave",
                "SELECT COUNT(*) FROM outbox WHERE kind = 'order_confirmation' AND status = 'sent'",
            )
            .await,
        emails_received: received,
        emails_received_twice: received - unique,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_a_synchronous_standby_loses_and_duplicates_no_order_or_payment() {
    let f = fail_over_mid_sweep(true).await;
    println!("synchronous standby: {f:?}");
    assert!(
        f.orders_at_promotion >= f.orders_seen_before_crash,
        "a committed order was lost: {f:?}"
    );
    f.assert_every_renewal_billed_paid_and_mailed_once();
}

/// With an asynchronous standby the transactions the primary acknowledged but had not yet
/// streamed are lost at the crash; the numbers are measured here (and in docs/scaling.md), and
/// the rules still hold on the promoted standby: the lost renewals are billed again, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_an_asynchronous_standby_loses_only_the_last_acknowledged_transactions() {
    let f = fail_over_mid_sweep(false).await;
    println!(
        "asynchronous standby: {f:?}; orders committed on the primary but missing at promotion: {}",
        (f.orders_seen_before_crash - f.orders_at_promotion).max(0)
    );
    f.assert_every_renewal_billed_paid_and_mailed_once();
}

/// The partitions holding `table`'s rows, with how many each holds.
async fn rows_by_partition(db: &TestDb, table: &str) -> Vec<(String, i64)> {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT tableoid::regclass::text, COUNT(*) FROM {table} GROUP BY 1 ORDER BY 1"
    )))
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

/// History partitioned by ranges of ids: renewals written over several partitions, made ahead
/// by the daemon's upkeep between sweeps, keep every exactly-once rule (the database refuses a
/// second order, payment or confirmation whichever partition holds the first), and outbox
/// retention drops whole partitions of finished messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_history_keeps_exactly_once_keys_across_partitions_and_drops_old_outbox_partitions()
 {
    let db = TestDb::new(Backend::Postgres).await;
    let due = common::at("2026-01-31T14:00:00Z");
    seed_due_at(&db, DUE, due).await;
    // Five groups due an hour apart, narrow partitions, and every sequence 10 ids short of its
    // last partition's end: each sweep crosses partition bounds.
    db.execute(
        "UPDATE subscriptions SET next_renewal_at = next_renewal_at + (id % 5) * INTERVAL '1 hour'; \
         UPDATE partition_plans SET rows_per_partition = 50; \
         SELECT setval(sequence_name, upper_bound - 10) FROM partition_plans",
    )
    .await
    .unwrap();
    let engine = db.engine(subsave::core::renewal::CatchUp::Latest, 25);
    let mut made = 0;
    for hour in 0..5 {
        let upkeep = db.store.maintain_partitions(None).await.unwrap();
        made += upkeep.partitions_made;
        let report = engine
            .sweep(due + chrono::Duration::hours(hour))
            .await
            .unwrap();
        assert_eq!(report.renewed, DUE as usize / 5, "sweep at +{hour}h");
    }
    assert!(made >= 5, "the upkeep made partitions ahead: {made}");
    common::assert_billed_exactly_once(&db, i64::from(DUE)).await;
    let orders = rows_by_partition(&db, "orders").await;
    assert!(
        orders.iter().filter(|(p, _)| p != "orders_default").count() >= 4,
        "orders over several partitions: {orders:?}"
    );
    for table in ["order_lines", "payments", "subscription_events", "outbox"] {
        let parts = rows_by_partition(&db, table).await;
        assert!(
            parts.len() >= 2,
            "{table} over several partitions: {parts:?}"
        );
    }
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM order_keys").await,
        i64::from(DUE)
    );
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM payment_keys").await,
        i64::from(DUE)
    );

    // A second order for the cycle of the oldest order, a second payment for it, and a second
    // confirmation (even under ON CONFLICT DO NOTHING: only a second order could bring one, and
    // that is refused first): each new row would land in the newest partition, and each is
    // refused.
    let copy_order = "INSERT INTO orders (order_number, subscription_id, customer_id, cycle, plan_id, \
         packs, quantity, currency, total_minor, scheduled_for, created_at) \
         SELECT order_number || '-again', subscription_id, customer_id, cycle, plan_id, packs, \
         quantity, currency, total_minor, scheduled_for, created_at FROM orders ORDER BY id LIMIT 1";
    let refused = db.execute(copy_order).await.unwrap_err();
    assert!(refused.contains("orders_one_per_cycle"), "{refused}");
    let copy_payment = "INSERT INTO payments (order_id, subscription_id, customer_id, provider, status, \
         amount_minor, currency, created_at, updated_at) \
         SELECT order_id, subscription_id, customer_id, provider, status, amount_minor, currency, \
         created_at, updated_at FROM payments ORDER BY id LIMIT 1";
    let refused = db.execute(copy_payment).await.unwrap_err();
    assert!(refused.contains("payments_order_id_key"), "{refused}");
    let copy_confirmation = "INSERT INTO outbox (kind, recipient, subscription_id, order_id, cycle, \
         payload, next_attempt_at, created_at) \
         SELECT kind, recipient, subscription_id, order_id, cycle, payload, next_attempt_at, created_at \
         FROM outbox WHERE kind = 'order_confirmation' ORDER BY id LIMIT 1 ON CONFLICT DO NOTHING";
    let refused = db.execute(copy_confirmation).await.unwrap_err();
    assert!(refused.contains("outbox_one_confirmation"), "{refused}");

    // Retention: every message finished and queued 100 days ago. The partitions whose ids have
    // all been handed out leave whole; the one still being written and the default stay.
    let queued = db.scalar("SELECT COUNT(*) FROM outbox").await;
    db.execute(
        "UPDATE outbox SET status = 'sent', sent_at = created_at, lease_until = NULL, \
         created_at = created_at - INTERVAL '100 days'",
    )
    .await
    .unwrap();
    let retained = rows_by_partition(&db, "outbox").await;
    let upkeep = db
        .store
        .maintain_partitions(Some(due - chrono::Duration::days(30)))
        .await
        .unwrap();
    let left = db.scalar("SELECT COUNT(*) FROM outbox").await;
    assert!(upkeep.outbox_rows_dropped > 0, "{retained:?}");
    assert_eq!(left, queued - upkeep.outbox_rows_dropped as i64);
    assert!(rows_by_partition(&db, "outbox").await.len() < retained.len());
    // The keys outlive the dropped rows: a confirmation already sent is never queued again.
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM outbox_keys WHERE kind = 'order_confirmation'")
            .await,
        i64::from(DUE)
    );
}
