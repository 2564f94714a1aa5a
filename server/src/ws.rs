//! The WebSocket endpoint `/ws`: decodes client messages, submits and cancels jobs through the
//! scheduler, and forwards each job's events to its owner with per-job sequence numbers.
//!
//! Concurrency: one task per connection owns the socket and the connection's jobs (their
//! [`JobTicket`]s). All of the connection's jobs report into one bounded channel that only this
//! task reads, so no other connection can ever see them. When the task ends (close, error,
//! disconnect) the tickets drop and every job of the connection is cancelled at once.

use crate::error::JobError;
use crate::scheduler::{JobEvent, JobTicket};
use crate::AppState;
use app::error_code::ErrorCode;
use app::protocol::{ClientMessage, JobId, ServerMessage};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;
use tracing::Instrument;

/// Events buffered per connection before position updates start being dropped.
const EVENT_BUFFER: usize = 256;

/// `GET /ws`: upgrades to a WebSocket.
pub async fn upgrade(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    // Messages up to the configured size get an answer; the transport's hard limit is larger so
    // that an oversized message is refused with `bad_message` instead of closing the connection.
    let hard_limit = state
        .config
        .max_message_bytes
        .saturating_mul(4)
        .max(1 << 20);
    ws.max_message_size(hard_limit)
        .max_frame_size(hard_limit)
        .on_upgrade(move |socket| {
            let conn_id = uuid::Uuid::new_v4().simple().to_string();
            let span = tracing::info_span!("ws", conn_id = %conn_id);
            serve(socket, state).instrument(span)
        })
}

/// A job owned by this connection.
struct Owned {
    /// Cancels the job when dropped.
    ticket: Option<JobTicket>,
    /// The submission's label.
    client_ref: String,
    /// The next sequence number to send.
    seq: u64,
}

/// Counts the connection for `/health` while it lives.
struct ConnectionGuard(AppState);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn serve(socket: WebSocket, state: AppState) {
    state.connections.fetch_add(1, Ordering::Relaxed);
    let _guard = ConnectionGuard(state.clone());
    tracing::debug!("connection opened");
    let (mut out, mut input) = socket.split();
    let (events_tx, mut events) = mpsc::channel(EVENT_BUFFER);
    let mut jobs: HashMap<JobId, Owned> = HashMap::new();
    loop {
        let reply: Option<ServerMessage> = tokio::select! {
            frame = input.next() => match frame {
                Some(Ok(Message::Text(text))) => handle_text(&state, text.as_str(), &events_tx, &mut jobs),
                Some(Ok(Message::Binary(_))) => Some(error(None, ErrorCode::BadMessage,
                    "binary frames are not supported; send JSON text frames".into())),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => None,
                Some(Ok(Message::Close(_))) | None => break,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "connection error");
                    break;
                }
            },
            Some((id, event)) = events.recv() => forward(&mut jobs, id, event),
        };
        if let Some(msg) = reply {
            let text = serde_json::to_string(&msg).expect("server messages serialize");
            if out.send(Message::Text(text.into())).await.is_err() {
                break;
            }
        }
    }
    tracing::debug!(jobs = jobs.len(), "connection closed; cancelling its jobs");
}

fn error(client_ref: Option<String>, code: ErrorCode, message: String) -> ServerMessage {
    ServerMessage::Error {
        job_id: None,
        client_ref,
        seq: None,
        code,
        message,
    }
}

/// Decodes one text frame and acts on it; returns the immediate reply, if any.
fn handle_text(
    state: &AppState,
    text: &str,
    events_tx: &mpsc::Sender<(JobId, JobEvent)>,
    jobs: &mut HashMap<JobId, Owned>,
) -> Option<ServerMessage> {
    let limit = state.config.max_message_bytes;
    if text.len() > limit {
        return Some(error(
            None,
            ErrorCode::BadMessage,
            format!(
                "message of {} bytes is over the limit of {limit} bytes",
                text.len()
            ),
        ));
    }
    let msg = match decode(text) {
        Ok(m) => m,
        Err((code, client_ref, message)) => return Some(error(client_ref, code, message)),
    };
    match msg {
        ClientMessage::Ping { nonce } => Some(ServerMessage::Pong { nonce }),
        ClientMessage::Submit { client_ref, job } => {
            match state.scheduler.submit(job, events_tx.clone()) {
                Ok(ticket) => {
                    tracing::debug!(job_id = %ticket.id(), %client_ref, "submitted");
                    jobs.insert(
                        ticket.id().clone(),
                        Owned {
                            ticket: Some(ticket),
                            client_ref,
                            seq: 0,
                        },
                    );
                    None
                }
                Err(e) => Some(error(Some(client_ref), e.code(), e.to_string())),
            }
        }
        ClientMessage::Cancel { job_id } => {
            match jobs.get_mut(&job_id).and_then(|o| o.ticket.take()) {
                Some(ticket) => {
                    ticket.cancel();
                    None
                }
                None => Some(error(
                    None,
                    ErrorCode::NotFound,
                    format!("no job {job_id} is waiting or running on this connection"),
                )),
            }
        }
    }
}

/// Parses a client message. Unusable frames are `bad_message`; a `submit` whose job does not
/// decode is `invalid_input` (with its `client_ref`), since the message itself was understood.
fn decode(text: &str) -> Result<ClientMessage, (ErrorCode, Option<String>, String)> {
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
            "a message must be a JSON object with a \"type\" (submit, cancel or ping)".into(),
        ),
    })
}

/// Turns a job event into the client's message, numbering it; forgets the job when it ends.
fn forward(
    jobs: &mut HashMap<JobId, Owned>,
    job_id: JobId,
    event: JobEvent,
) -> Option<ServerMessage> {
    let owned = jobs.get_mut(&job_id)?;
    let seq = owned.seq;
    owned.seq += 1;
    let msg = match event {
        JobEvent::Accepted {
            position,
            queue_length,
            eta_ms,
        } => ServerMessage::Accepted {
            client_ref: owned.client_ref.clone(),
            job_id: job_id.clone(),
            seq,
            position,
            queue_length,
            eta_ms,
        },
        JobEvent::Position { position, eta_ms } => ServerMessage::Position {
            job_id: job_id.clone(),
            seq,
            position,
            eta_ms,
        },
        JobEvent::Started { waited_ms } => ServerMessage::Started {
            job_id: job_id.clone(),
            seq,
            waited_ms,
        },
        JobEvent::Result { output, compute_ms } => ServerMessage::Result {
            job_id: job_id.clone(),
            seq,
            output,
            compute_ms,
        },
        JobEvent::Done => ServerMessage::Done {
            job_id: job_id.clone(),
            seq,
        },
        JobEvent::Failed(e) => failed(&job_id, seq, &e),
    };
    if msg.is_terminal() {
        if let Some(ticket) = jobs.remove(&job_id).and_then(|o| o.ticket) {
            ticket.disarm();
        }
    }
    Some(msg)
}

fn failed(job_id: &JobId, seq: u64, e: &JobError) -> ServerMessage {
    ServerMessage::Error {
        job_id: Some(job_id.clone()),
        client_ref: None,
        seq: Some(seq),
        code: e.code(),
        message: e.to_string(),
    }
}
