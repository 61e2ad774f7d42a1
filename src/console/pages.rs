//! The console's handlers: sign-in and sign-out, and the pages, each calling `app` use cases
//! and rendering one template. Refusals become pages that say what happened and what to do.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use chrono::{Datelike, Months, NaiveDate};
use minijinja::{Value, context};
use serde::Serialize;

use super::charts::{Series, bars};
use super::reports::Found;
use super::{Admin, Console, Posted, SESSION_COOKIE, SIGN_IN_COOKIE, cookie, sessions};
use crate::app::AppError;
use crate::core::metrics::{DunningFunnel, MonthMetrics};
use crate::core::model::Scope;
use crate::finance::{MetricsReport, major_units, percent};

type Fields = HashMap<String, String>;

/// Failed messages and payments listed on the overview.
const FAILURES_SHOWN: u32 = 50;

/// What a wrong, revoked or non-admin key hears alike.
const KEY_REFUSED: &str = "That key does not open the console. Use an admin key (subsave api-keys create NAME --scope admin).";

impl Console {
    pub(super) fn render(&self, status: StatusCode, name: &str, ctx: Value) -> Response {
        match crate::web::html(&self.pages, status, name, ctx) {
            Ok(response) => response,
            Err(error) => {
                tracing::error!(template = name, %error, "cannot render a console page");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The page could not be drawn; the log says why.\n",
                )
                    .into_response()
            }
        }
    }

    pub(super) fn message(&self, status: StatusCode, heading: &str, text: &str) -> Response {
        self.render(
            status,
            "message.html",
            context! { heading, text, problem => !status.is_success() },
        )
    }

    /// A refusal as a page: what was asked for is missing, or refused with the use case's own
    /// words (people signed in to the console may see what exists), or the database failed.
    pub(super) fn failure(&self, error: &AppError) -> Response {
        match error {
            AppError::NotFound(text) => self.message(StatusCode::NOT_FOUND, "Not found", text),
            AppError::InvalidState(_) | AppError::InvalidInput { .. } | AppError::Conflict(_) => {
                self.message(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Not done",
                    &error.to_string(),
                )
            }
            AppError::Unavailable(_) | AppError::Store(_) => {
                tracing::error!(%error, "console request failed");
                self.message(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Try again in a minute",
                    "The database or a peer did not answer; nothing was changed. Try again in a minute.",
                )
            }
        }
    }
}

