//! The WebSocket endpoint `/ws`: decodes client messages, submits, cancels and resumes jobs, and
//! sends each followed job's messages (from its log in the [`crate::relay`]) to the client.
//!
//! Concurrency: one task per connection owns the socket and its cursors into the logs of the jobs
//! it follows. Logs wake it through one `Notify`; it reads and sends at its own pace, so a slow
//! client never holds up a job or anyone else. Only the owner's session can resume a job, and a
//! connection only ever reads the logs of jobs it follows. When the task ends, its calculator jobs
//! are cancelled at once and its chat jobs wait for a `resume` (see `relay`).

use crate::relay::{Follower, Submission};
use crate::session::SessionId;
use crate::AppState;
use app::error_code::ErrorCode;
use app::protocol::{ClientMessage, Job, JobId, ServerMessage};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::Notify;
use tracing::Instrument;

/// `GET /ws`: upgrades to a WebSocket for the request's session, if the page asking is ours
/// (or an allowed origin); a foreign page gets 403.
pub async fn upgrade(
    State(state): State<AppState>,
    Extension(session): Extension<SessionId>,
    crate::party::RequestParty(party): crate::party::RequestParty,
    headers: axum::http::HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !crate::embed::origin_allowed(&headers, &state.config.ws_allowed_origins) {
        state.ws_refused.fetch_add(1, Ordering::Relaxed);
        tracing::info!(origin = ?headers.get("origin"), "WebSocket refused: foreign origin");
        return crate::error::AppError::new(
            ErrorCode::Forbidden,
            "this page's origin may not open Turnstile's WebSocket",
        )
        .into_response();
    }
    // Messages up to the configured size get an answer; the transport's hard limit is larger so
    // that an oversized message is refused with `bad_message` instead of closing the connection.
    let hard_limit = state
        .config
        .max_message_bytes
        .saturating_mul(4)
        .max(1 << 20);
    // Small buffers: an idle connection waiting in the queue should cost a few KiB, not the
    // 2 x 128 KiB tungstenite reserves by default (larger messages still arrive whole; the read
    // buffer only sets the chunk read at a time). Writes go out at once, one frame per message.
    ws.max_message_size(hard_limit)
        .max_frame_size(hard_limit)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .on_upgrade(move |socket| {
            let conn = uuid::Uuid::new_v4().as_u64_pair().0;
            let span = tracing::info_span!("ws", conn_id = %format!("{conn:016x}"));
            serve(socket, state, session, party, conn).instrument(span)
        })
}

/// Bytes read from a socket at a time.
const READ_BUFFER: usize = 4 << 10;

/// Counts the connection for `/health` while it lives.
struct ConnectionGuard(AppState);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One connection's state.
struct Conn {
    state: AppState,
    session: SessionId,
    /// Who this connection's jobs are for in the fair queue (its session, or its API key).
    party: crate::scheduler::Party,
    /// This connection's follower identity, handed to every log it follows.
    follower: Follower,
    /// The jobs it follows, each with the next sequence number to send.
    following: HashMap<JobId, u64>,
}

async fn serve(
    socket: WebSocket,
    state: AppState,
    session: SessionId,
    party: crate::scheduler::Party,
    conn: u64,
) {
    state.connections.fetch_add(1, Ordering::Relaxed);
    let _guard = ConnectionGuard(state.clone());
    tracing::debug!("connection opened");
    let (mut out, mut input) = socket.split();
    let mut c = Conn {
        state,
        session,
        party,
        follower: Follower {
            conn,
            notify: Arc::new(Notify::new()),
        },
        following: HashMap::new(),
    };
    let notify = Arc::clone(&c.follower.notify);
    'conn: loop {
        let mut outgoing: Vec<Arc<str>> = Vec::new();
        tokio::select! {
            frame = input.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    for reply in c.handle_text(text.as_str()).await {
                        outgoing.push(encode(&reply));
                    }
                }
                Some(Ok(Message::Binary(_))) => outgoing.push(encode(&error(None, ErrorCode::BadMessage,
                    "binary frames are not supported; send JSON text frames".into()))),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None => break,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "connection error");
                    break;
                }
            },
            _ = notify.notified() => c.drain(&mut outgoing),
        }
        for text in outgoing {
            if out.send(Message::Text(text.as_ref().into())).await.is_err() {
                break 'conn;
            }
        }
    }
    tracing::debug!(jobs = c.following.len(), "connection closed");
    c.state.relay.detach(c.following.into_keys(), conn);
}

/// What a client message gets back at once.
enum Reply {
    One(ServerMessage),
    Many(Vec<ServerMessage>),
}

/// The whole life of a job answered from the result cache: accepted (no wait), the result
/// (marked cached), done. Nothing is queued and nothing is logged for resume.
fn cached_answer(client_ref: String, hit: &crate::cache::Cached) -> Vec<ServerMessage> {
    let job_id = JobId(uuid::Uuid::new_v4().simple().to_string());
    vec![
        ServerMessage::Accepted {
            client_ref,
            job_id: job_id.clone(),
            seq: 0,
            position: 0,
            queue_length: 0,
            eta_ms: 0,
            conversation_id: None,
        },
        ServerMessage::Result {
            job_id: job_id.clone(),
            seq: 1,
            output: hit.output.clone(),
            compute_ms: hit.compute_ms,
            cached: true,
        },
        ServerMessage::Done {
            job_id,
            seq: 2,
            usage: None,
        },
    ]
}

