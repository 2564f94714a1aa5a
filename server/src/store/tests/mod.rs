//! Store tests. The behaviour's tests, here, run on both backends (SQLite in memory, and
//! PostgreSQL on a fresh database of the throwaway server of `pg_testkit`); each backend's own
//! are in `backends`.

use super::pg_testkit::PgServer;
use super::*;
use std::time::Duration;

mod backends;

fn sid(n: u8) -> SessionId {
    SessionId::parse(&format!("{n:032x}")).unwrap()
}

/// One integer from SQL run on the store's own connection (test introspection; the SQL is the
/// same in both dialects where a test runs on both).
async fn scalar(store: &Store, sql: &'static str) -> i64 {
    match &store.backend {
        Backend::Sqlite(b) => b
            .run(move |c| Ok(c.query_row(sql, [], |r| r.get::<_, i64>(0))?))
            .await
            .unwrap(),
        Backend::Postgres(b) => b
            .client()
            .await
            .unwrap()
            .query_one(sql, &[])
            .await
            .unwrap()
            .get(0),
    }
}

/// A store on a fresh database of the process's throwaway PostgreSQL server.
async fn postgres_store() -> Store {
    let url = PgServer::shared().fresh_database().await;
    Store::connect(&DbLocation::parse(&url).unwrap())
        .await
        .unwrap()
}

/// Each `name` is an `async fn name(store: Store)` run twice, as `name::sqlite` (in memory) and
/// `name::postgres` (a fresh database on the throwaway server).
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(super::Store::open_in_memory().await.unwrap()).await;
            }
            #[tokio::test]
            async fn postgres() {
                super::$name(super::postgres_store().await).await;
            }
        }
    )*};
}

on_both_backends!(
    conversations_round_trip_and_stay_in_their_session,
    the_list_is_most_recently_changed_first_and_appending_bumps,
    regenerate_removes_the_trailing_answers,
    expire_deletes_only_old_conversations_and_idle_empty_sessions,
    concurrent_writers_are_all_kept_in_order,
    any_text_round_trips_exactly,
    conversations_changed_in_one_millisecond_list_newest_first,
);

async fn say(store: &Store, s: &SessionId, c: &ConversationId, role: Role, text: &str) -> i64 {
    store
        .append_message(s, c, role, text, MessageStatus::Complete)
        .await
        .unwrap()
}

