pub mod account;
pub mod auth;
pub mod batch;
pub mod health;
pub mod pages;
pub mod public;
pub mod records;
pub mod webhooks;
