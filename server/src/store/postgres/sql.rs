//! The PostgreSQL store's SQL side: the versioned migrations, and the queries the store's calls
//! share.
//!
//! Migrations: `server/migrations/postgres/NNNN_*.sql`, in order, recorded one row per version
//! in `schema_migrations`. They are applied in one transaction that first takes a
//! transaction-scoped advisory lock, so of several web instances starting on one database at the
//! same moment, one migrates and the others wait for it and then find nothing to do; a failed
//! migration leaves the schema as it was.
//!
//! Concurrency: every function here works on a client or transaction the calling store method
//! borrowed from the pool for its own call; nothing is shared between calls.

use crate::store::codec::{now_ms, parse_role, parse_status, rfc3339};
use crate::store::StoreError;
use app::chat::StoredMessage;
use deadpool_postgres::{GenericClient, Transaction};

/// The schema's versions, oldest first (version = index + 1). Never edit a released migration:
/// add one.
pub(in crate::store) const MIGRATIONS: &[&str] =
    &[include_str!("../../../migrations/postgres/0001_init.sql")];

/// The advisory lock migrations hold (any fixed number; this one spells "turnstil"). Advisory
/// locks belong to a database, so other databases on the same server do not share it.
const MIGRATION_LOCK: i64 = 0x7475_726e_7374_696c;

/// The advisory lock an expiry holds, so the instances' hourly sweeps run one after another
/// instead of deleting the same rows at once (where two could deadlock).
pub(super) const EXPIRY_LOCK: i64 = MIGRATION_LOCK + 1;

/// Brings the schema to the latest version; on an up-to-date database it does nothing. Refuses a
/// database a newer build has migrated beyond what this one knows.
pub(super) async fn migrate(client: &mut deadpool_postgres::Client) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             applied_at BIGINT NOT NULL
         )",
    )
    .await?;
    let current: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await?
        .get(0);
    let latest = i32::try_from(MIGRATIONS.len()).expect("a few migrations");
    if current > latest {
        return Err(StoreError::Database(format!(
            "the database's schema is at version {current}, beyond this build's {latest}: \
             a newer Turnstile migrated it"
        )));
    }
    for version in current + 1..=latest {
        let sql = MIGRATIONS[usize::try_from(version - 1).expect("a positive version")];
        tx.batch_execute(sql).await.map_err(|e| {
            StoreError::Database(format!("migrating the schema to version {version}: {e}"))
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
            &[&version, &now_ms()],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Whether `id` could be a stored conversation's id. The store makes every id (32 hex
/// characters); text with U+0000 cannot even be sent to PostgreSQL, and is simply unknown, as it
/// is to SQLite.
pub(super) fn possible_id(id: &str) -> bool {
    !id.contains('\0')
}

/// Text from a BYTEA column (UTF-8 bytes: see the migration).
pub(super) fn text(bytes: Vec<u8>) -> Result<String, StoreError> {
    String::from_utf8(bytes).map_err(|_| StoreError::Database("a stored text is not UTF-8".into()))
}

/// Records `session` (or bumps its `last_seen` to `now`).
pub(super) async fn upsert_session(
    c: &impl GenericClient,
    session: &str,
    now: i64,
) -> Result<(), StoreError> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO sessions (id, created_at, last_seen) VALUES ($1, $2, $2)
             ON CONFLICT (id) DO UPDATE SET last_seen = EXCLUDED.last_seen",
        )
        .await?;
    c.execute(&stmt, &[&session, &now]).await?;
    Ok(())
}

/// Whether `conversation` exists and belongs to `session`. With `lock`, its row stays locked
/// until the transaction ends: writes to one conversation queue behind each other (as they do
/// on SQLite's one thread), and it cannot be deleted halfway through one.
pub(super) async fn owned(
    tx: &Transaction<'_>,
    session: &str,
    conversation: &str,
    lock: bool,
) -> Result<bool, StoreError> {
    let stmt = tx
        .prepare_cached(if lock {
            "SELECT 1 FROM conversations WHERE id = $1 AND session_id = $2 FOR UPDATE"
        } else {
            "SELECT 1 FROM conversations WHERE id = $1 AND session_id = $2"
        })
        .await?;
    Ok(tx
        .query_opt(&stmt, &[&conversation, &session])
        .await?
        .is_some())
}

/// A conversation's messages, oldest first; none when it is not `session`'s.
pub(super) async fn messages(
    tx: &Transaction<'_>,
    session: &str,
    conversation: &str,
) -> Result<Vec<StoredMessage>, StoreError> {
    let stmt = tx
        .prepare_cached(
            "SELECT m.id, m.role, m.content, m.status, m.created_at
             FROM messages m JOIN conversations c ON c.id = m.conversation_id
             WHERE m.conversation_id = $1 AND c.session_id = $2 ORDER BY m.id",
        )
        .await?;
    tx.query(&stmt, &[&conversation, &session])
        .await?
        .into_iter()
        .map(|r| {
            Ok(StoredMessage {
                id: r.try_get(0)?,
                role: parse_role(r.try_get(1)?),
                content: text(r.try_get(2)?)?,
                status: parse_status(r.try_get(3)?),
                created_at: rfc3339(r.try_get(4)?),
            })
        })
        .collect()
}

/// Sets the conversation's `updated_at` to `now`.
pub(super) async fn bump(
    tx: &Transaction<'_>,
    conversation: &str,
    now: i64,
) -> Result<(), StoreError> {
    let stmt = tx
        .prepare_cached("UPDATE conversations SET updated_at = $2 WHERE id = $1")
        .await?;
    tx.execute(&stmt, &[&conversation, &now]).await?;
    Ok(())
}
