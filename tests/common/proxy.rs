//! A TCP proxy on 127.0.0.1 that a test can cut and restore, to take a database "away" from
//! one process without stopping the shared PostgreSQL server.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct TcpProxy {
    pub port: u16,
    target: Arc<Mutex<SocketAddr>>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = TcpProxy {
            port,
            target: Arc::new(Mutex::new(target)),
            tasks: Arc::new(Mutex::new(Vec::new())),
        };
        proxy.accept_on(listener);
        proxy
    }

    fn accept_on(&self, listener: TcpListener) {
        let tasks = self.tasks.clone();
        let target = self.target.clone();
        let acceptor = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let to = *target.lock().unwrap();
                let pipe = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(pipe);
            }
        });
        self.tasks.lock().unwrap().push(acceptor);
    }

    /// Closes the listener and every open connection: the target is unreachable.
    /// Returns once every connection is closed: an aborted task drops its sockets only when the
    /// runtime next polls it, and until then a request could still pass through.
    pub fn cut(&self) {
        let tasks: Vec<JoinHandle<()>> = self.tasks.lock().unwrap().drain(..).collect();
        for task in &tasks {
            task.abort();
        }
        let started = std::time::Instant::now();
        while !tasks.iter().all(JoinHandle::is_finished) {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(5),
                "the proxy's connections did not close"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Listens again on the same port, now passing connections to `target` (a failover: the
    /// address clients use stays, the server behind it changes).
    pub async fn restore_to(&self, target: SocketAddr) {
        *self.target.lock().unwrap() = target;
        self.restore().await;
    }

    /// Listens again on the same port.
    pub async fn restore(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.accept_on(listener);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
    }
}
