//! Support's actions with a reason, all through one mechanism: a GET shows the action's form,
//! and with its fields its quote or effect and a form whose token names exactly that action,
//! held here ([`Confirmations`]); `POST /confirm` applies the held action (not what a form
//! might say otherwise) once, through `app` with the actor `admin:<name>`: a second POST of
//! the same token shows what the first did. Each action also carries the state it was shown
//! with (a subscription's fingerprint, an order's refunded amount, a message's status): `app`
//! refuses it as stale when that changed since, and nothing is done.
//!
//! The actions: refund part or all of a paid order; skip, pause, resume, change, cancel a
//! subscription and send its customer a fresh link; send a message again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use minijinja::context;
use serde::Serialize;

use super::{Admin, Console, Posted, sessions, url_component};
use crate::app::AppError;
use crate::app::subscriptions::{Action, ChangeInput, Preview};
use crate::app::views::{CustomerView, SubscriptionView};
use crate::core::catalog::PlanId;
use crate::core::model::MessageStatus;
use crate::core::money::Money;
use crate::core::schedule::Interval;

type Fields = HashMap<String, String>;

/// How long a confirmation stays open, and how many are kept at most.
const CONFIRMATION_TTL: TimeDelta = TimeDelta::minutes(30);
const CONFIRMATIONS_MAX: usize = 10_000;

