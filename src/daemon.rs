//! `subsave run`: the long-running service. It owns the loops and their lifecycle:
//!
//! - the sweeper: on the crontab schedule (in `engine.time_zone`), one engine sweep;
//! - the payment worker (when subsave charges): collects due payments every
//!   `payments.poll_secs`;
//! - the mailer: delivers the outbox, woken by PostgreSQL notifications or every
//!   `daemon.mail_poll_secs`;
//! - the purger: keeps the partitioned history tables ahead of their ids (PostgreSQL), drops
//!   or deletes finished outbox messages past `outbox.retain_days`, and deletes the API's
//!   idempotency keys after 24 hours;
//! - the HTTP listener: health, readiness and metrics (`http.listen`, for operators);
//! - the customer pages (`web.listen`, for customers, through a proxy): see [`crate::web`];
//! - the operations and finance console (`admin.listen`, when set): see [`crate::console`];
//!   its overview's refresher, which keeps the default period's metrics report fresh.
//!
//! It is the one composition root: it builds the link signer once (the mailer signs with it,
//! the pages and the console verify and show with it), one database outage log that every
//! loop, the API and the connection at start report to, every router and listener, and every
//! loop. Workers and doors expose one round of work ("deliver what is due", "collect what is
//! due", "refresh the overview"); the loops, their metrics and their shutdown are here.
//!
//! Faults: a database or SMTP outage is logged once when it starts and once when it ends, and
//! retried; nothing is lost because every change is transactional and every message waits in
//! the outbox. Shutdown: on the stop signal each loop finishes the item in hand (the batch or
//! the sends) and returns; `run` waits for them up to `daemon.shutdown_grace_secs`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::clock::Clock;
use crate::config::Settings;
use crate::core::links::Links;
use crate::engine::{Engine, PlanCheckError, check_plans};
use crate::http::{self, HttpState};
use crate::mail::mailer::Mailer;
use crate::mail::transport;
use crate::metrics::Metrics;
use crate::outage::Outage;
use crate::store::{self, Store};

/// The database or the catalog does not fit this build: a person must act (run `subsave
/// migrate`, put a plan back in the catalog), and restarting will not help. The binary exits 2
/// for it, which the systemd unit does not restart.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(pub String);

/// Runs until `stop` is cancelled, then waits for the loops up to the grace period; past it,
/// abandons what is in hand and gives back its leases. Returns an error only for a start-up
/// failure: a [`SetupError`] when the schema or the catalog does not fit. The steps: open the
/// store, bind the listeners, build the doors, spawn the workers, serve the doors, drain on
/// stop.
pub async fn run(
    settings: Settings,
    clock: Arc<dyn Clock>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    // SQLite has one writer: a second daemon on the same file refuses to start. The lock is
    // held until `run` returns (the process's end releases it too, even after kill -9).
    let _single_writer = match settings.database.url.sqlite_file() {
        Some(file) => Some(lock_sqlite(&file)?),
        None => None,
    };
    // Every loop, the API's requests and the connection at start report the database's state
    // to one tracker, so an outage is logged once.
    let database = Arc::new(Outage::new("database"));
    let Some(store) = open_store(&settings, &database, &stop).await? else {
        return Ok(());
    };
    let metrics = Arc::new(Metrics::new());
    let currencies = settings.catalog.currencies();
    metrics.start(
        &settings.catalog.plan_id_list(),
        &currencies.iter().map(|c| c.code()).collect::<Vec<_>>(),
        clock.now().timestamp_millis() as f64 / 1000.0,
    );
    if settings.mail.transport == crate::config::MailTransport::File
        && store.backend() == crate::store::Backend::Postgres
    {
        tracing::warn!(
            folder = %settings.mail.file_dir.display(),
            "mail.transport is \"file\" against PostgreSQL: customer emails are written as .eml files in that folder and marked sent, not mailed; set mail.transport = \"smtp\" (SUBSAVE_MAIL__TRANSPORT=smtp) to mail them"
        );
    }
    let listeners = Listeners::bind(&settings).await?;
    // One link signer, built here: the mailer signs with it, the pages and the console verify
    // and show with it; none of them reads the key file.
    let links = crate::link_keys::links(&settings.web)?;
    let doors = Doors::build(&settings, &store, &clock, &database, &links)?;
    tracing::info!(
        listen = %settings.http.listen,
        pages = %settings.web.listen,
        console = ?settings.admin.listen,
        public_url = %settings.web.public_url,
        database = %settings.database.url,
        mail = ?settings.mail.transport,
        sweep = %settings.engine.sweep,
        "subsave running"
    );

    let mut tasks = JoinSet::new();
    let workers = Workers {
        settings: &settings,
        store: &store,
        clock: &clock,
        metrics: &metrics,
        database: &database,
        stop: &stop,
    };
    let leases = workers.spawn(&mut tasks, links)?;
    let state = HttpState {
        store: store.clone(),
        metrics,
        clock,
    };
    doors.serve(&mut tasks, listeners, state, settings.http.limits(), &stop);

    stop.cancelled().await;
    let grace = Duration::from_secs(settings.daemon.shutdown_grace_secs);
    drain(tasks, grace, store.as_ref(), leases).await;
    Ok(())
}

