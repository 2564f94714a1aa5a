//! What a job's owner hears, and where it hears it: the [`Event`]s of a job, the [`Sink`] they go
//! to, and the [`JobId`] that labels them. A sink is the owner's (one per connection, say, for
//! all its jobs); sending never waits, so no owner, however slow, can hold up the device thread
//! or the scheduler task that sends.

use crate::executor::Executor;
use std::fmt;
use std::sync::Arc;
use tokio::sync::mpsc;

/// A job's id: 128 random bits, written as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u128);

impl JobId {
    /// A new random id.
    pub fn random() -> JobId {
        JobId(uuid::Uuid::new_v4().as_u128())
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A string that is not a job id.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a job id (32 hex digits)")]
pub struct NotAJobId;

impl std::str::FromStr for JobId {
    type Err = NotAJobId;

    /// Exactly what [`fmt::Display`] writes: 32 hex digits (other strings are no job's id).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(NotAJobId);
        }
        u128::from_str_radix(s, 16)
            .map(JobId)
            .map_err(|_| NotAJobId)
    }
}

/// What happens to a job, as its owner hears it. The first event is `Accepted`; the last is
/// `Ended`, and nothing follows it.
pub enum Event<X: Executor> {
    /// Queued at `position` (1 = next) of `queue_length`.
    Accepted {
        /// 1 = next to run.
        position: u64,
        /// Jobs waiting for the same resource, this one included.
        queue_length: u64,
        /// Estimated wait, in milliseconds.
        eta_ms: u64,
    },
    /// Moved to `position`.
    Position {
        /// 1 = next to run.
        position: u64,
        /// Estimated wait, in milliseconds.
        eta_ms: u64,
    },
    /// Reached the device (or its lane) after waiting `waited_ms`.
    Started {
        /// Time spent waiting, in milliseconds.
        waited_ms: u64,
    },
    /// Something the executor reports while the job runs (a token, a loading model): opaque to
    /// the scheduler.
    Progress(X::Progress),
    /// The job's result or failure; nothing follows.
    Ended(Result<X::Output, X::Error>),
}

impl<X: Executor> Event<X> {
    /// Whether nothing follows this event.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Event::Ended(_))
    }
}

impl<X: Executor> fmt::Debug for Event<X>
where
    X::Progress: fmt::Debug,
    X::Output: fmt::Debug,
    X::Error: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Accepted {
                position,
                queue_length,
                eta_ms,
            } => f
                .debug_struct("Accepted")
                .field("position", position)
                .field("queue_length", queue_length)
                .field("eta_ms", eta_ms)
                .finish(),
            Event::Position { position, eta_ms } => f
                .debug_struct("Position")
                .field("position", position)
                .field("eta_ms", eta_ms)
                .finish(),
            Event::Started { waited_ms } => f
                .debug_struct("Started")
                .field("waited_ms", waited_ms)
                .finish(),
            Event::Progress(p) => f.debug_tuple("Progress").field(p).finish(),
            Event::Ended(r) => f.debug_tuple("Ended").field(r).finish(),
        }
    }
}

/// Where a job's events go. One owner may own many jobs and one sink for them all.
///
/// Contract: `send` never blocks and never waits on the owner (it is called from the scheduler
/// task and from device threads); it returns false once the owner is gone for good.
pub trait Sink<X: Executor>: Send + Sync + 'static {
    /// Delivers `event` of job `id`; false if the owner is gone.
    fn send(&self, id: JobId, event: Event<X>) -> bool;
    /// Whether the owner is gone (a job whose owner is gone is dropped instead of dispatched).
    fn is_closed(&self) -> bool;
}

/// A job's sink as the scheduler holds it.
pub type EventSink<X> = Arc<dyn Sink<X>>;

/// An unbounded channel is a sink: its receiver's owner drains it at once.
impl<X: Executor> Sink<X> for mpsc::UnboundedSender<(JobId, Event<X>)> {
    fn send(&self, id: JobId, event: Event<X>) -> bool {
        mpsc::UnboundedSender::send(self, (id, event)).is_ok()
    }

    fn is_closed(&self) -> bool {
        mpsc::UnboundedSender::is_closed(self)
    }
}

#[cfg(test)]
mod tests {
    use super::JobId;

    #[test]
    fn ids_print_as_32_hex_digits_and_parse_back() {
        let id = JobId::random();
        let text = id.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(text.parse::<JobId>().unwrap(), id);
        assert_eq!(JobId(255).to_string(), format!("{}ff", "0".repeat(30)));
        for bad in [
            "",
            "ff",
            "+0000000000000000000000000000000",
            &"g".repeat(32),
        ] {
            assert!(bad.parse::<JobId>().is_err(), "{bad:?}");
        }
    }
}
