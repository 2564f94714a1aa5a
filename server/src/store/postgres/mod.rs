//! The PostgreSQL backend, for distributed mode: several stateless web instances keep their
//! sessions and conversations in one database (`--db postgres://...`), with the schema of
//! `server/migrations/postgres/` applied on open (see `sql`).
//!
//! Concurrency: a pool of connections (deadpool) is shared by every clone of the handle; each
//! call borrows one connection for its length and runs one transaction at most, committed when
//! the call returns, so calls from many tasks (and instances) run side by side. A write to a
//! conversation first locks its row (`SELECT ... FOR UPDATE`): writes to one conversation run
//! one after another, in the order they took the lock, exactly as on SQLite's one thread, so a
//! message's id is above those of all the conversation's messages committed before it, and no
//! conversation is deleted halfway through a write. Reads of more than one statement run in one
//! `REPEATABLE READ` transaction: what they return is of one moment. Nothing here waits on the
//! device; a call waits for a free connection at most [`POOL_WAIT`].
//!
//! Layout: this file has the calls; `sql` the migrations and shared queries.

use crate::store::codec::{now_ms, rfc3339, role_str, status_str};
use crate::store::{PgUrl, StoreError};
use app::chat::{
    Conversation, ConversationId, ConversationSummary, MessageStatus, Role, StoredMessage,
};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use sql::{bump, messages, owned, possible_id, text};
use std::time::Duration;
use tokio_postgres::IsolationLevel;

pub(super) mod sql;

/// Most connections one web instance holds (PostgreSQL's default `max_connections` is 100: a
/// handful of instances fit).
const POOL_SIZE: usize = 16;

/// Longest a call waits for a free connection, and a new connection may take to open, before
/// the call fails (the database is unreachable or overloaded).
const POOL_WAIT: Duration = Duration::from_secs(10);

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Database(super::describe(&e))
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Database(format!("no database connection: {}", super::describe(&e)))
    }
}

/// A handle on a PostgreSQL database; cheap to clone.
#[derive(Clone)]
pub(super) struct PgStore {
    /// The connections, shared by every clone; each call borrows one.
    pool: Pool,
}

