//! Finding a customer and their timeline, and the actions with a reason built so far:
//! refunding part or all of a paid order, and cancelling a subscription. An action is confirmed in two steps: a GET shows its
//! effect and a form whose token names the action held here ([`Confirmations`]); the POST
//! applies that action (not what the form might say otherwise) once: a second POST of the
//! same token shows what the first did.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, TimeDelta, Utc};
use minijinja::context;
use serde::Serialize;

use super::{Admin, Console, Posted, sessions, url_component};
use crate::app::{AppError, CustomerRef, PageRequest};
use crate::core::money::Money;

type Fields = HashMap<String, String>;

/// Results per search page.
const SEARCH_PAGE: u32 = 50;
/// Rows of each kind read per subscription for the timeline.
const TIMELINE_ROWS: u32 = 200;
/// How long a confirmation stays open, and how many are kept at most.
const CONFIRMATION_TTL: TimeDelta = TimeDelta::minutes(30);
const CONFIRMATIONS_MAX: usize = 10_000;

/// An action shown for confirmation: exactly what the POST will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    Refund {
        order_number: String,
        amount: Money,
        reason: String,
    },
    Cancel {
        subscription_id: i64,
        reason: String,
    },
}

#[derive(Debug, Clone)]
enum Confirmation {
    Open {
        by: String,
        action: Pending,
        until: DateTime<Utc>,
    },
    Applying,
    Done {
        heading: String,
        text: String,
    },
}

/// The confirmations this daemon has shown, by form token.
#[derive(Default)]
pub struct Confirmations {
    held: Mutex<HashMap<String, Confirmation>>,
}

/// What a confirmed POST finds.
enum Taken {
    Apply(Pending),
    AlreadyDone { heading: String, text: String },
    Busy,
    Unknown,
}

impl Confirmations {
    fn open(&self, by: &str, action: Pending, now: DateTime<Utc>) -> std::io::Result<String> {
        let token = sessions::random_token()?;
        let mut held = self.lock();
        held.retain(|_, c| !matches!(c, Confirmation::Open { until, .. } if *until <= now));
        if held.len() >= CONFIRMATIONS_MAX {
            held.retain(|_, c| !matches!(c, Confirmation::Open { .. }));
        }
        held.insert(
            token.clone(),
            Confirmation::Open {
                by: by.to_owned(),
                action,
                until: now + CONFIRMATION_TTL,
            },
        );
        Ok(token)
    }

    /// Takes an open confirmation of `by` to apply it; anything else says why not.
    fn take(&self, token: &str, by: &str, now: DateTime<Utc>) -> Taken {
        let mut held = self.lock();
        match held.get(token) {
            Some(Confirmation::Open {
                by: owner,
                action,
                until,
            }) if owner == by && *until > now => {
                let action = action.clone();
                held.insert(token.to_owned(), Confirmation::Applying);
                Taken::Apply(action)
            }
            Some(Confirmation::Applying) => Taken::Busy,
            Some(Confirmation::Done { heading, text }) => Taken::AlreadyDone {
                heading: heading.clone(),
                text: text.clone(),
            },
            _ => Taken::Unknown,
        }
    }

