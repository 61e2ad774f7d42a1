//! The mailer: delivers the outbox. It leases due messages (`SKIP LOCKED`, so several
//! mailers share the work and a crashed one's lease expires), suppresses reminders that no
//! longer tell the truth, renders, and sends through the transport with bounded concurrency
//! and a rate limit. A transient failure is retried with exponential backoff and jitter,
//! counted from the failure, up to `max_attempts` sends, then `failed`; a permanent one is
//! `failed` at once with the server's reply. Every message carries a Message-ID derived from
//! its outbox row, so a resend after a crash between the server's "250" and our commit is
//! recognisable as the same message.
//!
//! Faults it contains: a message that cannot be built or rendered (bad stored data, even one
//! that makes a dependency panic) is `failed` once with the reason and the rest go on; a send
//! starts only if it can end (the transport's timeout) before the message's lease does, so a
//! mailer never sends under a lease it may no longer hold; the mail server's outages are
//! logged once when the first send fails and once when one succeeds again.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use futures_util::FutureExt;
use lettre::Message as Email;
use lettre::address::Envelope;
use lettre::message::{Mailbox, MultiPart};
use serde::Serialize;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::templates::{Renderer, field, template_values};
use super::transport::{SendError, Transport};
use crate::clock::Clock;
use crate::config::{DeliverySettings, MailSettings};
use crate::core::catalog::Catalog;
use crate::core::links::Links;
use crate::core::model::{Message, MessageKind, Subscription};
use crate::core::reminders::stale_reason;
use crate::core::schedule::DeliveryWindow;
use crate::mail::hooks::Hooks;
use crate::outage::Outage;
use crate::render::PlanNames;
use crate::store::{Delivery, Lease, Store, StoreError};

/// What one delivery pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    pub suppressed: usize,
    /// Not sent because the lease would have run out during the send: given back, to be
    /// sent under a new lease.
    pub released: usize,
    /// Outcomes per message kind: kind → outcome (sent, retried, failed, suppressed,
    /// released) → count.
    pub by_kind: BTreeMap<String, BTreeMap<&'static str, usize>>,
}

impl DeliveryReport {
    fn count(&mut self, kind: String, outcome: &Delivery) {
        let name = match outcome {
            Delivery::Sent(_) => {
                self.sent += 1;
                "sent"
            }
            Delivery::Retry { .. } => {
                self.retried += 1;
                "retried"
            }
            Delivery::Failed(_) | Delivery::Unsendable(_) => {
                self.failed += 1;
                "failed"
            }
            Delivery::Released => {
                self.released += 1;
                "released"
            }
            Delivery::Suppressed(_) => {
                self.suppressed += 1;
                "suppressed"
            }
        };
        *self
            .by_kind
            .entry(kind)
            .or_default()
            .entry(name)
            .or_default() += 1;
    }
}

/// The most outcomes one write records; more wait for the next write. A write is one
/// statement on either store (PostgreSQL binds them as arrays, SQLite's `VALUES` lists take
/// up to 1,000).
const RECORD_AT_MOST: usize = 250;

/// A write of fewer outcomes waits up to [`GATHER_FOR`] for more to finish, so that a fast
/// server's outcomes are committed a few dozen at a time (each commit is a WAL flush and a
/// statement for PostgreSQL: one write per seven messages at 6,000 a second cost it a
/// quarter more CPU, measured in docs/benchmarks.md). The price: an outcome is recorded up to
/// that much later, the window in which a crash makes a sent message go out again.
const GATHER_AT_LEAST: usize = 40;
const GATHER_FOR: Duration = Duration::from_millis(3);

pub struct Mailer {
    courier: Arc<Courier>,
    stop: Option<CancellationToken>,
    in_hand: InHand,
}

/// The leases a mailer holds and has not finished: what a daemon that must stop before they
/// are sent gives back (see [`InHand::release`]).
pub type InHand = crate::in_hand::InHand<Lease>;

impl InHand {
    /// Gives back every lease still held (their sends were abandoned), so that another
    /// mailer may send those messages at once instead of after the lease. Returns how many.
    pub async fn release(&self, store: &dyn Store) -> Result<u64, StoreError> {
        store.release_messages(&self.take()).await
    }
}

