//! Where a finished email goes: `smtp` (lettre's async SMTP transport with a connection pool,
//! TLS none/STARTTLS/implicit, authentication and timeouts), `file` (one .eml file per
//! message, named by outbox id, so a resend overwrites instead of duplicating), or `log`.
//! Only this module talks to SMTP. A failure is classified for the mailer: transient
//! (connection refused or reset, timeouts, 4xx) or permanent (5xx).

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{MailSettings, MailTransport, TlsMode};

/// Why a message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying later: the server was unreachable, timed out, or answered 4xx.
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help: the server answered 5xx (its reply is kept).
    #[error("{0}")]
    Permanent(String),
}

#[async_trait]
pub trait Transport: Send + Sync {
    /// Delivers one message; on success, what the server (or file system) said.
    async fn send(
        &self,
        outbox_id: i64,
        kind: &str,
        message: &Message,
    ) -> Result<String, SendError>;
    fn describe(&self) -> String;
}

/// Builds the configured transport.
pub fn from_settings(mail: &MailSettings) -> Result<Box<dyn Transport>, String> {
    Ok(match mail.transport {
        MailTransport::Smtp => Box::new(Smtp::new(mail)?),
        MailTransport::File => Box::new(FileTransport {
            dir: mail.file_dir.clone(),
        }),
        MailTransport::Log => Box::new(LogTransport),
    })
}

pub struct Smtp {
    inner: AsyncSmtpTransport<Tokio1Executor>,
    description: String,
}

impl Smtp {
    pub fn new(mail: &MailSettings) -> Result<Smtp, String> {
        let s = &mail.smtp;
        let builder = match s.tls {
            TlsMode::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host),
            TlsMode::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host)
                .map_err(|e| format!("mail.smtp.host \"{}\": {e}", s.host))?,
            TlsMode::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host)
                .map_err(|e| format!("mail.smtp.host \"{}\": {e}", s.host))?,
        };
        let mut builder = builder
            .port(s.port)
            .timeout(Some(Duration::from_secs(s.timeout_secs)))
            .pool_config(PoolConfig::new().max_size(s.pool_size));
        if let (Some(user), Some(password)) = (&s.username, &s.password) {
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(Smtp {
            inner: builder.build(),
            description: format!("smtp://{}:{} (tls {:?})", s.host, s.port, s.tls),
        })
    }
}

#[async_trait]
impl Transport for Smtp {
    async fn send(
        &self,
        _outbox_id: i64,
        _kind: &str,
        message: &Message,
    ) -> Result<String, SendError> {
        match self.inner.send(message.clone()).await {
            Ok(response) => Ok(format!(
                "{} {}",
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            )),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
            Err(e) => Err(SendError::Transient(e.to_string())),
        }
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

pub struct FileTransport {
    pub dir: PathBuf,
}

#[async_trait]
impl Transport for FileTransport {
    async fn send(
        &self,
        outbox_id: i64,
        kind: &str,
        message: &Message,
    ) -> Result<String, SendError> {
        let path = self.dir.join(format!("{outbox_id:08}-{kind}.eml"));
        let write = async {
            tokio::fs::create_dir_all(&self.dir).await?;
            tokio::fs::write(&path, message.formatted()).await
        };
        write
            .await
            .map(|()| format!("written to {}", path.display()))
            .map_err(|e| SendError::Transient(format!("cannot write {}: {e}", path.display())))
    }

    fn describe(&self) -> String {
        format!("file {}", self.dir.display())
    }
}

pub struct LogTransport;

#[async_trait]
impl Transport for LogTransport {
    async fn send(
        &self,
        outbox_id: i64,
        kind: &str,
        message: &Message,
    ) -> Result<String, SendError> {
        let to: Vec<String> = message
            .envelope()
            .to()
            .iter()
            .map(ToString::to_string)
            .collect();
        tracing::info!(outbox_id, kind, to = %to.join(", "), bytes = message.formatted().len(), "email (log transport)");
        Ok("logged".into())
    }

    fn describe(&self) -> String {
        "log".into()
    }
}
