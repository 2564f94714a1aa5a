//! The WebSocket endpoint `/ws`: checks who may connect, then runs one task per connection that
//! decodes client messages ([`conn`]), turns its calculator jobs' events (all in one sink, [`sink`],
//! which each of its jobs carries) into numbered messages, and sends each followed chat's messages
//! (from its log in the [`crate::relay`]) to the client. Whatever is ready is written in one
//! flush.
//!
//! Slow and misbehaving clients. A connection's outbound data is bounded: a calculator job says
//! little (accepted, a position at most once per interval, started, its result), a chat's
//! messages wait in its own bounded log (an unread `position` is replaced by the next, not
//! queued), the connection reads it in slices of [`crate::relay::READ_BATCH`], and every write
//! has a deadline (`--ws-write-timeout`): a client that stops reading is disconnected with a
//! reason in the log, and its chat jobs go on for a later `resume`. Nothing a client does can
//! hold up a job, the scheduler or another connection. Incoming messages are limited per
//! connection, per session and per address (`crate::limits`); connections are capped in total
//! and per address before the upgrade (the client's address, `crate::client_addr`).
//!
//! Concurrency: one task per connection owns the socket, its calculator jobs' channel and its
//! cursors into the logs of the chats it follows. Logs wake it through one `Notify`. Only the
//! owner's session can resume a chat, and a connection only ever reads the logs of chats it
//! follows. When the task ends, its calculator jobs are cancelled at once (their tickets are
//! dropped) and its chats wait for a `resume` (see `relay`).

mod conn;
mod resume;
mod sink;

use crate::http::AppState;
use crate::ids::SessionId;
use crate::limits::ConnectionPlace;
use crate::relay::Follower;
use app::error_code::ErrorCode;
use app::protocol::ServerMessage;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use conn::Conn;
use futures::{SinkExt, StreamExt};
use sink::ConnSink;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::Notify;
use tracing::Instrument;

/// `GET /ws`: upgrades to a WebSocket for the request's session, if the page asking is ours
/// (or an allowed origin; a foreign page gets 403) and the connection caps allow it (429).
pub async fn upgrade(
    State(state): State<AppState>,
    Extension(session): Extension<SessionId>,
    crate::http::party::RequestParty(party): crate::http::party::RequestParty,
    client: crate::client_addr::ClientAddr,
    headers: axum::http::HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !crate::http::embed::origin_allowed(&headers, &state.config.ws_allowed_origins) {
        state.ws_refused.fetch_add(1, Ordering::Relaxed);
        tracing::info!(origin = ?headers.get("origin"), "WebSocket refused: foreign origin");
        return crate::error::AppError::new(
            ErrorCode::Forbidden,
            "this page's origin may not open Turnstile's WebSocket",
        )
        .into_response();
    }
    let ip = client.ip;
    let place = match state.limits.open_connection(ip) {
        Ok(place) => place,
        Err(why) => {
            state.metrics.on_rejected("rate_limited");
            tracing::info!(reason = %why, "WebSocket refused: connection cap");
            return crate::limits::connection_refused(why).into_response();
        }
    };
    // Messages up to the configured size get an answer; the transport's hard limit is larger so
    // that an oversized message is refused with `bad_message` instead of closing the connection.
    let hard_limit = state
        .config
        .max_message_bytes
        .saturating_mul(4)
        .max(1 << 20);
    // Small buffers: an idle connection waiting in the queue should cost a few KiB, not the
    // 2 x 128 KiB tungstenite reserves by default (larger messages still arrive whole; the read
    // buffer only sets the chunk read at a time). Frames are buffered until the connection
    // flushes what is ready (one write for a batch), or until the buffer holds this much.
    ws.max_message_size(hard_limit)
        .max_frame_size(hard_limit)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .on_upgrade(move |socket| {
            let conn = uuid::Uuid::new_v4().as_u64_pair().0;
            let span = tracing::info_span!("ws", conn_id = %format!("{conn:016x}"));
            serve(socket, state, session, party, ip, conn, place).instrument(span)
        })
}

