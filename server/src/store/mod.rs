//! The store: sessions, conversations and messages, in one of two databases behind one API.
//! SQLite (a file, or memory for tests) is the embedded default; PostgreSQL (`--db
//! postgres://...`) is for distributed mode, where stateless web instances share one store. Both
//! keep the same schema (each in its own dialect, versioned in `server/migrations/` and applied
//! on open) and answer every call alike: the same errors, ordering, timestamps and counts. Every
//! query about a conversation is scoped to a session (`WHERE session_id = ?`), so no session can
//! read, continue or delete another's conversation, whatever id it sends: an id that exists but
//! belongs to someone else gets exactly the answer an unknown id gets.
//!
//! Concurrency: the runtime never blocks on a database and nothing here ever waits on the
//! device. Each call is one transaction at most, and a write is committed when its call
//! returns; writes to one conversation take effect one after another, and a message's id is
//! above those of the conversation's messages committed before it. How each backend keeps that
//! is in its own module. [`Store`] is a handle: clones share the backend's connection(s).
//!
//! Layout: this file has the API and the errors; `location` what `--db` names; `codec` the
//! column encodings both backends share; `sqlite` and `postgres` the backends; `pg_testkit` a
//! throwaway PostgreSQL server for tests; `tests` the unit tests, run on both backends.

use crate::ids::SessionId;
use app::chat::{
    Conversation, ConversationId, ConversationSummary, MessageStatus, Role, StoredMessage,
};
use std::path::Path;
use std::time::SystemTime;

mod codec;
mod location;
#[cfg(any(test, feature = "test-support"))]
pub mod pg_testkit;
mod postgres;
mod sqlite;
#[cfg(test)]
mod tests;

pub use location::{DbLocation, DbLocationParser, PgUrl};

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such conversation in this session.
    #[error("no such conversation in this session")]
    NotFound,
    /// The database failed; the text is for the log only.
    #[error("database error: {0}")]
    Database(String),
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

/// An error with its causes, `outer: inner: ...` (the client libraries keep the database's own
/// message in the cause).
fn describe(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    /// The database behind the API, chosen at open.
    backend: Backend,
}

/// The two databases a store can be kept in.
#[derive(Clone)]
enum Backend {
    /// A file (or memory), served by one thread of its own.
    Sqlite(sqlite::SqliteStore),
    /// A PostgreSQL server, through a connection pool.
    Postgres(postgres::PgStore),
}

/// Runs the same call on whichever backend the store has.
macro_rules! dispatch {
    ($self:ident, $b:ident => $call:expr) => {
        match &$self.backend {
            Backend::Sqlite($b) => $call,
            Backend::Postgres($b) => $call,
        }
    };
}

impl Store {
    /// Opens the database `location` names and brings its schema to the latest version.
    pub async fn connect(location: &DbLocation) -> Result<Store, StoreError> {
        match location {
            DbLocation::Sqlite(path) => Store::open(path).await,
            DbLocation::Postgres(url) => Store::open_postgres(url).await,
        }
    }

    /// Opens (creating it and its folder if needed) the SQLite database at `path` and migrates
    /// it.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let backend = Backend::Sqlite(sqlite::SqliteStore::open(path).await?);
        Ok(Store { backend })
    }

    /// A private in-memory SQLite database (tests).
    pub async fn open_in_memory() -> Result<Store, StoreError> {
        let backend = Backend::Sqlite(sqlite::SqliteStore::open_in_memory().await?);
        Ok(Store { backend })
    }

    /// Connects to the PostgreSQL database at `url` and migrates it (once, however many
    /// instances open it at the same moment).
    pub async fn open_postgres(url: &PgUrl) -> Result<Store, StoreError> {
        let backend = Backend::Postgres(postgres::PgStore::open(url).await?);
        Ok(Store { backend })
    }

    /// Makes everything written durable and closes the connection(s) (a clean shutdown). Every
    /// clone of this handle is closed with it.
    pub async fn close(&self) -> Result<(), StoreError> {
        dispatch!(self, b => b.close().await)
    }

    /// Records a session (or bumps its `last_seen`).
    pub async fn touch_session(&self, session: &SessionId) -> Result<(), StoreError> {
        dispatch!(self, b => b.touch_session(session.as_str()).await)
    }

    /// Starts a conversation for `session` (recording the session if it is new).
    pub async fn create_conversation(
        &self,
        session: &SessionId,
        title: &str,
    ) -> Result<ConversationId, StoreError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        dispatch!(self, b => b.create_conversation(session.as_str(), &id, title).await)?;
        Ok(ConversationId(id))
    }

    /// The session's conversations, most recently changed first.
    pub async fn list_conversations(
        &self,
        session: &SessionId,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        dispatch!(self, b => b.list_conversations(session.as_str()).await)
    }

    /// A conversation with its messages; `None` when unknown or another session's.
    pub async fn conversation(
        &self,
        session: &SessionId,
        id: &ConversationId,
    ) -> Result<Option<Conversation>, StoreError> {
        dispatch!(self, b => b.conversation(session.as_str(), &id.0).await)
    }

    /// A conversation's messages, oldest first; `None` when unknown or another session's.
    pub async fn history(
        &self,
        session: &SessionId,
        id: &ConversationId,
    ) -> Result<Option<Vec<StoredMessage>>, StoreError> {
        dispatch!(self, b => b.history(session.as_str(), &id.0).await)
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
        dispatch!(self, b => b.append_message(session.as_str(), &id.0, role, content, status).await)
    }

    /// For "regenerate": removes the trailing answer(s) and returns the last user message,
    /// which will be answered again (`None` when the conversation has no user message).
    pub async fn remove_last_answer(
        &self,
        session: &SessionId,
        id: &ConversationId,
    ) -> Result<Option<StoredMessage>, StoreError> {
        dispatch!(self, b => b.remove_last_answer(session.as_str(), &id.0).await)
    }

    /// Deletes a conversation and its messages; false when unknown or another session's.
    pub async fn delete_conversation(
        &self,
        session: &SessionId,
        id: &ConversationId,
    ) -> Result<bool, StoreError> {
        dispatch!(self, b => b.delete_conversation(session.as_str(), &id.0).await)
    }

    /// How many conversations the session has.
    pub async fn count_conversations(&self, session: &SessionId) -> Result<u64, StoreError> {
        dispatch!(self, b => b.count_conversations(session.as_str()).await)
    }

    /// Deletes conversations unchanged since `older_than`, and sessions not seen since then
    /// that have no conversation left. Returns the conversations deleted.
    pub async fn expire(&self, older_than: SystemTime) -> Result<usize, StoreError> {
        dispatch!(self, b => b.expire(codec::millis(older_than)).await)
    }
}
