//! The write endpoints, each idempotent: a POST must carry an `Idempotency-Key` (1-255
//! printable characters). The key is reserved first; the response is stored by the
//! transaction that makes the change, so a replay returns exactly what the first request got
//! (with `Idempotent-Replayed: true`); the same key with another route or body is 422, and one
//! still in flight is 409. A refusal's response is stored too (nothing changed); a request
//! that ends without its response stored gives the key back however it ends: failed, or
//! dropped unanswered by the request timeout (`app::idempotency::HeldKey`).
//!
//! Each handler states only what differs: its scope, how it reads its body, which use case it
//! runs and what it answers; `idempotent` does the rest and hands it a `Run`, whose
//! `answer` gives the use case the `app::idempotency::Commit` that stores the answer with the
//! change.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::problem::Refusals;
use super::reads::id;
use super::{Api, Caller, Problem};
use crate::app::addresses::{self, AddressInput};
use crate::app::coupons::{self, CouponInput};
use crate::app::customers::{self, CustomerInput};
use crate::app::idempotency::{self, Commit, HeldKey, Reserved, Stored};
use crate::app::privacy::{self, ErasureView};
use crate::app::subscriptions::{self, Action, ChangeInput, SubscriptionInput};
use crate::app::views::{
    AddressView, ChangeView, CouponView, CreditNoteView, CustomerView, FulfillmentView,
    PaymentMethodView, QuoteView, SubscriptionView,
};
use crate::app::{Actor, AppError, CustomerRef, catalog, fulfillments, outbox, payments};
use crate::core::address::RawAddress;
use crate::core::catalog::PlanId;
use crate::core::fulfillment::RawShipment;
use crate::core::lifecycle::Start;
use crate::core::metadata::{ExternalId, MetadataPatch, MetadataUpdate};
use crate::core::model::{CouponDuration, PaymentRefs, Scope};
use crate::core::money::{BasisPoints, Money};
use crate::core::pricing::CouponValue;
use crate::core::schedule::Interval;
use crate::store::{IdempotentRequest, ReplyTo};

/// The longest idempotency key.
const KEY_MAX: usize = 255;

/// A write request as its handler and its idempotency see it: method, path, headers and body.
pub struct Write {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for Write {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Write, Response> {
        let method = request.method().clone();
        let uri = request.uri().clone();
        let headers = request.headers().clone();
        // Through `Bytes`, so that the listener's body limit applies.
        let body = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Write {
            method,
            uri,
            headers,
            body,
        })
    }
}

/// What a write's work is given: the API, the actor its changes are recorded under, the
/// request's body, and the key its response is stored for (none for a PATCH without one).
struct Run<'a> {
    api: &'a Api,
    actor: Actor,
    body: &'a Bytes,
    to: Option<ReplyTo>,
}

impl<'a> Run<'a> {
    /// The body, parsed.
    fn parse<T: for<'de> Deserialize<'de>>(&self) -> Result<T, Problem> {
        parse(self.body)
    }

    /// Runs `write`, a use case whose transaction the [`Commit`] it is given ends, and answers
    /// with what `respond` makes of its result: with a key, that response is stored in the
    /// change's transaction.
    async fn answer<'r, T, Fut>(
        &'r self,
        respond: &'r (dyn Fn(&T) -> Stored + Send + Sync),
        write: impl FnOnce(Commit<'r, T>) -> Fut,
    ) -> Result<Stored, Problem>
    where
        Fut: Future<Output = Result<T, AppError>>,
    {
        let done = self
            .api
            .database(write(Commit::to(self.to.as_ref(), respond)).await)?;
        Ok(respond(&done))
    }

    /// Stores `response`, of a write that changes nothing when run twice (a quote, payment
    /// references set again), after it ran rather than in a change's transaction.
    async fn record_after(&self, response: Stored) -> Result<Stored, Problem> {
        if let Some(to) = &self.to {
            let (status, body) = &response;
            let recorded = idempotency::record_reply(&self.api.app, to, *status, body).await;
            self.api.database(recorded)?;
        }
        Ok(response)
    }
}

