//! The catalog's use cases: the plans with their subscribe-and-save prices, and a quote for
//! one renewal priced exactly as the engine would price it.

use super::AppError;
use super::views::{PlanView, QuoteView};
use crate::core::catalog::{Catalog, Plan, TaxRegion};
use crate::core::pricing::{self, AppliedCoupon, QuoteRequest};

/// What a quote is asked for: a plan, a quantity, a tax region, the orders so far (the
/// loyalty tier) and an optional coupon (its code is only its label here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteInput {
    pub plan: String,
    pub quantity: u32,
    pub region: Option<String>,
    pub orders_so_far: u32,
    pub coupon: Option<AppliedCoupon>,
}

/// Every plan of the catalog, in catalog order. The catalog use cases need no store.
pub fn plans(catalog: &Catalog) -> Result<Vec<PlanView>, AppError> {
    catalog
        .plans
        .iter()
        .map(|plan| PlanView::of(catalog, plan))
        .collect::<Result<_, _>>()
        .map_err(|e| AppError::InvalidState(format!("the catalog cannot be priced: {e}")))
}

/// One renewal, itemized.
pub fn quote(catalog: &Catalog, input: &QuoteInput) -> Result<QuoteView, AppError> {
    let plan = require_plan(catalog, &input.plan)?;
    let region = input
        .region
        .as_deref()
        .map(|code| require_region(catalog, code))
        .transpose()?;
    let request = QuoteRequest {
        plan,
        quantity: input.quantity,
        region,
        orders_so_far: input.orders_so_far,
        coupon: input.coupon.clone(),
        promised_price: None,
        promised_total: None,
    };
    let quote = pricing::quote(catalog, &request).map_err(|e| AppError::invalid(e.to_string()))?;
    Ok(QuoteView::of(
        plan.id.as_str(),
        input.quantity,
        input.region.as_deref(),
        input.orders_so_far,
        &quote,
    ))
}

/// The catalog's plan of that id, or a refusal that lists the plans there are.
pub fn require_plan<'c>(catalog: &'c Catalog, id: &str) -> Result<&'c Plan, AppError> {
    catalog.plan(id).ok_or_else(|| {
        AppError::invalid_field(
            "plan",
            format!(
                " \"{id}\": no such plan; the catalog's plans are: {}",
                catalog.plan_ids()
            ),
        )
    })
}

/// The catalog's tax region of that code, or a refusal that lists the regions there are.
pub fn require_region<'c>(catalog: &'c Catalog, code: &str) -> Result<&'c TaxRegion, AppError> {
    catalog
        .require_tax_region(code)
        .map_err(|e| AppError::invalid_field("region", format!(" {e}")))
}
