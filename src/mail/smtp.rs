//! SMTP sessions and their pool: the only code that talks to an SMTP server. lettre supplies
//! the connection (TCP, TLS, EHLO, STARTTLS, AUTH, dot-stuffing, reply parsing); this module
//! runs each mail transaction itself and keeps the sessions, because lettre's pool costs two
//! round trips per message that a busy outbox does not need:
//!
//! - lettre probes every reused connection with NOOP. Here a session used within the last
//!   [`FRESH`] is reused as it is; an older one is probed first, and one idle longer than
//!   [`IDLE_LIMIT`] is closed.
//! - lettre waits for each reply before the next command. When the server offers PIPELINING
//!   (RFC 2920), MAIL, RCPT and DATA go out in one write here, and their replies are read in
//!   order afterwards.
//! - lettre writes a message and its end-of-data line in two writes, two packets with
//!   TCP_NODELAY; here the dot-stuffed message and its end go out in one ([`data_of`]).
//!
//! A transaction that fails in any way (a refusal, a broken connection, a timeout) closes its
//! session: the next message starts on a clean one, and nothing is left half-read on a socket.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::config::SmtpSettings;

/// A session used this recently is reused without a NOOP probe. A server that closed it in
/// the meantime fails the next message transiently, and the mailer retries it.
pub const FRESH: Duration = Duration::from_secs(1);
/// A session idle this long is closed instead of reused (servers drop idle clients too).
pub const IDLE_LIMIT: Duration = Duration::from_secs(60);

