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

//!
//! One file per section (or a few small related ones): its settings, the raw shape the file
//! gives, and one function that checks it. [`load`] reads the layers, hands each section to
//! its function, and checks what spans sections (listeners that must differ, a webhook
//! timeout under the outbox's lease).

mod admin;
mod catalog;
mod database;
mod finance;
mod mail;
mod notices;
mod payments;
mod schedule;
mod service;
mod web;
mod webhooks;

use std::fmt;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize, Serializer};

pub use self::admin::AdminSettings;
pub use self::catalog::load_catalog_text;
pub use self::finance::{Accounts, FinanceSettings, FulfillmentSettings};
pub use self::mail::{
    DeliverySettings, MailSettings, MailTransport, OutboxSettings, SmtpSettings, TlsMode,
};
pub use self::notices::NoticeSettings;
pub use self::payments::{PaymentSettings, StripeSettings};
pub use self::schedule::{EngineSettings, ReminderSettings};
pub use self::service::{ApiSettings, DaemonSettings, HttpSettings};
pub use self::web::{CancelOffer, LinkKeySource, WebSettings};
pub use self::webhooks::WebhookSettings;
use crate::core::catalog::{Catalog, FieldError};
use crate::core::schedule::TimeOfDay;
pub use crate::core::secret::Secret;
pub use crate::store::{Backend, DatabaseSettings, DatabaseUrl};

/// The embedded default configuration (SQLite file database, file mail transport).
pub const DEFAULT_CONFIG: &str = include_str!("../../config/default.toml");
/// The embedded default catalog.
pub const DEFAULT_CATALOG: &str = include_str!("../../config/catalog.toml");

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

/// The config file's shape. Every section and key is required in the built-in defaults, so a
/// user file only names what it changes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    database: database::RawDatabase,
    mail: mail::RawMail,
    engine: schedule::RawEngine,
    reminders: schedule::RawReminders,
    http: service::RawHttp,
    daemon: service::RawDaemon,
    outbox: mail::RawOutbox,
    finance: finance::RawFinance,
    fulfillment: finance::RawFulfillment,
    web: web::RawWeb,
    admin: admin::RawAdmin,
    notices: notices::RawNotices,
    api: service::RawApi,
    webhooks: webhooks::RawWebhooks,
    payments: payments::RawPayments,
    #[serde(default)]
    catalog: catalog::RawCatalogRef,
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
    let l = &Layers { figment: &figment };
    let mail = mail::parse(l, raw.mail)?;
    let http = service::parse_http(l, raw.http)?;
    let web = web::parse(l, raw.web)?;
    // Port 0 asks the system for any free port: two of those never collide.
    if web.listen == http.listen && web.listen.port() != 0 {
        return Err(l.field(
            "web.listen",
            &web.listen.to_string(),
            "is also http.listen: the public pages and the operator's listener (health, metrics) need their own addresses".into(),
        ));
    }
    let admin = admin::parse(l, raw.admin)?;
    if let Some(listen) = admin.listen
        && listen.port() != 0
        && (listen == web.listen || listen == http.listen)
    {
        return Err(l.field(
            "admin.listen",
            &listen.to_string(),
            "is also web.listen or http.listen: the console needs its own address (keep it off the public one)".into(),
        ));
    }
    let webhooks = webhooks::parse(l, raw.webhooks)?;
    // The mailer POSTs webhooks under the outbox's lease, like emails.
    if !webhooks.endpoints.is_empty() && webhooks.timeout_secs >= mail.delivery.lease_secs {
        return Err(l.field(
            "webhooks.timeout_secs",
            &webhooks.timeout_secs.to_string(),
            format!(
                "must be less than mail.delivery.lease_secs ({}): the mailer POSTs a webhook only if it can end before its lease, so no webhook would ever be delivered; lower timeout_secs or raise the lease",
                mail.delivery.lease_secs
            ),
        ));
    }
    let (catalog_source, catalog) = catalog::parse(l, raw.catalog)?;
    Ok(Settings {
        database: database::parse(l, raw.database)?,
        payments: payments::parse(l, raw.payments)?,
        web,
        admin,
        notices: notices::parse(l, raw.notices)?,
        api: service::parse_api(l, raw.api)?,
        webhooks,
        mail,
        engine: schedule::parse_engine(l, raw.engine)?,
        reminders: schedule::parse_reminders(l, raw.reminders)?,
        http,
        daemon: service::parse_daemon(l, raw.daemon)?,
        outbox: mail::parse_outbox(raw.outbox),
        finance: finance::parse(l, raw.finance)?,
        fulfillment: finance::parse_fulfillment(l, raw.fulfillment)?,
        catalog_source,
        catalog,
    })
}

