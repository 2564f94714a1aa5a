//! The Lua scripts that move the shared queue, each run atomically by Redis (so the fair clock,
//! the lines, the leases and the counters change together, whichever instance calls). Each is
//! `common.lua` followed by its own file; `redis::Script` sends it by SHA and reloads it when the
//! server lost its script cache (a restart).
//!
//! Concurrency: immutable after construction; shared by every connection.

use redis::Script;

/// Every script, loaded once per client.
pub(crate) struct Scripts {
    /// Admits and tags a job.
    pub(crate) enqueue: Script,
    /// Hands the first waiting job of a line to a worker under a lease.
    pub(crate) claim: Script,
    /// Extends a lease (fenced).
    pub(crate) renew: Script,
    /// Appends a running job's event (fenced).
    pub(crate) emit: Script,
    /// Cancels a job from anywhere.
    pub(crate) cancel: Script,
    /// Takes back jobs whose lease expired.
    pub(crate) reap: Script,
    /// A line's order and the change counter it is current at.
    pub(crate) snapshot: Script,
    /// An instance says it is alive.
    pub(crate) heartbeat: Script,
    /// Cancels the jobs of instances gone silent.
    pub(crate) orphans: Script,
    /// Copies chat messages to their wire streams (owner only).
    pub(crate) wire: Script,
    /// Moves a job to the instance its client resumes through, with its copied messages.
    pub(crate) takeover: Script,
}

const COMMON: &str = include_str!("lua/common.lua");

fn script(body: &str) -> Script {
    Script::new(&format!("{COMMON}\n{body}"))
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Scripts {
            enqueue: script(include_str!("lua/enqueue.lua")),
            claim: script(include_str!("lua/claim.lua")),
            renew: script(include_str!("lua/renew.lua")),
            emit: script(include_str!("lua/emit.lua")),
            cancel: script(include_str!("lua/cancel.lua")),
            reap: script(include_str!("lua/reap.lua")),
            snapshot: script(include_str!("lua/snapshot.lua")),
            heartbeat: script(include_str!("lua/heartbeat.lua")),
            orphans: script(include_str!("lua/orphans.lua")),
            wire: script(include_str!("lua/wire.lua")),
            takeover: script(include_str!("lua/takeover.lua")),
        }
    }
}
