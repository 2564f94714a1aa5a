//! The scripted executor: each job's kind and the test's commands decide what it does, and it
//! counts the jobs on the device. Its jobs are the test kit's [`TestJob`]s (a `Sleep` of the
//! job's cost, so the fair order charges that), told apart by their labels.

use super::SAFETY;
use crate::testkit::{TestError, TestJob, TestOutput};
use crate::{Error, Executor, RunContext};
use futures::future::BoxFuture;
use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What a job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// Holds the device until the test finishes it, makes it panic, or it is cancelled.
    Held,
    /// Returns as soon as it reaches the device.
    Quick,
    /// Panics in the executor's async part, before it reaches the device.
    EarlyPanic,
}

/// What the test tells a held job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cmd {
    Finish,
    Panic,
}

/// The executor: each job's label keys its kind and the commands for it.
#[derive(Default)]
pub(super) struct Script {
    pub(super) kinds: Mutex<HashMap<u64, Kind>>,
    cmds: Mutex<HashMap<u64, Cmd>>,
    pub(super) wake: Condvar,
    /// Jobs inside their device closure now.
    pub(super) on_device: AtomicUsize,
    /// The most ever seen at once.
    pub(super) most_on_device: AtomicUsize,
    /// Labels in the order their jobs reached the device (for failure reports).
    pub(super) started: Mutex<Vec<u64>>,
    /// Labels in the order their runners called the executor (for failure reports).
    pub(super) runs: Mutex<Vec<u64>>,
    /// Set when a case ends: held jobs give up at once.
    pub(super) aborted: AtomicBool,
}

/// Counts a job off the device when its closure returns or unwinds.
struct Leave<'a>(&'a AtomicUsize);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Script {
    pub(super) fn command(&self, label: u64, cmd: Cmd) {
        self.cmds.lock().insert(label, cmd);
        self.wake.notify_all();
    }

    /// The device closure.
    fn hold(&self, label: u64, kind: Kind, cancel: &CancellationToken) -> Result<u64, TestError> {
        let now = self.on_device.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_on_device.fetch_max(now, Ordering::SeqCst);
        self.started.lock().push(label);
        let _leave = Leave(&self.on_device);
        let output = label;
        if kind == Kind::Quick {
            return Ok(output);
        }
        let give_up = Instant::now() + SAFETY;
        let mut cmds = self.cmds.lock();
        loop {
            let cmd = cmds.remove(&label);
            match cmd {
                Some(Cmd::Finish) => return Ok(output),
                Some(Cmd::Panic) => {
                    drop(cmds);
                    // A panic that skips the panic hook (no noise in the test output).
                    std::panic::resume_unwind(Box::new("scripted panic on the device"));
                }
                None => {}
            }
            if cancel.is_cancelled() {
                return Err(Error::Cancelled.into());
            }
            if self.aborted.load(Ordering::SeqCst) || Instant::now() > give_up {
                return Err(TestError::Internal);
            }
            self.wake.wait_for(&mut cmds, Duration::from_millis(1));
        }
    }
}

impl Executor for Script {
    type Job = TestJob;
    type Device = ();
    type Progress = String;
    type Output = TestOutput;
    type Error = TestError;

    fn validate(&self, _job: &TestJob) -> Result<(), TestError> {
        Ok(())
    }

    fn run(
        self: Arc<Self>,
        job: TestJob,
        ctx: RunContext<Self>,
    ) -> BoxFuture<'static, Result<TestOutput, TestError>> {
        Box::pin(async move {
            let label = job.label;
            self.runs.lock().push(label);
            let kind = self
                .kinds
                .lock()
                .get(&label)
                .copied()
                .unwrap_or(Kind::Quick);
            if kind == Kind::EarlyPanic {
                std::panic::resume_unwind(Box::new("scripted panic before the device"));
            }
            let cancel = ctx.cancel.clone();
            let output = ctx
                .on_device(move |_| self.hold(label, kind, &cancel))
                .await?;
            Ok(TestOutput::Calc(output))
        })
    }
}
