//! `POST /test/faults` (test mode only): arms a fault in the registry (`crate::faults`).
//!
//! Concurrency: the registry's counters are atomics.

use crate::faults::Arm;
use crate::http::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

/// `POST /test/faults` (test mode only).
pub async fn arm(State(state): State<AppState>, Json(arm): Json<Arm>) -> StatusCode {
    tracing::warn!(?arm, "test fault armed");
    state.faults.arm(&arm);
    StatusCode::NO_CONTENT
}
