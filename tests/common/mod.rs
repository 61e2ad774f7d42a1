//! The integration-test harness: a fresh database per test on either backend, the default
//! catalog, and an engine driven at a chosen "now". PostgreSQL must be running on
//! 127.0.0.1:5432 (or at SUBSAVE_TEST_POSTGRES): a test that needs it fails loudly, never
//! skips. `.ci/run` starts it and drops the `subsave_test_*` databases left by earlier runs.
#![allow(dead_code)]

pub mod browser;
pub mod cluster;
pub mod console;
pub mod daemon;
pub mod localstripe;
pub mod logs;
pub mod pages;
pub mod pgbouncer;
pub mod proxy;
pub mod smtp;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Utc};
use sqlx::Connection;
use subsave::config::{DEFAULT_CATALOG, load_catalog_text};
use subsave::core::catalog::Catalog;
use subsave::core::lifecycle::{self, Start};
use subsave::core::model::{Actor, Customer, NewCustomer, Subscription};
use subsave::core::renewal::CatchUp;
use subsave::core::schedule::TimeOfDay;
use subsave::engine::Engine;
use subsave::store::{self, Store};
use subsave::store::{DatabaseSettings, DatabaseUrl};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

pub fn admin_url() -> String {
    std::env::var("SUBSAVE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh, migrated database for one test.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub store: Arc<dyn Store>,
    pub catalog: Arc<Catalog>,
    dir: Option<std::path::PathBuf>,
    /// The PostgreSQL database this test made, dropped with it.
    database: Option<String>,
}

/// Polls `check` until it holds; fails the test naming `what` once `timeout` has passed.
pub async fn eventually<F, Fut>(timeout: std::time::Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < timeout,
            "not within {timeout:?}: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub fn settings_for(url: &str, max_connections: u32) -> DatabaseSettings {
    DatabaseSettings::direct(DatabaseUrl::parse(url).unwrap(), max_connections, true)
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("subsave_test_{}_{}", std::process::id(), n);
        let (url, dir) = match backend {
            Backend::Postgres => {
                let mut admin = sqlx::PgConnection::connect(&admin_url())
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                            "PostgreSQL is required for this test and is not reachable at {}: {e}. \
                         Start it (bash .ci/run does) or set SUBSAVE_TEST_POSTGRES.",
                            admin_url()
                        )
                    });
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .expect("create the test database");
                let base = admin_url();
                let root = base
                    .rsplit_once('/')
                    .map(|(root, _)| root)
                    .unwrap_or(&base)
                    .to_owned();
                (format!("{root}/{name}"), None)
            }
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(&name);
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).unwrap();
                (
                    format!("sqlite://{}/subsave.db?mode=rwc", dir.display()),
                    Some(dir),
                )
            }
        };
        let store = store::connect(&settings_for(&url, 8))
            .await
            .expect("connect to the test database");
        store
            .migrate()
            .await
            .expect("migrations apply to a fresh database");
        TestDb {
            backend,
            url,
            store,
            catalog: Arc::new(load_catalog_text(DEFAULT_CATALOG).unwrap()),
            dir,
            database: (backend == Backend::Postgres).then_some(name),
        }
    }

    /// A PostgreSQL database the test made elsewhere (on a cluster of its own), migrated; it
    /// is not dropped with the `TestDb` (its cluster is removed instead).
    pub async fn on_postgres(url: &str) -> TestDb {
        let store = store::connect(&settings_for(url, 8))
            .await
            .expect("connect to the cluster's database");
        store.migrate().await.expect("migrations apply");
        TestDb {
            backend: Backend::Postgres,
            url: url.to_owned(),
            store,
            catalog: Arc::new(load_catalog_text(DEFAULT_CATALOG).unwrap()),
            dir: None,
            database: None,
        }
    }

    /// The PostgreSQL database this test made.
    pub fn database_name(&self) -> &str {
        self.database
            .as_deref()
            .expect("a PostgreSQL test database")
    }

    /// Another store on the same database, with its own pool (another "replica").
    pub async fn another_store(&self) -> Arc<dyn Store> {
        store::connect(&settings_for(&self.url, 4))
            .await
            .expect("second pool")
    }

    pub fn engine(&self, catch_up: CatchUp, batch_size: u32) -> Engine {
        Engine::new(
            self.store.clone(),
            self.catalog.clone(),
            catch_up,
            batch_size,
        )
    }

    pub async fn customer(
        &self,
        email: &str,
        tz: &str,
        region: Option<&str>,
        now: DateTime<Utc>,
    ) -> Customer {
        self.store
            .add_customer(
                &NewCustomer {
                    email: email.parse().unwrap(),
                    name: format!("Customer {email}"),
                    time_zone: tz.parse().unwrap(),
                    locale: "en-US".into(),
                    tax_region: region.map(str::to_owned),
                    external_id: None,
                    metadata: Default::default(),
                },
                now,
            )
            .await
            .unwrap()
    }

    /// A subscription created through the lifecycle rules, as the CLI does.
    pub async fn subscribe(
        &self,
        customer: &Customer,
        plan: &str,
        start: Start,
        coupon: Option<&str>,
        now: DateTime<Utc>,
    ) -> Subscription {
        self.subscribe_shipped(customer, plan, start, coupon, None, now)
            .await
    }

    /// [`TestDb::subscribe`] shipping to `address` (added as the customer's default), priced
    /// in its market.
    pub async fn subscribe_shipped(
        &self,
        customer: &Customer,
        plan: &str,
        start: Start,
        coupon: Option<&str>,
        address: Option<subsave::core::address::RawAddress>,
        now: DateTime<Utc>,
    ) -> Subscription {
        let home = match address {
            Some(raw) => Some(
                self.store
                    .add_address(
                        customer.id,
                        &subsave::core::address::Address::parse(&raw).unwrap(),
                        true,
                        now,
                    )
                    .await
                    .unwrap(),
            ),
            None => None,
        };
        let mut new = lifecycle::new_subscription(
            &self.catalog,
            customer,
            plan,
            1,
            None,
            start,
            TimeOfDay::from_str("09:00").unwrap(),
            now,
        )
        .unwrap();
        new.coupon_code = coupon.map(str::to_owned);
        new.ship_to(home.as_ref(), &self.catalog);
        self.store
            .create_subscription(&new, &self.catalog, &Actor("test".into()), now)
            .await
            .unwrap()
    }

    /// Saves a customer's provider references (`cus_…`, `pm_…`) at `now`, as
    /// `payments set-method` does.
    pub async fn set_refs(&self, customer_id: i64, refs: (String, String), now: DateTime<Utc>) {
        self.store
            .set_payment_refs(
                customer_id,
                &subsave::core::model::PaymentRefs {
                    customer_ref: Some(refs.0),
                    method_ref: Some(refs.1),
                },
                7,
                now,
            )
            .await
            .unwrap();
    }

    /// A customer in Berlin (ada@example.com, region DE) with one subscription to each of
    /// `plans`, created after checkout at `now`.
    pub async fn subscribed_to<const N: usize>(
        &self,
        plans: [&str; N],
        now: DateTime<Utc>,
    ) -> [Subscription; N] {
        let customer = self
            .customer("ada@example.com", "Europe/Berlin", Some("DE"), now)
            .await;
        let mut subs = Vec::with_capacity(N);
        for plan in plans {
            subs.push(
                self.subscribe(&customer, plan, Start::AfterCheckout, None, now)
                    .await,
            );
        }
        subs.try_into()
            .unwrap_or_else(|_| unreachable!("one subscription per plan"))
    }

    /// Runs SQL directly against the database (for raw inserts and counts).
    pub async fn scalar(&self, sql: &str) -> i64 {
        match self.backend {
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
                    .fetch_one(&mut conn)
                    .await
                    .unwrap()
            }
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
                    .fetch_one(&mut conn)
                    .await
                    .unwrap()
            }
        }
    }

    /// Executes SQL directly; returns the database's error text on failure.
    pub async fn execute(&self, sql: &str) -> Result<u64, String> {
        match self.backend {
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(&mut conn)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(|e| e.to_string())
            }
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(&mut conn)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Makes every later write to `subscriptions` fail inside the database (a trigger), so a
    /// change fails after its orders, lines, events and messages were written and before it
    /// commits: the store's real transaction is put to the test, with no hook in its code.
    pub async fn fail_subscription_updates(&self) {
        let sql = match self.backend {
            Backend::Postgres => {
                "CREATE FUNCTION subsave_test_fault() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$; \
                 CREATE TRIGGER subsave_test_fault BEFORE UPDATE ON subscriptions \
                 FOR EACH ROW EXECUTE FUNCTION subsave_test_fault();"
            }
            Backend::Sqlite => {
                "CREATE TRIGGER subsave_test_fault BEFORE UPDATE ON subscriptions \
                 BEGIN SELECT RAISE(ABORT, 'injected fault'); END;"
            }
        };
        self.execute(sql).await.expect("install the fault trigger");
    }

    /// Removes the fault of [`TestDb::fail_subscription_updates`].
    pub async fn heal(&self) {
        let sql = match self.backend {
            Backend::Postgres => {
                "DROP TRIGGER subsave_test_fault ON subscriptions; DROP FUNCTION subsave_test_fault();"
            }
            Backend::Sqlite => "DROP TRIGGER subsave_test_fault;",
        };
        self.execute(sql).await.expect("remove the fault trigger");
    }
}

