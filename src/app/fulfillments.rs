//! Fulfillment's use cases: record one order's shipment (the API), import a warehouse's
//! shipment file (CSV, streamed row by row: each valid row recorded in its own transaction,
//! each refused one listed with its line number and reason), and the unfulfilled orders with
//! the columns a warehouse imports. A shipment recorded twice is written once
//! (`fulfillment::compare`); a contradicting one is refused.

use std::io::Read;

use super::idempotency::Commit;
use super::views::FulfillmentView;
use super::{Actor, App, AppError};
use crate::core::fulfillment::{self, Comparison, Outcome, RawShipment, Shipment};
use crate::core::model::Order;
use crate::core::webhooks;
use crate::store::ShipmentRecord;

/// A shipment or cancellation as recorded, and whether it was recorded now (`false`: the same
/// one was recorded before, and nothing changed).
pub type Recorded = (FulfillmentView, bool);

/// Records `raw` as the shipment of order `order_number`, the transaction ended by `commit`
/// (also when the same shipment was recorded before: its answer is stored then too).
pub async fn record(
    app: &App,
    actor: &Actor,
    order_number: &str,
    raw: &RawShipment,
    commit: Commit<'_, Recorded>,
) -> Result<Recorded, AppError> {
    let now = app.now();
    let shipment = Shipment::parse(raw, now, &app.settings().fulfillment.tracking_urls)
        .map_err(|e| AppError::invalid_field(e.field, e.problem.clone()))?;
    let recorder = |order: &Order, sub: &_, customer: &_| {
        fulfillment::shipped(order, &shipment, sub, customer, actor)
    };
    let outcome = Outcome::Fulfilled(shipment.clone());
    settle(app, actor, order_number, &outcome, &recorder, commit).await
}

/// The longest cancellation reason, in characters.
pub const REASON_MAX: usize = 500;

/// Cancels order `order_number` before it ships: it never ships (a shipment for it is refused
/// from now on) and leaves the unfulfilled orders; then, when its money was collected, what is
/// left of it is refunded with a credit note (`payments::refund`). A shipped order cannot be
/// cancelled; cancelling twice changes nothing.
pub async fn cancel(
    app: &App,
    actor: &Actor,
    order_number: &str,
    reason: &str,
) -> Result<(FulfillmentView, Option<super::views::CreditNoteView>), AppError> {
    let reason = crate::core::text::FreeText::parse(reason, REASON_MAX)
        .map_err(|e| AppError::invalid_field("reason", e.to_string()))?
        .into_string();
    let recorder =
        |order: &Order, sub: &_, _: &_| fulfillment::cancelled(order, &reason, sub, actor);
    let outcome = Outcome::Cancelled {
        reason: reason.clone(),
    };
    let (view, new) = settle(app, actor, order_number, &outcome, &recorder, Commit::Plain).await?;
    if !new {
        return Ok((view, None));
    }
    let (payment, _) = super::payments::of_order(app, order_number).await?;
    let refundable = payment.is_some_and(|p| {
        ["paid", "partially_refunded", "external"].contains(&p.status.as_str())
            && p.amount.minor() > p.refunded.minor()
    });
    if !refundable {
        return Ok((view, None));
    }
    let note = super::payments::refund(app, order_number, None, &reason, actor, Commit::Plain)
        .await
        .map_err(|e| {
            AppError::Unavailable(format!(
                "order {order_number} is cancelled and will not ship, but its refund failed ({e}); refund it with `subsave orders refund {order_number} --reason …`"
            ))
        })?;
    Ok((view, Some(note)))
}