/// Runs `work` once per idempotency key: reserves the key, replays or refuses a reuse, and
/// otherwise runs `work` with where its change's transaction writes the response.
async fn idempotent<'a, F, Fut>(
    api: &'a Api,
    caller: &'a Caller,
    scope: Scope,
    write: &'a Write,
    work: F,
) -> Response
where
    F: FnOnce(Run<'a>) -> Fut,
    Fut: Future<Output = Result<Stored, Problem>>,
{
    if let Err(problem) = caller.require(scope) {
        return problem.into_response();
    }
    let Write {
        method,
        uri,
        headers,
        body,
    } = write;
    let run = Run {
        api,
        actor: caller.actor(),
        body,
        to: None,
    };
    let key = match headers.get("idempotency-key").map(HeaderValue::to_str) {
        Some(Ok(key))
            if (1..=KEY_MAX).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            key.to_owned()
        }
        Some(_) => {
            return Problem::bad_request(
                Some("Idempotency-Key"),
                format!(
                    "Idempotency-Key must be 1 to {KEY_MAX} visible ASCII characters (no spaces)"
                ),
            )
            .into_response();
        }
        None if *method == Method::POST => {
            return Problem::bad_request(
                Some("Idempotency-Key"),
                "every POST needs an Idempotency-Key header (a random string, e.g. a UUID, sent again on a retry)".into(),
            )
            .into_response();
        }
        None => return run_once(work, run, None).await,
    };
    let request = IdempotentRequest {
        api_key_id: caller.0.id,
        key: key.clone(),
        route: format!("{method} {}", uri.path()),
        fingerprint: fingerprint(method.as_str(), uri.path(), body),
    };
    let reserved = idempotency::reserve(&api.app, &request, &api.database).await;
    let held = match api.database(reserved) {
        Ok(Reserved::Held(held)) => held,
        Ok(Reserved::Replay { status, body }) => {
            let mut response = json_response(status, body);
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            return response;
        }
        Ok(Reserved::Mismatch) => return Problem::idempotency_reuse(&key).into_response(),
        Ok(Reserved::InFlight) => return Problem::idempotency_in_flight(&key).into_response(),
        Err(problem) => return problem.into_response(),
    };
    run_once(work, run, Some(held)).await
}

/// Runs `work`, which must store its response for `held`'s key (in its change's transaction,
/// or after it when running it twice changes nothing: [`Run::record_after`]). With a reserved
/// key, a refusal's response is recorded, and a failure gives the key back.
async fn run_once<'a, F, Fut>(work: F, run: Run<'a>, held: Option<HeldKey>) -> Response
where
    F: FnOnce(Run<'a>) -> Fut,
    Fut: Future<Output = Result<Stored, Problem>>,
{
    let api = run.api;
    let Some(held) = held else {
        // No key (a PATCH without one): nothing to record.
        return match work(run).await {
            Ok((status, body)) => json_response(status, body),
            Err(problem) => problem.into_response(),
        };
    };
    let to = Some(held.to().clone());
    match work(Run { to, ..run }).await {
        Ok((status, body)) => {
            held.settle();
            json_response(status, body)
        }
        Err(problem) if problem.status >= 500 => {
            held.give_back().await;
            problem.into_response()
        }
        Err(problem) => {
            let body = serde_json::to_string(&problem).unwrap_or_default();
            let recorded = idempotency::record_reply(&api.app, held.to(), problem.status, &body);
            match api.database(recorded.await) {
                Ok(()) => held.settle(),
                // Nothing changed: a retry may run it again.
                Err(_) => held.give_back().await,
            }
            problem.into_response()
        }
    }
}

fn json_response(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let content_type = if status.is_success() {
        "application/json"
    } else {
        "application/problem+json"
    };
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Parses a JSON body into `T`, or a 400 that says what is wrong with it. A number with no
/// fraction (`2.0`) is a whole number, as JSON Schema counts it.
fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, Problem> {
    let unreadable = |e: serde_json::Error| {
        Problem::bad_request(None, format!("the JSON body does not parse: {e}"))
    };
    let mut value: serde_json::Value = serde_json::from_slice(body).map_err(unreadable)?;
    whole_numbers(&mut value);
    serde_json::from_value(value).map_err(unreadable)
}

/// What a request's idempotency is judged on, as a SHA-256: its method, its path, and its body
/// as canonical JSON (keys sorted at every level, no insignificant whitespace, a whole number
/// as an integer, as [`parse`] reads it), or its bytes when the body is not JSON. The same
/// JSON with its keys in another order, or spaced out, is the same request.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(format!("{method} {path}\n"));
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(mut value) => {
            whole_numbers(&mut value);
            hash.update(b"json\n");
            hash.update(serde_json::to_vec(&sorted(value)).unwrap_or_default());
        }
        Err(_) => {
            hash.update(b"bytes\n");
            hash.update(body);
        }
    }
    hash.finalize().into()
}

/// `value` with the keys of every object in order.
fn sorted(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(fields) => {
            let mut fields: Vec<_> = fields.into_iter().collect();
            fields.sort_by(|(a, _), (b, _)| a.cmp(b));
            serde_json::Value::Object(fields.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(items) => items.into_iter().map(sorted).collect(),
        other => other,
    }
}

/// Writes every number without a fraction as an integer.
fn whole_numbers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() < 9.0e15
            {
                *value = serde_json::Value::from(f as i64);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(whole_numbers),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(whole_numbers),
        _ => {}
    }
}

/// The `Idempotency-Key` header of a POST, for the OpenAPI document.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
struct IdempotencyKey {
    /// A key per intended operation (1-255 visible ASCII characters): a retry with the same
    /// key gets the first response.
    #[param(rename = "Idempotency-Key", pattern = "^[!-~]{1,255}$")]
    key: String,
}

