//! The read endpoints: plans, customers (by email too), subscriptions and their events,
//! orders, payments, outbox messages; customers and subscriptions by external id and by
//! `created`/`updated` ranges. Each parses its path and query into the application
//! layer's input, calls one use case and returns its view; lists are keyset pages, which
//! refuse a `starting_after` naming nothing in the list. (A query parameter an endpoint does
//! not take is refused before it runs.)

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::problem::Refusals;
use super::{Api, Caller, Problem};
use crate::app::privacy::{self, PersonalData};
use crate::app::subscriptions::SubscriptionQuery;
use crate::app::views::{
    AddressView, CouponView, CreditNoteView, CustomerView, EventView, MessageView, OrderView,
    PaymentView, PlanView, SubscriptionView,
};
use crate::app::{
    CustomerRef, Listed, Page, PageRequest, addresses, catalog, customers, orders, outbox,
    payments, starts_after_a_row, subscriptions,
};
use crate::core::metadata::ExternalId;
use crate::core::model::{Email, MessageKind, MessageStatus, PaymentStatus, Scope, Status};
use crate::store::TimeRange;

/// The largest page a list returns, and the default.
pub const LIMIT_MAX: u32 = 100;
pub const LIMIT_DEFAULT: u32 = 20;

type Reply<T> = Result<Json<T>, Problem>;

/// A request's query parameters; each parsed on demand, naming the parameter when refused.
pub(super) struct Params(HashMap<String, String>);

impl Params {
    pub fn parse(raw: Option<String>) -> Result<Params, Problem> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(raw.as_deref().unwrap_or(""))
            .map(|pairs| Params(pairs.into_iter().collect()))
            .map_err(|e| {
                Problem::bad_request(None, format!("the query string does not parse: {e}"))
            })
    }

    pub fn get<T: FromStr>(
        &self,
        name: &'static str,
        expected: &str,
    ) -> Result<Option<T>, Problem> {
        self.0
            .get(name)
            .map(|text| {
                text.parse::<T>().map_err(|_| {
                    Problem::bad_request(
                        Some(name),
                        format!("{name} \"{text}\": expected {expected}"),
                    )
                })
            })
            .transpose()
    }

    /// A range of instants from two parameters, `from` (`created[gte]`: at or after) and
    /// `before` (`created[lt]`: before), each RFC 3339 (`2026-12-01T00:00:00Z`).
    pub fn range(&self, from: &'static str, before: &'static str) -> Result<TimeRange, Problem> {
        let instant = |name: &'static str| {
            self.0
                .get(name)
                .map(|text| {
                    DateTime::parse_from_rfc3339(text)
                        .map(|at| at.with_timezone(&Utc))
                        .map_err(|_| {
                            Problem::bad_request(
                                Some(name),
                                format!(
                                    "{name} \"{text}\": expected an RFC 3339 instant, e.g. 2026-12-01T00:00:00Z"
                                ),
                            )
                        })
                })
                .transpose()
        };
        Ok(TimeRange {
            from: instant(from)?,
            before: instant(before)?,
        })
    }

    /// `external_id`: an id no record can have (empty, too long, control characters) finds
    /// nothing, as an email that is not one does: `Err(())` for that.
    pub fn external_id(&self) -> Result<Option<ExternalId>, ()> {
        match self.0.get("external_id") {
            Some(text) => ExternalId::parse(text).map(Some).map_err(|_| ()),
            None => Ok(None),
        }
    }

    /// `limit` (1-100, default 20) and `starting_after` (the id of the last object of the
    /// previous page: one that is not in `list` is refused).
    pub async fn page(&self, api: &Api, list: Listed) -> Result<PageRequest, Problem> {
        let limit = self
            .get::<u32>("limit", "a whole number from 1 to 100")?
            .unwrap_or(LIMIT_DEFAULT);
        if !(1..=LIMIT_MAX).contains(&limit) {
            return Err(Problem::bad_request(
                Some("limit"),
                format!("limit {limit}: expected a whole number from 1 to {LIMIT_MAX}"),
            ));
        }
        let after = self.get::<i64>(
            "starting_after",
            "the id of the last object of the previous page",
        )?;
        // Asked of the database only when there is a row to start after: the outage tracker
        // hears only of answers that came from it (a page without one would log the database
        // "available again" in the middle of an outage).
        if let Some(id) = after
            && !api.database(starts_after_a_row(&api.app, list, id).await)?
        {
            return Err(Problem::bad_request(
                Some("starting_after"),
                format!(
                    "starting_after {id}: nothing in this list has that id; pass the id of the last object of the previous page"
                ),
            ));
        }
        Ok(PageRequest { limit, after })
    }
}

/// A path id: anything but a number names nothing, like an id that does not exist.
pub(super) fn id(text: &str, what: &str) -> Result<i64, Problem> {
    text.parse()
        .map_err(|_| Problem::not_found(format!("no {what} \"{text}\"")))
}

