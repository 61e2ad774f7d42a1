//! The outbox and payments queues: failed messages, and declined payments and those waiting
//! for the customer, with their reasons, a page at a time; a failed message or a given-up
//! payment is retried from here through `app`'s own retries (`outbox::retry`,
//! `payments::retry_given_up`). A retry is a POST with the session's CSRF token; posted twice,
//! the second finds nothing failed and says so.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use minijinja::context;

use super::{Admin, Console, Posted, url_component};
use crate::app::outbox::MessageQuery;
use crate::app::payments::PaymentQuery;
use crate::app::{AppError, PageRequest};
use crate::core::model::{MessageStatus, PaymentStatus};

type Fields = HashMap<String, String>;

/// Rows of each queue per page.
const QUEUE_PAGE: u32 = 100;

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "-".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// A page's `after` id from the query (`name`), if any.
fn after(query: &Fields, name: &'static str) -> Result<Option<i64>, AppError> {
    match query.get(name).filter(|a| !a.is_empty()) {
        None => Ok(None),
        Some(a) => a.parse().map(Some).map_err(|_| {
            AppError::invalid_field(
                name,
                format!(" {a:?}: expected the id of the last row shown"),
            )
        }),
    }
}

/// `GET /queues?messages_after=…&payments_after=…&waiting_after=…`.
pub async fn queues(
    State(console): State<Arc<Console>>,
    Extension(admin): Extension<Admin>,
    Query(query): Query<Fields>,
) -> Response {
    match read(&console, &query).await {
        Ok(ctx) => console.render(
            StatusCode::OK,
            "queues.html",
            context! { csrf => &admin.csrf, name => &admin.name, ..ctx },
        ),
        Err(error) => console.failure(&error),
    }
}

async fn read(console: &Console, query: &Fields) -> Result<minijinja::Value, AppError> {
    let app = &console.app;
    let page = |after| PageRequest {
        limit: QUEUE_PAGE,
        after,
    };
    let messages = crate::app::outbox::list(
        app,
        &MessageQuery {
            status: Some(MessageStatus::Failed),
            ..Default::default()
        },
        page(after(query, "messages_after")?),
    )
    .await?;
    let of = |status| PaymentQuery {
        status: Some(status),
        subscription_id: None,
    };
    let declined = crate::app::payments::list(
        app,
        &of(PaymentStatus::Failed),
        page(after(query, "payments_after")?),
    )
    .await?;
    let waiting = crate::app::payments::list(
        app,
        &of(PaymentStatus::RequiresAction),
        page(after(query, "waiting_after")?),
    )
    .await?;
    let next = |has_more: bool, last: Option<i64>| has_more.then_some(last).flatten();
    Ok(context! {
        messages_next => next(messages.has_more, messages.data.last().map(|m| m.id)),
        payments_next => next(declined.has_more, declined.data.last().map(|p| p.id)),
        waiting_next => next(waiting.has_more, waiting.data.last().map(|p| p.id)),
        messages => messages.data.iter().map(|m| context! {
            id => m.id,
            kind => &m.kind,
            recipient => &m.recipient,
            subscription_id => m.subscription_id,
            attempts => m.attempts,
            created => when(Some(m.created_at)),
            error => m.last_error.clone().unwrap_or_default(),
        }).collect::<Vec<_>>(),
        payments => declined.data.iter().chain(&waiting.data).map(|p| context! {
            order => &p.order_number,
            order_path => url_component(&p.order_number),
            status => &p.status,
            customer_id => p.customer_id,
            amount => p.amount.to_string(),
            attempt => p.attempt,
            next => when(p.next_attempt_at),
            // Given up: declined with no retry due; the worker tries the others by itself.
            retry => p.status == "failed" && p.next_attempt_at.is_none(),
            decline => p.decline_code.clone().unwrap_or_default(),
            error => p.last_error.clone().unwrap_or_default(),
        }).collect::<Vec<_>>(),
    })
}

/// `POST /queues/messages/{id}/retry`: a failed message back in the queue.
pub async fn retry_message(
    State(console): State<Arc<Console>>,
    Path(id): Path<i64>,
    Posted { admin, .. }: Posted,
) -> Response {
    match crate::app::outbox::retry(
        &console.app,
        Some(id),
        crate::app::idempotency::Commit::Plain,
    )
    .await
    {
        Ok(_) => {
            tracing::info!(actor = admin.actor().0, message = id, "console retry");
            console.message(
                StatusCode::OK,
                "Queued again",
                &format!("message {id} is back in the queue; the mailer sends it next."),
            )
        }
        Err(error) => console.failure(&error),
    }
}

/// `POST /queues/payments/{number}/retry`: a given-up payment tried again.
pub async fn retry_payment(
    State(console): State<Arc<Console>>,
    Path(number): Path<String>,
    Posted { admin, .. }: Posted,
) -> Response {
    match crate::app::payments::retry_given_up(&console.app, &number).await {
        Ok(count) => {
            tracing::info!(
                actor = admin.actor().0,
                order = number,
                "console payment retry"
            );
            console.message(
                StatusCode::OK,
                "Retrying",
                &format!(
                    "order {number}'s payment is due again ({count} of its subscription's declined payments); the payments worker charges it next, and the subscription's renewals wait for it."
                ),
            )
        }
        Err(error) => console.failure(&error),
    }
}
