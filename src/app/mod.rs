//! The application layer: one function per use case, the one way in for every door.
//!
//! The CLI (`cli/`), the HTTP API (`api/`) and the customer pages (`web/`) are thin adapters:
//! they parse their own input into the typed values here, call one use case, and print or
//! serialize what it returns. A use case takes typed input and the [`Actor`] who asked,
//! reads "now" from the [`App`]'s clock, calls the pure core (`lifecycle`, `pricing`,
//! `renewal`) and the store, and returns a view (`views`) or a typed refusal ([`AppError`]).
//! So "skip a renewal" exists once, whoever asks for it.
//!
//! Owns: the use cases, their refusals, and the view types doors print. Must not: parse door
//! syntax (flags, HTTP bodies), print, or decide prices and dates itself (the core does).

pub mod addresses;
pub mod api_keys;
pub mod catalog;
pub mod coupons;
pub mod customer_payments;
pub mod customers;
pub mod finance;
pub mod fulfillments;
pub mod idempotency;
pub mod orders;
pub mod outbox;
pub mod payments;
pub mod privacy;
pub mod renewals;
pub mod self_service;
pub mod subscriptions;
pub mod views;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::config::Settings;
use crate::core::catalog::Catalog;
use crate::core::lifecycle::LifecycleError;
use crate::core::model::Email;
use crate::store::{self, Store, StoreError};

pub use crate::core::model::Actor;
pub use crate::store::Listed;

/// Why a use case refused or failed. The message names the input, the problem and the fix;
/// the CLI prints it as it is, the API puts it in a problem's `detail`.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// What was asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The operation makes no sense in the current state; nothing was changed.
    #[error("{0}")]
    InvalidState(String),
    /// A value is refused. `field` names the input (`plan`, `region`, …) when there is one,
    /// and the message continues it, separator included: `plan` + ` "9-pack": no such plan`,
    /// `name` + `: a customer needs a name`. Doors put the field in their own terms first
    /// (`--plan`, a JSON pointer).
    #[error("{}{message}", field.unwrap_or_default())]
    InvalidInput {
        field: Option<&'static str>,
        message: String,
    },
    /// It would duplicate something that exists (an email, a coupon code), or the subscription
    /// changed since the caller saw it; nothing was changed.
    #[error("{0}")]
    Conflict(String),
    /// A peer outside the database failed (the SMTP server): not the caller's fault.
    #[error("{0}")]
    Unavailable(String),
    /// The store failed (unavailable, or a broken row): not the caller's fault.
    #[error(transparent)]
    Store(StoreError),
}

impl AppError {
    /// An input refused without naming a field.
    pub fn invalid(message: impl Into<String>) -> AppError {
        AppError::InvalidInput {
            field: None,
            message: message.into(),
        }
    }

    /// An input refused, naming the field; `message` continues the field's name.
    pub fn invalid_field(field: &'static str, message: impl Into<String>) -> AppError {
        AppError::InvalidInput {
            field: Some(field),
            message: message.into(),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Refused(LifecycleError::InvalidState(m)) => AppError::InvalidState(m),
            StoreError::Refused(LifecycleError::InvalidInput(m)) => AppError::invalid(m),
            StoreError::Refused(LifecycleError::Stale(m)) => AppError::Conflict(m),
            StoreError::NotFound(m) => AppError::NotFound(m),
            StoreError::Conflict(m) => AppError::Conflict(m),
            other => AppError::Store(other),
        }
    }
}

impl From<LifecycleError> for AppError {
    fn from(error: LifecycleError) -> Self {
        AppError::from(StoreError::Refused(error))
    }
}

/// A customer named by id or by email address, as doors let people name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerRef {
    Id(i64),
    Email(Email),
}

impl std::str::FromStr for CustomerRef {
    type Err = String;

    /// An integer is an id; anything else must be an email address.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        match input.parse::<i64>() {
            Ok(id) => Ok(CustomerRef::Id(id)),
            Err(_) => input.parse().map(CustomerRef::Email),
        }
    }
}

impl std::fmt::Display for CustomerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CustomerRef::Id(id) => write!(f, "{id}"),
            CustomerRef::Email(email) => write!(f, "{email}"),
        }
    }
}

/// One page of a list in a stable order (by id), and whether more rows follow. The next page
/// starts after the last row's id: the cost of a page does not grow with its position.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub has_more: bool,
}

impl<T> Page<T> {
    /// No rows.
    pub fn empty() -> Page<T> {
        Page {
            data: Vec::new(),
            has_more: false,
        }
    }

    /// Rows fetched with `limit + 1`: the extra row only says that more follow.
    pub(crate) fn from_rows(mut rows: Vec<T>, limit: u32) -> Page<T> {
        let has_more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        Page {
            data: rows,
            has_more,
        }
    }

    fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            data: self.data.into_iter().map(f).collect(),
            has_more: self.has_more,
        }
    }
}

/// Where a list starts and how long a page is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    /// The id of the last row of the previous page.
    pub after: Option<i64>,
}

impl PageRequest {
    /// The first `limit` rows.
    pub fn first(limit: u32) -> PageRequest {
        PageRequest { limit, after: None }
    }

    /// What the store is asked for: one row more than the page, to know whether more follow.
    fn fetch(self) -> (u32, Option<i64>) {
        (self.limit.saturating_add(1), self.after)
    }
}

/// Whether the row a page starts after (`starting_after`, `id`) is in `list`: a client that
/// names one that is not there is told so by its door, rather than given a page that starts
/// nowhere.
pub async fn starts_after_a_row(app: &App, list: Listed, id: i64) -> Result<bool, AppError> {
    Ok(app.store().listed(list, id).await?)
}

/// The settings, the store and the clock every use case works with.
pub struct App {
    store: Arc<dyn Store>,
    settings: Arc<Settings>,
    clock: Arc<dyn Clock>,
}

impl App {
    pub fn new(store: Arc<dyn Store>, settings: Arc<Settings>, clock: Arc<dyn Clock>) -> App {
        App {
            store,
            settings,
            clock,
        }
    }

    /// Opens the configured store, applying migrations when the config says so.
    pub async fn open(settings: Arc<Settings>, clock: Arc<dyn Clock>) -> Result<App, AppError> {
        let store = store::connect(&settings.database).await?;
        if settings.database.migrate_on_start {
            store.migrate().await?;
        }
        Ok(App::new(store, settings, clock))
    }

    /// Applies the database migrations (`subsave migrate`) and says which backend it was.
    pub async fn migrate(settings: &Settings) -> Result<store::Backend, AppError> {
        let store = store::connect(&settings.database).await?;
        store.migrate().await?;
        Ok(store.backend())
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn catalog(&self) -> &Catalog {
        &self.settings.catalog
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}
