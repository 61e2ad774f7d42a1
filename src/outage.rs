//! [`Outage`]: a peer's state (the database, the mail server) as the loops and sends see it,
//! logged once when an outage starts and once when it ends, however many reports come in
//! between. Owns nothing else.

use std::sync::Mutex;
use std::time::Instant;

pub struct Outage {
    what: &'static str,
    /// Since when the peer has been failing, while it is.
    since: Mutex<Option<Instant>>,
}

impl Outage {
    pub fn new(what: &'static str) -> Outage {
        Outage {
            what,
            since: Mutex::new(None),
        }
    }

    /// A failure: logged when it starts an outage.
    pub fn failed(&self, error: &dyn std::fmt::Display) {
        let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        if since.is_none() {
            *since = Some(Instant::now());
            tracing::error!(%error, "{} unavailable; retrying until it is back", self.what);
        }
    }

    /// A success: logged when it ends an outage, with how long it lasted.
    pub fn recovered(&self) {
        let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(started) = since.take() {
            tracing::info!(
                outage_secs = started.elapsed().as_secs(),
                "{} available again",
                self.what
            );
        }
    }
}
