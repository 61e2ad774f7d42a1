//! The outbox's use cases: list and show messages (rendered as they would be sent), put
//! failed ones back in the queue, deliver what is due once, and send a test message.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::idempotency::Commit;
use super::views::{MessageView, RenderedMessage};
use super::{App, AppError, Page, PageRequest};
use crate::config::MailSettings;
use crate::core::links::Links;
use crate::core::model::{Message, MessageKind, MessageStatus};
use crate::mail::mailer::{DeliveryReport, Mailer, format_email};
use crate::mail::transport::{self, SendError};
use crate::store::MessageFilter;

/// Which messages a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageQuery {
    pub status: Option<MessageStatus>,
    pub kind: Option<MessageKind>,
    pub subscription_id: Option<i64>,
}

pub async fn list(
    app: &App,
    query: &MessageQuery,
    page: PageRequest,
) -> Result<Page<MessageView>, AppError> {
    let (limit, after_id) = page.fetch();
    let rows = app
        .store()
        .messages(&MessageFilter {
            status: query.status,
            kind: query.kind,
            subscription_id: query.subscription_id,
            limit,
            after_id,
            lag_ok: true,
        })
        .await?;
    Ok(Page::from_rows(rows, page.limit).map(|m| MessageView::from(&m)))
}

/// The outbox message of that id, or a refusal that says how to find one.
pub async fn find(app: &App, id: i64) -> Result<Message, AppError> {
    app.store().message(id).await?.ok_or_else(|| {
        AppError::NotFound(format!("no outbox message {id}; see `subsave outbox list`"))
    })
}

/// A message and the whole email it renders to, as of when it was queued; its links signed by
/// `links`, the caller's signer.
pub async fn show(app: &App, links: &Links, id: i64) -> Result<RenderedMessage, AppError> {
    let message = find(app, id).await?;
    if message.kind == MessageKind::Webhook {
        // A webhook is sent as its JSON event.
        return Ok(RenderedMessage {
            rendered: serde_json::to_string_pretty(&message.payload).unwrap_or_default(),
            message: MessageView::from(&message),
        });
    }
    let unrenderable =
        |e: String| AppError::InvalidState(format!("outbox message {id} cannot be rendered: {e}"));
    let email = mailer(app, links)?
        .compose(&message, message.created_at)
        .map_err(unrenderable)?;
    let formatted = format_email(&email).map_err(unrenderable)?;
    Ok(RenderedMessage {
        message: MessageView::from(&message),
        rendered: String::from_utf8_lossy(&formatted).into_owned(),
    })
}

/// Puts a failed message (or, with `None`, every failed one) back in the queue, the
/// transaction ended by `commit`; returns how many. A message that is not failed is refused
/// (nothing changed, nothing committed).
pub async fn retry(app: &App, id: Option<i64>, commit: Commit<'_, u64>) -> Result<u64, AppError> {
    let now = app.now();
    let mut tx = app.store().begin_write().await?;
    let count = tx.retry_failed(id, now).await?;
    if let Some(id) = id
        && count == 0
    {
        return Err(AppError::InvalidState(format!(
            "message {id} is not failed; only failed messages are retried"
        )));
    }
    commit.finish(tx, &count, now).await?;
    Ok(count)
}

/// Sends message `id` again for a person (`actor`, support) who saw it `seen` and gives
/// `reason`: it goes back in the queue as it was written (the same Message-ID, so a mail
/// client that has it shows it once), with an event `message_resent` on its subscription
/// naming them and the reason. Refused when it is pending (it is going out anyway) or no
/// longer `seen` (someone acted on it since).
pub async fn resend(
    app: &App,
    id: i64,
    seen: MessageStatus,
    actor: &crate::core::model::Actor,
    reason: &str,
) -> Result<MessageView, AppError> {
    let reason = super::subscriptions::parse_support_reason(reason)?;
    let message = find(app, id).await?;
    if message.status == MessageStatus::Pending {
        return Err(AppError::InvalidState(format!(
            "message {id} is waiting to be sent already; nothing was done"
        )));
    }
    let event = message
        .subscription_id
        .map(|subscription_id| crate::core::model::NewEvent {
            subscription_id,
            kind: "message_resent".into(),
            actor: actor.clone(),
            cycle: message.cycle,
            detail: serde_json::json!({
                "message": id,
                "kind": message.kind.to_string(),
                "support_reason": reason,
            }),
        });
    let now = app.now();
    if !app
        .store()
        .resend_message(id, seen, event.as_ref(), now)
        .await?
    {
        return Err(AppError::Conflict(format!(
            "message {id} changed since it was shown (it is {} now); nothing was done",
            message.status
        )));
    }
    Ok(MessageView::from(&find(app, id).await?))
}

/// Delivers every message due now with the configured transport, once, their links signed by
/// `links`; says which transport it was and what became of the messages.
pub async fn deliver(app: &App, links: &Links) -> Result<(String, DeliveryReport), AppError> {
    let mailer = mailer(app, links)?;
    let report = mailer.deliver_due(app.clock.as_ref()).await?;
    Ok((mailer.transport().describe(), report))
}

/// Sends one test message to `to` with the configured transport (no store needed) and
/// returns the server's reply; a failure says what the transport answered and what to check.
pub async fn send_test(
    settings: &MailSettings,
    now: DateTime<Utc>,
    to: lettre::message::Mailbox,
) -> Result<String, AppError> {
    let transport = transport::from_settings(settings).map_err(AppError::invalid)?;
    let email = lettre::Message::builder()
        .from(settings.from.clone())
        .to(to)
        .date(now.into())
        .subject("subsave test message")
        .body(format!(
            "This is a test message from subsave, sent with {}.\n",
            transport.describe()
        ))
        .map_err(|e| AppError::invalid(e.to_string()))?;
    match transport.send(0, "test", &email).await {
        Ok(reply) => Ok(format!("sent with {}: {reply}", transport.describe())),
        Err(SendError::Permanent(reply)) => Err(AppError::Unavailable(format!(
            "{} refused the message permanently: {reply}",
            transport.describe()
        ))),
        Err(SendError::Transient(error)) => Err(AppError::Unavailable(format!(
            "could not deliver through {} (a temporary failure: check host, port, TLS mode and credentials): {error}",
            transport.describe()
        ))),
    }
}

fn mailer(app: &App, links: &Links) -> Result<Mailer, AppError> {
    let settings = &app.settings().mail;
    let transport = transport::from_settings(settings).map_err(AppError::invalid)?;
    Ok(
        Mailer::new(app.store().clone(), Arc::from(transport), settings)
            .with_delivery_window(app.settings().reminders.window)
            .with_links(links.clone())
            .with_plan_names(&app.settings().catalog)
            .with_webhooks(&app.settings().webhooks),
    )
}
