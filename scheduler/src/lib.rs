//! Turnstile's scheduler: the one owner of a scarce device's queue, generic over what a job is.
//!
//! Jobs enter through a [`Scheduler`] handle. Each waits in a fair line for one [`Resource`] (a
//! device place, or a batching engine's lane), hears its exact position and estimated wait as
//! they change, runs through its [`Executor`] once its turn comes, and reports every
//! [`Event`] to its owner's [`Sink`] only. The crate knows nothing of HTTP, JSON or the web
//! app: the server above it says what a job is ([`Job`], [`Executor`]), where events go
//! ([`Sink`]), and how counters are exported ([`Observer`]); the queue is seen through plain
//! [`QueueView`]s.
//!
//! Invariants (the shape after text-generation-inference's router queue):
//! - **Who owns the queue.** One task owns the waiting lines, the dispatched set, the fair
//!   clocks, the deadlines and the statistics, and is the only code that reads or writes them.
//!   It is fed by an unbounded channel of commands. Admission happens before a command is sent
//!   (a semaphore of `max_waiting` permits, and each party's cap), so a full queue answers at
//!   once. The same task drives the dispatched jobs' futures, so a job's end is seen without a
//!   hop through another task.
//! - **Who touches the device.** Only the device's own threads ([`device`]) compute on it; a job
//!   hands its device work to them through [`RunContext::on_device`] (or holds a place with
//!   [`RunContext::in_slot`]). At most `max_concurrent` jobs hold the device at once; the next
//!   `prefetch` are already queued on its threads in dispatch order, so the device never waits
//!   for the scheduler.
//! - **Who hears what.** Every job carries its owner's sink; its events go there only, in order,
//!   and nothing follows its terminal event. Dropping the [`JobTicket`] cancels the job, so a
//!   vanished owner frees its place at once. Sending an event never waits.
//! - **Costs.** Every command is O(log n) in the waiting jobs; position announcements are
//!   coalesced (at most one per job per interval) and cost O(k log n) for the k jobs that moved.

mod admission;
mod announce;
mod config;
mod context;
pub mod device;
mod dispatch;
mod error;
mod event;
mod executor;
pub mod fair;
mod handle;
mod housekeeping;
mod jobs;
mod line;
mod observer;
pub mod queue;
mod runner;
mod snapshot;
pub mod stats;
mod task;
mod view;

pub use config::{SchedulerConfig, MAX_PREFETCH};
pub use context::{Emitter, RunContext};
pub use error::{Error, Failure};
pub use event::{Event, EventSink, JobId, NotAJobId, Sink};
pub use executor::{Executor, Job};
pub use fair::{Party, QueueOrder};
pub use handle::{JobTicket, Scheduler};
pub use line::Resource;
pub use observer::Observer;
pub use queue::QueueKey;
pub use view::{DeviceView, HistoryPoint, ItemStatus, Performance, QueueItem, QueueView};

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;
