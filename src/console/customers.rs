//! Finding a customer, and their timeline with links to the actions of [`super::actions`].

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use minijinja::context;
use serde::Serialize;

use super::{Admin, Console, url_component};
use crate::app::{App, AppError, CustomerRef, PageRequest};

type Fields = HashMap<String, String>;

/// Results per search page.
const SEARCH_PAGE: u32 = 50;
/// Rows of each kind read per subscription for the timeline.
const TIMELINE_ROWS: u32 = 200;

/// `GET /search?q=…&after=…`: customers by part of an address or name, and the customer of
/// an order number or subscription id.
pub async fn search(
    State(console): State<Arc<Console>>,
    Extension(admin): Extension<Admin>,
    Query(query): Query<Fields>,
) -> Response {
    let q = query.get("q").cloned().unwrap_or_default();
    let base = context! { csrf => &admin.csrf, name => &admin.name, q => &q };
    if q.trim().is_empty() {
        return console.render(StatusCode::OK, "search.html", base);
    }
    let after = match query.get("after").filter(|a| !a.is_empty()) {
        Some(after) => match after.parse::<i64>() {
            Ok(after) => Some(after),
            Err(_) => {
                return console.failure(&AppError::invalid_field(
                    "after",
                    format!(" {after:?}: expected the id of the last customer shown"),
                ));
            }
        },
        None => None,
    };
    let page = PageRequest {
        limit: SEARCH_PAGE,
        after,
    };
    match crate::app::customers::search(&console.app, &q, page).await {
        Ok(found) => {
            let next = found
                .customers
                .has_more
                .then(|| found.customers.data.last().map(|c| c.id))
                .flatten();
            console.render(
                StatusCode::OK,
                "search.html",
                context! {
                    exact => found.exact.iter().map(|(what, c)| context! { what, customer => c }).collect::<Vec<_>>(),
                    customers => found.customers.data,
                    next,
                    q_url => url_component(&q),
                    searched => true,
                    ..base
                },
            )
        }
        Err(error) => console.failure(&error),
    }
}

/// One line of a customer's timeline.
#[derive(Debug, Serialize)]
struct Entry {
    at: DateTime<Utc>,
    when: String,
    what: &'static str,
    subscription_id: Option<i64>,
    text: String,
    /// An order that can be refunded from here (its number as a path segment).
    refund: Option<String>,
    /// A message that can be sent again from here (its id).
    resend: Option<i64>,
}

/// `GET /customers/{id}`: the customer, their subscriptions, and everything that happened to
/// them in time order: events, orders, payments, credit notes, messages.
pub async fn customer(
    State(console): State<Arc<Console>>,
    Extension(admin): Extension<Admin>,
    Path(id): Path<i64>,
) -> Response {
    let app = &console.app;
    let detail = match crate::app::customers::show(app, &CustomerRef::Id(id)).await {
        Ok(detail) => detail,
        Err(error) => return console.failure(&error),
    };
    let mut entries = Vec::new();
    for sub in &detail.subscriptions {
        if let Err(error) = timeline_of(&console, sub.id, &mut entries).await {
            return console.failure(&error);
        }
    }
    entries.sort_by_key(|e| e.at);
    console.render(
        StatusCode::OK,
        "customer.html",
        context! {
            csrf => admin.csrf,
            name => admin.name,
            customer => detail.customer,
            subscriptions => detail.subscriptions,
            entries,
        },
    )
}

/// Subscription `id`'s timeline: its events, orders (with their payments and credit notes)
/// and messages, each list its first `TIMELINE_ROWS`.
async fn timeline_of(console: &Console, id: i64, entries: &mut Vec<Entry>) -> Result<(), AppError> {
    let app = &console.app;
    events_of(app, id, entries).await?;
    orders_of(app, id, entries).await?;
    messages_of(app, id, entries).await
}

/// One line of subscription `id`'s timeline, at `at`.
fn entry(id: i64, at: DateTime<Utc>, what: &'static str, text: String) -> Entry {
    Entry {
        at,
        when: at.format("%Y-%m-%d %H:%M UTC").to_string(),
        what,
        subscription_id: Some(id),
        text,
        refund: None,
        resend: None,
    }
}

async fn events_of(app: &App, id: i64, entries: &mut Vec<Entry>) -> Result<(), AppError> {
    let first = PageRequest::first(TIMELINE_ROWS);
    for e in crate::app::subscriptions::events(app, id, first)
        .await?
        .data
    {
        // Support's reason, kept in the event, is shown with it.
        let reason = e.detail["support_reason"]
            .as_str()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        entries.push(entry(
            id,
            e.at,
            "event",
            format!("{} by {}{reason}", e.kind, e.actor),
        ));
    }
    Ok(())
}

/// Each order, refundable from here while some of what was paid is left, then its payment and
/// its credit notes.
async fn orders_of(app: &App, id: i64, entries: &mut Vec<Entry>) -> Result<(), AppError> {
    let orders = crate::app::orders::list(
        app,
        &crate::app::orders::OrderQuery {
            subscription_id: Some(id),
            customer: None,
            created: Default::default(),
        },
        PageRequest::first(TIMELINE_ROWS),
    )
    .await?;
    for o in orders.data {
        let (payment, notes) = crate::app::payments::of_order(app, &o.order_number).await?;
        let paid = payment.as_ref().is_some_and(|p| {
            p.refunded.minor() < p.amount.minor()
                && matches!(
                    p.status.as_str(),
                    "paid" | "external" | "partially_refunded"
                )
        });
        let mut order = entry(
            id,
            o.created_at,
            "order",
            format!(
                "{} (cycle {}): {} packs of {}, {}",
                o.order_number, o.cycle, o.packs, o.plan, o.total
            ),
        );
        order.refund = paid.then(|| url_component(&o.order_number));
        entries.push(order);
        if let Some(p) = payment {
            entries.push(entry(
                id,
                p.paid_at.unwrap_or(p.created_at),
                "payment",
                format!(
                    "{}: {} {} (refunded {}){}",
                    p.order_number,
                    p.amount,
                    p.status,
                    p.refunded,
                    p.last_error.map(|e| format!(": {e}")).unwrap_or_default()
                ),
            ));
        }
        for n in notes {
            entries.push(entry(
                id,
                n.created_at,
                "credit note",
                format!(
                    "{} on {}: {} (tax {}) by {}: {}",
                    n.number, n.order_number, n.amount, n.tax, n.actor, n.reason
                ),
            ));
        }
    }
    Ok(())
}

/// Each message, with its failure when it failed; one that is not waiting can be resent.
async fn messages_of(app: &App, id: i64, entries: &mut Vec<Entry>) -> Result<(), AppError> {
    let messages = crate::app::outbox::list(
        app,
        &crate::app::outbox::MessageQuery {
            subscription_id: Some(id),
            ..Default::default()
        },
        PageRequest::first(TIMELINE_ROWS),
    )
    .await?;
    for m in messages.data {
        let mut message = entry(
            id,
            m.sent_at.unwrap_or(m.created_at),
            "message",
            format!(
                "{} to {}: {}{}",
                m.kind,
                m.recipient,
                m.status,
                m.last_error
                    .as_deref()
                    .filter(|_| m.status == "failed")
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            ),
        );
        message.resend = (m.status != "pending").then_some(m.id);
        entries.push(message);
    }
    Ok(())
}
