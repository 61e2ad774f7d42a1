//! The customers' ship-to addresses: add (parsed once here from what the door received, and
//! refused when the shop does not ship to its country), list, make one the default, and find
//! the one a subscription names.

use super::idempotency::Commit;
use super::views::AddressView;
use super::{App, AppError, CustomerRef, Page, PageRequest};
use crate::core::address::{Address, RawAddress};
use crate::core::model::CustomerAddress;

/// An address to add to a customer, as the door received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressInput {
    pub customer: CustomerRef,
    pub address: RawAddress,
    /// Make it the default (a customer's first address is the default anyway).
    pub make_default: bool,
}

/// Parses an address and checks that the shop ships there: the one gate every door's address
/// passes.
pub fn parse(app: &App, raw: &RawAddress) -> Result<Address, AppError> {
    let address =
        Address::parse(raw).map_err(|e| AppError::invalid_field(e.field, e.problem.clone()))?;
    match app.catalog().refuse_destination(address.country) {
        Some(why) => Err(AppError::invalid_field("country", why)),
        None => Ok(address),
    }
}

/// Adds an address to a customer, the transaction ended by `commit`.
pub async fn add(
    app: &App,
    input: AddressInput,
    commit: Commit<'_, AddressView>,
) -> Result<AddressView, AppError> {
    let address = parse(app, &input.address)?;
    let customer = super::customers::find(app, &input.customer).await?;
    super::privacy::refuse_if_erased(app, customer.id, "add an address").await?;
    let now = app.now();
    let mut tx = app.store().begin_write().await?;
    let added = tx
        .add_address(customer.id, &address, input.make_default, now)
        .await?;
    let view = AddressView::from(&added);
    commit.finish(tx, &view, now).await?;
    Ok(view)
}

/// A page of a customer's addresses, oldest first.
pub async fn list(
    app: &App,
    customer: &CustomerRef,
    page: PageRequest,
) -> Result<Page<AddressView>, AppError> {
    let customer = super::customers::find(app, customer).await?;
    let (limit, after) = page.fetch();
    let rows = app.store().addresses(customer.id, limit, after).await?;
    Ok(Page::from_rows(rows, page.limit).map(|a| AddressView::from(&a)))
}

/// Makes one of a customer's addresses the default for their new subscriptions (their
/// subscriptions keep the addresses they ship to).
pub async fn set_default(
    app: &App,
    customer: &CustomerRef,
    address_id: i64,
) -> Result<AddressView, AppError> {
    let customer = super::customers::find(app, customer).await?;
    let address = app
        .store()
        .set_default_address(customer.id, address_id)
        .await?;
    Ok(AddressView::from(&address))
}

/// The address of that id, or a refusal that says how to find one.
pub async fn find(app: &App, id: i64) -> Result<CustomerAddress, AppError> {
    app.store().address(id).await?.ok_or_else(|| {
        AppError::NotFound(format!(
            "no address {id}; see `subsave customers addresses list CUSTOMER`"
        ))
    })
}

/// The subscriptions (not cancelled) that ship without an address, taxed by their
/// customer's region instead: how many, and the first `limit` ids.
pub async fn without_address(app: &App, limit: u32) -> Result<(i64, Vec<i64>), AppError> {
    Ok(app.store().subscriptions_without_address(limit).await?)
}

/// The customer's default address, if they have addresses.
pub async fn default_of(app: &App, customer_id: i64) -> Result<Option<CustomerAddress>, AppError> {
    Ok(app.store().default_address(customer_id).await?)
}