/// The layers settings were read from: each check's error names the layer (file or
/// environment variable) that supplied the key.
struct Layers<'a> {
    figment: &'a Figment,
}

impl Layers<'_> {
    /// An error for `key`, whose value was `value`.
    fn field(&self, key: &str, value: &str, problem: String) -> ConfigError {
        ConfigError {
            source_name: self.source_name(key),
            key: key.into(),
            value: format!("\"{value}\""),
            problem,
        }
    }

    /// Names the layer (file or environment variable) that supplied `key`.
    fn source_name(&self, key: &str) -> String {
        match self.figment.find_metadata(key) {
            Some(metadata) => describe_source(metadata, key),
            None => "config".into(),
        }
    }

    fn positive(&self, key: &str, value: u32) -> Result<u32, ConfigError> {
        if value == 0 {
            Err(ConfigError {
                source_name: self.source_name(key),
                key: key.into(),
                value: "0".into(),
                problem: "must be at least 1".into(),
            })
        } else {
            Ok(value)
        }
    }

    fn time_of_day(&self, key: &str, value: &str) -> Result<TimeOfDay, ConfigError> {
        value
            .parse()
            .map_err(|e: crate::core::schedule::ScheduleError| {
                self.field(key, value, e.to_string())
            })
    }

    /// An optional setting that must be an http(s) URL (`what` it is the URL of).
    fn http_url(
        &self,
        key: &str,
        url: Option<String>,
        what: &str,
    ) -> Result<Option<String>, ConfigError> {
        match url {
            Some(url) if !(url.starts_with("https://") || url.starts_with("http://")) => {
                Err(self.field(key, &url, format!("expected the http(s):// URL of {what}")))
            }
            url => Ok(url),
        }
    }

    /// A secret given directly (`key`, or its environment variable, passed as `direct`) or as
    /// a file to read (`key_file`), not both. A file's trailing line break is not part of it.
    fn secret(
        &self,
        key: &str,
        direct: Option<String>,
        file: Option<PathBuf>,
    ) -> Result<Option<Secret>, ConfigError> {
        let file_key = format!("{key}_file");
        match (direct, file) {
            (Some(_), Some(_)) => Err(ConfigError {
                source_name: self.source_name(&file_key),
                key: file_key.clone(),
                value: "[redacted]".into(),
                problem: format!("set either {key} or {file_key}, not both"),
            }),
            (Some(value), None) => Ok(Some(Secret::new(value))),
            (None, Some(path)) => std::fs::read_to_string(&path)
                .map(|s| Some(Secret::new(s.trim_end_matches(['\n', '\r']).to_owned())))
                .map_err(|e| ConfigError {
                    source_name: self.source_name(&file_key),
                    key: file_key.clone(),
                    value: format!("\"{}\"", path.display()),
                    problem: format!("cannot read the secret file: {e}"),
                }),
            (None, None) => Ok(None),
        }
    }
}

/// An http(s) URL without query, fragment or characters that would break out of an attribute.
fn well_formed_url(url: &str) -> bool {
    url.strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .is_some_and(|rest| {
            !rest.is_empty() && !rest.contains(['?', '#', '"', '<', '>', ' ', '\''])
        })
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
