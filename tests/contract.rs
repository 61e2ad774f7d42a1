//! The API's contract, fuzzed: schemathesis (PyPI) against a live `subsave run` on PostgreSQL,
//! with every one of its checks (no server error, responses and status codes as documented,
//! schema-invalid requests refused, schema-valid ones accepted or refused by a business rule,
//! authentication not ignored). `.ci/run` installs schemathesis in a venv; this test fails
//! loudly when it is missing (set SCHEMATHESIS to its `st` program elsewhere).

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Backend, TestDb, at};
use subsave::core::lifecycle::Start;
use subsave::core::renewal::CatchUp;

const LINK_KEYS: &str = "k1:contract-test-link-key-contract-test-link-key";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn schemathesis() -> String {
    std::env::var("SCHEMATHESIS").unwrap_or_else(|_| "/var/tmp/subsave-venv/bin/st".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_against_a_live_daemon() {
    let st = schemathesis();
    assert!(
        std::path::Path::new(&st).exists(),
        "schemathesis is required for this test and is not at {st}: install it with `python3 -m venv /var/tmp/subsave-venv && /var/tmp/subsave-venv/bin/pip install schemathesis` (bash .ci/run does), or set SCHEMATHESIS"
    );
    let db = TestDb::new(Backend::Postgres).await;
    // Some objects to find, besides the ones schemathesis makes: one with id 1 in every list
    // (a customer, a subscription, its first order with its payment and messages, a coupon),
    // which pages start after (tests/contract/schemathesis.toml).
    let seeded = at("2026-12-01T10:00:00Z");
    let customer = db
        .customer("ada@example.com", "Europe/Berlin", Some("DE"), seeded)
        .await;
    db.subscribe(&customer, "3-pack", Start::Now, None, seeded)
        .await;
    let billed = db.engine(CatchUp::Latest, 10).sweep(seeded).await.unwrap();
    assert_eq!(billed.orders, 1);
    let app = subsave::app::App::new(
        db.store.clone(),
        std::sync::Arc::new(common::pages::settings(&db, common::pages::KEY_NEW)),
        std::sync::Arc::new(subsave::clock::FixedClock(seeded)),
    );
    subsave::app::coupons::create(
        &app,
        subsave::app::coupons::CouponInput {
            code: "WELCOME10".into(),
            value: subsave::core::pricing::CouponValue::Percent(
                subsave::core::money::BasisPoints::new(1000).unwrap(),
            ),
            duration: subsave::core::model::CouponDuration::Once,
            plan: None,
            expires: None,
            max_redemptions: None,
        },
    )
    .await
    .unwrap();
    let dir = std::env::temp_dir().join(format!("subsave-contract-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (http, web) = (free_port(), free_port());
    let env = [
        ("SUBSAVE_DATABASE__URL", db.url.clone()),
        ("SUBSAVE_HTTP__LISTEN", format!("127.0.0.1:{http}")),
        ("SUBSAVE_WEB__LISTEN", format!("127.0.0.1:{web}")),
        ("SUBSAVE_WEB__LINK_KEYS", LINK_KEYS.into()),
        ("SUBSAVE_WEB__REQUESTS_PER_MINUTE", "1000000".into()),
        ("SUBSAVE_API__REQUESTS_PER_MINUTE", "1000000".into()),
        ("SUBSAVE_MAIL__TRANSPORT", "log".into()),
        ("RUST_LOG", "info".into()),
    ];
    let subsave = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_subsave"));
        cmd.args(args).current_dir(&dir);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        cmd
    };
    let created = subsave(&[
        "api-keys", "create", "--name", "fuzz", "--scope", "admin", "--json",
    ])
    .output()
    .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let key: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let key = key["key"].as_str().unwrap().to_owned();
    let log = std::fs::File::create(dir.join("run.log")).unwrap();
    let mut daemon = subsave(&["run"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{web}");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if client
            .get(format!("{base}/v1/openapi.json"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "subsave run did not serve /v1/openapi.json");

    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/contract/schemathesis.toml"
    );
    let run = Command::new(&st)
        .args([
            "--config-file",
            config,
            "run",
            &format!("{base}/v1/openapi.json"),
        ])
        .args([
            "--checks",
            "all",
            "--max-examples",
            "40",
            "--workers",
            "2",
            "--seed",
            "20261202",
        ])
        .args(["--generation-database", "none"])
        .arg("-H")
        .arg(format!("Authorization: Bearer {key}"))
        .current_dir(&dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("schemathesis runs");
    let _ = daemon.kill();
    let _ = daemon.wait();
    let report = String::from_utf8_lossy(&run.stdout);
    println!("{report}");
    let server_log = std::fs::read_to_string(dir.join("run.log")).unwrap_or_default();
    assert!(
        run.status.success(),
        "schemathesis found failures:\n{report}\n{}\nsubsave's log:\n{server_log}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(report.contains("passed"), "{report}");
    assert!(
        server_log.contains("api request") && server_log.contains("key=\"fuzz\""),
        "each request is logged with its key's name"
    );
    assert!(!server_log.contains(&key), "the API key reached the log");
    let _ = std::fs::remove_dir_all(&dir);
}
