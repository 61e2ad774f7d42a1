//! Exactly once under concurrency: several engines, and several `subsave tick` processes,
//! sweeping one database at once produce exactly one order per due subscription.

mod common;

use std::process::Command;

use common::{Backend, TestDb, assert_billed_exactly_once, at, seed_due};
use subsave::core::renewal::CatchUp;
use subsave::engine::Engine;

const DUE: u32 = 2000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_engines_with_separate_pools_bill_2000_subscriptions_once() {
    let db = TestDb::new(Backend::Postgres).await;
    seed_due(&db, DUE).await;
    let now = at("2026-02-01T00:00:00Z");
    let mut handles = Vec::new();
    for _ in 0..4 {
        let engine = Engine::new(
            db.another_store().await,
            db.catalog.clone(),
            CatchUp::Latest,
            50,
        );
        handles.push(tokio::spawn(async move { engine.sweep(now).await }));
    }
    let mut per_engine = Vec::new();
    for handle in handles {
        per_engine.push(handle.await.unwrap().expect("sweep succeeds").orders);
    }
    println!("orders written per engine: {per_engine:?}");
    assert_eq!(per_engine.iter().sum::<usize>(), DUE as usize);
    assert_billed_exactly_once(&db, i64::from(DUE)).await;
}

fn tick_processes(db: &TestDb, count: usize) {
    let children: Vec<_> = (0..count)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_subsave"))
                .args(["--now", "2026-02-01T00:00:00Z", "tick", "--json"])
                .env("SUBSAVE_DATABASE__URL", &db.url)
                .env("SUBSAVE_ENGINE__BATCH_SIZE", "50")
                .env("RUST_LOG", "warn")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start subsave tick")
        })
        .collect();
    let mut total = 0;
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "tick failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        println!("tick process report: {report}");
        total += report["orders"].as_u64().unwrap();
    }
    assert_eq!(total, u64::from(DUE));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tick_processes_on_postgres_bill_2000_subscriptions_once() {
    let db = TestDb::new(Backend::Postgres).await;
    seed_due(&db, DUE).await;
    tick_processes(&db, 2);
    assert_billed_exactly_once(&db, i64::from(DUE)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tick_processes_on_sqlite_take_turns_and_bill_once() {
    let db = TestDb::new(Backend::Sqlite).await;
    seed_due(&db, DUE).await;
    tick_processes(&db, 2);
    assert_billed_exactly_once(&db, i64::from(DUE)).await;
}

/// Reminders queued by four engines at once: each (subscription, cycle, lead) once, and no
/// engine fails on another's reminder (a claim's NOT EXISTS can run on an older snapshot).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_engines_queue_each_reminder_once() {
    let db = TestDb::new(Backend::Postgres).await;
    common::seed_due_at(&db, DUE, at("2026-01-31T14:00:00Z")).await;
    let now = at("2026-01-28T00:00:00Z");
    let reminders = subsave::config::ReminderSettings {
        lead_days: vec![3],
        window: subsave::core::schedule::DeliveryWindow {
            start: "09:00".parse().unwrap(),
            end: "20:00".parse().unwrap(),
        },
    };
    let mut handles = Vec::new();
    for _ in 0..4 {
        let engine = Engine::new(
            db.another_store().await,
            db.catalog.clone(),
            CatchUp::Latest,
            25,
        )
        .with_reminders(reminders.clone());
        handles.push(tokio::spawn(async move { engine.sweep(now).await }));
    }
    for handle in handles {
        handle.await.unwrap().expect("no engine fails");
    }
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'renewal_reminder'")
            .await,
        i64::from(DUE)
    );
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM (SELECT subscription_id FROM outbox WHERE kind = 'renewal_reminder' GROUP BY 1 HAVING COUNT(*) > 1) x").await,
        0
    );
    assert_eq!(db.scalar("SELECT COUNT(*) FROM orders").await, 0);
}
