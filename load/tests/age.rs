//! The ageing scenario in small form (2,000 jobs instead of a million) against a real Turnstile
//! server started in-process on an ephemeral port: the report's shape, and that its figures add
//! up (tenths, their lengths and rates, the comparison, the server's counts).

mod common;

use common::start;
use turnstile_load::age;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn age_reports_every_tenth_of_the_run_with_its_speed_latency_and_memory() {
    let server = start(&[
        "--rate-per-ip",
        "0",
        "--rate-per-connection",
        "0",
        "--rate-per-session",
        "0",
    ])
    .await;
    let opts = age::AgeOptions {
        jobs: 2000,
        clients: 4,
        duration: 120.0,
    };
    let r = age::run(&server.addr, &opts).await.unwrap();
    let summary = format!("{r:#?}");
    assert_eq!(r.errors.total(), 0, "{summary}");
    assert_eq!(
        (r.completed, r.cached, r.unfinished),
        (2000, 0, 0),
        "{summary}"
    );
    assert_eq!(r.clients_started, 4);
    // Ten tenths of 200 jobs each, in order, every one ended, timed and measured.
    assert_eq!(r.tenths.len(), 10, "{summary}");
    let mut seconds = 0.0;
    for (i, t) in r.tenths.iter().enumerate() {
        assert_eq!(
            (t.tenth, t.ended, t.completed),
            (i + 1, true, 200),
            "{summary}"
        );
        assert_eq!(t.latency.count, 200);
        assert!(
            t.latency.p50_us > 0 && t.latency.p99_us >= t.latency.p50_us,
            "{summary}"
        );
        assert!(t.seconds > 0.0 && t.jobs_per_second > 0.0, "{summary}");
        assert!(
            (t.jobs_per_second * t.seconds - 200.0).abs() < 1e-6,
            "jobs/s is the tenth's jobs over its length: {summary}"
        );
        assert!(t.rss_bytes > 0, "the server's memory after tenth {}", i + 1);
        seconds += t.seconds;
    }
    assert!(
        (seconds - r.wall_seconds).abs() < 0.05 * r.wall_seconds + 0.01,
        "the tenths cover the run: {seconds} of {}",
        r.wall_seconds
    );
    assert_eq!(r.latency.count, 2000);
    // The server's CPU time is counted in 10 ms ticks: some tenths may see none, the run not.
    let cpu: f64 = r
        .tenths
        .iter()
        .map(|t| t.server_cpu_us_per_job * 200.0)
        .sum();
    assert!(
        cpu > 0.0 && r.tenths.iter().all(|t| t.server_cpu_us_per_job >= 0.0),
        "{summary}"
    );
    // The comparison is the first and last tenths' own figures.
    let (first, last) = (&r.tenths[0], &r.tenths[9]);
    let expected = (last.jobs_per_second - first.jobs_per_second) / first.jobs_per_second * 100.0;
    assert!(
        (r.ageing.jobs_per_second_change_pct - expected).abs() < 1e-9,
        "{summary}"
    );
    assert_eq!(
        r.ageing.rss_growth_after_warmup_bytes,
        last.rss_bytes as i64 - first.rss_bytes as i64
    );
    // The server saw exactly these jobs: distinct, none from its cache.
    assert_eq!(r.server.cache_hits, 0, "{summary}");
    let table = r.table();
    assert!(
        table.contains("p99 ms") && table.contains("last vs first"),
        "{table}"
    );
    assert!(age::run(&server.addr, &age::AgeOptions { jobs: 9, ..opts })
        .await
        .is_err());
}
