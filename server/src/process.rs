//! This process's own resource use, as the kernel reports it (`/proc/self`), for `/api/stats`
//! and the load generator's ageing scenario. Plain functions; no state.

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
}
