//! Where a finished email goes: `smtp` (pooled SMTP sessions, see [`super::smtp`]: TLS
//! none/STARTTLS/implicit, authentication and timeouts), `file` (one .eml file per message,
//! named by outbox id, so a resend overwrites instead of duplicating), or `log`. A failure is
//! classified for the mailer: transient (connection refused or reset, timeouts, 4xx) or
//! permanent (5xx, or an extension the message needs and the server lacks).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use lettre::Message;
use lettre::transport::smtp::client::{Certificate, TlsParameters};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

use super::smtp::{Security, SmtpPool};
use crate::config::{MailSettings, MailTransport, SmtpSettings, TlsMode};

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
    pool: SmtpPool,
    description: String,
}

impl Smtp {
    pub fn new(mail: &MailSettings) -> Result<Smtp, String> {
        let s = &mail.smtp;
        // Built here so that a bad host or CA file fails at start-up, not at the first message.
        let security = match s.tls {
            TlsMode::None => Security::None,
            TlsMode::Starttls => Security::Starttls(tls_parameters(s)?),
            TlsMode::Tls => implicit_tls(s)?,
        };
        Ok(Smtp {
            pool: SmtpPool::new(s, security),
            description: format!("smtp://{}:{} (tls {:?})", s.host, s.port, s.tls),
        })
    }
}

/// Verification against the public roots, plus the certificates of `mail.smtp.ca_file`, as
/// lettre's STARTTLS takes it.
fn tls_parameters(s: &SmtpSettings) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(s.host.clone());
    if let Some(path) = &s.ca_file {
        let pem = read_ca_file(path)?;
        let certificate = Certificate::from_pem(&pem).map_err(|e| not_pem(path, e))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build()
        .map_err(|e| format!("mail.smtp.host \"{}\": {e}", s.host))
}

/// The same verification for implicit TLS, whose handshake is ours (see `smtp.rs`).
fn implicit_tls(s: &SmtpSettings) -> Result<Security, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &s.ca_file {
        let pem = read_ca_file(path)?;
        for certificate in CertificateDer::pem_slice_iter(&pem) {
            let certificate = certificate.map_err(|e| not_pem(path, e))?;
            roots.add(certificate).map_err(|e| not_pem(path, e))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("mail.smtp.tls: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let server_name = ServerName::try_from(s.host.clone())
        .map_err(|e| format!("mail.smtp.host \"{}\": {e}", s.host))?;
    Ok(Security::Tls {
        config: Arc::new(config),
        server_name,
    })
}

/// The CA file's bytes, refused unless it holds at least one PEM certificate (lettre accepts
/// a file without any, which would trust nothing new).
fn read_ca_file(path: &Path) -> Result<Vec<u8>, String> {
    let pem = std::fs::read(path).map_err(|e| {
        format!(
            "mail.smtp.ca_file \"{}\": cannot read it: {e}",
            path.display()
        )
    })?;
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err(not_pem(path, "no BEGIN CERTIFICATE block"));
    }
    Ok(pem)
}

fn not_pem(path: &Path, why: impl std::fmt::Display) -> String {
    format!(
        "mail.smtp.ca_file \"{}\": not a PEM certificate ({why}); give the CA's certificate in PEM form",
        path.display()
    )
}

#[async_trait]
impl Transport for Smtp {
    async fn send(
        &self,
        _outbox_id: i64,
        _kind: &str,
        message: &Message,
    ) -> Result<String, SendError> {
        match self
            .pool
            .send(message.envelope(), &message.formatted())
            .await
        {
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
