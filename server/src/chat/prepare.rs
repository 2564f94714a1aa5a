//! From a client's chat message to chat work: checks it, finds (or starts) the conversation in
//! the session's store, stores the new user message before anything waits (nothing a user sent
//! is lost, even when the queue then refuses the job), and collects the history the model reads.
//!
//! Concurrency: awaits the store (its own thread) only; never the device.

use super::ChatEngine;
use crate::error::JobError;
use crate::ids::SessionId;
use crate::job::{ChatParams, ChatWork, Work};
use crate::relay::Persist;
use crate::store::{Store, StoreError};
use app::chat::{title_from, ChatJob, ChatTurn, ConversationId, MessageStatus, Role};

/// A chat job ready for the queue.
pub struct Prepared {
    /// The work.
    pub work: Work,
    /// Where its answer is stored.
    pub persist: Persist,
}

fn store_error(e: StoreError, conversation: &ConversationId) -> JobError {
    match e {
        StoreError::NotFound => not_found(conversation),
        other => {
            tracing::error!(error = %other, "store failed");
            JobError::Internal
        }
    }
}

fn not_found(conversation: &ConversationId) -> JobError {
    JobError::NotFound(format!("no conversation {conversation} in this session"))
}

/// Prepares `job` for `session`, who may keep at most `max_conversations` (0 = any number).
pub async fn prepare(
    chat: &ChatEngine,
    store: &Store,
    max_conversations: u64,
    session: &SessionId,
    job: ChatJob,
) -> Result<Prepared, JobError> {
    let params = ChatParams {
        max_tokens: job.max_tokens,
        temperature: job.temperature,
        top_p: job.top_p,
        stop: job.stop,
    };
    chat.validate_request(&job.message, &params)?;
    if job.regenerate && !job.message.trim().is_empty() {
        return Err(JobError::InvalidInput(
            "regenerate answers the last message again; send it without a message".into(),
        ));
    }
    if !job.regenerate && job.message.trim().is_empty() {
        return Err(JobError::InvalidInput("the message is empty".into()));
    }
    let conversation = match job.conversation_id {
        Some(id) => id,
        None if job.regenerate => {
            return Err(JobError::InvalidInput(
                "regenerate needs the conversation_id".into(),
            ))
        }
        None => {
            let most = max_conversations;
            if most > 0 {
                let have = store.count_conversations(session).await.map_err(|e| {
                    tracing::error!(error = %e, "could not count conversations");
                    JobError::Internal
                })?;
                if have >= most {
                    return Err(JobError::InvalidInput(format!(
                        "you already have {have} conversations, the most one session may keep; \
                         delete some to start a new one"
                    )));
                }
            }
            store
                .create_conversation(session, &title_from(&job.message))
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "could not create a conversation");
                    JobError::Internal
                })?
        }
    };
    if job.regenerate {
        match store.remove_last_answer(session, &conversation).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(JobError::InvalidInput(
                    "the conversation has no message to answer again".into(),
                ))
            }
            Err(e) => return Err(store_error(e, &conversation)),
        }
    } else {
        store
            .append_message(
                session,
                &conversation,
                Role::User,
                &job.message,
                MessageStatus::Complete,
            )
            .await
            .map_err(|e| store_error(e, &conversation))?;
    }
    let history = store
        .history(session, &conversation)
        .await
        .map_err(|e| store_error(e, &conversation))?
        .ok_or_else(|| not_found(&conversation))?;
    // The model reads complete and stopped answers; failed ones are left out. The newest
    // messages are kept when the history is long.
    let mut messages: Vec<ChatTurn> = history
        .into_iter()
        .filter(|m| m.role == Role::User || m.status != MessageStatus::Failed)
        .map(|m| ChatTurn {
            role: m.role,
            content: m.content,
        })
        .collect();
    let keep = chat.limits.max_history + 1;
    if messages.len() > keep {
        messages.drain(..messages.len() - keep);
    }
    Ok(Prepared {
        work: Work::Chat(ChatWork { messages, params }),
        persist: Persist {
            store: store.clone(),
            session: session.clone(),
            conversation,
        },
    })
}