/// The `Idempotency-Key` header of a PATCH, where it is optional.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
struct OptionalIdempotencyKey {
    /// Optional on PATCH: a retry with the same key gets the first response.
    #[param(rename = "Idempotency-Key", pattern = "^[!-~]{1,255}$")]
    key: Option<String>,
}

fn stored<T: serde::Serialize>(status: u16, view: &T) -> Stored {
    (status, serde_json::to_string(view).unwrap_or_default())
}

/// A body's `external_id`, parsed.
fn external_id(text: Option<&str>) -> Result<Option<ExternalId>, Problem> {
    text.map(ExternalId::parse)
        .transpose()
        .map_err(|e| Problem::invalid("external_id", e.to_string()))
}

/// A body's `metadata`, parsed as a change: `""` and null remove a key.
fn metadata(map: Option<Metadata>) -> Result<MetadataPatch, Problem> {
    MetadataPatch::parse(map.unwrap_or_default())
        .map_err(|e| Problem::invalid("metadata", e.to_string()))
}

/// A PATCH body's `external_id` (null clears it) and `metadata`.
fn metadata_update(
    external: Option<Option<String>>,
    map: Option<Metadata>,
) -> Result<MetadataUpdate, Problem> {
    Ok(MetadataUpdate {
        external_id: external.map(|id| external_id(id.as_deref())).transpose()?,
        metadata: metadata(map)?,
    })
}

/// Metadata as a body gives it: string values, `""` or null to remove a key.
type Metadata = BTreeMap<String, Option<String>>;

#[derive(utoipa::ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuoteBody {
    plan: String,
    #[serde(default = "one")]
    quantity: u32,
    region: Option<String>,
    /// Where it ships (ISO 3166-1 alpha-2): its shipping zone, and its tax region when
    /// `region` is absent.
    country: Option<String>,
    #[serde(default)]
    orders_so_far: u32,
}

fn one() -> u32 {
    1
}

/// `POST /v1/quotes`: one renewal's price, itemized (it changes nothing).
#[utoipa::path(post, path = "/v1/quotes", tag = "catalog",
    params(IdempotencyKey),
    request_body = QuoteBody,
    responses((status = 200, description = "One renewal's price, itemized.", body = QuoteView), Refusals))]
pub async fn quote(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    write: Write,
) -> Response {
    idempotent(&api, &caller, Scope::Read, &write, |run| async move {
        let input: QuoteBody = run.parse()?;
        let quote = catalog::quote(
            run.api.app.catalog(),
            &catalog::QuoteInput {
                plan: input.plan,
                quantity: input.quantity,
                region: input.region,
                country: input.country,
                orders_so_far: input.orders_so_far,
                coupon: None,
            },
        )
        .map_err(Problem::of)?;
        run.record_after(stored(200, &quote)).await
    })
    .await
}

#[derive(utoipa::ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerBody {
    email: String,
    name: String,
    time_zone: String,
    region: Option<String>,
    #[serde(default = "en_us")]
    locale: String,
    /// The storefront's own id for the customer: unique among customers, 1-255 characters.
    #[schema(min_length = 1, max_length = 255)]
    external_id: Option<String>,
    /// The storefront's strings: at most 50 keys of 1-40 characters, values of at most 500
    /// (a key with "" or null is left out); no control characters.
    metadata: Option<Metadata>,
}

fn en_us() -> String {
    "en-US".into()
}

/// `POST /v1/customers`.
#[utoipa::path(post, path = "/v1/customers", tag = "customers",
    params(IdempotencyKey),
    request_body = CustomerBody,
    responses((status = 201, description = "The customer created.", body = CustomerView), Refusals))]
pub async fn create_customer(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    write: Write,
) -> Response {
    idempotent(&api, &caller, Scope::Write, &write, |run| async move {
        let input: CustomerBody = run.parse()?;
        let input = CustomerInput {
            email: input
                .email
                .parse()
                .map_err(|e: String| Problem::invalid("email", e))?,
            name: input.name,
            time_zone: crate::core::schedule::parse_time_zone(&input.time_zone)
                .map_err(|e| Problem::invalid("time_zone", e.to_string()))?,
            tax_region: input.region,
            locale: input.locale,
            external_id: external_id(input.external_id.as_deref())?,
            metadata: metadata(input.metadata)?,
        };
        let respond = |view: &CustomerView| stored(201, view);
        run.answer(&respond, |commit| {
            customers::create(&run.api.app, input, commit)
        })
        .await
    })
    .await
}

#[derive(utoipa::ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressBody {
    /// The name on the parcel.
    name: String,
    line1: String,
    line2: Option<String>,
    city: String,
    /// State or province, ISO 3166-2 (US-CA, or CA with the country); required in US, CA, AU.
    subdivision: Option<String>,
    /// In the country's format (94105, K1A 0B1, SW1A 1AA, 10115, 100-0001).
    postal_code: Option<String>,
    /// ISO 3166-1 alpha-2, one the catalog ships to.
    country: String,
    phone: Option<String>,
    /// Make it the customer's default address (their first one is anyway).
    #[serde(default)]
    default: bool,
}

