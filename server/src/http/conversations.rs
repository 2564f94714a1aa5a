//! The conversation history over HTTP, for the session's own conversations only:
//! `GET /api/conversations`, `GET /api/conversations/{id}`, `DELETE /api/conversations/{id}`, and
//! `POST /api/session` (the session's token, for clients that cannot keep the cookie). Another
//! session's id gets the same `not_found` as an unknown one.
//!
//! Concurrency: handlers hold no state and await the store only (only the store's thread
//! touches the connection). An id that is not of the shape the store hands out is answered
//! `not_found` without asking the store.

use crate::error::AppError;
use crate::http::AppState;
use crate::ids::SessionId;
use app::chat::{Conversation, ConversationId, ConversationList, SessionToken};
use app::error_code::ErrorCode;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};

fn request_id(headers: &HeaderMap) -> &str {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown")
}

fn not_found(headers: &HeaderMap) -> AppError {
    AppError::new(ErrorCode::NotFound, "no such conversation").with_request_id(request_id(headers))
}

/// A conversation id as the store makes them (32 lowercase hex characters), or `None`.
fn parse_id(s: &str) -> Option<ConversationId> {
    (s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| ConversationId(s.to_owned()))
}

/// `GET /api/conversations`: the session's conversations, most recently changed first.
pub async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<SessionId>,
    headers: HeaderMap,
) -> Result<Json<ConversationList>, AppError> {
    let conversations = state
        .store
        .list_conversations(&session)
        .await
        .map_err(|e| AppError::from(e).with_request_id(request_id(&headers)))?;
    Ok(Json(ConversationList { conversations }))
}

/// `GET /api/conversations/{id}`: the conversation with its messages, or `not_found`.
pub async fn get(
    State(state): State<AppState>,
    Extension(session): Extension<SessionId>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Conversation>, AppError> {
    let id = parse_id(&id).ok_or_else(|| not_found(&headers))?;
    state
        .store
        .conversation(&session, &id)
        .await
        .map_err(|e| AppError::from(e).with_request_id(request_id(&headers)))?
        .map(Json)
        .ok_or_else(|| not_found(&headers))
}

/// `DELETE /api/conversations/{id}`: 204, or `not_found`.
pub async fn delete(
    State(state): State<AppState>,
    Extension(session): Extension<SessionId>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, AppError> {
    let id = parse_id(&id).ok_or_else(|| not_found(&headers))?;
    let deleted = state
        .store
        .delete_conversation(&session, &id)
        .await
        .map_err(|e| AppError::from(e).with_request_id(request_id(&headers)))?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&headers))
    }
}

/// `POST /api/session`: the current session's token (the response also sets the cookie when the
/// request did not carry it).
pub async fn session_token(Extension(session): Extension<SessionId>) -> Json<SessionToken> {
    Json(SessionToken {
        token: session.as_str().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_store_shaped_ids_are_looked_up() {
        assert!(parse_id(&"0123456789abcdef".repeat(2)).is_some());
        for bad in [
            "",
            "x",
            "../etc",
            &"A".repeat(32),
            &"a".repeat(33),
            &"g".repeat(32),
        ] {
            assert!(parse_id(bad).is_none(), "{bad}");
        }
    }
}
