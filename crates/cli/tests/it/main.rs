//! brine's integration tests: one binary, real servers on loopback, real SQLite files.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable
)]

#[macro_use]
mod common;

mod accounts;
mod backup;
mod batch;
mod bridges;
mod browser;
mod canary;
mod cli;
mod dashboard;
mod faults;
mod handoffs;
mod hardening;
mod intake;
mod intake_web;
mod key_test;
mod keyring;
mod leaks;
mod limits;
mod logs;
mod metrics;
mod mixed_load;
mod nodes;
mod openapi;
mod origin;
mod pg_cluster;
mod pg_faults;
mod read;
mod record_state;
mod records;
mod retention;
mod secure_page;
mod startup;
mod tokens;
mod transfer;
mod upstream;
mod web;
mod webhooks;