/// A test's database goes with it: the SQLite folder, or the PostgreSQL database (dropped
/// from a thread of its own, since `drop` cannot await; `WITH (FORCE)` closes the pool's
/// connections).
impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(name) = self.database.take() {
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime to drop the test database");
                runtime.block_on(async {
                    let mut admin = sqlx::PgConnection::connect(&admin_url()).await?;
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut admin)
                    .await
                    .map(|_| ())
                })
            })
            .join();
            if let Ok(Err(e)) = dropped {
                eprintln!("could not drop the test database: {e}");
            }
        }
    }
}

/// Defines each listed test once per backend: `postgres::NAME` and `sqlite::NAME`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
            )*
        }
    };
}

/// Seeds `n` customers, each with one active subscription whose cycle 1 is due at
/// 2026-01-31T14:00:00Z (09:00 New York), across the four plans. Plain SQL, for speed.
pub async fn seed_due(db: &TestDb, n: u32) {
    seed_due_at(db, n, at("2026-01-31T14:00:00Z")).await
}

/// Like [`seed_due`], with cycle 1 due at `due` (its local New York time is the anchor).
pub async fn seed_due_at(db: &TestDb, n: u32, due: DateTime<Utc>) {
    let tz: chrono_tz::Tz = "America/New_York".parse().unwrap();
    let anchor = due
        .with_timezone(&tz)
        .naive_local()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let due_text = due.format("%Y-%m-%dT%H:%M:%S+00:00").to_string();
    let sql = match db.backend {
        Backend::Postgres => format!(
            "INSERT INTO customers (email, name, time_zone, locale, tax_region, created_at) \
             SELECT 'c' || g || '@example.com', 'Customer ' || g, 'America/New_York', 'en-US', 'US-CA', \
             '2026-01-01T00:00:00Z' FROM generate_series(1, {n}) g; \
             INSERT INTO subscriptions (customer_id, plan_id, quantity, interval_count, interval_unit, \
             anchor_local, anchor_cycle, time_zone, next_cycle, next_renewal_at, status, orders_count, \
             created_at, updated_at) \
             SELECT id, (ARRAY['1-pack','2-pack','3-pack','6-pack'])[1 + id % 4], 1, \
             30 * (ARRAY[1,2,3,6])[1 + id % 4], 'day', '{anchor}', 1, 'America/New_York', 1, \
             '{due_text}', 'active', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z' FROM customers;"
        ),
        Backend::Sqlite => format!(
            "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {n}) \
             INSERT INTO customers (email, name, time_zone, locale, tax_region, created_at) \
             SELECT 'c' || n || '@example.com', 'Customer ' || n, 'America/New_York', 'en-US', 'US-CA', \
             '2026-01-01T00:00:00+00:00' FROM g; \
             INSERT INTO subscriptions (customer_id, plan_id, quantity, interval_count, interval_unit, \
             anchor_local, anchor_cycle, time_zone, next_cycle, next_renewal_at, status, orders_count, \
             created_at, updated_at) \
             SELECT id, CASE id % 4 WHEN 0 THEN '1-pack' WHEN 1 THEN '2-pack' WHEN 2 THEN '3-pack' ELSE '6-pack' END, 1, \
             30 * CASE id % 4 WHEN 0 THEN 1 WHEN 1 THEN 2 WHEN 2 THEN 3 ELSE 6 END, 'day', '{anchor}', 1, \
             'America/New_York', 1, '{due_text}', 'active', 1, '2026-01-01T00:00:00+00:00', \
             '2026-01-01T00:00:00+00:00' FROM customers;"
        ),
    };
    db.execute(&sql).await.expect("seed due subscriptions");
}

