//! The store: sessions, conversations and messages in SQLite (WAL journal, foreign keys on),
//! with the schema's migrations versioned in `server/migrations/` and applied on open. Every
//! query about a conversation is scoped to a session (`WHERE session_id = ?`), so no session can
//! read, continue or delete another's conversation, whatever id it sends: an id that exists but
//! belongs to someone else gets exactly the answer an unknown id gets.
//!
//! Concurrency: only the store's thread touches the connection. One background thread
//! (tokio-rusqlite) owns it; the async API sends that thread closures and awaits their answers,
//! so the runtime never blocks on SQLite, calls from many tasks are served one at a time in
//! order, and nothing here ever waits on the device. Each call is one transaction at most, and a
//! write is committed when its call returns. [`Store`] is a handle: clones share the thread.
//!
//! Layout: this file has the API; `sql` the migrations, settings, column codecs and shared
//! queries; `tests` the unit tests.

use crate::ids::SessionId;
use app::chat::{
    Conversation, ConversationId, ConversationSummary, MessageStatus, Role, StoredMessage,
};
use rusqlite::{params, OptionalExtension};
use sql::{bump, configure, messages, millis, now_ms, owned, rfc3339, role_str, status_str};
use std::path::Path;
use std::time::SystemTime;

mod sql;
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

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    /// The connection, owned by its own thread.
    conn: tokio_rusqlite::Connection,
}

impl Store {
    /// Opens (creating it and its folder if needed) the database at `path` and migrates it.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let dir = dir.to_owned();
            tokio::task::spawn_blocking(move || {
                std::fs::create_dir_all(&dir).map_err(|e| {
                    StoreError::Database(format!("cannot create {}: {e}", dir.display()))
                })
            })
            .await
            .map_err(|e| StoreError::Database(format!("creating the folder: {e}")))??;
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

    /// Flushes the write-ahead log into the database file and closes the connection (a clean
    /// shutdown). Every clone of this handle is closed with it.
    pub async fn close(&self) -> Result<(), StoreError> {
        self.run(|c| {
            c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
            Ok(())
        })
        .await?;
        self.conn
            .clone()
            .close()
            .await
            .map_err(|e| StoreError::Database(format!("closing the database: {e}")))
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
        self.run(move |c| sql::upsert_session(c, &id, now_ms()))
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
            // The session's row is made here when it is missing: the middleware records only
            // the sessions it creates, not every valid-looking id a client sends.
            sql::upsert_session(&tx, &sid, now)?;
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
            // One read transaction: the head and the messages are of the same moment.
            let tx = c.transaction()?;
            let head = tx
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
                messages: messages(&tx, &sid, &cid)?,
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
            let tx = c.transaction()?;
            if !owned(&tx, &sid, &cid)? {
                return Ok(None);
            }
            Ok(Some(messages(&tx, &sid, &cid)?))
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
            bump(&tx, &cid, now)?;
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
            let all = messages(&tx, &sid, &cid)?;
            let Some(last_user) = all.iter().rposition(|m| m.role == Role::User) else {
                return Ok(None);
            };
            tx.execute(
                "DELETE FROM messages WHERE conversation_id = ?1 AND id > ?2
                 AND conversation_id IN (SELECT id FROM conversations WHERE session_id = ?3)",
                params![cid, all[last_user].id, sid],
            )?;
            bump(&tx, &cid, now_ms())?;
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
        let cutoff = millis(older_than);
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