/// Why a transaction did not end in "250".
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    /// lettre's error: a refusal (with the server's reply), a network or TLS failure.
    #[error(transparent)]
    Smtp(#[from] lettre::transport::smtp::Error),
    /// The TCP connection could not be opened.
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    #[error("the SMTP server did not answer within {0} s")]
    Timeout(u64),
    /// The message needs an extension the server does not offer; resending will not help.
    #[error("{0}")]
    Unsupported(&'static str),
}

impl SmtpError {
    /// A 5xx reply: sending the same message again will not help.
    pub fn is_permanent(&self) -> bool {
        match self {
            SmtpError::Smtp(e) => e.is_permanent(),
            SmtpError::Connect(_) | SmtpError::Timeout(_) => false,
            SmtpError::Unsupported(_) => true,
        }
    }
}

/// How a session is protected: `mail.smtp.tls` with the certificates to verify against.
pub enum Security {
    /// Plain text (a loopback relay).
    None,
    /// Plain connect, then STARTTLS; refused when the server does not offer it.
    Starttls(TlsParameters),
    /// TLS from the first byte (usually port 465), verified with this configuration.
    Tls {
        config: Arc<rustls::ClientConfig>,
        server_name: ServerName<'static>,
    },
}

/// One connection and what the server said it can do.
struct Session {
    conn: AsyncSmtpConnection,
    pipelining: bool,
    last_used: Instant,
}

pub struct SmtpPool {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    timeout: Duration,
    max_idle: usize,
    hello: ClientId,
    idle: Mutex<Vec<Session>>,
}

impl SmtpPool {
    pub fn new(settings: &SmtpSettings, security: Security) -> SmtpPool {
        SmtpPool {
            host: settings.host.clone(),
            port: settings.port,
            security,
            credentials: match (&settings.username, &settings.password) {
                (Some(user), Some(password)) => {
                    Some(Credentials::new(user.clone(), password.expose().to_owned()))
                }
                _ => None,
            },
            timeout: Duration::from_secs(settings.timeout_secs),
            max_idle: settings.pool_size as usize,
            hello: ClientId::default(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Sends one message on a pooled session (a new one when none is idle); the whole
    /// exchange, connecting included, must finish within the configured timeout.
    pub async fn send(&self, envelope: &Envelope, body: &[u8]) -> Result<Response, SmtpError> {
        let attempt = async {
            let mut session = self.checkout().await?;
            match session.transact(envelope, body).await {
                Ok(reply) => {
                    self.checkin(session);
                    Ok(reply)
                }
                Err(error) => {
                    session.conn.abort().await;
                    Err(error)
                }
            }
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(result) => result,
            // The session in hand is dropped with the future, which closes its socket.
            Err(_) => Err(SmtpError::Timeout(self.timeout.as_secs())),
        }
    }

    /// The most recently used idle session that still answers, or a new one.
    async fn checkout(&self) -> Result<Session, SmtpError> {
        loop {
            let parked = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let Some(mut session) = parked else {
                return self.connect().await;
            };
            let idle = session.last_used.elapsed();
            if idle < FRESH {
                return Ok(session);
            }
            if idle < IDLE_LIMIT && session.conn.test_connected().await {
                return Ok(session);
            }
            session.conn.abort().await;
        }
    }

    fn checkin(&self, mut session: Session) {
        if session.conn.has_broken() {
            return;
        }
        session.last_used = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        // Beyond the pool size a session is dropped, which closes its socket.
        if idle.len() < self.max_idle {
            idle.push(session);
        }
    }

    /// Connects, greets, secures and authenticates as configured, then asks the server (with
    /// a second EHLO, before AUTH) whether it offers PIPELINING, which lettre does not record.
    ///
    /// The TCP stream is ours, not lettre's, so that it can set TCP_NODELAY: without it Nagle
    /// holds each message's final "\r\n.\r\n" until the server's delayed ACK, about 40 ms
    /// per message. So is the implicit-TLS handshake on it (tokio-rustls); STARTTLS is
    /// lettre's, on the stream we handed it.
    async fn connect(&self) -> Result<Session, SmtpError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(SmtpError::Connect)?;
        tcp.set_nodelay(true).map_err(SmtpError::Connect)?;
        let stream: Box<dyn AsyncTokioStream> = match &self.security {
            Security::Tls {
                config,
                server_name,
            } => {
                let tls = TlsConnector::from(config.clone())
                    .connect(server_name.clone(), tcp)
                    .await
                    .map_err(SmtpError::Connect)?;
                Box::new(ImplicitTls(tls))
            }
            Security::None | Security::Starttls(_) => Box::new(tcp),
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello).await?;
        if let Security::Starttls(parameters) = &self.security {
            conn.starttls(parameters.clone(), &self.hello).await?;
        }
        let ehlo = conn.command(Ehlo::new(self.hello.clone())).await?;
        let pipelining = ehlo.message().any(|line| {
            line.split_whitespace()
                .next()
                .is_some_and(|keyword| keyword.eq_ignore_ascii_case("PIPELINING"))
        });
        if let Some(credentials) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials).await?;
        }
        Ok(Session {
            conn,
            pipelining,
            last_used: Instant::now(),
        })
    }
}

/// Our implicit-TLS stream, as the tokio stream lettre's connection takes.
#[derive(Debug)]
struct ImplicitTls(TlsStream<TcpStream>);

impl AsyncTokioStream for ImplicitTls {
    fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl tokio::io::AsyncRead for ImplicitTls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for ImplicitTls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl Session {
    /// One mail transaction: MAIL, RCPT for each recipient, DATA, the message. Pipelined when
    /// the server allows it: the replies still come back one per command, in order.
    async fn transact(&mut self, envelope: &Envelope, body: &[u8]) -> Result<Response, SmtpError> {
        let mail = Mail::new(
            envelope.from().cloned(),
            self.mail_parameters(envelope, body)?,
        );
        let rcpts: Vec<Rcpt> = envelope
            .to()
            .iter()
            .map(|to| Rcpt::new(to.clone(), vec![]))
            .collect();
        if self.pipelining {
            // Each command renders with its CRLF: one write carries them all. `command`
            // returns MAIL's reply; the others are read in the order they were sent.
            let mut commands = mail.to_string();
            for rcpt in &rcpts {
                commands.push_str(&rcpt.to_string());
            }
            commands.push_str(&Data.to_string());
            self.conn.command(commands).await?;
            for _ in &rcpts {
                self.conn.read_response().await?;
            }
            self.conn.read_response().await?;
        } else {
            self.conn.command(mail).await?;
            for rcpt in rcpts {
                self.conn.command(rcpt).await?;
            }
            self.conn.command(Data).await?;
        }
        match String::from_utf8(data_of(body)) {
            Ok(data) => Ok(self.conn.command(data.as_str()).await?),
            // Not text (no message of ours is): lettre's own stuffing, in two writes.
            Err(_) => Ok(self.conn.message(body).await?),
        }
    }

    /// SMTPUTF8 for non-ASCII addresses and 8BITMIME for a non-ASCII body, as lettre's own
    /// transaction does; refused up front when the server does not offer them.
    fn mail_parameters(
        &self,
        envelope: &Envelope,
        body: &[u8],
    ) -> Result<Vec<MailParameter>, SmtpError> {
        let info = self.conn.server_info();
        let mut parameters = Vec::new();
        let non_ascii = envelope
            .from()
            .into_iter()
            .chain(envelope.to())
            .any(|address| !AsRef::<str>::as_ref(address).is_ascii());
        if non_ascii {
            if !info.supports_feature(Extension::SmtpUtfEight) {
                return Err(SmtpError::Unsupported(
                    "an address is not ASCII and the server does not offer SMTPUTF8",
                ));
            }
            parameters.push(MailParameter::SmtpUtfEight);
        }
        if !body.is_ascii() {
            if !info.supports_feature(Extension::EightBitMime) {
                return Err(SmtpError::Unsupported(
                    "the message is not ASCII and the server does not offer 8BITMIME",
                ));
            }
            parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        Ok(parameters)
    }
}

/// A message as DATA carries it (RFC 5321 4.5.2): a dot that starts a line is doubled, so that
/// no line of the message reads as the end, and the end-of-data line follows. The same bytes
/// as lettre's `message()`, which doubles a dot at the start or after CRLF and then writes
/// CRLF, dot, CRLF.
fn data_of(message: &[u8]) -> Vec<u8> {
    const END: &[u8] = b"\r\n.\r\n";
    let mut data = Vec::with_capacity(message.len() + END.len() + 16);
    if message.first() == Some(&b'.') {
        data.push(b'.');
    }
    let mut copied = 0;
    for at in memchr::memmem::find_iter(message, b"\r\n.") {
        // Up to and including the CRLF, then the extra dot; the line's own dot comes next.
        data.extend_from_slice(&message[copied..at + 2]);
        data.push(b'.');
        copied = at + 2;
    }
    data.extend_from_slice(&message[copied..]);
    data.extend_from_slice(END);
    data
}

#[cfg(test)]
mod tests {
    use super::data_of;

    /// What lettre's `ClientCodec` writes for a message, then the end-of-data line: the
    /// oracle `data_of` must match byte for byte.
    fn lettre_data(message: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut line_start = true;
        let mut after_cr = false;
        for &byte in message {
            out.push(byte);
            if byte == b'.' && line_start {
                out.push(b'.');
            }
            line_start = byte == b'\n' && after_cr;
            after_cr = byte == b'\r';
        }
        out.extend_from_slice(b"\r\n.\r\n");
        out
    }

    #[test]
    fn a_dot_that_starts_a_line_is_doubled() {
        assert_eq!(data_of(b"a\r\n.b\r\n"), b"a\r\n..b\r\n\r\n.\r\n");
        assert_eq!(data_of(b".\r\n.\r\n"), b"..\r\n..\r\n\r\n.\r\n");
        assert_eq!(data_of(b"a.b\n.c"), b"a.b\n.c\r\n.\r\n");
        assert_eq!(data_of(b""), b"\r\n.\r\n");
    }

    proptest::proptest! {
        #[test]
        fn the_same_bytes_as_lettre(message in proptest::collection::vec(
            proptest::sample::select(vec![b'.', b'\r', b'\n', b'a']), 0..64)) {
            proptest::prop_assert_eq!(data_of(&message), lettre_data(&message));
        }
    }
}