/// `POST /v1/customers/{id}/erase`: erases the customer's personal data (admin).
#[utoipa::path(post, path = "/v1/customers/{id}/erase", tag = "customers",
    params(
        ("id" = i64, Path, description = "The customer's id."),
        IdempotencyKey
    ),
    responses((status = 200, description = "The customer's name, email, street lines and phone replaced wherever held; their links stop working and unsent emails are suppressed (admin). Refused (409) when already erased or while a subscription of theirs is not cancelled.", body = ErasureView), Refusals))]
pub async fn erase_customer(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    write: Write,
) -> Response {
    idempotent(&api, &caller, Scope::Admin, &write, |run| async move {
        let customer = CustomerRef::Id(id(&key, "customer")?);
        let respond = |view: &ErasureView| stored(200, view);
        run.answer(&respond, |commit| {
            privacy::erase(&run.api.app, &run.actor, &customer, commit)
        })
        .await
    })
    .await
}

/// `POST /v1/customers/{id}/addresses`.
#[utoipa::path(post, path = "/v1/customers/{id}/addresses", tag = "customers",
    params(
        ("id" = i64, Path, description = "The customer's id."),
        IdempotencyKey
    ),
    request_body = AddressBody,
    responses((status = 201, description = "The address added.", body = AddressView), Refusals))]
pub async fn add_address(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    write: Write,
) -> Response {
    idempotent(&api, &caller, Scope::Write, &write, |run| async move {
        let customer = id(&key, "customer")?;
        let input: AddressBody = run.parse()?;
        let input = AddressInput {
            customer: CustomerRef::Id(customer),
            address: RawAddress {
                name: input.name,
                line1: input.line1,
                line2: input.line2,
                city: input.city,
                subdivision: input.subdivision,
                postal_code: input.postal_code,
                country: input.country,
                phone: input.phone,
            },
            make_default: input.default,
        };
        let respond = |view: &AddressView| stored(201, view);
        run.answer(&respond, |commit| {
            addresses::add(&run.api.app, input, commit)
        })
        .await
    })
    .await
}

#[derive(utoipa::ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionBody {
    customer: i64,
    plan: String,
    #[serde(default = "one")]
    quantity: u32,
    interval: Option<String>,
    /// The first renewal's local date; absent: one interval after today's first order.
    first_renewal: Option<NaiveDate>,
    /// No order yet: the next sweep bills the first cycle.
    #[serde(default)]
    start_now: bool,
    coupon: Option<String>,
    consent_channel: Option<String>,
    terms_version: Option<String>,
    /// The id of the customer's address it ships to (and is taxed by); absent: the
    /// customer's default address, if any.
    shipping_address: Option<i64>,
    /// The storefront's own id for the subscription: unique among subscriptions, 1-255
    /// characters.
    #[schema(min_length = 1, max_length = 255)]
    external_id: Option<String>,
    /// The storefront's strings: at most 50 keys of 1-40 characters, values of at most 500
    /// (a key with "" or null is left out); no control characters.
    metadata: Option<Metadata>,
}

/// `POST /v1/subscriptions`.
#[utoipa::path(post, path = "/v1/subscriptions", tag = "subscriptions",
    params(IdempotencyKey),
    request_body = SubscriptionBody,
    responses((status = 201, description = "The subscription created, its consent recorded.", body = SubscriptionView), Refusals))]
pub async fn create_subscription(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    write: Write,
) -> Response {
    idempotent(&api, &caller, Scope::Write, &write, |run| async move {
        let input: SubscriptionBody = run.parse()?;
        let start = match (input.first_renewal, input.start_now) {
            (Some(_), true) => {
                return Err(Problem::invalid(
                    "start_now",
                    "give first_renewal or start_now, not both".into(),
                ));
            }
            (Some(date), false) => Start::FirstRenewalOn(date),
            (None, true) => Start::Now,
            (None, false) => Start::AfterCheckout,
        };
        let interval = input
            .interval
            .map(|i| i.parse::<Interval>())
            .transpose()
            .map_err(|e| Problem::invalid("interval", e.to_string()))?;
        let input = SubscriptionInput {
            customer: CustomerRef::Id(input.customer),
            plan: input.plan,
            quantity: input.quantity,
            interval,
            start,
            coupon: input.coupon,
            consent_channel: Some(input.consent_channel.unwrap_or_else(|| "api".into())),
            terms_version: input.terms_version,
            ship_to: input.shipping_address,
            external_id: external_id(input.external_id.as_deref())?,
            metadata: metadata(input.metadata)?,
        };
        let respond = |view: &SubscriptionView| stored(201, view);
        run.answer(&respond, |commit| {
            subscriptions::create(&run.api.app, &run.actor, input, commit)
        })
        .await
    })
    .await
}

