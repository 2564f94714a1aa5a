//! Each backend's own tests: SQLite on a file and its connection's settings; PostgreSQL's
//! migrations, constraints and connection failures.

use super::*;

/// A fresh path under the system's temp dir (in a folder that does not exist yet).
struct TempDb(std::path::PathBuf);

impl TempDb {
    fn new() -> TempDb {
        TempDb(std::env::temp_dir().join(format!("turnstile-store-{}", uuid::Uuid::new_v4())))
    }

    fn path(&self) -> std::path::PathBuf {
        self.0.join("nested").join("t.sqlite3")
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn a_file_survives_reopening_and_migrations_run_once() {
    let db = TempDb::new();
    let path = db.path();
    let a = sid(7);
    let c = {
        let store = Store::open(&path).await.unwrap();
        assert_eq!(scalar(&store, "PRAGMA user_version").await, 1);
        let c = store.create_conversation(&a, "kept").await.unwrap();
        say(&store, &a, &c, Role::User, "still here").await;
        c
    };
    for _ in 0..2 {
        let store = Store::open(&path).await.unwrap();
        // The schema is at its latest version and was not applied again.
        assert_eq!(scalar(&store, "PRAGMA user_version").await, 1);
        let conv = store.conversation(&a, &c).await.unwrap().unwrap();
        assert_eq!(conv.title, "kept");
        assert_eq!(conv.messages.len(), 1);
        assert_eq!(conv.messages[0].content, "still here");
    }
}

#[tokio::test]
async fn the_connection_is_configured() {
    let db = TempDb::new();
    let store = Store::open(&db.path()).await.unwrap();
    let Backend::Sqlite(sqlite) = &store.backend else {
        unreachable!()
    };
    let mode = sqlite
        .run(|c| Ok(c.query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))?))
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(scalar(&store, "PRAGMA foreign_keys").await, 1);
    assert_eq!(scalar(&store, "PRAGMA synchronous").await, 1, "NORMAL");
    assert_eq!(
        scalar(&store, "PRAGMA busy_timeout").await,
        sqlite::sql::BUSY_TIMEOUT.as_millis() as i64
    );
    // Foreign keys are enforced: a message needs its conversation.
    let orphan = sqlite
        .run(|c| {
            Ok(c.execute(
                "INSERT INTO messages (conversation_id, role, content, status, created_at)
                 VALUES ('nope', 'user', 'x', 'complete', 0)",
                [],
            )
            .is_err())
        })
        .await
        .unwrap();
    assert!(orphan);
}

#[tokio::test]
async fn postgres_migrations_run_once_even_when_instances_start_together() {
    let url = PgServer::shared().fresh_database().await;
    let at = DbLocation::parse(&url).unwrap();
    // Four instances open the new database at the same moment: one migrates, none fails.
    let stores = futures::future::join_all((0..4).map(|_| Store::connect(&at))).await;
    let stores: Vec<Store> = stores.into_iter().map(Result::unwrap).collect();
    let store = &stores[0];
    assert_eq!(
        scalar(store, "SELECT COUNT(*) FROM schema_migrations").await,
        1
    );
    assert_eq!(
        scalar(store, "SELECT MAX(version)::BIGINT FROM schema_migrations").await,
        sql_version()
    );
    let a = sid(7);
    let c = store.create_conversation(&a, "kept").await.unwrap();
    say(store, &a, &c, Role::User, "still here").await;
    for s in &stores {
        s.close().await.unwrap();
    }
    // Opened again: nothing is applied twice, and what was written is there, for every
    // instance.
    let again = Store::connect(&at).await.unwrap();
    assert_eq!(
        scalar(&again, "SELECT COUNT(*) FROM schema_migrations").await,
        1
    );
    let conv = again.conversation(&a, &c).await.unwrap().unwrap();
    assert_eq!((conv.title.as_str(), conv.messages.len()), ("kept", 1));
    // A database a newer build migrated further is refused, not used.
    scalar(
        &again,
        "WITH v AS (INSERT INTO schema_migrations VALUES (999, 0) RETURNING version)
         SELECT COUNT(*) FROM v",
    )
    .await;
    let Err(StoreError::Database(why)) = Store::connect(&at).await else {
        panic!("a newer schema must be refused");
    };
    assert!(why.contains("999"), "{why}");
}

/// The latest PostgreSQL schema version.
fn sql_version() -> i64 {
    postgres::sql::MIGRATIONS.len() as i64
}

#[tokio::test]
async fn postgres_enforces_the_schema() {
    let store = postgres_store().await;
    let Backend::Postgres(pg) = &store.backend else {
        unreachable!()
    };
    let client = pg.client().await.unwrap();
    // A message needs its conversation, and a known role and status.
    let orphan = client
        .execute(
            "INSERT INTO messages (conversation_id, role, content, status, created_at)
             VALUES ('nope', 'user', 'x', 'complete', 0)",
            &[],
        )
        .await;
    let why = StoreError::from(orphan.unwrap_err()).to_string();
    assert!(why.contains("foreign key"), "{why}");
    let a = sid(1);
    let c = store.create_conversation(&a, "t").await.unwrap();
    for (role, status) in [("robot", "complete"), ("user", "done")] {
        let bad = client
            .execute(
                "INSERT INTO messages (conversation_id, role, content, status, created_at)
                 VALUES ($1, $2, 'x', $3, 0)",
                &[&c.0, &role, &status],
            )
            .await;
        let why = StoreError::from(bad.unwrap_err()).to_string();
        assert!(why.contains("check constraint"), "{why}");
    }
}

#[tokio::test]
async fn an_unreachable_postgres_fails_to_open_without_its_password() {
    let nowhere = std::env::temp_dir().join(format!("turnstile-no-pg-{}", uuid::Uuid::new_v4()));
    let url = format!(
        "postgres://ann:s3cret@{}/db",
        nowhere.to_string_lossy().replace('/', "%2F")
    );
    let Err(StoreError::Database(why)) = Store::connect(&DbLocation::parse(&url).unwrap()).await
    else {
        panic!("nothing listens there");
    };
    assert!(!why.contains("s3cret"), "{why}");
}
