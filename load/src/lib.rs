//! Turnstile's load generator, as a library: six scenarios that drive a running Turnstile server
//! over its public API only (the WebSocket at `/ws`, `POST /api/execute` and `GET /api/stats`)
//! and report what they measured. The `turnstile-load` binary (`main.rs`) is a thin CLI over it;
//! the tests run the same scenarios in small form against an in-process server.
//!
//! What each module owns:
//! - [`client`]: one WebSocket connection, as a session of its own, either driven directly
//!   ([`client::WsClient`]) or as a task that stamps every message into a shared channel
//!   ([`client::spawn`]), for scenarios that follow thousands of sockets at once.
//! - [`fleet`]: many spawned connections reporting into one channel, read under a deadline.
//! - [`stats`]: reading `/api/stats` before and after a run; device utilization and memory.
//! - [`jobs`]: the jobs the scenarios submit (distinct calculator adds, test-mode sleeps, chats).
//! - [`report`]: latency percentiles, error tallies, Jain's index, tables and JSON output.
//! - [`saturate`], [`hold`], [`flood`], [`chat`], [`soak`], [`age`]: one scenario each (see their
//!   docs).
//!
//! Every scenario is bounded in count and in time; a socket or protocol failure is counted as an
//! error with its reason, never a panic. A scenario returns `Err` only when it could not measure
//! at all (the server's stats cannot be read).
//!
//! **Running it.** `turnstile-load [--addr 127.0.0.1:3000] [--json PATH] <scenario> [options]`
//! against a server started with the flags each scenario needs:
//!
//! | scenario | example | server flags |
//! |---|---|---|
//! | saturate | `saturate --clients 100 --transport ws --job sleep --sleep-us 1000 --duration 30` | `--test-mode` for `--job sleep` |
//! | hold | `hold --waiters 10000 --rounds 20` | `--test-mode --max-run 1h --max-wait 1h --max-waiting 20000`, and `ulimit -n` above the waiters |
//! | flood | `flood --flood-jobs 200 --light 9 --job-ms 20` | `--test-mode --max-waiting-per-session 256`, `--queue-order fair` or `fifo` |
//! | chat | `chat --clients 4 --max-tokens 64` | the chat model (the embedded one by default) |
//! | soak | `soak --clients 1000 --jobs 100000 --chat-share 0.02 --churn 0.10 --duration 600` | `--max-waiting 20000 --rate-per-ip 0 --max-connections-per-ip 0`, and `ulimit -n` above the clients |
//! | age | `age --jobs 1000000 --clients 100` | `--rate-per-ip 0 --rate-per-session 0 --rate-per-connection 0` (a release server) |
//!
//! **Fairness.** The flood scenario reports Jain's fairness index over the sessions it ran,
//! `J = (Σx)² / (n·Σx²)`, where `x_i` is session `i`'s service rate: the device time it received
//! while it had a job waiting or running, over the length of that period (from its first
//! submission to its last job's end). `J` is 1 when every session got the device at the same
//! rate and `1/n` when one session got it all.

pub mod age;
pub mod chat;
pub mod client;
pub mod fleet;
pub mod flood;
pub mod hold;
pub mod jobs;
pub mod report;
pub mod saturate;
pub mod soak;
pub mod stats;

/// What a scenario returns when it could not run at all; the reason is for a person.
pub type RunResult<T> = Result<T, String>;

/// `secs` seconds as a duration, clamped to 0 ..= 10^9 s (NaN is 0), so a deadline computed from
/// it can never overflow an `Instant`.
pub fn seconds(secs: f64) -> std::time::Duration {
    std::time::Duration::try_from_secs_f64(secs.clamp(0.0, 1e9)).unwrap_or_default()
}
