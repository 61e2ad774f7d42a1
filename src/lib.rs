//! subsave: a subscribe-and-save billing and reorder daemon.
//!
//! The library holds everything testable; `main.rs` only parses the command line, starts
//! tracing and calls [`cli::run`]. The pure core ([`money`], [`pricing`], [`schedule`],
//! [`cron_schedule`], [`catalog`]) does no IO and reads no clock. [`config`] and [`cli`] are
//! the edges where text from files, the environment and the command line becomes typed values.
#![forbid(unsafe_code)]

pub mod api;
pub mod api_keys;
pub mod app;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod config;
pub mod cron_schedule;
pub mod daemon;
pub mod demo;
pub mod dunning;
pub mod engine;
pub mod finance;
pub mod http;
pub mod in_hand;
pub mod lifecycle;
pub mod links;
pub mod listener;
pub mod locale;
pub mod mail;
pub mod metrics;
pub mod model;
pub mod money;
pub mod notices;
pub mod outage;
pub mod payments;
pub mod pricing;
pub mod rate_limit;
pub mod reminders;
pub mod renewal;
pub mod schedule;
pub mod secret;
pub mod store;
#[cfg(test)]
mod test_support;
pub mod text;
pub mod web;
pub mod webhooks;
