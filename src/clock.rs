//! The one source of "now". Everything that needs the time takes it from a [`Clock`] (or as a
//! parameter), so tests, the demo and operators (`--now`) can run subsave at any instant.

use chrono::{DateTime, SubsecRound, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock, truncated to microseconds (the databases' precision), so an
/// instant read back from storage equals the one written.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

/// A clock stopped at one instant (`--now`, tests, the demo's simulated days).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.trunc_subsecs(6)
    }
}
