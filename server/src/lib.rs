//! Turnstile's server: shares one compute device fairly among many users. It serves the Leptos
//! pages, the WebSocket protocol and the JSON API, and runs every job through one scheduler that
//! owns the device.
//!
//! Layers, lowest first (a module only imports those below it; `tests::no_import_cycles` checks
//! that the module graph has no cycle):
//! - plain data and identifiers: [`ids`], [`error`], [`config`], [`job`] (what a job is, the
//!   executor), [`messages`] (events to wire messages), [`process`];
//! - the parts: [`device`], [`calc`], [`cache`], [`model`], [`chat`], [`store`], [`relay`],
//!   [`limits`], [`metrics`], [`faults`], [`client_addr`], [`party`] (the scheduler itself is
//!   the `turnstile-scheduler` crate);
//! - [`http`]: every handler and middleware, the router, the application state, [`run`].

#![recursion_limit = "256"]

pub mod cache;
pub mod calc;
pub mod chat;
pub mod client_addr;
pub mod config;
pub mod device;
pub mod error;
pub mod faults;
pub mod http;
pub mod ids;
pub mod job;
pub mod limits;
pub mod messages;
pub mod metrics;
pub mod model;
pub mod party;
pub mod process;
pub mod relay;
pub mod store;

pub use http::{app, run, state, AppState};