/// The plans, as one page (the catalog is short).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Plans {
    data: Vec<PlanView>,
    has_more: bool,
}

#[utoipa::path(get, path = "/v1/plans", tag = "catalog",
    responses((status = 200, description = "The catalog's plans, as one page.", body = Plans), Refusals))]
pub async fn plans(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
) -> Reply<Plans> {
    caller.require(Scope::Read)?;
    Ok(Json(Plans {
        data: catalog::plans(api.app.catalog()).map_err(Problem::of)?,
        has_more: false,
    }))
}

#[utoipa::path(get, path = "/v1/customers", tag = "customers",
    params(
        ("email" = Option<String>, Query, description = "Only the customer with this email address (case-insensitive); an address no customer has, or that is not one, finds nobody."),
        ("external_id" = Option<String>, Query, description = "Only the customer with this external id (exact); an id no customer has finds nobody."),
        ("created[gte]" = Option<DateTime<Utc>>, Query, description = "Only customers created at or after this instant (RFC 3339)."),
        ("created[lt]" = Option<DateTime<Utc>>, Query, description = "Only customers created before this instant (RFC 3339)."),
        ("updated[gte]" = Option<DateTime<Utc>>, Query, description = "Only customers whose details, external id or metadata last changed at or after this instant (RFC 3339)."),
        ("updated[lt]" = Option<DateTime<Utc>>, Query, description = "Only customers last changed before this instant (RFC 3339)."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size, 1-100 (default 20)."),
        ("starting_after" = Option<i64>, Query, description = "The id of the last object of the previous page."),
    ),
    responses((status = 200, description = "A page of customers, by id.", body = Page<CustomerView>), Refusals))]
pub async fn customers(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Reply<Page<CustomerView>> {
    caller.require(Scope::Read)?;
    let params = Params::parse(query)?;
    let page = params.page(&api, Listed::Customers).await?;
    let created = params.range("created[gte]", "created[lt]")?;
    let updated = params.range("updated[gte]", "updated[lt]")?;
    let email = match params.get::<String>("email", "an email address")? {
        Some(text) => match text.parse::<Email>() {
            Ok(email) => Some(email),
            // No customer's address is one that does not parse.
            Err(_) => return Ok(Json(Page::empty())),
        },
        None => None,
    };
    let Ok(external_id) = params.external_id() else {
        return Ok(Json(Page::empty()));
    };
    let query = customers::CustomerQuery {
        email,
        external_id,
        created,
        updated,
    };
    Ok(Json(
        api.database(customers::list(&api.app, &query, page).await)?,
    ))
}

#[utoipa::path(get, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = i64, Path, description = "The customer's id.")),
    responses((status = 200, description = "The customer.", body = CustomerView), Refusals))]
pub async fn customer(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
) -> Reply<CustomerView> {
    caller.require(Scope::Read)?;
    let id = id(&key, "customer")?;
    let customer = api.database(customers::find(&api.app, &CustomerRef::Id(id)).await)?;
    Ok(Json(CustomerView::from(&customer)))
}

/// `GET /v1/customers/{id}/export`: everything held about a customer (admin).
#[utoipa::path(get, path = "/v1/customers/{id}/export", tag = "customers",
    params(("id" = i64, Path, description = "The customer's id.")),
    responses((status = 200, description = "Everything held about the customer: addresses, subscriptions with their orders, payments, credit notes, events, messages and consents (admin).", body = PersonalData), Refusals))]
pub async fn customer_export(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
) -> Reply<PersonalData> {
    caller.require(Scope::Admin)?;
    let id = id(&key, "customer")?;
    Ok(Json(api.database(
        privacy::export(&api.app, &CustomerRef::Id(id)).await,
    )?))
}

#[utoipa::path(get, path = "/v1/customers/{id}/addresses", tag = "customers",
    params(
        ("id" = i64, Path, description = "The customer's id."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size, 1-100 (default 20)."),
        ("starting_after" = Option<i64>, Query, description = "The id of the last address of the previous page."),
    ),
    responses((status = 200, description = "A page of the customer's ship-to addresses, oldest first.", body = Page<AddressView>), Refusals))]
pub async fn addresses(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
) -> Reply<Page<AddressView>> {
    caller.require(Scope::Read)?;
    let params = Params::parse(query)?;
    let page = params.page(&api, Listed::Addresses).await?;
    let customer = CustomerRef::Id(id(&key, "customer")?);
    Ok(Json(api.database(
        addresses::list(&api.app, &customer, page).await,
    )?))
}