/// An action shown for confirmation: exactly what the POST will do, and the state it was shown
/// with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    Refund {
        order_number: String,
        amount: Money,
        reason: String,
        seen_refunded: Money,
    },
    /// A lifecycle operation (skip, pause, resume, change, cancel).
    Subscription {
        id: i64,
        action: Action,
        seen: String,
        reason: String,
    },
    FreshLink {
        subscription_id: i64,
        reason: String,
    },
    Resend {
        message_id: i64,
        seen: MessageStatus,
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
        until: DateTime<Utc>,
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
        // Open and done ones are kept for their time (a replay within it shows the outcome).
        held.retain(|_, c| match c {
            Confirmation::Open { until, .. } | Confirmation::Done { until, .. } => *until > now,
            Confirmation::Applying => true,
        });
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
            Some(Confirmation::Done { heading, text, .. }) => Taken::AlreadyDone {
                heading: heading.clone(),
                text: text.clone(),
            },
            _ => Taken::Unknown,
        }
    }

    /// Records how it went: done (a replay shows it), or refused (the token may not be used
    /// again either: the person starts over from the page).
    fn finish(&self, token: &str, heading: &str, text: &str, now: DateTime<Utc>) {
        self.lock().insert(
            token.to_owned(),
            Confirmation::Done {
                heading: heading.to_owned(),
                text: text.to_owned(),
                until: now + CONFIRMATION_TTL,
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Confirmation>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One input of an action's form.
#[derive(Debug, Serialize)]
struct Field {
    name: &'static str,
    label: &'static str,
    /// `text`, `date`, `number` or `select`.
    kind: &'static str,
    value: String,
    required: bool,
    /// A select's (value, label) choices.
    options: Vec<(String, String)>,
}

impl Field {
    fn new(name: &'static str, label: &'static str, kind: &'static str, query: &Fields) -> Field {
        Field {
            name,
            label,
            kind,
            value: query.get(name).cloned().unwrap_or_default(),
            required: false,
            options: Vec::new(),
        }
    }

    fn reason(label: &'static str, query: &Fields) -> Field {
        Field {
            required: true,
            ..Field::new("reason", label, "text", query)
        }
    }
}

/// An action's page: its form, or (with `effect`) its confirmation.
#[derive(Debug, Serialize, Default)]
struct ActionPage {
    title: String,
    /// The thing acted on, as it stands.
    summary: String,
    /// Where the form GETs to (its own path), and where "back" goes.
    path: String,
    back: String,
    /// The button that shows the confirmation.
    show: &'static str,
    fields: Vec<Field>,
    /// The confirmation: what the POST does, line by line, and its button.
    effect: Vec<String>,
    notice: String,
    button: String,
    danger: bool,
    /// A rendered message shown with its resend.
    preview: Option<String>,
}

impl Console {
    /// The action's page: `problem` with 422, or the form (no effect), or the confirmation of
    /// `pending` (a fresh token for `admin`).
    fn action_page(
        &self,
        admin: &Admin,
        page: ActionPage,
        problem: Option<String>,
        pending: Option<Pending>,
    ) -> Response {
        let base = context! { csrf => &admin.csrf, name => &admin.name, page };
        if let Some(problem) = problem {
            return self.render(
                StatusCode::UNPROCESSABLE_ENTITY,
                "action.html",
                context! { problem, ..base },
            );
        }
        let Some(pending) = pending else {
            return self.render(StatusCode::OK, "action.html", base);
        };
        match self
            .confirmations
            .open(&admin.name, pending, self.app.now())
        {
            Ok(token) => self.render(
                StatusCode::OK,
                "action.html",
                context! { confirm => true, token, ..base },
            ),
            Err(error) => self.failure(&AppError::Unavailable(error.to_string())),
        }
    }

    /// The "link" action's confirmation, once a reason is given: it emails the customer a
    /// fresh link and changes nothing about the subscription, so it has no effect to preview.
    fn fresh_link_page(
        &self,
        admin: &Admin,
        mut page: ActionPage,
        customer: &CustomerView,
        id: i64,
        reason: &str,
    ) -> Response {
        page.notice = format!(
            "This emails {} <{}> a fresh link to manage subscription {id} (the links they have stay valid), and records it by admin:{} with the reason “{reason}”.",
            customer.name, customer.email, admin.name
        );
        page.button = "Send the link".into();
        let pending = Pending::FreshLink {
            subscription_id: id,
            reason: reason.to_owned(),
        };
        self.action_page(admin, page, None, Some(pending))
    }
}

/// The reason of a form: `None` before it was filled in, else the trimmed text (maybe empty).
fn reason_of(query: &Fields) -> Option<&str> {
    query.get("reason").map(|r| r.trim())
}

const SAY_WHY: &str = "Say why: the reason is kept with what you do.";

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
        customer_id => order.customer_id,
        order,
        paid => payment.amount.to_string(),
        refunded => payment.refunded.to_string(),
        left => left.to_string(),
    };
    let (Some(amount), Some(reason)) = (query.get("amount"), reason_of(&query)) else {
        return console.render(StatusCode::OK, "refund.html", base);
    };
    let amount = match refund_amount(amount, left) {
        Ok(amount) => amount,
        Err(error) => return console.failure(&error),
    };
    if let Some(problem) = refund_problem(reason, amount, left) {
        return console.render(
            StatusCode::UNPROCESSABLE_ENTITY,
            "refund.html",
            context! { problem, ..base },
        );
    }
    let action = Pending::Refund {
        order_number: number.clone(),
        amount,
        reason: reason.to_owned(),
        seen_refunded: payment.refunded,
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
            reason,
            ..base
        },
    )
}

/// The amount a refund form asks for: all that is `left` when empty, else parsed in its
/// currency.
fn refund_amount(text: &str, left: Money) -> Result<Money, AppError> {
    if text.trim().is_empty() {
        return Ok(left);
    }
    Money::parse(text.trim(), left.currency())
        .map_err(|error| AppError::invalid_field("amount", format!(" {text:?}: {error}")))
}

/// Why a filled-in refund form cannot be confirmed: no reason, or more than is left.
fn refund_problem(reason: &str, amount: Money, left: Money) -> Option<String> {
    if reason.is_empty() {
        Some("Say why: the reason is kept on the credit note.".to_owned())
    } else if amount.minor() <= 0 || amount.minor() > left.minor() {
        Some(format!("At most {left} is left to refund of this order."))
    } else {
        None
    }
}

/// The subscription actions a person may choose from a customer's page, by path segment.
pub const SUBSCRIPTION_ACTIONS: [&str; 6] = ["skip", "pause", "resume", "change", "cancel", "link"];