impl PgStore {
    /// Connects to the database at `url` and migrates it (fails at once if it is unreachable).
    pub(super) async fn open(url: &PgUrl) -> Result<PgStore, StoreError> {
        let mut config = url.config();
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(POOL_WAIT);
        }
        if config.get_application_name().is_none() {
            config.application_name("turnstile");
        }
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                // Checks only that the connection is open; a broken one fails its call and is
                // replaced for the next.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .recycle_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|e| StoreError::Database(format!("building the connection pool: {e}")))?;
        sql::migrate(&mut pool.get().await?).await?;
        Ok(PgStore { pool })
    }

    /// Closes the pool (every write is already committed). Every clone is closed with it.
    pub(super) async fn close(&self) -> Result<(), StoreError> {
        self.pool.close();
        Ok(())
    }

    /// A connection from the pool (also for the tests' introspection).
    pub(super) async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        Ok(self.pool.get().await?)
    }

    /// Records a session (or bumps its `last_seen`).
    pub(super) async fn touch_session(&self, session: &str) -> Result<(), StoreError> {
        sql::upsert_session(&self.client().await?, session, now_ms()).await
    }

    /// Starts conversation `id` for `session` (recording the session if it is new).
    pub(super) async fn create_conversation(
        &self,
        session: &str,
        id: &str,
        title: &str,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let now = now_ms();
        // The session's row is made here when it is missing: the middleware records only the
        // sessions it creates, not every valid-looking id a client sends.
        sql::upsert_session(&tx, session, now).await?;
        tx.execute(
            "INSERT INTO conversations (id, session_id, title, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $4)",
            &[&id, &session, &title.as_bytes(), &now],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The session's conversations, most recently changed first.
    pub(super) async fn list_conversations(
        &self,
        session: &str,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT c.id, c.title, c.created_at, c.updated_at,
                        (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id)
                 FROM conversations c WHERE c.session_id = $1
                 ORDER BY c.updated_at DESC, c.seq DESC",
            )
            .await?;
        client
            .query(&stmt, &[&session])
            .await?
            .into_iter()
            .map(|r| {
                Ok(ConversationSummary {
                    id: ConversationId(r.try_get(0)?),
                    title: text(r.try_get(1)?)?,
                    created_at: rfc3339(r.try_get(2)?),
                    updated_at: rfc3339(r.try_get(3)?),
                    message_count: r.try_get::<_, i64>(4)?.unsigned_abs(),
                })
            })
            .collect()
    }

    /// A conversation with its messages; `None` when unknown or another session's.
    pub(super) async fn conversation(
        &self,
        session: &str,
        id: &str,
    ) -> Result<Option<Conversation>, StoreError> {
        if !possible_id(id) {
            return Ok(None);
        }
        let mut client = self.client().await?;
        // One snapshot: the head and the messages are of the same moment.
        let tx = read_snapshot(&mut client).await?;
        let head = tx
            .query_opt(
                "SELECT title, created_at, updated_at FROM conversations
                 WHERE id = $1 AND session_id = $2",
                &[&id, &session],
            )
            .await?;
        let Some(head) = head else {
            return Ok(None);
        };
        let conversation = Conversation {
            messages: messages(&tx, session, id).await?,
            id: ConversationId(id.to_owned()),
            title: text(head.try_get(0)?)?,
            created_at: rfc3339(head.try_get(1)?),
            updated_at: rfc3339(head.try_get(2)?),
        };
        tx.commit().await?;
        Ok(Some(conversation))
    }

    /// A conversation's messages, oldest first; `None` when unknown or another session's.
    pub(super) async fn history(
        &self,
        session: &str,
        id: &str,
    ) -> Result<Option<Vec<StoredMessage>>, StoreError> {
        if !possible_id(id) {
            return Ok(None);
        }
        let mut client = self.client().await?;
        let tx = read_snapshot(&mut client).await?;
        if !owned(&tx, session, id, false).await? {
            return Ok(None);
        }
        let history = messages(&tx, session, id).await?;
        tx.commit().await?;
        Ok(Some(history))
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
        if !possible_id(id) {
            return Err(StoreError::NotFound);
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        if !owned(&tx, session, id, true).await? {
            return Err(StoreError::NotFound);
        }
        let now = now_ms();
        let stmt = tx
            .prepare_cached(
                "INSERT INTO messages (conversation_id, role, content, status, created_at)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .await?;
        let mid: i64 = tx
            .query_one(
                &stmt,
                &[
                    &id,
                    &role_str(role),
                    &content.as_bytes(),
                    &status_str(status),
                    &now,
                ],
            )
            .await?
            .try_get(0)?;
        bump(&tx, id, now).await?;
        tx.commit().await?;
        Ok(mid)
    }

    /// For "regenerate": removes the trailing answer(s) and returns the last user message,
    /// which will be answered again (`None` when the conversation has no user message).
    pub(super) async fn remove_last_answer(
        &self,
        session: &str,
        id: &str,
    ) -> Result<Option<StoredMessage>, StoreError> {
        if !possible_id(id) {
            return Err(StoreError::NotFound);
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        if !owned(&tx, session, id, true).await? {
            return Err(StoreError::NotFound);
        }
        let all = messages(&tx, session, id).await?;
        let Some(last_user) = all.iter().rposition(|m| m.role == Role::User) else {
            return Ok(None);
        };
        tx.execute(
            "DELETE FROM messages WHERE conversation_id = $1 AND id > $2
             AND conversation_id IN (SELECT id FROM conversations WHERE session_id = $3)",
            &[&id, &all[last_user].id, &session],
        )
        .await?;
        bump(&tx, id, now_ms()).await?;
        tx.commit().await?;
        Ok(Some(all[last_user].clone()))
    }

    /// Deletes a conversation and its messages; false when unknown or another session's.
    pub(super) async fn delete_conversation(
        &self,
        session: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        if !possible_id(id) {
            return Ok(false);
        }
        let n = self
            .client()
            .await?
            .execute(
                "DELETE FROM conversations WHERE id = $1 AND session_id = $2",
                &[&id, &session],
            )
            .await?;
        Ok(n > 0)
    }

    /// How many conversations the session has.
    pub(super) async fn count_conversations(&self, session: &str) -> Result<u64, StoreError> {
        let n: i64 = self
            .client()
            .await?
            .query_one(
                "SELECT COUNT(*) FROM conversations WHERE session_id = $1",
                &[&session],
            )
            .await?
            .try_get(0)?;
        Ok(n.unsigned_abs())
    }

    /// Deletes conversations unchanged since `cutoff` (unix ms), and sessions not seen since
    /// then that have no conversation left. Returns the conversations deleted.
    pub(super) async fn expire(&self, cutoff: i64) -> Result<usize, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&sql::EXPIRY_LOCK])
            .await?;
        let n = tx
            .execute(
                "DELETE FROM conversations WHERE updated_at < $1",
                &[&cutoff],
            )
            .await?;
        tx.execute(
            "DELETE FROM sessions WHERE last_seen < $1
             AND NOT EXISTS (SELECT 1 FROM conversations c WHERE c.session_id = sessions.id)",
            &[&cutoff],
        )
        .await?;
        tx.commit().await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}

/// A read-only transaction that sees one snapshot from its first statement to its last.
async fn read_snapshot(
    client: &mut deadpool_postgres::Client,
) -> Result<deadpool_postgres::Transaction<'_>, StoreError> {
    Ok(client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?)
}