/// Records `outcome` for the order with what `recorder` makes of it (and its webhooks): a new
/// one, the same one again (nothing changes), or a refusal of one that contradicts it (nothing
/// commits); the transaction is ended by `commit`.
async fn settle(
    app: &App,
    actor: &Actor,
    order_number: &str,
    outcome: &Outcome,
    recorder: &(
         dyn Fn(
        &Order,
        &crate::core::model::Subscription,
        &crate::core::model::Customer,
    ) -> crate::core::model::Change
             + Send
             + Sync
     ),
    commit: Commit<'_, Recorded>,
) -> Result<Recorded, AppError> {
    let now = app.now();
    let endpoints = &app.settings().webhooks.endpoints;
    let with_webhooks = |order: &Order, sub: &_, customer: &_| {
        let mut change = recorder(order, sub, customer);
        webhooks::attach(&mut change, endpoints, now);
        change
    };
    let mut tx = app.store().begin_write().await?;
    let recorded = tx
        .record_shipment(order_number, outcome, &actor.0, &with_webhooks, now)
        .await?;
    let done = match recorded {
        ShipmentRecord::New(f) => (FulfillmentView::from(&f), true),
        ShipmentRecord::Existing(f) => match fulfillment::compare(&f, outcome) {
            Comparison::Same => (FulfillmentView::from(&f), false),
            Comparison::Contradicts(why) => return Err(AppError::Conflict(why)),
        },
    };
    commit.finish(tx, &done, now).await?;
    Ok(done)
}

/// Which CSV columns hold what: the names of a warehouse's export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    pub order: String,
    pub carrier: String,
    pub tracking: String,
    pub shipped_at: Option<String>,
    pub url: Option<String>,
}

impl Default for Columns {
    fn default() -> Self {
        Columns {
            order: "order_number".into(),
            carrier: "carrier".into(),
            tracking: "tracking_number".into(),
            shipped_at: Some("shipped_at".into()),
            url: Some("tracking_url".into()),
        }
    }
}

impl Columns {
    /// `order=Order #,carrier=Carrier,tracking=Tracking Number,shipped_at=Ship Date,url=Link`:
    /// each given key names its column; the others keep their default names (`order_number`,
    /// `carrier`, `tracking_number`, `shipped_at`, `tracking_url`; the last two optional).
    pub fn parse(spec: &str) -> Result<Columns, String> {
        let mut columns = Columns::default();
        for pair in spec.split(',').filter(|p| !p.trim().is_empty()) {
            let (key, name) = pair.split_once('=').ok_or_else(|| {
                format!("\"{pair}\": expected key=column, like order=Order Number")
            })?;
            let name = name.trim().to_owned();
            if name.is_empty() {
                return Err(format!("\"{pair}\": the column name is empty"));
            }
            match key.trim() {
                "order" => columns.order = name,
                "carrier" => columns.carrier = name,
                "tracking" => columns.tracking = name,
                "shipped_at" => columns.shipped_at = Some(name),
                "url" => columns.url = Some(name),
                other => {
                    return Err(format!(
                        "\"{other}\": not a column key; the keys are order, carrier, tracking, shipped_at, url"
                    ));
                }
            }
        }
        Ok(columns)
    }
}

/// A row of the file that was not applied: its line number (1 is the header) and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RefusedRow {
    pub line: u64,
    pub reason: String,
}

/// How many refused rows an import lists; more are counted.
pub const REFUSED_LISTED: usize = 1000;

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    /// Data rows read.
    pub rows: u64,
    /// Shipments recorded now (each with its event, email and webhooks).
    pub applied: u64,
    /// Shipments that were recorded before: nothing changed.
    pub unchanged: u64,
    /// Rows refused, listed up to [`REFUSED_LISTED`].
    pub refused: Vec<RefusedRow>,
    pub refused_count: u64,
}

impl ImportReport {
    fn refuse(&mut self, line: u64, reason: String) {
        self.refused_count += 1;
        if self.refused.len() < REFUSED_LISTED {
            self.refused.push(RefusedRow { line, reason });
        }
    }
}

/// Where each mapped column is in the header, or why the file cannot be read at all.
fn locate(header: &csv::ByteRecord, columns: &Columns) -> Result<[Option<usize>; 5], AppError> {
    let names: Vec<String> = header
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let field = if i == 0 {
                field.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(field)
            } else {
                field
            };
            std::str::from_utf8(field)
                .map(|s| s.trim().to_owned())
                .map_err(|_| {
                    AppError::invalid("line 1 (the header) is not UTF-8; save the file as UTF-8")
                })
        })
        .collect::<Result<_, _>>()?;
    if names.iter().all(String::is_empty) {
        return Err(AppError::invalid(
            "the file has no header row; its first line must name the columns",
        ));
    }
    let find = |name: &str| names.iter().position(|n| n.eq_ignore_ascii_case(name));
    let required = |key: &str, name: &str| {
        find(name).map(Some).ok_or_else(|| {
            AppError::invalid(format!(
                "--columns {key}={name}: no such column in the header (its columns: {}); map it with --columns {key}=NAME",
                crate::core::text::printable(&names.join(", "))
            ))
        })
    };
    Ok([
        required("order", &columns.order)?,
        required("carrier", &columns.carrier)?,
        required("tracking", &columns.tracking)?,
        columns.shipped_at.as_deref().and_then(find),
        columns.url.as_deref().and_then(find),
    ])
}

