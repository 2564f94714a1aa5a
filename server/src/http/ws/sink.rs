//! A connection's event sink: where the scheduler, the device threads and the chat engine put the
//! events of the connection's own (calculator) jobs, for its task to number, serialize and write.
//!
//! Waking a task costs a system call on the sender's side and a switch on the receiver's, and
//! every write costs the client a read. So a job's final event, and a new position (a waiting
//! job's whole news: nothing follows it soon), wake the task at once and go out with whatever
//! else is ready, in one write; the events a short job sends in quick succession before its end
//! (`accepted`, `started`) may wait for the connection's flush deadline: once the task holds
//! such messages back (`lazy`), it has a timer that writes them within [`super::COALESCE`], and
//! the sink does not wake it for more of the same. A 2x2 add that finishes within that time
//! reaches its client in one write instead of three.
//!
//! Concurrency: a small mutex around the inbox, held to push or take, never across an `.await`;
//! the task is woken through a `Notify` (a wake before it waits is kept as a permit).

use crate::job::{JobEvent, JobExecutor};
use parking_lot::Mutex;
use tokio::sync::Notify;
use turnstile_scheduler::{JobId, Sink};

/// The events waiting for the connection's task.
#[derive(Default)]
struct Inbox {
    /// In the order they were sent.
    events: Vec<(JobId, JobEvent)>,
    /// The task has a flush deadline: only a final event needs to wake it.
    lazy: bool,
    /// The connection is gone: nothing more is taken.
    closed: bool,
}

/// One connection's sink for all its jobs.
#[derive(Default)]
pub(super) struct ConnSink {
    inbox: Mutex<Inbox>,
    /// Wakes the connection's task.
    pub(super) wake: Notify,
}

impl ConnSink {
    /// Moves every waiting event into `out`; true if one that goes out at once was among them.
    pub(super) fn take(&self, out: &mut Vec<(JobId, JobEvent)>) -> bool {
        let mut inbox = self.inbox.lock();
        let any_urgent = inbox.events.iter().any(|(_, e)| urgent(e));
        out.append(&mut inbox.events);
        any_urgent
    }

    /// Whether the task holds messages back until its flush deadline. Leaving that state with
    /// events already waiting (sent while it was lazy, after its last take) wakes it again, so
    /// none is left behind.
    pub(super) fn set_lazy(&self, lazy: bool) {
        let mut inbox = self.inbox.lock();
        inbox.lazy = lazy;
        if !lazy && !inbox.events.is_empty() {
            drop(inbox);
            self.wake.notify_one();
        }
    }

    /// The connection ended: later events are refused (the scheduler drops jobs whose owner is
    /// gone instead of running them).
    pub(super) fn close(&self) {
        let mut inbox = self.inbox.lock();
        inbox.closed = true;
        inbox.events.clear();
    }
}

/// Whether `event` goes out at once: a job's end, or a waiting job's new position.
fn urgent(event: &JobEvent) -> bool {
    event.is_terminal() || matches!(event, JobEvent::Position { .. })
}

impl Sink<JobExecutor> for ConnSink {
    fn send(&self, id: JobId, event: JobEvent) -> bool {
        let urgent = urgent(&event);
        let mut inbox = self.inbox.lock();
        if inbox.closed {
            return false;
        }
        inbox.events.push((id, event));
        let wake = urgent || !inbox.lazy;
        drop(inbox);
        if wake {
            self.wake.notify_one();
        }
        true
    }

    fn is_closed(&self) -> bool {
        self.inbox.lock().closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Progress;
    use std::time::Duration;

    fn started() -> JobEvent {
        JobEvent::Started { waited_ms: 0 }
    }

    async fn woken(sink: &ConnSink) -> bool {
        tokio::time::timeout(Duration::from_millis(50), sink.wake.notified())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn only_an_end_or_a_position_wakes_a_lazy_task_and_leaving_lazy_collects_the_rest() {
        let sink = ConnSink::default();
        let id = JobId(1);
        assert!(sink.send(id, started()));
        assert!(woken(&sink).await, "not lazy: every event wakes");
        let mut out = vec![];
        assert!(!sink.take(&mut out));
        sink.set_lazy(true);
        let token = Progress::Token { text: "x".into() };
        sink.send(id, JobEvent::Progress(token));
        assert!(
            !woken(&sink).await,
            "lazy: a non-final event waits for the deadline"
        );
        // Leaving the lazy state with an event waiting wakes the task for it.
        sink.set_lazy(false);
        assert!(woken(&sink).await);
        assert!(!sink.take(&mut out));
        sink.set_lazy(true);
        sink.send(
            id,
            JobEvent::Position {
                position: 2,
                eta_ms: 9,
            },
        );
        assert!(woken(&sink).await, "a new position always wakes");
        assert!(sink.take(&mut out));
        sink.send(id, JobEvent::Ended(Err(crate::error::JobError::Cancelled)));
        assert!(woken(&sink).await, "a final event always wakes");
        assert!(sink.take(&mut out));
        assert_eq!(out.len(), 4);
        sink.close();
        assert!(sink.is_closed() && !sink.send(id, started()));
    }
}