/// Connects (retrying while the database is unreachable, reporting to `database`), applies
/// the migrations when `database.migrate_on_start` says so, and checks that the schema and
/// the catalog fit this build; `None` when stopped meanwhile.
async fn open_store(
    settings: &Settings,
    database: &Outage,
    stop: &CancellationToken,
) -> anyhow::Result<Option<Arc<dyn Store>>> {
    let Some(store) = connect(settings, database, stop).await? else {
        return Ok(None);
    };
    if settings.database.migrate_on_start {
        store
            .migrate()
            .await
            .context("applying migrations at start")?;
    }
    if let Err(store::NotReady::Schema(reason)) = store.ready().await {
        return Err(SetupError(reason).into());
    }
    match check_plans(store.as_ref(), &settings.catalog).await {
        Ok(()) => Ok(Some(store)),
        Err(PlanCheckError::Missing(reason)) => Err(SetupError(reason).into()),
        Err(PlanCheckError::Store(error)) => {
            Err(error).context("reading the plans subscriptions use")
        }
    }
}

/// The listeners, bound before anything is served, so that a taken address fails the start.
struct Listeners {
    /// `http.listen`: health, readiness and metrics.
    ops: TcpListener,
    /// `web.listen`: the customer pages and the API.
    public: TcpListener,
    /// `admin.listen`, when set: the console.
    console: Option<TcpListener>,
}

impl Listeners {
    async fn bind(settings: &Settings) -> anyhow::Result<Listeners> {
        let ops = TcpListener::bind(settings.http.listen)
            .await
            .with_context(|| format!("http.listen {}: cannot listen", settings.http.listen))?;
        let public = TcpListener::bind(settings.web.listen)
            .await
            .with_context(|| format!("web.listen {}: cannot listen", settings.web.listen))?;
        let console = match settings.admin.listen {
            Some(address) => Some(
                TcpListener::bind(address)
                    .await
                    .with_context(|| format!("admin.listen {address}: cannot listen"))?,
            ),
            None => None,
        };
        Ok(Listeners {
            ops,
            public,
            console,
        })
    }
}

/// The doors, each over its own `App`: the pages and the API on the public listener, the
/// console on its own when `admin.listen` is set.
struct Doors {
    pages: crate::web::Web,
    api: crate::api::Api,
    console: Option<crate::console::Console>,
}

impl Doors {
    fn build(
        settings: &Settings,
        store: &Arc<dyn Store>,
        clock: &Arc<dyn Clock>,
        database: &Arc<Outage>,
        links: &Links,
    ) -> anyhow::Result<Doors> {
        let app = || crate::app::App::new(store.clone(), Arc::new(settings.clone()), clock.clone());
        let console = match settings.admin.listen {
            Some(_) => Some(
                crate::console::Console::new(app(), links.clone())
                    .context("starting the console")?,
            ),
            None => None,
        };
        Ok(Doors {
            pages: crate::web::Web::new(app(), links.clone()),
            api: crate::api::Api::new(app(), database.clone()),
            console,
        })
    }

