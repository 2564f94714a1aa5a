//! The follower's clocks: the instance's heartbeat (workers cancel the jobs of an instance silent
//! past the resume window), the deadlines of its jobs (`--max-wait`, and a started job never heard
//! to end), and the wait until the next position announcement is due.
//!
//! Concurrency: the heartbeat is its own task; the rest runs on the follower's task.

use super::Follower;
use crate::cluster::front::Uplink;
use crate::error::JobError;
use crate::job::JobEvent;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use turnstile_cluster::SharedQueue;

/// Says every second that this instance is alive: past the resume window of silence, workers
/// cancel its jobs (their clients are gone).
pub(super) fn spawn_heartbeat(queue: SharedQueue, instance: String, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {
                    if let Err(e) = queue.heartbeat(&instance).await {
                        tracing::debug!(error = %e, "the instance's heartbeat failed");
                    }
                }
            }
        }
    });
}

/// Sleeps until `due`, or forever when there is nothing due.
pub(super) async fn sleep_until_some(due: Option<tokio::time::Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Follower {
    /// Ends the jobs past their deadline: waiting longer than `max_wait` (as in one process; the
    /// job is cancelled in the queue), or started and not heard to end within `max_run` and two
    /// leases (its worker stops it at `max_run`; this is for events that were lost).
    pub(super) fn expire(&mut self) {
        let t = self.times;
        let late: Vec<(String, JobError)> = self
            .jobs
            .iter()
            .filter_map(|(key, (_, job))| match job.started {
                None if job.accepted && job.since.elapsed() > t.max_wait => {
                    Some((key.clone(), JobError::WaitTimeout(t.max_wait)))
                }
                Some(s) if s.elapsed() > t.max_run + 2 * t.lease => {
                    Some((key.clone(), JobError::RunTimeout(t.max_run)))
                }
                _ => None,
            })
            .collect();
        for (key, error) in late {
            self.mirror.unwatch(&key);
            if let Some((id, job)) = self.jobs.remove(&key) {
                let _ = self.uplink.send(Uplink::Cancel(id));
                job.sink.send(id, JobEvent::Ended(Err(error)));
            }
        }
    }
}
