//! `GET /metrics`: the registry's text, refreshed from the scheduler's view and the other
//! components' gauges at scrape time (`crate::metrics` owns the registry).
//!
//! Concurrency: reads only; the registry's metrics are atomics.

use crate::http::AppState;
use crate::metrics::{KindLabel, StateLabel};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use prometheus_client::metrics::counter::Counter;
use std::sync::atomic::AtomicU64;

/// Sets a float counter that only ever grows to `value` (a total kept elsewhere).
fn catch_up(counter: &Counter<f64, AtomicU64>, value: f64) {
    let behind = value - counter.get();
    if behind > 0.0 {
        counter.inc_by(behind);
    }
}

/// `GET /metrics` (with `--protect-metrics`, for the admin token only).
pub async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if state.config.protect_metrics && !crate::http::admin::is_admin(&state.config, &headers) {
        return crate::error::AppError::new(
            app::error_code::ErrorCode::Forbidden,
            "the metrics need the admin token (Authorization: Bearer ...)",
        )
        .into_response();
    }
    let m = &state.metrics;
    if let Some(view) = state.scheduler.view().await {
        for (kind, n) in &view.waiting_by_kind {
            m.queue_jobs
                .get_or_create(&KindLabel {
                    kind: (*kind).into(),
                })
                .set(*n as i64);
        }
        let states = [
            ("waiting", view.waiting.saturating_sub(view.prefetched)),
            ("prefetched", view.prefetched),
            ("running", view.running),
        ];
        for (name, n) in states {
            m.jobs
                .get_or_create(&StateLabel { state: name.into() })
                .set(n as i64);
        }
        m.device_utilization.set(view.device.utilization);
        catch_up(&m.device_busy, view.device.busy.as_secs_f64());
        m.device_open.set(i64::from(view.device.open));
    }
    let model = state.chat.stats();
    m.model_loaded.set(i64::from(matches!(
        model.state.as_str(),
        "loaded" | "remote"
    )));
    if let Some(t) = model.load_time_seconds {
        m.model_load_time.set(t);
    }
    m.model_waiting.set(model.waiting as i64);
    m.websocket_connections
        .set(state.connections.load(std::sync::atomic::Ordering::Relaxed) as i64);
    catch_up(
        &m.websocket_refused,
        state.ws_refused.load(std::sync::atomic::Ordering::Relaxed) as f64,
    );
    let cache = state.cache.stats();
    m.cache_entries.set(cache.size as i64);
    m.cache_bytes.set(cache.bytes as i64);
    catch_up(&m.cache_hits, cache.hits as f64);
    catch_up(&m.cache_misses, cache.misses as f64);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
        .into_response()
}
