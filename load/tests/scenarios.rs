//! Every scenario in small form against a real Turnstile server started in-process on an
//! ephemeral port in test mode, each test on a fresh database file, through the crate's library
//! API (and once through the binary); the ageing scenario's is in `age.rs`. Tests take turns (one
//! lock) so that the timing of one (the flood's job-times) is not disturbed by another's load on a
//! small machine.

mod common;

use common::{model_path, start};
use turnstile_load::{chat, flood, hold, jobs::CalcKind, saturate, soak};

/// 4 clients x 20 jobs, well within 30 s.
fn saturate_opts(transport: saturate::Transport, job: CalcKind) -> saturate::SaturateOptions {
    saturate::SaturateOptions {
        clients: 4,
        transport,
        job,
        sleep_us: 2000,
        jobs_per_client: 20,
        duration: 30.0,
    }
}

/// The checks every clean saturate run of 4 x 20 must pass.
fn assert_clean_saturate(r: &saturate::SaturateReport) {
    assert_eq!(r.clients_started, 4, "{r:#?}");
    assert_eq!(r.completed, 80, "{r:#?}");
    assert_eq!(r.errors.total(), 0, "{r:#?}");
    assert_eq!((r.cached, r.unfinished), (0, 0), "{r:#?}");
    assert_eq!(r.latency.count, 80);
    assert!(r.latency.p50_us > 0 && r.latency.p50_us <= r.latency.max_us);
    assert!(r.jobs_per_second > 0.0, "{r:#?}");
    let u = r.server.utilization;
    assert!(u > 0.0 && u <= 1.0, "utilization {u}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturate_over_the_websocket_completes_every_distinct_job() {
    let server = start(&[]).await;
    let r = saturate::run(
        &server.addr,
        &saturate_opts(saturate::Transport::Ws, CalcKind::Add),
    )
    .await
    .unwrap();
    assert_clean_saturate(&r);
    // The adds are distinct, so the server's cache answered none of them.
    assert_eq!(r.server.cache_hits, 0, "{r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturate_over_http_completes_every_distinct_job() {
    let server = start(&[]).await;
    let r = saturate::run(
        &server.addr,
        &saturate_opts(saturate::Transport::Http, CalcKind::Add),
    )
    .await
    .unwrap();
    assert_clean_saturate(&r);
    assert_eq!(r.server.cache_hits, 0, "{r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturate_with_sleeps_accounts_for_their_device_time() {
    let server = start(&[]).await;
    let r = saturate::run(
        &server.addr,
        &saturate_opts(saturate::Transport::Ws, CalcKind::Sleep),
    )
    .await
    .unwrap();
    assert_clean_saturate(&r);
    // 80 jobs of 2 ms each held the device at least that long, and each took at least 2 ms.
    assert!(r.server.busy_seconds >= 0.9 * 0.160, "{r:#?}");
    assert!(r.latency.p50_us >= 2000, "{r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_measures_memory_per_waiter_and_the_lag_of_each_round() {
    let server = start(&[
        "--max-run",
        "1h",
        "--max-wait",
        "1h",
        "--max-waiting",
        "1000",
    ])
    .await;
    let opts = hold::HoldOptions {
        waiters: 50,
        rounds: 3,
        job_ms: 600_000,
        round_gap_ms: 150,
        timeout: 60.0,
    };
    let r = hold::run(&server.addr, &opts).await.unwrap();
    assert_eq!(r.errors.total(), 0, "{r:#?}");
    assert_eq!(r.waiters_queued, 50, "{r:#?}");
    assert!(r.rss_before_bytes > 0 && r.rss_after_bytes > 0, "{r:#?}");
    assert!(r.server_websocket_connections >= 51, "{r:#?}");
    assert_eq!(r.rounds_measured, 3, "{r:#?}");
    assert_eq!(r.lags_us.len(), 3);
    assert_eq!(r.lag.count, 3);
    assert!(r.lags_us.iter().all(|&lag| lag > 0), "{r:#?}");
    assert!(r.lag.max_us < 10_000_000, "{r:#?}");
}

/// 40 flood jobs of 5 ms and 3 light sessions, one every 5 job-times.
fn flood_opts() -> flood::FloodOptions {
    // Jobs long enough that a loaded machine's scheduling noise (a few ms) is small next to one
    // job-time, which is the unit the fairness bounds are stated in.
    flood::FloodOptions {
        flood_jobs: 40,
        light: 3,
        job_ms: 25,
        stagger: 5,
        timeout: 60.0,
    }
}

/// The checks every flood run must pass whatever the order.
fn assert_complete_flood(r: &flood::FloodReport) {
    assert_eq!(r.errors.total(), 0, "{r:#?}");
    assert_eq!((r.flood.submitted, r.flood.completed), (40, 40), "{r:#?}");
    assert_eq!(r.flood.waits_ms.len(), 40);
    assert_eq!(r.light.len(), 3);
    for l in &r.light {
        assert_eq!(
            (l.submitted, l.completed, l.waits_ms.len()),
            (1, 1, 1),
            "{r:#?}"
        );
        assert!(
            l.service_rate.is_some_and(|x| x > 0.0 && x <= 1.0),
            "{r:#?}"
        );
    }
    let j = r.jain_index.unwrap();
    assert!(j > 0.25 && j <= 1.0, "{r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fair_server_lets_light_sessions_past_the_flood() {
    let server = start(&["--max-waiting-per-session", "256"]).await;
    let r = flood::run(&server.addr, &flood_opts()).await.unwrap();
    assert_complete_flood(&r);
    assert_eq!(r.queue_order, "fair");
    for l in &r.light {
        assert!(l.mean_wait_job_times <= 3.0, "{r:#?}");
    }
    // The flood itself waits behind its own backlog.
    assert!(r.flood.mean_wait_job_times > 5.0, "{r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_server_makes_light_sessions_wait_out_the_flood() {
    let server = start(&["--max-waiting-per-session", "256", "--queue-order", "fifo"]).await;
    let r = flood::run(&server.addr, &flood_opts()).await.unwrap();
    assert_complete_flood(&r);
    assert_eq!(r.queue_order, "fifo");
    assert!(r.light[0].mean_wait_job_times > 10.0, "{r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_streams_report_first_tokens_and_speeds() {
    let model = model_path();
    assert!(
        std::path::Path::new(&model).exists(),
        "{model} is missing: run scripts/model.sh"
    );
    let server = start(&[]).await;
    let opts = chat::ChatOptions {
        clients: 2,
        max_tokens: 4,
        prompt: "Say hello.".into(),
        timeout: 60.0,
        rounds: 2,
        stagger_ms: 0,
        calc_every_ms: 20,
    };
    let r = chat::run(&server.addr, &opts).await.unwrap();
    assert_eq!(r.errors.total(), 0, "{r:#?}");
    // Two clients, two chats each, one after another.
    assert_eq!(r.completed, 4, "{r:#?}");
    assert!((4..=16).contains(&r.total_tokens), "{r:#?}");
    assert!(r.token_messages >= 4, "{r:#?}");
    assert_eq!(r.time_to_first_token.count, 4, "{r:#?}");
    assert_eq!(
        r.time_to_first_token_alone.count + r.time_to_first_token_joined.count,
        4
    );
    assert!(r.time_to_first_token.p50_us > 0);
    assert_eq!(r.stream_tokens_per_second.count, 4, "{r:#?}");
    assert_eq!(r.queue_wait.count, 4, "{r:#?}");
    assert!(r.total_tokens_per_second > 0.0, "{r:#?}");
    assert!(
        r.calc_latency.count > 0,
        "the probe ran while the chats did: {r:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_with_churn_and_chats_keeps_every_promise() {
    let model = model_path();
    assert!(
        std::path::Path::new(&model).exists(),
        "{model} is missing: run scripts/model.sh"
    );
    // The 40 clients share one address, so its rate limit is lifted; each session's and each
    // connection's still apply.
    let server = start(&["--max-waiting", "5000", "--rate-per-ip", "0"]).await;
    // 40 clients, 2,000 jobs of which 6 chats (the 4 churning clients get one each, drop it after
    // its first token and resume it), churn 10 %: well within 30 s on two loaded cores.
    let opts = soak::SoakOptions {
        clients: 40,
        jobs: 2000,
        chat_share: 0.003,
        cached_share: 0.05,
        churn: 0.10,
        churn_jobs: 0.3,
        max_tokens: 4,
        prompt: "Say hello.".into(),
        duration: 30.0,
        grace: 10.0,
        settle: 10.0,
        linger: 0.0,
        seed: None,
    };
    let r = soak::run(&server.addr, &opts).await.unwrap();
    let summary = format!("{}\n{r:#?}", r.table());
    eprintln!("{}\n{:#?}", r.table(), r.chats.replays);
    assert_eq!(r.violations.total(), 0, "{summary}");
    assert_eq!(r.clients_connected, 40, "{summary}");
    assert_eq!(r.churning_clients, 4, "{summary}");
    let j = &r.jobs;
    assert!(r.every_job_accounted, "{summary}");
    assert_eq!(
        (j.planned, j.submitted, j.not_run),
        (2000, 2000, 0),
        "{summary}"
    );
    assert_eq!(
        (j.failed, j.lost, j.unfinished, j.gave_up),
        (0, 0, 0, 0),
        "{summary}"
    );
    assert_eq!(
        j.completed + j.cancelled + j.dropped_by_disconnect,
        2000,
        "{summary}"
    );
    assert!(
        j.cancelled >= 1 && j.dropped_by_disconnect >= 1,
        "{summary}"
    );
    assert_eq!(r.errors.total(), 0, "{summary}");
    let c = &r.chats;
    assert_eq!(c.submitted, 6, "{summary}");
    assert!(c.resumed >= 4 && c.replays_exact == c.resumed, "{summary}");
    assert_eq!(c.replays_inexact, 0, "{summary}");
    let exact = |p: &soak::ReplayRecord| p.exact && p.first_seq_after == Some(p.last_seq + 1);
    assert!(c.replays.iter().all(exact), "{summary}");
    // The churning clients' chats were dropped in the middle of their answers.
    let mid_answer = c.replays.iter().filter(|p| p.dropped_after == "token");
    assert!(mid_answer.count() >= 4, "{summary}");
    assert_eq!(c.completed + c.cancelled, 6, "{summary}");
    assert_eq!(
        r.churn.calc_resume_refused, r.churn.calc_resume_probes,
        "{summary}"
    );
    assert!(r.server.queue_back_to_zero, "{summary}");
    assert!(r.server.rss_start_bytes > 0 && r.server.rss_peak_bytes >= r.server.rss_end_bytes);
    assert!(
        r.calc_latency.count > 0 && r.jobs_per_second > 0.0,
        "{summary}"
    );
    // Every socket of the run is closed on the server's side too.
    let s = &r.server;
    assert!(
        s.websocket_connections_end <= s.websocket_connections_start,
        "{summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soak_under_a_tight_rate_limit_sends_refused_messages_again() {
    // 60 messages a second for the whole address: submissions, cancels, resumes and pings are
    // refused `rate_limited` again and again, and must be sent again, never lost or doubled.
    let server = start(&["--rate-per-ip", "60"]).await;
    let opts = soak::SoakOptions {
        clients: 10,
        jobs: 300,
        chat_share: 0.0,
        cached_share: 0.05,
        churn: 0.3,
        churn_jobs: 0.5,
        max_tokens: 4,
        prompt: "Say hello.".into(),
        duration: 30.0,
        grace: 10.0,
        settle: 10.0,
        linger: 0.0,
        seed: None,
    };
    let r = soak::run(&server.addr, &opts).await.unwrap();
    let summary = format!("{}\n{r:#?}", r.table());
    eprintln!("{}", r.table());
    assert_eq!(r.violations.total(), 0, "{summary}");
    assert_eq!(r.errors.total(), 0, "{summary}");
    assert!(r.every_job_accounted, "{summary}");
    let j = &r.jobs;
    assert_eq!((j.submitted, j.not_run), (300, 0), "{summary}");
    assert_eq!(
        j.completed + j.cancelled + j.dropped_by_disconnect,
        300,
        "{summary}"
    );
    assert!(
        r.refused.get("rate_limited").is_some_and(|n| *n > 0),
        "{summary}"
    );
    assert!(
        r.churn.cancels_sent > 0 && r.churn.disconnects > 0,
        "{summary}"
    );
    assert_eq!(
        r.churn.calc_resume_refused, r.churn.calc_resume_probes,
        "{summary}"
    );
    assert!(r.server.queue_back_to_zero, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_prints_a_table_and_writes_the_same_figures_as_json() {
    let server = start(&[]).await;
    let json = std::env::temp_dir().join(format!(
        "turnstile-load-test-{}.json",
        turnstile_load::client::new_session()
    ));
    let args: Vec<String> = [
        "--addr",
        &server.addr,
        "--json",
        json.to_str().unwrap(),
        "saturate",
        "--clients",
        "2",
        "--jobs-per-client",
        "5",
        "--transport",
        "http",
        "--duration",
        "30",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_turnstile-load"))
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("jobs completed") && stdout.contains("device utilization"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    assert_eq!(report["scenario"], "saturate");
    assert_eq!(report["completed"], 10, "{report:#}");
    assert_eq!(report["options"]["transport"], "http");
    assert!(report["latency"]["p99_us"].as_u64().unwrap() > 0);
}
