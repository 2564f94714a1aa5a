//! Issue 14, resume through another instance: two web instances and a worker on one shared queue
//! in a real `redis-server`. A chat sent through instance 1 is resumed through instance 2 (after
//! instance 1 stopped, was killed with `kill -9` as a process, or while it still runs): the client gets every message after its last
//! seq once, in order, then the live stream to one final `done`, and the whole answer equals
//! the same question's answer asked alone (greedy decoding). Another session's resume gets the
//! answer an unknown job gets.

mod common;

use app::error_code::ErrorCode;
use app::protocol::{JobId, ServerMessage};
use common::procs::Proc;
use common::*;
use futures::StreamExt;
use serde_json::json;
use std::time::Duration;
use turnstile_cluster::testkit::RedisServer;
use turnstile_server::store::pg_testkit::PgServer;

fn chat(message: &str, max_tokens: u32) -> serde_json::Value {
    json!({"kind":"chat","message":message,"max_tokens":max_tokens,"temperature":0.0})
}

fn tokens(msgs: &[ServerMessage]) -> usize {
    msgs.iter()
        .filter(|m| matches!(m, ServerMessage::Token { .. }))
        .count()
}

/// Sends a chat and reads up to its third token; returns its id and what came.
async fn start_chat(c: &mut Client, question: &str) -> (JobId, Vec<ServerMessage>) {
    c.send_json(submit("c", chat(question, 48))).await;
    let mut seen = vec![c.recv().await];
    let job_id = match &seen[0] {
        ServerMessage::Accepted { job_id, .. } => job_id.clone(),
        other => panic!("expected accepted, got {other:?}"),
    };
    while tokens(&seen) < 3 {
        let m = c.recv().await;
        assert!(!m.is_terminal(), "the chat ended early: {m:?}");
        seen.push(m);
    }
    (job_id, seen)
}

/// Resumes `job_id` after `seen` on `c` and reads to the end; checks the numbering (no gap, no
/// repeat), one final message, nothing after it. Returns every message.
async fn resume_to_end(
    c: &mut Client,
    job_id: &JobId,
    mut seen: Vec<ServerMessage>,
) -> Vec<ServerMessage> {
    let last_seq = seen.last().unwrap().seq().unwrap();
    c.send_json(json!({"type":"resume","job_id":job_id,"last_seq":last_seq}))
        .await;
    let rest = c.until_end().await;
    assert_eq!(rest[0].seq(), Some(last_seq + 1), "{rest:?}");
    seen.extend(rest);
    for (i, m) in seen.iter().enumerate() {
        assert_eq!(
            m.seq(),
            Some(i as u64),
            "seq without gap or repeat: {seen:?}"
        );
        assert_eq!(m.job_id(), Some(job_id));
        assert_eq!(
            m.is_terminal(),
            i == seen.len() - 1,
            "one final message: {seen:?}"
        );
    }
    assert!(
        matches!(seen.last(), Some(ServerMessage::Done { .. })),
        "{seen:?}"
    );
    let after = tokio::time::timeout(Duration::from_millis(300), c.stream.next()).await;
    assert!(after.is_err(), "nothing after the end: {after:?}");
    seen
}

/// The answer to `question` (in `max_tokens`) asked alone (a fresh session) through `server`.
async fn alone(server: &TestServer, question: &str, max_tokens: u32) -> String {
    let mut c = server.ws_as(&new_session()).await;
    c.send_json(submit("alone", chat(question, max_tokens)))
        .await;
    let msgs = c.until_end().await;
    assert!(
        matches!(msgs.last(), Some(ServerMessage::Done { .. })),
        "{msgs:?}"
    );
    text_of(&msgs)
}

