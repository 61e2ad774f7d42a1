//! Finance: exports that parse and add up, reports that equal the exports, a forecast that
//! equals what the engine then bills, and an audit that catches a tampered ledger.

mod common;

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate, TimeDelta};
use common::{Backend, TestDb, at};
use subsave::core::lifecycle::{self, Operation, Start};
use subsave::core::model::{Actor, CouponDuration, NewCoupon};
use subsave::core::money::{BasisPoints, Currency};
use subsave::core::pricing::CouponValue;
use subsave::core::renewal::CatchUp;
use subsave::finance::{self, EXPORT_COLUMNS, RevenueBy};
use subsave::store::FinanceOrder;

on_both_backends!(
    the_export_parses_and_adds_up_to_the_database,
    revenue_reports_equal_the_export_to_the_cent,
    the_forecast_equals_what_the_engine_bills,
    the_audit_passes_a_sound_ledger_and_names_a_tampered_order,
    billing_dates_and_tax_columns_agree_on_both_backends,
    report_metrics_agrees_with_report_revenue_and_the_hand_computed_figures,
);

/// A small shop billed over three months: plans, regions (exclusive and inclusive tax),
/// coupons, loyalty, a skip and a pause.
async fn shop(backend: Backend) -> TestDb {
    let db = TestDb::new(backend).await;
    let start = at("2026-01-01T00:00:00Z");
    db.store
        .create_coupon(
            &NewCoupon {
                code: "TEN".into(),
                currency: Currency::Usd,
                value: CouponValue::Percent(BasisPoints::new(1000).unwrap()),
                duration: CouponDuration::Repeating(2),
                plan: None,
                expires_at: None,
                max_redemptions: None,
            },
            start,
        )
        .await
        .unwrap();
    let places = [
        ("America/New_York", Some("US-NY")),
        ("Europe/Berlin", Some("DE")),
        ("America/Los_Angeles", Some("US-CA")),
        ("Asia/Tokyo", None),
    ];
    let plans = ["1-pack", "2-pack", "3-pack", "6-pack"];
    for i in 0..16usize {
        let (tz, region) = places[i % 4];
        let c = db
            .customer(&format!("f{i}@example.com"), tz, region, start)
            .await;
        let first = NaiveDate::from_ymd_opt(2026, 1, 2 + (i as u32 % 20)).unwrap();
        let mut new = lifecycle::new_subscription(
            &db.catalog,
            &c,
            plans[(i / 4) % 4],
            1,
            Some("1 month".parse().unwrap()).filter(|_| i % 4 == 0 && (i / 4) % 4 == 0),
            Start::FirstRenewalOn(first),
            "09:00".parse().unwrap(),
            start,
        )
        .unwrap();
        new.coupon_code = (i % 3 == 0).then(|| "TEN".to_owned());
        db.store
            .create_subscription(&new, &db.catalog, &Actor("test".into()), start)
            .await
            .unwrap();
    }
    let catalog = db.catalog.clone();
    let engine = db.engine(CatchUp::Latest, 7);
    for day in 0..92u64 {
        let now = start.checked_add_days(Days::new(day)).unwrap();
        if day == 10 {
            db.store
                .transition(2, &|s, c| {
                    lifecycle::apply(s, c, &Operation::Skip, &catalog, &Actor("t".into()), now)
                })
                .await
                .unwrap();
        }
        engine.sweep(now).await.unwrap();
    }
    db
}

async fn export_rows(db: &TestDb, from: &str, to: &str) -> Vec<FinanceOrder> {
    let mut rows = Vec::new();
    let mut sink = |row: FinanceOrder| {
        rows.push(row);
        Ok(())
    };
    db.store
        .export_orders(from.parse().unwrap(), to.parse().unwrap(), &mut sink)
        .await
        .unwrap();
    rows
}

