//! The server's device: candle's CPU (or CUDA) device behind the scheduler's generic device host
//! (`turnstile_scheduler::device`, which owns the device threads, the lifecycle and the busy
//! time). This module only says how to open a candle device, and names the host's types for it.
//!
//! Concurrency: the backends are stateless; see the scheduler crate for the host's invariants.

pub use turnstile_scheduler::device::{Backend, Busy, WorkerConfig};

/// The device jobs compute on.
pub type Device = candle_core::Device;
/// The device's host (threads, lifecycle, busy time) for candle devices.
pub type DeviceHost = turnstile_scheduler::device::DeviceHost<Device>;
/// Work for a device thread.
pub type DeviceTask = turnstile_scheduler::device::DeviceTask<Device>;

/// candle's CPU device (the default).
pub struct CpuBackend;

impl Backend<Device> for CpuBackend {
    fn name(&self) -> String {
        "cpu".into()
    }

    fn open(&self) -> Result<Device, String> {
        Ok(Device::Cpu)
    }
}

/// candle's CUDA device `ordinal` (cargo feature `cuda`).
#[cfg(feature = "cuda")]
pub struct CudaBackend(pub usize);

#[cfg(feature = "cuda")]
impl Backend<Device> for CudaBackend {
    fn name(&self) -> String {
        format!("cuda:{}", self.0)
    }

    fn open(&self) -> Result<Device, String> {
        Device::new_cuda(self.0).map_err(|e| e.to_string())
    }
}
