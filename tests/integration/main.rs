//! Klaxon's integration tests: one binary, a module per topic. Every test talks HTTP to a real
//! `klaxon serve` process with sled in a temp folder, or (`postgres`) on a database of its own on
//! the binary's throwaway PostgreSQL server.

mod alert_timing;
mod alerts;
mod anomaly;
mod audit;
mod backtest;
mod backup;
mod browser;
mod channel_plugins;
mod channels;
mod cli;
mod cluster;
mod cohorts;
mod console;
mod console_pages;
mod delivery;
mod fair_sharing;
mod forecast;
mod fuzz;
mod group_commit;
mod guessing;
mod incidents;
mod ingest;
mod languages;
mod noise;
mod plugins;
mod portal;
mod postgres;
mod receivers;
mod restart;
mod roles;
mod routing;
mod rules;
mod sandbox;
mod service;
mod sms;
mod stats;
mod status_page;
mod support;
mod system;
mod tenants;
mod upgrades;
