use super::*;
use std::sync::atomic::{AtomicU32, Ordering};

/// Fails its first `fail_first` opens.
struct Flaky {
    fail_first: u32,
    calls: AtomicU32,
}

impl Backend<()> for Flaky {
    fn name(&self) -> String {
        "flaky".into()
    }
    fn open(&self) -> Result<(), String> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.fail_first {
            Err("injected open failure".into())
        } else {
            Ok(())
        }
    }
}

#[test]
fn opens_lazily_and_closes_after_keep_alive() {
    let host = DeviceHost::new(Box::new(Places), Duration::from_millis(50));
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
    assert_eq!(host.view().opens, 2);
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
    let s = host.view();
    assert_eq!((s.opens, s.open_failures), (1, 1));
}

#[test]
fn a_panic_while_leased_releases_the_lease() {
    let host = DeviceHost::new(Box::new(Places), Duration::ZERO);
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
