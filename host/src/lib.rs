//! Klaxon: a multi-tenant alerting and notification rules platform, extended with WebAssembly.

pub mod alerts;
pub mod api;
pub mod backtests;
pub mod backup;
pub mod channels;
pub mod clock;
pub mod cluster;
pub mod cohorts;
pub mod config;
pub mod console;
pub mod context;
pub mod delivery;
pub mod duration;
pub mod error;
pub mod ids;
pub mod ingest;
pub mod metrics;
pub mod notifications;
pub mod plugins;
pub mod recipients;
pub mod records;
pub mod rules;
pub mod series;
pub mod server;
pub mod store;
pub mod tenants;
pub mod time_intervals;

#[cfg(test)]
mod layers;
