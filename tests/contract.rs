//! The API's contract, fuzzed: schemathesis (PyPI) against a live `subsave run` on PostgreSQL,
//! with every one of its checks (no server error, responses and status codes as documented,
//! schema-invalid requests refused, schema-valid ones accepted or refused by a business rule,
//! authentication not ignored), and every write operation (each POST and PATCH the OpenAPI
//! document names) answering 2xx at least once, so the fuzzing reaches the use cases behind
//! the writes rather than stopping at their refusals. `tests/contract/hooks.py` gives each
//! request a fresh Idempotency-Key (and creates unique emails and coupon codes) and records each
//! response's status. `.ci/run` installs schemathesis in a venv; this test fails loudly when it
//! is missing (set SCHEMATHESIS to its `st` program elsewhere).

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Backend, TestDb, at};
use subsave::core::lifecycle::Start;
use subsave::core::pricing::CouponValue;
use subsave::core::renewal::CatchUp;
use subsave::store::Delivery;

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
    // Some objects to find, besides the ones schemathesis makes, named in the dictionaries of
    // tests/contract/schemathesis.toml: two customers (addresses no example or document uses),
    // each with a subscription whose first order is paid, coupons WELCOME10 and SPRING5, and
    // their messages failed (so that retrying one succeeds). Each list has an object with id 1,
    // which pages start after.
    let seeded = at("2026-12-01T10:00:00Z");
    for (n, (tz, region, plan)) in [
        ("Europe/Berlin", "DE", "3-pack"),
        ("America/New_York", "US-CA", "1-pack"),
    ]
    .into_iter()
    .enumerate()
    {
        let customer = db
            .customer(
                &format!("contract-seed-{}@example.net", n + 1),
                tz,
                Some(region),
                seeded,
            )
            .await;
        db.subscribe(&customer, plan, Start::Now, None, seeded)
            .await;
    }
    let billed = db.engine(CatchUp::Latest, 10).sweep(seeded).await.unwrap();
    assert_eq!(billed.orders, 2);
    let numbers: Vec<String> = db
        .store
        .orders(&subsave::store::OrderFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.order_number)
        .collect();
    for number in ["BB-0000001-000", "BB-0000002-000"] {
        assert!(
            numbers.iter().any(|n| n == number),
            "schemathesis.toml names order {number}; the seed made {numbers:?}"
        );
    }
    let claimed = db
        .store
        .claim_messages(seeded, seeded + chrono::TimeDelta::minutes(5), 100)
        .await
        .unwrap();
    assert!(claimed.len() >= 4, "{claimed:?}");
    let refused: Vec<_> = claimed
        .into_iter()
        .map(|m| (m, Delivery::Failed("550 mailbox unavailable".into())))
        .collect();
    db.store.finish_messages(&refused, seeded).await.unwrap();
    let app = subsave::app::App::new(
        db.store.clone(),
        std::sync::Arc::new(common::pages::settings(&db, common::pages::KEY_NEW)),
        std::sync::Arc::new(subsave::clock::FixedClock(seeded)),
    );
    // The first customer's address is address 1, which the addresses list pages start after.
    subsave::app::addresses::add(
        &app,
        subsave::app::addresses::AddressInput {
            customer: subsave::app::CustomerRef::Id(1),
            address: subsave::core::address::RawAddress {
                name: "Contract Seed".into(),
                line1: "Unter den Linden 1".into(),
                city: "Berlin".into(),
                postal_code: Some("10117".into()),
                country: "DE".into(),
                ..Default::default()
            },
            make_default: false,
        },
        subsave::app::idempotency::Commit::Plain,
    )
    .await
    .unwrap();
    for (code, value) in [
        (
            "WELCOME10",
            CouponValue::Percent(subsave::core::money::BasisPoints::new(1000).unwrap()),
        ),
        (
            "SPRING5",
            CouponValue::Amount(subsave::core::money::Money::from_minor(
                500,
                db.catalog.currency,
            )),
        ),
    ] {
        subsave::app::coupons::create(
            &app,
            subsave::app::coupons::CouponInput {
                code: code.into(),
                value,
                duration: subsave::core::model::CouponDuration::Once,
                plan: None,
                expires: None,
                max_redemptions: None,
            },
            subsave::app::idempotency::Commit::Plain,
        )
        .await
        .unwrap();
    }
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
    let mut document = None;
    for _ in 0..100 {
        if let Ok(response) = client.get(format!("{base}/v1/openapi.json")).send().await
            && response.status().is_success()
        {
            document = response.json::<serde_json::Value>().await.ok();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let document = document.expect("subsave run serves /v1/openapi.json");

    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/contract/schemathesis.toml"
    );
    let hooks = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/contract/hooks.py");
    let statuses = dir.join("statuses.txt");
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
            // One worker: the operations run in one order, so which seeded object an
            // earlier cancel or erasure took away is the same every run (with two, a loaded
            // machine reordered them and a write could go without its 2xx).
            "--workers",
            "1",
            "--seed",
            "20261202",
        ])
        .args(["--generation-database", "none"])
        .arg("-H")
        .arg(format!("Authorization: Bearer {key}"))
        .current_dir(&dir)
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_HOOKS", hooks)
        .env("SUBSAVE_CONTRACT_STATUSES", &statuses)
        .output()
        .expect("schemathesis runs");
    let _ = daemon.kill();
    let _ = daemon.wait();
    let report = String::from_utf8_lossy(&run.stdout);
    println!("{report}");
    // How often each write operation answered 2xx, as tests/contract/hooks.py recorded it
    // (each one the use case's own answer: every well-formed request had a fresh key, so none
    // is a replay).
    let answered = std::fs::read_to_string(&statuses).unwrap_or_default();
    let mut responses: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for line in answered.lines() {
        let mut fields = line.split(' ');
        if let (Some(method), Some(path), Some(status)) =
            (fields.next(), fields.next(), fields.next())
        {
            let (ok, all) = responses.entry(format!("{method} {path}")).or_default();
            *ok += usize::from(status.starts_with('2'));
            *all += 1;
        }
    }
    let writes = write_operations(&document);
    println!("2xx responses per write operation:");
    for operation in &writes {
        let (ok, all) = responses.get(operation).copied().unwrap_or_default();
        println!("  {operation:<42} {ok:>4} of {all:>4}");
    }
    let never: Vec<&String> = writes
        .iter()
        .filter(|op| responses.get(*op).is_none_or(|(ok, _)| *ok == 0))
        .collect();
    let server_log = std::fs::read_to_string(dir.join("run.log")).unwrap_or_default();
    assert!(
        run.status.success(),
        "schemathesis found failures:\n{report}\n{}\nsubsave's log:\n{server_log}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(report.contains("passed"), "{report}");
    assert!(writes.len() >= 10, "the document's writes: {writes:?}");
    assert!(
        never.is_empty(),
        "these write operations never answered 2xx, so their use cases went untested: {never:?} ({} responses recorded by tests/contract/hooks.py)",
        answered.lines().count()
    );
    assert!(
        server_log.contains("api request") && server_log.contains("key=\"fuzz\""),
        "each request is logged with its key's name"
    );
    assert!(!server_log.contains(&key), "the API key reached the log");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every POST and PATCH of the OpenAPI document, as `METHOD /path`.
fn write_operations(document: &serde_json::Value) -> Vec<String> {
    let mut writes = vec![];
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in ["post", "patch"] {
            if item.get(method).is_some() {
                writes.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    writes.sort();
    writes
}