#[derive(utoipa::ToSchema, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    until: Option<NaiveDate>,
    reason: Option<String>,
    to: Option<NaiveDate>,
}

/// `POST /v1/subscriptions/{id}/{action}`: skip, pause, resume, cancel, reschedule, renew-now,
/// restart.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/{action}", tag = "subscriptions",
    params(
        ("id" = i64, Path, description = "The subscription's id."),
        ("action" = String, Path, description = "skip, pause, resume, cancel, reschedule, renew-now or restart (a cancelled subscription, within web.restart_days of its cancellation: at today's price, with a fresh consent)."),
        IdempotencyKey
    ),
    request_body(content = Option<ActionBody>, description = "pause: {until?}; cancel: {reason}; reschedule: {to}; others: nothing."),
    responses((status = 200, description = "The subscription after the action.", body = SubscriptionView), Refusals))]
pub async fn act(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Path((key, action)): Path<(String, String)>,
    write: Write,
) -> Response {
    idempotent(&api, &caller, Scope::Write, &write, |run| async move {
        let id = id(&key, "subscription")?;
        let input: ActionBody = if run.body.is_empty() {
            ActionBody::default()
        } else {
            run.parse::<Option<ActionBody>>()?.unwrap_or_default()
        };
        let respond = |view: &SubscriptionView| stored(200, view);
        if action == "restart" {
            let restart =
                |commit| subscriptions::restart(&run.api.app, &run.actor, id, None, commit);
            return run.answer(&respond, restart).await;
        }
        let action = match action.as_str() {
            "skip" => Action::Skip,
            "pause" => Action::Pause { until: input.until },
            "resume" => Action::Resume,
            "cancel" => Action::Cancel {
                reason: input.reason.unwrap_or_default(),
            },
            "reschedule" => Action::Reschedule {
                to: input
                    .to
                    .ok_or_else(|| Problem::invalid("to", "the new date, YYYY-MM-DD".into()))?,
            },
            "renew-now" => Action::RenewNow,
            other => {
                return Err(Problem::not_found(format!(
                    "no action \"{other}\"; the actions are skip, pause, resume, cancel, reschedule, renew-now and restart"
                )));
            }
        };
        let perform =
            |commit| subscriptions::perform(&run.api.app, &run.actor, id, &action, commit);
        run.answer(&respond, perform).await
    })
    .await
}

#[derive(utoipa::ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeBody {
    plan: Option<String>,
    quantity: Option<u32>,
    interval: Option<String>,
    /// The id of another of the customer's addresses to ship to (and tax by).
    shipping_address: Option<i64>,
    /// true: change nothing, answer what the change would do (the next renewal's quote before
    /// and after), so that a new price can be shown before it is confirmed.
    #[serde(default)]
    preview: bool,
    /// The storefront's own id for the subscription (unique among subscriptions), or null to
    /// clear it. Changed in a request of its own, with `metadata` but not with a plan,
    /// quantity, interval or address.
    #[serde(default, deserialize_with = "present")]
    #[schema(min_length = 1, max_length = 255)]
    external_id: Option<Option<String>>,
    /// Merged into the subscription's metadata: a key with a string is set, a key with "" or
    /// null is removed, keys not named are kept (at most 50 in all; keys of 1-40 characters,
    /// values of at most 500). As `external_id`, in a request of its own.
    metadata: Option<Metadata>,
}

/// `PATCH /v1/subscriptions/{id}`: plan, quantity, interval or shipping address, from the
/// next renewal on; or, in a request of their own, the external id and metadata.
#[utoipa::path(patch, path = "/v1/subscriptions/{id}", tag = "subscriptions",
    params(
        ("id" = i64, Path, description = "The subscription's id."),
        OptionalIdempotencyKey
    ),
    request_body = ChangeBody,
    responses((status = 200, description = "The subscription, changed from its next renewal (or, with `preview`, as it would be: nothing changed), with the next renewal's quote before and after (the same quote twice when only the external id or metadata changed).", body = ChangeView), Refusals))]
