//! The console's sessions: a server-side store in this daemon's memory. A session is a random
//! id in an HttpOnly cookie; the store keeps only the id's SHA-256, who signed in, with which
//! key (its hash), the session's CSRF token and when it ends. Sign-out removes it, so a copied
//! cookie opens nothing afterwards; a restart ends every session (people sign in again), and
//! each replica has its own (put the console behind one replica, or sticky sessions).
//!
//! Must not: keep a cookie's value, or a key, in memory or logs.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};

/// At most this many live sessions; signing in past it ends the one closest to its end.
const MAX_SESSIONS: usize = 10_000;

/// Who a session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The admin key's name: actions are recorded as `admin:<name>`.
    pub name: String,
    /// The SHA-256 of the key signed in with: the session lasts only while the key does.
    pub key_hash: [u8; 32],
    /// The token every form of this session carries.
    pub csrf: String,
    pub expires: DateTime<Utc>,
}

pub struct Sessions {
    live: Mutex<HashMap<[u8; 32], Session>>,
    ttl: TimeDelta,
}

impl Sessions {
    pub fn new(ttl: TimeDelta) -> Sessions {
        Sessions {
            live: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    /// Opens a session for `name` (signed in with the key whose hash is `key_hash`); returns
    /// the cookie's value and the session.
    pub fn open(
        &self,
        name: &str,
        key_hash: [u8; 32],
        now: DateTime<Utc>,
    ) -> std::io::Result<(String, Session)> {
        let id = random_token()?;
        let session = Session {
            name: name.to_owned(),
            key_hash,
            csrf: random_token()?,
            expires: now + self.ttl,
        };
        let mut live = self.lock();
        live.retain(|_, s| s.expires > now);
        if live.len() >= MAX_SESSIONS
            && let Some(first) = live.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k)
        {
            live.remove(&first);
        }
        live.insert(digest(&id), session.clone());
        Ok((id, session))
    }

    /// The live session of a cookie's value; an expired one is forgotten.
    pub fn find(&self, id: &str, now: DateTime<Utc>) -> Option<Session> {
        let mut live = self.lock();
        let key = digest(id);
        match live.get(&key) {
            Some(session) if session.expires > now => Some(session.clone()),
            Some(_) => {
                live.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends the session of a cookie's value (sign-out).
    pub fn close(&self, id: &str) {
        self.lock().remove(&digest(id));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// 256 random bits, hex.
pub fn random_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(hex(&bytes))
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + TimeDelta::minutes(minutes)
    }

    #[test]
    fn a_session_opens_until_it_ends_or_is_closed() {
        let sessions = Sessions::new(TimeDelta::minutes(60));
        let (id, session) = sessions.open("ops", [7; 32], at(0)).unwrap();
        assert_eq!(session.expires, at(60));
        assert_eq!(sessions.find(&id, at(59)), Some(session));
        assert_eq!(sessions.find(&id, at(60)), None, "expired at its end");
        let (id, _) = sessions.open("ops", [7; 32], at(100)).unwrap();
        sessions.close(&id);
        assert_eq!(sessions.find(&id, at(101)), None, "closed at sign-out");
        assert_eq!(sessions.find("not-an-id", at(101)), None);
    }

    #[test]
    fn ids_and_tokens_differ_every_time() {
        let sessions = Sessions::new(TimeDelta::minutes(60));
        let (a, sa) = sessions.open("ops", [1; 32], at(0)).unwrap();
        let (b, sb) = sessions.open("ops", [1; 32], at(0)).unwrap();
        assert_ne!(a, b);
        assert_ne!(sa.csrf, sb.csrf);
        assert_eq!(a.len(), 64);
    }
}