/// Imports a shipment file: reads it row by row (UTF-8 with or without a BOM, CRLF or LF,
/// quoted fields), records each valid row's shipment in its own transaction, and lists each
/// refused row (malformed, not UTF-8, no such order, contradicting what was recorded) with its
/// line number. A file whose header cannot be read, or lacks a mapped column, is refused
/// before any row is applied.
pub async fn import(
    app: &App,
    actor: &Actor,
    reader: impl Read,
    columns: &Columns,
) -> Result<ImportReport, AppError> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(reader);
    let header = csv
        .byte_headers()
        .map_err(|e| AppError::invalid(format!("the file cannot be read as CSV: {e}")))?
        .clone();
    let [order, carrier, tracking, shipped_at, url] = locate(&header, columns)?;
    // The csv crate counts a line when it reads its LF: after a CRLF header it still says
    // line 1, and every row of a CRLF file one line early. The first row is on line 2.
    let skew = 2u64.saturating_sub(csv.position().line());
    let mut report = ImportReport::default();
    let mut record = csv::ByteRecord::new();
    loop {
        let line = csv.position().line() + skew;
        match csv.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                report.rows += 1;
                report.refuse(line, format!("not a CSV row: {e}"));
                continue;
            }
        }
        report.rows += 1;
        let line = record.position().map_or(line, |p| p.line() + skew);
        let field = |index: Option<usize>| -> Result<Option<String>, String> {
            match index.and_then(|i| record.get(i)) {
                Some(bytes) => std::str::from_utf8(bytes)
                    .map(|s| Some(s.trim().to_owned()))
                    .map_err(|_| "not UTF-8".to_owned()),
                None => Ok(None),
            }
        };
        let fields = (|| {
            let number = field(order)?
                .filter(|n| !n.is_empty())
                .ok_or("no order number")?;
            Ok::<_, String>((
                number,
                RawShipment {
                    carrier: field(carrier)?.unwrap_or_default(),
                    tracking_number: field(tracking)?.unwrap_or_default(),
                    shipped_at: field(shipped_at)?,
                    tracking_url: field(url)?,
                },
            ))
        })();
        let (number, raw) = match fields {
            Ok(fields) => fields,
            Err(why) => {
                report.refuse(line, why);
                continue;
            }
        };
        match record_row(app, actor, &number, &raw).await {
            Ok(true) => report.applied += 1,
            Ok(false) => report.unchanged += 1,
            Err(Refusal::Row(why)) => report.refuse(line, why),
            Err(Refusal::Failed(e)) => return Err(e),
        }
    }
    Ok(report)
}

/// Why one row was not applied: the row's fault (listed, the import goes on) or a failure of
/// the store (the import stops).
enum Refusal {
    Row(String),
    Failed(AppError),
}

async fn record_row(
    app: &App,
    actor: &Actor,
    number: &str,
    raw: &RawShipment,
) -> Result<bool, Refusal> {
    match record(app, actor, number, raw, Commit::Plain).await {
        Ok((_, applied)) => Ok(applied),
        Err(e @ (AppError::Store(_) | AppError::Unavailable(_))) => Err(Refusal::Failed(e)),
        Err(refused) => Err(Refusal::Row(format!(
            "order {}: {refused}",
            crate::core::text::printable(number)
        ))),
    }
}

/// The columns of the unfulfilled orders' export, as a warehouse imports them.
pub const UNFULFILLED_COLUMNS: [&str; 16] = [
    "order_number",
    "created_at",
    "name",
    "line1",
    "line2",
    "city",
    "subdivision",
    "postal_code",
    "country",
    "phone",
    "sku",
    "plan",
    "packs",
    "quantity",
    "units",
    "subscription_id",
];

