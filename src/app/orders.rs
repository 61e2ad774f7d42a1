//! The orders' use cases: list, show with lines, and the streamed finance export.

use chrono::NaiveDate;

use super::views::{OrderFulfillmentView, OrderView};
use super::{App, AppError, CustomerRef, Page, PageRequest, customers};
use crate::store::OrderFilter;

/// One row of the export: the `finance_orders` view's stable columns (docs/finance.md).
pub use crate::store::FinanceOrder as ExportRow;

/// Which orders a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderQuery {
    pub subscription_id: Option<i64>,
    pub customer: Option<CustomerRef>,
    /// Only orders written in this range.
    pub created: crate::store::TimeRange,
}

pub async fn list(
    app: &App,
    query: &OrderQuery,
    page: PageRequest,
) -> Result<Page<OrderView>, AppError> {
    let customer_id = customers::id_of(app, query.customer.as_ref()).await?;
    let (limit, after_id) = page.fetch();
    let rows = app
        .store()
        .orders(&OrderFilter {
            subscription_id: query.subscription_id,
            customer_id,
            limit,
            after_id,
            lag_ok: true,
            created: query.created,
        })
        .await?;
    Ok(Page::from_rows(rows, page.limit).map(|o| OrderView::from(&o)))
}

pub async fn show(app: &App, order_number: &str) -> Result<OrderView, AppError> {
    let order = app.store().order(order_number).await?.ok_or_else(|| {
        AppError::NotFound(format!(
            "no order {order_number}; see `subsave orders list`"
        ))
    })?;
    let mut view = OrderView::from(&order);
    view.fulfillment = Some(fulfillment_of(app, order_number).await?);
    Ok(view)
}

/// Order `order_number`'s fulfillment state (`unfulfilled` until a shipment or a
/// cancellation is recorded).
pub async fn fulfillment_of(
    app: &App,
    order_number: &str,
) -> Result<OrderFulfillmentView, AppError> {
    let recorded = app.store().fulfillment(order_number).await?;
    Ok(OrderFulfillmentView::of(recorded.as_ref()))
}

/// Streams the `finance_orders` rows billed in `from..=to` into `sink`, one at a time, and
/// returns how many there were.
pub async fn export(
    app: &App,
    from: NaiveDate,
    to: NaiveDate,
    sink: &mut (dyn FnMut(ExportRow) -> std::io::Result<()> + Send),
) -> Result<u64, AppError> {
    check_range(from, to)?;
    Ok(app.store().export_orders(from, to, sink).await?)
}

/// Refuses a date range that ends before it starts.
pub fn check_range(from: NaiveDate, to: NaiveDate) -> Result<(), AppError> {
    if from > to {
        return Err(AppError::invalid_field(
            "from",
            format!(" {from} is after --to {to}"),
        ));
    }
    Ok(())
}