/// Bytes read from a socket at a time.
const READ_BUFFER: usize = 1 << 10;

/// Bytes of frames gathered before a write, when a batch is larger than that.
const WRITE_BUFFER: usize = 1 << 16;

/// Longest a connection holds a job's early messages (`accepted`, `started`) back so that they
/// share one write with what follows (see [`sink`]). A job's end and a new position are never
/// held.
/// Tokio's timers tick in milliseconds, so this is 1 to 2 ms.
pub const COALESCE: std::time::Duration = std::time::Duration::from_millis(1);

/// Counts the connection for `/health` while it lives.
struct ConnectionGuard(AppState);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why the server ended a connection.
enum Ending {
    /// The client closed it, or the socket failed.
    Client,
    /// The client stopped reading: a write did not finish within the timeout.
    TooSlow,
    /// The client fell so far behind that its jobs' logs dropped messages it had not read.
    FellBehind,
    /// The server is shutting down.
    ServerStopping,
}

async fn serve(
    socket: WebSocket,
    state: AppState,
    session: SessionId,
    party: turnstile_scheduler::Party,
    ip: Option<std::net::IpAddr>,
    conn: u64,
    _place: ConnectionPlace,
) {
    state.connections.fetch_add(1, Ordering::Relaxed);
    let _guard = ConnectionGuard(state.clone());
    tracing::debug!("connection opened");
    let write_timeout = state.config.ws_write_timeout;
    let (mut out, mut input) = socket.split();
    let sink = Arc::new(ConnSink::default());
    let mut c = Conn {
        rate: state.limits.connection_rate(),
        state,
        session,
        party,
        ip,
        follower: Follower {
            conn,
            notify: Arc::new(Notify::new()),
        },
        following: HashMap::new(),
        sink: Arc::clone(&sink),
        taken: Vec::new(),
        jobs: HashMap::new(),
    };
    let notify = Arc::clone(&c.follower.notify);
    // Messages ready to go: written together, in one flush.
    let mut outgoing: Vec<Arc<str>> = Vec::new();
    // While only early messages (`accepted`, `started`) wait: when they go anyway
    // (one timer, re-armed, not one per turn).
    let mut flush_by: Option<tokio::time::Instant> = None;
    let flush_timer = tokio::time::sleep(std::time::Duration::ZERO);
    tokio::pin!(flush_timer);
    // The waits that outlive a turn of the loop are made once (and again only after they fire),
    // not every turn: each one registers with what it waits on. They end with the loop, so the
    // goodbye below waits on fresh ones.
    let closing = c.state.closing.clone();
    let ending = {
        let server_stopping = closing.cancelled();
        tokio::pin!(server_stopping);
        let mut sink_woken = std::pin::pin!(sink.wake.notified());
        let mut log_grew = std::pin::pin!(notify.notified());
        loop {
            // Whether what waits goes out now, or may wait for the flush deadline.
            let mut now = true;
            tokio::select! {
                frame = input.next() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        for reply in c.handle_text(text.as_str()).await {
                            outgoing.push(crate::messages::encode(&reply));
                        }
                    }
                    Some(Ok(Message::Binary(_))) => outgoing.push(crate::messages::encode(&error(None, ErrorCode::BadMessage,
                        "binary frames are not supported; send JSON text frames".into()))),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | None => break Ending::Client,
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "connection error");
                        break Ending::Client;
                    }
                },
                _ = &mut sink_woken => {
                    sink_woken.set(sink.wake.notified());
                    now = c.take_events(&mut outgoing);
                }
                _ = &mut flush_timer, if flush_by.is_some() => {
                    c.take_events(&mut outgoing);
                }
                _ = &mut log_grew => {
                    log_grew.set(notify.notified());
                    if !c.drain(&mut outgoing) {
                        break Ending::FellBehind;
                    }
                }
                _ = &mut server_stopping => break Ending::ServerStopping,
            }
            if outgoing.is_empty() {
                continue;
            }
            if !now {
                // Only early messages: hold them (and whatever follows) until the deadline or a
                // job's end, whichever comes first.
                if flush_by.is_none() {
                    let deadline = tokio::time::Instant::now() + COALESCE;
                    flush_by = Some(deadline);
                    flush_timer.as_mut().reset(deadline);
                    sink.set_lazy(true);
                }
                continue;
            }
            flush_by = None;
            sink.set_lazy(false);
            if let Err(ending) = write(&mut out, std::mem::take(&mut outgoing), write_timeout).await
            {
                break ending;
            }
        }
    };
    if matches!(ending, Ending::ServerStopping) {
        // The drain is over, but the last jobs' final messages may still be on their way: send
        // what comes within a short grace, then say goodbye.
        let grace = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
        sink.set_lazy(false);
        loop {
            c.take_events(&mut outgoing);
            c.drain(&mut outgoing);
            if write(&mut out, std::mem::take(&mut outgoing), write_timeout)
                .await
                .is_err()
            {
                break;
            }
            if (c.following.is_empty() && c.jobs.is_empty()) || tokio::time::Instant::now() >= grace
            {
                break;
            }
            let _ = tokio::time::timeout_at(grace, async {
                tokio::select! {
                    _ = notify.notified() => {}
                    _ = sink.wake.notified() => {}
                }
            })
            .await;
        }
    }
    sink.close();
    let (code, reason) = match ending {
        Ending::Client => (0, None),
        Ending::TooSlow => (
            1008,
            Some("the client stopped reading; its chat answers can be resumed"),
        ),
        Ending::FellBehind => (
            1008,
            Some("the client fell too far behind; its chat answers can be resumed"),
        ),
        Ending::ServerStopping => (1001, Some("the server is restarting; reconnect shortly")),
    };
    if let Some(reason) = reason {
        if code == 1008 {
            tracing::info!(reason, "disconnecting a slow client");
            c.state.metrics.on_rejected("slow_client");
        }
        // Say why, if the socket still takes a frame (a client that stopped reading may not).
        let close = out.send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })));
        let _ = tokio::time::timeout(std::time::Duration::from_millis(100), close).await;
    }
    tracing::debug!(
        chats = c.following.len(),
        jobs = c.jobs.len(),
        "connection closed"
    );
    // Dropping the calculator jobs' tickets cancels them; the chats wait for a resume.
    c.jobs.clear();
    c.state.relay.detach(c.following.into_keys(), conn);
}