#[utoipa::path(get, path = "/v1/subscriptions", tag = "subscriptions",
    params(
        ("status" = Option<String>, Query, description = "active, paused or cancelled.", pattern = "^(active|paused|cancelled)$"),
        ("customer" = Option<i64>, Query, description = "A customer's id."),
        ("plan" = Option<String>, Query, description = "A plan id, e.g. 3-pack."),
        ("external_id" = Option<String>, Query, description = "Only the subscription with this external id (exact); an id no subscription has finds nothing."),
        ("created[gte]" = Option<DateTime<Utc>>, Query, description = "Only subscriptions created at or after this instant (RFC 3339)."),
        ("created[lt]" = Option<DateTime<Utc>>, Query, description = "Only subscriptions created before this instant (RFC 3339)."),
        ("updated[gte]" = Option<DateTime<Utc>>, Query, description = "Only subscriptions last changed (by anyone: an operation, a renewal, a sweep) at or after this instant (RFC 3339)."),
        ("updated[lt]" = Option<DateTime<Utc>>, Query, description = "Only subscriptions last changed before this instant (RFC 3339)."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size, 1-100 (default 20)."),
        ("starting_after" = Option<i64>, Query, description = "The id of the last object of the previous page."),
    ),
    responses((status = 200, description = "A page of subscriptions, by id.", body = Page<SubscriptionView>), Refusals))]
pub async fn subscriptions(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Reply<Page<SubscriptionView>> {
    caller.require(Scope::Read)?;
    let params = Params::parse(query)?;
    let filter = SubscriptionQuery {
        status: params.get::<Status>("status", "active, paused or cancelled")?,
        customer: params
            .get::<i64>("customer", "a customer id")?
            .map(CustomerRef::Id),
        plan: params.get::<String>("plan", "a plan id")?,
        external_id: None,
        created: params.range("created[gte]", "created[lt]")?,
        updated: params.range("updated[gte]", "updated[lt]")?,
    };
    let page = params.page(&api, Listed::Subscriptions).await?;
    let Ok(external_id) = params.external_id() else {
        return Ok(Json(Page::empty()));
    };
    let filter = SubscriptionQuery {
        external_id,
        ..filter
    };
    Ok(Json(api.database(
        subscriptions::list(&api.app, &filter, page).await,
    )?))
}

#[utoipa::path(get, path = "/v1/subscriptions/{id}", tag = "subscriptions",
    params(("id" = i64, Path, description = "The subscription's id.")),
    responses((status = 200, description = "The subscription.", body = SubscriptionView), Refusals))]
pub async fn subscription(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
) -> Reply<SubscriptionView> {
    caller.require(Scope::Read)?;
    let sub = api.database(subscriptions::find(&api.app, id(&key, "subscription")?).await)?;
    Ok(Json(SubscriptionView::from(&sub)))
}

#[utoipa::path(get, path = "/v1/subscriptions/{id}/events", tag = "subscriptions",
    params(
        ("id" = i64, Path, description = "The subscription's id."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size, 1-100 (default 20)."),
        ("starting_after" = Option<i64>, Query, description = "The id of the last event of the previous page."),
    ),
    responses((status = 200, description = "A page of its events, oldest first.", body = Page<EventView>), Refusals))]
pub async fn events(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
) -> Reply<Page<EventView>> {
    caller.require(Scope::Read)?;
    let params = Params::parse(query)?;
    let page = params.page(&api, Listed::Events).await?;
    Ok(Json(api.database(
        subscriptions::events(&api.app, id(&key, "subscription")?, page).await,
    )?))
}

#[utoipa::path(get, path = "/v1/orders", tag = "orders",
    params(
        ("subscription" = Option<i64>, Query, description = "A subscription's id."),
        ("customer" = Option<i64>, Query, description = "A customer's id."),
        ("created[gte]" = Option<DateTime<Utc>>, Query, description = "Only orders written at or after this instant (RFC 3339)."),
        ("created[lt]" = Option<DateTime<Utc>>, Query, description = "Only orders written before this instant (RFC 3339)."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size, 1-100 (default 20)."),
        ("starting_after" = Option<i64>, Query, description = "The id of the last object of the previous page."),
    ),
    responses((status = 200, description = "A page of orders with their lines, by id.", body = Page<OrderView>), Refusals))]
pub async fn orders(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Reply<Page<OrderView>> {
    caller.require(Scope::Read)?;
    let params = Params::parse(query)?;
    let filter = orders::OrderQuery {
        subscription_id: params.get::<i64>("subscription", "a subscription id")?,
        customer: params
            .get::<i64>("customer", "a customer id")?
            .map(CustomerRef::Id),
        created: params.range("created[gte]", "created[lt]")?,
    };
    let page = params.page(&api, Listed::Orders).await?;
    Ok(Json(
        api.database(orders::list(&api.app, &filter, page).await)?,
    ))
}

#[utoipa::path(get, path = "/v1/orders/{number}", tag = "orders",
    params(("number" = String, Path, description = "The order number, e.g. BB-0000001-001.")),
    responses((status = 200, description = "The order with its lines.", body = OrderView), Refusals))]