/// What one send needs, shared by the tasks that send a batch.
struct Courier {
    store: Arc<dyn Store>,
    transport: Arc<dyn Transport>,
    renderer: Renderer,
    message_id_domain: String,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    settings: DeliverySettings,
    /// The longest a send may take (the SMTP exchange's timeout).
    send_timeout: TimeDelta,
    pacer: Pacer,
    /// The mail server's state, from each send's outcome.
    server: Outage,
    /// Reminders are delivered inside this local-time window, retries included.
    window: Option<DeliveryWindow>,
    /// Where webhook messages are POSTed.
    hooks: Option<Hooks>,
}

impl Mailer {
    pub fn new(
        store: Arc<dyn Store>,
        transport: Arc<dyn Transport>,
        mail: &MailSettings,
    ) -> Mailer {
        Mailer {
            courier: Arc::new(Courier {
                store,
                transport,
                renderer: Renderer::new(mail.templates_dir.clone(), None),
                message_id_domain: mail
                    .message_id_domain
                    .clone()
                    .unwrap_or_else(|| mail.from.email.domain().to_owned()),
                from: mail.from.clone(),
                reply_to: mail.reply_to.clone(),
                settings: mail.delivery.clone(),
                send_timeout: TimeDelta::seconds(
                    i64::try_from(mail.smtp.timeout_secs).unwrap_or(i64::MAX / 2),
                ),
                pacer: Pacer::new(mail.delivery.rate_per_second),
                server: Outage::new("mail server"),
                window: None,
                hooks: None,
            }),
            stop: None,
            in_hand: InHand::default(),
        }
    }

    /// Retries of reminders wait for this window in the customer's time zone, as their first
    /// delivery did (`reminders.window_start` / `window_end`). Set while the mailer is being
    /// built, before anything shares it.
    pub fn with_delivery_window(mut self, window: DeliveryWindow) -> Mailer {
        if let Some(courier) = Arc::get_mut(&mut self.courier) {
            courier.window = Some(window);
        }
        self
    }

    /// Every email links to its subscription's pages, signed and valid for the configured
    /// time from when it is sent. Set while the mailer is being built.
    pub fn with_links(mut self, links: Links) -> Mailer {
        if let Some(courier) = Arc::get_mut(&mut self.courier) {
            courier.renderer.set_links(links);
        }
        self
    }

    /// The emails name plans as `catalog` does for customers (`[plans.ID.names]`). Set while
    /// the mailer is being built.
    pub fn with_plan_names(mut self, catalog: &Catalog) -> Mailer {
        if let Some(courier) = Arc::get_mut(&mut self.courier) {
            courier.renderer.name_plans(&PlanNames::of(catalog));
        }
        self
    }

    /// Delivers webhook messages to these endpoints. Set while the mailer is being built.
    pub fn with_webhooks(mut self, settings: &crate::config::WebhookSettings) -> Mailer {
        if let Some(courier) = Arc::get_mut(&mut self.courier) {
            courier.hooks = Some(Hooks::new(settings));
        }
        self
    }

    /// The leases this mailer holds, for giving them back when its work is abandoned.
    pub fn in_hand(&self) -> InHand {
        self.in_hand.clone()
    }

    /// Stop claiming new batches once `stop` is cancelled (the sends in hand finish).
    pub fn with_stop(mut self, stop: CancellationToken) -> Mailer {
        self.stop = Some(stop);
        self
    }

    /// Delivers every message due, batch by batch, until none is left. The next batch is
    /// claimed while the current one is sent, so the senders never wait for a claim. The
    /// clock is read per claim and runs on from that claim (a [`BatchClock`]): a batch claimed
    /// ahead of its send measures its lease, and its retries, from when it was claimed.
    pub async fn deliver_due(&self, clock: &dyn Clock) -> Result<DeliveryReport, StoreError> {
        let mut report = DeliveryReport::default();
        let settings = &self.courier.settings;
        let lease_secs = settings.lease_secs;
        let lease = TimeDelta::seconds(i64::try_from(lease_secs).unwrap_or(i64::MAX / 2));
        // Two batches are in hand at once: claim no more than the rate limit lets us send in
        // a quarter lease, so that both are sent within half of it and no lease expires (and
        // no other mailer takes a message) while a message waits for its turn.
        let sendable = u64::from(settings.rate_per_second).saturating_mul(lease_secs) / 4;
        let limit = u32::try_from(sendable)
            .unwrap_or(u32::MAX)
            .clamp(1, settings.batch_size);
        let claim = || async move {
            let started = BatchClock::starting(clock.now());
            let now = started.now();
            let batch = self
                .courier
                .store
                .claim_messages(now, now + lease, limit)
                .await?;
            self.in_hand
                .hold(batch.iter().map(|m| (m.id, Lease::from(m))));
            let states = ReminderStates::read_ahead(self.courier.store.clone(), &batch).await;
            Ok::<_, StoreError>((started, batch, states))
        };
        let (mut clock, mut batch, mut states) = claim().await?;
        while !batch.is_empty() {
            let stopping = self
                .stop
                .as_ref()
                .is_some_and(CancellationToken::is_cancelled);
            if stopping {
                self.release(&batch).await;
                return Ok(report);
            }
            let released_before = report.released;
            let (sent, next) = tokio::join!(
                self.send_and_record(batch, states, clock, &mut report),
                claim()
            );
            match (sent, next) {
                // Messages given back for want of lease would only come round again in this
                // pass: it ends, and the next pass claims them under fresh leases.
                (Ok(()), Ok((_, next, _))) if report.released > released_before => {
                    self.release(&next).await;
                    return Ok(report);
                }
                (Ok(()), Ok(next)) => (clock, batch, states) = next,
                (Err(error), Ok((_, next, _))) => {
                    self.release(&next).await;
                    return Err(error);
                }
                (_, Err(error)) => return Err(error),
            }
        }
        Ok(report)
    }