/// `GET /subscriptions/{id}/{action}`: the action's form; with its fields and a reason, its
/// quote (the next renewal before and after) and confirmation.
pub async fn subscription_form(
    State(console): State<Arc<Console>>,
    Extension(admin): Extension<Admin>,
    Path((id, what)): Path<(i64, String)>,
    Query(query): Query<Fields>,
) -> Response {
    let app = &console.app;
    if !SUBSCRIPTION_ACTIONS.contains(&what.as_str()) {
        return super::pages::not_found(State(console.clone())).await;
    }
    let sub = match crate::app::subscriptions::show(app, id).await {
        Ok(detail) => detail.subscription,
        Err(error) => return console.failure(&error),
    };
    let customer =
        match crate::app::customers::show(app, &crate::app::CustomerRef::Id(sub.customer_id)).await
        {
            Ok(detail) => detail.customer,
            Err(error) => return console.failure(&error),
        };
    let mut page = ActionPage {
        summary: subscription_summary(&sub, &customer),
        path: format!("/subscriptions/{id}/{what}"),
        back: format!("/customers/{}", sub.customer_id),
        show: "Show the effect",
        ..ActionPage::default()
    };
    let action = match action_form(&what, id, &sub.plan, app.catalog(), &query, &mut page) {
        Ok(action) => action,
        Err(problem) => return console.action_page(&admin, page, Some(problem), None),
    };
    let Some(reason) = reason_of(&query) else {
        return console.action_page(&admin, page, None, None);
    };
    if reason.is_empty() {
        return console.action_page(&admin, page, Some(SAY_WHY.into()), None);
    }
    page.danger = what == "cancel";
    if what == "link" {
        return console.fresh_link_page(&admin, page, &customer, id, reason);
    }
    let Some(action) = action else {
        return console.action_page(
            &admin,
            page,
            Some("Choose what to change: a plan, a quantity or an interval.".into()),
            None,
        );
    };
    let preview = match crate::app::subscriptions::preview(app, &admin.actor(), id, &action).await {
        Ok(preview) => preview,
        Err(error @ (AppError::InvalidState(_) | AppError::InvalidInput { .. })) => {
            return console.action_page(&admin, page, Some(error.to_string()), None);
        }
        Err(error) => return console.failure(&error),
    };
    page.effect = effect_lines(&preview);
    page.notice = action_notice(&what, id, &action, reason, &admin.name);
    page.button = action_button(&what, id);
    let pending = Pending::Subscription {
        id,
        action,
        seen: preview.seen,
        reason: reason.to_owned(),
    };
    console.action_page(&admin, page, None, Some(pending))
}

/// What a subscription's action page says it acts on: the subscription and its customer.
fn subscription_summary(sub: &SubscriptionView, customer: &CustomerView) -> String {
    let next = sub.next_renewal_at.map_or_else(
        || "none".to_owned(),
        |at| at.format("%Y-%m-%d %H:%M UTC").to_string(),
    );
    format!(
        "{} × {} every {}, {}; next renewal {next}. Customer {} <{}>.",
        sub.quantity, sub.plan, sub.interval, sub.status, customer.name, customer.email
    )
}

