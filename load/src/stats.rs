//! The server's own figures, read from `GET /api/stats` ([`app::api::Stats`]) before and after a
//! run: the device's busy time (its delta over the wall time between the two reads is the
//! utilization the reports give), the process's resident memory, and the queue's order.

use app::api::Stats;
use serde::Serialize;
use std::time::Duration;
use tokio::time::Instant;

/// How long one stats read may take before the run gives up on it.
pub const STATS_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP client for the stats (and, in the saturate scenario, for jobs): no proxy, Nagle off.
pub fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

/// One read of `/api/stats`, with the instant it was taken.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// When the answer arrived.
    pub at: Instant,
    /// What the server said.
    pub stats: Stats,
}

/// Reads `http://addr/api/stats`.
pub async fn fetch(http: &reqwest::Client, addr: &str) -> Result<Snapshot, String> {
    let url = format!("http://{}/api/stats", crate::client::nth_addr(addr, 0));
    let response = http
        .get(&url)
        .timeout(STATS_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("GET {url}: status {}", response.status()));
    }
    let stats = response
        .json::<Stats>()
        .await
        .map_err(|e| format!("GET {url}: undecodable body: {e}"))?;
    Ok(Snapshot {
        at: Instant::now(),
        stats,
    })
}

/// What the server reported over a run: the difference between two snapshots.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ServerFigures {
    /// Seconds between the two reads (they bracket the run).
    pub interval_seconds: f64,
    /// Device busy seconds accumulated between the reads.
    pub busy_seconds: f64,
    /// `busy_seconds / interval_seconds`: the share of the run the device was working (0 to 1).
    pub utilization: f64,
    /// The server's resident memory at the first read, bytes.
    pub rss_before_bytes: u64,
    /// The server's resident memory at the second read, bytes.
    pub rss_after_bytes: u64,
    /// How the server orders its queue (`fair` or `fifo`).
    pub queue_order: String,
    /// Results the server answered from its cache between the reads.
    pub cache_hits: u64,
}

impl ServerFigures {
    /// The figures between `before` and `after`.
    pub fn between(before: &Snapshot, after: &Snapshot) -> ServerFigures {
        let interval = after.at.duration_since(before.at).as_secs_f64();
        let busy = (after.stats.device.busy_seconds_total - before.stats.device.busy_seconds_total)
            .max(0.0);
        ServerFigures {
            interval_seconds: interval,
            busy_seconds: busy,
            utilization: if interval > 0.0 { busy / interval } else { 0.0 },
            rss_before_bytes: before.stats.process.rss_bytes,
            rss_after_bytes: after.stats.process.rss_bytes,
            queue_order: after.stats.queue.order.clone(),
            cache_hits: after
                .stats
                .cache
                .hits
                .saturating_sub(before.stats.cache.hits),
        }
    }
}
