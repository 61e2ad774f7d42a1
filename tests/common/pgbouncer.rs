//! PgBouncer (Debian's package) in transaction mode in front of a PostgreSQL server, on a
//! free port, for one test: its own config in a temp folder, its log kept for failures. It
//! runs as `postgres` when the test runs as root (PgBouncer refuses to run as root).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::smtp::free_port;

pub struct PgBouncer {
    pub port: u16,
    dir: PathBuf,
    child: Child,
}

impl PgBouncer {
    /// PgBouncer with `pool_mode = transaction` for every database of the server on
    /// 127.0.0.1:`server_port`, and `pool_size` server connections per database: fewer than
    /// the clients' connections, so clients share server connections, as in production.
    pub fn start(server_port: u16, pool_size: u32) -> PgBouncer {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("subsave-pgbouncer-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("users.txt"), "\"postgres\" \"\"\n").unwrap();
        std::fs::write(
            dir.join("pgbouncer.ini"),
            format!(
                "[databases]\n* = host=127.0.0.1 port={server_port}\n\n[pgbouncer]\n\
                 listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {users}\npool_mode = transaction\n\
                 default_pool_size = {pool_size}\nmax_client_conn = 500\n\
                 ignore_startup_parameters = extra_float_digits\n",
                users = dir.join("users.txt").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("pgbouncer.log")).unwrap();
        let mut cmd = Command::new("pgbouncer");
        if super::cluster::as_root() {
            // Its files must be readable by the user it switches to.
            Command::new("chmod")
                .args(["-R", "a+rX"])
                .arg(&dir)
                .status()
                .unwrap();
            cmd.args(["-u", "postgres"]);
        }
        let child = cmd
            .arg(dir.join("pgbouncer.ini"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect(
                "pgbouncer must be installed (Debian's package `pgbouncer`; .ci/run installs it)",
            );
        let bouncer = PgBouncer { port, dir, child };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "pgbouncer did not start: {}",
                bouncer.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        bouncer
    }

    /// The URL of `database` through this PgBouncer.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