    /// Gives back a claimed batch that will not be sent, so that it need not wait for its
    /// lease to expire. Best effort: when this fails too, the leases expire as after a crash.
    async fn release(&self, batch: &[Message]) {
        if batch.is_empty() {
            return;
        }
        let leases: Vec<Lease> = batch.iter().map(Lease::from).collect();
        if let Err(error) = self.courier.store.release_messages(&leases).await {
            tracing::warn!(%error, messages = batch.len(), "cannot release claimed messages; their leases will expire");
        }
        self.in_hand.finish(batch.iter().map(|m| m.id));
    }

    /// Sends a leased batch with `concurrency` tasks (so rendering spreads over the runtime's
    /// threads) while recording outcomes as they come: each write records every outcome that
    /// finished since the previous write (gathering a few milliseconds for more when there
    /// are few, see [`GATHER_AT_LEAST`]), in one statement, so an outcome waits at most one
    /// database round trip and those milliseconds, and a fast server costs one write per
    /// several dozen messages instead of one per message. When an outcome cannot be recorded,
    /// the senders stop taking messages (the rest keep their lease until it expires, and are
    /// retried).
    async fn send_and_record(
        &self,
        batch: Vec<Message>,
        states: ReminderStates,
        clock: BatchClock,
        report: &mut DeliveryReport,
    ) -> Result<(), StoreError> {
        let (done, mut outcomes) = mpsc::channel::<(Message, Delivery)>(batch.len().max(1));
        let states = Arc::new(states);
        let queue = Arc::new(std::sync::Mutex::new(batch.into_iter()));
        // Dropping the set (when this future is dropped) aborts the senders.
        let mut senders = JoinSet::new();
        for _ in 0..self.courier.settings.concurrency.max(1) {
            let (courier, queue, done) = (self.courier.clone(), queue.clone(), done.clone());
            let states = states.clone();
            senders.spawn(async move {
                loop {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some(message) = next else { return };
                    let outcome = courier.deliver(&message, &states, clock).await;
                    if done.send((message, outcome)).await.is_err() {
                        return;
                    }
                }
            });
        }
        // The recorder finishes once every sender has ended and the channel is drained.
        drop(done);
        let mut finished = Vec::new();
        while outcomes.recv_many(&mut finished, RECORD_AT_MOST).await > 0 {
            let gather = tokio::time::sleep(GATHER_FOR);
            tokio::pin!(gather);
            while finished.len() < GATHER_AT_LEAST {
                let room = RECORD_AT_MOST - finished.len();
                tokio::select! {
                    got = outcomes.recv_many(&mut finished, room) => if got == 0 { break },
                    () = &mut gather => break,
                }
            }
            self.courier
                .store
                .finish_messages(&finished, clock.now())
                .await?;
            self.in_hand.finish(finished.iter().map(|(m, _)| m.id));
            for (message, outcome) in finished.drain(..) {
                report.count(message.kind.as_str().to_owned(), &outcome);
            }
        }
        Ok(())
    }

    /// Renders and addresses one message (see [`Courier::compose`]).
    pub fn compose(&self, message: &Message, now: DateTime<Utc>) -> Result<Email, String> {
        self.courier.compose(message, now)
    }

    pub fn transport(&self) -> &dyn Transport {
        self.courier.transport.as_ref()
    }
}

