//! `subsave run` as operators run it: the real binary as a process, against PostgreSQL and an
//! SMTP server on 127.0.0.1, with a fast sweep schedule. Signals, crashes and replicas.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{Daemon, TEST_LINK_KEYS, http_get, http_get_raw, metric, unique_message_ids};
use common::proxy::TcpProxy;
use common::smtp::{SmtpPeer, free_port};
use common::{Backend, TestDb, eventually, seed_due_at};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Seeds `n` subscriptions whose first renewal fell due a minute ago by the wall clock.
async fn seed(db: &TestDb, n: u32) {
    seed_due_at(db, n, chrono::Utc::now() - chrono::TimeDelta::minutes(1)).await;
}

/// One order per due subscription, each with its confirmation, and none twice.
async fn assert_invariants(db: &TestDb) {
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM (SELECT subscription_id, cycle FROM orders GROUP BY 1, 2 HAVING COUNT(*) > 1) x").await,
        0
    );
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM outbox m WHERE m.order_id = o.id)").await,
        0,
        "every order has its confirmation"
    );
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM subscriptions s WHERE s.next_cycle = 2 AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.subscription_id = s.id)").await,
        0,
        "no subscription advanced without its order"
    );
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM orders").await,
        db.scalar("SELECT COUNT(*) FROM subscriptions WHERE next_cycle = 2")
            .await,
        "every order advanced its subscription"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_renews_delivers_and_reports_health_and_metrics() {
    let db = TestDb::new(Backend::Postgres).await;
    seed(&db, 50).await;
    let peer = SmtpPeer::start().await;
    let daemon = Daemon::start(&db, peer.port(), &[]);
    eventually(Duration::from_secs(30), "50 orders", || async {
        db.scalar("SELECT COUNT(*) FROM orders").await == 50
    })
    .await;
    eventually(Duration::from_secs(30), "50 confirmations sent", || async {
        db.scalar("SELECT COUNT(*) FROM outbox WHERE status = 'sent'")
            .await
            == 50
    })
    .await;
    assert_eq!(http_get(daemon.http_port, "/healthz").await.unwrap().0, 200);
    let (status, body) = http_get(daemon.http_port, "/readyz").await.unwrap();
    assert_eq!((status, body.trim()), (200, "ready"));
    let (status, metrics) = http_get(daemon.http_port, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        metric(&metrics, "subsave_orders_total"),
        db.scalar("SELECT COUNT(*) FROM orders").await as f64
    );
    assert_eq!(
        metric(&metrics, "subsave_order_amount_minor_total"),
        db.scalar("SELECT CAST(SUM(total_minor) AS BIGINT) FROM orders")
            .await as f64
    );
    assert_eq!(
        metric(
            &metrics,
            "subsave_emails_total{kind=\"order_confirmation\",outcome=\"sent\"}"
        ),
        50.0
    );
    assert_eq!(metric(&metrics, "subsave_outbox_pending"), 0.0);
    assert_eq!(metric(&metrics, "subsave_due_backlog"), 0.0);
    // The 50 orders wait for their shipments: the gauge counts them from the database.
    assert_eq!(metric(&metrics, "subsave_unfulfilled_orders"), 50.0);
    assert!(metric(&metrics, "subsave_unfulfilled_oldest_age_seconds") >= 0.0);
    assert!(metric(&metrics, "subsave_last_successful_sweep_timestamp_seconds") > 1.7e9);
    assert!(metric(&metrics, "subsave_sweep_duration_seconds_count") >= 1.0);

    // The customer pages are served on their own port, never on the ops port, and the
    // request log shows the path with the link's token redacted.
    let id = db.scalar("SELECT MIN(id) FROM subscriptions").await;
    let signer = subsave::core::links::LinkSigner::new(
        subsave::core::links::parse_keys(TEST_LINK_KEYS).unwrap(),
    )
    .unwrap();
    let token = signer.sign(id, chrono::Utc::now() + chrono::TimeDelta::days(1));
    let page = format!("/s/{token}");
    let (status, body) = http_get(daemon.web_port, &page).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Your subscription"));
    assert_eq!(http_get(daemon.http_port, &page).await.unwrap().0, 404);
    let log = daemon.log.clone();
    assert_eq!(daemon.terminate(Duration::from_secs(20)), 0);
    let log = std::fs::read_to_string(log).unwrap();
    assert!(log.contains("/s/[link]"), "{log}");
    assert!(!log.contains(&token), "the token reached the log:\n{log}");
    assert_invariants(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_work_exits_0_with_nothing_half_written() {
    let db = TestDb::new(Backend::Postgres).await;
    seed(&db, 3000).await;
    let peer = SmtpPeer::start().await;
    let daemon = Daemon::start(&db, peer.port(), &[("SUBSAVE_ENGINE__BATCH_SIZE", "20")]);
    eventually(Duration::from_secs(30), "the sweep to start", || async {
        db.scalar("SELECT COUNT(*) FROM orders").await > 0
    })
    .await;
    let started = Instant::now();
    let code = daemon.terminate(Duration::from_secs(20));
    assert_eq!(code, 0);
    println!(
        "stopped {:.2} s after SIGTERM",
        started.elapsed().as_secs_f64()
    );
    assert_invariants(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_bill_and_mail_1000_subscriptions_once() {
    let db = TestDb::new(Backend::Postgres).await;
    seed(&db, 1000).await;
    let peer = SmtpPeer::start().await;
    let a = Daemon::start(&db, peer.port(), &[("SUBSAVE_ENGINE__BATCH_SIZE", "25")]);
    let b = Daemon::start(&db, peer.port(), &[("SUBSAVE_ENGINE__BATCH_SIZE", "25")]);
    eventually(
        Duration::from_secs(60),
        "1000 confirmations sent",
        || async {
            db.scalar(
                "SELECT COUNT(*) FROM outbox WHERE kind = 'order_confirmation' AND status = 'sent'",
            )
            .await
                == 1000
        },
    )
    .await;
    assert_eq!(db.scalar("SELECT COUNT(*) FROM orders").await, 1000);
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'order_confirmation'")
            .await,
        1000
    );
    let (received, unique) = unique_message_ids(&peer);
    assert_eq!((received, unique), (1000, 1000), "each message sent once");
    assert_eq!(a.terminate(Duration::from_secs(20)), 0);
    assert_eq!(b.terminate(Duration::from_secs(20)), 0);
    assert_invariants(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_sweep_then_restart_keeps_every_invariant() {
    let db = TestDb::new(Backend::Postgres).await;
    seed(&db, 1500).await;
    let peer = SmtpPeer::start().await;
    let daemon = Daemon::start(&db, peer.port(), &[("SUBSAVE_ENGINE__BATCH_SIZE", "10")]);
    eventually(Duration::from_secs(30), "some orders", || async {
        db.scalar("SELECT COUNT(*) FROM orders").await > 0
    })
    .await;
    daemon.kill9();
    let after_crash = db.scalar("SELECT COUNT(*) FROM orders").await;
    println!("{after_crash} orders when killed");
    assert_invariants(&db).await;
    let restarted = Daemon::start(&db, peer.port(), &[]);
    eventually(Duration::from_secs(60), "all 1500 orders", || async {
        db.scalar("SELECT COUNT(*) FROM orders").await == 1500
    })
    .await;
    eventually(
        Duration::from_secs(60),
        "every confirmation sent",
        || async {
            db.scalar(
                "SELECT COUNT(*) FROM outbox WHERE kind = 'order_confirmation' AND status = 'sent'",
            )
            .await
                == 1500
        },
    )
    .await;
    assert_eq!(restarted.terminate(Duration::from_secs(20)), 0);
    assert_invariants(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_queued_while_smtp_is_down_is_delivered_once_when_it_returns() {
    let db = TestDb::new(Backend::Postgres).await;
    seed(&db, 20).await;
    let port = free_port();
    let daemon = Daemon::start(&db, port, &[]);
    eventually(Duration::from_secs(30), "20 orders and a failed attempt each", || async {
        db.scalar("SELECT COUNT(*) FROM orders").await == 20
            && db.scalar("SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND last_error IS NOT NULL").await == 20
    })
    .await;
    let peer = SmtpPeer::start_on(port).await;
    eventually(Duration::from_secs(30), "20 sent", || async {
        db.scalar("SELECT COUNT(*) FROM outbox WHERE status = 'sent'")
            .await
            == 20
    })
    .await;
    let (received, unique) = unique_message_ids(&peer);
    assert_eq!((received, unique), (20, 20));
    let log = daemon.log_text();
    assert_eq!(
        log.matches("mail server unavailable").count(),
        1,
        "logged once, not per attempt:\n{log}"
    );
    assert_eq!(
        log.matches("mail server available again").count(),
        1,
        "{log}"
    );
    assert_eq!(daemon.terminate(Duration::from_secs(20)), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_turns_readyz_red_and_work_resumes_after_it() {
    let db = TestDb::new(Backend::Postgres).await;
    let proxy = TcpProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let via_proxy = db
        .url
        .replacen("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port), 1);
    assert_ne!(
        via_proxy, db.url,
        "the test database URL names 127.0.0.1:5432"
    );
    let peer = SmtpPeer::start().await;
    let daemon = Daemon::start(
        &db,
        peer.port(),
        &[("SUBSAVE_DATABASE__URL", via_proxy.as_str())],
    );
    eventually(Duration::from_secs(20), "ready", || async {
        http_get(daemon.http_port, "/readyz")
            .await
            .is_some_and(|(status, _)| status == 200)
    })
    .await;

    proxy.cut();
    eventually(Duration::from_secs(20), "readyz red", || async {
        http_get(daemon.http_port, "/readyz")
            .await
            .is_some_and(|(status, _)| status == 503)
    })
    .await;
    assert_eq!(
        http_get(daemon.http_port, "/healthz").await.unwrap().0,
        200,
        "alive all the same"
    );
    // Renewals fall due while the database is unreachable for the daemon.
    seed(&db, 10).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(db.scalar("SELECT COUNT(*) FROM orders").await, 0);
    // The outage lasts until a loop has seen it (a loop waiting on the pool sees it only when
    // the pool's acquire times out): otherwise a short cut can pass unnoticed, unlogged.
    eventually(Duration::from_secs(30), "the outage logged", || async {
        daemon.log_text().contains("database unavailable")
    })
    .await;

    proxy.restore().await;
    eventually(
        Duration::from_secs(40),
        "10 orders after the outage",
        || async { db.scalar("SELECT COUNT(*) FROM orders").await == 10 },
    )
    .await;
    eventually(
        Duration::from_secs(20),
        "their confirmations sent",
        || async {
            db.scalar("SELECT COUNT(*) FROM outbox WHERE status = 'sent'")
                .await
                == 10
        },
    )
    .await;
    assert_eq!(http_get(daemon.http_port, "/readyz").await.unwrap().0, 200);
    let log = daemon.log_text();
    assert_eq!(
        log.matches("database unavailable").count(),
        1,
        "logged once per outage:\n{log}"
    );
    assert_eq!(log.matches("database available again").count(), 1, "{log}");
    assert_eq!(daemon.terminate(Duration::from_secs(30)), 0);
    assert_invariants(&db).await;
}

/// Message-IDs of messages' bodies (as a peer saw them).
fn message_ids(bodies: &[Vec<u8>]) -> Vec<String> {
    bodies
        .iter()
        .map(|data| {
            mail_parser::MessageParser::default()
                .parse(data)
                .and_then(|m| m.message_id().map(str::to_owned))
                .unwrap_or_default()
        })
        .collect()
}

/// Past the grace period, the daemon abandons the sends in hand, gives their leases back,
/// says so in JSON like every other log line, and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_that_overruns_its_grace_gives_back_the_leases_and_exits_0() {
    let db = TestDb::new(Backend::Postgres).await;
    seed(&db, 8).await;
    let peer = SmtpPeer::start().await;
    peer.script_data(&["HANG"; 8]);
    let daemon = Daemon::start_with_args(
        &db,
        peer.port(),
        &[
            ("SUBSAVE_DAEMON__SHUTDOWN_GRACE_SECS", "1"),
            ("SUBSAVE_MAIL__SMTP__TIMEOUT_SECS", "20"),
            ("SUBSAVE_MAIL__DELIVERY__LEASE_SECS", "120"),
        ],
        &["--log-format", "json"],
    );
    eventually(Duration::from_secs(30), "sends hanging", || async {
        !peer.transmissions().is_empty()
    })
    .await;
    let started = Instant::now();
    let log = daemon.log.clone();
    assert_eq!(daemon.terminate(Duration::from_secs(10)), 0);
    assert!(started.elapsed() < Duration::from_secs(5));
    let text = std::fs::read_to_string(log).unwrap();
    for line in text.lines() {
        let record: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        // What log shippers read: message, level, timestamp and target at the top level.
        for key in ["message", "level", "timestamp", "target"] {
            assert!(record[key].is_string(), "no top-level {key}: {line}");
        }
        assert!(record.get("fields").is_none(), "{line}");
    }
    assert!(text.contains("abandoned it and gave back"), "{text}");
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM outbox WHERE lease_until IS NOT NULL")
            .await,
        0,
        "no lease kept"
    );
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM outbox WHERE status = 'sent'")
            .await,
        0
    );
}

/// A server that accepts connections and never says a word: the outage is logged once when
/// the first send times out, and its end once when a send succeeds again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_mail_server_is_logged_once_down_and_once_back() {
    let db = TestDb::new(Backend::Postgres).await;
    seed(&db, 10).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = std::thread::spawn(move || {
        let mut open = Vec::new();
        listener.set_nonblocking(true).unwrap();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(4) {
            if let Ok((socket, _)) = listener.accept() {
                open.push(socket);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let daemon = Daemon::start(&db, port, &[]);
    silent.join().unwrap();
    let peer = SmtpPeer::start_on(port).await;
    eventually(Duration::from_secs(30), "10 sent", || async {
        db.scalar("SELECT COUNT(*) FROM outbox WHERE status = 'sent'")
            .await
            == 10
    })
    .await;
    let text = daemon.log_text();
    assert_eq!(text.matches("mail server unavailable").count(), 1, "{text}");
    assert_eq!(
        text.matches("mail server available again").count(),
        1,
        "{text}"
    );
    assert!(!peer.received().is_empty());
    assert_eq!(daemon.terminate(Duration::from_secs(20)), 0);
}

/// Two replicas against a peer that hangs on some messages and takes others then hangs up,
/// and a `kill -9` of one replica mid-batch: every message is delivered; a message reaches
/// the peer more than once only where the peer took it and hung up, or where a killed
/// replica's send was cut off; no process sends a message twice; attempts count real sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_a_faulty_peer_and_a_kill_9_deliver_everything() {
    let db = TestDb::new(Backend::Postgres).await;
    seed(&db, 200).await;
    let peer = SmtpPeer::start().await;
    let mut script = Vec::new();
    for _ in 0..6 {
        script.extend(["HANG", "TAKE AND CLOSE"]);
        script.extend(["250 2.0.0 queued"; 10]);
    }
    peer.script_data(&script);
    let fast = [("SUBSAVE_MAIL__DELIVERY__RATE_PER_SECOND", "200")];
    let mut a = Daemon::start(&db, peer.port(), &fast);
    let b = Daemon::start(&db, peer.port(), &fast);
    eventually(Duration::from_secs(30), "some mail sent", || async {
        db.scalar("SELECT COUNT(*) FROM outbox WHERE status = 'sent'")
            .await
            >= 20
    })
    .await;
    a.kill9_in_place();
    let c = Daemon::start(&db, peer.port(), &fast);
    eventually(
        Duration::from_secs(90),
        "all 200 confirmations sent",
        || async {
            db.scalar(
                "SELECT COUNT(*) FROM outbox WHERE kind = 'order_confirmation' AND status = 'sent'",
            )
            .await
                == 200
        },
    )
    .await;
    let logs = [a.log_text(), b.log_text(), c.log_text()];
    assert_eq!(b.terminate(Duration::from_secs(20)), 0);
    assert_eq!(c.terminate(Duration::from_secs(20)), 0);
    assert_invariants(&db).await;

    // No process logged a message as sent twice.
    for log in logs {
        let mut sent = std::collections::BTreeMap::<String, usize>::new();
        for line in log.lines().filter(|l| l.contains(": sent ")) {
            if let Some(id) = line
                .split("outbox_id=")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
            {
                *sent.entry(id.to_owned()).or_default() += 1;
            }
        }
        assert!(
            sent.values().all(|n| *n == 1),
            "sent twice by one process: {sent:?}"
        );
    }
    // Copies beyond the first: only where the peer took a message and hung up, or where the
    // killed replica's send was cut off (at most its 8 senders).
    let bodies: Vec<Vec<u8>> = peer.received().into_iter().map(|m| m.data).collect();
    let received = message_ids(&bodies);
    let unique: std::collections::BTreeSet<_> = received.iter().collect();
    let duplicates = received.len() - unique.len();
    assert!(duplicates <= 6 + 8, "{duplicates} duplicates");
    // Attempts count the sends that reached the peer; the killed replica's cut-off sends
    // are the only ones it could not record.
    let transmissions = peer.transmissions().len() as i64;
    let attempts = db
        .scalar("SELECT CAST(SUM(attempts) AS BIGINT) FROM outbox")
        .await;
    assert!(
        attempts <= transmissions && attempts >= transmissions - 8,
        "{attempts} attempts recorded for {transmissions} sends"
    );
    println!(
        "{} messages, {} received ({duplicates} duplicates), {transmissions} sends, {attempts} attempts",
        unique.len(),
        received.len()
    );
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The ops listener cannot be starved: a client that sends half a request is cut off after
/// the header timeout, 300 idle connections neither exhaust the process's files nor keep
/// /healthz from answering, and a stop does not wait for idle keep-alive connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_listener_cannot_be_starved() {
    let db = TestDb::new(Backend::Postgres).await;
    let peer = SmtpPeer::start().await;
    let daemon = Daemon::start(
        &db,
        peer.port(),
        &[
            ("SUBSAVE_HTTP__MAX_CONNECTIONS", "32"),
            ("SUBSAVE_HTTP__HEADER_TIMEOUT_SECS", "1"),
        ],
    );
    eventually(Duration::from_secs(30), "the listener", || async {
        http_get(daemon.http_port, "/healthz").await.is_some()
    })
    .await;

    // Slowloris: half a request, then silence. Cut off after the header timeout.
    let mut slow = tokio::net::TcpStream::connect(("127.0.0.1", daemon.http_port))
        .await
        .unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buffer = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buffer)).await;
    assert!(
        matches!(read, Ok(Ok(_)) | Ok(Err(_))),
        "the half-sent request was still open after 5 s"
    );
    println!("half request cut off after {:?}", started.elapsed());

    // 300 connections that say nothing.
    let mut idle = Vec::new();
    for _ in 0..300 {
        if let Ok(socket) = tokio::net::TcpStream::connect(("127.0.0.1", daemon.http_port)).await {
            idle.push(socket);
        }
    }
    let pid = daemon.child.id();
    let files = open_files(pid);
    let started = Instant::now();
    let answer = tokio::time::timeout(
        Duration::from_secs(15),
        http_get(daemon.http_port, "/healthz"),
    )
    .await;
    let waited = started.elapsed();
    assert!(
        matches!(answer, Ok(Some((200, _)))),
        "/healthz did not answer under 300 idle connections: {answer:?}"
    );
    assert!(files < 150, "{files} open files with 300 idle clients");
    println!("{files} open files; /healthz answered after {waited:?} behind 300 idle clients");
    drop(idle);

    // A keep-alive connection left open after a request does not hold up the stop.
    let mut kept = tokio::net::TcpStream::connect(("127.0.0.1", daemon.http_port))
        .await
        .unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), kept.read(&mut buffer)).await;
    let started = Instant::now();
    assert_eq!(daemon.terminate(Duration::from_secs(10)), 0);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the stop waited {:?} for an idle connection",
        started.elapsed()
    );
}

/// Distinct secrets planted in every form the config accepts never appear in any output of
/// `check-config`, `migrate`, `tick` or `run`, at any log level, nor in config errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_secrets_never_print() {
    let db = TestDb::new(Backend::Postgres).await;
    let dir = std::env::temp_dir().join(format!("subsave-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("smtp-password"), "G7fileSecret\n").unwrap();
    // PostgreSQL here trusts every local connection, so any password connects.
    let (root, name) = db.url.rsplit_once('/').unwrap();
    let with_password = root.replacen(
        "postgres://postgres@",
        "postgres://postgres:A1url%2FSecret@",
        1,
    );
    let url = format!("{with_password}/{name}?sslmode=disable&password=B2querySecret");
    let secrets = [
        "A1url%2FSecret",
        "B2querySecret",
        "0123456789",
        "G7fileSecret",
        "H8linkKeySecret",
        "sk_test_I9stripeSecret",
        "whsec_J0webhookSecret",
    ];
    let password_file = dir.join("smtp-password").display().to_string();
    let env = [
        ("SUBSAVE_DATABASE__URL", url.as_str()),
        ("SUBSAVE_DATABASE__PASSWORD", "0123456789"),
        ("SUBSAVE_MAIL__SMTP__PASSWORD_FILE", password_file.as_str()),
        ("SUBSAVE_HTTP__LISTEN", "127.0.0.1:0"),
        ("SUBSAVE_WEB__LISTEN", "127.0.0.1:0"),
        (
            "SUBSAVE_WEB__LINK_KEYS",
            "k1:H8linkKeySecret-H8linkKeySecret-H8linkKeySecret",
        ),
        (
            "SUBSAVE_PAYMENTS__STRIPE__SECRET_KEY",
            "sk_test_I9stripeSecret",
        ),
        (
            "SUBSAVE_PAYMENTS__STRIPE__WEBHOOK_SECRETS",
            "whsec_J0webhookSecret",
        ),
    ];
    let run = |args: &[&str], level: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_subsave"));
        cmd.args(args).env("RUST_LOG", level);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    };
    let mut outputs = Vec::new();
    for level in ["error", "info", "debug", "trace"] {
        for args in [
            vec!["check-config"],
            vec!["check-config", "--json"],
            vec!["migrate"],
            vec!["tick"],
            vec!["--log-format", "json", "tick"],
        ] {
            let out = run(&args, level).output().unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            outputs.push(format!(
                "{args:?} {level}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        // The daemon's start-up and stop.
        let mut daemon = run(&["run"], level)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        Command::new("kill")
            .args(["-TERM", &daemon.id().to_string()])
            .status()
            .unwrap();
        let _ = daemon.wait();
        let out = daemon.wait_with_output().unwrap();
        outputs.push(format!(
            "run {level}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // Config errors that would quote a secret: an all-digit password in a file, a syntax
    // error on a password line.
    std::fs::write(
        dir.join("numeric.toml"),
        "[mail.smtp]\npassword = 4242424242\nport = \"x\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("broken.toml"),
        "[mail.smtp]\npassword = \"F6brokenSecret\n",
    )
    .unwrap();
    for file in ["numeric.toml", "broken.toml"] {
        let out = Command::new(env!("CARGO_BIN_EXE_subsave"))
            .args(["--config", dir.join(file).to_str().unwrap(), "check-config"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{file}");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        outputs.push(err);
    }
    let all = outputs.join("\n");
    for secret in secrets
        .iter()
        .chain(&["4242424242", "F6brokenSecret", "H8slash", "Secret@127"])
    {
        assert!(!all.contains(secret), "{secret} printed:\n{all}");
    }
    assert!(all.contains("[redacted]"), "{all}");
    assert!(all.contains("TOML syntax error at line"), "{all}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// From start-up, every counter exists at 0 with its known labels and the last-sweep gauge
/// holds the start time; a daemon mailing to files against PostgreSQL says so. Every metric
/// the Grafana dashboard and the alert rules in deploy/ query is in this live scrape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_exist_at_zero_from_the_start() {
    let db = TestDb::new(Backend::Postgres).await;
    let started = chrono::Utc::now().timestamp() as f64;
    let daemon = Daemon::start(
        &db,
        free_port(),
        &[
            ("SUBSAVE_ENGINE__SWEEP", "0 0 1 1 *"),
            ("SUBSAVE_MAIL__TRANSPORT", "file"),
        ],
    );
    eventually(Duration::from_secs(30), "metrics", || async {
        matches!(http_get(daemon.http_port, "/metrics").await, Some((200, _)))
    })
    .await;
    let (_, text) = http_get(daemon.http_port, "/metrics").await.unwrap();
    for line in [
        "subsave_emails_total{kind=\"order_confirmation\",outcome=\"failed\"} 0",
        "subsave_emails_total{kind=\"renewal_reminder\",outcome=\"retried\"} 0",
        "subsave_orders_total{plan=\"6-pack\"} 0",
        "subsave_renewals_total{plan=\"1-pack\",outcome=\"billed\"} 0",
        "subsave_outbox_purged_total 0",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
    }
    // The body matches its content type: the Prometheus text format by default, OpenMetrics
    // when asked for; and promtool finds nothing to complain about in a live scrape.
    let plain = http_get_raw(daemon.http_port, "/metrics", "")
        .await
        .unwrap();
    assert!(
        plain
            .to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{plain}"
    );
    let open = http_get_raw(
        daemon.http_port,
        "/metrics",
        "Accept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n",
    )
    .await
    .unwrap();
    assert!(
        open.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{open}"
    );
    assert!(open.trim_end().ends_with("# EOF"), "{open}");
    let promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package) is needed: .ci/run installs it");
    {
        use std::io::Write;
        let mut stdin = promtool.stdin.as_ref().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
    }
    let checked = promtool.wait_with_output().unwrap();
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(
        checked.status.success() && complaints.trim().is_empty(),
        "promtool check metrics: {complaints}"
    );
    deploy_queries_name_exported_metrics(&text);
    let last_sweep = metric(&text, "subsave_last_successful_sweep_timestamp_seconds");
    assert!(
        (last_sweep - started).abs() < 60.0,
        "last sweep {last_sweep}, started {started}"
    );
    assert!(
        daemon
            .log_text()
            .contains("mail.transport is \"file\" against PostgreSQL"),
        "{}",
        daemon.log_text()
    );
    assert_eq!(daemon.terminate(Duration::from_secs(20)), 0);
}

/// `subsave run` with the stripe provider: its payment loop charges what the sweep bills
/// through localstripe, localstripe's signed webhook completes a 3-D Secure payment on the
/// public listener, and SIGTERM stops it all; neither the secret key nor the webhook secret
/// is ever logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_charges_through_stripe_and_takes_its_webhooks() {
    use common::localstripe::{LocalStripe, SECRET_KEY};
    use subsave::core::lifecycle::Start;
    use subsave::core::model::PaymentRefs;
    const WEBHOOK_SECRET: &str = "whsec_daemon_test_secret";
    let db = TestDb::new(Backend::Postgres).await;
    let stripe = LocalStripe::start().await;
    let now = chrono::Utc::now();
    for (email, card) in [
        ("ada@example.com", "4242424242424242"),
        ("cy@example.com", "4000002760003184"),
    ] {
        let customer = db.customer(email, "UTC", None, now).await;
        db.subscribe(&customer, "1-pack", Start::Now, None, now)
            .await;
        let (customer_ref, method_ref) = stripe.customer_with_card(email, card).await;
        let refs = PaymentRefs {
            customer_ref: Some(customer_ref),
            method_ref: Some(method_ref),
        };
        db.store
            .set_payment_refs(customer.id, &refs, 7, now)
            .await
            .unwrap();
    }
    let peer = SmtpPeer::start().await;
    let daemon = Daemon::start(
        &db,
        peer.port(),
        &[
            ("SUBSAVE_PAYMENTS__PROVIDER", "stripe"),
            ("SUBSAVE_PAYMENTS__STRIPE__API_BASE", &stripe.base),
            ("SUBSAVE_PAYMENTS__STRIPE__SECRET_KEY", SECRET_KEY),
            ("SUBSAVE_PAYMENTS__STRIPE__WEBHOOK_SECRETS", WEBHOOK_SECRET),
            ("SUBSAVE_PAYMENTS__POLL_SECS", "1"),
        ],
    );
    stripe
        .send_webhooks_to(
            &format!("http://127.0.0.1:{}/webhooks/stripe", daemon.web_port),
            WEBHOOK_SECRET,
        )
        .await;
    eventually(
        Duration::from_secs(30),
        "Ada paid, Cy asked to confirm",
        || async {
            db.scalar("SELECT COUNT(*) FROM payments WHERE status = 'paid'")
                .await
                == 1
                && db
                    .scalar("SELECT COUNT(*) FROM payments WHERE status = 'requires_action'")
                    .await
                    == 1
        },
    )
    .await;
    let intent: String = {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query_scalar(
            "SELECT provider_payment_ref FROM payments WHERE status = 'requires_action'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap()
    };
    stripe.authenticate(&intent).await;
    eventually(
        Duration::from_secs(30),
        "the webhook to mark Cy paid",
        || async {
            db.scalar("SELECT COUNT(*) FROM payments WHERE status = 'paid'")
                .await
                == 2
        },
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "the receipt and the 3-D Secure email mailed",
        || async {
            db.scalar(
                "SELECT COUNT(*) FROM outbox WHERE status = 'sent' \
             AND kind IN ('payment_action_required', 'payment_received')",
            )
            .await
                == 2
        },
    )
    .await;
    let (_, text) = http_get(daemon.http_port, "/metrics").await.unwrap();
    assert_eq!(
        metric(&text, "subsave_payments_total{outcome=\"paid\"}"),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(&text, "subsave_payments_total{outcome=\"requires_action\"}"),
        1.0
    );
    let log = daemon.log_text();
    assert_eq!(daemon.terminate(Duration::from_secs(20)), 0);
    assert!(log.contains("stripe webhook"), "{log}");
    assert!(!log.contains(SECRET_KEY) && !log.contains(WEBHOOK_SECRET));
    assert_eq!(stripe.succeeded_charges().await.len(), 2);
}

/// A stop while a charge hangs at the provider: past the grace period the daemon gives back
/// the payment's lease (its attempt stays marked sent, so the next claim asks the provider
/// first) and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_past_its_grace_gives_back_the_payments_in_hand() {
    use subsave::core::lifecycle::Start;
    use subsave::core::model::PaymentRefs;
    let db = TestDb::new(Backend::Postgres).await;
    let now = chrono::Utc::now();
    let customer = db.customer("ada@example.com", "UTC", None, now).await;
    db.subscribe(&customer, "1-pack", Start::Now, None, now)
        .await;
    let refs = PaymentRefs {
        customer_ref: Some("cus_1".into()),
        method_ref: Some("pm_1".into()),
    };
    db.store
        .set_payment_refs(customer.id, &refs, 7, now)
        .await
        .unwrap();
    // A "Stripe" that takes the request and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(stream);
        }
    });
    let peer = SmtpPeer::start().await;
    let api_base = format!("http://127.0.0.1:{silent_port}");
    let daemon = Daemon::start(
        &db,
        peer.port(),
        &[
            ("SUBSAVE_DAEMON__SHUTDOWN_GRACE_SECS", "1"),
            ("SUBSAVE_PAYMENTS__PROVIDER", "stripe"),
            ("SUBSAVE_PAYMENTS__STRIPE__API_BASE", &api_base),
            ("SUBSAVE_PAYMENTS__STRIPE__SECRET_KEY", "sk_test_silent"),
            ("SUBSAVE_PAYMENTS__POLL_SECS", "1"),
        ],
    );
    eventually(
        Duration::from_secs(30),
        "a charge hanging at the provider",
        || async { accepted.load(std::sync::atomic::Ordering::SeqCst) > 0 },
    )
    .await;
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM payments WHERE lease_until IS NOT NULL")
            .await,
        1
    );
    let log = daemon.log.clone();
    let started = Instant::now();
    assert_eq!(daemon.terminate(Duration::from_secs(10)), 0);
    assert!(started.elapsed() < Duration::from_secs(5));
    let text = std::fs::read_to_string(log).unwrap();
    assert!(text.contains("gave back their payments' leases"), "{text}");
    assert_eq!(
        db.scalar(
            "SELECT COUNT(*) FROM payments WHERE status = 'pending' \
             AND lease_until IS NULL AND sent_at IS NOT NULL"
        )
        .await,
        1,
        "released, and marked in doubt"
    );
}

/// A database without the schema, with `migrate_on_start = false` (as in the production
/// example): `run` says to run `subsave migrate` and exits 2 (a setup error, which the systemd
/// unit does not restart), and so does any other command; a schema one migration behind
/// likewise; and `/readyz` of a running daemon says it when its database falls behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_without_the_schema_is_a_setup_error_that_says_what_to_run() {
    let db = TestDb::new(Backend::Postgres).await;
    db.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        .await
        .unwrap();
    let no_migrate = [("SUBSAVE_DATABASE__MIGRATE_ON_START", "false")];
    let daemon = Daemon::start(&db, free_port(), &no_migrate);
    let log = daemon.log.clone();
    assert_eq!(daemon.exit_code_within(Duration::from_secs(20)), 2);
    let text = std::fs::read_to_string(log).unwrap();
    assert!(
        text.contains("the database has no schema") && text.contains("run `subsave migrate`"),
        "{text}"
    );
    assert!(!text.contains("does not exist"), "{text}");
    let list = Command::new(env!("CARGO_BIN_EXE_subsave"))
        .args(["subs", "list"])
        .env("SUBSAVE_DATABASE__URL", &db.url)
        .env("SUBSAVE_DATABASE__MIGRATE_ON_START", "false")
        .output()
        .unwrap();
    assert_eq!(list.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&list.stderr).contains("run `subsave migrate`"),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );

    // Migrated, then one migration forgotten: behind, by one.
    let migrate = Command::new(env!("CARGO_BIN_EXE_subsave"))
        .arg("migrate")
        .env("SUBSAVE_DATABASE__URL", &db.url)
        .output()
        .unwrap();
    assert!(migrate.status.success());
    let daemon = Daemon::start(&db, free_port(), &no_migrate);
    eventually(Duration::from_secs(30), "ready", || async {
        matches!(http_get(daemon.http_port, "/readyz").await, Some((200, _)))
    })
    .await;
    db.execute(
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)",
    )
    .await
    .unwrap();
    let (status, body) = http_get(daemon.http_port, "/readyz").await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("1 migration behind") && body.contains("run `subsave migrate`"),
        "{body}"
    );
    assert_eq!(daemon.terminate(Duration::from_secs(20)), 0);
    let daemon = Daemon::start(&db, free_port(), &no_migrate);
    let log = daemon.log.clone();
    assert_eq!(daemon.exit_code_within(Duration::from_secs(20)), 2);
    let text = std::fs::read_to_string(log).unwrap();
    assert!(text.contains("1 migration behind"), "{text}");
}

/// A catalog that lacks a plan subscriptions use is a configuration error: `run` exits 2 with
/// the plan and the subscriptions named, instead of failing and being restarted forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_missing_a_plan_in_use_stops_the_daemon_with_exit_2() {
    let db = TestDb::new(Backend::Postgres).await;
    seed(&db, 3).await;
    db.execute("UPDATE subscriptions SET plan_id = 'retired-pack' WHERE id = 2")
        .await
        .unwrap();
    let daemon = Daemon::start(&db, free_port(), &[]);
    let log = daemon.log.clone();
    assert_eq!(daemon.exit_code_within(Duration::from_secs(20)), 2);
    let text = std::fs::read_to_string(log).unwrap();
    assert!(
        text.contains("the catalog lacks plans that subscriptions use")
            && text.contains("\"retired-pack\" (subscriptions 2)"),
        "{text}"
    );
}

/// SQLite has one writer: a second daemon on the same file refuses to start (exit 2), saying
/// where the first one runs; the first goes on. The database file is its owner's only (0600).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_on_one_sqlite_file_refuses_to_start() {
    let dir = std::env::temp_dir().join(format!("subsave-sqlite-lock-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("shop.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let first = Daemon::start_on(&url, free_port(), &[], &[]);
    eventually(Duration::from_secs(30), "first ready", || async {
        matches!(http_get(first.http_port, "/readyz").await, Some((200, _)))
    })
    .await;
    let second = Daemon::start_on(&url, free_port(), &[], &[]);
    let log = second.log.clone();
    assert_eq!(second.exit_code_within(Duration::from_secs(20)), 2);
    let text = std::fs::read_to_string(log).unwrap();
    assert!(
        text.contains("another `subsave run` already uses the SQLite database")
            && text.contains(&format!("pid {}", first.child.id())),
        "{text}"
    );
    assert!(matches!(
        http_get(first.http_port, "/readyz").await,
        Some((200, _))
    ));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", file.display());
    assert_eq!(first.terminate(Duration::from_secs(20)), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The metric names a PromQL expression selects: identifiers that are not functions,
/// keywords, label names (inside `{…}`), grouping labels (`by (…)`, `on (…)`, …), strings,
/// numbers or durations (inside `[…]`, where Grafana's `$__rate_interval` goes).
fn promql_metric_names(expr: &str) -> std::collections::BTreeSet<String> {
    const GROUPING: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    // Aggregations may put `by (…)` between their name and their parenthesis.
    const KEYWORDS: [&str; 18] = [
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "inf",
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "group",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = std::collections::BTreeSet::new();
    let (mut i, mut in_braces) = (0, false);
    let skip_to = |from: usize, end: char| {
        chars[from..]
            .iter()
            .position(|c| *c == end)
            .map_or(chars.len(), |p| from + p + 1)
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '{' || c == '}' {
            in_braces = c == '{';
            i += 1;
        } else if c == '[' {
            i = skip_to(i + 1, ']');
        } else if c == '"' || c == '\'' {
            i = skip_to(i + 1, c);
        } else if c.is_ascii_digit() || c == '.' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            if GROUPING.contains(&word.as_str()) {
                i = skip_to(i, ')');
            } else if !in_braces && next != Some(&'(') && !KEYWORDS.contains(&word.as_str()) {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// Every metric the dashboard's panels query and the alert rules use is exported (in the
/// live scrape `text`), is a recording rule of alerts.yml, or is named here as made by
/// Prometheus itself (`up`) or by the blackbox exporter (`probe_success`). The dashboard's
/// queries are valid PromQL too (promtool checks them as recording rules, with Grafana's
/// variables filled in).
fn deploy_queries_name_exported_metrics(text: &str) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let exported: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let rules = std::fs::read_to_string(root.join("deploy/prometheus/alerts.yml")).unwrap();
    let recorded: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- record:"))
        .map(str::trim)
        .collect();
    let known = |name: &str| exported.contains(name) || recorded.contains(&name);

    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("deploy/grafana/subsave.json")).unwrap(),
    )
    .expect("deploy/grafana/subsave.json is JSON");
    assert_eq!(dashboard["schemaVersion"], 39);
    let datasource = &dashboard["templating"]["list"][0];
    assert_eq!(
        (&datasource["type"], &datasource["query"]),
        (
            &serde_json::json!("datasource"),
            &serde_json::json!("prometheus")
        )
    );
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{}",
            panel["title"]
        );
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {} has no query", panel["title"]);
        for target in targets {
            let expr = target["expr"].as_str().unwrap().to_owned();
            let names = promql_metric_names(&expr);
            assert!(!names.is_empty(), "{expr} names no metric");
            for name in &names {
                assert!(
                    known(name),
                    "panel {}: {name} is not exported:\n{text}",
                    panel["title"]
                );
            }
            exprs.push(expr);
        }
    }
    assert!(exprs.len() >= 15, "{} queries", exprs.len());
    // The checker sees what it should.
    assert_eq!(
        promql_metric_names(
            "sum by (le) (rate(a_bucket{instance=~\"$i\",x=\"y\"}[$__rate_interval])) / on(instance) b_total offset 5m > 0.5 and 1e3 or max without (a) (c)"
        ),
        ["a_bucket", "b_total", "c"].map(str::to_owned).into()
    );

    // Every alert's expression (single-line or folded `>-`) names exported metrics.
    let mut alert_exprs: Vec<String> = Vec::new();
    let lines: Vec<&str> = rules.lines().collect();
    for (n, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim().strip_prefix("expr:") else {
            continue;
        };
        let indent = line.len() - line.trim_start().len();
        let expr = if rest.trim() == ">-" {
            lines[n + 1..]
                .iter()
                .take_while(|l| l.len() - l.trim_start().len() > indent)
                .map(|l| l.trim())
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            rest.trim().to_owned()
        };
        alert_exprs.push(expr);
    }
    let alerts = lines
        .iter()
        .filter(|l| l.trim().starts_with("- alert:"))
        .count();
    assert_eq!(
        alert_exprs.len(),
        alerts,
        "one expression per alert: {alert_exprs:?}"
    );
    for expr in &alert_exprs {
        for name in promql_metric_names(expr) {
            assert!(
                known(&name) || ["up", "probe_success"].contains(&name.as_str()),
                "alerts.yml: {name} is not exported ({expr})"
            );
        }
    }

    // promtool parses each panel's query, with Grafana's variables filled in.
    let dir = std::env::temp_dir().join(format!("subsave-dashboard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut file = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (n, expr) in exprs.iter().enumerate() {
        let filled = expr
            .replace("$__rate_interval", "5m")
            .replace("$instance", ".+");
        file.push_str(&format!(
            "      - record: dashboard:panel_{n}\n        expr: {}\n",
            serde_json::to_string(&filled).unwrap()
        ));
    }
    let path = dir.join("dashboard-rules.yml");
    std::fs::write(&path, file).unwrap();
    let checked = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "promtool check rules on the dashboard's queries: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