/// Orders read per query by the export.
const EXPORT_PAGE: u32 = 500;

/// Streams the orders not shipped yet, oldest first, as rows of [`UNFULFILLED_COLUMNS`], into
/// `sink`, a page of orders at a time; returns how many.
pub async fn export_unfulfilled(
    app: &App,
    sink: &mut (dyn FnMut(Vec<String>) -> std::io::Result<()> + Send),
) -> Result<u64, AppError> {
    let mut after = None;
    let mut count = 0;
    loop {
        let page = app.store().unfulfilled_orders(after, EXPORT_PAGE).await?;
        for order in &page {
            sink(unfulfilled_row(app, order))
                .map_err(|e| AppError::Unavailable(format!("writing the export failed: {e}")))?;
            count += 1;
        }
        match page.last() {
            Some(last) if page.len() == EXPORT_PAGE as usize => after = Some(last.id),
            _ => return Ok(count),
        }
    }
}

fn unfulfilled_row(app: &App, order: &Order) -> Vec<String> {
    let ship = order
        .ship_to
        .as_ref()
        .map(crate::core::address::Address::raw);
    let text = |value: Option<String>| crate::finance::csv_text(&value.unwrap_or_default());
    let sku = app
        .catalog()
        .plan(order.plan.as_str())
        .map(|p| p.product_sku.clone())
        .unwrap_or_default();
    vec![
        order.order_number.clone(),
        order
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        text(ship.as_ref().map(|a| a.name.clone())),
        text(ship.as_ref().map(|a| a.line1.clone())),
        text(ship.as_ref().and_then(|a| a.line2.clone())),
        text(ship.as_ref().map(|a| a.city.clone())),
        // Parsed codes and phone numbers hold nothing a spreadsheet would run.
        ship.as_ref()
            .and_then(|a| a.subdivision.clone())
            .unwrap_or_default(),
        text(ship.as_ref().and_then(|a| a.postal_code.clone())),
        ship.as_ref().map(|a| a.country.clone()).unwrap_or_default(),
        ship.as_ref()
            .and_then(|a| a.phone.clone())
            .unwrap_or_default(),
        sku,
        order.plan.to_string(),
        order.packs.to_string(),
        order.quantity.to_string(),
        (u64::from(order.packs) * u64::from(order.quantity)).to_string(),
        order.subscription_id.to_string(),
    ]
}

/// The shipment or cancellation recorded for an order, if any.
pub async fn of_order(app: &App, order_number: &str) -> Result<Option<FulfillmentView>, AppError> {
    Ok(app
        .store()
        .fulfillment(order_number)
        .await?
        .as_ref()
        .map(FulfillmentView::from))
}

/// How many orders listed at most by [`late`].
pub const LATE_LISTED: u32 = 100;

/// An order billed and not shipped.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LateOrder {
    pub order_number: String,
    pub billed_at: chrono::DateTime<chrono::Utc>,
    /// Whole days since it was billed.
    pub days_waiting: i64,
    /// Where it ships (ISO 3166-1 alpha-2), when it has an address.
    pub ship_country: Option<String>,
}

/// The orders billed more than `days` days ago and not shipped yet.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LateReport {
    pub days: u32,
    pub late: i64,
    pub oldest_billed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The oldest first, at most [`LATE_LISTED`].
    pub orders: Vec<LateOrder>,
}

/// The orders billed at least `days` days ago that have not shipped (`report fulfillment`).
pub async fn late(app: &App, days: u32) -> Result<LateReport, AppError> {
    let now = app.now();
    let before = now - chrono::TimeDelta::days(i64::from(days));
    let (late, oldest, orders) = app.store().unfulfilled_summary(before, LATE_LISTED).await?;
    Ok(LateReport {
        days,
        late,
        oldest_billed_at: oldest,
        orders: orders
            .iter()
            .map(|o| LateOrder {
                order_number: o.order_number.clone(),
                billed_at: o.created_at,
                days_waiting: (now - o.created_at).num_days(),
                ship_country: o.ship_to.as_ref().map(|a| a.country.code().to_owned()),
            })
            .collect(),
    })
}
