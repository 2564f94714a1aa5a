//! `POST /chat/stream` (seed 003's shape): one chat message for the session's conversation,
//! answered as server-sent events `data: {"type":"queue","position":2,"message":"..."}`,
//! `{"type":"token","token":"..."}`, then `{"type":"done",...}` or `{"type":"error",...}`. For
//! clients of the older chat queue; the WebSocket carries the same jobs with more detail.
//!
//! The job follows the same path as a WebSocket chat: stored message, same queue, same log in the
//! relay. A client that goes away leaves the job to the resume window like any chat job (the
//! answer is stored either way).
//!
//! Concurrency: the response stream owns its follower identity and cursor; it reads the job's
//! log when woken, like a WebSocket connection does.

use crate::error::AppError;
use crate::http::AppState;
use crate::ids::SessionId;
use crate::relay::{Follower, Relay, Submission};
use app::chat::{ChatJob, ConversationId};
use app::protocol::{JobId, ServerMessage};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::stream;
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::Notify;

/// The request body.
#[derive(Debug, Deserialize)]
pub struct StreamRequest {
    /// The person's message.
    pub message: String,
    /// The conversation to continue; absent starts one (its id comes in `done`).
    #[serde(default)]
    pub conversation_id: Option<ConversationId>,
    /// Most tokens to generate.
    #[serde(default)]
    pub max_tokens: Option<u32>,
}

/// `POST /chat/stream`.
pub async fn chat_stream(
    State(state): State<AppState>,
    Extension(session): Extension<SessionId>,
    crate::http::party::RequestParty(party): crate::http::party::RequestParty,
    body: Result<Json<StreamRequest>, JsonRejection>,
) -> Result<Response, AppError> {
    let Json(req) =
        body.map_err(|e| AppError::new(app::error_code::ErrorCode::BadMessage, e.body_text()))?;
    let job = ChatJob {
        conversation_id: req.conversation_id,
        message: req.message,
        max_tokens: req.max_tokens,
        ..ChatJob::default()
    };
    let prepared = crate::chat::prepare(
        &state.chat,
        &state.store,
        state.config.max_conversations_per_session,
        &session,
        job,
    )
    .await?;
    let conversation = prepared.persist.conversation.clone();
    let follower = Follower {
        conn: uuid::Uuid::new_v4().as_u64_pair().0,
        notify: Arc::new(Notify::new()),
    };
    let id = state
        .relay
        .submit(
            &state.scheduler,
            prepared.work,
            Submission {
                session,
                client_ref: "chat-stream".into(),
                persist: prepared.persist,
                follower: follower.clone(),
                party,
            },
        )
        .await?;
    let reader = Reader {
        relay: Arc::clone(&state.relay),
        id,
        follower,
        cursor: 0,
        conversation,
        done: false,
    };
    let events = stream::unfold(reader, |mut r| async move {
        if r.done {
            return None;
        }
        loop {
            let read = r.relay.read(&r.id, r.follower.conn, r.cursor);
            r.cursor = read.next;
            let events: Vec<Event> = read
                .messages
                .iter()
                .filter_map(|m| serde_json::from_str::<ServerMessage>(m).ok())
                .filter_map(|m| r.event(m))
                .collect();
            if read.finished {
                r.done = true;
            }
            if !events.is_empty() || r.done {
                return Some((stream::iter(events.into_iter().map(Ok::<_, Infallible>)), r));
            }
            r.follower.notify.notified().await;
        }
    });
    use futures::StreamExt;
    Ok(Sse::new(events.flatten())
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Follows one job's log for the response.
struct Reader {
    relay: Arc<Relay>,
    id: JobId,
    follower: Follower,
    cursor: u64,
    conversation: ConversationId,
    done: bool,
}

impl Reader {
    /// Seed 003's event for a protocol message (none for those it has no event for).
    fn event(&self, m: ServerMessage) -> Option<Event> {
        let v = match m {
            ServerMessage::Accepted { position, .. } | ServerMessage::Position { position, .. } => {
                json!({"type":"queue","position":position,
                       "message":format!("In the queue: position {position}")})
            }
            ServerMessage::Loading { progress, .. } => {
                json!({"type":"loading","progress":progress,"message":"Loading the model"})
            }
            ServerMessage::Token { text, .. } => json!({"type":"token","token":text}),
            ServerMessage::Done { usage, .. } => {
                json!({"type":"done","conversation_id":self.conversation,"usage":usage})
            }
            ServerMessage::Error { code, message, .. } => {
                json!({"type":"error","code":code,"message":message})
            }
            _ => return None,
        };
        Some(Event::default().data(v.to_string()))
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        // The client went away (or the answer ended): stop following; the job keeps its
        // resume window like any chat job.
        self.relay.detach([self.id.clone()], self.follower.conn);
    }
}
