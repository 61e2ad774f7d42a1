//! The customers' use cases: add, find by id or email, list, and show with subscriptions.

use chrono_tz::Tz;

use super::catalog::require_region;
use super::idempotency::Commit;
use super::views::{CustomerDetail, CustomerView, SubscriptionView};
use super::{App, AppError, CustomerRef, Page, PageRequest};
use crate::core::metadata::{ExternalId, Metadata, MetadataPatch, MetadataUpdate};
use crate::core::model::{Customer, CustomerUpdate, Email, NewCustomer};
use crate::core::text::{FreeText, TextError, parse_locale};
use crate::store::{CustomerFilter, SubscriptionFilter, TimeRange};

/// A new customer, parsed at the door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerInput {
    pub email: Email,
    pub name: String,
    pub time_zone: Tz,
    pub locale: String,
    pub tax_region: Option<String>,
    pub external_id: Option<ExternalId>,
    /// Keys with no value (given as `""` or null) are left out.
    pub metadata: MetadataPatch,
}

/// How many subscriptions `show` lists with a customer.
const SUBSCRIPTIONS_SHOWN: u32 = 1000;

/// The longest name a customer may have, in characters.
pub const NAME_MAX: usize = 200;

/// Adds a customer, the transaction ended by `commit`.
pub async fn create(
    app: &App,
    input: CustomerInput,
    commit: Commit<'_, CustomerView>,
) -> Result<CustomerView, AppError> {
    let name = FreeText::parse(&input.name, NAME_MAX).map_err(|e| match e {
        TextError::Empty => AppError::invalid_field("name", ": a customer needs a name"),
        other => AppError::invalid_field("name", other.to_string()),
    })?;
    let locale = parse_locale(&input.locale).map_err(|e| AppError::invalid_field("locale", e))?;
    if let Some(code) = &input.tax_region {
        require_region(app.catalog(), code)?;
    }
    let now = app.now();
    let mut tx = app.store().begin_write().await?;
    let customer = tx
        .add_customer(
            &NewCustomer {
                email: input.email,
                name: name.into_string(),
                time_zone: input.time_zone,
                locale,
                tax_region: input.tax_region,
                external_id: input.external_id,
                metadata: new_metadata(&input.metadata)?,
            },
            now,
        )
        .await?;
    let view = CustomerView::from(&customer);
    commit.finish(tx, &view, now).await?;
    Ok(view)
}

/// A new record's metadata: `patch` applied to none.
pub(super) fn new_metadata(patch: &MetadataPatch) -> Result<Metadata, AppError> {
    Metadata::default()
        .merged(patch)
        .map_err(|e| AppError::invalid(e.to_string()))
}

/// A change of a customer's details, parsed at the door; `tax_region: Some(None)` clears it,
/// as `storefront.external_id: Some(None)` clears the external id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerPatch {
    pub email: Option<Email>,
    pub name: Option<String>,
    pub time_zone: Option<Tz>,
    pub locale: Option<String>,
    pub tax_region: Option<Option<String>>,
    pub storefront: MetadataUpdate,
}

/// Changes a customer's email, name, time zone, locale, tax region, external id or metadata
/// (merged: see [`MetadataPatch`]), the transaction ended by `commit`; refused for an erased
/// customer. Their subscriptions keep their schedules (each has its own time zone); the next
/// emails use the new details.
pub async fn update(
    app: &App,
    id: i64,
    patch: CustomerPatch,
    commit: Commit<'_, CustomerView>,
) -> Result<CustomerView, AppError> {
    // An erased customer's details stay erased.
    super::privacy::refuse_if_erased(app, id, "change the details").await?;
    let name = patch
        .name
        .as_deref()
        .map(|name| {
            FreeText::parse(name, NAME_MAX)
                .map(FreeText::into_string)
                .map_err(|e| match e {
                    TextError::Empty => {
                        AppError::invalid_field("name", ": a customer needs a name")
                    }
                    other => AppError::invalid_field("name", other.to_string()),
                })
        })
        .transpose()?;
    let locale = patch
        .locale
        .as_deref()
        .map(|l| parse_locale(l).map_err(|e| AppError::invalid_field("locale", e)))
        .transpose()?;
    if let Some(Some(code)) = &patch.tax_region {
        require_region(app.catalog(), code)?;
    }
    let now = app.now();
    let mut tx = app.store().begin_write().await?;
    let customer = tx
        .update_customer(
            id,
            &CustomerUpdate {
                email: patch.email,
                name,
                time_zone: patch.time_zone,
                locale,
                tax_region: patch.tax_region,
                storefront: patch.storefront,
            },
            now,
        )
        .await?;
    let view = CustomerView::from(&customer);
    commit.finish(tx, &view, now).await?;
    Ok(view)
}

