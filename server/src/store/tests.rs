//! Store tests: in memory and on a temporary file.

use super::*;

fn sid(n: u8) -> SessionId {
    SessionId::parse(&format!("{n:032x}")).unwrap()
}

#[tokio::test]
async fn conversations_round_trip_and_stay_in_their_session() {
    let store = Store::open_in_memory().await.unwrap();
    let (a, b) = (sid(1), sid(2));
    let c = store.create_conversation(&a, "First").await.unwrap();
    store
        .append_message(&a, &c, Role::User, "hi", MessageStatus::Complete)
        .await
        .unwrap();
    store
        .append_message(&a, &c, Role::Assistant, "hello", MessageStatus::Stopped)
        .await
        .unwrap();
    let conv = store.conversation(&a, &c).await.unwrap().unwrap();
    assert_eq!(conv.title, "First");
    assert_eq!(conv.messages.len(), 2);
    assert_eq!(conv.messages[1].status, MessageStatus::Stopped);
    let list = store.list_conversations(&a).await.unwrap();
    assert_eq!((list.len(), list[0].message_count), (1, 2));
    assert_eq!(store.count_conversations(&a).await.unwrap(), 1);

    // Session b sees nothing of a's, whatever it tries.
    assert!(store.conversation(&b, &c).await.unwrap().is_none());
    assert!(store.history(&b, &c).await.unwrap().is_none());
    assert!(store.list_conversations(&b).await.unwrap().is_empty());
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
    assert_eq!(store.history(&a, &c).await.unwrap().unwrap().len(), 2);

    assert!(store.delete_conversation(&a, &c).await.unwrap());
    assert!(store.conversation(&a, &c).await.unwrap().is_none());
}

#[tokio::test]
async fn regenerate_removes_the_trailing_answers() {
    let store = Store::open_in_memory().await.unwrap();
    let a = sid(1);
    let c = store.create_conversation(&a, "t").await.unwrap();
    assert!(store.remove_last_answer(&a, &c).await.unwrap().is_none());
    for (role, text) in [
        (Role::User, "q1"),
        (Role::Assistant, "a1"),
        (Role::User, "q2"),
        (Role::Assistant, "a2"),
    ] {
        store
            .append_message(&a, &c, role, text, MessageStatus::Complete)
            .await
            .unwrap();
    }
    let last = store.remove_last_answer(&a, &c).await.unwrap().unwrap();
    assert_eq!(last.content, "q2");
    let h = store.history(&a, &c).await.unwrap().unwrap();
    assert_eq!(
        h.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(),
        ["q1", "a1", "q2"]
    );
}

#[tokio::test]
async fn expire_deletes_only_old_conversations() {
    let store = Store::open_in_memory().await.unwrap();
    let a = sid(1);
    let old = store.create_conversation(&a, "old").await.unwrap();
    assert_eq!(
        store
            .expire(SystemTime::now() - Duration::from_secs(60))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .expire(SystemTime::now() + Duration::from_secs(1))
            .await
            .unwrap(),
        1
    );
    assert!(store.conversation(&a, &old).await.unwrap().is_none());
}

#[tokio::test]
async fn a_file_survives_reopening_and_migrations_run_once() {
    let dir = std::env::temp_dir().join(format!("turnstile-store-{}", uuid::Uuid::new_v4()));
    let path = dir.join("nested").join("t.sqlite3");
    let a = sid(7);
    let c = {
        let store = Store::open(&path).await.unwrap();
        let c = store.create_conversation(&a, "kept").await.unwrap();
        store
            .append_message(&a, &c, Role::User, "still here", MessageStatus::Complete)
            .await
            .unwrap();
        c
    };
    let store = Store::open(&path).await.unwrap();
    let conv = store.conversation(&a, &c).await.unwrap().unwrap();
    assert_eq!(conv.messages[0].content, "still here");
    let _ = std::fs::remove_dir_all(&dir);
}
