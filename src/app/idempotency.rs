//! Idempotency keys as the API's writes use them: a request reserves its key (or finds the
//! response stored for it, a reuse with another request, or one still in flight), a refusal's
//! response is recorded, and a key whose request ends without a stored response is given back
//! however it ends ([`HeldKey`]).
//!
//! The one seam between a write and its key is [`Commit`]: how a use case's write
//! transaction ends, chosen by the door. Every write use case takes one and ends its
//! transaction with [`Commit::finish`]: as it is ([`Commit::Plain`]: the CLI, the pages, a
//! request without a key), or with the request's response written in the change's own
//! transaction first ([`Commit::Replying`]), so that the change and its recorded response
//! commit together or not at all. This is zero-to-production's `try_processing` adapted to
//! use cases that own their transaction: the door cannot hold the transaction itself (the
//! use case reads and checks before it begins, and some work follows the commit), so it
//! hands the use case how to end it. No write exists twice (with and without a reply), and
//! the store knows nothing of keys beyond `WriteTx::complete_reply`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};

use super::{App, AppError};
use crate::outage::Outage;
use crate::store::{IdempotentRequest, ReplyTo, Reservation, Store, WriteTx};

/// A reservation older than this belongs to a request whose process died: a retry takes it
/// over. Longer than any request may take (`http.request_timeout_secs`).
const IN_FLIGHT_STALE: TimeDelta = TimeDelta::seconds(60);

/// The longest wait between two tries to give back a key while the database is away.
const GIVE_BACK_WAIT_MAX: Duration = Duration::from_secs(5);

/// What a request finds when it reserves its key.
pub enum Reserved {
    /// The key is this request's now: go ahead; the response must be stored for it.
    Held(HeldKey),
    /// The key answered this same request before: send that answer again.
    Replay { status: u16, body: String },
    /// The key was used with another route or body.
    Mismatch,
    /// A request with the key is still being answered.
    InFlight,
}

/// A response as stored for a key: status and JSON body.
pub type Stored = (u16, String);

/// How a use case's write transaction ends, given its result `T`: the door's choice.
pub enum Commit<'a, T> {
    /// Commit the change as it is (no idempotency key).
    Plain,
    /// Write the response `respond` makes of the result for key `to` in the change's
    /// transaction, then commit.
    Replying {
        to: &'a ReplyTo,
        respond: &'a (dyn Fn(&T) -> Stored + Send + Sync),
    },
}

impl<'a, T> Commit<'a, T> {
    /// Replying to `to` when the request has a key, else plain.
    pub fn to(to: Option<&'a ReplyTo>, respond: &'a (dyn Fn(&T) -> Stored + Send + Sync)) -> Self {
        match to {
            Some(to) => Commit::Replying { to, respond },
            None => Commit::Plain,
        }
    }

    /// Ends `tx`, whose change made `done` at `now`: the response written in it first when
    /// replying (refused as a conflict when another request took the key over, and then
    /// nothing commits).
    pub async fn finish(
        self,
        mut tx: Box<dyn WriteTx>,
        done: &T,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        if let Commit::Replying { to, respond } = self {
            let (status, body) = respond(done);
            tx.complete_reply(to, status, &body, now).await?;
        }
        Ok(tx.commit().await?)
    }
}

/// Reserves `request`'s key now (taking over a reservation whose process died). `database`
/// hears of the outages met while giving the key back later.
pub async fn reserve(
    app: &App,
    request: &IdempotentRequest,
    database: &Arc<Outage>,
) -> Result<Reserved, AppError> {
    let now = app.now();
    let reservation = app
        .store()
        .reserve_idempotency_key(request, now, now - IN_FLIGHT_STALE)
        .await?;
    Ok(match reservation {
        Reservation::Reserved => Reserved::Held(HeldKey {
            to: ReplyTo {
                api_key_id: request.api_key_id,
                key: request.key.clone(),
            },
            store: app.store().clone(),
            database: database.clone(),
            stale_at: Instant::now() + IN_FLIGHT_STALE.to_std().unwrap_or_default(),
            settled: false,
        }),
        Reservation::Replay { status, body } => Reserved::Replay { status, body },
        Reservation::Mismatch => Reserved::Mismatch,
        Reservation::InFlight => Reserved::InFlight,
    })
}

/// Stores the response (status, JSON body) of a reserved request that changed nothing (a
/// refusal), or of one that changes nothing when run twice, after it ran.
pub async fn record_reply(
    app: &App,
    to: &ReplyTo,
    status: u16,
    body: &str,
) -> Result<(), AppError> {
    Ok(app
        .store()
        .record_reply(to, status, body, app.now())
        .await?)
}

/// A reserved key whose request has not stored its response. Unless [`HeldKey::settle`]d,
/// the key is given back however the request ends: failed ([`HeldKey::give_back`]), or
/// dropped unanswered (the listener's request timeout drops the handler, as does a client
/// that goes away, or a panic), when the drop gives it back in the background. Giving back
/// deletes a reservation only while it has no response, so it never undoes a change that
/// committed (its response was written in the change's transaction).
pub struct HeldKey {
    to: ReplyTo,
    store: Arc<dyn Store>,
    database: Arc<Outage>,
    /// When a retry would take the reservation over anyway: giving back stops trying then.
    stale_at: Instant,
    settled: bool,
}

impl HeldKey {
    /// Where the request's change writes its response.
    pub fn to(&self) -> &ReplyTo {
        &self.to
    }

    /// The response is stored: the key answers retries with it.
    pub fn settle(mut self) {
        self.settled = true;
    }

    /// Gives the key back before the response goes out, so the retry it invites runs; if the
    /// database does not answer, the drop keeps trying in the background.
    pub async fn give_back(mut self) {
        if self.store.release_idempotency_key(&self.to).await.is_ok() {
            self.database.recovered();
            self.settled = true;
        }
    }
}

impl Drop for HeldKey {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(give_back_until(
            self.store.clone(),
            self.database.clone(),
            self.to.clone(),
            self.stale_at,
        ));
    }
}

/// Gives `to` back, trying again while the database is unreachable, until `stale_at`.
async fn give_back_until(
    store: Arc<dyn Store>,
    database: Arc<Outage>,
    to: ReplyTo,
    stale_at: Instant,
) {
    let mut wait = Duration::from_millis(100);
    loop {
        match store.release_idempotency_key(&to).await {
            Ok(()) => {
                database.recovered();
                return;
            }
            Err(error) if error.is_retryable() && Instant::now() + wait < stale_at => {
                database.failed(&error);
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(GIVE_BACK_WAIT_MAX);
            }
            Err(error) => {
                tracing::warn!(
                    %error,
                    "could not give back an idempotency key: a retry with it gets 409 until the reservation is 60 seconds old, then runs"
                );
                return;
            }
        }
    }
}
