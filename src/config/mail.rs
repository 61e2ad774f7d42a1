//! `[mail]` and `[outbox]`: how emails go out (transport, sender, SMTP, the delivery loop's
//! limits) and how long the outbox keeps what it sent.

use std::path::PathBuf;

use figment::value::magic::RelativePathBuf;
use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};

use super::{ConfigError, Layers, Secret, secret_env, serialize_display, serialize_option_display};

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMail {
    pub(super) transport: MailTransport,
    pub(super) from: String,
    pub(super) reply_to: Option<String>,
    pub(super) file_dir: RelativePathBuf,
    pub(super) templates_dir: Option<RelativePathBuf>,
    pub(super) message_id_domain: Option<String>,
    pub(super) smtp: RawSmtp,
    pub(super) delivery: RawDelivery,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDelivery {
    pub(super) max_attempts: u32,
    pub(super) retry_base_secs: u32,
    pub(super) retry_max_secs: u32,
    pub(super) concurrency: u32,
    pub(super) rate_per_second: u32,
    pub(super) lease_secs: u32,
    pub(super) batch_size: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmtp {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) tls: TlsMode,
    pub(super) username: Option<String>,
    #[serde(default, deserialize_with = "super::secret_text")]
    pub(super) password: Option<String>,
    pub(super) password_file: Option<RelativePathBuf>,
    pub(super) timeout_secs: u64,
    pub(super) pool_size: u32,
    pub(super) ca_file: Option<RelativePathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOutbox {
    pub(super) retain_days: u32,
}

/// `[mail]`, checked: addresses, a reply address when mailing for real, a lease that a claimed
/// batch fits in, folders and files that exist.
pub(super) fn parse(l: &Layers, raw: RawMail) -> Result<MailSettings, ConfigError> {
    let (from, reply_to) = parse_addresses(l, &raw)?;
    let delivery = parse_delivery(l, &raw.delivery)?;
    // A claimed batch must be sendable within its lease even when every send takes the whole
    // SMTP timeout: a message still in hand when its lease ends is not sent (another mailer may
    // hold it by then) and waits for the next claim.
    let timeout_secs = u64::from(l.positive(
        "mail.smtp.timeout_secs",
        u32::try_from(raw.smtp.timeout_secs).unwrap_or(u32::MAX),
    )?);
    check_lease(l, &delivery, timeout_secs)?;
    let templates_dir = raw.templates_dir.map(|p| p.relative());
    if let Some(dir) = &templates_dir
        && !dir.is_dir()
    {
        return Err(l.field(
            "mail.templates_dir",
            &dir.display().to_string(),
            "no such folder: create it with the templates to override (see templates/), or unset it to use the built-in ones".into(),
        ));
    }
    let ca_file = raw.smtp.ca_file.map(|p| p.relative());
    if let Some(file) = &ca_file
        && !file.is_file()
    {
        return Err(l.field(
            "mail.smtp.ca_file",
            &file.display().to_string(),
            "no such file: give the PEM file of the CA that signed the mail server's certificate, or unset it to trust the usual roots".into(),
        ));
    }
    let message_id_domain = raw
        .message_id_domain
        .map(|domain| parse_message_id_domain(l, domain))
        .transpose()?;
    Ok(MailSettings {
        transport: raw.transport,
        from,
        reply_to,
        file_dir: raw.file_dir.relative(),
        templates_dir,
        message_id_domain,
        delivery,
        smtp: SmtpSettings {
            host: raw.smtp.host,
            port: raw.smtp.port,
            tls: raw.smtp.tls,
            username: raw.smtp.username,
            password: l.secret(
                "mail.smtp.password",
                secret_env("mail.smtp.password").or(raw.smtp.password),
                raw.smtp.password_file.map(|p| p.relative()),
            )?,
            timeout_secs,
            pool_size: l.positive("mail.smtp.pool_size", raw.smtp.pool_size)?,
            ca_file,
        },
    })
}

/// `mail.from` and `mail.reply_to`, the latter required when mail goes out through SMTP.
fn parse_addresses(l: &Layers, raw: &RawMail) -> Result<(Mailbox, Option<Mailbox>), ConfigError> {
    let mailbox = |key: &str, text: &str| {
        text.parse::<Mailbox>().map_err(|e| {
            l.field(
                key,
                text,
                format!("{e}; expected an address like \"Black Bala <orders@example.com>\""),
            )
        })
    };
    let from = mailbox("mail.from", &raw.from)?;
    let reply_to = raw
        .reply_to
        .as_deref()
        .map(|r| mailbox("mail.reply_to", r))
        .transpose()?;
    // Every email and page invites the customer to reply: mailed for real, the replies must
    // reach someone who reads them.
    if raw.transport == MailTransport::Smtp && reply_to.is_none() {
        return Err(l.field(
            "mail.reply_to",
            "(unset)",
            "is required when mail goes out through SMTP: every email invites the customer to reply; set the support address that reads replies, like \"Support <support@shop.example>\"".into(),
        ));
    }
    Ok((from, reply_to))
}

/// `[mail.delivery]`, every limit above zero.
fn parse_delivery(l: &Layers, d: &RawDelivery) -> Result<DeliverySettings, ConfigError> {
    Ok(DeliverySettings {
        max_attempts: l.positive("mail.delivery.max_attempts", d.max_attempts)?,
        retry_base_secs: u64::from(l.positive("mail.delivery.retry_base_secs", d.retry_base_secs)?),
        retry_max_secs: u64::from(l.positive("mail.delivery.retry_max_secs", d.retry_max_secs)?),
        concurrency: l.positive("mail.delivery.concurrency", d.concurrency)?,
        rate_per_second: l.positive("mail.delivery.rate_per_second", d.rate_per_second)?,
        lease_secs: u64::from(l.positive("mail.delivery.lease_secs", d.lease_secs)?),
        batch_size: l.positive("mail.delivery.batch_size", d.batch_size)?,
    })
}

/// The lease outlasts one send, and a whole claimed batch sent at the worst-case time.
fn check_lease(
    l: &Layers,
    delivery: &DeliverySettings,
    timeout_secs: u64,
) -> Result<(), ConfigError> {
    // A send starts only if it can end before its lease does: with a timeout as long as the
    // lease, no message is ever sent ("0 sent, 0 failed", every lease given back).
    if timeout_secs >= delivery.lease_secs {
        return Err(l.field(
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
        return Err(l.field(
            "mail.delivery.lease_secs",
            &delivery.lease_secs.to_string(),
            format!(
                "must be more than the {in_hand_secs} s a claimed batch can take: {} messages (mail.delivery.batch_size) at up to {timeout_secs} s each (mail.smtp.timeout_secs) over {} senders (mail.delivery.concurrency); raise lease_secs or concurrency, or lower batch_size or timeout_secs",
                delivery.batch_size, delivery.concurrency
            ),
        ));
    }
    Ok(())
}

/// `mail.message_id_domain`: a domain name, lower-cased.
fn parse_message_id_domain(l: &Layers, domain: String) -> Result<String, ConfigError> {
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
        Err(l.field(
            "mail.message_id_domain",
            &domain,
            "expected a domain name, like \"mail.shop.example\"".into(),
        ))
    }
}

/// `[outbox]`.
pub(super) fn parse_outbox(raw: RawOutbox) -> OutboxSettings {
    OutboxSettings {
        retain_days: raw.retain_days,
    }
}
