//! A device worker (`turnstile worker --queue ...`): it owns one device (its places and its
//! chat lanes, through an in-process scheduler exactly as in one process), claims jobs from the
//! shared queue while it has room, runs them, and appends their events under their leases.
//!
//! Lifecycle of a claimed job: claimed under a lease with a fencing token; submitted to the
//! local scheduler, whose events (start, progress, end) are appended in order with that token;
//! its lease renewed every third of the lease while it runs. The job is stopped here when its
//! owner cancels it (the control stream, or a renewal that says so), when the lease is lost (the
//! reaper took it back), or when no renewal succeeded for a whole lease (Redis unreachable: the
//! worker stops on its own clock, since the job may already run elsewhere).
//!
//! Each worker also runs the reapers every half lease: expired leases, and the jobs of web
//! instances silent for longer than the resume window (their clients are gone).
//!
//! A job's place is free as soon as it ends here (its sink tells the main task at once), so the
//! next claim goes out while the end is still being appended; at shutdown the worker stops
//! claiming and waits for its running jobs and for the ends in flight.
//!
//! Concurrency: one task owns the running jobs and decides what to claim; one emitter task
//! appends events one after another (a job's events stay in order); the follower reads the
//! streams. No lock.

use super::front::line_of;
use super::wire::{decode_work, RemoteEvent};
use crate::error::JobError;
use crate::job::{JobEvent, JobExecutor, LocalScheduler, LocalTicket};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use turnstile_cluster::follow::text;
use turnstile_cluster::{Claimed, Followed, QueueError, Renewal, SharedQueue};
use turnstile_scheduler::{Executor, JobId, Party, Resource, Sink};

/// How many jobs the worker holds at once, per line.
#[derive(Clone, Copy, Debug)]
pub struct Capacity {
    /// A job that waited longer than this in the shared line ends with `timeout` instead of
    /// running (as in one process).
    pub max_wait: Duration,
    /// Device jobs: its places (a claimed job starts at once; see `run_worker`).
    pub device: usize,
    /// Chats: its engine's lanes.
    pub lane: usize,
}

/// One event to append.
struct Emit {
    id: String,
    fence: u64,
    event: RemoteEvent,
}

/// Where a running job's sink sends: its events to the emitter; its end, at once, to the main
/// loop (the place is free for the next claim while the end is still being appended).
#[derive(Clone)]
struct Outlets {
    emit: mpsc::UnboundedSender<Emit>,
    freed: mpsc::UnboundedSender<String>,
}

/// A running job's sink: its local events become appends (under the job's fence).
struct WorkerSink {
    id: String,
    fence: u64,
    waited_before_ms: u64,
    out: Outlets,
}

impl Sink<JobExecutor> for WorkerSink {
    fn send(&self, _local: JobId, event: JobEvent) -> bool {
        if let Some(event) = RemoteEvent::from_local(event, self.waited_before_ms) {
            let terminal = event.is_terminal();
            let emit = Emit {
                id: self.id.clone(),
                fence: self.fence,
                event,
            };
            if terminal {
                let _ = self.out.freed.send(self.id.clone());
            }
            return self.out.emit.send(emit).is_ok();
        }
        true
    }

    fn is_closed(&self) -> bool {
        self.out.emit.is_closed()
    }
}

/// A job this worker runs.
struct Running {
    ticket: Option<LocalTicket>,
    fence: u64,
    line: &'static str,
    renewed: Instant,
}