impl Courier {
    /// One attempt at one leased message, in its own span. Nothing that happens to one
    /// message escapes it: a panic in a dependency fails that message, not the batch.
    async fn deliver(
        &self,
        message: &Message,
        states: &ReminderStates,
        clock: BatchClock,
    ) -> Delivery {
        let span = tracing::info_span!("delivery", outbox_id = message.id, kind = %message.kind, send = message.attempts + 1);
        let attempt = AssertUnwindSafe(self.attempt(message, states, clock)).catch_unwind();
        match attempt.instrument(span.clone()).await {
            Ok(outcome) => outcome,
            Err(panic) => {
                let problem = format!("cannot be sent: {}", panic_message(panic.as_ref()));
                span.in_scope(|| tracing::error!(%problem, "failed"));
                Delivery::Unsendable(problem)
            }
        }
    }

    async fn attempt(
        &self,
        message: &Message,
        states: &ReminderStates,
        clock: BatchClock,
    ) -> Delivery {
        // Paced before the check, so that a reminder is checked right before it is sent, not
        // before it waits its turn behind the rate limit.
        self.pacer.wait().await;
        if let Some(reason) = stale(message, states).await {
            tracing::info!(%reason, "suppressed");
            return Delivery::Suppressed(reason);
        }
        let webhook = message.kind == MessageKind::Webhook;
        let email = if webhook {
            None
        } else {
            match self.compose(message, clock.now()) {
                Ok(email) => Some(email),
                Err(problem) => {
                    tracing::error!(%problem, "cannot compose; failed without sending");
                    return Delivery::Unsendable(problem);
                }
            }
        };
        // A send that could outlast the lease is not started: by its end another mailer may
        // hold the message. It goes back to the queue, to be sent under a new lease.
        let lease_left = message.lease_until.map(|until| until - clock.now());
        if lease_left.is_none_or(|left| left <= self.send_timeout) {
            tracing::warn!(
                lease_left_secs = lease_left.map(|l| l.num_seconds()),
                "lease too short for a send; given back"
            );
            return Delivery::Released;
        }
        let started = std::time::Instant::now();
        let result = match (&email, &self.hooks) {
            (Some(email), _) => {
                self.transport
                    .send(message.id, message.kind.as_str(), email)
                    .await
            }
            (None, Some(hooks)) => hooks.send(message).await,
            (None, None) => Err(SendError::Transient(
                "webhooks are not delivered by this mailer".into(),
            )),
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let sends = message.attempts + 1;
        // A receiver's state is its own: the mail server's outage log is about mail.
        match result {
            Ok(reply) => {
                if !webhook {
                    self.server.recovered();
                }
                tracing::info!(elapsed_ms, %reply, "sent");
                Delivery::Sent(reply)
            }
            Err(SendError::Permanent(reply)) => {
                if !webhook {
                    self.server.recovered();
                }
                tracing::warn!(elapsed_ms, %reply, "failed permanently");
                Delivery::Failed(reply)
            }
            Err(SendError::Transient(error)) => {
                if !webhook {
                    self.server.failed(&error);
                }
                if sends >= self.settings.max_attempts {
                    tracing::warn!(elapsed_ms, %error, "failed after {sends} sends");
                    Delivery::Failed(format!("{error} (gave up after {sends} sends)"))
                } else {
                    // Counted from the failure, not the claim: a send that timed out after
                    // its whole timeout still waits its full backoff.
                    let at = self.retry_instant(message, clock.now() + self.backoff(sends));
                    tracing::debug!(elapsed_ms, %error, retry_at = %at, "will retry");
                    Delivery::Retry { at, error }
                }
            }
        }
    }

    /// Renders and addresses one message: multipart/alternative (text, HTML), a stable
    /// Message-ID, Date, From, Reply-To, and the customer's name (encoded when not ASCII).
    /// Bad stored data is an error here, never a panic: a dependency that panics on it is
    /// caught. (Formatting the email can panic too; see [`format_email`].)
    pub fn compose(&self, message: &Message, now: DateTime<Utc>) -> Result<Email, String> {
        std::panic::catch_unwind(AssertUnwindSafe(|| self.build(message, now))).unwrap_or_else(
            |panic| {
                Err(format!(
                    "cannot build the email: {}",
                    panic_message(panic.as_ref())
                ))
            },
        )
    }

    fn build(&self, message: &Message, now: DateTime<Utc>) -> Result<Email, String> {
        let payload = template_values(&message.payload)?;
        let rendered = self
            .renderer
            .render(message.kind, &payload, now)
            .map_err(|e| e.to_string())?;
        let name = field(&field(&payload, "customer"), "name")
            .as_str()
            .map(str::to_owned);
        // A name stored before the input checks may hold a line break, which would forge a
        // header (lettre panics on it): refuse it with the reason and the fix.
        if let Some(bad) = name
            .as_deref()
            .and_then(|n| n.chars().find(|c| c.is_control()))
        {
            return Err(format!(
                "the customer's name holds a control character ({:?}), which cannot go in a To header; correct the name (PATCH /v1/customers/{{id}}) and retry the message (subsave outbox retry)",
                bad
            ));
        }
        let to = Mailbox::new(
            name,
            message
                .recipient
                .parse()
                .map_err(|e| format!("recipient {}: {e}", message.recipient))?,
        );
        // The envelope lettre would read back from the From and To headers, given instead of
        // parsed again from them.
        let envelope = Envelope::new(Some(self.from.email.clone()), vec![to.email.clone()])
            .map_err(|e| e.to_string())?;
        let mut builder = Email::builder()
            .message_id(Some(self.message_id(message)))
            .date(now.into())
            .from(self.from.clone())
            .to(to)
            .envelope(envelope)
            .subject(rendered.subject);
        if let Some(reply_to) = &self.reply_to {
            builder = builder.reply_to(reply_to.clone());
        }
        builder
            .multipart(MultiPart::alternative_plain_html(
                super::body::encode(rendered.text),
                super::body::encode(rendered.html),
            ))
            .map_err(|e| e.to_string())
    }

    /// `<outbox-42.20261126150000@example.com>`: the row id and its creation instant, at
    /// `mail.message_id_domain` (the sender's domain by default). The same row always yields the same id.
    fn message_id(&self, message: &Message) -> String {
        format!(
            "<outbox-{}.{}@{}>",
            message.id,
            message.created_at.format("%Y%m%d%H%M%S"),
            self.message_id_domain
        )
    }

    /// A reminder's retry waits for the customer's delivery window, like its first delivery
    /// (one due after its renewal is then suppressed as stale); other mail retries at once.
    fn retry_instant(&self, message: &Message, at: DateTime<Utc>) -> DateTime<Utc> {
        let payload = message.payload.json().unwrap_or_default();
        let tz = payload["customer"]["time_zone"]
            .as_str()
            .and_then(|name| name.parse::<chrono_tz::Tz>().ok());
        match (&self.window, tz) {
            (Some(window), Some(tz)) if message.kind == MessageKind::RenewalReminder => {
                window.next_open(at, tz)
            }
            _ => at,
        }
    }

    /// retry_base × 2^(attempt−1), capped, plus up to 50 % jitter so that retries spread out.
    fn backoff(&self, attempts: u32) -> TimeDelta {
        let exponent = attempts.saturating_sub(1).min(30);
        let base = self
            .settings
            .retry_base_secs
            .saturating_mul(1u64 << exponent);
        let capped = base.min(self.settings.retry_max_secs);
        let jitter = fastrand::u64(0..=capped / 2);
        TimeDelta::seconds(i64::try_from(capped + jitter).unwrap_or(i64::MAX / 2))
    }
}

/// The email as it goes on the wire. lettre panics on some header values (a display name
/// with a line break); that is an error here, as it is for a send (see `Courier::deliver`).
pub fn format_email(email: &Email) -> Result<Vec<u8>, String> {
    std::panic::catch_unwind(AssertUnwindSafe(|| email.formatted()))
        .map_err(|panic| format!("cannot format the email: {}", panic_message(panic.as_ref())))
}

/// What a panic said, when it said it with text.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// "Now" during a batch: the clock's reading when the batch was claimed, moved on by the
/// monotonic time since that claim (not since its send began: the next batch is claimed
/// while one is sent, and its lease runs from its claim). Senders run as tasks of their own and need no clock object; with a
/// fixed clock (`--now`, tests) time still moves as the batch takes it.
#[derive(Debug, Clone, Copy)]
struct BatchClock {
    at: DateTime<Utc>,
    started: Instant,
}

impl BatchClock {
    fn starting(at: DateTime<Utc>) -> BatchClock {
        BatchClock {
            at,
            started: Instant::now(),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.at + TimeDelta::from_std(self.started.elapsed()).unwrap_or(TimeDelta::MAX)
    }
}

/// A reminder (or price-change notice) whose cycle was skipped, billed, paused, cancelled or
/// rescheduled since it was queued must not be sent.
async fn stale(message: &Message, states: &ReminderStates) -> Option<String> {
    if !message.kind.announces_a_renewal() {
        return None;
    }
    let Some(subscription_id) = message.subscription_id else {
        return Some("the reminder names no subscription".into());
    };
    let promised_at = serde_json::from_str::<Promised>(message.payload.text())
        .ok()
        .and_then(|promised| promised.renewal_at)
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc));
    match states.get(subscription_id).await {
        Ok(Some(sub)) => stale_reason(message.cycle, promised_at, &sub),
        Ok(None) => Some(format!("subscription {subscription_id} does not exist")),
        // Unknown state: do not suppress on a guess; the send may still go ahead.
        Err(error) => {
            tracing::warn!(%error, "cannot check the reminder's subscription");
            None
        }
    }
}