pub async fn order(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Path(number): Path<String>,
) -> Reply<OrderView> {
    caller.require(Scope::Read)?;
    Ok(Json(api.database(orders::show(&api.app, &number).await)?))
}

/// An order's payment and credit notes.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OrderPayment {
    /// Every order has one (orders from before payments existed are `external`).
    payment: Option<PaymentView>,
    credit_notes: Vec<CreditNoteView>,
}

#[utoipa::path(get, path = "/v1/orders/{number}/payment", tag = "orders",
    params(("number" = String, Path, description = "The order number, e.g. BB-0000001-001.")),
    responses((status = 200, description = "The order's payment and its credit notes.", body = OrderPayment), Refusals))]
pub async fn order_payment(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Path(number): Path<String>,
) -> Reply<OrderPayment> {
    caller.require(Scope::Read)?;
    let (payment, credit_notes) = api.database(payments::of_order(&api.app, &number).await)?;
    Ok(Json(OrderPayment {
        payment,
        credit_notes,
    }))
}

#[utoipa::path(get, path = "/v1/payments", tag = "orders",
    params(
        ("status" = Option<String>, Query, description = "external, pending, paid, requires_action, failed, refunded or partially_refunded.", pattern = "^(external|pending|paid|requires_action|failed|refunded|partially_refunded)$"),
        ("subscription" = Option<i64>, Query, description = "A subscription's id."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size, 1-100 (default 20)."),
        ("starting_after" = Option<i64>, Query, description = "The id of the last object of the previous page."),
    ),
    responses((status = 200, description = "A page of payments, by id.", body = Page<PaymentView>), Refusals))]
pub async fn payments_list(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Reply<Page<PaymentView>> {
    caller.require(Scope::Read)?;
    let params = Params::parse(query)?;
    let filter = payments::PaymentQuery {
        status: params.get::<PaymentStatus>("status", "a payment status")?,
        subscription_id: params.get::<i64>("subscription", "a subscription id")?,
    };
    let page = params.page(&api, Listed::Payments).await?;
    Ok(Json(
        api.database(payments::list(&api.app, &filter, page).await)?,
    ))
}

#[utoipa::path(get, path = "/v1/outbox", tag = "outbox",
    params(
        ("status" = Option<String>, Query, description = "pending, sent, failed or suppressed.", pattern = "^(pending|sent|failed|suppressed)$"),
        ("kind" = Option<String>, Query, description = "A message kind, e.g. renewal_reminder.", pattern = "^(renewal_reminder|order_confirmation|subscription_created|skipped|paused|resumed|cancelled|changed|link_request|annual_notice|price_change|webhook|payment_failed|payment_action_required|payment_received)$"),
        ("subscription" = Option<i64>, Query, description = "A subscription's id."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size, 1-100 (default 20)."),
        ("starting_after" = Option<i64>, Query, description = "The id of the last object of the previous page."),
    ),
    responses((status = 200, description = "A page of outbox messages, by id (admin).", body = Page<MessageView>), Refusals))]
pub async fn messages(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Reply<Page<MessageView>> {
    caller.require(Scope::Admin)?;
    let params = Params::parse(query)?;
    let filter = outbox::MessageQuery {
        status: params.get::<MessageStatus>("status", "pending, sent, failed or suppressed")?,
        kind: params.get::<MessageKind>("kind", "a message kind")?,
        subscription_id: params.get::<i64>("subscription", "a subscription id")?,
    };
    let page = params.page(&api, Listed::Messages).await?;
    Ok(Json(
        api.database(outbox::list(&api.app, &filter, page).await)?,
    ))
}

#[utoipa::path(get, path = "/v1/outbox/{id}", tag = "outbox",
    params(("id" = i64, Path, description = "The message's id.")),
    responses((status = 200, description = "The message (admin).", body = MessageView), Refusals))]
pub async fn message(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
) -> Reply<MessageView> {
    caller.require(Scope::Admin)?;
    let message = api.database(outbox::find(&api.app, id(&key, "message")?).await)?;
    Ok(Json(MessageView::from(&message)))
}

#[utoipa::path(get, path = "/v1/coupons", tag = "coupons",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size, 1-100 (default 20)."),
        ("starting_after" = Option<i64>, Query, description = "The id of the last object of the previous page."),
    ),
    responses((status = 200, description = "A page of coupons, by id.", body = Page<CouponView>), Refusals))]
pub async fn coupons(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Reply<Page<CouponView>> {
    caller.require(Scope::Read)?;
    let params = Params::parse(query)?;
    let page = params.page(&api, Listed::Coupons).await?;
    Ok(Json(api.database(
        crate::app::coupons::list(&api.app, page).await,
    )?))
}