/// The exactly-once invariants after `n` seeded subscriptions were swept once at cycle 1.
pub async fn assert_billed_exactly_once(db: &TestDb, n: i64) {
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM orders").await,
        n,
        "one order per subscription"
    );
    assert_eq!(
        db.scalar("SELECT COUNT(DISTINCT subscription_id) FROM orders")
            .await,
        n
    );
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM orders WHERE cycle <> 1")
            .await,
        0
    );
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM subscriptions WHERE next_cycle = 2")
            .await,
        n,
        "each advanced exactly one cycle"
    );
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'order_confirmation'")
            .await,
        n,
        "one confirmation per order"
    );
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM (SELECT o.id FROM orders o JOIN order_lines l ON l.order_id = o.id GROUP BY o.id, o.total_minor HAVING SUM(l.amount_minor) <> o.total_minor) x").await,
        0,
        "every order's lines sum to its total"
    );
}

/// Mail settings for tests: SMTP to 127.0.0.1:`port` without TLS, small pool, fast retries.
pub fn mail_settings(port: u16) -> subsave::config::MailSettings {
    use subsave::config::{DeliverySettings, MailSettings, MailTransport, SmtpSettings, TlsMode};
    MailSettings {
        transport: MailTransport::Smtp,
        from: "Black Bala <orders@blackbala.example>".parse().unwrap(),
        reply_to: Some("Support <support@blackbala.example>".parse().unwrap()),
        file_dir: std::env::temp_dir().join(format!("subsave-mail-{}-{port}", std::process::id())),
        templates_dir: None,
        message_id_domain: None,
        smtp: SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            tls: TlsMode::None,
            username: None,
            password: None,
            timeout_secs: 5,
            pool_size: 2,
            ca_file: None,
        },
        delivery: DeliverySettings {
            max_attempts: 5,
            retry_base_secs: 60,
            retry_max_secs: 3600,
            concurrency: 4,
            rate_per_second: 1000,
            lease_secs: 300,
            batch_size: 50,
        },
    }
}

