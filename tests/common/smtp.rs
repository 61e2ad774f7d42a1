//! A scripted SMTP server on 127.0.0.1 for the mail tests: it speaks real SMTP over TCP
//! (EHLO, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT, and PIPELINING unless told
//! not to), keeps what it received, counts connections, NOOPs and pipelined transactions,
//! answers DATA or RCPT from a script (4xx, 5xx, never, or by hanging up after taking the
//! message) when told to, can require AUTH PLAIN, can
//! speak TLS (STARTTLS or implicit, with a certificate from a CA of its own), and can hang up
//! on every client as a server's idle timeout would.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: Vec<u8>,
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    connections: usize,
    /// Every message body that reached the end of DATA, whatever the answer (or none).
    transmissions: Vec<Vec<u8>>,
    /// Replies for the next DATA ends, in order; "250 …" once empty. `HANG` never answers;
    /// `TAKE AND CLOSE` keeps the message and closes the connection without answering.
    data_script: VecDeque<String>,
    /// A reply for every RCPT (a permanent refusal, say); "250 OK" when unset.
    rcpt_reply: Option<String>,
    /// Whether EHLO offers PIPELINING (RFC 2920).
    pipelining: bool,
    noops: usize,
    /// Transactions whose RCPT had already arrived when MAIL was read.
    pipelined: usize,
    /// When set, EHLO offers AUTH PLAIN and MAIL needs a successful AUTH with these
    /// base64 credentials first.
    required_auth: Option<String>,
    /// Every AUTH command's text, in order.
    auths: Vec<String>,
    /// Sessions that switched to TLS (implicit or STARTTLS).
    encrypted: usize,
    /// Cancelled to close every open connection.
    hang_up: CancellationToken,
}

pub struct SmtpPeer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

/// A free loopback port (bound, then released), for a server that starts later.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl SmtpPeer {
    pub async fn start() -> SmtpPeer {
        SmtpPeer::start_on(0).await
    }

    /// A peer whose EHLO does not offer PIPELINING.
    pub async fn start_without_pipelining() -> SmtpPeer {
        let peer = SmtpPeer::start_on(0).await;
        peer.state.lock().unwrap().pipelining = false;
        peer
    }

    pub async fn start_on(port: u16) -> SmtpPeer {
        SmtpPeer::start_with(port, None).await
    }

    /// A peer speaking TLS with a certificate for 127.0.0.1 issued by a CA of its own, either
    /// after STARTTLS or from the first byte; returns it and the CA's certificate (PEM), which a
    /// client must be told to trust.
    pub async fn start_tls(mode: PeerTls) -> (SmtpPeer, String) {
        let (acceptor, ca_pem) = test_tls();
        (
            SmtpPeer::start_with(0, Some((mode, acceptor))).await,
            ca_pem,
        )
    }

    async fn start_with(port: u16, tls: Option<(PeerTls, TlsAcceptor)>) -> SmtpPeer {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the SMTP peer");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            pipelining: true,
            ..State::default()
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let hang_up = {
                    let mut state = shared.lock().unwrap();
                    state.connections += 1;
                    state.hang_up.clone()
                };
                let state = shared.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        biased;
                        () = hang_up.cancelled() => {}
                        _ = session(socket, state, tls) => {}
                    }
                });
            }
        });
        SmtpPeer { addr, state, task }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Every message body that reached the end of DATA, answered or not.
    pub fn transmissions(&self) -> Vec<Vec<u8>> {
        self.state.lock().unwrap().transmissions.clone()
    }

    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }

    /// The next DATA commands are answered with these replies, in order.
    pub fn script_data(&self, replies: &[&str]) {
        self.state
            .lock()
            .unwrap()
            .data_script
            .extend(replies.iter().map(|r| r.to_string()));
    }

    pub fn refuse_recipients(&self, reply: &str) {
        self.state.lock().unwrap().rcpt_reply = Some(reply.to_owned());
    }

    pub fn accept_recipients(&self) {
        self.state.lock().unwrap().rcpt_reply = None;
    }

    /// From now on, MAIL needs `AUTH PLAIN` with these credentials (base64 of
    /// "\0user\0password") first.
    pub fn require_auth(&self, plain: &str) {
        self.state.lock().unwrap().required_auth = Some(plain.to_owned());
    }

    pub fn encrypted_sessions(&self) -> usize {
        self.state.lock().unwrap().encrypted
    }

    pub fn auths(&self) -> Vec<String> {
        self.state.lock().unwrap().auths.clone()
    }

    pub fn noops(&self) -> usize {
        self.state.lock().unwrap().noops
    }

    pub fn pipelined(&self) -> usize {
        self.state.lock().unwrap().pipelined
    }

    /// Closes every open connection, as a server's idle timeout or a restart would.
    pub fn hang_up(&self) {
        let mut state = self.state.lock().unwrap();
        state.hang_up.cancel();
        state.hang_up = CancellationToken::new();
    }
}

impl Drop for SmtpPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Either side of TLS: a peer session is served over a plain socket or a TLS stream.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One client connection: TLS from the first byte, or plain with STARTTLS offered when the
/// peer has a certificate; served again over TLS after a STARTTLS.
async fn session(
    socket: TcpStream,
    state: Arc<Mutex<State>>,
    tls: Option<(PeerTls, TlsAcceptor)>,
) -> std::io::Result<()> {
    socket.set_nodelay(true)?;
    let mut stream: Box<dyn Stream> = match &tls {
        Some((PeerTls::Implicit, acceptor)) => {
            let stream = acceptor.accept(socket).await?;
            state.lock().unwrap().encrypted += 1;
            Box::new(stream)
        }
        _ => Box::new(socket),
    };
    let mut greet = true;
    let mut starttls = matches!(tls, Some((PeerTls::Starttls, _)));
    while let Some(plain) = serve(stream, &state, greet, starttls).await? {
        let Some((_, acceptor)) = &tls else {
            return Ok(());
        };
        stream = Box::new(acceptor.accept(plain).await?);
        state.lock().unwrap().encrypted += 1;
        (greet, starttls) = (false, false);
    }
    Ok(())
}

