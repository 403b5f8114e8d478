//! brine's integration tests: one binary, real servers on loopback, real SQLite files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

mod accounts;
mod cli;
mod openapi;
mod read;
mod records;
mod startup;