/// The form of subscription action `what` on `page`, and the action its fields ask for:
/// `Ok(None)` when they ask for none yet (or the action is a fresh link), `Err` with the
/// problem when a field cannot be read.
fn action_form(
    what: &str,
    id: i64,
    plan_now: &str,
    catalog: &crate::core::catalog::Catalog,
    query: &Fields,
    page: &mut ActionPage,
) -> Result<Option<Action>, String> {
    let reason_label = "Reason (kept in the subscription's history)";
    Ok(match what {
        "skip" => {
            page.title = format!("Skip the next renewal of subscription {id}");
            page.fields.push(Field::reason(reason_label, query));
            Some(Action::Skip)
        }
        "pause" => {
            page.title = format!("Pause subscription {id}");
            page.fields.push(Field::new(
                "until",
                "Until (a local date; empty: until resumed)",
                "date",
                query,
            ));
            page.fields.push(Field::reason(reason_label, query));
            match query
                .get("until")
                .map(|u| u.trim())
                .filter(|u| !u.is_empty())
            {
                None => Some(Action::Pause { until: None }),
                Some(until) => match until.parse::<NaiveDate>() {
                    Ok(date) => Some(Action::Pause { until: Some(date) }),
                    Err(_) => {
                        return Err(format!(
                            "until {until:?}: expected a date like 2026-04-30, or nothing"
                        ));
                    }
                },
            }
        }
        "resume" => {
            page.title = format!("Resume subscription {id}");
            page.fields.push(Field::reason(reason_label, query));
            Some(Action::Resume)
        }
        "change" => {
            page.title = format!("Change subscription {id}");
            page.fields = change_fields(plan_now, catalog, query);
            page.fields.push(Field::reason(reason_label, query));
            change_of(query)?.map(Action::Change)
        }
        "cancel" => {
            page.title = format!("Cancel subscription {id}");
            page.fields
                .push(Field::reason("Reason (kept with the subscription)", query));
            reason_of(query).map(|reason| Action::Cancel {
                reason: reason.to_owned(),
            })
        }
        _ => {
            page.title = format!("Send a fresh link for subscription {id}");
            page.fields.push(Field::reason(reason_label, query));
            None
        }
    })
}

/// The change form's fields: a plan among the catalog's (or unchanged), a quantity, an
/// interval.
fn change_fields(
    plan_now: &str,
    catalog: &crate::core::catalog::Catalog,
    query: &Fields,
) -> Vec<Field> {
    let mut plan = Field::new("plan", "Plan", "select", query);
    plan.options
        .push((String::new(), format!("{plan_now} (unchanged)")));
    for p in &catalog.plans {
        let id = p.id.to_string();
        plan.options.push((id.clone(), id));
    }
    vec![
        plan,
        Field::new("quantity", "Quantity (empty: unchanged)", "number", query),
        Field::new(
            "interval",
            "Every (like 30 days or 2 months; empty: unchanged)",
            "text",
            query,
        ),
    ]
}

/// The confirming button of subscription action `what`: "Skip the next renewal of 7",
/// "Pause subscription 7", …
fn action_button(what: &str, id: i64) -> String {
    match what {
        "skip" => format!("Skip the next renewal of {id}"),
        other => format!(
            "{}{} subscription {id}",
            other[..1].to_uppercase(),
            &other[1..]
        ),
    }
}

/// What the confirmation of subscription action `what` says it does.
fn action_notice(what: &str, id: i64, action: &Action, reason: &str, admin: &str) -> String {
    match action {
        Action::Cancel { .. } => format!(
            "This cancels subscription {id} for good: no renewal is billed after it, and the customer gets the cancellation email. Reason “{reason}”, by admin:{admin}."
        ),
        _ => {
            let verb = match what {
                "skip" => "skips the next renewal of",
                "pause" => "pauses",
                "resume" => "resumes",
                _ => "changes",
            };
            format!(
                "This {verb} subscription {id} as shown below, and the customer gets its email. Reason “{reason}”, by admin:{admin}."
            )
        }
    }
}

/// A change form's choices: `Ok(None)` when nothing is chosen.
fn change_of(query: &Fields) -> Result<Option<ChangeInput>, String> {
    let given = |name: &str| query.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let plan = given("plan")
        .map(|p| PlanId::parse(p).map_err(|e| format!("plan {p:?}: {e}")))
        .transpose()?;
    let quantity = given("quantity")
        .map(|q| {
            q.parse::<u32>()
                .ok()
                .filter(|q| *q > 0)
                .ok_or_else(|| format!("quantity {q:?}: expected a whole number from 1"))
        })
        .transpose()?;
    let interval = given("interval")
        .map(|i| {
            i.parse::<Interval>()
                .map_err(|e| format!("every {i:?}: {e}"))
        })
        .transpose()?;
    if plan.is_none() && quantity.is_none() && interval.is_none() {
        return Ok(None);
    }
    Ok(Some(ChangeInput {
        plan,
        quantity,
        interval,
        ship_to: None,
    }))
}

