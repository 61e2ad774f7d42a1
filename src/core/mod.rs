//! The pure core: the product's rules as plain functions over plain data.
//!
//! Money and its arithmetic ([`money`]), ship-to addresses ([`address`]), the catalog ([`catalog`]), what a renewal costs
//! ([`pricing`]), when it happens ([`schedule`], [`cron_schedule`]), the records ([`model`]),
//! what an operation does to a subscription ([`lifecycle`]), what a sweep bills ([`renewal`]),
//! which reminder and notice are due ([`reminders`], [`notices`]), what a charge's outcome does
//! ([`dunning`]), which webhooks a change makes ([`webhooks`]), what messages carry
//! ([`snapshot`]), how a customer's locale writes amounts and dates ([`locale`]), signed links
//! ([`links`]), a storefront's own ids and metadata ([`metadata`]), free text ([`text`]), secrets ([`secret`]) and what an erasure replaces ([`privacy`]).
//!
//! The rule of this folder: no IO, no clock, no configuration loading, no store. "Now" is always
//! a parameter. Nothing here names `store`, `config`, `app`, a door (`api`, `web`, `cli`), a
//! worker (`engine`, `mail`, `payments`, `daemon`), sqlx, lettre, reqwest, axum or the clock;
//! `tests/architecture.rs` fails if anything does.

pub mod address;
pub mod catalog;
pub mod cron_schedule;
pub mod dunning;
pub mod fulfillment;
pub mod lifecycle;
pub mod links;
pub mod locale;
pub mod metadata;
pub mod metrics;
pub mod model;
pub mod money;
pub mod notices;
pub mod pricing;
pub mod privacy;
pub mod reminders;
pub mod renewal;
pub mod schedule;
pub mod secret;
pub mod snapshot;
pub mod text;
pub mod webhooks;