/// The customer an id or email names, or a refusal that says how to find one.
pub async fn find(app: &App, key: &CustomerRef) -> Result<Customer, AppError> {
    let found = match key {
        CustomerRef::Id(id) => app.store().customer(*id).await?,
        CustomerRef::Email(email) => app.store().customer_by_email(email).await?,
    };
    found.ok_or_else(|| {
        AppError::NotFound(format!(
            "no customer \"{key}\"; see `subsave customers list`"
        ))
    })
}

/// The id of the customer a list's filter names, when it names one.
pub async fn id_of(app: &App, key: Option<&CustomerRef>) -> Result<Option<i64>, AppError> {
    match key {
        Some(key) => Ok(Some(find(app, key).await?.id)),
        None => Ok(None),
    }
}

/// Which customers a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerQuery {
    /// Only the customer with this address (addresses are stored lower-cased, so this is
    /// case-insensitive).
    pub email: Option<Email>,
    /// Only the customer with this external id.
    pub external_id: Option<ExternalId>,
    pub created: TimeRange,
    pub updated: TimeRange,
}

pub async fn list(
    app: &App,
    query: &CustomerQuery,
    page: PageRequest,
) -> Result<Page<CustomerView>, AppError> {
    let (limit, after) = page.fetch();
    let filter = CustomerFilter {
        external_id: query.external_id.clone(),
        created: query.created,
        updated: query.updated,
        limit,
        after_id: after,
    };
    let rows = match &query.email {
        // Addresses are unique: a page of one at most, which the other filters may drop.
        Some(email) => app
            .store()
            .customer_by_email(email)
            .await?
            .into_iter()
            .filter(|c| after.is_none_or(|after| c.id > after) && filter.admits(c))
            .collect(),
        None => app.store().customers_where(&filter).await?,
    };
    Ok(Page::from_rows(rows, page.limit).map(|c| CustomerView::from(&c)))
}

pub async fn show(app: &App, key: &CustomerRef) -> Result<CustomerDetail, AppError> {
    let customer = find(app, key).await?;
    let subscriptions = app
        .store()
        .subscriptions(&SubscriptionFilter {
            customer_id: Some(customer.id),
            limit: SUBSCRIPTIONS_SHOWN,
            ..Default::default()
        })
        .await?;
    Ok(CustomerDetail {
        customer: CustomerView::from(&customer),
        subscriptions: subscriptions.iter().map(SubscriptionView::from).collect(),
    })
}

/// The longest search, in characters.
pub const SEARCH_MAX: usize = 200;

/// What a console search finds: the customer of an order number or of a subscription id typed
/// whole, and a page of the customers whose address or name contains the text.
#[derive(Debug, Clone)]
pub struct SearchResult {
    /// Exact matches (first page only): what matched, and its customer.
    pub exact: Vec<(String, CustomerView)>,
    pub customers: Page<CustomerView>,
}

pub async fn search(app: &App, text: &str, page: PageRequest) -> Result<SearchResult, AppError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > SEARCH_MAX || text.chars().any(char::is_control) {
        return Err(AppError::invalid_field(
            "q",
            format!(
                ": type part of an email address or a name, an order number or a subscription id (1-{SEARCH_MAX} characters)"
            ),
        ));
    }
    let mut exact = Vec::new();
    if page.after.is_none() {
        if let Some(order) = app.store().order(text).await? {
            let customer = find(app, &CustomerRef::Id(order.customer_id)).await?;
            exact.push((format!("order {text}"), CustomerView::from(&customer)));
        }
        if let Ok(id) = text.parse::<i64>()
            && let Some(subscription) = app.store().subscription(id).await?
        {
            let customer = find(app, &CustomerRef::Id(subscription.customer_id)).await?;
            exact.push((format!("subscription {id}"), CustomerView::from(&customer)));
        }
    }
    let (limit, after) = page.fetch();
    let rows = app.store().search_customers(text, limit, after).await?;
    Ok(SearchResult {
        exact,
        customers: Page::from_rows(rows, page.limit).map(|c| CustomerView::from(&c)),
    })
}