pub async fn change(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    write: Write,
) -> Response {
    idempotent(&api, &caller, Scope::Write, &write, |run| async move {
        let id = id(&key, "subscription")?;
        let input: ChangeBody = run.parse()?;
        let storefront = metadata_update(input.external_id, input.metadata)?;
        if !storefront.is_empty() {
            let terms = [
                ("plan", input.plan.is_some()),
                ("quantity", input.quantity.is_some()),
                ("interval", input.interval.is_some()),
                ("shipping_address", input.shipping_address.is_some()),
                ("preview", input.preview),
            ];
            if let Some((field, _)) = terms.into_iter().find(|(_, given)| *given) {
                return Err(Problem::invalid(
                    field,
                    "change external_id and metadata in a request of their own, without plan, quantity, interval, shipping_address or preview".into(),
                ));
            }
            let respond = |view: &ChangeView| stored(200, view);
            let update = |commit| {
                subscriptions::update_metadata_quoted(&run.api.app, id, &storefront, commit)
            };
            return run.answer(&respond, update).await;
        }
        let change = ChangeInput {
            plan: input
                .plan
                .map(|p| PlanId::parse(&p))
                .transpose()
                .map_err(|e| Problem::invalid("plan", e))?,
            quantity: input.quantity,
            interval: input
                .interval
                .map(|i| i.parse::<Interval>())
                .transpose()
                .map_err(|e| Problem::invalid("interval", e.to_string()))?,
            ship_to: input.shipping_address,
        };
        if input.preview {
            let preview = subscriptions::preview_change(&run.api.app, id, &change).await;
            return Ok(stored(200, &run.api.database(preview)?));
        }
        let respond = |view: &ChangeView| stored(200, view);
        let changing = |commit| {
            subscriptions::change_quoted(&run.api.app, &run.actor, id, &change, commit)
        };
        run.answer(&respond, changing).await
    })
    .await
}

#[derive(utoipa::ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerPatchBody {
    #[schema(format = "email")]
    email: Option<String>,
    name: Option<String>,
    time_zone: Option<String>,
    locale: Option<String>,
    /// A tax region code, or null to clear it.
    #[serde(default, deserialize_with = "present")]
    region: Option<Option<String>>,
    /// The storefront's own id for the customer (unique among customers), or null to clear it.
    #[serde(default, deserialize_with = "present")]
    #[schema(min_length = 1, max_length = 255)]
    external_id: Option<Option<String>>,
    /// Merged into the customer's metadata: a key with a string is set, a key with "" or null
    /// is removed, keys not named are kept (at most 50 in all; keys of 1-40 characters, values
    /// of at most 500).
    metadata: Option<Metadata>,
}

/// A field that is present (even as null) is `Some`; an absent one stays `None`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[utoipa::path(patch, path = "/v1/customers/{id}", tag = "customers",
    params(
        ("id" = i64, Path, description = "The customer's id."),
        OptionalIdempotencyKey
    ),
    request_body = CustomerPatchBody,
    responses((status = 200, description = "The customer, changed.", body = CustomerView), Refusals))]
pub async fn update_customer(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    write: Write,
) -> Response {
    idempotent(&api, &caller, Scope::Write, &write, |run| async move {
        let id = id(&key, "customer")?;
        let input: CustomerPatchBody = run.parse()?;
        let patch = customers::CustomerPatch {
            email: input
                .email
                .map(|e| e.parse())
                .transpose()
                .map_err(|e: String| Problem::invalid("email", e))?,
            name: input.name,
            time_zone: input
                .time_zone
                .map(|tz| crate::core::schedule::parse_time_zone(&tz))
                .transpose()
                .map_err(|e| Problem::invalid("time_zone", e.to_string()))?,
            locale: input.locale,
            tax_region: input.region,
            storefront: metadata_update(input.external_id, input.metadata)?,
        };
        let respond = |view: &CustomerView| stored(200, view);
        run.answer(&respond, |commit| {
            customers::update(&run.api.app, id, patch, commit)
        })
        .await
    })
    .await
}

#[derive(utoipa::ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CouponBody {
    /// 1-32 letters, digits, '-' or '_' (case-insensitive).
    code: String,
    /// Percent off, in basis points (1000 is 10 %); or give amount_minor.
    #[schema(minimum = 1, maximum = 10000)]
    percent: Option<u32>,
    /// A fixed amount off, in the minor unit of `currency`; or give percent. It applies only
    /// to orders in that currency.
    #[schema(minimum = 1)]
    amount_minor: Option<i64>,
    /// The ISO 4217 currency of amount_minor, one the catalog prices in (a market's); the
    /// default market's when left out.
    #[schema(example = "EUR")]
    currency: Option<String>,
    /// once, forever or repeating (then duration_orders).
    #[schema(pattern = "^(once|forever|repeating)$")]
    duration: Option<String>,
    #[schema(minimum = 1)]
    duration_orders: Option<u32>,
    plan: Option<String>,
    /// The last day (UTC) it can be redeemed.
    expires: Option<NaiveDate>,
    #[schema(minimum = 1)]
    max_redemptions: Option<u32>,
}

#[utoipa::path(post, path = "/v1/coupons", tag = "coupons",
    params(IdempotencyKey),
    request_body = CouponBody,
    responses((status = 201, description = "The coupon created.", body = CouponView), Refusals))]
