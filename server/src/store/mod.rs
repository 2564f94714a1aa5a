//! The store: sessions, conversations and messages in SQLite (WAL journal, foreign keys on),
//! with the schema's migrations versioned in `server/migrations/` and applied on open. Every
//! query about a conversation is scoped to a session (`WHERE session_id = ?`), so no session can
//! read, continue or delete another's conversation, whatever id it sends: an id that exists but
//! belongs to someone else gets exactly the answer an unknown id gets.
//!
//! Concurrency: one background thread (tokio-rusqlite) owns the connection; the async API sends
//! it closures and awaits their answers, so the runtime never blocks on SQLite and nothing here
//! ever waits on the device. A write is committed when its call returns.

use crate::session::SessionId;
use app::chat::{
    Conversation, ConversationId, ConversationSummary, MessageStatus, Role, StoredMessage,
};
use rusqlite::{params, OptionalExtension};
use rusqlite_migration::{Migrations, M};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[cfg(test)]
mod tests;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such conversation in this session.
    #[error("no such conversation in this session")]
    NotFound,
    /// SQLite failed; the text is for the log only.
    #[error("database error: {0}")]
    Database(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

impl From<StoreError> for crate::error::AppError {
    fn from(e: StoreError) -> Self {
        use app::error_code::ErrorCode;
        match e {
            StoreError::NotFound => {
                crate::error::AppError::new(ErrorCode::NotFound, "no such conversation")
            }
            StoreError::Database(why) => {
                tracing::error!(error = %why, "store failed");
                crate::error::AppError::new(
                    ErrorCode::Internal,
                    "something went wrong on the server; try again",
                )
            }
        }
    }
}

/// The schema's versions, oldest first. Never edit a released migration: add one.
fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(include_str!("../../migrations/0001_init.sql"))])
}

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    /// The connection, owned by its own thread.
    conn: tokio_rusqlite::Connection,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

fn role_str(r: Role) -> &'static str {
    r.as_str()
}

fn parse_role(s: &str) -> Role {
    match s {
        "system" => Role::System,
        "assistant" => Role::Assistant,
        _ => Role::User,
    }
}

fn status_str(s: MessageStatus) -> &'static str {
    match s {
        MessageStatus::Complete => "complete",
        MessageStatus::Stopped => "stopped",
        MessageStatus::Failed => "failed",
    }
}

fn parse_status(s: &str) -> MessageStatus {
    match s {
        "stopped" => MessageStatus::Stopped,
        "failed" => MessageStatus::Failed,
        _ => MessageStatus::Complete,
    }
}

fn configure(conn: &mut rusqlite::Connection) -> Result<(), StoreError> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(Duration::from_secs(5))?;
    migrations()
        .to_latest(conn)
        .map_err(|e| StoreError::Database(e.to_string()))
}

/// Whether `conversation` exists and belongs to `session`.
fn owned(c: &rusqlite::Connection, session: &str, conversation: &str) -> Result<bool, StoreError> {
    Ok(c.query_row(
        "SELECT 1 FROM conversations WHERE id = ?1 AND session_id = ?2",
        params![conversation, session],
        |_| Ok(()),
    )
    .optional()?
    .is_some())
}