/// Another session's resume of `job_id` is answered as a resume of a job that never was.
async fn stranger_is_refused(server: &TestServer, job_id: &JobId) {
    let mut stranger = server.ws_as(&new_session()).await;
    let unknown = JobId("0123456789abcdef0123456789abcdef".into());
    let mut answers = vec![];
    for id in [job_id, &unknown] {
        stranger
            .send_json(json!({"type":"resume","job_id":id,"last_seq":0}))
            .await;
        match stranger.recv().await {
            ServerMessage::Error {
                code,
                message,
                job_id: Some(j),
                ..
            } => {
                assert_eq!(&j, id);
                answers.push((code, message.replace(&id.0, "ID")));
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }
    assert_eq!(answers[0].0, ErrorCode::NotFound);
    assert_eq!(answers[0], answers[1], "no difference from an unknown job");
}

#[tokio::test]
async fn a_chat_resumes_through_another_instance_after_the_first_is_stopped() {
    let redis = RedisServer::start();
    let url = redis.url();
    // One database for both instances, as in a deployment: the instance that takes the chat
    // over stores its answer.
    let db = PgServer::shared().fresh_database().await;
    let web1 = TestServer::start_on(&db, &["--queue", &url]).await;
    let web2 = TestServer::start_on(&db, &["--queue", &url]).await;
    let _worker = TestWorker::start(&url, &["--test-token-delay", "40ms"]).await;
    let session = new_session();
    let question = "Describe the sea.";

    let mut c = web1.ws_as(&session).await;
    let (job_id, seen) = start_chat(&mut c, question).await;
    let Some(ServerMessage::Accepted {
        conversation_id: Some(conversation),
        ..
    }) = seen.first()
    else {
        panic!("accepted with a conversation: {seen:?}");
    };
    let conversation = conversation.clone();
    drop(c);
    drop(web1);
    tokio::time::sleep(Duration::from_millis(300)).await; // tokens go on meanwhile

    let mut again = web2.ws_as(&session).await;
    let all = resume_to_end(&mut again, &job_id, seen).await;
    assert!(tokens(&all) > 3, "{all:?}");
    stranger_is_refused(&web2, &job_id).await;
    // A second resume through the instance that took it over replays the end.
    let mut third = web2.ws_as(&session).await;
    let last = all.len() as u64 - 2;
    third
        .send_json(json!({"type":"resume","job_id":job_id,"last_seq":last}))
        .await;
    assert!(matches!(third.recv().await, ServerMessage::Done { .. }));
    assert_eq!(text_of(&all), alone(&web2, question, 48).await);
    let stored: app::chat::Conversation = web2
        .get_json_as(&format!("/api/conversations/{conversation}"), &session)
        .await;
    assert_eq!(stored.messages.len(), 2, "{stored:?}");
    assert_eq!(
        stored.messages[1].content,
        text_of(&all),
        "the whole answer"
    );
}

#[tokio::test]
async fn a_chat_resumes_through_another_instance_while_the_first_still_runs() {
    let redis = RedisServer::start();
    let url = redis.url();
    // Instance 1 gives up on its client quickly: its late cancel must not touch the chat that
    // moved to instance 2.
    let web1 = TestServer::start(&["--queue", &url, "--resume-window", "300ms"]).await;
    let web2 = TestServer::start(&["--queue", &url]).await;
    let _worker = TestWorker::start(&url, &["--test-token-delay", "40ms"]).await;
    let session = new_session();
    let question = "Name three colours.";

    let mut c = web1.ws_as(&session).await;
    let (job_id, seen) = start_chat(&mut c, question).await;
    drop(c);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut again = web2.ws_as(&session).await;
    let all = resume_to_end(&mut again, &job_id, seen).await;
    stranger_is_refused(&web2, &job_id).await;
    stranger_is_refused(&web1, &job_id).await;
    // Back to instance 1: it takes the chat back and replays its end.
    let mut back = web1.ws_as(&session).await;
    let last = all.len() as u64 - 3;
    back.send_json(json!({"type":"resume","job_id":job_id,"last_seq":last}))
        .await;
    let end = back.until_end().await;
    assert_eq!(end.len(), 2, "{end:?}");
    assert_eq!(end[0], all[all.len() - 2]);
    assert_eq!(end[1], all[all.len() - 1]);
    assert_eq!(text_of(&all), alone(&web1, question, 48).await);
}

#[tokio::test]
async fn a_waiting_chat_resumes_through_another_instance_and_runs_there() {
    let redis = RedisServer::start();
    let url = redis.url();
    let web1 = TestServer::start(&["--queue", &url]).await;
    let web2 = TestServer::start(&["--queue", &url]).await;
    let session = new_session();
    let question = "Say hello.";

    // No worker yet: the chat waits in the shared line.
    let mut c = web1.ws_as(&session).await;
    c.send_json(submit("c", chat(question, 16))).await;
    let first = c.recv().await;
    let Some(job_id) = first.job_id().cloned() else {
        panic!("expected accepted, got {first:?}");
    };
    drop(c);
    drop(web1);
    let mut again = web2.ws_as(&session).await;
    again
        .send_json(json!({"type":"resume","job_id":job_id,"last_seq":0}))
        .await;
    // Its place, as instance 2 sees it, then the run once a worker comes.
    match again.recv().await {
        ServerMessage::Position { seq, position, .. } => assert_eq!((seq, position), (1, 1)),
        other => panic!("expected its position, got {other:?}"),
    }
    let _worker = TestWorker::start(&url, &[]).await;
    let mut all = vec![
        first,
        ServerMessage::Position {
            job_id: job_id.clone(),
            seq: 1,
            position: 1,
            eta_ms: 0,
        },
    ];
    let rest = again.until_end().await;
    all.extend(rest);
    for (i, m) in all.iter().enumerate() {
        assert_eq!(m.seq(), Some(i as u64), "{all:?}");
    }
    // The worker loads its model first (`loading`), then runs it.
    let started = all
        .iter()
        .position(|m| matches!(m, ServerMessage::Started { .. }));
    assert!(
        all[2..started.unwrap()]
            .iter()
            .all(|m| matches!(m, ServerMessage::Loading { .. })),
        "{all:?}"
    );
    assert!(
        matches!(all.last(), Some(ServerMessage::Done { .. })),
        "{all:?}"
    );
    assert_eq!(text_of(&all), alone(&web2, question, 16).await);
}

#[tokio::test]
async fn a_chat_resumes_through_another_instance_after_the_first_is_killed() {
    let redis = RedisServer::start();
    let url = redis.url();
    let dir = TempDir::new();
    let mut web1 = Proc::web(&url, dir.path(), "web1", &[]);
    let web2 = Proc::web(&url, dir.path(), "web2", &[]);
    let _worker = Proc::worker(&url, dir.path(), "worker", &["--test-token-delay", "40ms"]);
    let connect = |addr: std::net::SocketAddr, session: String| async move {
        let url = format!("ws://{addr}/ws?session={session}");
        let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Client { stream }
    };
    let session = new_session();
    let question = "Describe a forest.";

    let mut c = connect(web1.addr.unwrap(), session.clone()).await;
    let (job_id, seen) = start_chat(&mut c, question).await;
    web1.kill();
    drop(c);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut again = connect(web2.addr.unwrap(), session.clone()).await;
    let all = resume_to_end(&mut again, &job_id, seen).await;
    let mut stranger = connect(web2.addr.unwrap(), new_session()).await;
    stranger
        .send_json(json!({"type":"resume","job_id":job_id,"last_seq":0}))
        .await;
    assert!(matches!(
        stranger.recv().await,
        ServerMessage::Error {
            code: ErrorCode::NotFound,
            ..
        }
    ));
    let mut solo = connect(web2.addr.unwrap(), new_session()).await;
    solo.send_json(submit("alone", chat(question, 48))).await;
    assert_eq!(text_of(&all), text_of(&solo.until_end().await));
}