pub async fn create_coupon(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    write: Write,
) -> Response {
    idempotent(&api, &caller, Scope::Write, &write, |run| async move {
        let input: CouponBody = run.parse()?;
        let value = match (input.percent, input.amount_minor) {
            (Some(bp), None) => CouponValue::Percent(BasisPoints::new(bp).ok_or_else(|| {
                Problem::invalid("percent", format!("{bp}: at most 10000 (100 %)"))
            })?),
            (None, Some(minor)) => {
                let currency = match input.currency.as_deref() {
                    Some(code) => run
                        .api
                        .app
                        .catalog()
                        .priced_currency(code)
                        .map_err(|e| Problem::invalid("currency", e))?,
                    None => run.api.app.catalog().currency,
                };
                CouponValue::Amount(Money::from_minor(minor, currency))
            }
            _ => {
                return Err(Problem::invalid(
                    "percent",
                    "give percent (basis points) or amount_minor, one of them".into(),
                ));
            }
        };
        let duration = match (
            input.duration.as_deref().unwrap_or("once"),
            input.duration_orders,
        ) {
            ("once", None) => CouponDuration::Once,
            ("forever", None) => CouponDuration::Forever,
            ("repeating", Some(n)) if n > 0 => CouponDuration::Repeating(n),
            _ => {
                return Err(Problem::invalid(
                    "duration",
                    "once, forever, or repeating with duration_orders (1 or more)".into(),
                ));
            }
        };
        let input = CouponInput {
            code: input.code,
            value,
            duration,
            plan: input.plan,
            expires: input.expires,
            max_redemptions: input.max_redemptions,
        };
        let respond = |view: &CouponView| stored(201, view);
        run.answer(&respond, |commit| {
            coupons::create(&run.api.app, input, commit)
        })
        .await
    })
    .await
}

#[utoipa::path(post, path = "/v1/coupons/{code}/disable", tag = "coupons",
    params(
        ("code" = String, Path, description = "The coupon's code."),
        IdempotencyKey
    ),
    responses((status = 200, description = "The coupon, disabled: no new redemptions.", body = CouponView), Refusals))]
pub async fn disable_coupon(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Path(code): Path<String>,
    write: Write,
) -> Response {
    idempotent(&api, &caller, Scope::Write, &write, |run| async move {
        let respond = |view: &CouponView| stored(200, view);
        run.answer(&respond, |commit| {
            coupons::disable(&run.api.app, &code, commit)
        })
        .await
    })
    .await
}

/// How many messages a retry put back in the queue.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Retried {
    retried: u64,
}

#[utoipa::path(post, path = "/v1/outbox/{id}/retry", tag = "outbox",
    params(
        ("id" = i64, Path, description = "A failed message's id."),
        IdempotencyKey
    ),
    responses((status = 200, description = "The message is queued again (admin).", body = Retried), Refusals))]
pub async fn retry_message(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    write: Write,
) -> Response {
    idempotent(&api, &caller, Scope::Admin, &write, |run| async move {
        let id = id(&key, "message")?;
        // A message that is not failed is refused (and that refusal recorded as any other).
        let respond = |n: &u64| stored(200, &Retried { retried: *n });
        run.answer(&respond, |commit| {
            outbox::retry(&run.api.app, Some(id), commit)
        })
        .await
    })
    .await
}

#[derive(utoipa::ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    /// How much, in minor units of the order's currency; all that is left when absent.
    #[schema(minimum = 1)]
    amount_minor: Option<i64>,
    /// Why, for the credit note (1-500 characters).
    reason: String,
}

/// `POST /v1/orders/{number}/refunds`: refunds through the order's payment provider and
/// writes a credit note.
#[utoipa::path(post, path = "/v1/orders/{number}/refunds", tag = "orders",
    params(
        ("number" = String, Path, description = "The order number, e.g. BB-0000001-001."),
        IdempotencyKey
    ),
    request_body = RefundBody,
    responses((status = 201, description = "The credit note written (admin).", body = CreditNoteView), Refusals))]
pub async fn refund(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Path(number): Path<String>,
    write: Write,
) -> Response {
    idempotent(&api, &caller, Scope::Admin, &write, |run| async move {
        let input: RefundBody = run.parse()?;
        let currency = run
            .api
            .database(payments::order_currency(&run.api.app, &number).await)?;
        let respond = |view: &CreditNoteView| stored(201, view);
        run.answer(&respond, |commit| {
            payments::refund(
                &run.api.app,
                &number,
                input.amount_minor.map(|m| Money::from_minor(m, currency)),
                &input.reason,
                &run.actor,
                commit,
            )
        })
        .await
    })
    .await
}

#[derive(utoipa::ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FulfillmentBody {
    /// USPS, UPS, FedEx, DHL, or another carrier's name.
    carrier: String,
    /// Letters, digits and hyphens.
    tracking_number: String,
    /// An https:// tracking page; made for the known carriers when absent.
    tracking_url: Option<String>,
    /// When it left: RFC 3339 or a date; now when absent.
    shipped_at: Option<String>,
}