async fn the_export_parses_and_adds_up_to_the_database(backend: Backend) {
    let db = shop(backend).await;
    let rows = export_rows(&db, "2026-01-01", "2026-12-31").await;
    assert!(rows.len() > 20, "{} orders", rows.len());
    // CSV through the CLI's own record format, read back with a standard CSV reader.
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(EXPORT_COLUMNS).unwrap();
    for row in &rows {
        writer.write_record(finance::export_record(row)).unwrap();
    }
    let bytes = writer.into_inner().unwrap();
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header, EXPORT_COLUMNS, "the header is stable");
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(
        records.len() as i64,
        db.scalar("SELECT COUNT(*) FROM orders").await
    );
    let column = |name: &str| EXPORT_COLUMNS.iter().position(|c| *c == name).unwrap();
    let sum = |name: &str| {
        records
            .iter()
            .map(|r| common::cents(&r[column(name)]))
            .sum::<i64>()
    };
    assert_eq!(
        sum("total"),
        db.scalar("SELECT CAST(SUM(total_minor) AS BIGINT) FROM orders")
            .await
    );
    assert_eq!(
        sum("subtotal"),
        db.scalar(
            "SELECT CAST(SUM(amount_minor) AS BIGINT) FROM order_lines WHERE kind = 'subtotal'"
        )
        .await
    );
    assert_eq!(-sum("coupon_discount"), db.scalar("SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM order_lines WHERE kind = 'coupon'").await);
    assert_eq!(
        sum("shipping"),
        db.scalar(
            "SELECT CAST(SUM(amount_minor) AS BIGINT) FROM order_lines WHERE kind = 'shipping'"
        )
        .await
    );
    // JSON lines carry the same values.
    for (row, record) in rows.iter().zip(&records) {
        let json = finance::export_json(row);
        assert_eq!(json["total"], record[column("total")]);
        assert_eq!(json["order_number"], record[column("order_number")]);
        let line = serde_json::to_string(&json).unwrap();
        assert!(!line.contains('\n'));
    }
    // A narrower period exports only its billing dates.
    let january = export_rows(&db, "2026-01-01", "2026-01-31").await;
    assert!(!january.is_empty() && january.len() < rows.len());
    assert!(
        january
            .iter()
            .all(|r| r.billing_date.format("%Y-%m").to_string() == "2026-01")
    );
}

async fn revenue_reports_equal_the_export_to_the_cent(backend: Backend) {
    let db = shop(backend).await;
    let rows = export_rows(&db, "2026-01-01", "2026-12-31").await;
    for (by, key) in [
        (
            RevenueBy::Month,
            Box::new(|r: &FinanceOrder| r.billing_date.format("%Y-%m").to_string())
                as Box<dyn Fn(&FinanceOrder) -> String>,
        ),
        (RevenueBy::Plan, Box::new(|r: &FinanceOrder| r.plan.clone())),
        (
            RevenueBy::Region,
            Box::new(|r: &FinanceOrder| r.tax_region.clone().unwrap_or_else(|| "(none)".into())),
        ),
    ] {
        let report = finance::revenue(
            db.store.as_ref(),
            "2026-01-01".parse().unwrap(),
            "2026-12-31".parse().unwrap(),
            by,
        )
        .await
        .unwrap();
        let mut expected: BTreeMap<String, (u64, i64, i64)> = BTreeMap::new();
        for r in &rows {
            let e = expected.entry(key(r)).or_default();
            e.0 += 1;
            e.1 += r.total_minor;
            e.2 += r.subtotal_minor;
        }
        let got: BTreeMap<String, (u64, i64, i64)> = report
            .iter()
            .map(|((group, _), t)| (group.clone(), (t.orders, t.net_minor, t.gross_minor)))
            .collect();
        assert_eq!(got, expected, "{by:?}");
        for t in report.values() {
            assert_eq!(
                t.net_minor,
                t.gross_minor
                    - t.subscribe_and_save_discount_minor
                    - t.loyalty_discount_minor
                    - t.coupon_discount_minor
                    + t.shipping_minor
                    + t.tax_added_minor,
                "net = gross − discounts + shipping + tax added"
            );
        }
    }
    // The database view agrees too (month × plan × currency).
    let view_total = db
        .scalar("SELECT CAST(SUM(net_minor) AS BIGINT) FROM finance_revenue_monthly")
        .await;
    assert_eq!(view_total, rows.iter().map(|r| r.total_minor).sum::<i64>());
}

