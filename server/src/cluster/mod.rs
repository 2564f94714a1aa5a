//! Turnstile beyond one machine: web instances and device workers sharing one fair queue in
//! Redis (the `turnstile-cluster` crate). A web instance ([`SharedFront`]) owns no device: it
//! validates jobs, queues them in Redis and brings their positions and events back to its
//! clients. A worker ([`worker::run`]) owns a device and claims jobs under leases. The wire
//! between them is [`wire`]. A chat can be resumed through another instance than the one it was
//! sent through: that instance takes it over (`resume`).
//!
//! Concurrency: see each module; every shared structure has one owning task.

mod follower;
mod front;
mod resume;
pub mod wire;
pub mod worker;

pub use follower::SharedCounts;
pub use front::{line_of, FrontTimes, SharedFront, SharedTicket};