    /// Serves the ops listener, the public one and the console's (with its overview's loop),
    /// each until `stop`, as tasks of `tasks`.
    fn serve(
        self,
        tasks: &mut JoinSet<()>,
        listeners: Listeners,
        state: HttpState,
        limits: crate::listener::Limits,
        stop: &CancellationToken,
    ) {
        let http_stop = stop.clone();
        tasks.spawn(async move {
            if let Err(error) = http::serve(listeners.ops, state, limits, http_stop).await {
                tracing::error!(%error, "http listener failed");
            }
        });
        let (pages, api, public_stop) = (self.pages, self.api, stop.clone());
        tasks.spawn(async move {
            if let Err(error) =
                serve_public(listeners.public, pages, api, limits, public_stop).await
            {
                tracing::error!(%error, "public listener (customer pages and API) failed");
            }
        });
        if let (Some(listener), Some(console)) = (listeners.console, self.console) {
            let console = Arc::new(console);
            tasks.spawn(overview_refresher(console.clone(), stop.clone()));
            let console_stop = stop.clone();
            tasks.spawn(async move {
                if let Err(error) = serve_console(listener, console, limits, console_stop).await {
                    tracing::error!(%error, "console listener failed");
                }
            });
        }
    }
}

/// What the workers are built from.
struct Workers<'a> {
    settings: &'a Settings,
    store: &'a Arc<dyn Store>,
    clock: &'a Arc<dyn Clock>,
    metrics: &'a Arc<Metrics>,
    database: &'a Arc<Outage>,
    stop: &'a CancellationToken,
}

/// The leases the workers hold and have not finished, for [`drain`] to give back.
struct Leases {
    mail: crate::mail::mailer::InHand,
    payments: Option<crate::payments::PaymentsInHand>,
}

impl Workers<'_> {
    /// Spawns the sweeper, the mailer (signing with `links`), the payment worker (when subsave
    /// charges: `payments.provider`) and the purger as tasks of `tasks`, each in its loop.
    fn spawn(&self, tasks: &mut JoinSet<()>, links: Links) -> anyhow::Result<Leases> {
        let Workers {
            settings,
            store,
            clock,
            metrics,
            database,
            stop,
        } = *self;
        let engine = Engine::from_settings(store.clone(), settings).with_stop(stop.clone());
        tasks.spawn(sweeper(
            engine,
            settings.clone(),
            clock.clone(),
            metrics.clone(),
            database.clone(),
            stop.clone(),
        ));
        let transport = transport::from_settings(&settings.mail).map_err(|e| anyhow::anyhow!(e))?;
        let mailer = Mailer::new(store.clone(), Arc::from(transport), &settings.mail)
            .with_delivery_window(settings.reminders.window)
            .with_links(links)
            .with_plan_names(&settings.catalog)
            .with_webhooks(&settings.webhooks)
            .with_stop(stop.clone());
        let leases_of_mail = mailer.in_hand();
        let poll = Duration::from_secs(settings.daemon.mail_poll_secs);
        tasks.spawn(mail_loop(
            mailer,
            store.clone(),
            poll,
            clock.clone(),
            metrics.clone(),
            database.clone(),
            stop.clone(),
        ));
        let mut leases_of_payments = None;
        if let Some(collector) = crate::payments::Collector::from_settings(store.clone(), settings)
            .map_err(|e| anyhow::anyhow!(e))?
        {
            let collector = collector.with_stop(stop.clone());
            leases_of_payments = Some(collector.in_hand());
            tasks.spawn(payments_loop(
                collector,
                clock.clone(),
                metrics.clone(),
                database.clone(),
                stop.clone(),
            ));
        }
        tasks.spawn(purger(
            store.clone(),
            settings.outbox.clone(),
            clock.clone(),
            metrics.clone(),
            stop.clone(),
        ));
        Ok(Leases {
            mail: leases_of_mail,
            payments: leases_of_payments,
        })
    }
}

