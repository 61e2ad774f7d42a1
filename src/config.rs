//! Layered configuration: built-in defaults < a config file < `SUBSAVE_…` environment variables.
//!
//! Owns reading the config and catalog files, the environment and `*_file` secrets, and turning
//! them into [`Settings`], where every value is parsed (time zones, crontab, intervals, money).
//! Unknown keys are errors. A relative path in a config file is relative to that file's
//! folder (in the environment or the built-in defaults, to the working directory). Every
//! error is a [`ConfigError`] naming the source (file or environment variable), the key, the
//! bad value and what was expected. Secrets are wrapped in
//! [`Secret`], whose `Debug`/`Display`/`Serialize` never reveal them. This is an edge module: it
//! does IO; nothing past it re-parses config.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use figment::value::magic::RelativePathBuf;
use lettre::message::Mailbox;
use serde::{Deserialize, Serialize, Serializer};

use crate::core::catalog::{Catalog, FieldError, RawCatalog};
use crate::core::cron_schedule::CronSchedule;
use crate::core::renewal::CatchUp;
use crate::core::schedule::{DeliveryWindow, TimeOfDay, parse_time_zone};
pub use crate::core::secret::Secret;
use crate::store::redact_url_password;
pub use crate::store::{Backend, DatabaseSettings, DatabaseUrl};

/// The embedded default configuration (SQLite file database, file mail transport).
pub const DEFAULT_CONFIG: &str = include_str!("../config/default.toml");
/// The embedded default catalog.
pub const DEFAULT_CATALOG: &str = include_str!("../config/catalog.toml");

const DEFAULT_CONFIG_NAME: &str = "built-in config/default.toml";
/// How `catalog_source` names the built-in catalog.
pub const DEFAULT_CATALOG_NAME: &str = "built-in config/catalog.toml";
const ENV_PREFIX: &str = "SUBSAVE_";

