//! What is done about processes that went away: the lease reaper (a worker that died or paused
//! past its lease) and the orphan reaper (a web instance silent past the resume window), and the
//! heartbeat that keeps an instance from being taken for gone. Any worker runs the reapers; each
//! pass is one script call, atomic, so two workers reaping at once take each job back once.
//!
//! Concurrency: methods on the shared handle; nothing is held between calls.

use crate::error::QueueError;
use crate::queue::SharedQueue;
use std::time::Duration;

/// The result of one pass of the lease reaper.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reaped {
    /// Jobs put back at their original place.
    pub requeued: u64,
    /// Jobs ended with the failure event.
    pub failed: u64,
}

impl SharedQueue {
    /// Takes back up to `limit` jobs whose lease expired.
    pub async fn reap(
        &self,
        failed_event: &[u8],
        cancelled_event: &[u8],
        limit: u32,
    ) -> Result<Reaped, QueueError> {
        let (requeued, failed): (u64, u64) = self
            .scripts
            .reap
            .arg(&self.config.prefix)
            .arg(failed_event)
            .arg(cancelled_event)
            .arg(Self::ms(self.config.resume_window))
            .arg(limit)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(Reaped { requeued, failed })
    }

    /// Records that `instance` is alive (its jobs' clients are still connected somewhere).
    pub async fn heartbeat(&self, instance: &str) -> Result<(), QueueError> {
        let _: i64 = self
            .scripts
            .heartbeat
            .arg(&self.config.prefix)
            .arg(instance)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    /// Cancels up to `limit` jobs of instances that have not said they are alive for
    /// `dead_after`; waiting ones end with `cancelled_event`. Returns how many were cancelled.
    pub async fn cancel_orphans(
        &self,
        dead_after: Duration,
        cancelled_event: &[u8],
        limit: u32,
    ) -> Result<u64, QueueError> {
        Ok(self
            .scripts
            .orphans
            .arg(&self.config.prefix)
            .arg(Self::ms(dead_after))
            .arg(cancelled_event)
            .arg(Self::ms(self.config.resume_window))
            .arg(limit)
            .invoke_async(&mut self.conn.clone())
            .await?)
    }
}
