//! `subsave run` as a process for the tests: started with a fast sweep schedule, SMTP to a
//! test peer and free ports, signalled, killed, and read (its log, its HTTP listener).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::TestDb;
use super::smtp::{SmtpPeer, free_port};

/// One `subsave run` process.
/// Link keys for a daemon under test (never the default key file in the working folder).
pub const TEST_LINK_KEYS: &str = "k1:daemon-test-link-key-daemon-test-link-key";

pub struct Daemon {
    pub child: Child,
    pub http_port: u16,
    /// The customer pages' port.
    pub web_port: u16,
    pub log: std::path::PathBuf,
}

impl Daemon {
    pub fn start(db: &TestDb, smtp_port: u16, extra: &[(&str, &str)]) -> Daemon {
        Daemon::start_with_args(db, smtp_port, extra, &[])
    }

    /// A daemon started with global options too (`--log-format json`).
    pub fn start_with_args(
        db: &TestDb,
        smtp_port: u16,
        extra: &[(&str, &str)],
        args: &[&str],
    ) -> Daemon {
        Daemon::start_on(&db.url, smtp_port, extra, args)
    }

    /// A daemon on the database at `url`.
    pub fn start_on(url: &str, smtp_port: u16, extra: &[(&str, &str)], args: &[&str]) -> Daemon {
        let http_port = free_port();
        let web_port = free_port();
        let log = std::env::temp_dir().join(format!(
            "subsave-daemon-{}-{http_port}.log",
            std::process::id()
        ));
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_subsave"));
        cmd.args(args)
            .arg("run")
            .env("SUBSAVE_DATABASE__URL", url)
            .env("SUBSAVE_ENGINE__SWEEP", "* * * * * *")
            .env("SUBSAVE_ENGINE__BATCH_SIZE", "100")
            .env("SUBSAVE_HTTP__LISTEN", format!("127.0.0.1:{http_port}"))
            .env("SUBSAVE_WEB__LISTEN", format!("127.0.0.1:{web_port}"))
            .env("SUBSAVE_WEB__LINK_KEYS", TEST_LINK_KEYS)
            .env("SUBSAVE_MAIL__TRANSPORT", "smtp")
            .env(
                "SUBSAVE_MAIL__REPLY_TO",
                "Support <support@blackbala.example>",
            )
            .env("SUBSAVE_MAIL__SMTP__PORT", smtp_port.to_string())
            .env("SUBSAVE_MAIL__DELIVERY__RATE_PER_SECOND", "5000")
            .env("SUBSAVE_MAIL__DELIVERY__RETRY_BASE_SECS", "1")
            .env("SUBSAVE_MAIL__DELIVERY__RETRY_MAX_SECS", "2")
            .env("SUBSAVE_MAIL__DELIVERY__MAX_ATTEMPTS", "100")
            .env("SUBSAVE_DAEMON__MAIL_POLL_SECS", "1")
            .env("SUBSAVE_MAIL__DELIVERY__CONCURRENCY", "8")
            .env("SUBSAVE_MAIL__SMTP__POOL_SIZE", "8")
            // A killed daemon's leased messages come back after this; a batch (16 messages
            // at up to 1 s each over 8 senders) fits in it.
            .env("SUBSAVE_MAIL__DELIVERY__LEASE_SECS", "3")
            .env("SUBSAVE_MAIL__DELIVERY__BATCH_SIZE", "16")
            .env("SUBSAVE_MAIL__SMTP__TIMEOUT_SECS", "1")
            .env("SUBSAVE_DAEMON__SHUTDOWN_GRACE_SECS", "20")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        Daemon {
            child: cmd.spawn().expect("start subsave run"),
            http_port,
            web_port,
            log,
        }
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM, then the exit code, which must come within `deadline`.
    pub fn terminate(self, deadline: Duration) -> i32 {
        self.signal("-TERM");
        self.exit_code_within(deadline)
    }

    /// The exit code of a daemon that stops (by itself, or signalled) within `deadline`.
    pub fn exit_code_within(mut self, deadline: Duration) -> i32 {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                started.elapsed() < deadline,
                "no exit within {deadline:?}; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn kill9(mut self) {
        self.kill9_in_place();
    }

    pub fn kill9_in_place(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let response = http_get_raw(port, path, "").await?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

/// The whole response (status line, headers, body) to a GET with `headers` (CRLF-terminated
/// lines) added.
pub async fn http_get_raw(port: u16, path: &str, headers: &str) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    Some(response)
}

pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub fn unique_message_ids(peer: &SmtpPeer) -> (usize, usize) {
    let ids: Vec<String> = peer
        .received()
        .iter()
        .map(|m| {
            let parsed = mail_parser::MessageParser::default()
                .parse(&m.data)
                .unwrap();
            parsed.message_id().unwrap().to_owned()
        })
        .collect();
    let unique: std::collections::BTreeSet<_> = ids.iter().collect();
    (ids.len(), unique.len())
}
