//! Fixed-window request counting per key (a client address, a link, an API key), for the
//! public doors (`web`, `api`): at most `limit` requests per `window`, and how long until the
//! next is allowed. In memory, per process; bounded, so a flood of distinct keys cannot grow
//! it without end. Reads no clock: the caller gives the instant.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Past this many keys, windows that have ended are dropped; if that is not enough, a new key
/// is refused until windows end (a flood of distinct keys).
const KEYS_KEPT: usize = 50_000;

pub struct RateLimiter {
    limit: u32,
    window: Duration,
    counts: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    pub fn new(limit: u32, window: Duration) -> RateLimiter {
        RateLimiter {
            limit,
            window,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request for `key` at `now`: `Err` with how long until one is allowed again
    /// when the window's limit is used up (the request is not counted then).
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.len() >= KEYS_KEPT && !counts.contains_key(key) {
            let window = self.window;
            counts.retain(|_, (start, _)| now.duration_since(*start) < window);
            if counts.len() >= KEYS_KEPT {
                return Err(self.window);
            }
        }
        let entry = counts.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit {
            return Err(self.window.saturating_sub(now.duration_since(entry.0)));
        }
        entry.1 += 1;
        Ok(())
    }
}

impl RateLimiter {
    /// How long until `key` may be counted again, if its window's limit is used up; counts
    /// nothing.
    pub fn exhausted(&self, key: &str, now: Instant) -> Option<Duration> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let (start, count) = counts.get(key)?;
        let elapsed = now.duration_since(*start);
        (elapsed < self.window && *count >= self.limit).then(|| self.window - elapsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_limit_per_window_then_waits() {
        let limiter = RateLimiter::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(limiter.check("a", t0), Ok(()));
        assert_eq!(limiter.check("a", t0 + Duration::from_secs(1)), Ok(()));
        assert_eq!(
            limiter.check("a", t0 + Duration::from_secs(20)),
            Err(Duration::from_secs(40))
        );
        assert_eq!(limiter.check("b", t0 + Duration::from_secs(20)), Ok(()));
        assert_eq!(
            limiter.exhausted("a", t0 + Duration::from_secs(30)),
            Some(Duration::from_secs(30))
        );
        assert_eq!(limiter.exhausted("b", t0 + Duration::from_secs(30)), None);
        assert_eq!(limiter.check("a", t0 + Duration::from_secs(60)), Ok(()));
    }
}
