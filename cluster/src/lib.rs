//! Turnstile's shared queue on Redis: one fair queue for many stateless web instances and many
//! device workers. It knows nothing of HTTP or of what a job is: a job is an id, a line, a party,
//! a cost and an opaque payload; an event is opaque bytes.
//!
//! Data in Redis (every key under one prefix, see [`Keys`]):
//! - Each line's waiting jobs: a sorted set, score = the fair tag (start tag times two, plus one
//!   when tagged from the party's own backlog; the arrival number in FIFO order), member =
//!   `seq:id` with `seq` zero-padded, so equal scores run in arrival order. The line's virtual
//!   time and each party's last finish tag sit beside it; the scripts tag and dispatch exactly as
//!   the in-process `FairClock` does (a differential property test compares them).
//! - Each job's record (a hash), its events (a stream, `seq` numbered, expiring after the resume
//!   window), and the stream of its owner instance (what that instance follows). A chat's wire
//!   messages, as its owner numbered them, are copied to a stream of their own, so a client can
//!   resume it through another instance, which takes the job over (see [`Takeover`]).
//! - A stream of changes to the lines (numbered without gaps), which every instance follows to
//!   keep its [`Mirror`] and so exact positions without a query per job.
//! - Running jobs' leases (a sorted set by deadline) and fencing tokens.
//!
//! Invariants:
//! - **Atomic moves.** Enqueue, claim, renew, emit, cancel and reap are Lua scripts: the fair
//!   clock, the lines, the counters and the leases change together, whoever calls.
//! - **Fencing.** A claim gives a new fencing token; every write for a running job (renew, emit,
//!   its end) must carry it; the reaper gives a new one when it takes a job back, so a worker
//!   that lost its lease can neither append nor finish, and a job never runs for two holders.
//! - **Once.** An expired lease puts a job back at its original place once, unless it has
//!   streamed output (then it fails); a job's terminal event is appended once, and nothing after.
//! - **Who reads what.** A [`SharedQueue`] handle pipelines commands on one connection; a
//!   follower ([`follow()`]) has its own for blocking reads.

mod error;
pub mod follow;
mod keys;
pub mod mirror;
mod queue;
mod reapers;
mod resume;
mod scripts;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use error::{QueueError, Refusal};
pub use follow::{follow, Followed};
pub use keys::{split_member, Keys};
pub use mirror::{Change, Gap, Mirror};
pub use queue::{
    CancelOutcome, Claimed, Enqueued, NewJob, QueueConfig, Renewal, SharedQueue, Snapshot,
};
pub use reapers::Reaped;
pub use resume::{Moved, Takeover, WireEntry};
