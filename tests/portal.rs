//! The customer portal's operator side on both backends, through the real binary: a cancelled
//! subscription restarted with `subs restart` within `web.restart_days`, and refused (exit 2,
//! nothing changed) when it is not cancelled or the window has ended.

mod common;

use chrono::{DateTime, TimeDelta, Utc};
use common::{Backend, TestDb, at, subsave_stdout};

fn now() -> DateTime<Utc> {
    at("2026-12-02T12:00:00Z")
}

/// `subsave --now AT ARGS` on `db`, expected to be refused: its standard error.
fn refused(db: &TestDb, at: DateTime<Utc>, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_subsave"))
        .arg("--now")
        .arg(at.to_rfc3339())
        .args(args)
        .env("SUBSAVE_DATABASE__URL", &db.url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn subs_restart_works_within_the_window_only(backend: Backend) {
    let db = TestDb::new(backend).await;
    let [sub, late] = db.subscribed_to(["3-pack", "1-pack"], now()).await;
    let (id, late_id) = (sub.id.to_string(), late.id.to_string());
    let stderr = refused(&db, now(), &["subs", "restart", &id]);
    assert!(stderr.contains("it is active, not cancelled"), "{stderr}");
    let at_now = now().to_rfc3339();
    for id in [&id, &late_id] {
        subsave_stdout(
            &db,
            &["--now", &at_now, "subs", "cancel", id, "--reason", "moving"],
            &[],
        );
    }

    let later = now() + TimeDelta::days(90);
    let out = subsave_stdout(
        &db,
        &["--now", &later.to_rfc3339(), "subs", "restart", &id],
        &[],
    );
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.starts_with(&format!(
            "subscription {id}: active, next renewal 2027-03-02T13:00"
        )),
        "{out}"
    );
    let after = db.store.subscription(sub.id).await.unwrap().unwrap();
    assert_eq!(after.next_renewal_at, Some(later), "due at once");
    let consents = |id: i64, actor: &str| {
        format!(
            "SELECT COUNT(*) FROM consents WHERE subscription_id = {id} AND actor = '{actor}' AND channel = '{actor}'"
        )
    };
    assert_eq!(db.scalar(&consents(sub.id, "cli")).await, 1);
    let stderr = refused(&db, later, &["subs", "restart", &id]);
    assert!(stderr.contains("it is active, not cancelled"), "{stderr}");

    let past = now() + TimeDelta::days(90) + TimeDelta::seconds(1);
    let before = db.store.subscription(late.id).await.unwrap().unwrap();
    let stderr = refused(&db, past, &["subs", "restart", &late_id]);
    assert!(
        stderr.contains("it was cancelled on 2026-12-02, and it could be restarted until 2027-03-02 (90 days); subscribe again from the storefront"),
        "{stderr}"
    );
    assert_eq!(
        db.store.subscription(late.id).await.unwrap().unwrap(),
        before
    );
    assert_eq!(db.scalar(&consents(late.id, "cli")).await, 0);
}

on_both_backends!(subs_restart_works_within_the_window_only);