async fn conversations_round_trip_and_stay_in_their_session(store: Store) {
    let (a, b) = (sid(1), sid(2));
    // Neither session was touched first: creating a conversation records the session.
    let c = store.create_conversation(&a, "First").await.unwrap();
    assert_eq!(c.0.len(), 32);
    assert!(c.0.bytes().all(|b| b.is_ascii_hexdigit()));
    let m1 = say(&store, &a, &c, Role::User, "hi").await;
    let m2 = store
        .append_message(&a, &c, Role::Assistant, "hello", MessageStatus::Stopped)
        .await
        .unwrap();
    assert!(m2 > m1);
    let conv = store.conversation(&a, &c).await.unwrap().unwrap();
    assert_eq!((conv.id.clone(), conv.title.as_str()), (c.clone(), "First"));
    assert_eq!(conv.messages.len(), 2);
    assert_eq!(
        (
            conv.messages[0].id,
            conv.messages[0].role,
            conv.messages[0].content.as_str()
        ),
        (m1, Role::User, "hi")
    );
    assert_eq!(conv.messages[1].status, MessageStatus::Stopped);
    assert!(humantime::parse_rfc3339(&conv.created_at).is_ok());
    assert!(humantime::parse_rfc3339(&conv.messages[0].created_at).is_ok());
    let list = store.list_conversations(&a).await.unwrap();
    assert_eq!((list.len(), list[0].message_count), (1, 2));
    assert_eq!(list[0].updated_at, conv.updated_at);
    assert_eq!(store.count_conversations(&a).await.unwrap(), 1);
    assert_eq!(store.history(&a, &c).await.unwrap().unwrap(), conv.messages);

    // Session b sees and changes nothing of a's, whatever it tries.
    store.touch_session(&b).await.unwrap();
    assert!(store.conversation(&b, &c).await.unwrap().is_none());
    assert!(store.history(&b, &c).await.unwrap().is_none());
    assert!(store.list_conversations(&b).await.unwrap().is_empty());
    assert_eq!(store.count_conversations(&b).await.unwrap(), 0);
    assert!(matches!(
        store
            .append_message(&b, &c, Role::User, "x", MessageStatus::Complete)
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.remove_last_answer(&b, &c).await,
        Err(StoreError::NotFound)
    ));
    assert!(!store.delete_conversation(&b, &c).await.unwrap());
    assert_eq!(store.expire(SystemTime::UNIX_EPOCH).await.unwrap(), 0);
    assert_eq!(store.conversation(&a, &c).await.unwrap().unwrap(), conv);

    // An unknown id gets the same answers as another session's.
    let unknown = ConversationId("f".repeat(32));
    assert!(store.conversation(&a, &unknown).await.unwrap().is_none());
    assert!(store.history(&a, &unknown).await.unwrap().is_none());
    assert!(matches!(
        store
            .append_message(&a, &unknown, Role::User, "x", MessageStatus::Complete)
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(!store.delete_conversation(&a, &unknown).await.unwrap());

    // Deleting takes the messages with it (cascade).
    assert!(store.delete_conversation(&a, &c).await.unwrap());
    assert!(store.conversation(&a, &c).await.unwrap().is_none());
    assert!(!store.delete_conversation(&a, &c).await.unwrap());
    assert_eq!(store.count_conversations(&a).await.unwrap(), 0);
    assert_eq!(scalar(&store, "SELECT COUNT(*) FROM messages").await, 0);
}

async fn the_list_is_most_recently_changed_first_and_appending_bumps(store: Store) {
    let a = sid(1);
    let first = store.create_conversation(&a, "first").await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = store.create_conversation(&a, "second").await.unwrap();
    let ids = |l: Vec<ConversationSummary>| l.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_conversations(&a).await.unwrap()),
        [second.clone(), first.clone()]
    );
    let before = store.conversation(&a, &first).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    say(&store, &a, &first, Role::User, "again").await;
    let after = store.conversation(&a, &first).await.unwrap().unwrap();
    assert!(after.updated_at > before.updated_at);
    assert_eq!(after.created_at, before.created_at);
    let list = store.list_conversations(&a).await.unwrap();
    assert_eq!((list[0].message_count, list[1].message_count), (1, 0));
    assert_eq!(ids(list), [first, second]);
}

async fn regenerate_removes_the_trailing_answers(store: Store) {
    let a = sid(1);
    let c = store.create_conversation(&a, "t").await.unwrap();
    assert!(store.remove_last_answer(&a, &c).await.unwrap().is_none());
    for (role, text) in [
        (Role::System, "be brief"),
        (Role::User, "q1"),
        (Role::Assistant, "a1"),
        (Role::User, "q2"),
        (Role::Assistant, "a2 (stopped)"),
        (Role::Assistant, "a2 (again)"),
    ] {
        say(&store, &a, &c, role, text).await;
    }
    let last = store.remove_last_answer(&a, &c).await.unwrap().unwrap();
    assert_eq!((last.role, last.content.as_str()), (Role::User, "q2"));
    let contents = |h: Vec<StoredMessage>| h.into_iter().map(|m| m.content).collect::<Vec<_>>();
    assert_eq!(
        contents(store.history(&a, &c).await.unwrap().unwrap()),
        ["be brief", "q1", "a1", "q2"]
    );
    // With no answer to remove, it is the same user message again and nothing is deleted.
    let again = store.remove_last_answer(&a, &c).await.unwrap().unwrap();
    assert_eq!(again, last);
    assert_eq!(store.history(&a, &c).await.unwrap().unwrap().len(), 4);

    // A conversation with no user message: nothing to answer again, nothing deleted.
    let d = store.create_conversation(&a, "no user").await.unwrap();
    say(&store, &a, &d, Role::System, "s").await;
    say(&store, &a, &d, Role::Assistant, "unprompted").await;
    assert!(store.remove_last_answer(&a, &d).await.unwrap().is_none());
    assert_eq!(store.history(&a, &d).await.unwrap().unwrap().len(), 2);
}

