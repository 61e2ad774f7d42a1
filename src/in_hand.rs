//! What a worker holds and has not finished: the leases of its claimed work, by row id, kept
//! so that a daemon stopping past its grace period can give them back (the mailer's messages,
//! the payment worker's payments). Only the leases, not the claimed rows. No IO: each worker
//! gives its leases back through its own store call.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The leases (`T`) of unfinished work, by row id; clones share one registry.
#[derive(Debug)]
pub struct InHand<T>(Arc<Mutex<BTreeMap<i64, T>>>);

impl<T> Clone for InHand<T> {
    fn clone(&self) -> Self {
        InHand(self.0.clone())
    }
}

impl<T> Default for InHand<T> {
    fn default() -> Self {
        InHand(Arc::default())
    }
}

impl<T> InHand<T> {
    /// Work claimed: its leases are held.
    pub fn hold(&self, leases: impl IntoIterator<Item = (i64, T)>) {
        self.lock().extend(leases);
    }

    /// Work finished (its outcome recorded): nothing to give back for these rows.
    pub fn finish(&self, ids: impl IntoIterator<Item = i64>) {
        let mut held = self.lock();
        for id in ids {
            held.remove(&id);
        }
    }

    /// Every lease still held, emptying the registry.
    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.lock()).into_values().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i64, T>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