/// Writes `messages` within `timeout`; the reason to end the connection if that fails.
async fn write(
    out: &mut futures::stream::SplitSink<WebSocket, Message>,
    messages: Vec<Arc<str>>,
    timeout: std::time::Duration,
) -> Result<(), Ending> {
    if messages.is_empty() {
        return Ok(());
    }
    let mut write = std::pin::pin!(async {
        for text in messages {
            out.feed(Message::Text(text.as_ref().into())).await?;
        }
        out.flush().await
    });
    // A socket with room takes the batch at once: the deadline (a timer) is only set for a write
    // that has to wait.
    let written = match futures::poll!(&mut write) {
        std::task::Poll::Ready(r) => Ok(r),
        std::task::Poll::Pending => tokio::time::timeout(timeout, write).await,
    };
    match written {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(Ending::Client),
        Err(_) => Err(Ending::TooSlow),
    }
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
fn refused(client_ref: Option<String>, e: &crate::error::JobError) -> ServerMessage {
    ServerMessage::Error {
        job_id: None,
        client_ref,
        seq: None,
        code: e.code(),
        message: e.to_string(),
        retry_after_ms: e.retry_after().map(|d| d.as_millis() as u64),
    }
}

/// What a client message gets back at once.
enum Reply {
    One(ServerMessage),
    Many(Vec<ServerMessage>),
}
