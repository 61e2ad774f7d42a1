//! A customer's personal data: everything held about them (`customers export-data`, `GET
//! /v1/customers/{id}/export`), and its erasure (`customers erase`, `POST
//! /v1/customers/{id}/erase`).
//!
//! An erasure replaces the customer's name, email, street lines and phone wherever they are
//! held (the customer, their addresses, their orders' ship-to snapshots, the outbox rows about
//! them; what replaces them is [`crate::core::privacy`]'s), suppresses the emails still to be
//! sent to them, and from then on their links open nothing and they get no new subscription or
//! address. Amounts, tax region, country, subdivision, city, postal code, events and consents
//! stay: the books and the record of consent. Owns: what an export holds, and who may be
//! erased. Must not: write SQL (the store's one erasing transaction does).

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::idempotency::Commit;
use super::views::{
    AddressView, ConsentView, CreditNoteView, CustomerView, EventView, MessageView, OrderView,
    PaymentView, SubscriptionView,
};
use super::{Actor, App, AppError, CustomerRef, customers};
use crate::store::{Erasure, MessageFilter, OrderFilter, PaymentFilter, SubscriptionFilter};

/// Rows read per query while an export pages through a customer's records.
const EXPORT_PAGE: u32 = 500;

/// Everything held about one customer (docs/json.md, "Personal data").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PersonalData {
    pub exported_at: DateTime<Utc>,
    pub customer: CustomerView,
    /// When they were erased and by whom; null while they were not.
    pub erasure: Option<ErasureRecord>,
    /// The payment provider's references for them (Stripe's `cus_…` and `pm_…`), where the
    /// provider holds their card: what to give the provider to erase its own records.
    pub payment_customer_ref: Option<String>,
    pub payment_method_ref: Option<String>,
    pub addresses: Vec<AddressView>,
    /// Each subscription with everything recorded about it.
    pub subscriptions: Vec<SubscriptionData>,
}

/// One subscription of an export: its orders (with lines and ship-to snapshots), their
/// payments and credit notes, its events, the messages about it and its consents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SubscriptionData {
    pub subscription: SubscriptionView,
    pub orders: Vec<OrderView>,
    pub payments: Vec<PaymentView>,
    pub credit_notes: Vec<CreditNoteView>,
    pub events: Vec<EventView>,
    pub messages: Vec<MessageView>,
    pub consents: Vec<ConsentView>,
}

/// When a customer was erased, and by whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ErasureRecord {
    pub erased_at: DateTime<Utc>,
    pub actor: String,
}

/// What an erasure changed (docs/json.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ErasureView {
    pub customer_id: i64,
    pub erased_at: DateTime<Utc>,
    pub actor: String,
    /// Addresses whose names, street lines and phones were replaced.
    pub addresses: u64,
    /// Orders whose ship-to snapshots were.
    pub orders: u64,
    /// Outbox rows (emails and webhooks) whose recipient and payload were.
    pub messages: u64,
    /// Emails still to be sent to them, now suppressed.
    pub suppressed: u64,
}

/// Everything held about the customer `key` names, as JSON-ready views.
pub async fn export(app: &App, key: &CustomerRef) -> Result<PersonalData, AppError> {
    let customer = customers::find(app, key).await?;
    let store = app.store();
    let erasure = store
        .erasure(customer.id)
        .await?
        .map(|(erased_at, actor)| ErasureRecord { erased_at, actor });
    let addresses = every_page(
        |after| store.addresses(customer.id, EXPORT_PAGE, after),
        |a| a.id,
    )
    .await?;
    let subs = every_page(
        |after_id| {
            let filter = SubscriptionFilter {
                customer_id: Some(customer.id),
                limit: EXPORT_PAGE,
                after_id,
                ..Default::default()
            };
            async move { store.subscriptions(&filter).await }
        },
        |s| s.id,
    )
    .await?;
    let mut subscriptions = Vec::with_capacity(subs.len());
    for sub in &subs {
        subscriptions.push(subscription_data(app, sub).await?);
    }
    let refs = store.payment_refs(customer.id).await?.unwrap_or_default();
    Ok(PersonalData {
        exported_at: app.now(),
        payment_customer_ref: refs.customer_ref,
        payment_method_ref: refs.method_ref,
        customer: CustomerView::from(&customer),
        erasure,
        addresses: addresses.iter().map(AddressView::from).collect(),
        subscriptions,
    })
}

