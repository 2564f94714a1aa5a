//! The conversation history over HTTP, for the session's own conversations only:
//! `GET /api/conversations`, `GET /api/conversations/{id}`, `DELETE /api/conversations/{id}`, and
//! `POST /api/session` (the session's token, for clients that cannot keep the cookie). Another
//! session's id gets the same `not_found` as an unknown one.
//!
//! Concurrency: handlers await the store only.

use crate::error::AppError;
use crate::session::SessionId;
use crate::AppState;
use app::chat::{Conversation, ConversationId, ConversationList, SessionToken};
use app::error_code::ErrorCode;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};

fn not_found() -> AppError {
    AppError::new(ErrorCode::NotFound, "no such conversation")
}

/// `GET /api/conversations`.
pub async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<SessionId>,
) -> Result<Json<ConversationList>, AppError> {
    Ok(Json(ConversationList {
        conversations: state.store.list_conversations(&session).await?,
    }))
}

/// `GET /api/conversations/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Extension(session): Extension<SessionId>,
    Path(id): Path<String>,
) -> Result<Json<Conversation>, AppError> {
    state
        .store
        .conversation(&session, &ConversationId(id))
        .await?
        .map(Json)
        .ok_or_else(not_found)
}

/// `DELETE /api/conversations/{id}`.
pub async fn delete(
    State(state): State<AppState>,
    Extension(session): Extension<SessionId>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    if state
        .store
        .delete_conversation(&session, &ConversationId(id))
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found())
    }
}

/// `POST /api/session`.
pub async fn session_token(Extension(session): Extension<SessionId>) -> Json<SessionToken> {
    Json(SessionToken {
        token: session.as_str().to_owned(),
    })
}
