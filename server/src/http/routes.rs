//! The JSON HTTP API. Every job goes through the same scheduler as the WebSocket's; reads come
//! from one scheduler snapshot. Errors are [`AppError`]s: real status codes and
//! `{"success":false,"error":{"code","message"}}` bodies.
//!
//! Concurrency: handlers hold no state of their own; a dropped request (client gone) drops its
//! job ticket, which cancels the job.

use crate::error::AppError;
use crate::http::AppState;
use crate::job::{JobEvent, Outcome, Work};
use app::api::{ExecuteResponse, Health, SubsystemHealth, Subsystems};
use app::error_code::ErrorCode;
use app::protocol::CalcJob;
use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;
use turnstile_scheduler::QueueView;

fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown")
        .to_owned()
}

/// `POST /api/execute`: one calculator job, answered when it is done.
pub async fn execute(
    State(state): State<AppState>,
    crate::http::party::RequestParty(party): crate::http::party::RequestParty,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ExecuteResponse>, AppError> {
    let rid = request_id(&headers);
    let limit = state.config.max_message_bytes;
    let bytes = to_bytes(body, limit).await.map_err(|_| {
        AppError::new(
            ErrorCode::BadMessage,
            format!("the request body is over the limit of {limit} bytes"),
        )
        .with_request_id(&rid)
    })?;
    let job: CalcJob = decode_body(&bytes).map_err(|e| e.with_request_id(&rid))?;
    if let Some(hit) = state.cached(&job) {
        return Ok(Json(ExecuteResponse {
            success: true,
            result: hit.output.clone(),
            request_id: rid,
            waited_ms: 0,
            compute_ms: hit.compute_ms,
            cached: true,
        }));
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let ticket = state
        .scheduler
        .submit(Work::Calc(job), party, std::sync::Arc::new(tx))
        .await
        .map_err(|e| AppError::from(e).with_request_id(&rid))?;
    tracing::debug!(request_id = %rid, job_id = %ticket.id(), "job submitted over HTTP");
    let mut waited_ms = 0;
    while let Some((_, event)) = rx.recv().await {
        match event {
            JobEvent::Started { waited_ms: w } => waited_ms = w,
            JobEvent::Ended(Ok(Outcome::Tensor { output, compute_ms })) => {
                ticket.disarm();
                return Ok(Json(ExecuteResponse {
                    success: true,
                    result: output,
                    request_id: rid,
                    waited_ms,
                    compute_ms,
                    cached: false,
                }));
            }
            JobEvent::Ended(Err(e)) => {
                ticket.disarm();
                return Err(AppError::from(e).with_request_id(&rid));
            }
            JobEvent::Ended(Ok(Outcome::Chat(_))) => {
                ticket.disarm();
                return Err(
                    AppError::new(ErrorCode::Internal, "the job ended without a result")
                        .with_request_id(&rid),
                );
            }
            JobEvent::Accepted { .. } | JobEvent::Position { .. } | JobEvent::Progress(_) => {}
        }
    }
    Err(AppError::new(
        ErrorCode::Internal,
        "the scheduler stopped before the job ended",
    )
    .with_request_id(&rid))
}

/// Bodies that are not JSON are `bad_message`; JSON that is not a valid job is `invalid_input`.
fn decode_body(bytes: &[u8]) -> Result<CalcJob, AppError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        AppError::new(
            ErrorCode::BadMessage,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    serde_json::from_value(value)
        .map_err(|e| AppError::new(ErrorCode::InvalidInput, format!("invalid job: {e}")))
}

async fn view(state: &AppState) -> Result<QueueView, AppError> {
    state
        .scheduler
        .view()
        .await
        .ok_or_else(|| AppError::new(ErrorCode::ShuttingDown, "the scheduler has stopped"))
}

/// `GET /api/device/queue`: the scheduler's counters, with the requests the result cache answered
/// counted in `total_requests` too (and on their own in `cache_hits`).
pub async fn device_queue(
    State(state): State<AppState>,
) -> Result<Json<app::api::DeviceQueue>, AppError> {
    let mut queue = crate::http::views::device_queue(&view(&state).await?);
    queue.cache_hits = state.cache.hits();
    queue.total_requests += queue.cache_hits;
    Ok(Json(queue))
}

/// `GET /queue/status`: totals for anyone; the job-level list only for the admin when an admin
/// token is configured.
pub async fn queue_status(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<app::api::QueueStatus>, AppError> {
    let mut status = crate::http::views::queue_status(&view(&state).await?);
    if !crate::http::admin::may_see_detail(&state.config, &headers) {
        status.queue_items.clear();
    }
    Ok(Json(status))
}

/// `GET /api/stats`.
pub async fn stats(State(state): State<AppState>) -> Result<Json<app::api::Stats>, AppError> {
    let mut stats = crate::http::views::stats(&view(&state).await?);
    stats.model = state.chat.stats();
    stats.cache = state.cache.stats();
    stats.process = app::api::ProcessStats {
        rss_bytes: crate::process::process_rss_bytes().unwrap_or(0),
        cpu_seconds: crate::process::process_cpu_seconds().unwrap_or(0.0),
        websocket_connections: state.connections.load(Ordering::Relaxed) as u64,
    };
    Ok(Json(stats))
}

/// `GET /health`: overall status plus each subsystem.
pub async fn health(State(state): State<AppState>) -> Json<Health> {
    let ok = |detail: String| SubsystemHealth {
        status: "ok".into(),
        detail,
    };
    let degraded = |detail: String| SubsystemHealth {
        status: "degraded".into(),
        detail,
    };
    let scheduler = match state.scheduler.view().await {
        Some(v) => ok(format!(
            "{} waiting, {} running, {} finished",
            v.waiting, v.running, v.total_finished
        )),
        None => degraded("the scheduler is not running".into()),
    };
    let d = state.device.view();
    let device_detail = format!(
        "{} {}; opened {} times, {} failed opens",
        d.backend,
        if d.open {
            "open"
        } else {
            "closed (opens on demand)"
        },
        d.opens,
        d.open_failures
    );
    // A failure on the device degrades it until a job succeeds on it again.
    let device = match state.device.problem() {
        Some(problem) => degraded(format!("{problem} ({device_detail})")),
        None => ok(device_detail),
    };
    let websocket = ok(format!(
        "{} connections, {} refused for their origin",
        state.connections.load(Ordering::Relaxed),
        state.ws_refused.load(Ordering::Relaxed)
    ));
    let m = state.chat.stats();
    let model_detail = match (m.state.as_str(), &m.last_error) {
        ("remote", None) => format!("{} at the {} server", m.name, m.backend),
        ("remote", Some(e)) => format!("{}: last request failed: {e}", m.name),
        (s, None) => format!("{} {s}; {} loads", m.name, m.loads),
        (s, Some(e)) => format!("{} {s}; last load failed: {e}", m.name),
    };
    // A failed load (or upstream request) degrades the model until a later one succeeds.
    let model = if m.last_error.is_some() {
        degraded(model_detail)
    } else {
        ok(model_detail)
    };
    let all_ok = [&scheduler, &device, &websocket, &model]
        .iter()
        .all(|s| s.status == "ok");
    Json(Health {
        status: if all_ok { "healthy" } else { "degraded" }.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_seconds: state.started.elapsed().as_secs(),
        subsystems: Subsystems {
            scheduler,
            device,
            websocket,
            model,
        },
    })
}