/// What a subscription action changes, as lines "what: before → after".
fn effect_lines(preview: &Preview) -> Vec<String> {
    let (b, a) = (&preview.before, &preview.after);
    let when = |t: Option<DateTime<Utc>>| {
        t.map_or_else(
            || "none".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
        )
    };
    let next = |n: &Option<crate::app::subscriptions::UpcomingView>| {
        n.as_ref().map_or_else(
            || "none".to_owned(),
            |n| format!("{} on {}", n.total, n.at.format("%Y-%m-%d")),
        )
    };
    let mut lines = vec![
        format!("Status: {} → {}", b.status, a.status),
        format!(
            "Plan: {} × {} → {} × {}",
            b.quantity, b.plan, a.quantity, a.plan
        ),
        format!("Every: {} → {}", b.interval, a.interval),
        format!(
            "Next renewal: {} → {}",
            when(b.next_renewal_at),
            when(a.next_renewal_at)
        ),
        format!(
            "Next charge: {} → {}",
            next(&preview.next_before),
            next(&preview.next_after)
        ),
    ];
    if a.paused_until.is_some() || b.paused_until.is_some() {
        lines.push(format!(
            "Paused until: {} → {}",
            when(b.paused_until),
            when(a.paused_until)
        ));
    }
    lines
}

/// `GET /messages/{id}/resend`: the message as it would be sent again, and a reason; with the
/// reason, its confirmation.
pub async fn resend_form(
    State(console): State<Arc<Console>>,
    Extension(admin): Extension<Admin>,
    Path(id): Path<i64>,
    Query(query): Query<Fields>,
) -> Response {
    let app = &console.app;
    let message = match crate::app::outbox::find(app, id).await {
        Ok(message) => message,
        Err(error) => return console.failure(&error),
    };
    let rendered = crate::app::outbox::show(app, &console.links, id)
        .await
        .map(|r| r.rendered)
        .unwrap_or_else(|e| format!("(cannot be shown: {e})"));
    let back = match message.subscription_id {
        Some(sub) => match crate::app::subscriptions::find(app, sub).await {
            Ok(sub) => format!("/customers/{}", sub.customer_id),
            Err(error) => return console.failure(&error),
        },
        None => "/queues".to_owned(),
    };
    let mut page = ActionPage {
        title: format!("Send message {id} again"),
        summary: format!(
            "{} to {}, {} (sends tried: {}){}.",
            message.kind,
            message.recipient,
            message.status,
            message.attempts,
            message
                .last_error
                .as_deref()
                .map(|e| format!("; last error: {e}"))
                .unwrap_or_default()
        ),
        path: format!("/messages/{id}/resend"),
        back,
        show: "Show the resend",
        fields: vec![Field::reason(
            "Reason (kept in the subscription's history)",
            &query,
        )],
        preview: Some(rendered),
        ..ActionPage::default()
    };
    if message.status == MessageStatus::Pending {
        return console.action_page(
            &admin,
            page,
            Some(format!(
                "Message {id} is waiting to be sent already: nothing to resend."
            )),
            None,
        );
    }
    let Some(reason) = reason_of(&query) else {
        return console.action_page(&admin, page, None, None);
    };
    if reason.is_empty() {
        return console.action_page(&admin, page, Some(SAY_WHY.into()), None);
    }
    page.notice = format!(
        "This sends message {id} ({}) to {} again, as shown below, and records it by admin:{} with the reason “{reason}”.",
        message.kind, message.recipient, admin.name
    );
    page.button = format!("Send message {id} again");
    let pending = Pending::Resend {
        message_id: id,
        seen: message.status,
        reason: reason.to_owned(),
    };
    console.action_page(&admin, page, None, Some(pending))
}

