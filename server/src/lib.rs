//! Turnstile's server: shares one compute device fairly among many users. It serves the Leptos
//! pages, the WebSocket protocol and the JSON API, and runs every job through one scheduler that
//! owns the device.
//!
//! Layers, lowest first (a module only imports those below it; `server/tests/layers.rs` fails on
//! an import cycle, and on the application state named outside `http`):
//! - plain data and identifiers: [`ids`], [`error`], [`process`], [`cache`], [`metrics`] (the
//!   registry), [`client_addr`], [`device`] (candle behind the scheduler crate's device host);
//! - what a job is: [`job`] (work, outcome, the one executor and its handlers' trait) and
//!   [`messages`] (scheduler events to wire messages);
//! - the parts: [`faults`], [`limits`], [`store`], [`relay`] (chat logs), [`model`], [`calc`],
//!   [`chat`], [`party`], and [`config`], built from the parts' own config types;
//! - where jobs go: [`queue`] (the in-process scheduler or, for a deployment of many machines,
//!   [`cluster`]: the shared queue in Redis, a web instance's front and a device worker);
//! - [`http`]: every handler and middleware, the router, the application state, [`run`].
//!
//! The scheduler itself is the `turnstile-scheduler` crate, which knows none of these.

#![recursion_limit = "256"]

pub mod cache;
pub mod calc;
pub mod chat;
pub mod client_addr;
pub mod cluster;
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
pub mod queue;
pub mod relay;
pub mod store;

pub use http::{app, run, run_worker, state, AppState};