/// After the stop: waits for the tasks up to `grace`. Past it they are abandoned, and the
/// leases in hand given back so that another replica (or the next start) sends those messages
/// and charges those payments at once. A stop is still a stop: nothing here fails the run.
async fn drain(mut tasks: JoinSet<()>, grace: Duration, store: &dyn Store, leases: Leases) {
    tracing::info!(
        grace_secs = grace.as_secs(),
        "stopping: finishing the work in hand"
    );
    let drained =
        tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_ok() {
        tracing::info!("stopped cleanly");
        return;
    }
    tasks.shutdown().await;
    if let Some(payments) = leases.payments {
        match payments.release(store).await {
            Ok(n) => tracing::warn!(
                released = n,
                "charges in hand did not finish within daemon.shutdown_grace_secs; gave back their payments' leases (each is looked up at the provider before it is charged again)"
            ),
            Err(error) => tracing::warn!(
                %error,
                "charges in hand did not finish within daemon.shutdown_grace_secs, and their leases could not be given back (they expire after payments.lease_secs)"
            ),
        }
    }
    match leases.mail.release(store).await {
        Ok(n) => tracing::warn!(
            grace_secs = grace.as_secs(),
            released = n,
            "work in hand did not finish within daemon.shutdown_grace_secs; abandoned it and gave back its messages' leases"
        ),
        Err(error) => tracing::warn!(
            grace_secs = grace.as_secs(),
            %error,
            "work in hand did not finish within daemon.shutdown_grace_secs; abandoned it, and its leases could not be given back (they expire after mail.delivery.lease_secs)"
        ),
    }
}

/// Takes the lock that makes one daemon the only one on the SQLite database `file`
/// (`FILE.run-lock`, an advisory lock the system releases when the process ends), writing who
/// holds it; a second daemon is refused with where the first one runs.
fn lock_sqlite(file: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    let mut path = file.as_os_str().to_owned();
    path.push(".run-lock");
    let path = std::path::PathBuf::from(path);
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut lock = options
        .open(&path)
        .with_context(|| format!("opening the SQLite run lock {}", path.display()))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = lock.read_to_string(&mut holder);
            let holder = crate::core::text::printable(holder.trim()).into_owned();
            return Err(SetupError(format!(
                "another `subsave run` already uses the SQLite database {} ({}); SQLite has one writer: stop that daemon first, or move to PostgreSQL to run several",
                file.display(),
                if holder.is_empty() { "its process holds the lock" } else { &holder }
            ))
            .into());
        }
        Err(std::fs::TryLockError::Error(error)) => {
            return Err(error)
                .with_context(|| format!("locking the SQLite run lock {}", path.display()));
        }
    }
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let host = match host.trim() {
        "" => "this host",
        name => name,
    };
    lock.set_len(0)?;
    lock.rewind()?;
    write!(lock, "pid {} on {host}", std::process::id())?;
    Ok(lock)
}

/// Serves the public listener: the customer pages and the HTTP API (`/v1`), each router with
/// its own guards (and its own words for what the listener refuses), until `stop` is
/// cancelled. Composed here: no door builds another.
pub async fn serve_public(
    listener: tokio::net::TcpListener,
    web: crate::web::Web,
    api: crate::api::Api,
    limits: crate::listener::Limits,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let public = crate::web::router(Arc::new(web)).merge(crate::api::router(Arc::new(api)));
    crate::listener::serve(listener, public, limits, public_refusal, stop).await
}

/// Serves the console on its own listener, under the same limits as the others, until `stop`
/// is cancelled. Its overview is kept fresh by [`overview_refresher`], beside it.
pub async fn serve_console(
    listener: tokio::net::TcpListener,
    console: Arc<crate::console::Console>,
    limits: crate::listener::Limits,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let router = crate::console::router(console);
    crate::listener::serve(listener, router, limits, crate::listener::plain, stop).await
}