impl Console {
    /// The metrics asked for are being computed: 503 with `Retry-After`, and a page that
    /// reloads itself.
    fn computing(&self) -> Response {
        let mut response = self.render(
            StatusCode::SERVICE_UNAVAILABLE,
            "message.html",
            context! {
                heading => "Computing the metrics",
                text => "The metrics of this period are being computed from the whole history; this page reloads itself in a few seconds.",
                reload => super::reports::WAIT.as_secs(),
            },
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
        response
    }
}

pub async fn not_found(State(console): State<Arc<Console>>) -> Response {
    console.message(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is no page here. Start from the overview.",
    )
}

/// `GET /sign-in`: the form, with a fresh CSRF token also set as a cookie.
pub async fn sign_in_form(State(console): State<Arc<Console>>) -> Response {
    console.sign_in_page(StatusCode::OK, None)
}

impl Console {
    fn sign_in_page(&self, status: StatusCode, problem: Option<&str>) -> Response {
        let token = match sessions::random_token() {
            Ok(token) => token,
            Err(error) => return self.failure(&AppError::Unavailable(error.to_string())),
        };
        let mut response =
            self.render(status, "sign_in.html", context! { csrf => &token, problem });
        if let Ok(value) = self.cookie(SIGN_IN_COOKIE, &token, 600).parse() {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        response
    }
}

/// `POST /sign-in`: an admin key for a session cookie.
pub async fn sign_in(
    State(console): State<Arc<Console>>,
    headers: axum::http::HeaderMap,
    Form(form): Form<Fields>,
) -> Response {
    let presented = form.get("csrf").map(String::as_str).unwrap_or_default();
    let expected = cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !super::constant_time_eq(expected.as_bytes(), presented.as_bytes()) {
        return console.sign_in_page(
            StatusCode::FORBIDDEN,
            Some("The form expired or came from elsewhere: sign in again from this page."),
        );
    }
    let key = form.get("key").map(|k| k.trim()).unwrap_or_default();
    let found = match crate::app::api_keys::authenticate(&console.app, key).await {
        Ok(found) => found.filter(|k| k.scope == Scope::Admin),
        Err(error) => return console.failure(&error),
    };
    let Some(found) = found else {
        return console.sign_in_page(StatusCode::UNAUTHORIZED, Some(KEY_REFUSED));
    };
    let opened = console
        .sessions
        .open(&found.name, crate::api_keys::hash(key), console.app.now());
    let (id, _) = match opened {
        Ok(opened) => opened,
        Err(error) => return console.failure(&AppError::Unavailable(error.to_string())),
    };
    tracing::info!(key = found.name, "console sign-in");
    let mut response = Redirect::to("/").into_response();
    for value in [
        console.cookie(SESSION_COOKIE, &id, console.session_secs),
        console.cookie(SIGN_IN_COOKIE, "", 0),
    ] {
        if let Ok(value) = value.parse() {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// `POST /sign-out`: ends the session here (its cookie opens nothing afterwards).
pub async fn sign_out(
    State(console): State<Arc<Console>>,
    Posted { admin, .. }: Posted,
) -> Response {
    if let Some(id) = &admin.session {
        console.sessions.close(id);
    }
    let mut response = Redirect::to("/sign-in").into_response();
    if let Ok(value) = console.cookie(SESSION_COOKIE, "", 0).parse() {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// A POST without this person's CSRF token.
pub(super) fn forged(console: &Console) -> Response {
    console.message(
        StatusCode::FORBIDDEN,
        "Not done",
        "This form did not come from your session: nothing was changed. Open the page again and repeat.",
    )
}

/// The overview's period: `from` and `to` of the query, or the last 6 months (the first day
/// of the month 5 months back to today, in the finance time zone).
fn period(console: &Console, query: &Fields) -> Result<(NaiveDate, NaiveDate), AppError> {
    let (default_from, today) = default_period(console);
    let date = |name: &'static str| {
        query
            .get(name)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse::<NaiveDate>().map_err(|_| {
                    AppError::invalid_field(
                        name,
                        format!(" {v:?}: expected a date like 2026-01-31"),
                    )
                })
            })
            .transpose()
    };
    let to = date("to")?.unwrap_or(today);
    let from = date("from")?.unwrap_or(default_from);
    crate::app::orders::check_range(from, to)?;
    Ok((from, to))
}

/// The overview's default period: the first day of the month 5 months back to today, in the
/// finance time zone.
pub(super) fn default_period(console: &Console) -> (NaiveDate, NaiveDate) {
    let today = console
        .app
        .now()
        .with_timezone(&console.app.settings().finance.time_zone)
        .date_naive();
    let from = (today.with_day(1).unwrap_or(today))
        .checked_sub_months(Months::new(5))
        .unwrap_or(today);
    (from, today)
}

/// A readable table: its caption, column headings and rows of text.
#[derive(Debug, Serialize)]
struct Table {
    caption: String,
    headings: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

/// One chart of the overview: its SVG, its table, and its CSV section.
#[derive(Debug, Serialize)]
struct Chart {
    svg: Value,
    table: Table,
    csv: &'static str,
}

/// `GET /`: the business metrics of a period as charts and tables, and the queues' health.
pub async fn overview(
    State(console): State<Arc<Console>>,
    Extension(admin): Extension<Admin>,
    Query(query): Query<Fields>,
) -> Response {
    let (from, to) = match period(&console, &query) {
        Ok(period) => period,
        Err(error) => return console.failure(&error),
    };
    let kept = match super::reports::get(&console, from, to).await {
        Ok(Found::Ready(kept)) => kept,
        Ok(Found::Computing) => return console.computing(),
        Err(error) => return console.failure(&error),
    };
    let report = &kept.report;
    let health = match crate::app::finance::health(&console.app, FAILURES_SHOWN).await {
        Ok(health) => health,
        Err(error) => return console.failure(&error),
    };
    let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map_or_else(
            || "none".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
        )
    };
    let health = context! {
        mail_pending => health.mail_pending,
        mail_oldest => when(health.mail_oldest),
        payments_due => health.payments_due,
        payments_oldest => when(health.payments_oldest),
        failed_messages => health.failed_messages.data.iter().map(|m| vec![
            m.id.to_string(), m.kind.clone(), m.recipient.clone(), m.attempts.to_string(),
            m.last_error.clone().unwrap_or_default(),
        ]).collect::<Vec<_>>(),
        more_messages => health.failed_messages.has_more,
        failed_payments => health.failed_payments.data.iter().map(|p| vec![
            p.order_number.clone(), p.amount.to_string(), p.attempt.to_string(),
            p.decline_code.clone().unwrap_or_default(), p.last_error.clone().unwrap_or_default(),
        ]).collect::<Vec<_>>(),
        more_payments => health.failed_payments.has_more,
    };
    console.render(
        StatusCode::OK,
        "overview.html",
        context! {
            csrf => admin.csrf,
            name => admin.name,
            from => from.to_string(),
            to => to.to_string(),
            computed_at => kept.computed_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            refresh_secs => console.app.settings().admin.overview_refresh_secs,
            charts => charts(report),
            declines => !report.metrics.dunning.is_empty(),
            cohorts => cohorts(report),
            reasons => report.metrics.cancellation_reasons.iter()
                .map(|r| vec![r.reason.clone(), r.cancellations.to_string()])
                .collect::<Vec<_>>(),
            health,
        },
    )
}

/// The charts of a report, per currency, each with its table.
fn charts(report: &MetricsReport) -> Vec<Chart> {
    let m = &report.metrics;
    let mut currencies: Vec<&str> = m.months.iter().map(|r| r.currency.as_str()).collect();
    // The months come month by month, each month's currencies together: one chart set per
    // currency needs them sorted first.
    currencies.sort_unstable();
    currencies.dedup();
    let mut charts = Vec::new();
    for currency in currencies {
        let months: Vec<_> = m.months.iter().filter(|r| r.currency == currency).collect();
        charts.push(mrr_chart(currency, &months));
        charts.push(movements_chart(currency, &months));
        charts.push(churn_chart(currency, &months));
    }
    charts.extend(m.dunning.iter().map(dunning_chart));
    charts.push(units_chart(report));
    charts
}

/// One value of each month, as a chart's series.
fn series<'a>(name: &'a str, months: &[&MonthMetrics], f: fn(&MonthMetrics) -> i64) -> Series<'a> {
    Series {
        name,
        values: months.iter().map(|r| f(r)).collect(),
    }
}

fn month_labels(months: &[&MonthMetrics]) -> Vec<String> {
    months.iter().map(|r| r.month.clone()).collect()
}

/// MRR at each month's end, and the month's figures in its table.
fn mrr_chart(currency: &str, months: &[&MonthMetrics]) -> Chart {
    let money = |v: i64| major_units(v, currency);
    let title = format!("MRR by month, {currency}");
    Chart {
        svg: Value::from_safe_string(bars(
            &title,
            &month_labels(months),
            &[series("MRR", months, |r| r.mrr_end_minor)],
            &money,
        )),
        table: Table {
            caption: title,
            headings: vec![
                "Month",
                "MRR at start",
                "New",
                "Expansion",
                "Contraction",
                "Churned",
                "Reactivated",
                "MRR at end",
                "Subscriptions",
                "ARPS",
            ],
            rows: months
                .iter()
                .map(|r| {
                    vec![
                        r.month.clone(),
                        money(r.mrr_start_minor),
                        money(r.new_minor),
                        money(r.expansion_minor),
                        money(r.contraction_minor),
                        money(r.churned_minor),
                        money(r.reactivated_minor),
                        money(r.mrr_end_minor),
                        r.subscriptions_end.to_string(),
                        r.arps_minor.map_or_else(|| "-".to_owned(), money),
                    ]
                })
                .collect(),
        },
        csv: "mrr",
    }
}

/// MRR's movements by month, losses drawn below zero.
fn movements_chart(currency: &str, months: &[&MonthMetrics]) -> Chart {
    let money = |v: i64| major_units(v, currency);
    let title = format!("MRR movements, {currency}");
    Chart {
        svg: Value::from_safe_string(bars(
            &title,
            &month_labels(months),
            &[
                series("new", months, |r| r.new_minor),
                series("expansion", months, |r| r.expansion_minor),
                series("reactivated", months, |r| r.reactivated_minor),
                series("contraction", months, |r| -r.contraction_minor),
                series("churned", months, |r| -r.churned_minor),
            ],
            &money,
        )),
        table: Table {
            caption: format!("{title} (contraction and churned drawn below zero)"),
            headings: vec![
                "Month",
                "New",
                "Expansion",
                "Reactivated",
                "Contraction",
                "Churned",
            ],
            rows: months
                .iter()
                .map(|r| {
                    vec![
                        r.month.clone(),
                        money(r.new_minor),
                        money(r.expansion_minor),
                        money(r.reactivated_minor),
                        money(r.contraction_minor),
                        money(r.churned_minor),
                    ]
                })
                .collect(),
        },
        csv: "mrr",
    }
}

/// Logo and revenue churn by month, in percent.
fn churn_chart(currency: &str, months: &[&MonthMetrics]) -> Chart {
    let title = format!("Churn by month, {currency} (percent)");
    Chart {
        svg: Value::from_safe_string(bars(
            &title,
            &month_labels(months),
            &[
                series("logo churn", months, |r| r.logo_churn_bp.unwrap_or(0)),
                series("revenue churn", months, |r| r.revenue_churn_bp.unwrap_or(0)),
            ],
            &|bp| percent(Some(bp)),
        )),
        table: Table {
            caption: title,
            headings: vec![
                "Month",
                "Customers at start",
                "Churned",
                "Logo churn %",
                "Revenue churn %",
            ],
            rows: months
                .iter()
                .map(|r| {
                    vec![
                        r.month.clone(),
                        r.customers_start.to_string(),
                        r.customers_churned.to_string(),
                        percent(r.logo_churn_bp),
                        percent(r.revenue_churn_bp),
                    ]
                })
                .collect(),
        },
        csv: "mrr",
    }
}

/// One currency's dunning funnel: declined payments and where they ended.
fn dunning_chart(f: &DunningFunnel) -> Chart {
    let title = format!("Dunning funnel, {}", f.currency);
    let steps = [
        ("declined", f.declined),
        ("recovered", f.recovered),
        ("paused", f.paused),
        ("cancelled", f.cancelled),
        ("given up", f.given_up),
        ("open", f.open),
    ];
    Chart {
        svg: Value::from_safe_string(bars(
            &title,
            &steps
                .iter()
                .map(|(s, _)| (*s).to_owned())
                .collect::<Vec<_>>(),
            &[Series {
                name: "payments",
                values: steps.iter().map(|(_, n)| i64::from(*n)).collect(),
            }],
            &|n| n.to_string(),
        )),
        table: Table {
            caption: format!(
                "{title}: {} declined, {} recovered ({} %)",
                major_units(f.declined_minor, &f.currency),
                major_units(f.recovered_minor, &f.currency),
                percent(f.recovery_rate_bp)
            ),
            headings: vec!["Step", "Payments"],
            rows: steps
                .iter()
                .map(|(s, n)| vec![(*s).to_owned(), n.to_string()])
                .collect(),
        },
        csv: "dunning",
    }
}

/// The packs each plan will ship in the forecast's days.
fn units_chart(report: &MetricsReport) -> Chart {
    let title = format!(
        "Units forecast, next {} days (packs)",
        report.units_forecast_days
    );
    Chart {
        svg: Value::from_safe_string(bars(
            &title,
            &report.units_forecast.keys().cloned().collect::<Vec<_>>(),
            &[Series {
                name: "packs",
                values: report.units_forecast.values().copied().collect(),
            }],
            &|n| n.to_string(),
        )),
        table: Table {
            caption: title,
            headings: vec!["Plan", "Packs"],
            rows: report
                .units_forecast
                .iter()
                .map(|(plan, packs)| vec![plan.clone(), packs.to_string()])
                .collect(),
        },
        csv: "units_forecast",
    }
}

/// The cohort table as a heat map: each cell's shade (0-10) is its retained share.
fn cohorts(report: &MetricsReport) -> Value {
    let width = report
        .metrics
        .cohorts
        .iter()
        .map(|c| c.retained.len())
        .max()
        .unwrap_or(0);
    let rows: Vec<Value> = report
        .metrics
        .cohorts
        .iter()
        .map(|c| {
            let cells: Vec<Value> = c
                .retained
                .iter()
                .map(|n| {
                    let shade = (u64::from(*n) * 10)
                        .checked_div(u64::from(c.customers))
                        .unwrap_or(0);
                    context! { retained => n, shade }
                })
                .collect();
            context! { month => c.month, currency => c.currency, customers => c.customers, cells }
        })
        .collect();
    context! { months => (0..width).collect::<Vec<_>>(), rows }
}

/// `GET /overview.csv?section=…`: one section of the metrics report as CSV, the same rows as
/// `subsave report metrics --format csv`.
pub async fn overview_csv(
    State(console): State<Arc<Console>>,
    Query(query): Query<Fields>,
) -> Response {
    let section = query.get("section").map(String::as_str).unwrap_or_default();
    if ![
        "mrr",
        "cohort",
        "dunning",
        "cancellations",
        "units_forecast",
    ]
    .contains(&section)
    {
        return console.message(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such section: use mrr, cohort, dunning, cancellations or units_forecast.",
        );
    }
    let kept = match period(&console, &query) {
        Ok((from, to)) => super::reports::get(&console, from, to).await,
        Err(error) => Err(error),
    };
    let report = match kept {
        Ok(Found::Ready(kept)) => kept.report,
        Ok(Found::Computing) => return console.computing(),
        Err(error) => return console.failure(&error),
    };
    let mut writer = csv::Writer::from_writer(Vec::new());
    let written = std::iter::once(crate::finance::METRICS_COLUMNS.map(str::to_owned))
        .chain(
            crate::finance::metrics_rows(&report)
                .into_iter()
                .filter(|row| row[0] == section),
        )
        .try_for_each(|row| writer.write_record(&row));
    let body = written
        .map_err(|e| e.to_string())
        .and_then(|()| writer.into_inner().map_err(|e| e.to_string()));
    match body {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!(
                        "attachment; filename=\"subsave-{section}-{}-{}.csv\"",
                        report.from, report.to
                    ),
                ),
            ],
            body,
        )
            .into_response(),
        Err(error) => console.failure(&AppError::Unavailable(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::metrics::{Metrics, MonthMetrics};

    /// Months come month by month with each month's currencies together: the charts are one
    /// set per currency, each with that currency's months only, never one per month.
    #[test]
    fn the_mrr_charts_are_one_set_per_currency() {
        let month = |month: &str, currency: &str, mrr: i64| MonthMetrics {
            month: month.into(),
            currency: currency.into(),
            mrr_end_minor: mrr,
            ..MonthMetrics::default()
        };
        let report = MetricsReport {
            from: NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(),
            to: NaiveDate::from_ymd_opt(2027, 2, 28).unwrap(),
            metrics: Metrics {
                months: vec![
                    month("2027-01", "EUR", 4139),
                    month("2027-01", "USD", 4499),
                    month("2027-02", "EUR", 8278),
                    month("2027-02", "USD", 4499),
                ],
                cohorts: vec![],
                dunning: vec![],
                cancellation_reasons: vec![],
            },
            units_forecast_days: 90,
            units_forecast: Default::default(),
        };
        let mrr: Vec<(String, Vec<String>)> = charts(&report)
            .into_iter()
            .filter(|c| c.table.caption.starts_with("MRR by month"))
            .map(|c| {
                let ends = c.table.rows.iter().map(|r| r[7].clone()).collect();
                (c.table.caption, ends)
            })
            .collect();
        assert_eq!(
            mrr,
            [
                (
                    "MRR by month, EUR".to_owned(),
                    vec!["41.39".to_owned(), "82.78".to_owned()]
                ),
                (
                    "MRR by month, USD".to_owned(),
                    vec!["44.99".to_owned(), "44.99".to_owned()]
                ),
            ]
        );
    }
}