async fn expire_deletes_only_old_conversations_and_idle_empty_sessions(store: Store) {
    let (a, b, idle) = (sid(1), sid(2), sid(3));
    let old = store.create_conversation(&a, "old").await.unwrap();
    say(&store, &a, &old, Role::User, "hi").await;
    store.touch_session(&idle).await.unwrap();
    assert_eq!(
        store
            .expire(SystemTime::now() - Duration::from_secs(60))
            .await
            .unwrap(),
        0
    );
    assert_eq!(scalar(&store, "SELECT COUNT(*) FROM sessions").await, 2);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let cutoff = SystemTime::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let fresh = store.create_conversation(&b, "fresh").await.unwrap();
    assert_eq!(store.expire(cutoff).await.unwrap(), 1);
    assert!(store.conversation(&a, &old).await.unwrap().is_none());
    assert!(store.conversation(&b, &fresh).await.unwrap().is_some());
    assert_eq!(scalar(&store, "SELECT COUNT(*) FROM messages").await, 0);
    // a and idle were last seen before the cutoff and have nothing left; b stays.
    assert_eq!(scalar(&store, "SELECT COUNT(*) FROM sessions").await, 1);
    // An expired session that comes back simply starts again.
    let again = store.create_conversation(&a, "back").await.unwrap();
    assert_eq!(store.list_conversations(&a).await.unwrap()[0].id, again);
}

async fn concurrent_writers_are_all_kept_in_order(store: Store) {
    let a = sid(1);
    let c = store.create_conversation(&a, "busy").await.unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let (store, a, c) = (store.clone(), a.clone(), c.clone());
            tokio::spawn(async move { say(&store, &a, &c, Role::User, &i.to_string()).await })
        })
        .collect();
    let mut ids = vec![];
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    let history = store.history(&a, &c).await.unwrap().unwrap();
    assert_eq!(history.len(), 32);
    assert!(history.windows(2).all(|w| w[0].id < w[1].id));
    ids.sort_unstable();
    assert_eq!(ids, history.iter().map(|m| m.id).collect::<Vec<_>>());
}

async fn any_text_round_trips_exactly(store: Store) {
    let a = sid(1);
    let odd = "nul \0 inside, 🦀, ß, \u{202e}rtl, tab\t, 'quotes' \"and\" \\ backslash";
    let c = store.create_conversation(&a, odd).await.unwrap();
    say(&store, &a, &c, Role::User, odd).await;
    say(&store, &a, &c, Role::Assistant, "\0").await;
    let conv = store.conversation(&a, &c).await.unwrap().unwrap();
    assert_eq!(conv.title, odd);
    assert_eq!(conv.messages[0].content, odd);
    assert_eq!(conv.messages[1].content, "\0");
    assert_eq!(store.list_conversations(&a).await.unwrap()[0].title, odd);
    // An id that no conversation can have is simply unknown, on either backend.
    let weird = ConversationId(format!("{}\0", c.0));
    assert!(store.conversation(&a, &weird).await.unwrap().is_none());
    assert!(store.history(&a, &weird).await.unwrap().is_none());
    assert!(matches!(
        store
            .append_message(&a, &weird, Role::User, "x", MessageStatus::Complete)
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.remove_last_answer(&a, &weird).await,
        Err(StoreError::NotFound)
    ));
    assert!(!store.delete_conversation(&a, &weird).await.unwrap());
}

async fn conversations_changed_in_one_millisecond_list_newest_first(store: Store) {
    let a = sid(1);
    let mut made = vec![];
    for i in 0..20 {
        made.push(store.create_conversation(&a, &i.to_string()).await.unwrap());
    }
    made.reverse();
    let listed: Vec<_> = store
        .list_conversations(&a)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(listed, made);
}
