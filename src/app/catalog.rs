//! The catalog's use cases: the plans with their subscribe-and-save prices, and a quote for
//! one renewal priced exactly as the engine would price it.

use super::AppError;
use super::views::{PlanView, QuoteView};
use crate::core::address::Country;
use crate::core::catalog::{Catalog, Plan, TaxRegion};
use crate::core::pricing::{self, AppliedCoupon, QuoteRequest};

/// What a quote is asked for: a plan, a quantity, a tax region, a destination country, the
/// orders so far (the loyalty tier) and an optional coupon (its code is only its label here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteInput {
    pub plan: String,
    pub quantity: u32,
    pub region: Option<String>,
    /// Where it ships (ISO 3166-1 alpha-2): its shipping zone, and its tax region when
    /// `region` is not given.
    pub country: Option<String>,
    pub orders_so_far: u32,
    pub coupon: Option<AppliedCoupon>,
}

/// Every plan of the catalog, in catalog order, at the default market's prices. The catalog
/// use cases need no store.
pub fn plans(catalog: &Catalog) -> Result<Vec<PlanView>, AppError> {
    plans_shipped_to(catalog, None)
}

/// Every plan of the catalog, in catalog order, at the prices of the market that ships to
/// `country` (none: the default market's).
pub fn plans_shipped_to(
    catalog: &Catalog,
    country: Option<Country>,
) -> Result<Vec<PlanView>, AppError> {
    let market = catalog.market_for(country);
    catalog
        .plans
        .iter()
        .map(|plan| PlanView::in_market(catalog, plan, market))
        .collect::<Result<_, _>>()
        .map_err(|e| AppError::InvalidState(format!("the catalog cannot be priced: {e}")))
}

/// One renewal, itemized.
pub fn quote(catalog: &Catalog, input: &QuoteInput) -> Result<QuoteView, AppError> {
    let plan = require_plan(catalog, &input.plan)?;
    let destination = input
        .country
        .as_deref()
        .map(|code| Country::parse(code).map_err(|e| AppError::invalid_field("country", e)))
        .transpose()?;
    if let Some(why) = destination.and_then(|c| catalog.refuse_destination(c)) {
        return Err(AppError::invalid_field("country", why));
    }
    let region = match (input.region.as_deref(), destination) {
        (Some(code), _) => Some(require_region(catalog, code)?),
        (None, Some(country)) => catalog.tax_region(country.code()),
        (None, None) => None,
    };
    let request = QuoteRequest {
        plan,
        quantity: input.quantity,
        region,
        destination,
        orders_so_far: input.orders_so_far,
        coupon: input.coupon.clone(),
        promised_price: None,
        promised_total: None,
    };
    let quote = pricing::quote(catalog, &request).map_err(|e| AppError::invalid(e.to_string()))?;
    Ok(QuoteView::of(
        plan.id.as_str(),
        input.quantity,
        region.map(|r| r.code.as_str()),
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

/// What `check-config` found of the database, without changing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseCheck {
    /// Reachable, its schema current, and every plan its subscriptions use is in the catalog.
    Fits,
    /// An SQLite file that does not exist yet: `subsave migrate` (or the first start) makes it.
    NotCreated(String),
    /// The database did not answer (or not in time): nothing about it was checked.
    NotChecked(String),
    /// The schema is missing or behind: the plans were not checked.
    SchemaBehind(String),
}

/// How long `check-config` waits for the database before saying it did not check it.
const DATABASE_CHECK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Checks what a start would meet in the database: an SQLite folder that does not exist and a
/// catalog that lacks plans subscriptions use are refused (`InvalidState`: a setup error);
/// a database that does not answer or has no schema yet is reported, not refused.
pub async fn check_database(settings: &crate::config::Settings) -> Result<DatabaseCheck, AppError> {
    let url = &settings.database.url;
    if let Some(reason) = url.unusable() {
        return Err(AppError::InvalidState(format!(
            "database.url {}: {reason}; create the folder, or point database.url at one that exists",
            url.redacted()
        )));
    }
    if let Some(file) = url.sqlite_file()
        && !file.exists()
    {
        return Ok(DatabaseCheck::NotCreated(format!(
            "{} does not exist yet; `subsave migrate` or the first start creates it",
            file.display()
        )));
    }
    let store = match tokio::time::timeout(
        DATABASE_CHECK_WAIT,
        crate::store::connect(&settings.database),
    )
    .await
    {
        Ok(Ok(store)) => store,
        Ok(Err(error)) => return Ok(DatabaseCheck::NotChecked(error.to_string())),
        Err(_) => {
            return Ok(DatabaseCheck::NotChecked(format!(
                "no answer within {} s",
                DATABASE_CHECK_WAIT.as_secs()
            )));
        }
    };
    match store.ready().await {
        Ok(()) => {}
        Err(crate::store::NotReady::Schema(reason)) => {
            return Ok(DatabaseCheck::SchemaBehind(reason));
        }
        Err(error) => return Ok(DatabaseCheck::NotChecked(error.to_string())),
    }
    match crate::engine::check_plans(store.as_ref(), &settings.catalog).await {
        Ok(()) => Ok(DatabaseCheck::Fits),
        Err(crate::engine::PlanCheckError::Missing(reason)) => Err(AppError::InvalidState(reason)),
        Err(crate::engine::PlanCheckError::Store(error)) => {
            Ok(DatabaseCheck::NotChecked(error.to_string()))
        }
    }
}