/// The console overview's loop: the default period's report found from the start and then
/// every `admin.overview_refresh_secs` / 2 (`console::overview_refresh_every`), until `stop`;
/// a computation in hand at the stop is abandoned (it writes nothing until it ends).
pub async fn overview_refresher(console: Arc<crate::console::Console>, stop: CancellationToken) {
    let every = crate::console::overview_refresh_every(&console);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = crate::console::refresh_overview(&console) => {}
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// The public listener's refusals: the API's as problems, the pages' in plain text.
fn public_refusal(refused: &crate::listener::Refused<'_>) -> axum::response::Response {
    if crate::api::answers(refused.path) {
        crate::api::refused(refused)
    } else {
        crate::listener::plain(refused)
    }
}

/// Connects, retrying while the database is unreachable; `None` when stopped meanwhile.
async fn connect(
    settings: &Settings,
    outage: &Outage,
    stop: &CancellationToken,
) -> anyhow::Result<Option<Arc<dyn Store>>> {
    let mut delay = Duration::from_secs(1);
    loop {
        // A stop while connecting stops at once, not after the pool's connect timeout.
        let connected = tokio::select! {
            connected = store::connect(&settings.database) => connected,
            () = stop.cancelled() => return Ok(None),
        };
        match connected {
            Ok(store) => {
                outage.recovered();
                return Ok(Some(store));
            }
            Err(error) if error.is_retryable() => outage.failed(&error),
            // A missing database, folder or wrong password: a person must act.
            Err(error @ store::StoreError::Connect { .. }) => {
                return Err(SetupError(error.to_string()).into());
            }
            Err(error) => return Err(error).context("connecting to the database"),
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop.cancelled() => return Ok(None),
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

async fn sweeper(
    engine: Engine,
    settings: Settings,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    outage: Arc<Outage>,
    stop: CancellationToken,
) {
    let tz = settings.engine.time_zone;
    loop {
        let now = clock.now();
        let Some(next) = settings.engine.sweep.next_after(&now.with_timezone(&tz)) else {
            tracing::error!(sweep = %settings.engine.sweep, "the sweep schedule has no next run; sweeping stops");
            return;
        };
        let wait = (next.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or_default();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stop.cancelled() => return,
        }
        let at = clock.now();
        let started = std::time::Instant::now();
        let span = tracing::info_span!("sweep", now = %at.to_rfc3339());
        match engine.sweep(at).instrument(span.clone()).await {
            Ok(report) => {
                outage.recovered();
                let seconds = started.elapsed().as_secs_f64();
                metrics.record_sweep(
                    &report,
                    seconds,
                    clock.now().timestamp_millis() as f64 / 1000.0,
                );
                let _entered = span.enter();
                if report.orders + report.resumed + report.reminders + report.held > 0 {
                    tracing::info!(
                        orders = report.orders,
                        resumed = report.resumed,
                        reminders = report.reminders,
                        held = report.held,
                        missed = report.missed,
                        batches = report.batches,
                        seconds,
                        "sweep finished"
                    );
                } else {
                    tracing::debug!(seconds, "sweep found nothing due");
                }
            }
            Err(error) => {
                metrics.database_error();
                if error.is_retryable() {
                    outage.failed(&error);
                } else {
                    tracing::error!(%error, "sweep failed; the next scheduled sweep retries");
                }
            }
        }
    }
}

/// Messages deleted per statement: small enough that a purge never holds many row locks or
/// a long transaction.
const PURGE_BATCH: u32 = 1000;
/// How often the purger makes partitions ahead and looks for messages past `outbox.retain_days`.
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// Every [`PURGE_EVERY`]: keeps the partitioned history tables ahead of their ids and drops
/// outbox partitions wholly past `outbox.retain_days` (PostgreSQL), then deletes the finished
/// messages past it that remain, a batch at a time; stops between batches on the stop signal.
async fn purger(
    store: Arc<dyn Store>,
    outbox: crate::config::OutboxSettings,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    loop {
        let now = clock.now();
        let retain_before = (outbox.retain_days > 0).then(|| outbox.cutoff(now));
        match store.maintain_partitions(retain_before).await {
            Ok(upkeep) => {
                if upkeep.partitions_made > 0 {
                    tracing::info!(
                        made = upkeep.partitions_made,
                        "history partitions made ahead"
                    );
                }
                if upkeep.outbox_rows_dropped > 0 {
                    metrics.record_purge(upkeep.outbox_rows_dropped);
                    tracing::info!(
                        deleted = upkeep.outbox_rows_dropped,
                        retain_days = outbox.retain_days,
                        "outbox partitions past retention dropped"
                    );
                }
            }
            Err(error) => {
                metrics.database_error();
                tracing::warn!(%error, "partition upkeep failed; the next round retries");
            }
        }
        if let Some(before) = retain_before {
            let deleted = purge_all(&stop, &metrics, "outbox", |limit| {
                store.purge_finished(before, limit)
            })
            .await;
            if deleted > 0 {
                metrics.record_purge(deleted);
                tracing::info!(deleted, retain_days = outbox.retain_days, "outbox purged");
            }
        }
        let before = now - crate::api::IDEMPOTENCY_KEYS_KEPT;
        let deleted = purge_all(&stop, &metrics, "idempotency keys", |limit| {
            store.purge_idempotency_keys(before, limit)
        })
        .await;
        if deleted > 0 {
            tracing::info!(deleted, "idempotency keys older than 24 hours purged");
        }
        tokio::select! {
            () = tokio::time::sleep(PURGE_EVERY) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// Deletes in batches of [`PURGE_BATCH`] until none is left, the stop, or an error (logged;
/// the next round retries). Returns how many were deleted.
async fn purge_all<F, Fut>(stop: &CancellationToken, metrics: &Metrics, what: &str, purge: F) -> u64
where
    F: Fn(u32) -> Fut,
    Fut: std::future::Future<Output = Result<u64, crate::store::StoreError>>,
{
    let mut deleted = 0;
    while !stop.is_cancelled() {
        match purge(PURGE_BATCH).await {
            Ok(0) => break,
            Ok(n) => deleted += n,
            Err(error) => {
                metrics.database_error();
                tracing::warn!(%error, what, "purge failed; the next round retries");
                break;
            }
        }
    }
    deleted
}

async fn mail_loop(
    mailer: Mailer,
    store: Arc<dyn Store>,
    poll: Duration,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    database: Arc<Outage>,
    stop: CancellationToken,
) {
    loop {
        if stop.is_cancelled() {
            return;
        }
        // The mail server's outages are logged by the mailer, from each send's outcome.
        match mailer.deliver_due(clock.as_ref()).await {
            Ok(report) => {
                database.recovered();
                metrics.record_delivery(&report);
            }
            Err(error) => {
                metrics.database_error();
                database.failed(&error);
            }
        }
        tokio::select! {
            () = store.wait_for_outbox(poll) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// The payment worker's loop: collect what is due by the clock, then wait `payments.poll_secs`.
async fn payments_loop(
    collector: crate::payments::Collector,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    database: Arc<Outage>,
    stop: CancellationToken,
) {
    while !stop.is_cancelled() {
        match collector.collect(clock.now()).await {
            Ok(report) => {
                database.recovered();
                metrics.record_collection(&report);
                if report.claimed > 0 {
                    tracing::info!(
                        claimed = report.claimed,
                        paid = report.paid,
                        declined = report.declined,
                        requires_action = report.requires_action,
                        postponed = report.postponed,
                        "payments collected"
                    );
                }
            }
            Err(error) => {
                metrics.database_error();
                database.failed(&error);
            }
        }
        tokio::select! {
            () = tokio::time::sleep(collector.poll()) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// A token cancelled by the first SIGTERM or SIGINT; a second signal exits at once (every
/// change is a transaction, so stopping mid-batch loses nothing).
pub fn stop_on_signals() -> anyhow::Result<CancellationToken> {
    use tokio::signal::unix::{SignalKind, signal};
    let stop = CancellationToken::new();
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let token = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::info!("stop signal received; send another to exit at once");
        token.cancel();
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::warn!("second stop signal: exiting now");
        std::process::exit(1);
    });
    Ok(stop)
}