/// `subsave ARGS` on `db` (its URL as `SUBSAVE_DATABASE__URL`, with `env` besides): its standard
/// output, after asserting that it succeeded.
pub fn subsave_stdout(db: &TestDb, args: &[&str], env: &[(&str, &str)]) -> Vec<u8> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_subsave"))
        .args(args)
        .env("SUBSAVE_DATABASE__URL", &db.url)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `subsave ARGS` on `db` with its standard output closed before it writes (`… | head -0`):
/// its exit code and standard error.
pub fn subsave_closed_stdout(
    db: &TestDb,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Option<i32>, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_subsave"))
        .args(args)
        .env("SUBSAVE_DATABASE__URL", &db.url)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// CSV read back with a standard reader: the header and the rows.
pub fn csv_rows(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(bytes);
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

/// A decimal amount in major units ("-12.50") in cents; an empty cell is 0.
pub fn cents(text: &str) -> i64 {
    if text.is_empty() {
        return 0;
    }
    let (whole, frac) = text.split_once('.').unwrap();
    let sign = if whole.starts_with('-') { -1 } else { 1 };
    whole.parse::<i64>().unwrap() * 100 + sign * frac.parse::<i64>().unwrap()
}

/// Ada's address in Berlin: Germany, the default catalog's EU market (EUR).
pub fn berlin() -> subsave::core::address::RawAddress {
    subsave::core::address::RawAddress {
        name: "Ada Lovelace".into(),
        line1: "Unter den Linden 1".into(),
        city: "Berlin".into(),
        postal_code: Some("10117".into()),
        country: "DE".into(),
        ..Default::default()
    }
}