/// Runs the worker until `shutdown`; then stops claiming and lets its running jobs finish.
pub async fn run(
    queue: SharedQueue,
    scheduler: LocalScheduler,
    capacity: Capacity,
    shutdown: CancellationToken,
) -> Result<(), QueueError> {
    let worker = format!("worker-{}", JobId::random());
    let (entries_tx, mut entries) = mpsc::unbounded_channel();
    let streams = vec![queue.keys().changes(), queue.keys().control(&worker)];
    turnstile_cluster::follow(queue.client(), streams, entries_tx, shutdown.clone()).await?;
    let (emit_tx, emit_rx) = mpsc::unbounded_channel();
    let (done_tx, mut done) = mpsc::unbounded_channel();
    tokio::spawn(emitter(queue.clone(), emit_rx, done_tx));
    let (freed_tx, mut freed) = mpsc::unbounded_channel();
    let out = Outlets {
        emit: emit_tx,
        freed: freed_tx,
    };
    // Ends freed here minus ends appended (or refused) by the emitter: the ends still in flight.
    let mut ending: i64 = 0;
    tracing::info!(
        worker,
        device = capacity.device,
        lanes = capacity.lane,
        "worker claiming jobs"
    );

    let lease = queue.config().lease;
    let failed = RemoteEvent::failure(JobError::DeviceFailed);
    let cancelled = RemoteEvent::failure(JobError::Cancelled);
    let mut running: HashMap<String, Running> = HashMap::new();
    let mut renew = tokio::time::interval(lease / 3);
    let mut reap = tokio::time::interval(lease / 2);
    let mut poll = tokio::time::interval(Duration::from_millis(250));
    let control = queue.keys().control(&worker);
    // The lines that may have work for this worker: a job was added to it, a place in it freed,
    // or the fallback poll. A claim that finds nothing clears its line, so an idle line costs
    // no call per change of another.
    let mut wanted = [true, true];
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            e = entries.recv() => match e {
                Some(Followed::Entry { stream, fields }) if stream == control => {
                    if let Some(job) = text(&fields, "j") {
                        if let Some(r) = running.get_mut(&job) {
                            if let Some(t) = r.ticket.take() { t.cancel() }
                        }
                    }
                }
                Some(Followed::Entry { fields, .. }) => {
                    if let Some(change) = turnstile_cluster::Change::from_fields(&fields) {
                        if change.added {
                            wanted[line_index(&change.line)] = true;
                        }
                    }
                }
                Some(Followed::Reconnected) => wanted = [true, true],
                None => break,
            },
            f = freed.recv() => {
                if let Some(id) = f {
                    if let Some(r) = running.remove(&id) {
                        wanted[line_index(r.line)] = true;
                    }
                    ending += 1;
                }
            }
            d = done.recv() => {
                if d.is_some() {
                    ending -= 1;
                }
            }
            _ = renew.tick() => renew_all(&queue, &mut running, lease).await,
            _ = reap.tick() => {
                match queue.reap(&failed, &cancelled, 100).await {
                    Ok(r) if r.requeued + r.failed > 0 => {
                        tracing::warn!(requeued = r.requeued, failed = r.failed, "took back jobs whose lease expired");
                        wanted = [true, true];
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "reaping leases failed"),
                }
                let window = queue.config().resume_window;
                match queue.cancel_orphans(window, &cancelled, 100).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(jobs = n, "cancelled the jobs of instances gone silent"),
                    Err(e) => tracing::debug!(error = %e, "cancelling orphaned jobs failed"),
                }
            }
            _ = poll.tick() => wanted = [true, true],
        }
        if wanted.contains(&true) {
            claim(
                &queue,
                &scheduler,
                &worker,
                capacity,
                &mut running,
                &out,
                &mut wanted,
            )
            .await;
        }
    }
    // Drain: no new claims; the running jobs finish (their owners hear them) or are stopped by
    // the process's end, and then their leases expire and the reaper decides.
    // The drain also waits for the ends to be appended (a job that ended here but not in Redis
    // would be taken back by the reaper and run again).
    let deadline = Instant::now() + Duration::from_secs(30);
    while (!running.is_empty() || ending > 0) && Instant::now() < deadline {
        let tick = tokio::time::sleep(Duration::from_millis(500));
        tokio::select! {
            Some(id) = freed.recv() => {
                running.remove(&id);
                ending += 1;
            }
            Some(_) = done.recv() => ending -= 1,
            _ = tick => {}
        }
    }
    Ok(())
}

