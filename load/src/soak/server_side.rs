//! The server's side of the run, from `GET /api/stats` and a connection of its own: the warm-up
//! jobs before the clock starts, a patient read, and the sampling of peaks during the run.

use super::{SAMPLE_EVERY, WARM_UP_TIMEOUT};
use crate::client::{self, Recv, WsClient};
use crate::report::Errors;
use crate::stats::{self, Snapshot};
use app::protocol::{ClientMessage, ServerMessage};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Peak figures of the stats sampled during the run.
#[derive(Default)]
pub(super) struct Samples {
    /// Largest RSS seen.
    pub(super) rss_peak: u64,
    /// Longest queue seen.
    pub(super) queue_peak: u64,
    /// Reads done.
    pub(super) reads: u64,
    /// Reads that failed.
    pub(super) failures: u64,
}

/// Reads `/api/stats`, trying again for a few seconds while the server refuses (its rate limit
/// counts these reads too).
pub(super) async fn fetch_patiently(
    http: &reqwest::Client,
    addr: &str,
) -> Result<Snapshot, String> {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        match stats::fetch(http, addr).await {
            Ok(snap) => return Ok(snap),
            Err(e) if Instant::now() >= until => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Samples `/api/stats` every [`SAMPLE_EVERY`] until `stop` fires.
pub(super) async fn sample(
    http: reqwest::Client,
    addr: String,
    mut stop: oneshot::Receiver<()>,
) -> Samples {
    let mut s = Samples::default();
    loop {
        s.reads += 1;
        let read = tokio::select! {
            read = stats::fetch(&http, &addr) => read,
            _ = &mut stop => return s,
        };
        match read {
            Ok(snap) => {
                s.rss_peak = s.rss_peak.max(snap.stats.process.rss_bytes);
                s.queue_peak = s.queue_peak.max(snap.stats.queue.length);
            }
            Err(_) => s.failures += 1,
        }
        tokio::select! {
            _ = tokio::time::sleep(SAMPLE_EVERY) => {}
            _ = &mut stop => return s,
        }
    }
}

/// One job on a connection of its own, before the clock starts (opens the device and, for a
/// chat, loads the model); its failures are counted under `warmup: ...`.
pub(super) async fn warm_up(addr: &str, job: ClientMessage, errors: &mut Errors) {
    let deadline = Instant::now() + WARM_UP_TIMEOUT;
    let mut ws = match WsClient::connect(addr, &client::new_session(), deadline).await {
        Ok(ws) => ws,
        Err(f) => {
            errors.add(&format!("warmup: {}", f.kind), &f.detail);
            return;
        }
    };
    if let Err(f) = ws.send(&job).await {
        errors.add(&format!("warmup: {}", f.kind), &f.detail);
        return;
    }
    loop {
        match ws.recv(deadline).await {
            Recv::Message(ServerMessage::Done { .. }) => break,
            Recv::Message(ServerMessage::Error { code, message, .. }) => {
                errors.add(&format!("warmup: {code}"), &message);
                break;
            }
            Recv::Message(_) => {}
            Recv::TimedOut => {
                errors.add("warmup: timeout", "the warm-up job did not end in time");
                break;
            }
            Recv::Failed(f) => {
                errors.add(&format!("warmup: {}", f.kind), &f.detail);
                return;
            }
        }
    }
    ws.close().await;
}