/// The renewal a reminder announced, read from its payload without building the rest of it.
#[derive(serde::Deserialize)]
struct Promised {
    renewal_at: Option<String>,
}

/// A reminder is checked against its subscription as read at most this long before the send.
const STATE_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(1);

/// The subscriptions of a batch's unsent reminders, read in one query when the batch is
/// claimed and read again once older than [`STATE_MAX_AGE`]: one query per batch at full
/// speed, instead of one per reminder, and never a state older than a second when a slow rate
/// spreads the batch out.
struct ReminderStates {
    store: Arc<dyn Store>,
    read: Mutex<StatesRead>,
}

#[derive(Default)]
struct StatesRead {
    /// Reminders' subscriptions not yet asked for.
    unsent: std::collections::BTreeSet<i64>,
    at: Option<Instant>,
    found: std::collections::HashMap<i64, Subscription>,
}

impl ReminderStates {
    fn new(store: Arc<dyn Store>, batch: &[Message]) -> ReminderStates {
        let unsent = batch
            .iter()
            .filter(|m| m.kind.announces_a_renewal())
            .filter_map(|m| m.subscription_id)
            .collect();
        ReminderStates {
            store,
            read: Mutex::new(StatesRead {
                unsent,
                ..StatesRead::default()
            }),
        }
    }

