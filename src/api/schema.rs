//! The OpenAPI document of `/v1` (OpenAPI 3.1, from the handlers' annotations and the views'
//! derived schemas), served at `GET /v1/openapi.json` and committed as `docs/openapi.json`,
//! and each operation's query parameters read from it (what the API takes, no more); and the
//! schemas of the core's value types, which the core does not know about: money
//! `{amount_minor, currency}`, intervals as text, rates in basis points.

use std::collections::HashMap;

use axum::http::Method;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, ServerBuilder};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use crate::core::model::CouponDuration;
use crate::core::money::{BasisPoints, Money};
use crate::core::pricing::CouponValue;
use crate::core::schedule::Interval;

fn integer(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::Integer))
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Int64,
        )))
        .description(Some(description))
}

fn string(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::String))
        .description(Some(description))
}

impl PartialSchema for Money {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .description(Some(
                "An amount: an integer in the currency's minor unit, and its ISO 4217 code.",
            ))
            .property("amount_minor", integer("e.g. 12306 for 123.06"))
            .property("currency", string("ISO 4217, e.g. USD"))
            .required("amount_minor")
            .required("currency")
            .into()
    }
}
impl ToSchema for Money {}

impl PartialSchema for Interval {
    fn schema() -> RefOr<Schema> {
        string("How often: \"30 days\", \"2 weeks\", \"1 month\".")
            .examples(["30 days"])
            .into()
    }
}
impl ToSchema for Interval {}

impl PartialSchema for BasisPoints {
    fn schema() -> RefOr<Schema> {
        integer("A percentage in basis points: 1500 is 15 %.")
            .minimum(Some(0))
            .maximum(Some(10_000))
            .into()
    }
}
impl ToSchema for BasisPoints {}

impl PartialSchema for CouponValue {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .property("percent", BasisPoints::schema())
                    .required("percent"),
            )
            .item(
                ObjectBuilder::new()
                    .property("amount", Money::schema())
                    .required("amount"),
            )
            .description(Some("{\"percent\": 1000} or {\"amount\": money}"))
            .into()
    }
}
impl ToSchema for CouponValue {}

impl PartialSchema for CouponDuration {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .property(
                "kind",
                string("once, forever or repeating").enum_values(Some([
                    "once",
                    "forever",
                    "repeating",
                ])),
            )
            .property("orders", integer("for repeating: how many orders"))
            .required("kind")
            .into()
    }
}
impl ToSchema for CouponDuration {}

/// Bearer keys from `subsave api-keys create`.
struct BearerKeys;

impl Modify for BearerKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key from `subsave api-keys create`."))
                    .build(),
            ),
        );
        openapi.servers = Some(vec![ServerBuilder::new().url("/").build()]);
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "subsave",
        description = "Subscriptions, customers, orders and the outbox of a subscribe-and-save shop. See docs/api.md.",
        version = "1"
    ),
    paths(
        super::reads::plans,
        super::writes::quote,
        super::reads::customers,
        super::writes::create_customer,
        super::reads::customer,
        super::writes::update_customer,
        super::reads::addresses,
        super::writes::add_address,
        super::reads::customer_export,
        super::writes::erase_customer,
        super::reads::coupons,
        super::writes::create_coupon,
        super::writes::disable_coupon,
        super::reads::subscriptions,
        super::writes::create_subscription,
        super::reads::subscription,
        super::writes::change,
        super::writes::act,
        super::reads::events,
        super::reads::orders,
        super::reads::order,
        super::reads::order_payment,
        super::writes::refund,
        super::writes::fulfill,
        super::reads::payments_list,
        super::writes::set_payment_method,
        super::reads::messages,
        super::reads::message,
        super::writes::retry_message,
    ),
    components(schemas(super::Problem)),
    modifiers(&BearerKeys),
    security(("bearer" = []))
)]
pub struct ApiDoc;

/// The query parameters of each documented operation, by path (spelt as the router spells
/// it: `/v1/customers/{id}`) and method. The contract is the one list of what an endpoint
/// takes; `api::known_parameters` refuses anything else.
pub(super) fn query_parameters() -> HashMap<String, HashMap<Method, Vec<String>>> {
    let query = |operation: Operation| -> Vec<String> {
        operation
            .parameters
            .unwrap_or_default()
            .into_iter()
            .filter(|p| matches!(p.parameter_in, ParameterIn::Query))
            .map(|p| p.name)
            .collect()
    };
    ApiDoc::openapi()
        .paths
        .paths
        .into_iter()
        .map(|(path, item)| {
            let methods = [
                (Method::GET, item.get),
                (Method::POST, item.post),
                (Method::PUT, item.put),
                (Method::PATCH, item.patch),
                (Method::DELETE, item.delete),
            ]
            .into_iter()
            .filter_map(|(method, operation)| operation.map(|o| (method, query(o))))
            .collect();
            (path, methods)
        })
        .collect()
}

/// The document, as served and committed.
pub(super) fn document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
}