/// Every row of a keyset-paged read, page by page ([`EXPORT_PAGE`] rows each), by `id`.
async fn every_page<T, F, Fut>(mut fetch: F, id: impl Fn(&T) -> i64) -> Result<Vec<T>, AppError>
where
    F: FnMut(Option<i64>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, crate::store::StoreError>>,
{
    let mut all: Vec<T> = Vec::new();
    loop {
        let rows = fetch(all.last().map(&id)).await?;
        let done = rows.len() < EXPORT_PAGE as usize;
        all.extend(rows);
        if done {
            return Ok(all);
        }
    }
}

async fn subscription_data(
    app: &App,
    sub: &crate::core::model::Subscription,
) -> Result<SubscriptionData, AppError> {
    let store = app.store();
    let orders = every_page(
        |after_id| {
            let filter = OrderFilter {
                subscription_id: Some(sub.id),
                limit: EXPORT_PAGE,
                after_id,
                ..Default::default()
            };
            async move { store.orders(&filter).await }
        },
        |o| o.id,
    )
    .await?;
    let mut orders: Vec<OrderView> = orders.iter().map(OrderView::from).collect();
    let payments = every_page(
        |after_id| {
            let filter = PaymentFilter {
                subscription_id: Some(sub.id),
                limit: EXPORT_PAGE,
                after_id,
                ..Default::default()
            };
            async move { store.payments(&filter).await }
        },
        |p| p.id,
    )
    .await?;
    for order in &mut orders {
        order.fulfillment = Some(super::orders::fulfillment_of(app, &order.order_number).await?);
    }
    let mut credit_notes = Vec::new();
    for order in &orders {
        credit_notes.extend(
            store
                .credit_notes(order.id)
                .await?
                .iter()
                .map(CreditNoteView::from),
        );
    }
    let messages = every_page(
        |after_id| {
            let filter = MessageFilter {
                subscription_id: Some(sub.id),
                limit: EXPORT_PAGE,
                after_id,
                ..Default::default()
            };
            async move { store.messages(&filter).await }
        },
        |m| m.id,
    )
    .await?;
    Ok(SubscriptionData {
        subscription: SubscriptionView::from(sub),
        orders,
        payments: payments.iter().map(PaymentView::from).collect(),
        credit_notes,
        events: store
            .events(sub.id)
            .await?
            .iter()
            .map(EventView::from)
            .collect(),
        messages: messages.iter().map(MessageView::from).collect(),
        consents: store
            .consents(sub.id)
            .await?
            .iter()
            .map(ConsentView::from)
            .collect(),
    })
}

/// Erases the personal data of the customer `key` names, for `actor`. Refused when they are
/// already erased, or while a subscription of theirs is not cancelled (cancel it first: an
/// erased customer receives nothing, so nothing of theirs may still renew). The transaction
/// is ended by `commit`.
pub async fn erase(
    app: &App,
    actor: &Actor,
    key: &CustomerRef,
    commit: Commit<'_, ErasureView>,
) -> Result<ErasureView, AppError> {
    let customer = customers::find(app, key).await?;
    let now = app.now();
    let mut tx = app.store().begin_write().await?;
    let done = tx.erase_customer(customer.id, &actor.0, now).await?;
    let view = ErasureView::from(&done);
    commit.finish(tx, &view, now).await?;
    Ok(view)
}

impl From<&Erasure> for ErasureView {
    fn from(done: &Erasure) -> Self {
        ErasureView {
            customer_id: done.customer_id,
            erased_at: done.erased_at,
            actor: done.actor.clone(),
            addresses: done.addresses,
            orders: done.orders,
            messages: done.messages,
            suppressed: done.suppressed,
        }
    }
}

/// Refuses anything new for an erased customer (a subscription, an address, a restart), with
/// what happened; `Ok` for everyone else.
pub async fn refuse_if_erased(app: &App, customer_id: i64, what: &str) -> Result<(), AppError> {
    match app.store().erasure(customer_id).await? {
        Some((erased_at, _)) => Err(AppError::InvalidState(format!(
            "cannot {what} for customer {customer_id}: their personal data was erased on {}; an erased customer gets nothing new",
            erased_at.format("%Y-%m-%d")
        ))),
        None => Ok(()),
    }
}

/// Whether customer `customer_id` was erased (their links then open nothing).
pub async fn is_erased(app: &App, customer_id: i64) -> Result<bool, AppError> {
    Ok(app.store().erasure(customer_id).await?.is_some())
}
