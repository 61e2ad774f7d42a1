//! PostgreSQL clusters of a test's own: a primary made by `initdb` and standbys made from it by
//! `pg_basebackup -R`, each in a temp folder on a free port, with the installed server
//! binaries (`pg_config --bindir`). The test stops and removes them; the shared server on 5432
//! is never touched. Run as `postgres` when the test runs as root (the server refuses root).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use sqlx::Connection;

use super::smtp::free_port;

pub struct Cluster {
    pub port: u16,
    dir: PathBuf,
    bindir: PathBuf,
}

fn bindir() -> PathBuf {
    let output = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .expect("pg_config must be installed (PostgreSQL's server packages)");
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// Whether the test runs as root: then the server binaries and PgBouncer, which refuse root,
/// run as `postgres`.
pub fn as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A server binary, to be run as the user the server accepts.
fn server_command(bindir: &Path, program: &str) -> Command {
    let binary = bindir.join(program);
    if as_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(binary);
        cmd
    } else {
        Command::new(binary)
    }
}

/// Runs a server binary, and fails the test on an error.
fn run(bindir: &Path, program: &str, args: &[&str]) -> Output {
    let output = server_command(bindir, program).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn new_dir(role: &str, port: u16) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "subsave-cluster-{}-{role}-{port}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    if as_root() {
        let status = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success());
    }
    dir
}

impl Cluster {
    /// A primary that streams its WAL to standbys.
    pub fn primary() -> Cluster {
        let bindir = bindir();
        let port = free_port();
        let dir = new_dir("primary", port);
        let data = dir.join("data");
        run(
            &bindir,
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ],
        );
        let conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{dir}'\n\
             wal_level = replica\nmax_wal_senders = 5\nhot_standby = on\nshared_buffers = 32MB\n\
             max_connections = 60\nwal_keep_size = 256MB\n",
            dir = dir.display()
        );
        append(&data.join("postgresql.conf"), &conf);
        let cluster = Cluster { port, dir, bindir };
        cluster.start();
        cluster
    }

    /// From now on a commit on this primary waits until the standby named "standby" has
    /// flushed it (made after the standby is up: until then every commit would wait).
    pub async fn require_synchronous_standby(&self) {
        self.execute(
            "postgres",
            "ALTER SYSTEM SET synchronous_standby_names = 'standby'",
        )
        .await;
        self.execute("postgres", "SELECT pg_reload_conf()").await;
        let started = Instant::now();
        while self
            .scalar(
                "postgres",
                "SELECT COUNT(*) FROM pg_stat_replication WHERE application_name = 'standby' AND sync_state = 'sync'",
            )
            .await
            == 0
        {
            assert!(started.elapsed() < Duration::from_secs(30), "the standby never became synchronous");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A hot standby of `primary`, streaming from it as "standby".
    pub fn standby_of(primary: &Cluster) -> Cluster {
        let port = free_port();
        let dir = new_dir("standby", port);
        let data = dir.join("data");
        let primary_port = primary.port.to_string();
        run(
            &primary.bindir,
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &primary_port,
                "-U",
                "postgres",
                "-D",
                data.to_str().unwrap(),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ],
        );
        append(
            &data.join("postgresql.auto.conf"),
            &format!(
                "\nport = {port}\nunix_socket_directories = '{dir}'\n\
                 primary_conninfo = 'host=127.0.0.1 port={primary_port} user=postgres application_name=standby'\n",
                dir = dir.display()
            ),
        );
        let cluster = Cluster {
            port,
            dir,
            bindir: primary.bindir.clone(),
        };
        cluster.start();
        cluster
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn start(&self) {
        let log = self.dir.join("server.log").display().to_string();
        run(
            &self.bindir,
            "pg_ctl",
            &["-D", &self.data(), "-l", &log, "-w", "-t", "60", "start"],
        );
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server at once, as a crash would (`pg_ctl stop -m immediate`).
    pub fn crash(&self) {
        run(
            &self.bindir,
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }

    /// Promotes a standby to primary and waits until it accepts writes.
    pub fn promote(&self) {
        run(
            &self.bindir,
            "pg_ctl",
            &["-D", &self.data(), "-w", "promote"],
        );
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    pub async fn execute(&self, database: &str, sql: &str) {
        let mut conn = sqlx::PgConnection::connect(&self.url(database))
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub async fn scalar(&self, database: &str, sql: &str) -> i64 {
        let mut conn = sqlx::PgConnection::connect(&self.url(database))
            .await
            .unwrap();
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Waits until this standby has replayed everything `primary` has written so far.
    pub async fn caught_up_with(&self, primary: &Cluster) {
        let mut conn = sqlx::PgConnection::connect(&primary.url("postgres"))
            .await
            .unwrap();
        let lsn: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        let mut standby = sqlx::PgConnection::connect(&self.url("postgres"))
            .await
            .unwrap();
        let started = Instant::now();
        loop {
            let behind: i64 = sqlx::query_scalar(
                "SELECT pg_wal_lsn_diff($1::pg_lsn, pg_last_wal_replay_lsn())::bigint",
            )
            .bind(&lsn)
            .fetch_one(&mut standby)
            .await
            .unwrap();
            if behind <= 0 {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "standby never caught up"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn append(file: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(file).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = server_command(&self.bindir, "pg_ctl")
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
