//! The `subsave` binary as operators run it: outputs, `--json` shapes, exit codes, and config
//! errors that name the file (or variable), the key and the value.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn subsave(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_subsave"));
    cmd.current_dir(dir).args(args).env("NO_COLOR", "1");
    // Start from a clean slate: no SUBSAVE_ variables leak in from the caller.
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("SUBSAVE_")) {
        cmd.env_remove(key);
    }
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.output().expect("the subsave binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("subsave-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn json(output: &Output) -> Value {
    assert!(output.status.success(), "stderr: {}", stderr(output));
    serde_json::from_slice(&output.stdout).expect("valid JSON on stdout")
}

#[test]
fn plans_lists_the_four_plans_with_prices() {
    let dir = temp_dir("plans");
    let out = subsave(&dir, &["plans"], &[]);
    assert!(out.status.success());
    let text = stdout(&out);
    for plan in ["1-pack", "2-pack", "3-pack", "6-pack"] {
        assert!(text.contains(plan), "{text}");
    }
    assert!(
        text.contains("134.99 USD") && text.contains("114.74 USD"),
        "{text}"
    );
    assert!(
        text.contains(
            "market EU (DE, FR): 1-pack 45.99 EUR, 2-pack 86.99 EUR, 3-pack 123.99 EUR, 6-pack 234.99 EUR"
        ),
        "the other markets' prices: {text}"
    );

    let rows = json(&subsave(&dir, &["plans", "--json"], &[]));
    let three = &rows[2];
    assert_eq!(three["plan"], "3-pack");
    assert_eq!(three["list_price"]["amount_minor"], 13499);
    assert_eq!(three["list_price"]["currency"], "USD");
    assert_eq!(three["subscribe_and_save_price"]["amount_minor"], 11474);
    assert_eq!(three["price_per_pack"]["amount_minor"], 3825);
    assert_eq!(three["default_interval"], "90 days");
}

#[test]
fn quote_is_itemized_and_sums_to_the_total() {
    let dir = temp_dir("quote");
    let q = json(&subsave(
        &dir,
        &["quote", "--plan", "3-pack", "--region", "US-CA", "--json"],
        &[],
    ));
    let amounts: Vec<i64> = q["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["amount"]["amount_minor"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, [13499, -2025, 0, 832]);
    assert_eq!(q["total"]["amount_minor"], 12306);
    assert_eq!(q["total"]["currency"], "USD");

    let q = json(&subsave(
        &dir,
        &[
            "quote",
            "--plan",
            "6-pack",
            "--quantity",
            "2",
            "--orders-so-far",
            "7",
            "--coupon-amount",
            "500",
            "--region",
            "DE",
            "--json",
        ],
        &[],
    ));
    let kinds: Vec<&str> = q["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "subtotal",
            "subscribe_and_save",
            "loyalty",
            "coupon",
            "shipping"
        ]
    );
    let sum: i64 = q["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["amount"]["amount_minor"].as_i64().unwrap())
        .sum();
    assert_eq!(sum, q["total"]["amount_minor"].as_i64().unwrap());
    // 509.98: cap 35 % = 178.49; S&S 102.00 + loyalty 51.00 leave 25.49 for the coupon.
    assert_eq!(q["lines"][3]["amount"]["amount_minor"], -2549);
    assert!(
        q["included_tax"]["amount"]["amount_minor"]
            .as_i64()
            .unwrap()
            > 0
    );
}

#[test]
fn quote_refuses_unknown_plans_and_regions_with_exit_2() {
    let dir = temp_dir("quote-bad");
    let out = subsave(&dir, &["quote", "--plan", "9-pack"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("\"9-pack\"")
            && stderr(&out).contains("1-pack, 2-pack, 3-pack, 6-pack")
    );
    let out = subsave(&dir, &["quote", "--plan", "1-pack", "--region", "XX"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("\"XX\""), "{}", stderr(&out));
    let out = subsave(
        &dir,
        &["quote", "--plan", "1-pack", "--coupon-amount", "1.234"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = subsave(
        &dir,
        &[
            "quote",
            "--plan",
            "1-pack",
            "--coupon-amount",
            "1",
            "--coupon-percent",
            "5",
        ],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "the two coupon kinds exclude each other"
    );
}

#[test]
fn quote_at_a_destination_uses_its_zone_and_region() {
    let dir = temp_dir("quote-country");
    let out = subsave(
        &dir,
        &["quote", "--plan", "1-pack", "--country", "de", "--json"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let quote = json(&out);
    // Germany is in the EU market: 45.99 EUR less 10 % is 41.39, under its 80.00: its 6.95
    // fee; 19 % VAT contained.
    let shipping = quote["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["kind"] == "shipping")
        .unwrap()["amount"]["amount_minor"]
        .clone();
    assert_eq!(
        (
            shipping,
            &quote["region"],
            &quote["total"]["amount_minor"],
            &quote["total"]["currency"]
        ),
        (
            serde_json::json!(695),
            &serde_json::json!("DE"),
            &serde_json::json!(4834),
            &serde_json::json!("EUR")
        )
    );
    let out = subsave(&dir, &["quote", "--plan", "1-pack", "--country", "GB"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--country GB: the shop does not ship to")
            && stderr(&out).contains("it ships to DE, FR, US"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn schedule_prints_month_end_renewals_local_and_utc() {
    let dir = temp_dir("schedule");
    let rows = json(&subsave(
        &dir,
        &[
            "schedule",
            "--anchor",
            "2026-01-31T09:00",
            "--tz",
            "Europe/Berlin",
            "--every",
            "1 month",
            "--count",
            "12",
            "--json",
        ],
        &[],
    ));
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 12);
    assert_eq!(rows[0]["local"], "2026-02-28T09:00:00+01:00");
    assert_eq!(rows[0]["utc"], "2026-02-28T08:00:00Z");
    assert_eq!(rows[1]["local"], "2026-03-31T09:00:00+02:00");
    assert_eq!(rows[1]["utc"], "2026-03-31T07:00:00Z");
    assert_eq!(rows[11]["local"], "2027-01-31T09:00:00+01:00");

    let out = subsave(
        &dir,
        &[
            "schedule",
            "--anchor",
            "2026-01-31T09:00",
            "--tz",
            "Mars/Base",
            "--every",
            "1 month",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("Mars/Base"));
}

#[test]
fn check_config_redacts_secrets_everywhere() {
    let dir = temp_dir("secrets");
    std::fs::write(dir.join("smtp-password"), "smtp-s3cret\n").unwrap();
    let env = [
        (
            "SUBSAVE_DATABASE__URL",
            "postgres://subsave:db-s3cret@127.0.0.1/subsave",
        ),
        ("SUBSAVE_DATABASE__PASSWORD", "other-s3cret"),
        ("SUBSAVE_MAIL__SMTP__PASSWORD_FILE", "smtp-password"),
    ];
    let out = subsave(&dir, &["check-config"], &env);
    assert!(
        stdout(&out).contains("(USD; market EU in EUR; plans 1-pack"),
        "the catalog's markets: {}",
        stdout(&out)
    );
    for args in [&["check-config"][..], &["check-config", "--json"][..]] {
        let out = subsave(&dir, args, &env);
        assert!(out.status.success(), "{}", stderr(&out));
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(!all.contains("s3cret"), "a secret leaked: {all}");
        assert!(all.contains("[redacted]"), "{all}");
        assert!(all.contains("postgres"), "{all}");
    }
    let settings = json(&subsave(&dir, &["check-config", "--json"], &env));
    assert_eq!(settings["database"]["backend"], "postgres");
    assert_eq!(settings["mail"]["smtp"]["password"], "[redacted]");
}

#[test]
fn environment_overrides_file_overrides_defaults() {
    let dir = temp_dir("layers");
    std::fs::write(
        dir.join("my.toml"),
        "[engine]\nbatch_size = 77\ntime_zone = \"Europe/Berlin\"\n",
    )
    .unwrap();
    let settings = json(&subsave(
        &dir,
        &["--config", "my.toml", "check-config", "--json"],
        &[("SUBSAVE_ENGINE__BATCH_SIZE", "99")],
    ));
    assert_eq!(settings["engine"]["batch_size"], 99, "env beats file");
    assert_eq!(
        settings["engine"]["time_zone"], "Europe/Berlin",
        "file beats defaults"
    );
    assert_eq!(
        settings["engine"]["sweep"], "* * * * *",
        "defaults fill the rest"
    );

    let via_env = json(&subsave(
        &dir,
        &["check-config", "--json"],
        &[("SUBSAVE_CONFIG", "my.toml")],
    ));
    assert_eq!(
        via_env["engine"]["batch_size"], 77,
        "SUBSAVE_CONFIG names the file"
    );
}

/// Each broken config gives one error line naming source, key and value, and exit code 2.
#[test]
fn broken_configs_name_file_key_and_value() {
    let dir = temp_dir("broken");
    let catalog =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/catalog.toml"))
            .unwrap();
    std::fs::write(
        dir.join("bad-catalog.toml"),
        catalog.replace("price = \"134.99\"", "price = \"4.999\""),
    )
    .unwrap();
    std::fs::write(
        dir.join("float-catalog.toml"),
        catalog.replace("price = \"134.99\"", "price = 134.99"),
    )
    .unwrap();
    let threshold = catalog
        .lines()
        .find(|l| l.starts_with("free_threshold"))
        .expect("the catalog has a free-shipping threshold");
    std::fs::write(
        dir.join("negative-threshold-catalog.toml"),
        catalog.replace(threshold, "free_threshold = \"-1.00\""),
    )
    .unwrap();
    std::fs::write(
        dir.join("unpriced-market-catalog.toml"),
        catalog.replace("6-pack = \"234.99\"\n", ""),
    )
    .unwrap();
    let cases: [(&str, &str, &[&str]); 11] = [
        (
            "unpriced-market.toml",
            "[catalog]\nfile = \"unpriced-market-catalog.toml\"\n",
            &[
                "unpriced-market-catalog.toml",
                "markets.EU.prices",
                "no price for plan 6-pack in EUR",
                "add 6-pack = \"…\" to [markets.EU.prices]",
            ],
        ),
        (
            "unknown-key.toml",
            "[database]\nurll = \"sqlite:x.db\"\n",
            &["unknown-key.toml", "database.urll", "unknown key"],
        ),
        (
            "bad-price.toml",
            "[catalog]\nfile = \"bad-catalog.toml\"\n",
            &["bad-catalog.toml", "plans.3-pack.price", "\"4.999\""],
        ),
        (
            "float-price.toml",
            "[catalog]\nfile = \"float-catalog.toml\"\n",
            &[
                "float-catalog.toml",
                "plans.3-pack.price",
                "134.99",
                "quoted",
            ],
        ),
        (
            "bad-tz.toml",
            "[engine]\ntime_zone = \"Mars/Olympus\"\n",
            &["bad-tz.toml", "engine.time_zone", "\"Mars/Olympus\""],
        ),
        (
            "bad-cron.toml",
            "[engine]\nsweep = \"*/5 * * *\"\n",
            &["bad-cron.toml", "engine.sweep", "\"*/5 * * *\""],
        ),
        (
            "bad-window.toml",
            "[reminders]\nwindow_start = \"21:00\"\n",
            &["reminders.window_end", "\"20:00\""],
        ),
        (
            "negative-threshold.toml",
            "[catalog]\nfile = \"negative-threshold-catalog.toml\"\n",
            &["shipping.free_threshold", "\"-1.00\"", "cannot be negative"],
        ),
        (
            "never-fires.toml",
            "[engine]\nsweep = \"0 0 30 2 *\"\n",
            &["engine.sweep", "never fires within a year"],
        ),
        (
            "lease-too-short.toml",
            "[mail.delivery]\nlease_secs = 60\nbatch_size = 32\nconcurrency = 4\n",
            &[
                "lease-too-short.toml",
                "mail.delivery.lease_secs",
                "must be more than the 240 s a claimed batch can take",
            ],
        ),
        (
            "no-retention-key.toml",
            "[outbox]\nretain = 3\n",
            &["outbox.retain", "unknown key"],
        ),
    ];
    for (file, text, expected) in cases {
        std::fs::write(dir.join(file), text).unwrap();
        let out = subsave(&dir, &["--config", file, "check-config"], &[]);
        assert_eq!(out.status.code(), Some(2), "{file}");
        let err = stderr(&out);
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        for needle in expected {
            assert!(err.contains(needle), "{file}: {needle} missing from: {err}");
        }
    }
    let out = subsave(
        &dir,
        &["check-config"],
        &[("SUBSAVE_ENGINE__SWEEP", "0 9 * * 8")],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("SUBSAVE_ENGINE__SWEEP") && err.contains("\"0 9 * * 8\""),
        "{err}"
    );

    let out = subsave(&dir, &["check-config"], &[("SUBSAVE_DATABASE__URLX", "1")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("SUBSAVE_DATABASE__URLX"),
        "{}",
        stderr(&out)
    );

    let out = subsave(&dir, &["--config", "missing.toml", "check-config"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.toml"));
}

#[test]
fn usage_errors_exit_2() {
    let dir = temp_dir("usage");
    assert_eq!(
        subsave(&dir, &["no-such-command"], &[]).status.code(),
        Some(2)
    );
    assert_eq!(subsave(&dir, &["quote"], &[]).status.code(), Some(2));
    assert_eq!(
        subsave(&dir, &["quote", "--plan", "1-pack", "--quantity", "0"], &[])
            .status
            .code(),
        Some(2)
    );
}

/// The README's walkthrough on the embedded default (SQLite in the current folder).
#[test]
fn newcomer_walkthrough_on_the_embedded_default() {
    let dir = temp_dir("walkthrough");
    let _ = std::fs::remove_file(dir.join("subsave.db"));
    let now = ["--now", "2026-11-26T15:00:00Z"];
    let run = |args: &[&str]| {
        let out = subsave(&dir, args, &[]);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    run(&[
        now[0],
        now[1],
        "customers",
        "add",
        "--email",
        "ada@example.com",
        "--name",
        "Ada Lovelace",
        "--tz",
        "America/New_York",
        "--region",
        "US-CA",
    ]);
    let created = run(&[
        now[0],
        now[1],
        "subs",
        "create",
        "--customer",
        "ada@example.com",
        "--plan",
        "3-pack",
    ]);
    assert!(
        created.contains("next renewal 2027-02-24T09:00:00-05:00 (cycle 1)"),
        "{created}"
    );
    // Three days before, the reminder is queued and sent, promising the price.
    let reminded = run(&["--now", "2027-02-21T15:00:00Z", "tick"]);
    assert!(reminded.contains("1 reminder(s)"), "{reminded}");
    let delivered = run(&["--now", "2027-02-21T15:00:00Z", "outbox", "deliver"]);
    assert!(delivered.contains("2 sent"), "{delivered}");
    let reminders: Value = serde_json::from_str(&run(&[
        "outbox",
        "list",
        "--kind",
        "renewal_reminder",
        "--json",
    ]))
    .unwrap();
    assert_eq!(reminders[0]["status"], "sent");
    let dry = run(&["--now", "2027-03-01T00:00:00Z", "tick", "--dry-run"]);
    assert!(
        dry.contains("BB-0000001-001") && dry.contains("nothing was changed"),
        "{dry}"
    );
    assert!(
        run(&["orders", "list"]).lines().count() == 1,
        "the dry run wrote nothing"
    );
    let tick = run(&["--now", "2027-03-01T00:00:00Z", "tick"]);
    assert!(tick.contains("1 order(s)"), "{tick}");
    let order = run(&["orders", "show", "BB-0000001-001"]);
    for expected in [
        "3-pack × 1 at 134.99",
        "Subscribe & save 15%",
        "-20.25 USD",
        "California sales tax 7.25%",
        "8.32 USD",
        "123.06 USD",
    ] {
        assert!(
            order.contains(expected),
            "{expected} missing from:\n{order}"
        );
    }
    let json: Value =
        serde_json::from_str(&run(&["orders", "show", "BB-0000001-001", "--json"])).unwrap();
    assert_eq!(json["total"]["amount_minor"], 12306);

    // A refused operation: exit 2, says why, changes nothing.
    run(&[now[0], now[1], "subs", "cancel", "1", "--reason", "moving"]);
    let out = subsave(&dir, &[now[0], now[1], "subs", "skip", "1"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cancelled"), "{}", stderr(&out));
    let show: Value = serde_json::from_str(&run(&["subs", "show", "1", "--json"])).unwrap();
    assert_eq!(show["subscription"]["status"], "cancelled");
    let kinds: Vec<&str> = show["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["created", "renewed", "cancel"]);
}

/// `subsave demo` from an empty folder, and its report against the database it wrote.
#[test]
fn the_demo_runs_and_its_report_matches_its_database() {
    let dir = temp_dir("demo");
    let _ = std::fs::remove_dir_all(dir.join("shop"));
    let out = subsave(
        &dir,
        &[
            "--now",
            "2026-01-01T00:00:00Z",
            "demo",
            "--dir",
            "shop",
            "--months",
            "3",
            "--customers",
            "20",
            "--json",
        ],
        &[],
    );
    let report = json(&out);
    assert_eq!(report["customers"], 20);
    let url = report["database"].as_str().unwrap().to_owned();
    let db = [("SUBSAVE_DATABASE__URL", url.as_str())];
    // The console's sign-in key is an admin key of the demo's database.
    let key = report["console_key"].as_str().unwrap();
    let keys = json(&subsave(&dir, &["api-keys", "list", "--json"], &db));
    let console = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "demo-console")
        .expect("the demo's console key");
    assert_eq!(console["scope"], "admin");
    assert!(key.starts_with(console["key_prefix"].as_str().unwrap()));
    let orders = json(&subsave(
        &dir,
        &["orders", "list", "--limit", "100000", "--json"],
        &db,
    ));
    let orders = orders.as_array().unwrap();
    assert!(
        orders.len() > 20,
        "three months bill more than one order each: {}",
        orders.len()
    );
    assert_eq!(report["orders"].as_u64().unwrap() as usize, orders.len());
    // Addresses in several countries, one move, and a warehouse shipping every order one or
    // two days after it was billed (all but the last day's), through the shipment import.
    let countries: std::collections::BTreeSet<&str> = orders
        .iter()
        .filter_map(|o| o["ship_to"]["country"].as_str())
        .collect();
    assert_eq!(
        countries.into_iter().collect::<Vec<_>>(),
        ["DE", "FR", "US"]
    );
    let mover: std::collections::BTreeSet<&str> = orders
        .iter()
        .filter(|o| o["subscription_id"] == 1)
        .filter_map(|o| o["ship_to"]["subdivision"].as_str())
        .collect();
    assert_eq!(mover.into_iter().collect::<Vec<_>>(), ["US-CA", "US-NY"]);
    let shipped = report["shipped"].as_i64().unwrap();
    let waiting = report["unfulfilled"].as_i64().unwrap();
    assert!(shipped > 20, "{report}");
    assert_eq!(shipped + waiting, orders.len() as i64, "{report}");
    assert!(
        waiting <= 20,
        "only orders billed in the last two days wait: {report}"
    );
    assert_eq!(
        report["emails"]["order_shipped"]["sent"].as_i64().unwrap(),
        shipped,
        "one shipped email per shipment"
    );
    // Berlin and Paris are billed in EUR (the catalog's EU market), the US in USD; the
    // report's revenue is one total per currency, each the sum of its orders.
    let mut revenue: std::collections::BTreeMap<&str, i64> = Default::default();
    for order in orders {
        let currency = order["total"]["currency"].as_str().unwrap();
        let country = order["ship_to"]["country"].as_str();
        match country {
            Some("DE" | "FR") => assert_eq!(currency, "EUR", "{order}"),
            Some(_) => assert_eq!(currency, "USD", "{order}"),
            None => {}
        }
        *revenue.entry(currency).or_default() += order["total"]["amount_minor"].as_i64().unwrap();
    }
    assert_eq!(revenue.keys().copied().collect::<Vec<_>>(), ["EUR", "USD"]);
    for (currency, sum) in &revenue {
        assert_eq!(
            report["revenue"][currency]["amount_minor"]
                .as_i64()
                .unwrap(),
            *sum
        );
    }
    // The revenue report ends with a total row per currency, each equal to its orders' sum.
    let by_month = stdout(&subsave(
        &dir,
        &[
            "report",
            "revenue",
            "--from",
            "2025-01-01",
            "--to",
            "2027-12-31",
        ],
        &db,
    ));
    let totals: Vec<Vec<&str>> = by_month
        .lines()
        .filter(|l| l.starts_with("total"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(totals.len(), revenue.len(), "{by_month}");
    for total in &totals {
        let currency = total[1];
        let count = orders
            .iter()
            .filter(|o| o["total"]["currency"] == currency)
            .count();
        assert_eq!(total[2], count.to_string(), "{by_month}");
        let sum = revenue[currency];
        assert_eq!(
            total[11],
            format!("{}.{:02}", sum / 100, sum % 100),
            "{by_month}"
        );
    }
    assert!(
        by_month
            .lines()
            .last()
            .unwrap_or_default()
            .starts_with("total"),
        "{by_month}"
    );
    // The forecast's amounts say their currency.
    let upcoming = json(&subsave(
        &dir,
        &[
            "--now",
            "2026-04-01T00:00:00Z",
            "report",
            "upcoming",
            "--days",
            "28",
            "--json",
        ],
        &db,
    ));
    let weeks = upcoming.as_array().unwrap();
    assert!(!weeks.is_empty());
    assert!(weeks.iter().all(|w| w["currency"] == "USD"), "{upcoming}");
    // The EUR renewals (Berlin, Paris) are expected apart, never added to the USD revenue.
    assert!(
        weeks
            .iter()
            .any(|w| w["other_currencies"]["EUR"].as_i64() > Some(0)),
        "{upcoming}"
    );
    // Every order has its payment through the simulated provider: most paid, the declined
    // cards in dunning, failed, or recovered after saving a new card.
    let payments = json(&subsave(
        &dir,
        &["payments", "list", "--limit", "100000", "--json"],
        &db,
    ));
    let payments = payments.as_array().unwrap();
    assert_eq!(payments.len(), orders.len());
    let count = |status: &str| payments.iter().filter(|p| p["status"] == status).count();
    assert_eq!(
        report["payments"]["paid"].as_u64().unwrap() as usize,
        count("paid")
    );
    assert!(
        count("paid") > 0 && count("failed") > 0,
        "{:?}",
        report["payments"]
    );
    let recovered = payments
        .iter()
        .filter(|p| p["status"] == "paid" && p["attempt"].as_u64().unwrap() > 1)
        .count();
    assert!(recovered > 0);
    assert_eq!(report["recovered"].as_u64().unwrap() as usize, recovered);
    assert!(report["declined_attempts"].as_u64().unwrap() as usize > recovered);
    // On their own pages: a declined customer gives a new card (and is recovered), a 3-D
    // Secure renewal is completed from its email, and a cancelled subscription restarts.
    let portal = &report["portal"];
    for done in ["cards_saved", "payments_confirmed", "restarts"] {
        assert!(portal[done].as_u64().unwrap() >= 1, "{done}: {portal}");
    }
    let requires_action = payments
        .iter()
        .filter(|p| {
            p["status"] == "requires_action"
                && chrono::DateTime::parse_from_rfc3339(p["created_at"].as_str().unwrap()).unwrap()
                    < chrono::DateTime::parse_from_rfc3339("2025-12-29T00:00:00Z").unwrap()
        })
        .count();
    assert_eq!(
        requires_action, 0,
        "every 3-D Secure renewal is completed within days"
    );
    let subs = json(&subsave(
        &dir,
        &["subs", "list", "--limit", "1000", "--json"],
        &db,
    ));
    let restarted: usize = subs
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let id = s["id"].to_string();
            let shown = json(&subsave(&dir, &["subs", "show", &id, "--json"], &db));
            shown["events"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["kind"] == "restart" && e["actor"] == "customer:link")
                .count()
        })
        .sum();
    assert_eq!(restarted as u64, portal["restarts"].as_u64().unwrap());
    let messages = json(&subsave(
        &dir,
        &["outbox", "list", "--limit", "100000", "--json"],
        &db,
    ));
    let sent = messages
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["status"] == "sent")
        .count();
    let reported_sent: u64 = report["emails"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|s| s["sent"].as_u64())
        .sum();
    assert_eq!(reported_sent as usize, sent);
    assert_eq!(
        report["eml_files"].as_u64().unwrap() as usize,
        sent,
        "one .eml file per sent message"
    );
    // One of every email kind went out (a webhook is not an email), and its count in the
    // report is the database's.
    let kinds = [
        "renewal_reminder",
        "order_confirmation",
        "subscription_created",
        "skipped",
        "paused",
        "resumed",
        "cancelled",
        "changed",
        "link_request",
        "annual_notice",
        "price_change",
        "payment_failed",
        "payment_action_required",
        "payment_received",
    ];
    for kind in kinds {
        let of_kind = messages
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["kind"] == kind && m["status"] == "sent")
            .count();
        assert!(of_kind > 0, "no {kind} email sent: {}", report["emails"]);
        assert_eq!(
            report["emails"][kind]["sent"].as_u64().unwrap_or(0) as usize,
            of_kind,
            "{kind}"
        );
    }
    // The demo ends at `--now` (its start is that many months before), and nothing in it
    // happened later: no order written, no message queued or sent.
    assert_eq!(report["to"], "2026-01-01T00:00:00Z");
    assert_eq!(report["from"], "2025-10-01T00:00:00Z");
    let end = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap();
    let after_end = |record: &Value, field: &str| {
        record[field]
            .as_str()
            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap() > end)
    };
    assert!(
        !orders.iter().any(|o| after_end(o, "created_at")),
        "an order written after the demo's end"
    );
    assert!(
        !messages
            .as_array()
            .unwrap()
            .iter()
            .any(|m| after_end(m, "created_at") || after_end(m, "sent_at")),
        "a message queued or sent after the demo's end"
    );
    // Customers write their country's language: German in Berlin, French in Paris.
    let customers = json(&subsave(
        &dir,
        &["customers", "list", "--limit", "1000", "--json"],
        &db,
    ));
    let locale_in = |zone: &str| -> Vec<String> {
        customers
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["time_zone"] == zone)
            .map(|c| c["locale"].as_str().unwrap().to_owned())
            .collect()
    };
    let berlin = locale_in("Europe/Berlin");
    assert!(
        !berlin.is_empty() && berlin.iter().all(|l| l == "de-DE"),
        "{berlin:?}"
    );
    let paris = locale_in("Europe/Paris");
    assert!(
        !paris.is_empty() && paris.iter().all(|l| l == "fr-FR"),
        "{paris:?}"
    );
    // A second demo into the same folder is refused rather than mixed in.
    let again = subsave(&dir, &["demo", "--dir", "shop", "--months", "1"], &[]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already holds a demo"),
        "{}",
        stderr(&again)
    );
}

/// Bad input is refused at the edge with exit 2, one line that names the input and the
/// problem, nothing changed, and no raw escape sequence echoed to the terminal.
#[test]
fn bad_input_is_refused_at_the_edge() {
    let dir = temp_dir("edge");
    let _ = std::fs::remove_file(dir.join("subsave.db"));
    let ok = |args: &[&str]| {
        let out = subsave(&dir, args, &[]);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    };
    ok(&[
        "customers",
        "add",
        "--email",
        "ada@example.com",
        "--name",
        "Ada",
        "--tz",
        "UTC",
    ]);
    ok(&["subs", "create", "--customer", "1", "--plan", "1-pack"]);
    let long_name = "n".repeat(201);
    let long_code = "C".repeat(33);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "customers",
                "add",
                "--email",
                "b@example.com",
                "--name",
                "Bob\r\nBcc: x@example.com",
                "--tz",
                "UTC",
            ],
            "--name: contains the control character U+000D",
        ),
        (
            vec![
                "customers",
                "add",
                "--email",
                "b@example.com",
                "--name",
                "Bob\u{1b}[2J",
                "--tz",
                "UTC",
            ],
            "U+001B",
        ),
        (
            vec![
                "customers",
                "add",
                "--email",
                "b@example.com",
                "--name",
                "Bob\u{7}",
                "--tz",
                "UTC",
            ],
            "U+0007",
        ),
        (
            vec![
                "customers",
                "add",
                "--email",
                "b@example.com",
                "--name",
                "abc\u{202e}gpj",
                "--tz",
                "UTC",
            ],
            "bidirectional",
        ),
        (
            vec![
                "customers",
                "add",
                "--email",
                "b@example.com",
                "--name",
                &long_name,
                "--tz",
                "UTC",
            ],
            "at most 200 characters",
        ),
        (
            vec![
                "customers",
                "add",
                "--email",
                "b@example.com",
                "--name",
                "Bob",
                "--tz",
                "UTC",
                "--locale",
                "english",
            ],
            "--locale \"english\": not a language tag",
        ),
        (
            vec![
                "coupons",
                "create",
                "ZERO",
                "--percent",
                "5%",
                "--max-redemptions",
                "0",
            ],
            "--max-redemptions 0",
        ),
        (
            vec!["coupons", "create", &long_code, "--percent", "5%"],
            "1 to 32",
        ),
        (
            vec!["coupons", "create", "BIG", "--percent", "101%"],
            "0% to 100%",
        ),
        (
            vec![
                "subs",
                "cancel",
                "1",
                "--reason",
                "moving\u{1b}]0;owned\u{7}",
            ],
            "--reason: contains the control character",
        ),
        (
            vec![
                "subs",
                "create",
                "--customer",
                "1",
                "--plan",
                "1-pack",
                "--every",
                "3651 days",
            ],
            "at most 3650",
        ),
        (
            vec![
                "schedule",
                "--anchor",
                "2026-01-31T09:00",
                "--tz",
                "UTC",
                "--every",
                "120 months",
                "--count",
                "1000",
            ],
            "after the year 9999",
        ),
    ];
    for (args, needle) in &cases {
        let out = subsave(&dir, args, &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(needle),
            "{args:?}: {needle} missing from: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(
            !err.contains('\u{1b}') && !err.contains('\u{7}'),
            "raw escape echoed: {err:?}"
        );
    }
    // Nothing was written by the refusals.
    let customers = json(&subsave(&dir, &["customers", "list", "--json"], &[]));
    assert_eq!(customers.as_array().unwrap().len(), 1);
    let coupons = json(&subsave(&dir, &["coupons", "list", "--json"], &[]));
    assert_eq!(coupons.as_array().unwrap().len(), 0);
    let sub = json(&subsave(&dir, &["subs", "show", "1", "--json"], &[]));
    assert_eq!(sub["subscription"]["status"], "active");
}

/// A relative path in a config file is relative to that file's folder, not to where the
/// command runs (a unit's working directory is rarely the config's folder).
#[test]
fn relative_paths_in_a_config_file_resolve_against_its_folder() {
    let dir = temp_dir("relative");
    let etc = dir.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let catalog =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/catalog.toml"))
            .unwrap();
    std::fs::write(etc.join("catalog.toml"), catalog).unwrap();
    std::fs::write(
        etc.join("subsave.toml"),
        "[catalog]\nfile = \"catalog.toml\"\n[mail]\nfile_dir = \"outbox-files\"\n",
    )
    .unwrap();
    let elsewhere = dir.join("run");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let out = subsave(
        &elsewhere,
        &[
            "--config",
            etc.join("subsave.toml").to_str().unwrap(),
            "check-config",
            "--json",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let settings = json(&out);
    assert_eq!(
        settings["mail"]["file_dir"],
        etc.join("outbox-files").display().to_string()
    );
    assert_eq!(
        settings["catalog_source"],
        etc.join("catalog.toml").display().to_string()
    );
}

/// What `check-config` prints is a config file `--config` accepts back, with warnings for
/// values left over from the example and the secrets named but not shown.
#[test]
fn check_config_prints_a_config_it_accepts_back() {
    let dir = temp_dir("roundtrip");
    let env = [
        (
            "SUBSAVE_DATABASE__URL",
            "postgres://subsave@127.0.0.1/subsave",
        ),
        ("SUBSAVE_DATABASE__PASSWORD", "hunter2-roundtrip"),
        ("SUBSAVE_ENGINE__SWEEP", "*/5 * * * *"),
    ];
    let first = subsave(&dir, &["check-config"], &env);
    assert!(first.status.success(), "{}", stderr(&first));
    let text = stdout(&first);
    assert!(
        text.contains("# warning: mail.from is a placeholder"),
        "{text}"
    );
    assert!(
        text.contains("# warning: mail.reply_to is not set"),
        "{text}"
    );
    assert!(
        text.contains("# secrets set and not shown (give them again, from the environment or a *_file): database.password"),
        "{text}"
    );
    assert!(!text.contains("hunter2-roundtrip"));
    std::fs::write(dir.join("printed.toml"), &text).unwrap();
    let again = subsave(&dir, &["--config", "printed.toml", "check-config"], &[]);
    assert!(again.status.success(), "{}", stderr(&again));
    let again = stdout(&again);
    for line in [
        "sweep = \"*/5 * * * *\"",
        "window_start = \"09:00\"",
        "url = \"postgres://subsave@127.0.0.1/subsave\"",
    ] {
        assert!(again.contains(line), "{line} missing from:\n{again}");
    }
}

/// The help says what every command takes, with examples and exit codes; completions and the
/// manual page come from the same definitions.
#[test]
fn help_completions_and_man_page() {
    let dir = temp_dir("help");
    let help = stdout(&subsave(&dir, &["--help"], &[]));
    assert!(
        help.contains("EXAMPLES:") && help.contains("EXIT CODES:"),
        "{help}"
    );
    let bash = subsave(&dir, &["completions", "bash"], &[]);
    assert!(bash.status.success());
    assert!(stdout(&bash).contains("_subsave()"));
    let man = subsave(&dir, &["man"], &[]);
    assert!(man.status.success());
    let page = stdout(&man);
    assert!(page.starts_with(".ie") || page.contains(".TH subsave 1"));
    // The NAME line says what it is once; every subcommand is documented with its options.
    assert!(
        page.contains("subsave \\- A subscribe\\-and\\-save billing and reorder daemon"),
        "{page}"
    );
    assert!(!page.contains("subsave \\- subsave:"));
    for section in [
        ".SS \"subsave orders export\"",
        ".SS \"subsave orders refund\"",
        ".SS \"subsave report payments\"",
        ".SS \"subsave subs create\"",
    ] {
        assert!(page.contains(section), "{section} missing");
    }
    assert!(page.contains("\\fB\\-\\-from <FROM>\\fR"));
    // The family summaries name every command of the family.
    let top = stdout(&subsave(&dir, &["--help"], &[]));
    let line = |name: &str| {
        top.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(line("orders").contains("export") && line("orders").contains("refund"));
    assert!(line("report").contains("payments"));
}

/// `subsave … | head -1`: a reader that closes the pipe ends the command quietly with 0, not
/// with "error: Broken pipe". The read end is closed before the command writes anything.
#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let dir = temp_dir("closed-stdout");
    let period = ["--from", "2026-01-01", "--to", "2026-12-31"];
    for args in [
        vec!["plans"],
        vec!["plans", "--json"],
        [&["orders", "export"][..], &period].concat(),
        [&["orders", "export", "--credit-notes"][..], &period].concat(),
        [&["report", "journal", "--format", "csv"][..], &period].concat(),
        [&["report", "metrics", "--format", "csv"][..], &period].concat(),
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_subsave"))
            .current_dir(&dir)
            .args(&args)
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the subsave binary runs");
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let said = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "subsave {args:?} with its stdout closed: {said}"
        );
        assert!(!said.to_lowercase().contains("error"), "{said}");
    }
}

/// A database that cannot be opened is one line on stderr: the URL with its password hidden,
/// what failed in the driver's or server's own words (no "at line N" of PostgreSQL's source),
/// and the fix; at once, not after a pool's wait. Refused: exit 1 (it may come back); a
/// missing database or SQLite folder: exit 2 (a person must act), in `check-config` too.
#[test]
fn a_database_that_cannot_be_opened_is_one_line_with_the_url_and_the_fix() {
    let dir = temp_dir("db-errors");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = format!("postgres://ops:hunter2@127.0.0.1:{closed}/shop");
    let missing_db = format!("{}/subsave_no_such_database", common_postgres_root());
    let cases = [
        (
            refused.as_str(),
            1,
            "connection refused",
            "check that the database server is running",
        ),
        (
            missing_db.as_str(),
            2,
            "\"subsave_no_such_database\" does not exist",
            "create the database",
        ),
        (
            "sqlite:///no/such/folder/x.db",
            2,
            "no such folder /no/such/folder",
            "create the folder",
        ),
    ];
    for (url, code, what, fix) in cases {
        let started = std::time::Instant::now();
        let out = subsave(&dir, &["subs", "list"], &[("SUBSAVE_DATABASE__URL", url)]);
        let said = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{url}: {said}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{url}"
        );
        assert_eq!(said.lines().count(), 1, "{said}");
        assert!(said.contains(what) && said.contains(fix), "{said}");
        assert_eq!(said.matches(what).count(), 1, "said twice: {said}");
        assert!(
            !said.contains("hunter2") && !said.contains("at line"),
            "{said}"
        );
        assert!(!said.contains("subsave retries"), "{said}");
    }
    assert!(
        stderr(&subsave(
            &dir,
            &["subs", "list"],
            &[("SUBSAVE_DATABASE__URL", &refused)]
        ))
        .contains("postgres://ops:[redacted]@127.0.0.1")
    );
    let check = subsave(
        &dir,
        &["check-config"],
        &[("SUBSAVE_DATABASE__URL", "sqlite:///no/such/folder/x.db")],
    );
    assert_eq!(check.status.code(), Some(2), "{}", stderr(&check));
    assert!(stderr(&check).contains("no such folder /no/such/folder"));
}

/// The PostgreSQL server the tests use, without a database name.
fn common_postgres_root() -> String {
    let admin = std::env::var("SUBSAVE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    admin
        .rsplit_once('/')
        .map(|(root, _)| root.to_owned())
        .unwrap_or(admin)
}

/// `check-config` refuses what could never start or never send, naming the layer the value
/// came from (the environment variable, not the built-in default.toml), the key, and the fix.
#[test]
fn check_config_refuses_what_cannot_start_and_names_the_layer() {
    let dir = temp_dir("cannot-start");
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: [Case; 16] = [
        (
            &[("SUBSAVE_DATABASE__POOLER", "transaction")],
            &["database.pooler", "PostgreSQL only"],
        ),
        (
            &[("SUBSAVE_DATABASE__READ_URL", "postgres://u@127.0.0.1/db")],
            &["database.read_url", "PostgreSQL only"],
        ),
        (
            &[
                ("SUBSAVE_DATABASE__URL", "postgres://u@127.0.0.1/db"),
                ("SUBSAVE_DATABASE__LISTEN_URL", "sqlite://other.db"),
            ],
            &["database.listen_url", "must be a postgres://"],
        ),
        (
            &[("SUBSAVE_MAIL__DELIVERY__LEASE_SECS", "10")],
            &[
                "environment variable SUBSAVE_MAIL__DELIVERY__LEASE_SECS",
                "mail.delivery.lease_secs",
                "no email would ever be sent",
            ],
        ),
        (
            // A batch smaller than the senders: only the single-send rule catches it.
            &[
                ("SUBSAVE_MAIL__DELIVERY__LEASE_SECS", "100"),
                ("SUBSAVE_MAIL__SMTP__TIMEOUT_SECS", "200"),
                ("SUBSAVE_MAIL__DELIVERY__BATCH_SIZE", "1"),
                ("SUBSAVE_MAIL__DELIVERY__CONCURRENCY", "4"),
            ],
            &["mail.delivery.lease_secs", "mail.smtp.timeout_secs (200)"],
        ),
        (
            &[
                ("SUBSAVE_WEBHOOKS__TIMEOUT_SECS", "4000"),
                ("SUBSAVE_CONFIG", "webhook.toml"),
            ],
            &["webhooks.timeout_secs", "mail.delivery.lease_secs"],
        ),
        (
            &[("SUBSAVE_WEB__LINK_KEYS", "bogus")],
            &[
                "environment variable SUBSAVE_WEB__LINK_KEYS",
                "web.link_keys",
                "ID:SECRET",
            ],
        ),
        (
            &[
                ("SUBSAVE_HTTP__LISTEN", "127.0.0.1:18555"),
                ("SUBSAVE_WEB__LISTEN", "127.0.0.1:18555"),
            ],
            &["web.listen", "is also http.listen"],
        ),
        (
            &[
                ("SUBSAVE_WEB__LISTEN", "127.0.0.1:18556"),
                ("SUBSAVE_ADMIN__LISTEN", "127.0.0.1:18556"),
            ],
            &["admin.listen", "needs its own address"],
        ),
        (
            &[("SUBSAVE_ADMIN__TRUSTED_HEADER", "X-Forwarded-User")],
            &[
                "environment variable SUBSAVE_ADMIN__TRUSTED_HEADER",
                "needs admin.trusted_proxies",
            ],
        ),
        (
            &[("SUBSAVE_ADMIN__PUBLIC_URL", "console.shop.example")],
            &["admin.public_url", "expected an http(s):// URL"],
        ),
        (
            &[("SUBSAVE_MAIL__TEMPLATES_DIR", "/no/such/templates")],
            &["mail.templates_dir", "no such folder"],
        ),
        (
            &[("SUBSAVE_MAIL__SMTP__CA_FILE", "/no/such/ca.pem")],
            &["mail.smtp.ca_file", "no such file"],
        ),
        (
            &[
                ("SUBSAVE_PAYMENTS__PROVIDER", "stripe"),
                (
                    "SUBSAVE_PAYMENTS__STRIPE__SECRET_KEY",
                    "pk_test_publishable123",
                ),
            ],
            &["payments.stripe.secret_key", "publishable key"],
        ),
        (
            &[(
                "SUBSAVE_PAYMENTS__STRIPE__PUBLISHABLE_KEY",
                "sk_live_secret123",
            )],
            &[
                "payments.stripe.publishable_key",
                "expected the publishable key",
            ],
        ),
        (
            &[("SUBSAVE_PAYMENTS__STRIPE__JS_URL", "js.stripe.com/v3/")],
            &[
                "payments.stripe.js_url",
                "expected the http(s):// URL of Stripe.js",
            ],
        ),
    ];
    std::fs::write(
        dir.join("webhook.toml"),
        "[[webhooks.endpoints]]\nname = \"shop\"\nurl = \"https://shop.example/hooks\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nevents = [\"order.created\"]\n",
    )
    .unwrap();
    for (env, expected) in cases {
        let out = subsave(&dir, &["check-config"], env);
        let said = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{env:?}: {said}");
        for part in expected {
            assert!(said.contains(part), "{env:?}: missing {part}: {said}");
        }
        assert!(!said.contains("default.toml"), "{env:?}: {said}");
        assert!(!said.contains("pk_test_publishable123"), "{said}");
        assert!(!said.contains("sk_live_secret123"), "{said}");
    }
    let config = dir.join("bad-webhook.toml");
    std::fs::write(
        &config,
        "[[webhooks.endpoints]]\nname = \"shop\"\nurl = \"https://shop.example/hooks\"\nsecret = \"whsec_not*base64!\"\nevents = [\"order.created\"]\n",
    )
    .unwrap();
    let out = subsave(
        &dir,
        &["--config", config.to_str().unwrap(), "check-config"],
        &[],
    );
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("webhooks.endpoints[0].secret") && said.contains("base64"),
        "{said}"
    );
    assert!(!said.contains("not*base64"), "{said}");
    // Credentials in a webhook URL are secrets: shown redacted.
    std::fs::write(
        &config,
        "[[webhooks.endpoints]]\nname = \"shop\"\nurl = \"https://hooks:hunter3@shop.example/hooks?token=abc123secret&v=2\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nevents = [\"order.created\"]\n",
    )
    .unwrap();
    let out = subsave(
        &dir,
        &["--config", config.to_str().unwrap(), "check-config"],
        &[],
    );
    let shown = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        shown.contains("https://hooks:[redacted]@shop.example/hooks?token=[redacted]&v=2"),
        "{shown}"
    );
    assert!(!shown.contains("hunter3") && !shown.contains("abc123secret"));
}

/// The production example is a deployment that would work: pages linked at a public https
/// address and the operator's listener private. `check-config` warns when email links would
/// point at a loopback or plain-http address while mail goes out, and when /metrics listens on
/// every interface.
#[test]
fn check_config_warns_of_links_customers_cannot_open_and_a_public_ops_port() {
    let dir = temp_dir("deploy-warnings");
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/production.example.toml"
    );
    let keys = [(
        "SUBSAVE_WEB__LINK_KEYS",
        "k1:0123456789abcdef0123456789abcdef0123456789",
    )];
    let out = subsave(&dir, &["--config", example, "check-config"], &keys);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!text.contains("web.public_url is"), "{text}");
    assert!(!text.contains("http.listen is"), "{text}");
    assert!(text.contains("public_url = \"https://"), "{text}");

    let smtp = [
        ("SUBSAVE_MAIL__TRANSPORT", "smtp"),
        ("SUBSAVE_MAIL__REPLY_TO", "support@shop.example"),
    ];
    let loopback = stdout(&subsave(&dir, &["check-config"], &smtp));
    assert!(
        loopback.contains("# warning: web.public_url is http://127.0.0.1:8081, a loopback address"),
        "{loopback}"
    );
    let plain = stdout(&subsave(
        &dir,
        &["check-config"],
        &[
            ("SUBSAVE_MAIL__TRANSPORT", "smtp"),
            ("SUBSAVE_MAIL__REPLY_TO", "support@shop.example"),
            ("SUBSAVE_WEB__PUBLIC_URL", "http://shop.example"),
        ],
    ));
    assert!(plain.contains("plain http"), "{plain}");
    let files = stdout(&subsave(&dir, &["check-config"], &[]));
    assert!(!files.contains("web.public_url is"), "{files}");
    let open = stdout(&subsave(
        &dir,
        &["check-config"],
        &[("SUBSAVE_HTTP__LISTEN", "0.0.0.0:8080")],
    ));
    assert!(
        open.contains("# warning: http.listen is 0.0.0.0:8080, a public or every interface"),
        "{open}"
    );
    let private = stdout(&subsave(
        &dir,
        &["check-config"],
        &[("SUBSAVE_HTTP__LISTEN", "10.1.2.3:8080")],
    ));
    assert!(!private.contains("http.listen is"), "{private}");
}

/// An email a spreadsheet would run as a formula is exported as text in CSV (a leading `'`),
/// and as it is in JSON lines.
#[test]
fn csv_exports_neutralize_formulas_and_jsonl_keeps_the_text() {
    let dir = temp_dir("csv-injection");
    let _ = std::fs::remove_file(dir.join("subsave.db"));
    let at = |now: &str, args: &[&str]| {
        let mut all = vec!["--now", now];
        all.extend_from_slice(args);
        let out = subsave(&dir, &all, &[]);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    at(
        "2026-01-01T12:00:00Z",
        &[
            "customers",
            "add",
            "--email",
            "=1+2@example.com",
            "--name",
            "Eve",
            "--tz",
            "UTC",
        ],
    );
    at(
        "2026-01-01T12:00:00Z",
        &[
            "subs",
            "create",
            "--customer",
            "=1+2@example.com",
            "--plan",
            "1-pack",
            "--start-now",
        ],
    );
    at("2026-01-01T12:05:00Z", &["tick"]);
    let csv = at(
        "2026-01-02T00:00:00Z",
        &[
            "orders",
            "export",
            "--from",
            "2026-01-01",
            "--to",
            "2026-01-31",
        ],
    );
    assert!(csv.contains(",'=1+2@example.com,"), "{csv}");
    let jsonl = at(
        "2026-01-02T00:00:00Z",
        &[
            "orders",
            "export",
            "--from",
            "2026-01-01",
            "--to",
            "2026-01-31",
            "--format",
            "jsonl",
        ],
    );
    assert!(
        jsonl.contains("\"customer_email\":\"=1+2@example.com\""),
        "{jsonl}"
    );
}

/// Every email invites a reply: mailing through SMTP without `mail.reply_to` is refused, with
/// the key and what to set; the file and log transports only warn.
#[test]
fn mailing_for_real_needs_a_reply_address() {
    let dir = temp_dir("reply-to");
    let out = subsave(
        &dir,
        &["check-config"],
        &[("SUBSAVE_MAIL__TRANSPORT", "smtp")],
    );
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("mail.reply_to") && said.contains("support address"),
        "{said}"
    );
    let files = subsave(&dir, &["check-config"], &[]);
    assert!(files.status.success());
    assert!(stdout(&files).contains("# warning: mail.reply_to is not set"));
}

/// `--external-id` and `--metadata KEY=VALUE` on `customers add`, `subs create` and `subs
/// change` (where `KEY=` removes a key, and they change on their own); shown by `customers show`
/// and `subs show`, and in `--json`; a second customer with the same external id is refused
/// naming it, as is a malformed pair.
#[test]
fn external_ids_and_metadata_from_the_command_line() {
    let dir = temp_dir("metadata");
    let _ = std::fs::remove_file(dir.join("subsave.db"));
    let run = |args: &[&str]| subsave(&dir, args, &[]);
    let ok = |args: &[&str]| {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    let added = json(&run(&[
        "customers",
        "add",
        "--email",
        "ada@example.com",
        "--name",
        "Ada",
        "--tz",
        "UTC",
        "--external-id",
        "shop-1",
        "--metadata",
        "tier=gold",
        "--metadata",
        "note=a=b",
        "--json",
    ]));
    assert_eq!(added["external_id"], "shop-1");
    assert_eq!(
        added["metadata"],
        serde_json::json!({ "note": "a=b", "tier": "gold" })
    );
    let shown = ok(&["customers", "show", "ada@example.com"]);
    assert!(
        shown.contains("external id: shop-1") && shown.contains("  tier: gold"),
        "{shown}"
    );
    let taken = run(&[
        "customers",
        "add",
        "--email",
        "bob@example.com",
        "--name",
        "Bob",
        "--tz",
        "UTC",
        "--external-id",
        "shop-1",
    ]);
    assert_eq!(taken.status.code(), Some(2));
    assert!(
        stderr(&taken).contains("external_id \"shop-1\""),
        "{}",
        stderr(&taken)
    );
    let malformed = run(&[
        "customers",
        "add",
        "--email",
        "bob@example.com",
        "--name",
        "Bob",
        "--tz",
        "UTC",
        "--metadata",
        "tier",
    ]);
    assert_eq!(malformed.status.code(), Some(2));
    assert!(
        stderr(&malformed).contains("--metadata \"tier\""),
        "{}",
        stderr(&malformed)
    );

    let sub = json(&run(&[
        "subs",
        "create",
        "--customer",
        "ada@example.com",
        "--plan",
        "1-pack",
        "--external-id",
        "sub-1",
        "--metadata",
        "channel=web",
        "--json",
    ]));
    assert_eq!(
        (&sub["external_id"], &sub["metadata"]),
        (&"sub-1".into(), &serde_json::json!({ "channel": "web" }))
    );
    let id = sub["id"].to_string();
    ok(&[
        "subs",
        "change",
        &id,
        "--metadata",
        "channel=",
        "--metadata",
        "gift=yes",
    ]);
    let mixed = run(&[
        "subs",
        "change",
        &id,
        "--quantity",
        "2",
        "--metadata",
        "gift=no",
    ]);
    assert_eq!(mixed.status.code(), Some(2));
    let shown = ok(&["subs", "show", &id]);
    assert!(
        shown.contains("external id: sub-1")
            && shown.contains("  gift: yes")
            && !shown.contains("channel"),
        "{shown}"
    );
}
