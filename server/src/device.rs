//! The compute device's lifecycle: opened lazily by the first job that needs it, kept open while
//! jobs hold leases, closed after an idle keep-alive, re-opened on demand. A failed open fails the
//! job that asked and is retried by the next one.
//!
//! Concurrency: one [`DeviceHost`] is shared by the scheduler (which only calls
//! [`DeviceHost::close_if_idle`], with `try_lock`, so it never waits on a slow open) and the job
//! runners (which take [`Lease`]s on blocking threads). The state sits behind a small mutex that is
//! never held across an `.await`; how many jobs hold the device at once is the scheduler's to bound.

use app::api::DeviceStats;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Something that can open a candle device.
pub trait Backend: Send + Sync + 'static {
    /// `cpu`, `cuda:0`, ...
    fn name(&self) -> String;
    /// Opens the device. The error text goes to the log only.
    fn open(&self) -> Result<candle_core::Device, String>;
}

/// candle's CPU device (the default).
pub struct CpuBackend;

impl Backend for CpuBackend {
    fn name(&self) -> String {
        "cpu".into()
    }

    fn open(&self) -> Result<candle_core::Device, String> {
        Ok(candle_core::Device::Cpu)
    }
}

/// candle's CUDA device `ordinal` (cargo feature `cuda`).
#[cfg(feature = "cuda")]
pub struct CudaBackend(pub usize);

#[cfg(feature = "cuda")]
impl Backend for CudaBackend {
    fn name(&self) -> String {
        format!("cuda:{}", self.0)
    }

    fn open(&self) -> Result<candle_core::Device, String> {
        candle_core::Device::new_cuda(self.0).map_err(|e| e.to_string())
    }
}

/// The device and who holds it.
pub struct DeviceHost {
    /// Opens the device.
    backend: Box<dyn Backend>,
    /// How long the device stays open with no lease.
    keep_alive: Duration,
    /// The open device and its bookkeeping.
    state: Mutex<State>,
}

struct State {
    /// The open device, if any.
    device: Option<candle_core::Device>,
    /// Leases alive now.
    leases: usize,
    /// When the last lease was dropped (or the device opened).
    idle_since: Instant,
    /// Successful opens since start.
    opens: u64,
    /// Failed opens since start.
    open_failures: u64,
}

/// A job's hold on the open device; dropping it (also during a panic's unwinding) releases it.
pub struct Lease {
    host: Arc<DeviceHost>,
    device: candle_core::Device,
}

impl Lease {
    /// The device to compute on.
    pub fn device(&self) -> &candle_core::Device {
        &self.device
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut s = self.host.state.lock();
        s.leases -= 1;
        if s.leases == 0 {
            s.idle_since = Instant::now();
        }
    }
}

impl DeviceHost {
    /// A closed device on `backend`.
    pub fn new(backend: Box<dyn Backend>, keep_alive: Duration) -> Arc<Self> {
        Arc::new(DeviceHost {
            backend,
            keep_alive,
            state: Mutex::new(State {
                device: None,
                leases: 0,
                idle_since: Instant::now(),
                opens: 0,
                open_failures: 0,
            }),
        })
    }

    /// Takes a lease, opening the device first if it is closed. Blocking: call it from a blocking
    /// thread. On failure the device stays closed and the next call tries again.
    pub fn lease(self: &Arc<Self>) -> Result<Lease, String> {
        let mut s = self.state.lock();
        let device = match &s.device {
            Some(d) => d.clone(),
            None => match self.backend.open() {
                Ok(d) => {
                    s.opens += 1;
                    tracing::info!(backend = %self.backend.name(), "device opened");
                    s.device = Some(d.clone());
                    d
                }
                Err(e) => {
                    s.open_failures += 1;
                    return Err(e);
                }
            },
        };
        s.leases += 1;
        Ok(Lease {
            host: Arc::clone(self),
            device,
        })
    }

    /// Closes the device if nobody holds it and it has been idle for the keep-alive. Never waits:
    /// if the state is busy (an open in progress) it does nothing. Returns whether it closed.
    pub fn close_if_idle(&self, now: Instant) -> bool {
        let Some(mut s) = self.state.try_lock() else {
            return false;
        };
        if s.device.is_some()
            && s.leases == 0
            && now.saturating_duration_since(s.idle_since) >= self.keep_alive
        {
            s.device = None;
            tracing::info!(backend = %self.backend.name(), "device closed after idle keep-alive");
            return true;
        }
        false
    }

    /// Whether the device is open now.
    pub fn is_open(&self) -> bool {
        self.state.lock().device.is_some()
    }

    /// The `device` section of `/api/stats`.
    pub fn stats(&self) -> DeviceStats {
        let s = self.state.lock();
        DeviceStats {
            backend: self.backend.name(),
            open: s.device.is_some(),
            opens: s.opens,
            open_failures: s.open_failures,
            keep_alive_seconds: self.keep_alive.as_secs_f64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Fails its first `fail_first` opens.
    struct Flaky {
        fail_first: u32,
        calls: AtomicU32,
    }

    impl Backend for Flaky {
        fn name(&self) -> String {
            "flaky".into()
        }
        fn open(&self) -> Result<candle_core::Device, String> {
            if self.calls.fetch_add(1, Ordering::SeqCst) < self.fail_first {
                Err("injected open failure".into())
            } else {
                Ok(candle_core::Device::Cpu)
            }
        }
    }

    #[test]
    fn opens_lazily_and_closes_after_keep_alive() {
        let host = DeviceHost::new(Box::new(CpuBackend), Duration::from_millis(50));
        assert!(!host.is_open());
        let lease = host.lease().unwrap();
        assert!(host.is_open());
        // Held: never closed, however long.
        assert!(!host.close_if_idle(Instant::now() + Duration::from_secs(3600)));
        drop(lease);
        assert!(
            !host.close_if_idle(Instant::now()),
            "closed before the keep-alive"
        );
        assert!(host.close_if_idle(Instant::now() + Duration::from_millis(60)));
        assert!(!host.is_open());
        // Re-opened on demand.
        let _again = host.lease().unwrap();
        assert_eq!(host.stats().opens, 2);
    }

    #[test]
    fn a_failed_open_is_retried_by_the_next_lease() {
        let host = DeviceHost::new(
            Box::new(Flaky {
                fail_first: 1,
                calls: AtomicU32::new(0),
            }),
            Duration::from_secs(1),
        );
        assert!(host.lease().is_err());
        assert!(!host.is_open());
        assert!(host.lease().is_ok());
        let s = host.stats();
        assert_eq!((s.opens, s.open_failures), (1, 1));
    }

    #[test]
    fn a_panic_while_leased_releases_the_lease() {
        let host = DeviceHost::new(Box::new(CpuBackend), Duration::ZERO);
        let h = Arc::clone(&host);
        let r = std::thread::spawn(move || {
            let _lease = h.lease().unwrap();
            panic!("job panicked");
        })
        .join();
        assert!(r.is_err());
        assert!(
            host.close_if_idle(Instant::now()),
            "lease leaked by the panic"
        );
    }
}
