//! The SQLite backend: the embedded default, a file (WAL journal, foreign keys on) or memory,
//! with its migrations in `server/migrations/` applied on open.
//!
//! Concurrency: only the store's thread touches the connection. One background thread
//! (tokio-rusqlite) owns it; the async API sends that thread closures and awaits their answers,
//! so the runtime never blocks on SQLite, calls from many tasks are served one at a time in
//! order, and nothing here ever waits on the device. Each call is one transaction at most, and a
//! write is committed when its call returns. [`SqliteStore`] is a handle: clones share the
//! thread.
//!
//! Layout: this file has the calls; `sql` the migrations, settings and shared queries.

use crate::store::codec::{now_ms, rfc3339, role_str, status_str};
use crate::store::StoreError;
use app::chat::{
    Conversation, ConversationId, ConversationSummary, MessageStatus, Role, StoredMessage,
};
use rusqlite::{params, OptionalExtension};
use sql::{bump, configure, messages, owned};
use std::path::Path;

pub(super) mod sql;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

/// A handle on a SQLite database; cheap to clone.
#[derive(Clone)]
pub(super) struct SqliteStore {
    /// The connection, owned by its own thread.
    conn: tokio_rusqlite::Connection,
}

impl SqliteStore {
    /// Opens (creating it and its folder if needed) the database at `path` and migrates it.
    pub(super) async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
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
    pub(super) async fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let conn = tokio_rusqlite::Connection::open_in_memory().await?;
        Self::setup(conn).await
    }

    async fn setup(conn: tokio_rusqlite::Connection) -> Result<SqliteStore, StoreError> {
        let store = SqliteStore { conn };
        store.run(configure).await?;
        Ok(store)
    }

    /// Flushes the write-ahead log into the database file and closes the connection (a clean
    /// shutdown). Every clone of this handle is closed with it.
    pub(super) async fn close(&self) -> Result<(), StoreError> {
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
    pub(super) async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
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
    pub(super) async fn touch_session(&self, session: &str) -> Result<(), StoreError> {
        let id = session.to_owned();
        self.run(move |c| sql::upsert_session(c, &id, now_ms()))
            .await
    }

    /// Starts conversation `id` for `session` (recording the session if it is new).
    pub(super) async fn create_conversation(
        &self,
        session: &str,
        id: &str,
        title: &str,
    ) -> Result<(), StoreError> {
        let (sid, cid, title) = (session.to_owned(), id.to_owned(), title.to_owned());
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
        .await
    }

    /// The session's conversations, most recently changed first.
    pub(super) async fn list_conversations(
        &self,
        session: &str,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        let sid = session.to_owned();
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
    pub(super) async fn conversation(
        &self,
        session: &str,
        id: &str,
    ) -> Result<Option<Conversation>, StoreError> {
        let (sid, cid) = (session.to_owned(), id.to_owned());
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
    pub(super) async fn history(
        &self,
        session: &str,
        id: &str,
    ) -> Result<Option<Vec<StoredMessage>>, StoreError> {
        let (sid, cid) = (session.to_owned(), id.to_owned());
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
    pub(super) async fn append_message(
        &self,
        session: &str,
        id: &str,
        role: Role,
        content: &str,
        status: MessageStatus,
    ) -> Result<i64, StoreError> {
        let (sid, cid, content) = (session.to_owned(), id.to_owned(), content.to_owned());
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
    pub(super) async fn remove_last_answer(
        &self,
        session: &str,
        id: &str,
    ) -> Result<Option<StoredMessage>, StoreError> {
        let (sid, cid) = (session.to_owned(), id.to_owned());
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
    pub(super) async fn delete_conversation(
        &self,
        session: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let (sid, cid) = (session.to_owned(), id.to_owned());
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
    pub(super) async fn count_conversations(&self, session: &str) -> Result<u64, StoreError> {
        let sid = session.to_owned();
        self.run(move |c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM conversations WHERE session_id = ?1",
                params![sid],
                |r| r.get::<_, i64>(0),
            )? as u64)
        })
        .await
    }

    /// Deletes conversations unchanged since `cutoff` (unix ms), and sessions not seen since
    /// then that have no conversation left. Returns the conversations deleted.
    pub(super) async fn expire(&self, cutoff: i64) -> Result<usize, StoreError> {
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