/// A configuration problem: where, which key, what value, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub source_name: String,
    pub key: String,
    pub value: String,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "config error in {}: {}", self.source_name, self.problem)
        } else {
            write!(
                f,
                "config error in {}: key `{}` = {}: {}",
                self.source_name, self.key, self.value, self.problem
            )
        }
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    fn from_field(source_name: impl Into<String>, field: FieldError) -> ConfigError {
        ConfigError {
            source_name: source_name.into(),
            key: field.key,
            value: field.value,
            problem: field.problem,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    Smtp,
    File,
    Log,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain SMTP, for a relay on loopback.
    None,
    Starttls,
    /// Implicit TLS (SMTPS, usually port 465).
    Tls,
}

#[derive(Debug, Clone, Serialize)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub timeout_secs: u64,
    pub pool_size: u32,
    /// PEM certificates to trust besides the public roots (a private CA's relay).
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MailSettings {
    pub transport: MailTransport,
    #[serde(serialize_with = "serialize_display")]
    pub from: Mailbox,
    #[serde(serialize_with = "serialize_option_display")]
    pub reply_to: Option<Mailbox>,
    pub file_dir: PathBuf,
    /// Templates here override the embedded ones, file by file.
    pub templates_dir: Option<PathBuf>,
    /// The domain of each email's Message-ID; the sender's domain when unset.
    pub message_id_domain: Option<String>,
    pub smtp: SmtpSettings,
    pub delivery: DeliverySettings,
}

/// How the mailer works through the outbox.
#[derive(Debug, Clone, Serialize)]
pub struct DeliverySettings {
    /// Attempts before a transiently failing message becomes `failed`.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt, with up to 50 % jitter, capped at `retry_max_secs`.
    pub retry_base_secs: u64,
    pub retry_max_secs: u64,
    /// Messages in flight at once.
    pub concurrency: u32,
    /// Messages per second, at most (providers enforce one).
    pub rate_per_second: u32,
    /// How long a claimed message stays reserved; a crashed mailer's messages return after it.
    pub lease_secs: u64,
    /// Messages claimed per round.
    pub batch_size: u32,
}

fn serialize_display<S: Serializer, T: fmt::Display>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

fn serialize_option_display<S: Serializer, T: fmt::Display>(
    value: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EngineSettings {
    pub sweep: CronSchedule,
    #[serde(serialize_with = "serialize_tz")]
    pub time_zone: Tz,
    pub renewal_time: TimeOfDay,
    pub batch_size: u32,
    /// Batches in flight at once on PostgreSQL (SQLite always uses one).
    pub workers: u32,
    pub catch_up: CatchUp,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReminderSettings {
    pub lead_days: Vec<u32>,
    pub window: DeliveryWindow,
}

#[derive(Debug, Clone, Serialize)]
pub struct HttpSettings {
    pub listen: SocketAddr,
    /// Connections served at once; more wait in the kernel's queue.
    pub max_connections: u32,
    /// A request's headers must arrive within this long (also an idle connection's limit).
    pub header_timeout_secs: u64,
    /// A request is answered within this long, or with 503.
    pub request_timeout_secs: u64,
    /// A connection is closed after this long, whatever it does.
    pub connection_lifetime_secs: u64,
    pub max_body_bytes: u32,
}

impl HttpSettings {
    pub fn limits(&self) -> crate::listener::Limits {
        crate::listener::Limits {
            max_connections: self.max_connections as usize,
            header_timeout: std::time::Duration::from_secs(self.header_timeout_secs),
            request_timeout: std::time::Duration::from_secs(self.request_timeout_secs),
            connection_lifetime: std::time::Duration::from_secs(self.connection_lifetime_secs),
            max_body_bytes: self.max_body_bytes as usize,
        }
    }
}

/// How `subsave run` behaves as a long-running process.
#[derive(Debug, Clone, Serialize)]
pub struct DaemonSettings {
    /// After SIGTERM/SIGINT, how long the batch and sends in hand may take before exiting.
    pub shutdown_grace_secs: u64,
    /// How often the mailer looks at the outbox without a notification (always, on SQLite).
    pub mail_poll_secs: u64,
}

/// Finance's view of time, and the accounting system's names for its accounts.
#[derive(Debug, Clone, Serialize)]
pub struct FinanceSettings {
    /// The zone whose calendar day an order is booked on (its billing date).
    #[serde(serialize_with = "serialize_tz")]
    pub time_zone: Tz,
    pub accounts: Accounts,
}

/// The chart of accounts the journal (`report journal`) books to, as the accounting system
/// names them (`[finance.accounts]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Accounts {
    /// Owed by customers: an order's total until it is collected.
    pub receivable: String,
    /// Sales net of tax, before discounts (shipping included).
    pub revenue: String,
    /// Discounts given (subscribe-and-save, loyalty, coupons, price promises).
    pub discounts: String,
    /// Tax collected for the tax authority (added or included).
    pub tax_payable: String,
    /// Money collected by the payment provider (net of its fees).
    pub cash: String,
    /// The payment provider's fees.
    pub fees: String,
    /// Refunds (credit notes) net of tax.
    pub refunds: String,
    /// Money the storefront collected (`external` orders).
    pub storefront: String,
}

/// Longest account name accepted.
const ACCOUNT_NAME_MAX: usize = 100;

/// How shipments are told to customers: the carriers' tracking pages.
#[derive(Debug, Clone, Serialize)]
pub struct FulfillmentSettings {
    /// By carrier key (usps, ups, fedex, dhl, or another carrier's name): the built-in pages
    /// with the configured ones over them.
    pub tracking_urls: crate::core::fulfillment::TrackingUrls,
}

/// Where events go: the storefront's or warehouse's HTTP endpoints, signed per Standard
/// Webhooks, delivered from the outbox by the mail worker.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookSettings {
    /// How long a receiver may take to answer.
    pub timeout_secs: u64,
    pub endpoints: Vec<crate::core::webhooks::Endpoint>,
}

/// Who collects the money, and what happens when a charge fails (`[payments]`).
#[derive(Debug, Clone, Serialize)]
pub struct PaymentSettings {
    /// `none`: the storefront collects (orders are `external`); `stripe`; `simulated` (demo).
    pub provider: crate::core::model::ProviderKind,
    /// Retries after a decline, in days after the order's first try.
    pub retry_days: Vec<u32>,
    pub on_final_failure: crate::core::dunning::FinalAction,
    pub hold_renewals_while_unpaid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_payment_url: Option<String>,
    /// Payments one worker claims at once, charged by `concurrency` tasks.
    pub batch_size: u32,
    pub concurrency: u32,
    /// How long a claimed payment is the worker's alone.
    pub lease_secs: u64,
    /// How often the worker looks for payments due.
    pub poll_secs: u64,
    /// How long the provider may take to answer one request.
    pub timeout_secs: u64,
    pub stripe: StripeSettings,
}

impl PaymentSettings {
    /// The dunning rules, as the pure core takes them.
    pub fn policy(&self) -> crate::core::dunning::DunningPolicy {
        crate::core::dunning::DunningPolicy {
            retry_days: self.retry_days.clone(),
            final_action: self.on_final_failure,
            hold_renewals: self.hold_renewals_while_unpaid,
            update_payment_url: self.update_payment_url.clone(),
        }
    }
}

/// Stripe's API and the secrets that talk to it.
#[derive(Debug, Clone, Serialize)]
pub struct StripeSettings {
    /// `https://api.stripe.com`, or a stand-in such as localstripe.
    pub api_base: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<Secret>,
    /// Signing secrets of the webhook endpoint (`whsec_…`), comma-separated: several during a
    /// rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secrets: Option<Secret>,
    /// The publishable key (`pk_…`) Stripe.js uses on the customer's card page; unset, that
    /// page cannot take a card.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publishable_key: Option<String>,
    /// Where the card page loads Stripe.js from (`https://js.stripe.com/v3/`, or a
    /// stand-in's); its origin is the only one the page's CSP lets in.
    pub js_url: String,
}

impl StripeSettings {
    /// Each webhook signing secret.
    pub fn webhook_secret_list(&self) -> Vec<&str> {
        self.webhook_secrets
            .as_ref()
            .map(|s| {
                s.expose()
                    .split([',', '\n'])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The HTTP API (`/v1`, on the public listener `web.listen`).
#[derive(Debug, Clone, Serialize)]
pub struct ApiSettings {
    /// Requests per minute one key may send; more get 429.
    pub requests_per_minute: u32,
}

/// The notices customers get about their subscription's terms.
#[derive(Debug, Clone, Serialize)]
pub struct NoticeSettings {
    /// The version of the subscription terms customers agree to now, recorded with each
    /// consent (`subs create`).
    pub terms_version: String,
    /// How many days before a renewal its price is checked; a rise gets a notice then
    /// (7 to 30: the notice must arrive at least 7 and at most 30 days ahead).
    pub price_change_days: u32,
}

/// The one offer a customer sees before cancelling, passed with one click.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelOffer {
    /// Skip the next renewal instead.
    Skip,
    /// Pause instead.
    Pause,
    /// No offer: the cancel page asks only for confirmation.
    None,
}

/// Where the keys that sign customer links come from.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKeySource {
    /// `web.link_keys` (or `SUBSAVE_WEB__LINK_KEYS`): `ID:SECRET` entries, the first signs.
    Given(Secret),
    /// `web.link_keys_file`: one `ID:SECRET` per line; created with one random key if missing.
    File(PathBuf),
}

/// The customer pages: where they listen, the links that open them, and their limits.
#[derive(Debug, Clone, Serialize)]
pub struct WebSettings {
    pub listen: SocketAddr,
    /// The base of the links in emails, as customers reach the pages (a proxy's https URL).
    pub public_url: String,
    /// A link works for this many days after its email is sent.
    pub link_ttl_days: u32,
    pub link_keys: LinkKeySource,
    /// Where the link keys came from (a file, an environment variable), for errors.
    #[serde(skip)]
    pub link_keys_source: String,
    /// How far ahead (days from today) a customer may move the next renewal.
    pub move_max_days: u32,
    /// How many days after its cancellation a subscription may be restarted.
    pub restart_days: u32,
    /// The storefront, where a customer whose subscription can no longer be restarted
    /// subscribes again.
    pub storefront_url: Option<String>,
    pub cancel_offer: CancelOffer,
    /// Requests per minute from one client address, and through one link.
    pub requests_per_minute: u32,
    pub link_requests_per_minute: u32,
}

impl WebSettings {
    /// The link signer, reading (and, the first time, creating) the key file.
    pub fn link_signer(&self) -> Result<crate::core::links::LinkSigner, ConfigError> {
        let problem = |value: String, problem: String| ConfigError {
            source_name: self.link_keys_source.clone(),
            key: match self.link_keys {
                LinkKeySource::Given(_) => "web.link_keys".into(),
                LinkKeySource::File(_) => "web.link_keys_file".into(),
            },
            value,
            problem,
        };
        let text = match &self.link_keys {
            LinkKeySource::Given(keys) => keys.expose().to_owned(),
            LinkKeySource::File(path) => {
                let shown = format!("\"{}\"", path.display());
                if !path.exists() {
                    create_key_file(path).map_err(|e| {
                        problem(
                            shown.clone(),
                            format!("cannot create the link key file: {e}"),
                        )
                    })?;
                }
                std::fs::read_to_string(path).map_err(|e| {
                    problem(shown.clone(), format!("cannot read the link key file: {e}"))
                })?
            }
        };
        crate::core::links::parse_keys(&text)
            .map(|keys| {
                crate::core::links::LinkSigner::new(keys).expect("parse_keys returns a key")
            })
            .map_err(|p| problem("[redacted]".into(), p))
    }

    /// How emails link to the pages: the public URL, the signer and the links' lifetime.
    pub fn links(&self) -> Result<crate::core::links::Links, ConfigError> {
        Ok(crate::core::links::Links::new(
            &self.public_url,
            self.link_signer()?,
            chrono::TimeDelta::days(i64::from(self.link_ttl_days)),
        ))
    }
}

/// A key file with one random key, readable by its owner only.
fn create_key_file(path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| std::io::Error::other(e.to_string()))?;
    let line = crate::core::links::key_line("k1", &secret);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path)?;
    writeln!(
        file,
        "# subsave link keys: ID:SECRET, one per line; the first signs, all verify.\n# Every instance must share this file. Rotate by adding a new first line; drop an old\n# line once the links it signed have expired (web.link_ttl_days)."
    )?;
    writeln!(file, "{line}")
}

/// The operations and finance console (`admin.listen`): off unless it has an address.
#[derive(Debug, Clone, Serialize)]
pub struct AdminSettings {
    /// Where the console listens; `None` (the default) serves no console.
    pub listen: Option<SocketAddr>,
    /// The console's address as its users reach it (a proxy's https URL); session cookies are
    /// `Secure` when it (or `web.public_url`) is https.
    pub public_url: Option<String>,
    /// A header an authenticating proxy sets to the signed-in person's name, believed only from
    /// `trusted_proxies`.
    pub trusted_header: Option<String>,
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// A console session ends this many minutes after sign-in.
    pub session_minutes: u32,
    /// The overview's metrics are kept this many seconds: the default period's are recomputed
    /// in the background this often, another period's on its first view after they expire.
    pub overview_refresh_secs: u32,
}

/// How long the outbox keeps finished messages.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxSettings {
    /// Sent, failed and suppressed messages older than this many days are deleted by the
    /// daemon; 0 keeps them forever. Pending and leased messages are never deleted.
    pub retain_days: u32,
}

