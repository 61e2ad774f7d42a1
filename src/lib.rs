//! subsave: a subscribe-and-save billing and reorder daemon.
//!
//! The library holds everything testable; `main.rs` only parses the command line, starts
//! tracing and calls [`cli::run`]. The pure core ([`core`]: money, catalog, pricing, schedules,
//! lifecycle, renewal and payment rules) does no IO and reads no clock. [`config`] and [`cli`]
//! are the edges where text from files, the environment and the command line becomes typed
//! values.
#![forbid(unsafe_code)]

pub mod api;
pub mod api_keys;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod core;
pub mod daemon;
pub mod demo;
pub mod engine;
pub mod finance;
pub mod http;
pub mod in_hand;
pub mod link_keys;
pub mod listener;
pub mod mail;
pub mod metrics;
pub mod outage;
pub mod payments;
pub mod rate_limit;
pub mod render;
pub mod store;
#[cfg(test)]
mod test_support;
pub mod web;
