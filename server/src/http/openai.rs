//! Turnstile's own OpenAI-compatible API: `POST /v1/chat/completions` (streamed as server-sent
//! events, or answered whole) and `GET /v1/models`. Requests go through the same queue as
//! everyone else's; existing OpenAI clients work unchanged. Stateless: the request carries the
//! whole conversation and nothing is stored. While a streamed request waits, its place in the
//! queue is sent as SSE comments (`: position 2`), which OpenAI clients ignore.
//!
//! Concurrency: each request owns its job's event channel and ticket; a client that goes away
//! drops both, which cancels the job (within one token when it is generating).

use crate::error::{http_status, retry_after_secs, JobError};
use crate::http::AppState;
use crate::job::{ChatParams, ChatWork, Work};
use crate::job::{JobEvent, Outcome, Progress};
use crate::queue::Ticket as JobTicket;
use app::chat::{ChatTurn, ChatUsage, FinishReason, Role};
use app::error_code::ErrorCode;
use app::openai::{
    ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, Choice, ChunkChoice, Delta,
    ErrorObject, ErrorResponse, ModelCard, ModelList, Usage,
};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::stream::{self, Stream, StreamExt};
use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use turnstile_scheduler::JobId;

/// An error in OpenAI's shape, with Turnstile's status and code.
fn error(code: ErrorCode, message: String) -> Response {
    let status = http_status(code);
    let kind = match status.as_u16() {
        400 | 404 => "invalid_request_error",
        429 => "rate_limit_error",
        _ => "server_error",
    };
    let body = ErrorResponse {
        error: ErrorObject {
            message,
            kind: kind.into(),
            code: code.as_str().into(),
        },
    };
    let mut response = (status, Json(body)).into_response();
    if let Some(secs) = retry_after_secs(code) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

fn job_error(e: JobError) -> Response {
    error(e.code(), e.to_string())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn finish(f: FinishReason) -> String {
    match f {
        FinishReason::Stop => "stop".into(),
        FinishReason::Length => "length".into(),
    }
}

fn usage(u: &ChatUsage) -> Usage {
    Usage {
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
        total_tokens: u.prompt_tokens + u.completion_tokens,
    }
}

/// `GET /v1/models`.
pub async fn models(State(state): State<AppState>) -> Json<ModelList> {
    Json(ModelList {
        object: "list".into(),
        data: vec![ModelCard {
            id: state.chat.name.clone(),
            object: "model".into(),
            created: 0,
            owned_by: "turnstile".into(),
        }],
    })
}

/// `POST /v1/chat/completions`.
pub async fn completions(
    State(state): State<AppState>,
    crate::http::party::RequestParty(party): crate::http::party::RequestParty,
    body: Result<Json<ChatCompletionRequest>, JsonRejection>,
) -> Response {
    let req = match body {
        Ok(Json(req)) => req,
        Err(e) => return error(ErrorCode::BadMessage, e.body_text()),
    };
    if !req.model.is_empty() && req.model != state.chat.name {
        return error(
            ErrorCode::NotFound,
            format!(
                "no model {:?} here; GET /v1/models lists {:?}",
                req.model, state.chat.name
            ),
        );
    }
    let params = ChatParams {
        max_tokens: req.max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        stop: req.stop.map(|s| s.into_vec()).unwrap_or_default(),
    };
    let work = Work::Chat(ChatWork {
        messages: req.messages,
        params,
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let ticket = match state
        .scheduler
        .submit(work, party, std::sync::Arc::new(tx))
        .await
    {
        Ok(t) => t,
        Err(e) => return job_error(e),
    };
    tracing::debug!(job_id = %ticket.id(), stream = req.stream, "chat completion queued");
    let id = format!("chatcmpl-{}", ticket.id());
    let model = state.chat.name.clone();
    if req.stream {
        let answer = Answer {
            rx,
            ticket: Some(ticket),
            id,
            model,
            created: unix_now(),
            sent_role: false,
            ended: false,
        };
        Sse::new(answer.into_stream())
            .keep_alive(KeepAlive::default())
            .into_response()
    } else {
        whole(rx, ticket, id, model).await
    }
}

/// Waits for the whole answer.
async fn whole(
    mut rx: mpsc::UnboundedReceiver<(JobId, JobEvent)>,
    ticket: JobTicket,
    id: String,
    model: String,
) -> Response {
    let mut text = String::new();
    while let Some((_, event)) = rx.recv().await {
        match event {
            JobEvent::Progress(Progress::Token { text: t }) => text.push_str(&t),
            JobEvent::Ended(Ok(Outcome::Chat(u))) => {
                ticket.disarm();
                return Json(ChatCompletion {
                    id,
                    object: "chat.completion".into(),
                    created: unix_now(),
                    model,
                    choices: vec![Choice {
                        index: 0,
                        message: ChatTurn {
                            role: Role::Assistant,
                            content: text,
                        },
                        finish_reason: finish(u.finish_reason),
                    }],
                    usage: usage(&u),
                })
                .into_response();
            }
            JobEvent::Ended(Err(e)) => {
                ticket.disarm();
                return job_error(e);
            }
            _ => {}
        }
    }
    job_error(JobError::ShuttingDown)
}

/// A streamed answer: the job's events as SSE chunks.
struct Answer {
    rx: mpsc::UnboundedReceiver<(JobId, JobEvent)>,
    /// Dropping it (the client went away) cancels the job.
    ticket: Option<JobTicket>,
    id: String,
    model: String,
    created: u64,
    /// The first content chunk carries the role.
    sent_role: bool,
    /// `[DONE]` (or the error) was sent.
    ended: bool,
}

impl Answer {
    fn chunk(&self, delta: Delta, finish_reason: Option<String>, usage: Option<Usage>) -> Event {
        let chunk = ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason,
            }],
            usage,
        };
        Event::default().data(serde_json::to_string(&chunk).expect("chunks serialize"))
    }

    /// The events for one job event (none for events a client does not need).
    fn events_for(&mut self, event: JobEvent) -> Vec<Event> {
        match event {
            JobEvent::Accepted { position, .. } | JobEvent::Position { position, .. } => {
                vec![Event::default().comment(format!("position {position}"))]
            }
            JobEvent::Progress(Progress::Loading { .. }) => {
                vec![Event::default().comment("loading model")]
            }
            JobEvent::Progress(Progress::Token { text }) => {
                let role = (!self.sent_role).then(|| "assistant".to_string());
                self.sent_role = true;
                vec![self.chunk(
                    Delta {
                        role,
                        content: Some(text),
                    },
                    None,
                    None,
                )]
            }
            JobEvent::Ended(Ok(Outcome::Chat(u))) => {
                self.end();
                vec![
                    self.chunk(
                        Delta::default(),
                        Some(finish(u.finish_reason)),
                        Some(usage(&u)),
                    ),
                    Event::default().data("[DONE]"),
                ]
            }
            JobEvent::Ended(Err(e)) => {
                self.end();
                let body = ErrorResponse {
                    error: ErrorObject {
                        message: e.to_string(),
                        kind: "server_error".into(),
                        code: e.code().as_str().into(),
                    },
                };
                vec![Event::default().data(serde_json::to_string(&body).expect("serializes"))]
            }
            JobEvent::Started { .. } | JobEvent::Ended(Ok(Outcome::Tensor { .. })) => vec![],
        }
    }

    fn end(&mut self) {
        self.ended = true;
        if let Some(t) = self.ticket.take() {
            t.disarm();
        }
    }

    fn into_stream(self) -> impl Stream<Item = Result<Event, Infallible>> + Send {
        stream::unfold(self, |mut answer| async move {
            if answer.ended {
                return None;
            }
            let events = match answer.rx.recv().await {
                Some((_, event)) => answer.events_for(event),
                None => {
                    answer.ended = true;
                    vec![Event::default().data("[DONE]")]
                }
            };
            Some((stream::iter(events.into_iter().map(Ok)), answer))
        })
        .flatten()
    }
}
