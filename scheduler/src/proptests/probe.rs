//! The stall probe: notes when the machine stopped running the test's threads, so that `TIMING`
//! failures can say how far the machine got in the way.

use super::STALL;
use parking_lot::Mutex;
use std::time::{Duration, Instant};

/// Notes when the machine did not run this process for a while (a thread that sleeps 2 ms at a
/// time and records when it woke much later), for failure reports. A loaded machine can also
/// stall one thread alone (one CPU), so the test's runtime notes its own late wake-ups too.
pub(super) struct Probe {
    /// (asleep since, woke at) for each late wake-up.
    gaps: Mutex<Vec<(Instant, Instant)>>,
}

pub(super) fn probe() -> &'static Probe {
    static PROBE: std::sync::OnceLock<&'static Probe> = std::sync::OnceLock::new();
    PROBE.get_or_init(|| {
        let probe: &'static Probe = Box::leak(Box::new(Probe {
            gaps: Mutex::new(vec![]),
        }));
        std::thread::spawn(move || {
            let mut last = Instant::now();
            loop {
                std::thread::sleep(Duration::from_millis(2));
                let now = Instant::now();
                if now - last >= STALL {
                    probe.gaps.lock().push((last, now));
                }
                last = now;
            }
        });
        probe
    })
}

impl Probe {
    /// The longest stall overlapping `from..to`.
    pub(super) fn worst(&self, from: Instant, to: Instant) -> Duration {
        self.gaps
            .lock()
            .iter()
            .filter(|(a, b)| *a < to && *b > from)
            .map(|(a, b)| (*b).min(to) - (*a).max(from))
            .max()
            .unwrap_or_default()
    }
}