impl OutboxSettings {
    /// The creation time before which finished messages may be deleted: `now` less
    /// `retain_days`, or the Unix epoch (before any order) when they are kept forever.
    pub fn cutoff(&self, now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
        match self.retain_days {
            0 => chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
            days => now - chrono::TimeDelta::days(i64::from(days)),
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub mail: MailSettings,
    pub engine: EngineSettings,
    pub reminders: ReminderSettings,
    pub http: HttpSettings,
    pub daemon: DaemonSettings,
    pub outbox: OutboxSettings,
    pub finance: FinanceSettings,
    pub fulfillment: FulfillmentSettings,
    pub web: WebSettings,
    pub admin: AdminSettings,
    pub notices: NoticeSettings,
    pub api: ApiSettings,
    pub webhooks: WebhookSettings,
    pub payments: PaymentSettings,
    /// Where the catalog came from (a path, or the built-in default).
    pub catalog_source: String,
    pub catalog: Catalog,
}

fn serialize_tz<S: Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(tz.name())
}

/// The config file's shape. Every section and key is required in the built-in defaults, so a
/// user file only names what it changes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    database: RawDatabase,
    mail: RawMail,
    engine: RawEngine,
    reminders: RawReminders,
    http: RawHttp,
    daemon: RawDaemon,
    outbox: RawOutbox,
    finance: RawFinance,
    fulfillment: RawFulfillment,
    web: RawWeb,
    admin: RawAdmin,
    notices: RawNotices,
    api: RawApi,
    webhooks: RawWebhooks,
    payments: RawPayments,
    #[serde(default)]
    catalog: RawCatalogRef,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPayments {
    provider: String,
    retry_days: Vec<u32>,
    on_final_failure: crate::core::dunning::FinalAction,
    hold_renewals_while_unpaid: bool,
    update_payment_url: Option<String>,
    batch_size: u32,
    concurrency: u32,
    lease_secs: u32,
    poll_secs: u32,
    timeout_secs: u32,
    stripe: RawStripe,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStripe {
    api_base: String,
    #[serde(default, deserialize_with = "secret_text")]
    secret_key: Option<String>,
    secret_key_file: Option<RelativePathBuf>,
    #[serde(default, deserialize_with = "secret_text")]
    webhook_secrets: Option<String>,
    webhook_secrets_file: Option<RelativePathBuf>,
    publishable_key: Option<String>,
    js_url: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhooks {
    timeout_secs: u32,
    #[serde(default)]
    endpoints: Vec<RawEndpoint>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    name: String,
    url: String,
    #[serde(default, deserialize_with = "secret_text")]
    secret: Option<String>,
    secret_file: Option<RelativePathBuf>,
    events: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    requests_per_minute: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotices {
    terms_version: String,
    price_change_days: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeb {
    listen: String,
    public_url: String,
    link_ttl_days: u32,
    #[serde(default, deserialize_with = "secret_text")]
    link_keys: Option<String>,
    link_keys_file: Option<RelativePathBuf>,
    move_max_days: u32,
    restart_days: u32,
    storefront_url: Option<String>,
    cancel_offer: CancelOffer,
    requests_per_minute: u32,
    link_requests_per_minute: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    listen: Option<String>,
    public_url: Option<String>,
    trusted_header: Option<String>,
    trusted_proxies: Vec<String>,
    session_minutes: u32,
    overview_refresh_secs: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFinance {
    time_zone: String,
    accounts: RawAccounts,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccounts {
    receivable: String,
    revenue: String,
    discounts: String,
    tax_payable: String,
    cash: String,
    fees: String,
    refunds: String,
    storefront: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFulfillment {
    tracking_urls: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutbox {
    retain_days: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    shutdown_grace_secs: u32,
    mail_poll_secs: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: String,
    #[serde(default, deserialize_with = "secret_text")]
    password: Option<String>,
    password_file: Option<RelativePathBuf>,
    max_connections: u32,
    migrate_on_start: bool,
    #[serde(default)]
    pooler: crate::store::Pooler,
    listen_url: Option<String>,
    read_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMail {
    transport: MailTransport,
    from: String,
    reply_to: Option<String>,
    file_dir: RelativePathBuf,
    templates_dir: Option<RelativePathBuf>,
    message_id_domain: Option<String>,
    smtp: RawSmtp,
    delivery: RawDelivery,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDelivery {
    max_attempts: u32,
    retry_base_secs: u32,
    retry_max_secs: u32,
    concurrency: u32,
    rate_per_second: u32,
    lease_secs: u32,
    batch_size: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    host: String,
    port: u16,
    tls: TlsMode,
    username: Option<String>,
    #[serde(default, deserialize_with = "secret_text")]
    password: Option<String>,
    password_file: Option<RelativePathBuf>,
    timeout_secs: u64,
    pool_size: u32,
    ca_file: Option<RelativePathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    sweep: String,
    time_zone: String,
    renewal_time: String,
    batch_size: u32,
    workers: u32,
    catch_up: CatchUp,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReminders {
    lead_days: Vec<u32>,
    window_start: String,
    window_end: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    listen: String,
    max_connections: u32,
    header_timeout_secs: u32,
    request_timeout_secs: u32,
    connection_lifetime_secs: u32,
    max_body_bytes: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogRef {
    file: Option<RelativePathBuf>,
}

/// Loads settings: built-in defaults, then `file` when given, then the process's `SUBSAVE_…`
/// environment variables.
pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
    let mut figment = Figment::from(Toml::string(DEFAULT_CONFIG));
    if let Some(path) = file {
        if !path.is_file() {
            return Err(ConfigError {
                source_name: path.display().to_string(),
                key: "--config".into(),
                value: format!("\"{}\"", path.display()),
                problem: "no such file: pass the path of a TOML config file (see config/production.example.toml)".into(),
            });
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    figment = figment.merge(env_provider());

    let raw: RawSettings = figment.extract().map_err(|e| from_figment(&figment, e))?;
    // Each validation error is attributed to the layer that supplied the key.
    let source_of = |key: &str| source_name(&figment, key);
    let field = |key: &str, value: &str, problem: String| ConfigError {
        source_name: source_of(key),
        key: key.into(),
        value: format!("\"{value}\""),
        problem,
    };

    let url = DatabaseUrl::parse(&raw.database.url)
        .map_err(|p| field("database.url", &redact_url_password(&raw.database.url), p))?;
    let database = DatabaseSettings {
        backend: url.backend(),
        url,
        password: secret(
            &figment,
            "database.password",
            secret_env("database.password").or(raw.database.password),
            raw.database.password_file.map(|p| p.relative()),
        )?,
        max_connections: positive(
            &figment,
            "database.max_connections",
            raw.database.max_connections,
        )?,
        migrate_on_start: raw.database.migrate_on_start,
        pooler: raw.database.pooler,
        listen_url: postgres_url(&field, "database.listen_url", raw.database.listen_url)?,
        read_url: postgres_url(&field, "database.read_url", raw.database.read_url)?,
    };
    if database.backend != Backend::Postgres {
        let postgres_only = [
            (
                "database.pooler",
                database.pooler != crate::store::Pooler::None,
            ),
            ("database.listen_url", database.listen_url.is_some()),
            ("database.read_url", database.read_url.is_some()),
        ];
        if let Some((key, _)) = postgres_only.into_iter().find(|(_, set)| *set) {
            return Err(field(
                key,
                &database.url.redacted(),
                "applies to PostgreSQL only: an SQLite database has no pooler or replica; remove the setting".into(),
            ));
        }
    }

    let mailbox = |key: &str, text: &str| {
        text.parse::<Mailbox>().map_err(|e| {
            field(
                key,
                text,
                format!("{e}; expected an address like \"Black Bala <orders@example.com>\""),
            )
        })
    };
    let from = mailbox("mail.from", &raw.mail.from)?;
    let reply_to = raw
        .mail
        .reply_to
        .as_deref()
        .map(|r| mailbox("mail.reply_to", r))
        .transpose()?;
    // Every email and page invites the customer to reply: mailed for real, the replies must
    // reach someone who reads them.
    if raw.mail.transport == MailTransport::Smtp && reply_to.is_none() {
        return Err(field(
            "mail.reply_to",
            "(unset)",
            "is required when mail goes out through SMTP: every email invites the customer to reply; set the support address that reads replies, like \"Support <support@shop.example>\"".into(),
        ));
    }
    let d = &raw.mail.delivery;
    let delivery = DeliverySettings {
        max_attempts: positive(&figment, "mail.delivery.max_attempts", d.max_attempts)?,
        retry_base_secs: u64::from(positive(
            &figment,
            "mail.delivery.retry_base_secs",
            d.retry_base_secs,
        )?),
        retry_max_secs: u64::from(positive(
            &figment,
            "mail.delivery.retry_max_secs",
            d.retry_max_secs,
        )?),
        concurrency: positive(&figment, "mail.delivery.concurrency", d.concurrency)?,
        rate_per_second: positive(&figment, "mail.delivery.rate_per_second", d.rate_per_second)?,
        lease_secs: u64::from(positive(
            &figment,
            "mail.delivery.lease_secs",
            d.lease_secs,
        )?),
        batch_size: positive(&figment, "mail.delivery.batch_size", d.batch_size)?,
    };
    // A claimed batch must be sendable within its lease even when every send takes the whole
    // SMTP timeout: a message still in hand when its lease ends is not sent (another mailer may
    // hold it by then) and waits for the next claim.
    let timeout_secs = u64::from(positive(
        &figment,
        "mail.smtp.timeout_secs",
        u32::try_from(raw.mail.smtp.timeout_secs).unwrap_or(u32::MAX),
    )?);
    // A send starts only if it can end before its lease does: with a timeout as long as the
    // lease, no message is ever sent ("0 sent, 0 failed", every lease given back).
    if timeout_secs >= delivery.lease_secs {
        return Err(field(
            "mail.delivery.lease_secs",
            &delivery.lease_secs.to_string(),
            format!(
                "must be more than mail.smtp.timeout_secs ({timeout_secs}): a send starts only if it can end before its lease, so with this lease no email would ever be sent; raise lease_secs or lower timeout_secs"
            ),
        ));
    }
    let in_hand_secs =
        u64::from(delivery.batch_size) * timeout_secs / u64::from(delivery.concurrency);
    if in_hand_secs >= delivery.lease_secs {
        return Err(field(
            "mail.delivery.lease_secs",
            &delivery.lease_secs.to_string(),
            format!(
                "must be more than the {in_hand_secs} s a claimed batch can take: {} messages (mail.delivery.batch_size) at up to {timeout_secs} s each (mail.smtp.timeout_secs) over {} senders (mail.delivery.concurrency); raise lease_secs or concurrency, or lower batch_size or timeout_secs",
                delivery.batch_size, delivery.concurrency
            ),
        ));
    }
    let templates_dir = raw.mail.templates_dir.map(|p| p.relative());
    if let Some(dir) = &templates_dir
        && !dir.is_dir()
    {
        return Err(field(
            "mail.templates_dir",
            &dir.display().to_string(),
            "no such folder: create it with the templates to override (see templates/), or unset it to use the built-in ones".into(),
        ));
    }
    let ca_file = raw.mail.smtp.ca_file.map(|p| p.relative());
    if let Some(file) = &ca_file
        && !file.is_file()
    {
        return Err(field(
            "mail.smtp.ca_file",
            &file.display().to_string(),
            "no such file: give the PEM file of the CA that signed the mail server's certificate, or unset it to trust the usual roots".into(),
        ));
    }
    let mail = MailSettings {
        transport: raw.mail.transport,
        from,
        reply_to,
        file_dir: raw.mail.file_dir.relative(),
        templates_dir,
        message_id_domain: raw
            .mail
            .message_id_domain
            .map(|domain| {
                let valid = !domain.is_empty()
                    && domain.len() <= 253
                    && domain.split('.').all(|label| {
                        !label.is_empty()
                            && label
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    });
                if valid {
                    Ok(domain.to_ascii_lowercase())
                } else {
                    Err(field(
                        "mail.message_id_domain",
                        &domain,
                        "expected a domain name, like \"mail.shop.example\"".into(),
                    ))
                }
            })
            .transpose()?,
        delivery,
        smtp: SmtpSettings {
            host: raw.mail.smtp.host,
            port: raw.mail.smtp.port,
            tls: raw.mail.smtp.tls,
            username: raw.mail.smtp.username,
            password: secret(
                &figment,
                "mail.smtp.password",
                secret_env("mail.smtp.password").or(raw.mail.smtp.password),
                raw.mail.smtp.password_file.map(|p| p.relative()),
            )?,
            timeout_secs,
            pool_size: positive(&figment, "mail.smtp.pool_size", raw.mail.smtp.pool_size)?,
            ca_file,
        },
    };

    let engine =
        EngineSettings {
            sweep: raw.engine.sweep.parse().map_err(
                |e: crate::core::cron_schedule::CronError| {
                    field("engine.sweep", &raw.engine.sweep, e.to_string())
                },
            )?,
            time_zone: parse_time_zone(&raw.engine.time_zone)
                .map_err(|e| field("engine.time_zone", &raw.engine.time_zone, e.to_string()))?,
            renewal_time: time_of_day(&figment, "engine.renewal_time", &raw.engine.renewal_time)?,
            batch_size: positive(&figment, "engine.batch_size", raw.engine.batch_size)?,
            workers: positive(&figment, "engine.workers", raw.engine.workers)?,
            catch_up: raw.engine.catch_up,
        };

    let window = DeliveryWindow {
        start: time_of_day(
            &figment,
            "reminders.window_start",
            &raw.reminders.window_start,
        )?,
        end: time_of_day(&figment, "reminders.window_end", &raw.reminders.window_end)?,
    };
    if window.start >= window.end {
        return Err(field(
            "reminders.window_end",
            &raw.reminders.window_end,
            format!(
                "must be later than reminders.window_start ({})",
                window.start
            ),
        ));
    }
    let reminders = ReminderSettings {
        lead_days: raw.reminders.lead_days,
        window,
    };

    let http = HttpSettings {
        listen: raw.http.listen.parse().map_err(|_| {
            field(
                "http.listen",
                &raw.http.listen,
                "expected IP:PORT, like \"127.0.0.1:8080\"".into(),
            )
        })?,
        max_connections: positive(&figment, "http.max_connections", raw.http.max_connections)?,
        header_timeout_secs: u64::from(positive(
            &figment,
            "http.header_timeout_secs",
            raw.http.header_timeout_secs,
        )?),
        request_timeout_secs: u64::from(positive(
            &figment,
            "http.request_timeout_secs",
            raw.http.request_timeout_secs,
        )?),
        connection_lifetime_secs: u64::from(positive(
            &figment,
            "http.connection_lifetime_secs",
            raw.http.connection_lifetime_secs,
        )?),
        max_body_bytes: positive(&figment, "http.max_body_bytes", raw.http.max_body_bytes)?,
    };

    let (catalog_source, catalog) = match raw.catalog.file.as_ref().map(|p| p.relative()) {
        Some(path) => {
            if !path.is_file() {
                return Err(field(
                    "catalog.file",
                    &path.display().to_string(),
                    "no such file: point it at a catalog TOML like config/catalog.toml, or remove it to use the built-in catalog".into(),
                ));
            }
            let name = path.display().to_string();
            (
                name.clone(),
                load_catalog(Figment::from(Toml::file_exact(path)), &name)?,
            )
        }
        None => (
            DEFAULT_CATALOG_NAME.to_owned(),
            load_catalog(
                Figment::from(Toml::string(DEFAULT_CATALOG)),
                DEFAULT_CATALOG_NAME,
            )?,
        ),
    };

    let daemon = DaemonSettings {
        shutdown_grace_secs: u64::from(positive(
            &figment,
            "daemon.shutdown_grace_secs",
            raw.daemon.shutdown_grace_secs,
        )?),
        mail_poll_secs: u64::from(positive(
            &figment,
            "daemon.mail_poll_secs",
            raw.daemon.mail_poll_secs,
        )?),
    };

    let web = web_settings(&figment, raw.web, &field)?;
    // Port 0 asks the system for any free port: two of those never collide.
    if web.listen == http.listen && web.listen.port() != 0 {
        return Err(field(
            "web.listen",
            &web.listen.to_string(),
            "is also http.listen: the public pages and the operator's listener (health, metrics) need their own addresses".into(),
        ));
    }
    let admin = admin_settings(&figment, raw.admin, &field)?;
    if let Some(listen) = admin.listen
        && listen.port() != 0
        && (listen == web.listen || listen == http.listen)
    {
        return Err(field(
            "admin.listen",
            &listen.to_string(),
            "is also web.listen or http.listen: the console needs its own address (keep it off the public one)".into(),
        ));
    }
    let terms_version = raw.notices.terms_version.trim().to_owned();
    if terms_version.is_empty()
        || terms_version.len() > 64
        || terms_version.chars().any(char::is_control)
    {
        return Err(field(
            "notices.terms_version",
            &raw.notices.terms_version,
            "expected 1-64 printable characters naming the terms customers agree to, like \"2026-12-01\"".into(),
        ));
    }
    let days = raw.notices.price_change_days;
    if !(crate::core::notices::PRICE_NOTICE_MIN_DAYS..=crate::core::notices::PRICE_NOTICE_MAX_DAYS)
        .contains(&days)
    {
        return Err(field(
            "notices.price_change_days",
            &days.to_string(),
            format!(
                "must be {} to {}: a price-change notice arrives at least {} and at most {} days before the renewal",
                crate::core::notices::PRICE_NOTICE_MIN_DAYS,
                crate::core::notices::PRICE_NOTICE_MAX_DAYS,
                crate::core::notices::PRICE_NOTICE_MIN_DAYS,
                crate::core::notices::PRICE_NOTICE_MAX_DAYS
            ),
        ));
    }
    let notices = NoticeSettings {
        terms_version,
        price_change_days: days,
    };

    let mut endpoints = Vec::new();
    for (i, raw) in raw.webhooks.endpoints.into_iter().enumerate() {
        let key = |name: &str| format!("webhooks.endpoints[{i}].{name}");
        let secret = secret(
            &figment,
            &key("secret"),
            raw.secret,
            raw.secret_file.map(|p| p.relative()),
        )?
        .ok_or_else(|| {
            field(
                &key("secret"),
                "[redacted]",
                "set either secret or secret_file (a whsec_… key, as Standard Webhooks receivers expect)".into(),
            )
        })?;
        crate::core::webhooks::check_secret(secret.expose())
            .map_err(|problem| field(&key("secret"), "[redacted]", problem))?;
        let endpoint =
            crate::core::webhooks::Endpoint::new(&raw.name, &raw.url, secret.expose(), &raw.events)
                .map_err(|problem| field(&key("url"), &raw.url, problem))?;
        if endpoints
            .iter()
            .any(|e: &crate::core::webhooks::Endpoint| e.name == endpoint.name)
        {
            return Err(field(
                &key("name"),
                &raw.name,
                "another endpoint has this name".into(),
            ));
        }
        endpoints.push(endpoint);
    }
    let webhooks = WebhookSettings {
        timeout_secs: u64::from(positive(
            &figment,
            "webhooks.timeout_secs",
            raw.webhooks.timeout_secs,
        )?),
        endpoints,
    };
    // The mailer POSTs webhooks under the outbox's lease, like emails.
    if !webhooks.endpoints.is_empty() && webhooks.timeout_secs >= mail.delivery.lease_secs {
        return Err(field(
            "webhooks.timeout_secs",
            &webhooks.timeout_secs.to_string(),
            format!(
                "must be less than mail.delivery.lease_secs ({}): the mailer POSTs a webhook only if it can end before its lease, so no webhook would ever be delivered; lower timeout_secs or raise the lease",
                mail.delivery.lease_secs
            ),
        ));
    }

    let api = ApiSettings {
        requests_per_minute: positive(
            &figment,
            "api.requests_per_minute",
            raw.api.requests_per_minute,
        )?,
    };

    let payments = payment_settings(&figment, raw.payments, &field)?;

    Ok(Settings {
        database,
        payments,
        web,
        admin,
        notices,
        api,
        webhooks,
        mail,
        engine,
        reminders,
        http,
        daemon,
        outbox: OutboxSettings {
            retain_days: raw.outbox.retain_days,
        },
        finance: FinanceSettings {
            time_zone: parse_time_zone(&raw.finance.time_zone)
                .map_err(|e| field("finance.time_zone", &raw.finance.time_zone, e.to_string()))?,
            accounts: {
                let a = &raw.finance.accounts;
                let name = |key: &str, value: &str| {
                    crate::core::text::FreeText::parse(value, ACCOUNT_NAME_MAX)
                        .map(crate::core::text::FreeText::into_string)
                        .map_err(|e| {
                            field(
                                &format!("finance.accounts.{key}"),
                                value,
                                format!("an account name{e}"),
                            )
                        })
                };
                Accounts {
                    receivable: name("receivable", &a.receivable)?,
                    revenue: name("revenue", &a.revenue)?,
                    discounts: name("discounts", &a.discounts)?,
                    tax_payable: name("tax_payable", &a.tax_payable)?,
                    cash: name("cash", &a.cash)?,
                    fees: name("fees", &a.fees)?,
                    refunds: name("refunds", &a.refunds)?,
                    storefront: name("storefront", &a.storefront)?,
                }
            },
        },
        fulfillment: FulfillmentSettings {
            tracking_urls: crate::core::fulfillment::TrackingUrls::with(
                &raw.fulfillment.tracking_urls,
            )
            .map_err(|(carrier, problem)| {
                let given = &raw.fulfillment.tracking_urls[&carrier];
                field(
                    &format!("fulfillment.tracking_urls.{carrier}"),
                    given,
                    problem,
                )
            })?,
        },
        catalog_source,
        catalog,
    })
}

/// An optional setting that must be an http(s) URL (`what` it is the URL of).
fn http_url(
    field: &dyn Fn(&str, &str, String) -> ConfigError,
    key: &str,
    url: Option<String>,
    what: &str,
) -> Result<Option<String>, ConfigError> {
    match url {
        Some(url) if !(url.starts_with("https://") || url.starts_with("http://")) => Err(field(
            key,
            &url,
            format!("expected the http(s):// URL of {what}"),
        )),
        url => Ok(url),
    }
}

fn payment_settings(
    figment: &Figment,
    raw: RawPayments,
    field: &dyn Fn(&str, &str, String) -> ConfigError,
) -> Result<PaymentSettings, ConfigError> {
    let provider = raw
        .provider
        .parse()
        .map_err(|e| field("payments.provider", &raw.provider, e))?;
    let days = &raw.retry_days;
    let shown = format!("{days:?}");
    if days.len() > 10
        || days.iter().any(|d| !(1..=60).contains(d))
        || days.windows(2).any(|w| w[0] >= w[1])
    {
        return Err(field(
            "payments.retry_days",
            &shown,
            "expected at most 10 increasing days from 1 to 60, like [1, 3, 5, 7] ([] retries nothing)".into(),
        ));
    }
    let update_payment_url = http_url(
        field,
        "payments.update_payment_url",
        raw.update_payment_url,
        "the storefront's payment-method page",
    )?;
    let batch_size = positive(figment, "payments.batch_size", raw.batch_size)?;
    let concurrency = positive(figment, "payments.concurrency", raw.concurrency)?;
    let lease_secs = u64::from(positive(figment, "payments.lease_secs", raw.lease_secs)?);
    let timeout_secs = u64::from(positive(
        figment,
        "payments.timeout_secs",
        raw.timeout_secs,
    )?);
    // A charge starts only if it can end before its lease does: a whole batch must fit.
    let batch_time = u64::from(batch_size).div_ceil(u64::from(concurrency)) * timeout_secs * 2;
    if batch_time >= lease_secs {
        return Err(field(
            "payments.lease_secs",
            &lease_secs.to_string(),
            format!(
                "must exceed batch_size / concurrency x timeout_secs x 2 ({batch_time} s: a charge and its lookup), so a claimed batch ends before its lease; raise lease_secs or concurrency, or lower batch_size"
            ),
        ));
    }
    let s = raw.stripe;
    let secret_key = secret(
        figment,
        "payments.stripe.secret_key",
        secret_env("payments.stripe.secret_key").or(s.secret_key),
        s.secret_key_file.map(|p| p.relative()),
    )?;
    let webhook_secrets = secret(
        figment,
        "payments.stripe.webhook_secrets",
        secret_env("payments.stripe.webhook_secrets").or(s.webhook_secrets),
        s.webhook_secrets_file.map(|p| p.relative()),
    )?
    .filter(|s| !s.expose().trim().is_empty());
    let api_base = s.api_base.trim_end_matches('/').to_owned();
    if !(api_base.starts_with("https://") || api_base.starts_with("http://")) {
        return Err(field(
            "payments.stripe.api_base",
            &api_base,
            "expected an http(s):// URL, like \"https://api.stripe.com\"".into(),
        ));
    }
    if secret_key
        .as_ref()
        .is_some_and(|k| k.expose().starts_with("pk_"))
    {
        return Err(field(
            "payments.stripe.secret_key",
            "[redacted]",
            "is a publishable key (pk_…), which cannot charge: give the secret key (sk_…) or a restricted key (rk_…) from Stripe's dashboard".into(),
        ));
    }
    let publishable_key = s.publishable_key.filter(|k| !k.trim().is_empty());
    if let Some(key) = &publishable_key
        && !(key.starts_with("pk_")
            && key[3..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    {
        // Not quoted back: what is there by mistake may be the secret key.
        return Err(field(
            "payments.stripe.publishable_key",
            "[redacted]",
            "expected the publishable key (pk_live_… or pk_test_…) from Stripe's dashboard; it is public, unlike the secret key".into(),
        ));
    }
    let js_url = match reqwest::Url::parse(&s.js_url) {
        Ok(url) if matches!(url.scheme(), "https" | "http") && url.host().is_some() => s.js_url,
        _ => {
            return Err(field(
                "payments.stripe.js_url",
                &s.js_url,
                "expected the http(s):// URL of Stripe.js, like \"https://js.stripe.com/v3/\""
                    .into(),
            ));
        }
    };
    if provider == crate::core::model::ProviderKind::Stripe && secret_key.is_none() {
        return Err(field(
            "payments.stripe.secret_key",
            "",
            "the stripe provider needs its secret key: set SUBSAVE_PAYMENTS__STRIPE__SECRET_KEY or payments.stripe.secret_key_file".into(),
        ));
    }
    Ok(PaymentSettings {
        provider,
        retry_days: raw.retry_days,
        on_final_failure: raw.on_final_failure,
        hold_renewals_while_unpaid: raw.hold_renewals_while_unpaid,
        update_payment_url,
        batch_size,
        concurrency,
        lease_secs,
        poll_secs: u64::from(positive(figment, "payments.poll_secs", raw.poll_secs)?),
        timeout_secs,
        stripe: StripeSettings {
            api_base,
            secret_key,
            webhook_secrets,
            publishable_key,
            js_url,
        },
    })
}

fn admin_settings(
    figment: &Figment,
    raw: RawAdmin,
    field: &dyn Fn(&str, &str, String) -> ConfigError,
) -> Result<AdminSettings, ConfigError> {
    let listen = raw
        .listen
        .map(|text| {
            text.parse().map_err(|_| {
                field(
                    "admin.listen",
                    &text,
                    "expected IP:PORT, like \"127.0.0.1:8082\"".into(),
                )
            })
        })
        .transpose()?;
    let public_url = raw
        .public_url
        .map(|text| {
            let url = text.trim_end_matches('/').to_owned();
            if well_formed_url(&url) {
                Ok(url)
            } else {
                Err(field(
                    "admin.public_url",
                    &text,
                    "expected an http(s):// URL without query, like \"https://console.shop.example\""
                        .into(),
                ))
            }
        })
        .transpose()?;
    // A header name as HTTP allows it (letters, digits, '-'), so a typo is found at load.
    let trusted_header = raw
        .trusted_header
        .map(|name| {
            let valid =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if valid {
                Ok(name.to_ascii_lowercase())
            } else {
                Err(field(
                    "admin.trusted_header",
                    &name,
                    "expected an HTTP header name, like \"X-Forwarded-User\"".into(),
                ))
            }
        })
        .transpose()?;
    let trusted_proxies = raw
        .trusted_proxies
        .iter()
        .map(|text| {
            text.parse().map_err(|_| {
                field(
                    "admin.trusted_proxies",
                    text,
                    "expected IP addresses, like [\"127.0.0.1\"]".into(),
                )
            })
        })
        .collect::<Result<Vec<std::net::IpAddr>, _>>()?;
    if let Some(header) = &trusted_header
        && trusted_proxies.is_empty()
    {
        return Err(field(
            "admin.trusted_header",
            header,
            "needs admin.trusted_proxies: name the addresses of the proxy that sets the header (a header from anywhere else is ignored)".into(),
        ));
    }
    Ok(AdminSettings {
        listen,
        public_url,
        trusted_header,
        trusted_proxies,
        session_minutes: positive(figment, "admin.session_minutes", raw.session_minutes)?,
        overview_refresh_secs: positive(
            figment,
            "admin.overview_refresh_secs",
            raw.overview_refresh_secs,
        )?,
    })
}

/// An http(s) URL without query, fragment or characters that would break out of an attribute.
fn well_formed_url(url: &str) -> bool {
    url.strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .is_some_and(|rest| {
            !rest.is_empty() && !rest.contains(['?', '#', '"', '<', '>', ' ', '\''])
        })
}

fn web_settings(
    figment: &Figment,
    raw: RawWeb,
    field: &dyn Fn(&str, &str, String) -> ConfigError,
) -> Result<WebSettings, ConfigError> {
    let listen = raw.listen.parse().map_err(|_| {
        field(
            "web.listen",
            &raw.listen,
            "expected IP:PORT, like \"127.0.0.1:8081\"".into(),
        )
    })?;
    let public_url = raw.public_url.trim_end_matches('/').to_owned();
    if !well_formed_url(&public_url) {
        return Err(field(
            "web.public_url",
            &raw.public_url,
            "expected an http(s):// URL without query, like \"https://subscriptions.shop.example\""
                .into(),
        ));
    }
    let from_env = secret_env("web.link_keys");
    let link_keys_source = match (&from_env, &raw.link_keys) {
        (Some(_), _) => format!("environment variable {ENV_PREFIX}WEB__LINK_KEYS"),
        (None, Some(_)) => source_name(figment, "web.link_keys"),
        (None, None) => source_name(figment, "web.link_keys_file"),
    };
    let link_keys = match (
        from_env.or(raw.link_keys),
        raw.link_keys_file.map(|p| p.relative()),
    ) {
        (Some(keys), _) => LinkKeySource::Given(Secret::new(keys)),
        (None, Some(path)) => LinkKeySource::File(path),
        (None, None) => {
            return Err(field(
                "web.link_keys_file",
                "",
                "set web.link_keys or web.link_keys_file: customer links must be signed".into(),
            ));
        }
    };
    let web = WebSettings {
        listen,
        public_url,
        link_ttl_days: positive(figment, "web.link_ttl_days", raw.link_ttl_days)?,
        link_keys,
        link_keys_source,
        move_max_days: positive(figment, "web.move_max_days", raw.move_max_days)?,
        restart_days: positive(figment, "web.restart_days", raw.restart_days)?,
        storefront_url: http_url(
            field,
            "web.storefront_url",
            raw.storefront_url,
            "the storefront (like https://shop.example)",
        )?,
        cancel_offer: raw.cancel_offer,
        requests_per_minute: positive(figment, "web.requests_per_minute", raw.requests_per_minute)?,
        link_requests_per_minute: positive(
            figment,
            "web.link_requests_per_minute",
            raw.link_requests_per_minute,
        )?,
    };
    if let LinkKeySource::Given(_) = &web.link_keys {
        web.link_signer()?;
    }
    Ok(web)
}

/// `SUBSAVE_DATABASE__URL` sets `database.url`: the prefix is dropped, `__` separates levels.
/// `SUBSAVE_CONFIG` (the config file) and `SUBSAVE_NOW` (reserved for the clock) are not keys.
/// The `SUBSAVE_…` variables, but for the secrets, which [`secret_env`] reads as they are.
fn env_provider() -> Env {
    Env::prefixed(ENV_PREFIX)
        .split("__")
        .ignore(&["CONFIG", "NOW"])
        .ignore(&SECRET_KEYS)
        .global()
}

/// The keys that hold secrets directly.
pub const SECRET_KEYS: [&str; 5] = [
    "database.password",
    "mail.smtp.password",
    "web.link_keys",
    "payments.stripe.secret_key",
    "payments.stripe.webhook_secrets",
];

/// A secret from its environment variable, byte for byte: figment would read `0123` as the
/// number 123, and refuse `12345` for a string while quoting it in the error.
fn secret_env(key: &str) -> Option<String> {
    std::env::var(format!(
        "{ENV_PREFIX}{}",
        key.to_uppercase().replace('.', "__")
    ))
    .ok()
}

/// A secret as a config file gives it: a string, or an unquoted number or boolean taken as
/// its text. Never quoted back in an error.
fn secret_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Text(String),
        Unsigned(u64),
        Signed(i64),
        Float(f64),
        Flag(bool),
    }
    let given = Option::<Given>::deserialize(d)
        .map_err(|_| serde::de::Error::custom("a secret must be text, like password = \"…\""))?;
    Ok(given.map(|g| match g {
        Given::Text(s) => s,
        Given::Unsigned(n) => n.to_string(),
        Given::Signed(n) => n.to_string(),
        Given::Float(n) => n.to_string(),
        Given::Flag(b) => b.to_string(),
    }))
}

/// Parses a catalog from TOML text (the embedded default, or a test's own).
pub fn load_catalog_text(text: &str) -> Result<Catalog, ConfigError> {
    load_catalog(Figment::from(Toml::string(text)), DEFAULT_CATALOG_NAME)
}

fn load_catalog(figment: Figment, name: &str) -> Result<Catalog, ConfigError> {
    let raw: RawCatalog = figment.extract().map_err(|e| from_figment(&figment, e))?;
    Catalog::from_raw(raw).map_err(|f| ConfigError::from_field(name, f))
}

fn positive(figment: &Figment, key: &str, value: u32) -> Result<u32, ConfigError> {
    if value == 0 {
        Err(ConfigError {
            source_name: source_name(figment, key),
            key: key.into(),
            value: "0".into(),
            problem: "must be at least 1".into(),
        })
    } else {
        Ok(value)
    }
}

/// An optional second PostgreSQL URL (`database.listen_url`, `database.read_url`): parsed like
/// `database.url`, and refused when it names SQLite (which has neither replicas nor poolers).
fn postgres_url(
    field: &impl Fn(&str, &str, String) -> ConfigError,
    key: &str,
    value: Option<String>,
) -> Result<Option<DatabaseUrl>, ConfigError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let url =
        DatabaseUrl::parse(&value).map_err(|p| field(key, &redact_url_password(&value), p))?;
    if url.backend() != Backend::Postgres {
        return Err(field(
            key,
            &url.redacted(),
            "must be a postgres://… URL: only PostgreSQL has replicas and poolers".into(),
        ));
    }
    Ok(Some(url))
}

fn time_of_day(figment: &Figment, key: &str, value: &str) -> Result<TimeOfDay, ConfigError> {
    value
        .parse()
        .map_err(|e: crate::core::schedule::ScheduleError| ConfigError {
            source_name: source_name(figment, key),
            key: key.into(),
            value: format!("\"{value}\""),
            problem: e.to_string(),
        })
}

/// A secret given directly (`key`, or its environment variable, passed as `direct`) or as a
/// file to read (`key_file`), not both. A file's trailing line break is not part of it.
fn secret(
    figment: &Figment,
    key: &str,
    direct: Option<String>,
    file: Option<PathBuf>,
) -> Result<Option<Secret>, ConfigError> {
    let file_key = format!("{key}_file");
    match (direct, file) {
        (Some(_), Some(_)) => Err(ConfigError {
            source_name: source_name(figment, &file_key),
            key: file_key.clone(),
            value: "[redacted]".into(),
            problem: format!("set either {key} or {file_key}, not both"),
        }),
        (Some(value), None) => Ok(Some(Secret::new(value))),
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map(|s| Some(Secret::new(s.trim_end_matches(['\n', '\r']).to_owned())))
            .map_err(|e| ConfigError {
                source_name: source_name(figment, &file_key),
                key: file_key.clone(),
                value: format!("\"{}\"", path.display()),
                problem: format!("cannot read the secret file: {e}"),
            }),
        (None, None) => Ok(None),
    }
}

/// Names the layer (file or environment variable) that supplied `key`.
fn source_name(figment: &Figment, key: &str) -> String {
    match figment.find_metadata(key) {
        Some(metadata) => describe_source(metadata, key),
        None => "config".into(),
    }
}

fn describe_source(metadata: &figment::Metadata, key: &str) -> String {
    match &metadata.source {
        Some(figment::Source::File(path)) => path.display().to_string(),
        _ if metadata.name.contains("environment") => format!(
            "environment variable {ENV_PREFIX}{}",
            key.to_uppercase().replace('.', "__")
        ),
        _ if metadata.name.contains("TOML") => DEFAULT_CONFIG_NAME.to_owned(),
        _ => metadata.name.to_string(),
    }
}

/// Turns figment's error into one line naming source, key, value and expectation.
fn from_figment(figment: &Figment, error: figment::Error) -> ConfigError {
    use figment::error::Kind;
    let mut key = error.path.join(".");
    let (value, problem) = match &error.kind {
        Kind::UnknownField(field, expected) => {
            if error.path.last() != Some(field) {
                key = if key.is_empty() {
                    field.clone()
                } else {
                    format!("{key}.{field}")
                };
            }
            (
                "(unknown key)".to_owned(),
                format!("unknown key; expected one of: {}", expected.join(", ")),
            )
        }
        Kind::MissingField(field) => {
            key = if key.is_empty() {
                field.to_string()
            } else {
                format!("{key}.{field}")
            };
            ("(missing)".to_owned(), "this key is required".to_owned())
        }
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => (
            actual.to_string(),
            format!("expected {}", plain_type(expected)),
        ),
        Kind::UnknownVariant(actual, expected) => (
            format!("\"{actual}\""),
            format!("expected one of: {}", expected.join(", ")),
        ),
        other => ("?".to_owned(), without_source_lines(&other.to_string())),
    };
    let source_name = match figment.find_metadata(&key) {
        Some(metadata) => describe_source(metadata, &key),
        None => match &error.metadata {
            Some(metadata) => describe_source(metadata, &key),
            None => "config".to_owned(),
        },
    };
    ConfigError {
        source_name,
        key,
        value,
        problem,
    }
}

/// A parser's message on one line, without the source lines it quotes: a TOML syntax error
/// shows the offending line, which may be a password's. "TOML parse error at line 3, column
/// 12 … invalid basic string" becomes "TOML syntax error at line 3, column 12: invalid basic
/// string".
fn without_source_lines(message: &str) -> String {
    let lines: Vec<&str> = message.lines().map(str::trim).collect();
    let quoted = |line: &&str| line.contains('|') || line.chars().all(|c| c == '^' || c == ' ');
    match lines.first() {
        Some(first) if first.starts_with("TOML parse error") => {
            let reason: Vec<&str> = lines[1..]
                .iter()
                .filter(|l| !l.is_empty() && !quoted(l))
                .copied()
                .collect();
            format!(
                "{}: {}",
                first.replacen("TOML parse error", "TOML syntax error", 1),
                reason.join(" ")
            )
        }
        _ => lines.join(" "),
    }
}

/// Serde's type names in words an operator reads.
fn plain_type(expected: &str) -> String {
    match expected {
        "u16" => "a whole number from 0 to 65535".into(),
        "u32" => "a whole number from 0 to 4294967295".into(),
        "u64" => "a whole number".into(),
        "a boolean" | "bool" => "true or false".into(),
        other => other.to_owned(),
    }
}
