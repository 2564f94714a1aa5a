//! This process's own resource use, as the kernel reports it (`/proc/self`), for `/api/stats`
//! and the load generator's ageing scenario, and how its async threads are scheduled. Plain
//! functions; no state.

/// The server process's resident memory in bytes, from `/proc/self/status` (`None` elsewhere).
pub fn process_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// CPU time the server process has used since start (user plus system, all threads), in
/// seconds, from `/proc/self/stat` (`None` elsewhere). Unlike wall-clock rates it does not move
/// when other processes take the machine's cores, so work per job can be compared over a run.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; fields count from after its closing paren,
    // where field 3 (state) comes first: utime is field 14, stime field 15.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let ticks = |field: usize| fields.get(field - 3)?.parse::<u64>().ok();
    // USER_HZ, in which /proc reports CPU times, is 100 on every Linux architecture's ABI.
    Some((ticks(14)? + ticks(15)?) as f64 / 100.0)
}

/// Puts the calling thread under `SCHED_BATCH` (Linux; its nice value unchanged): a thread woken
/// under this policy does not preempt the running one. The async threads take it, so that on a
/// core they share with a device thread, a job's result waking them never interrupts the next
/// job on the device; their share of the CPU is that of any normal thread. Any thread may do
/// this without privileges. Elsewhere, or if the kernel refuses, the thread stays as it was.
pub fn batch_scheduling() -> bool {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{
            set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
            ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
        };
        // The crate maps 0..=99 onto the nice values -20..=19; 48 is nice 0 (checked in the
        // tests below).
        let Ok(nice_zero) = ThreadPriorityValue::try_from(48u8) else {
            return false;
        };
        set_thread_priority_and_policy(
            thread_native_id(),
            ThreadPriority::Crossplatform(nice_zero),
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch),
        )
        .is_ok()
    }
    #[cfg(not(target_os = "linux"))]
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_process_knows_its_resident_memory() {
        if cfg!(target_os = "linux") {
            let rss = process_rss_bytes().expect("VmRSS on Linux");
            assert!(rss > 1 << 20, "{rss}");
        }
    }

    #[test]
    fn the_process_knows_the_cpu_time_it_used() {
        let before = process_cpu_seconds().expect("/proc/self/stat (Turnstile runs on Linux)");
        // Spinning uses CPU, so the total grows (within 10 s of wall time, however loaded the
        // machine), and it never goes back.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        let mut after = before;
        while after < before + 0.2 && start.elapsed() < Duration::from_secs(10) {
            for _ in 0..1_000_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
            after = process_cpu_seconds().unwrap();
        }
        assert!(after >= before + 0.2, "{before} -> {after}");
        assert!(process_cpu_seconds().unwrap() >= after);
    }

    #[test]
    fn a_batch_thread_keeps_its_nice_value() {
        // The policy (field 41) and the nice value (field 19) of a fresh thread, after.
        let fields = std::thread::spawn(|| {
            assert!(batch_scheduling(), "any thread may choose SCHED_BATCH");
            let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
            let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
            let f: Vec<i64> = after_comm
                .split_whitespace()
                .map(|x| x.parse().unwrap_or(-1))
                .collect();
            (f[41 - 3], f[19 - 3])
        })
        .join()
        .unwrap();
        const SCHED_BATCH: i64 = 3;
        assert_eq!(fields, (SCHED_BATCH, 0));
    }
}