    /// Records how it went: done (a replay shows it), or refused (the token may not be used
    /// again either: the person starts over from the page).
    fn finish(&self, token: &str, heading: &str, text: &str) {
        self.lock().insert(
            token.to_owned(),
            Confirmation::Done {
                heading: heading.to_owned(),
                text: text.to_owned(),
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Confirmation>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

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

async fn timeline_of(console: &Console, id: i64, entries: &mut Vec<Entry>) -> Result<(), AppError> {
    let app = &console.app;
    let first = PageRequest::first(TIMELINE_ROWS);
    let entry = |at: DateTime<Utc>, what, text: String| Entry {
        at,
        when: at.format("%Y-%m-%d %H:%M UTC").to_string(),
        what,
        subscription_id: Some(id),
        text,
        refund: None,
    };
    for e in crate::app::subscriptions::events(app, id, first)
        .await?
        .data
    {
        entries.push(entry(e.at, "event", format!("{} by {}", e.kind, e.actor)));
    }
    let orders = crate::app::orders::list(
        app,
        &crate::app::orders::OrderQuery {
            subscription_id: Some(id),
            customer: None,
        },
        first,
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
                n.created_at,
                "credit note",
                format!(
                    "{} on {}: {} (tax {}) by {}: {}",
                    n.number, n.order_number, n.amount, n.tax, n.actor, n.reason
                ),
            ));
        }
    }
    let messages = crate::app::outbox::list(
        app,
        &crate::app::outbox::MessageQuery {
            subscription_id: Some(id),
            ..Default::default()
        },
        first,
    )
    .await?;
    for m in messages.data {
        entries.push(entry(
            m.sent_at.unwrap_or(m.created_at),
            "message",
            format!("{} to {}: {}", m.kind, m.recipient, m.status),
        ));
    }
    Ok(())
}

/// `GET /orders/{number}/refund`: the refund form; with `amount` and `reason`, the
/// confirmation of exactly that refund.
pub async fn refund_form(
    State(console): State<Arc<Console>>,
    Extension(admin): Extension<Admin>,
    Path(number): Path<String>,
    Query(query): Query<Fields>,
) -> Response {
    let app = &console.app;
    let order = match crate::app::orders::show(app, &number).await {
        Ok(order) => order,
        Err(error) => return console.failure(&error),
    };
    let payment = match crate::app::payments::of_order(app, &number).await {
        Ok((Some(payment), _)) => payment,
        Ok((None, _)) => {
            return console.failure(&AppError::InvalidState(format!(
                "order {number} has no payment: nothing to refund"
            )));
        }
        Err(error) => return console.failure(&error),
    };
    let left = payment.amount.minor() - payment.refunded.minor();
    let left = Money::from_minor(left, payment.amount.currency());
    let base = context! {
        csrf => &admin.csrf,
        name => &admin.name,
        order_path => url_component(&order.order_number),
        order,
        paid => payment.amount.to_string(),
        refunded => payment.refunded.to_string(),
        left => left.to_string(),
    };
    let (Some(amount), Some(reason)) = (query.get("amount"), query.get("reason")) else {
        return console.render(StatusCode::OK, "refund.html", base);
    };
    let amount = if amount.trim().is_empty() {
        left
    } else {
        match Money::parse(amount.trim(), payment.amount.currency()) {
            Ok(amount) => amount,
            Err(error) => {
                return console.failure(&AppError::invalid_field(
                    "amount",
                    format!(" {amount:?}: {error}"),
                ));
            }
        }
    };
    let problem = if reason.trim().is_empty() {
        Some("Say why: the reason is kept on the credit note.".to_owned())
    } else if amount.minor() <= 0 || amount.minor() > left.minor() {
        Some(format!("At most {left} is left to refund of this order."))
    } else {
        None
    };
    if let Some(problem) = problem {
        return console.render(
            StatusCode::UNPROCESSABLE_ENTITY,
            "refund.html",
            context! { problem, ..base },
        );
    }
    let action = Pending::Refund {
        order_number: number.clone(),
        amount,
        reason: reason.trim().to_owned(),
    };
    let token = match console.confirmations.open(&admin.name, action, app.now()) {
        Ok(token) => token,
        Err(error) => return console.failure(&AppError::Unavailable(error.to_string())),
    };
    console.render(
        StatusCode::OK,
        "refund.html",
        context! {
            confirm => true,
            token,
            amount => amount.to_string(),
            after => Money::from_minor(left.minor() - amount.minor(), amount.currency()).to_string(),
            reason => reason.trim(),
            ..base
        },
    )
}

/// `POST /confirm`: applies the confirmation its token names, once.
pub async fn confirm(
    State(console): State<Arc<Console>>,
    Posted { admin, form }: Posted,
) -> Response {
    let token = form.get("token").map(String::as_str).unwrap_or_default();
    let action = match console
        .confirmations
        .take(token, &admin.name, console.app.now())
    {
        Taken::Apply(action) => action,
        Taken::AlreadyDone { heading, text } => {
            return console.message(
                StatusCode::OK,
                &heading,
                &format!("This confirmation was used already, nothing more was done. {text}"),
            );
        }
        Taken::Busy => {
            return console.message(
                StatusCode::CONFLICT,
                "In progress",
                "This action is being applied: reload the customer's page in a moment.",
            );
        }
        Taken::Unknown => {
            return console.message(
                StatusCode::GONE,
                "Confirmation expired",
                "This confirmation is unknown or expired (or was shown to someone else): nothing was changed. Start again from the customer's page.",
            );
        }
    };
    match action {
        Pending::Refund {
            order_number,
            amount,
            reason,
        } => {
            let done = crate::app::payments::refund(
                &console.app,
                &order_number,
                Some(amount),
                &reason,
                &admin.actor(),
            )
            .await;
            match done {
                Ok(note) => {
                    let text = format!(
                        "credit note {} refunds {} of order {} ({}).",
                        note.number, note.amount, note.order_number, note.reason
                    );
                    console.confirmations.finish(token, "Refunded", &text);
                    tracing::info!(
                        actor = admin.actor().0,
                        order = order_number,
                        credit_note = note.number,
                        "console refund"
                    );
                    console.message(StatusCode::OK, "Refunded", &text)
                }
                Err(error) => refused(&console, token, &error),
            }
        }
        Pending::Cancel {
            subscription_id,
            reason,
        } => {
            let done = crate::app::subscriptions::perform(
                &console.app,
                &admin.actor(),
                subscription_id,
                &crate::app::subscriptions::Action::Cancel {
                    reason: reason.clone(),
                },
                None,
            )
            .await;
            match done {
                Ok(sub) => {
                    let text = format!("subscription {} is cancelled ({reason}).", sub.id);
                    console.confirmations.finish(token, "Cancelled", &text);
                    tracing::info!(
                        actor = admin.actor().0,
                        subscription = sub.id,
                        "console cancel"
                    );
                    console.message(StatusCode::OK, "Cancelled", &text)
                }
                Err(error) => refused(&console, token, &error),
            }
        }
    }
}

/// A confirmed action `app` refused: the confirmation is spent, the page says why.
fn refused(console: &Console, token: &str, error: &AppError) -> Response {
    console
        .confirmations
        .finish(token, "Not done", &error.to_string());
    console.failure(error)
}

/// `GET /subscriptions/{id}/cancel`: the cancel form; with `reason`, its confirmation.
pub async fn cancel_form(
    State(console): State<Arc<Console>>,
    Extension(admin): Extension<Admin>,
    Path(id): Path<i64>,
    Query(query): Query<Fields>,
) -> Response {
    let app = &console.app;
    let sub = match crate::app::subscriptions::show(app, id).await {
        Ok(detail) => detail.subscription,
        Err(error) => return console.failure(&error),
    };
    let base = context! { csrf => &admin.csrf, name => &admin.name, sub };
    let Some(reason) = query.get("reason").map(|r| r.trim()) else {
        return console.render(StatusCode::OK, "cancel.html", base);
    };
    if reason.is_empty() {
        return console.render(
            StatusCode::UNPROCESSABLE_ENTITY,
            "cancel.html",
            context! { problem => "Say why: the reason is kept with the subscription.", ..base },
        );
    }
    let action = Pending::Cancel {
        subscription_id: id,
        reason: reason.to_owned(),
    };
    match console.confirmations.open(&admin.name, action, app.now()) {
        Ok(token) => console.render(
            StatusCode::OK,
            "cancel.html",
            context! { confirm => true, token, reason, ..base },
        ),
        Err(error) => console.failure(&AppError::Unavailable(error.to_string())),
    }
}