/// `POST /confirm`: applies the confirmation its token names, once.
pub async fn confirm(
    State(console): State<Arc<Console>>,
    Posted { admin, form }: Posted,
) -> Response {
    let token = form.get("token").map(String::as_str).unwrap_or_default();
    let now = console.app.now();
    let action = match console.confirmations.take(token, &admin.name, now) {
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
    match apply(&console, &admin, &action).await {
        Ok((heading, text)) => {
            console.confirmations.finish(token, heading, &text, now);
            tracing::info!(actor = admin.actor().0, action = ?kind_of(&action), "console action");
            console.message(StatusCode::OK, heading, &text)
        }
        Err(error) => {
            // The confirmation is spent: the person starts over from the page.
            console
                .confirmations
                .finish(token, "Not done", &error.to_string(), now);
            console.failure(&error)
        }
    }
}

fn kind_of(action: &Pending) -> &'static str {
    match action {
        Pending::Refund { .. } => "refund",
        Pending::Subscription { action, .. } => action_name(action),
        Pending::FreshLink { .. } => "fresh-link",
        Pending::Resend { .. } => "resend",
    }
}

fn action_name(action: &Action) -> &'static str {
    match action {
        Action::Skip => "skip",
        Action::Pause { .. } => "pause",
        Action::Resume => "resume",
        Action::Cancel { .. } => "cancel",
        Action::Change(_) => "change",
        Action::Reschedule { .. } => "reschedule",
        Action::RenewNow => "renew-now",
    }
}

/// Does a confirmed action through `app` as `admin`: its heading and what it did.
async fn apply(
    console: &Console,
    admin: &Admin,
    action: &Pending,
) -> Result<(&'static str, String), AppError> {
    let app = &console.app;
    let actor = admin.actor();
    match action {
        Pending::Refund {
            order_number,
            amount,
            reason,
            seen_refunded,
        } => {
            let note = crate::app::payments::refund_as_seen(
                app,
                order_number,
                *amount,
                reason,
                &actor,
                *seen_refunded,
            )
            .await?;
            Ok((
                "Refunded",
                format!(
                    "credit note {} refunds {} of order {} ({}).",
                    note.number, note.amount, note.order_number, note.reason
                ),
            ))
        }
        Pending::Subscription {
            id,
            action,
            seen,
            reason,
        } => {
            let sub =
                crate::app::subscriptions::perform_as_seen(app, &actor, *id, action, seen, reason)
                    .await?;
            Ok(subscription_done(&sub, action, reason))
        }
        Pending::FreshLink {
            subscription_id,
            reason,
        } => {
            crate::app::self_service::send_fresh_link_for(app, *subscription_id, &actor, reason)
                .await?;
            Ok((
                "Link sent",
                format!(
                    "a fresh link for subscription {subscription_id} is on its way to the customer ({reason})."
                ),
            ))
        }
        Pending::Resend {
            message_id,
            seen,
            reason,
        } => {
            let message =
                crate::app::outbox::resend(app, *message_id, *seen, &actor, reason).await?;
            Ok((
                "Sending again",
                format!(
                    "message {} ({}) to {} is back in the queue ({reason}).",
                    message.id, message.kind, message.recipient
                ),
            ))
        }
    }
}

/// What a confirmed subscription action did: its heading and the subscription as it now is.
fn subscription_done(
    sub: &SubscriptionView,
    action: &Action,
    reason: &str,
) -> (&'static str, String) {
    let next = sub.next_renewal_at.map_or_else(
        || "none".to_owned(),
        |at| at.format("%Y-%m-%d %H:%M UTC").to_string(),
    );
    match action {
        Action::Cancel { reason } => (
            "Cancelled",
            format!("subscription {} is cancelled ({reason}).", sub.id),
        ),
        _ => (
            "Done",
            format!(
                "subscription {} is {}: {} × {} every {}, next renewal {next} ({}: {reason}).",
                sub.id,
                sub.status,
                sub.quantity,
                sub.plan,
                sub.interval,
                action_name(action)
            ),
        ),
    }
}