fn encode(msg: &ServerMessage) -> Arc<str> {
    serde_json::to_string(msg)
        .expect("server messages serialize")
        .into()
}

fn error(client_ref: Option<String>, code: ErrorCode, message: String) -> ServerMessage {
    ServerMessage::Error {
        job_id: None,
        client_ref,
        seq: None,
        code,
        message,
        retry_after_ms: None,
    }
}

/// A refused submission, with when to retry where that makes sense.
fn refused(client_ref: String, e: &crate::error::JobError) -> ServerMessage {
    ServerMessage::Error {
        job_id: None,
        client_ref: Some(client_ref),
        seq: None,
        code: e.code(),
        message: e.to_string(),
        retry_after_ms: e.retry_after().map(|d| d.as_millis() as u64),
    }
}

impl Conn {
    /// Collects every followed job's new messages; forgets jobs that ended.
    fn drain(&mut self, outgoing: &mut Vec<Arc<str>>) {
        let relay = &self.state.relay;
        let conn = self.follower.conn;
        self.following.retain(|id, cursor| {
            let read = relay.read(id, conn, *cursor);
            outgoing.extend(read.messages);
            *cursor = read.next;
            !read.finished
        });
    }

    /// Decodes one text frame and acts on it; returns the immediate replies, if any.
    async fn handle_text(&mut self, text: &str) -> Vec<ServerMessage> {
        self.handle_one(text)
            .await
            .map_or_else(Vec::new, |r| match r {
                Reply::One(m) => vec![m],
                Reply::Many(ms) => ms,
            })
    }

    async fn handle_one(&mut self, text: &str) -> Option<Reply> {
        let limit = self.state.config.max_message_bytes;
        if text.len() > limit {
            return Some(Reply::One(error(
                None,
                ErrorCode::BadMessage,
                format!(
                    "message of {} bytes is over the limit of {limit} bytes",
                    text.len()
                ),
            )));
        }
        let msg = match decode(text) {
            Ok(m) => m,
            Err((code, client_ref, message)) => {
                return Some(Reply::One(error(client_ref, code, message)))
            }
        };
        match msg {
            ClientMessage::Ping { nonce } => Some(Reply::One(ServerMessage::Pong { nonce })),
            ClientMessage::Submit { client_ref, job } => self.submit(client_ref, job).await,
            ClientMessage::Cancel { job_id } => {
                if self.state.relay.cancel(&job_id, self.follower.conn) {
                    None
                } else {
                    Some(Reply::One(error(
                        None,
                        ErrorCode::NotFound,
                        format!("no job {job_id} is waiting or running on this connection"),
                    )))
                }
            }
            ClientMessage::Resume { job_id, last_seq } => {
                match self.state.relay.resume(
                    &job_id,
                    &self.session,
                    self.follower.clone(),
                    last_seq,
                ) {
                    Ok(cursor) => {
                        tracing::debug!(%job_id, cursor, "resumed");
                        self.following.insert(job_id, cursor);
                        None
                    }
                    Err(e) => Some(Reply::One(ServerMessage::Error {
                        job_id: Some(job_id),
                        client_ref: None,
                        seq: None,
                        code: ErrorCode::NotFound,
                        message: e.to_string(),
                        retry_after_ms: None,
                    })),
                }
            }
        }
    }

    async fn submit(&mut self, client_ref: String, job: Job) -> Option<Reply> {
        let (work, persist, resumable) = match job {
            Job::Calc(c) => {
                if let Some(hit) = self.state.cached(&c) {
                    return Some(Reply::Many(cached_answer(client_ref, &hit)));
                }
                (crate::job::Work::Calc(c), None, false)
            }
            Job::Chat(chat) => match crate::chat::prepare(&self.state, &self.session, chat).await {
                Ok(p) => (p.work, Some(p.persist), true),
                Err(e) => return Some(Reply::One(refused(client_ref, &e))),
            },
        };
        let sub = Submission {
            session: self.session.clone(),
            client_ref: client_ref.clone(),
            persist,
            resumable,
            follower: self.follower.clone(),
            party: self.party.clone(),
        };
        match self.state.relay.submit(&self.state.scheduler, work, sub) {
            Ok(id) => {
                tracing::debug!(job_id = %id, %client_ref, "submitted");
                self.following.insert(id, 0);
                None
            }
            Err(e) => Some(Reply::One(refused(client_ref, &e))),
        }
    }
}

/// Parses a client message. Unusable frames are `bad_message`; a `submit` whose job does not
/// decode is `invalid_input` (with its `client_ref`), since the message itself was understood.
pub fn decode(text: &str) -> Result<ClientMessage, (ErrorCode, Option<String>, String)> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        (
            ErrorCode::BadMessage,
            None,
            format!("the message is not valid JSON: {e}"),
        )
    })?;
    let ty = value
        .get("type")
        .and_then(|t| t.as_str())
        .map(str::to_owned);
    let client_ref = value
        .get("client_ref")
        .and_then(|t| t.as_str())
        .map(str::to_owned);
    serde_json::from_value(value).map_err(|e| match ty.as_deref() {
        Some("submit") => (
            ErrorCode::InvalidInput,
            client_ref,
            format!("invalid job: {e}"),
        ),
        Some(_) => (ErrorCode::BadMessage, None, format!("invalid message: {e}")),
        None => (
            ErrorCode::BadMessage,
            None,
            "a message must be a JSON object with a \"type\" (submit, cancel, resume or ping)"
                .into(),
        ),
    })
}