fn messages(
    c: &rusqlite::Connection,
    conversation: &str,
) -> Result<Vec<StoredMessage>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT id, role, content, status, created_at FROM messages
         WHERE conversation_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map(params![conversation], |r| {
        Ok(StoredMessage {
            id: r.get(0)?,
            role: parse_role(&r.get::<_, String>(1)?),
            content: r.get(2)?,
            status: parse_status(&r.get::<_, String>(3)?),
            created_at: rfc3339(r.get(4)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl Store {
    /// Opens (creating it and its folder if needed) the database at `path` and migrates it.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Database(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let conn = tokio_rusqlite::Connection::open(path).await?;
        Self::setup(conn).await
    }

    /// A private in-memory database (tests).
    pub async fn open_in_memory() -> Result<Store, StoreError> {
        let conn = tokio_rusqlite::Connection::open_in_memory().await?;
        Self::setup(conn).await
    }

    async fn setup(conn: tokio_rusqlite::Connection) -> Result<Store, StoreError> {
        let store = Store { conn };
        store.run(configure).await?;
        Ok(store)
    }

    /// Runs `f` on the store's thread.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.conn
            .call_raw(f)
            .await
            .map_err(|_| StoreError::Database("the database connection is closed".into()))?
    }

    /// Records a session (or bumps its `last_seen`).
    pub async fn touch_session(&self, session: &SessionId) -> Result<(), StoreError> {
        let id = session.as_str().to_owned();
        self.run(move |c| {
            let now = now_ms();
            c.execute(
                "INSERT INTO sessions (id, created_at, last_seen) VALUES (?1, ?2, ?2)
                 ON CONFLICT(id) DO UPDATE SET last_seen = excluded.last_seen",
                params![id, now],
            )?;
            Ok(())
        })
        .await
    }

    /// Starts a conversation for `session` (recording the session if it is new).
    pub async fn create_conversation(
        &self,
        session: &SessionId,
        title: &str,
    ) -> Result<ConversationId, StoreError> {
        let (sid, title) = (session.as_str().to_owned(), title.to_owned());
        let id = uuid::Uuid::new_v4().simple().to_string();
        let cid = id.clone();
        self.run(move |c| {
            let tx = c.transaction()?;
            let now = now_ms();
            tx.execute(
                "INSERT INTO sessions (id, created_at, last_seen) VALUES (?1, ?2, ?2)
                 ON CONFLICT(id) DO UPDATE SET last_seen = excluded.last_seen",
                params![sid, now],
            )?;
            tx.execute(
                "INSERT INTO conversations (id, session_id, title, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
                params![cid, sid, title, now],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await?;
        Ok(ConversationId(id))
    }

    /// The session's conversations, most recently changed first.
    pub async fn list_conversations(
        &self,
        session: &SessionId,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        let sid = session.as_str().to_owned();
        self.run(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT c.id, c.title, c.created_at, c.updated_at,
                        (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id)
                 FROM conversations c WHERE c.session_id = ?1
                 ORDER BY c.updated_at DESC, c.rowid DESC",
            )?;
            let rows = stmt.query_map(params![sid], |r| {
                Ok(ConversationSummary {
                    id: ConversationId(r.get(0)?),
                    title: r.get(1)?,
                    created_at: rfc3339(r.get(2)?),
                    updated_at: rfc3339(r.get(3)?),
                    message_count: r.get::<_, i64>(4)? as u64,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// A conversation with its messages; `None` when unknown or another session's.
    pub async fn conversation(
        &self,
        session: &SessionId,
        id: &ConversationId,
    ) -> Result<Option<Conversation>, StoreError> {
        let (sid, cid) = (session.as_str().to_owned(), id.0.clone());
        self.run(move |c| {
            let head = c
                .query_row(
                    "SELECT title, created_at, updated_at FROM conversations
                     WHERE id = ?1 AND session_id = ?2",
                    params![cid, sid],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    },
                )
                .optional()?;
            let Some((title, created, updated)) = head else {
                return Ok(None);
            };
            Ok(Some(Conversation {
                messages: messages(c, &cid)?,
                id: ConversationId(cid),
                title,
                created_at: rfc3339(created),
                updated_at: rfc3339(updated),
            }))
        })
        .await
    }

    /// A conversation's messages, oldest first; `None` when unknown or another session's.
    pub async fn history(
        &self,
        session: &SessionId,
        id: &ConversationId,
    ) -> Result<Option<Vec<StoredMessage>>, StoreError> {
        let (sid, cid) = (session.as_str().to_owned(), id.0.clone());
        self.run(move |c| {
            if !owned(c, &sid, &cid)? {
                return Ok(None);
            }
            Ok(Some(messages(c, &cid)?))
        })
        .await
    }

    /// Appends a message (committed when this returns) and bumps the conversation.
    pub async fn append_message(
        &self,
        session: &SessionId,
        id: &ConversationId,
        role: Role,
        content: &str,
        status: MessageStatus,
    ) -> Result<i64, StoreError> {
        let (sid, cid, content) = (
            session.as_str().to_owned(),
            id.0.clone(),
            content.to_owned(),
        );
        self.run(move |c| {
            let tx = c.transaction()?;
            if !owned(&tx, &sid, &cid)? {
                return Err(StoreError::NotFound);
            }
            let now = now_ms();
            tx.execute(
                "INSERT INTO messages (conversation_id, role, content, status, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![cid, role_str(role), content, status_str(status), now],
            )?;
            let mid = tx.last_insert_rowid();
            tx.execute(
                "UPDATE conversations SET updated_at = ?2 WHERE id = ?1",
                params![cid, now],
            )?;
            tx.commit()?;
            Ok(mid)
        })
        .await
    }

    /// For "regenerate": removes the trailing answer(s) and returns the last user message,
    /// which will be answered again (`None` when the conversation has no user message).
    pub async fn remove_last_answer(
        &self,
        session: &SessionId,
        id: &ConversationId,
    ) -> Result<Option<StoredMessage>, StoreError> {
        let (sid, cid) = (session.as_str().to_owned(), id.0.clone());
        self.run(move |c| {
            let tx = c.transaction()?;
            if !owned(&tx, &sid, &cid)? {
                return Err(StoreError::NotFound);
            }
            let all = messages(&tx, &cid)?;
            let Some(last_user) = all.iter().rposition(|m| m.role == Role::User) else {
                return Ok(None);
            };
            tx.execute(
                "DELETE FROM messages WHERE conversation_id = ?1 AND id > ?2",
                params![cid, all[last_user].id],
            )?;
            tx.execute(
                "UPDATE conversations SET updated_at = ?2 WHERE id = ?1",
                params![cid, now_ms()],
            )?;
            tx.commit()?;
            Ok(Some(all[last_user].clone()))
        })
        .await
    }

    /// Deletes a conversation and its messages; false when unknown or another session's.
    pub async fn delete_conversation(
        &self,
        session: &SessionId,
        id: &ConversationId,
    ) -> Result<bool, StoreError> {
        let (sid, cid) = (session.as_str().to_owned(), id.0.clone());
        self.run(move |c| {
            let n = c.execute(
                "DELETE FROM conversations WHERE id = ?1 AND session_id = ?2",
                params![cid, sid],
            )?;
            Ok(n > 0)
        })
        .await
    }

    /// How many conversations the session has.
    pub async fn count_conversations(&self, session: &SessionId) -> Result<u64, StoreError> {
        let sid = session.as_str().to_owned();
        self.run(move |c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM conversations WHERE session_id = ?1",
                params![sid],
                |r| r.get::<_, i64>(0),
            )? as u64)
        })
        .await
    }

    /// Deletes conversations unchanged since `older_than`, and sessions not seen since then
    /// that have no conversation left. Returns the conversations deleted.
    pub async fn expire(&self, older_than: SystemTime) -> Result<usize, StoreError> {
        let cutoff = older_than
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.run(move |c| {
            let tx = c.transaction()?;
            let n = tx.execute(
                "DELETE FROM conversations WHERE updated_at < ?1",
                params![cutoff],
            )?;
            tx.execute(
                "DELETE FROM sessions WHERE last_seen < ?1
                 AND NOT EXISTS (SELECT 1 FROM conversations c WHERE c.session_id = sessions.id)",
                params![cutoff],
            )?;
            tx.commit()?;
            Ok(n)
        })
        .await
    }
}
