//! A scripted SMTP server on 127.0.0.1 for the mail tests: it speaks real SMTP over TCP
//! (EHLO, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT), keeps what it received,
//! counts connections, and answers DATA or RCPT from a script (4xx, 5xx) when told to.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

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
    /// Replies for the next DATA ends, in order; "250 …" once empty.
    data_script: VecDeque<String>,
    /// A reply for every RCPT (a permanent refusal, say); "250 OK" when unset.
    rcpt_reply: Option<String>,
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

    pub async fn start_on(port: u16) -> SmtpPeer {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the SMTP peer");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                shared.lock().unwrap().connections += 1;
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(socket, state).await;
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
}

impl Drop for SmtpPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(socket: tokio::net::TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    socket.set_nodelay(true)?;
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 subsave-test-peer ESMTP\r\n").await?;
    let mut from = String::new();
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: String = match verb.as_str() {
            "EHLO" => "250-subsave-test-peer\r\n250-8BITMIME\r\n250 SMTPUTF8".into(),
            "HELO" => "250 subsave-test-peer".into(),
            "MAIL" => {
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
            "DATA" => {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut data = Vec::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
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
                let mut state = state.lock().unwrap();
                match state.data_script.pop_front() {
                    Some(reply) => reply,
                    None => {
                        state.received.push(Received {
                            from: from.clone(),
                            to: to.clone(),
                            data,
                        });
                        format!("250 2.0.0 queued as {}", state.received.len())
                    }
                }
            }
            "RSET" => {
                to.clear();
                "250 2.0.0 OK".into()
            }
            "NOOP" => "250 2.0.0 OK".into(),
            "QUIT" => {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            _ => "502 5.5.2 command not recognized".into(),
        };
        write.write_all(format!("{reply}\r\n").as_bytes()).await?;
    }
}