async fn the_forecast_equals_what_the_engine_bills(backend: Backend) {
    let db = shop(backend).await;
    // Pause one subscription until mid-horizon: the forecast must resume it when the engine would.
    let now = at("2026-04-02T00:00:00Z");
    let catalog = db.catalog.clone();
    let pause = Operation::Pause {
        until: Some(at("2026-04-20T00:00:00Z")),
    };
    db.store
        .transition(3, &|s, c| {
            lifecycle::apply(s, c, &pause, &catalog, &Actor("t".into()), now)
        })
        .await
        .unwrap();
    let weeks = finance::forecast(db.store.as_ref(), &db.catalog, CatchUp::Latest, now, 42)
        .await
        .unwrap();
    let mut predicted: Vec<(i64, u32)> = weeks.iter().flat_map(|w| w.cycles.clone()).collect();
    predicted.sort();
    let predicted_revenue: i64 = weeks.iter().map(|w| w.revenue_minor).sum();
    assert!(predicted.len() > 10, "{}", predicted.len());

    let before = db.scalar("SELECT COUNT(*) FROM orders").await;
    let engine = db.engine(CatchUp::Latest, 7);
    let mut t = now;
    while t < now + TimeDelta::days(42) {
        engine.sweep(t).await.unwrap();
        t += TimeDelta::hours(6);
    }
    let orders = db
        .store
        .orders(&subsave::store::OrderFilter {
            limit: 100_000,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut billed: Vec<(i64, u32)> = orders
        .iter()
        .filter(|o| o.scheduled_for >= now && o.scheduled_for < now + TimeDelta::days(42))
        .map(|o| (o.subscription_id, o.cycle))
        .collect();
    billed.sort();
    assert_eq!(
        billed.len() as i64,
        db.scalar("SELECT COUNT(*) FROM orders").await - before
    );
    assert_eq!(
        predicted, billed,
        "the forecast's renewals are the engine's"
    );
    let billed_revenue: i64 = orders
        .iter()
        .filter(|o| o.scheduled_for >= now && o.scheduled_for < now + TimeDelta::days(42))
        .map(|o| o.total.minor())
        .sum();
    assert_eq!(predicted_revenue, billed_revenue, "to the cent");
}

async fn the_audit_passes_a_sound_ledger_and_names_a_tampered_order(backend: Backend) {
    let db = shop(backend).await;
    assert_eq!(
        finance::audit(
            db.store.as_ref(),
            &db.catalog,
            100,
            chrono::DateTime::<chrono::Utc>::UNIX_EPOCH
        )
        .await
        .unwrap(),
        vec![]
    );
    let order_id = db.scalar("SELECT MIN(id) FROM orders").await;
    let tamper = match backend {
        Backend::Postgres => format!(
            "ALTER TABLE order_lines DISABLE TRIGGER order_lines_immutable; \
             UPDATE order_lines SET amount_minor = amount_minor + 1 WHERE order_id = {order_id} AND position = 0; \
             ALTER TABLE order_lines ENABLE TRIGGER order_lines_immutable;"
        ),
        Backend::Sqlite => format!(
            "DROP TRIGGER order_lines_no_update; \
             UPDATE order_lines SET amount_minor = amount_minor + 1 WHERE order_id = {order_id} AND position = 0;"
        ),
    };
    db.execute(&tamper).await.unwrap();
    let findings = finance::audit(
        db.store.as_ref(),
        &db.catalog,
        100,
        chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
    )
    .await
    .unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(findings[0].check.contains("do not sum"));
    let number = db
        .store
        .orders(&subsave::store::OrderFilter {
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap()[0]
        .order_number
        .clone();
    assert_eq!(findings[0].offenders, [number]);
}

/// An order's billing date is fixed when it is written, in the finance time zone, and both
/// backends book it on the same day; tax added and included, the rate and revenue net of tax
/// stand in their own columns and add up.
async fn billing_dates_and_tax_columns_agree_on_both_backends(backend: Backend) {
    let db = TestDb::new(backend).await;
    let created = at("2026-01-01T00:00:00Z");
    // Billed at 22:00 New York on 31 December: 03:00 UTC on 1 January.
    let due = at("2027-01-01T03:00:00Z");
    for (i, region) in [Some("US-CA"), Some("DE"), None].into_iter().enumerate() {
        let c = db
            .customer(
                &format!("b{i}@example.com"),
                "America/New_York",
                region,
                created,
            )
            .await;
        let new = lifecycle::new_subscription(
            &db.catalog,
            &c,
            "3-pack",
            1,
            None,
            Start::FirstRenewalOn(NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()),
            "22:00".parse().unwrap(),
            created,
        )
        .unwrap();
        assert_eq!(new.next_renewal_at, due);
        db.store
            .create_subscription(&new, &db.catalog, &Actor("test".into()), created)
            .await
            .unwrap();
    }
    db.engine(CatchUp::Latest, 10)
        .with_billing_time_zone("America/New_York".parse().unwrap())
        .sweep(due)
        .await
        .unwrap();
    let mut rows = Vec::new();
    let mut sink = |row: FinanceOrder| {
        rows.push(row);
        Ok(())
    };
    db.store
        .export_orders(
            NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            NaiveDate::from_ymd_opt(2027, 1, 31).unwrap(),
            &mut sink,
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    for row in &rows {
        assert_eq!(
            row.billing_date,
            NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
            "booked in New York, not UTC"
        );
        assert_eq!(
            row.net_of_tax_minor,
            row.total_minor - row.tax_added_minor - row.tax_included_minor
        );
        assert_eq!(row.tax_minor, row.tax_added_minor + row.tax_included_minor);
    }
    let by_region = |code: Option<&str>| {
        rows.iter()
            .find(|r| r.tax_region.as_deref() == code)
            .unwrap()
    };
    let california = by_region(Some("US-CA"));
    assert_eq!(california.tax_rate_bp, Some(725));
    assert!(california.tax_added_minor > 0 && california.tax_included_minor == 0);
    let germany = by_region(Some("DE"));
    assert_eq!(germany.tax_rate_bp, Some(1900));
    assert!(germany.tax_included_minor > 0 && germany.tax_added_minor == 0);
    let untaxed = by_region(None);
    assert_eq!(untaxed.tax_rate_bp, None);
    assert_eq!(untaxed.net_of_tax_minor, untaxed.total_minor);
    // The revenue report carries the same net of tax.
    let report = finance::revenue(
        db.store.as_ref(),
        NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        NaiveDate::from_ymd_opt(2027, 1, 31).unwrap(),
        RevenueBy::Month,
    )
    .await
    .unwrap();
    let december = &report[&("2026-12".to_owned(), "USD".to_owned())];
    assert_eq!(
        december.net_of_tax_minor,
        rows.iter().map(|r| r.net_of_tax_minor).sum::<i64>()
    );
}

/// docs/finance.md's read-only role, created by its SQL block as written, reads every finance
/// view and nothing underneath them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_finance_role_reads_every_view_and_no_table() {
    use sqlx::Connection;
    let db = shop(Backend::Postgres).await;
    let docs = include_str!("../docs/finance.md");
    let section = docs
        .split("## A read-only role for finance (PostgreSQL)")
        .nth(1)
        .expect("docs/finance.md documents the role");
    let block = section
        .split("```sql")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the role's SQL block");
    let role = format!("finance_reader_{}", std::process::id());
    let database = db.url.rsplit('/').next().unwrap().to_owned();
    let sql = block
        .replace("finance_reader", &role)
        .replace("DATABASE subsave", &format!("DATABASE {database}"))
        .replace("'…'", "'reader-password'");
    db.execute(&sql).await.unwrap();
    let reader_url = db
        .url
        .replacen("postgres@", &format!("{role}:reader-password@"), 1);
    let mut reader = sqlx::PgConnection::connect(&reader_url).await.unwrap();
    for view in [
        "finance_orders",
        "finance_order_adjustments",
        "finance_revenue_monthly",
        "finance_payments",
        "finance_credit_notes",
    ] {
        let read: Result<i64, _> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {view}")))
                .fetch_one(&mut reader)
                .await;
        assert!(read.is_ok(), "{role} cannot read {view}: {read:?}");
    }
    let table: Result<i64, _> = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
        .fetch_one(&mut reader)
        .await;
    assert!(table.is_err(), "the finance role reads the orders table");
    reader.close().await.unwrap();
    db.execute(&format!("DROP OWNED BY {role}; DROP ROLE {role}"))
        .await
        .unwrap();
}

/// `subsave --now 2026-03-31T12:00:00Z ARGS` against the test database: its standard output.
fn subsave_cli(db: &TestDb, args: &[&str]) -> Vec<u8> {
    common::subsave_stdout(
        db,
        &[&["--now", "2026-03-31T12:00:00Z"][..], args].concat(),
        &[],
    )
}

/// [`subsave_cli`]'s JSON, parsed.
fn subsave_json(db: &TestDb, args: &[&str]) -> serde_json::Value {
    serde_json::from_slice(&subsave_cli(db, args)).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Four monthly 1-pack subscriptions from January 5 (one taxed on top, in California), billed
/// by the engine through March: one cancelled in February after its order, one doubled in
/// February (billed double from March), one paused in March after its order.
///
/// By hand: a 1-pack is 49.99 less 10 % subscribe-and-save (5.00) = 44.99, plus 5.95
/// shipping: 50.94 net of tax. Two packs: 99.98 less 10.00 = 89.98, shipped free (over 75.00).
async fn report_metrics_agrees_with_report_revenue_and_the_hand_computed_figures(backend: Backend) {
    let db = TestDb::new(backend).await;
    let start = at("2026-01-05T09:00:00Z");
    let mut subs = Vec::new();
    for (i, (tz, region)) in [
        ("UTC", None),
        ("America/Los_Angeles", Some("US-CA")),
        ("UTC", None),
        ("UTC", None),
    ]
    .into_iter()
    .enumerate()
    {
        let c = db
            .customer(&format!("m{i}@example.com"), tz, region, start)
            .await;
        let new = lifecycle::new_subscription(
            &db.catalog,
            &c,
            "1-pack",
            1,
            Some("1 month".parse().unwrap()),
            Start::Now,
            "09:00".parse().unwrap(),
            start,
        )
        .unwrap();
        let sub = db
            .store
            .create_subscription(&new, &db.catalog, &Actor("test".into()), start)
            .await
            .unwrap();
        subs.push(sub.id);
    }
    let catalog = db.catalog.clone();
    let engine = db.engine(CatchUp::Latest, 10);
    let operate = |id: i64, operation: Operation, now| {
        let catalog = catalog.clone();
        let store = db.store.clone();
        async move {
            store
                .transition(id, &|s, c| {
                    lifecycle::apply(s, c, &operation, &catalog, &Actor::cli(), now)
                })
                .await
                .unwrap();
        }
    };
    for day in 0..86u64 {
        let now = start.checked_add_days(Days::new(day)).unwrap() + TimeDelta::hours(1);
        match now.format("%m-%d").to_string().as_str() {
            "02-15" => {
                let double = Operation::Change {
                    plan: None,
                    quantity: Some(2),
                    interval: None,
                    ship_to: None,
                };
                operate(subs[0], double, now).await;
            }
            "02-20" => {
                let cancel = Operation::Cancel {
                    reason: "too expensive".into(),
                };
                operate(subs[3], cancel, now).await;
            }
            "03-10" => operate(subs[2], Operation::Pause { until: None }, now).await,
            _ => {}
        }
        engine.sweep(now).await.unwrap();
    }
    assert_eq!(db.scalar("SELECT COUNT(*) FROM orders").await, 11);

    let period = ["--from", "2026-01-01", "--to", "2026-03-31"];
    let metrics_args =
        |extra: &[&'static str]| [&["report", "metrics"][..], &period, extra].concat();
    let metrics = subsave_json(&db, &metrics_args(&["--json"]));
    let revenue = subsave_json(
        &db,
        &[&["report", "revenue"][..], &period, &["--json"]].concat(),
    );
    let net_of_tax = |month: &str| {
        revenue
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["group"] == month && g["currency"] == "USD")
            .map(|g| g["totals"]["net_of_tax_minor"].as_i64().unwrap())
            .unwrap()
    };
    let month = |m: &str| {
        metrics["months"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["month"] == m && r["currency"] == "USD")
            .unwrap()
            .clone()
    };
    let figures = |m: &str| {
        let r = month(m);
        [
            "mrr_start_minor",
            "new_minor",
            "expansion_minor",
            "contraction_minor",
            "churned_minor",
            "reactivated_minor",
            "mrr_end_minor",
        ]
        .map(|k| r[k].as_i64().unwrap())
    };
    // January: four new subscriptions of 50.94, all billed in January.
    assert_eq!(figures("2026-01"), [0, 20_376, 0, 0, 0, 0, 20_376]);
    assert_eq!(
        month("2026-01")["mrr_end_minor"].as_i64().unwrap(),
        net_of_tax("2026-01")
    );
    assert_eq!(month("2026-01")["arps_minor"], 5094);
    // February: the cancelled subscription's 50.94 churned (1 of 4 customers, 25 %); every
    // February order but the cancelled one's is MRR.
    assert_eq!(figures("2026-02"), [20_376, 0, 0, 0, 5094, 0, 15_282]);
    assert_eq!(net_of_tax("2026-02") - 5094, 15_282);
    assert_eq!(
        (
            month("2026-02")["logo_churn_bp"].as_i64(),
            month("2026-02")["revenue_churn_bp"].as_i64()
        ),
        (Some(2500), Some(2500))
    );
    // March: the doubled one adds 89.98 − 50.94 = 39.04; the paused one's 50.94 churned.
    assert_eq!(figures("2026-03"), [15_282, 0, 3904, 0, 5094, 0, 14_092]);
    assert_eq!(net_of_tax("2026-03") - 5094, 14_092);
    assert_eq!(
        metrics["cohorts"][0]["retained"],
        serde_json::json!([4, 3, 2])
    );
    assert_eq!(
        metrics["cancellation_reasons"],
        serde_json::json!([{ "reason": "too expensive", "cancellations": 1 }])
    );
    assert_eq!(
        metrics["dunning"],
        serde_json::json!([]),
        "every order is external"
    );
    // The next 90 days from March 31: the doubled subscription's 2 packs and the other one's
    // 1 pack on April 5, May 5 and June 5 — what the forecast replay says too.
    assert_eq!(
        metrics["units_forecast"],
        serde_json::json!({ "1-pack": 9 })
    );
    let weeks = finance::forecast(
        db.store.as_ref(),
        &db.catalog,
        CatchUp::Latest,
        at("2026-03-31T12:00:00Z"),
        90,
    )
    .await
    .unwrap();
    let packs: i64 = weeks.iter().flat_map(|w| w.packs_by_plan.values()).sum();
    assert_eq!(packs, 9);

    // CSV: one row per figure, read back with a standard reader.
    let csv_out = subsave_cli(&db, &metrics_args(&["--format", "csv"]));
    let (header, rows) = common::csv_rows(&csv_out);
    assert_eq!(header, ["section", "period", "currency", "name", "value"]);
    assert!(
        rows.contains(
            &["mrr", "2026-03", "USD", "mrr_end", "140.92"]
                .map(str::to_owned)
                .to_vec()
        )
    );
    assert!(
        rows.contains(
            &["mrr", "2026-02", "USD", "logo_churn_percent", "25.00"]
                .map(str::to_owned)
                .to_vec()
        )
    );
}