/// `POST /v1/orders/{number}/fulfillments`: the order's shipment. Recorded once: the same
/// shipment again answers 200 and changes nothing; another one is refused (409).
#[utoipa::path(post, path = "/v1/orders/{number}/fulfillments", tag = "orders",
    params(
        ("number" = String, Path, description = "The order number, e.g. BB-0000001-001."),
        IdempotencyKey
    ),
    request_body = FulfillmentBody,
    responses(
        (status = 201, description = "The shipment recorded: the order is fulfilled, the customer emailed.", body = FulfillmentView),
        (status = 200, description = "This shipment was recorded before; nothing changed.", body = FulfillmentView),
        Refusals
    ))]
pub async fn fulfill(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Path(number): Path<String>,
    write: Write,
) -> Response {
    idempotent(&api, &caller, Scope::Write, &write, |run| async move {
        let input: FulfillmentBody = run.parse()?;
        let raw = RawShipment {
            carrier: input.carrier,
            tracking_number: input.tracking_number,
            tracking_url: input.tracking_url,
            shipped_at: input.shipped_at,
        };
        // The same shipment again changed nothing: 200.
        let respond =
            |(view, new): &fulfillments::Recorded| stored(if *new { 201 } else { 200 }, view);
        run.answer(&respond, |commit| {
            fulfillments::record(&run.api.app, &run.actor, &number, &raw, commit)
        })
        .await
    })
    .await
}

#[derive(utoipa::ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentMethodBody {
    /// The provider's customer, e.g. cus_Nffrt1.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,255}$")]
    customer_ref: String,
    /// The saved payment method, e.g. pm_1Nffrt1.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,255}$")]
    method_ref: String,
}

/// `POST /v1/customers/{id}/payment_method`: the customer's references at the payment
/// provider; their declined payments are tried again at once.
#[utoipa::path(post, path = "/v1/customers/{id}/payment_method", tag = "customers",
    params(
        ("id" = i64, Path, description = "The customer's id."),
        IdempotencyKey
    ),
    request_body = PaymentMethodBody,
    responses((status = 200, description = "The references set, and the payments tried again.", body = PaymentMethodView), Refusals))]
pub async fn set_payment_method(
    State(api): State<Arc<Api>>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    write: Write,
) -> Response {
    idempotent(&api, &caller, Scope::Write, &write, |run| async move {
        let id = id(&key, "customer")?;
        let input: PaymentMethodBody = run.parse()?;
        let refs = PaymentRefs {
            customer_ref: Some(input.customer_ref),
            method_ref: Some(input.method_ref),
        };
        let view = run.api.database(
            payments::set_payment_method(&run.api.app, &CustomerRef::Id(id), refs).await,
        )?;
        // Setting the same references again changes nothing.
        run.record_after(stored(200, &view)).await
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::fingerprint;

    #[test]
    fn the_same_json_is_the_same_request_whatever_its_order_and_spacing() {
        let one = |body: &str| fingerprint("POST", "/v1/customers", body.as_bytes());
        let first = one(
            r#"{"email":"ada@example.com","name":"Ada","address":{"zip":"10115","city":"Berlin"},"tags":[2,1]}"#,
        );
        assert_eq!(
            first,
            one(
                "{ \"tags\": [2, 1],\n \"address\": {\"city\": \"Berlin\", \"zip\": \"10115\"}, \"name\": \"Ada\", \"email\": \"ada@example.com\" }"
            )
        );
        assert_ne!(
            first,
            one(
                r#"{"email":"ada@example.com","name":"Ada","address":{"zip":"10115","city":"Berlin"},"tags":[1,2]}"#
            ),
            "an array keeps its order"
        );
        assert_ne!(
            first,
            one(
                r#"{"email":"ada@example.com","name":"Ada L.","address":{"zip":"10115","city":"Berlin"},"tags":[2,1]}"#
            )
        );
        assert_eq!(
            one(r#"{"quantity": 2}"#),
            one(r#"{"quantity":2.0}"#),
            "read the same"
        );
        assert_eq!(
            one(r#""\u00e9""#),
            one("\"\u{e9}\""),
            "one string, however escaped"
        );
    }

    #[test]
    fn method_path_and_raw_bodies_count_too() {
        let body = br#"{"reason": "moving"}"#;
        let cancel = fingerprint("POST", "/v1/subscriptions/1/cancel", body);
        assert_ne!(
            cancel,
            fingerprint("POST", "/v1/subscriptions/2/cancel", body)
        );
        assert_ne!(
            cancel,
            fingerprint("PATCH", "/v1/subscriptions/1/cancel", body)
        );
        let not_json = fingerprint("POST", "/v1/quotes", b"plan=1-pack");
        assert_eq!(not_json, fingerprint("POST", "/v1/quotes", b"plan=1-pack"));
        assert_ne!(not_json, fingerprint("POST", "/v1/quotes", b"plan=2-pack"));
        assert_ne!(
            fingerprint("POST", "/v1/quotes", b""),
            fingerprint("POST", "/v1/quotes", b"{}")
        );
    }
}