/// Serves SMTP until QUIT or EOF (`None`), or until a STARTTLS is accepted: then the stream is
/// handed back to be wrapped in TLS.
async fn serve(
    stream: Box<dyn Stream>,
    state: &Arc<Mutex<State>>,
    greet: bool,
    offer_starttls: bool,
) -> std::io::Result<Option<Box<dyn Stream>>> {
    let (read, mut write) = tokio::io::split(stream);
    let mut lines = BufReader::new(read);
    if greet {
        write.write_all(b"220 subsave-test-peer ESMTP\r\n").await?;
    }
    let mut from = String::new();
    let mut to = Vec::new();
    let mut authenticated = false;
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let command = line.trim_end().to_owned();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: String = match verb.as_str() {
            "EHLO" => {
                let state = state.lock().unwrap();
                let mut lines = vec!["subsave-test-peer", "8BITMIME"];
                if state.pipelining {
                    lines.push("PIPELINING");
                }
                if state.required_auth.is_some() {
                    lines.push("AUTH PLAIN");
                }
                if offer_starttls {
                    lines.push("STARTTLS");
                }
                lines.push("SMTPUTF8");
                let last = lines.len() - 1;
                lines
                    .iter()
                    .enumerate()
                    .map(|(i, line)| format!("250{}{line}", if i == last { ' ' } else { '-' }))
                    .collect::<Vec<_>>()
                    .join("\r\n")
            }
            "AUTH" => {
                let mut state = state.lock().unwrap();
                state.auths.push(command.clone());
                let given = command.split_whitespace().nth(2).unwrap_or("");
                if state.required_auth.as_deref() == Some(given) {
                    authenticated = true;
                    "235 2.7.0 authenticated".into()
                } else {
                    "535 5.7.8 authentication failed".into()
                }
            }
            "MAIL" if state.lock().unwrap().required_auth.is_some() && !authenticated => {
                "530 5.7.0 authentication required".into()
            }
            "HELO" => "250 subsave-test-peer".into(),
            "MAIL" => {
                if String::from_utf8_lossy(lines.buffer()).contains("RCPT") {
                    state.lock().unwrap().pipelined += 1;
                }
                from = command[4..].trim().to_owned();
                to.clear();
                "250 2.1.0 OK".into()
            }
            "RCPT" => match state.lock().unwrap().rcpt_reply.clone() {
                Some(refusal) => refusal,
                None => {
                    to.push(command[4..].trim().to_owned());
                    "250 2.1.5 OK".into()
                }
            },
            // RFC 2920: with no accepted recipient, DATA is refused (a pipelining client has
            // sent it already).
            "DATA" if to.is_empty() => "554 5.5.1 no valid recipients".into(),
            "DATA" => {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut data = Vec::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(None);
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    let unstuffed = if line.starts_with("..") {
                        &line[1..]
                    } else {
                        line.as_str()
                    };
                    data.extend_from_slice(unstuffed.as_bytes());
                }
                let scripted = {
                    let mut state = state.lock().unwrap();
                    state.transmissions.push(data.clone());
                    state.data_script.pop_front()
                };
                match scripted.as_deref() {
                    // Never answers: waits until the client gives up and closes.
                    Some("HANG") => {
                        while lines.read_line(&mut line).await? > 0 {
                            line.clear();
                        }
                        return Ok(None);
                    }
                    // Takes the message, then hangs up before saying so.
                    Some("TAKE AND CLOSE") => {
                        state.lock().unwrap().received.push(Received {
                            from: from.clone(),
                            to: to.clone(),
                            data,
                        });
                        return Ok(None);
                    }
                    // A scripted acceptance keeps the message like an unscripted one.
                    Some(reply) if reply.starts_with('2') => {
                        state.lock().unwrap().received.push(Received {
                            from: from.clone(),
                            to: to.clone(),
                            data,
                        });
                        reply.to_owned()
                    }
                    Some(reply) => reply.to_owned(),
                    None => {
                        let mut state = state.lock().unwrap();
                        state.received.push(Received {
                            from: from.clone(),
                            to: to.clone(),
                            data,
                        });
                        format!("250 2.0.0 queued as {}", state.received.len())
                    }
                }
            }
            "STARTTLS" if offer_starttls => {
                write.write_all(b"220 2.0.0 ready to start TLS\r\n").await?;
                return Ok(Some(lines.into_inner().unsplit(write)));
            }
            "RSET" => {
                to.clear();
                "250 2.0.0 OK".into()
            }
            "NOOP" => {
                state.lock().unwrap().noops += 1;
                "250 2.0.0 OK".into()
            }
            "QUIT" => {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(None);
            }
            _ => "502 5.5.2 command not recognized".into(),
        };
        write.write_all(format!("{reply}\r\n").as_bytes()).await?;
    }
}

/// How a TLS peer speaks TLS.
#[derive(Clone, Copy)]
pub enum PeerTls {
    /// Plain at first; STARTTLS offered.
    Starttls,
    /// TLS from the first byte.
    Implicit,
}

/// A CA and a certificate for 127.0.0.1 signed by it: the acceptor serving that certificate,
/// and the CA's certificate in PEM.
fn test_tls() -> (TlsAcceptor, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    use tokio_rustls::rustls::{self, pki_types};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    (TlsAcceptor::from(Arc::new(config)), ca.pem())
}