    /// The states of `batch`'s reminders, read at its claim: while the batch before it is
    /// being sent, so that its own senders do not wait for the read (they did, all of them,
    /// at the start of every batch). A read that fails is left to the first check, which
    /// reads again and reports the failure.
    async fn read_ahead(store: Arc<dyn Store>, batch: &[Message]) -> ReminderStates {
        let states = ReminderStates::new(store, batch);
        {
            let mut read = states.read.lock().await;
            if !read.unsent.is_empty()
                && let Err(error) = states.refresh(&mut read, None).await
            {
                tracing::debug!(%error, "cannot read the reminders' subscriptions ahead; read at the first check");
            }
        }
        states
    }

    async fn get(&self, id: i64) -> Result<Option<Subscription>, StoreError> {
        let mut read = self.read.lock().await;
        let fresh = read.at.is_some_and(|at| at.elapsed() <= STATE_MAX_AGE);
        if !fresh || !read.unsent.contains(&id) {
            self.refresh(&mut read, Some(id)).await?;
        }
        read.unsent.remove(&id);
        Ok(read.found.get(&id).cloned())
    }

    /// Reads every unsent reminder's subscription and `id`'s (which is no longer unsent when
    /// a batch holds two reminders for one subscription).
    async fn refresh(&self, read: &mut StatesRead, id: Option<i64>) -> Result<(), StoreError> {
        let mut ids = read.unsent.clone();
        ids.extend(id);
        let ids: Vec<i64> = ids.into_iter().collect();
        let subs = self.store.subscriptions_by_id(&ids).await?;
        read.found = subs.into_iter().map(|s| (s.id, s)).collect();
        read.at = Some(Instant::now());
        Ok(())
    }
}

/// Spaces sends at least 1/rate apart across all concurrent deliveries.
struct Pacer {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    fn new(rate_per_second: u32) -> Pacer {
        Pacer {
            interval: Duration::from_secs(1) / rate_per_second.max(1),
            next: Mutex::new(Instant::now()),
        }
    }

    async fn wait(&self) {
        let (slot, now) = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.interval;
            (slot, now)
        };
        // A slot that has come needs no timer: tokio's timers have millisecond granularity,
        // and sleeping until "now" cost each message up to a millisecond.
        if slot > now {
            tokio::time::sleep_until(slot).await;
        }
    }
}