/// Renews the lease of every running job, all in one pipelined batch, and stops the jobs whose
/// lease is lost, cancelled by their owner, or ran out on this worker's own clock.
async fn renew_all(queue: &SharedQueue, running: &mut HashMap<String, Running>, lease: Duration) {
    // A lease that ran out on this worker's own clock (the process was paused, or Redis was out
    // of reach) may already be someone else's: stop first, without waiting for Redis to say so.
    let mut asked: Vec<(String, u64)> = Vec::with_capacity(running.len());
    for (id, r) in running.iter_mut() {
        if r.ticket.is_some() && r.renewed.elapsed() >= lease {
            tracing::warn!(job = %id, "the lease ran out on this worker's clock; stopping the job");
            r.ticket.take();
        } else {
            asked.push((id.clone(), r.fence));
        }
    }
    let answers =
        futures::future::join_all(asked.iter().map(|(id, fence)| queue.renew(id, *fence))).await;
    for ((id, _), answer) in asked.iter().zip(answers) {
        let Some(r) = running.get_mut(id) else {
            continue;
        };
        match answer {
            Ok(Renewal::Kept) => r.renewed = Instant::now(),
            Ok(Renewal::CancelRequested) => {
                r.renewed = Instant::now();
                if let Some(t) = r.ticket.take() {
                    t.cancel()
                }
            }
            Ok(Renewal::Lost) => {
                tracing::warn!(job = %id, "lost the lease; stopping the job");
                r.ticket.take();
            }
            Err(e) if r.renewed.elapsed() >= lease => {
                tracing::warn!(job = %id, error = %e, "no renewal for a whole lease; stopping the job");
                r.ticket.take();
            }
            Err(_) => {}
        }
    }
}

/// The index of a line in the worker's `wanted` flags.
fn line_index(line: &str) -> usize {
    usize::from(line == line_of(Resource::Lane))
}

/// Claims jobs while this worker has room in a wanted line; a line found empty is no longer
/// wanted.
async fn claim(
    queue: &SharedQueue,
    scheduler: &LocalScheduler,
    worker: &str,
    capacity: Capacity,
    running: &mut HashMap<String, Running>,
    out: &Outlets,
    wanted: &mut [bool; 2],
) {
    for (line, room) in [
        (line_of(Resource::Device), capacity.device),
        (line_of(Resource::Lane), capacity.lane),
    ] {
        if !wanted[line_index(line)] {
            continue;
        }
        while running.values().filter(|r| r.line == line).count() < room {
            let c: Claimed = match queue.claim(line, worker).await {
                Ok(Some(c)) => c,
                Ok(None) => {
                    wanted[line_index(line)] = false;
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "claiming from the shared queue failed");
                    return;
                }
            };
            let sink = Arc::new(WorkerSink {
                id: c.id.clone(),
                fence: c.fence,
                waited_before_ms: c.waited_ms,
                out: out.clone(),
            });
            let ticket = match decode_work(&c.payload) {
                _ if Duration::from_millis(c.waited_ms) > capacity.max_wait => {
                    Err(JobError::WaitTimeout(capacity.max_wait))
                }
                Ok(work) => {
                    let wrong_line = line_of(scheduler.executor().resource(&work)) != line;
                    if wrong_line {
                        tracing::warn!(job = %c.id, "a job in the wrong line (workers of different settings?)");
                    }
                    scheduler.submit(work, Party::new(c.id.as_str()), sink.clone())
                }
                Err(e) => {
                    tracing::error!(job = %c.id, error = %e, "an undecodable job in the shared queue");
                    Err(JobError::InvalidInput(
                        "this job could not be read by the device worker".into(),
                    ))
                }
            };
            let ticket = match ticket {
                Ok(t) => Some(t),
                Err(e) => {
                    sink.send(JobId(0), JobEvent::Ended(Err(e)));
                    None
                }
            };
            running.insert(
                c.id,
                Running {
                    ticket,
                    fence: c.fence,
                    line,
                    renewed: Instant::now(),
                },
            );
        }
    }
}

/// Appends events one after another; reports each job whose end was appended (or refused).
async fn emitter(
    queue: SharedQueue,
    mut rx: mpsc::UnboundedReceiver<Emit>,
    done: mpsc::UnboundedSender<String>,
) {
    while let Some(Emit { id, fence, event }) = rx.recv().await {
        let terminal = event.is_terminal();
        let mut tries = 0;
        loop {
            match queue
                .emit(&id, fence, &event.encode(), terminal, event.is_output())
                .await
            {
                Ok(Some(_)) => break,
                Ok(None) => {
                    tracing::debug!(job = %id, "an event was fenced out (the lease was lost)");
                    break;
                }
                Err(e) if tries < 20 => {
                    tries += 1;
                    tracing::debug!(job = %id, error = %e, "appending an event failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => {
                    tracing::warn!(job = %id, error = %e, "an event could not be appended");
                    break;
                }
            }
        }
        if terminal {
            let _ = done.send(id);
        }
    }
}
