//! Test-only fault injection. With `--test-mode`, `POST /test/faults` arms faults that the next
//! jobs run into, so tests can prove that each failure touches only the jobs it hits, releases
//! the device, and shows in `/health` until the next success. Without `--test-mode` the route
//! does not exist and nothing here is ever armed.
//!
//! Each fault is a count: armed with `n`, it fires for the next `n` times its point is reached.
//! - `device_open`: opening the device fails (the device must be closed for it to be opened).
//! - `job_panic`: a calculator job panics on the device thread.
//! - `device_fail`: a calculator job fails on the device mid-way (after it started).
//! - `model_load_fail`: loading the chat model fails.
//! - `model_load_stall_ms`: loading the chat model stalls this long first (so it can pass its
//!   timeout); fires once.
//!
//! Concurrency: atomics only; read by the device threads, the model loader and the calculator.

use serde::Deserialize;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Where a fault can be injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Opening the device.
    DeviceOpen,
    /// A calculator job, before it computes: it panics.
    JobPanic,
    /// A calculator job, after it started: the device fails.
    DeviceFail,
    /// Loading the chat model.
    ModelLoadFail,
}

/// Armed faults.
#[derive(Debug, Default)]
pub struct Faults {
    device_open: AtomicU32,
    job_panic: AtomicU32,
    device_fail: AtomicU32,
    model_load_fail: AtomicU32,
    model_load_stall_ms: AtomicU64,
}

/// The body of `POST /test/faults`: counts to add (absent = 0).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arm {
    #[serde(default)]
    device_open: u32,
    #[serde(default)]
    job_panic: u32,
    #[serde(default)]
    device_fail: u32,
    #[serde(default)]
    model_load_fail: u32,
    #[serde(default)]
    model_load_stall_ms: u64,
}

impl Faults {
    fn counter(&self, fault: Fault) -> &AtomicU32 {
        match fault {
            Fault::DeviceOpen => &self.device_open,
            Fault::JobPanic => &self.job_panic,
            Fault::DeviceFail => &self.device_fail,
            Fault::ModelLoadFail => &self.model_load_fail,
        }
    }

    /// Whether `fault` fires now (using up one of its count).
    pub fn fires(&self, fault: Fault) -> bool {
        self.counter(fault)
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    /// How long the next model load should stall (once), if armed.
    pub fn take_load_stall(&self) -> Option<Duration> {
        let ms = self.model_load_stall_ms.swap(0, Ordering::SeqCst);
        (ms > 0).then(|| Duration::from_millis(ms))
    }

    /// Adds the counts in `arm`.
    pub fn arm(&self, arm: &Arm) {
        self.device_open
            .fetch_add(arm.device_open, Ordering::SeqCst);
        self.job_panic.fetch_add(arm.job_panic, Ordering::SeqCst);
        self.device_fail
            .fetch_add(arm.device_fail, Ordering::SeqCst);
        self.model_load_fail
            .fetch_add(arm.model_load_fail, Ordering::SeqCst);
        if arm.model_load_stall_ms > 0 {
            self.model_load_stall_ms
                .store(arm.model_load_stall_ms, Ordering::SeqCst);
        }
    }
}

/// A device backend whose opens can be made to fail.
pub struct FaultyBackend {
    /// The real backend.
    pub inner: Box<dyn crate::device::Backend<crate::device::Device>>,
    /// Where `device_open` is armed.
    pub faults: std::sync::Arc<Faults>,
}

impl crate::device::Backend<crate::device::Device> for FaultyBackend {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn open(&self) -> Result<candle_core::Device, String> {
        if self.faults.fires(Fault::DeviceOpen) {
            return Err("injected fault: the device failed to open".into());
        }
        self.inner.open()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_fires_as_many_times_as_armed() {
        let f = Faults::default();
        assert!(!f.fires(Fault::JobPanic));
        f.arm(&Arm {
            job_panic: 2,
            model_load_stall_ms: 50,
            ..Arm::default()
        });
        assert!(f.fires(Fault::JobPanic));
        assert!(f.fires(Fault::JobPanic));
        assert!(!f.fires(Fault::JobPanic));
        assert!(!f.fires(Fault::DeviceOpen));
        assert_eq!(f.take_load_stall(), Some(Duration::from_millis(50)));
        assert_eq!(f.take_load_stall(), None);
    }
}
