//! The SQLite store's SQL side: the migrations, the connection's settings, and the queries the
//! store's calls share.
//!
//! Concurrency: every function here takes a `&rusqlite::Connection` and so only ever runs on the
//! store's own thread: only the store's thread touches the connection.

use crate::store::codec::{parse_role, parse_status, rfc3339};
use crate::store::StoreError;
use app::chat::StoredMessage;
use rusqlite::{params, OptionalExtension};
use rusqlite_migration::{Migrations, M};
use std::time::Duration;

/// The schema's versions, oldest first. Never edit a released migration: add one.
pub(super) fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(include_str!(
        "../../../migrations/0001_init.sql"
    ))])
}

/// How long a statement waits for a lock held by another connection (another process on the
/// same file) before failing with `SQLITE_BUSY`.
pub(in crate::store) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Sets the connection up (WAL journal, `synchronous=NORMAL`, foreign keys, busy timeout) and
/// brings the schema to the latest version; applying it to an up-to-date database does nothing.
pub(super) fn configure(conn: &mut rusqlite::Connection) -> Result<(), StoreError> {
    // In memory, SQLite answers "memory" and keeps its own journal; that is fine.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    migrations()
        .to_latest(conn)
        .map_err(|e| StoreError::Database(format!("migrating the schema: {e}")))
}

/// Records `session` (or bumps its `last_seen` to `now`).
pub(super) fn upsert_session(
    c: &rusqlite::Connection,
    session: &str,
    now: i64,
) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO sessions (id, created_at, last_seen) VALUES (?1, ?2, ?2)
         ON CONFLICT(id) DO UPDATE SET last_seen = excluded.last_seen",
    )?
    .execute(params![session, now])?;
    Ok(())
}

/// Whether `conversation` exists and belongs to `session`.
pub(super) fn owned(
    c: &rusqlite::Connection,
    session: &str,
    conversation: &str,
) -> Result<bool, StoreError> {
    Ok(
        c.prepare_cached("SELECT 1 FROM conversations WHERE id = ?1 AND session_id = ?2")?
            .query_row(params![conversation, session], |_| Ok(()))
            .optional()?
            .is_some(),
    )
}

/// A conversation's messages, oldest first; none when it is not `session`'s.
pub(super) fn messages(
    c: &rusqlite::Connection,
    session: &str,
    conversation: &str,
) -> Result<Vec<StoredMessage>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT m.id, m.role, m.content, m.status, m.created_at
         FROM messages m JOIN conversations c ON c.id = m.conversation_id
         WHERE m.conversation_id = ?1 AND c.session_id = ?2 ORDER BY m.id",
    )?;
    let rows = stmt.query_map(params![conversation, session], |r| {
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

/// Sets the conversation's `updated_at` to `now`.
pub(super) fn bump(
    c: &rusqlite::Connection,
    conversation: &str,
    now: i64,
) -> Result<(), StoreError> {
    c.prepare_cached("UPDATE conversations SET updated_at = ?2 WHERE id = ?1")?
        .execute(params![conversation, now])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_migrations_are_valid() {
        migrations().validate().unwrap();
    }
}
