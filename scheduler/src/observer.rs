//! How the scheduler reports its counters and timings to whoever exports them (the server's
//! Prometheus registry), without knowing the exporter. Called from the scheduler task only, so an
//! implementation must never block.

use std::time::Duration;

/// Receives the scheduler's counters as they happen. Every method has a no-op default.
pub trait Observer: Send + Sync + 'static {
    /// A job of `kind` left the device after waiting `waited` and running `run`.
    fn finished(&self, _kind: &'static str, _waited: Duration, _run: Duration) {}
    /// A job was refused or failed, with its error code.
    fn rejected(&self, _code: &'static str) {}
}

/// Observes nothing.
impl Observer for () {}
