//! Chat against a real server on an ephemeral port, answering with the embedded model (run
//! `scripts/model.sh` first; `make test` does): streaming, several chats decoded at once (each
//! hearing only its own tokens, one's Stop sparing the others), turns when the lanes are full,
//! calculator jobs between the chats' steps, cancel and disconnect, resume, history across a
//! restart, and session isolation.

mod common;

use app::chat::{Conversation, ConversationId, FinishReason, MessageStatus, Role};
use app::error_code::ErrorCode;
use app::protocol::{JobId, ServerMessage};
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

fn chat(message: &str, max_tokens: u32) -> serde_json::Value {
    json!({"kind":"chat","message":message,"max_tokens":max_tokens,"temperature":0.0})
}

fn accepted(m: &ServerMessage) -> (JobId, ConversationId) {
    match m {
        ServerMessage::Accepted {
            job_id,
            conversation_id: Some(c),
            ..
        } => (job_id.clone(), c.clone()),
        other => panic!("expected accepted with a conversation, got {other:?}"),
    }
}

#[tokio::test]
async fn a_chat_streams_tokens_and_ends_with_done_and_is_stored() {
    let server = TestServer::start(&[]).await;
    let session = new_session();
    let mut c = server.ws_as(&session).await;
    c.send_json(submit("c1", chat("Say hello.", 24))).await;
    let msgs = c.until_end().await;
    let (job_id, conversation) = accepted(&msgs[0]);
    let tokens = msgs
        .iter()
        .filter(|m| matches!(m, ServerMessage::Token { .. }))
        .count();
    assert!(tokens > 0, "{msgs:?}");
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(m.job_id(), Some(&job_id));
        assert_eq!(m.seq(), Some(i as u64), "seq without gaps: {msgs:?}");
    }
    let Some(ServerMessage::Done {
        usage: Some(usage), ..
    }) = msgs.last()
    else {
        panic!("ends with done and usage: {:?}", msgs.last());
    };
    assert!(usage.prompt_tokens > 5);
    assert!(usage.completion_tokens >= tokens as u32);
    assert!(usage.completion_tokens <= 24);
    assert!(usage.time_to_first_token_ms > 0.0);
    if usage.completion_tokens == 24 {
        assert_eq!(usage.finish_reason, FinishReason::Length);
    }
    let answer = text_of(&msgs);
    let stored: Conversation = server
        .get_json_as(&format!("/api/conversations/{conversation}"), &session)
        .await;
    assert_eq!(stored.messages.len(), 2);
    assert_eq!(stored.messages[0].role, Role::User);
    assert_eq!(stored.messages[0].content, "Say hello.");
    assert_eq!(stored.messages[1].role, Role::Assistant);
    assert_eq!(stored.messages[1].content, answer);
    assert_eq!(stored.messages[1].status, MessageStatus::Complete);

    // The conversation continues: the model reads the history.
    c.send_json(submit(
        "c2",
        json!({"kind":"chat","conversation_id":conversation,"message":"Again.","max_tokens":8}),
    ))
    .await;
    let msgs = c.until_end().await;
    let (_, same) = accepted(&msgs[0]);
    assert_eq!(same, conversation);
    let Some(ServerMessage::Done {
        usage: Some(second),
        ..
    }) = msgs.last()
    else {
        panic!("{msgs:?}");
    };
    assert!(
        second.prompt_tokens > usage.prompt_tokens,
        "the history is part of the prompt"
    );
}

#[tokio::test]
async fn with_one_lane_two_chats_take_turns_with_positions_and_see_only_their_own_tokens() {
    let server = TestServer::start(&["--test-token-delay", "20ms", "--chat-lanes", "1"]).await;
    let mut a = server.ws_as(&new_session()).await;
    let mut b = server.ws_as(&new_session()).await;
    a.send_json(submit("a", chat("Count to ten.", 16))).await;
    let first = a.recv().await;
    let (a_job, _) = accepted(&first);
    b.send_json(submit("b", chat("Name a colour.", 16))).await;
    let b_msgs = b.until_end().await;
    let a_msgs = a.until_end().await;
    let (b_job, _) = accepted(&b_msgs[0]);
    assert!(
        matches!(b_msgs[0], ServerMessage::Accepted { position: 1, .. }),
        "b waits behind a: {b_msgs:?}"
    );
    assert!(a_msgs.iter().all(|m| m.job_id() == Some(&a_job)));
    assert!(b_msgs.iter().all(|m| m.job_id() == Some(&b_job)));
    assert!(matches!(a_msgs.last(), Some(ServerMessage::Done { .. })));
    assert!(matches!(b_msgs.last(), Some(ServerMessage::Done { .. })));
    assert!(!text_of(&b_msgs).is_empty());
    // One copy of the weights served both: one load, reported by the stats and health.
    let stats = server.get_json("/api/stats").await;
    assert_eq!(stats["model"]["state"], "loaded", "{stats}");
    assert_eq!(stats["model"]["loads"], 1);
    assert!(stats["model"]["memory_bytes"].as_u64().unwrap() > 100_000_000);
    let health = server.get_json("/health").await;
    assert_eq!(health["subsystems"]["model"]["status"], "ok");
}

#[tokio::test]
async fn several_chats_stream_at_once_in_order_and_one_stop_spares_the_others() {
    let server = TestServer::start(&["--test-token-delay", "20ms"]).await;
    // The same question alone first: greedy answers do not depend on their batch.
    let mut solo = server.ws_as(&new_session()).await;
    solo.send_json(submit("solo", chat("Name three colours.", 24)))
        .await;
    let alone = text_of(&solo.until_end().await);
    assert!(!alone.is_empty());

    let mut clients = vec![];
    for i in 0..4 {
        let mut c = server.ws_as(&new_session()).await;
        let message = if i == 2 {
            chat("Tell me a long story.", 400)
        } else {
            chat("Name three colours.", 24)
        };
        c.send_json(submit(&format!("c{i}"), message)).await;
        clients.push(c);
    }
    // Everyone starts at once (one after another, the fourth would wait for a 400-token story
    // at 20 ms a token): the chats are decoded together.
    let mut seen: Vec<Vec<ServerMessage>> = vec![vec![]; 4];
    for (i, c) in clients.iter_mut().enumerate() {
        loop {
            let m = c.recv().await;
            let token = matches!(m, ServerMessage::Token { .. });
            if let ServerMessage::Started { waited_ms, .. } = &m {
                assert!(*waited_ms < 1000, "c{i} waited {waited_ms} ms for a lane");
            }
            seen[i].push(m);
            if token {
                break;
            }
        }
    }
    // The long one stops; the others go on undisturbed.
    let (stopped, _) = accepted(&seen[2][0]);
    clients[2]
        .send_json(json!({"type":"cancel","job_id":stopped}))
        .await;
    for (i, c) in clients.iter_mut().enumerate() {
        seen[i].extend(c.until_end().await);
    }
    for (i, msgs) in seen.iter().enumerate() {
        let (job_id, _) = accepted(&msgs[0]);
        for (n, m) in msgs.iter().enumerate() {
            assert_eq!(m.job_id(), Some(&job_id), "c{i} heard another job: {m:?}");
            assert_eq!(m.seq(), Some(n as u64), "c{i}'s events in order, no gap");
        }
        if i == 2 {
            assert!(
                matches!(
                    msgs.last(),
                    Some(ServerMessage::Error {
                        code: ErrorCode::Cancelled,
                        ..
                    })
                ),
                "{msgs:?}"
            );
        } else {
            assert!(matches!(msgs.last(), Some(ServerMessage::Done { .. })));
            assert_eq!(text_of(msgs), alone, "c{i}'s answer is its own");
        }
    }
}

#[tokio::test]
async fn a_calculator_job_waits_for_a_step_not_for_the_answers() {
    let server = TestServer::start(&["--test-token-delay", "50ms"]).await;
    let mut chats = vec![];
    for i in 0..8 {
        let mut c = server.ws_as(&new_session()).await;
        c.send_json(submit(&format!("c{i}"), chat("Tell me a long story.", 200)))
            .await;
        chats.push(c);
    }
    for c in &mut chats {
        while !matches!(c.recv().await, ServerMessage::Token { .. }) {}
    }
    // Eight answers of 200 tokens at 50 ms a step take 10 s; the job runs between two steps.
    let mut calc = server.ws_as(&new_session()).await;
    let sent = Instant::now();
    calc.send_json(submit("m", matmul_job())).await;
    let msgs = calc.until_end().await;
    let waited = sent.elapsed();
    assert!(
        matches!(msgs.last(), Some(ServerMessage::Done { .. })),
        "{msgs:?}"
    );
    assert!(
        matches!(msgs[0], ServerMessage::Accepted { position: 1, .. }),
        "no calculator job ahead: {msgs:?}"
    );
    assert!(waited < Duration::from_secs(2), "waited {waited:?}");
    // The chats are still streaming.
    for c in &mut chats {
        assert!(matches!(c.recv().await, ServerMessage::Token { .. }));
    }
}

#[tokio::test]
async fn a_chat_nobody_resumes_is_cancelled_after_the_window_and_kept_as_stopped() {
    let server =
        TestServer::start(&["--test-token-delay", "50ms", "--resume-window", "300ms"]).await;
    let session = new_session();
    let mut a = server.ws_as(&session).await;
    a.send_json(submit("a", chat("Tell me a long story.", 400)))
        .await;
    let (_, conversation) = accepted(&a.recv().await);
    while !matches!(a.recv().await, ServerMessage::Token { .. }) {}
    drop(a);
    // 400 tokens at 50 ms would take 20 s: the answer is stopped once the window is over.
    let dropped = Instant::now();
    let stored = loop {
        let stored: Conversation = server
            .get_json_as(&format!("/api/conversations/{conversation}"), &session)
            .await;
        // The answer is stored when it ends (here: stopped).
        let answer = stored.messages.get(1).map(|m| m.status);
        if answer == Some(MessageStatus::Stopped) {
            break stored;
        }
        assert!(
            dropped.elapsed() < Duration::from_secs(5),
            "still {answer:?} after the window"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        dropped.elapsed() >= Duration::from_millis(300),
        "not before the window"
    );
    assert!(!stored.messages[1].content.is_empty());
}

#[tokio::test]
async fn cancel_stops_the_answer_and_keeps_what_was_said() {
    let server = TestServer::start(&["--test-token-delay", "30ms"]).await;
    let session = new_session();
    let mut c = server.ws_as(&session).await;
    c.send_json(submit("c", chat("Tell me a long story.", 400)))
        .await;
    let (job_id, conversation) = accepted(&c.recv().await);
    let mut before = String::new();
    loop {
        if let ServerMessage::Token { text, .. } = c.recv().await {
            before.push_str(&text);
            break;
        }
    }
    c.send_json(json!({"type":"cancel","job_id":job_id})).await;
    let rest = c.until_end().await;
    assert!(
        matches!(
            rest.last(),
            Some(ServerMessage::Error {
                code: ErrorCode::Cancelled,
                ..
            })
        ),
        "{rest:?}"
    );
    before.push_str(&text_of(&rest));
    let stored: Conversation = server
        .get_json_as(&format!("/api/conversations/{conversation}"), &session)
        .await;
    assert_eq!(stored.messages[1].status, MessageStatus::Stopped);
    assert_eq!(stored.messages[1].content, before);
}

#[tokio::test]
async fn a_disconnect_frees_the_lane_within_a_step_when_there_is_no_resume_window() {
    let server = TestServer::start(&[
        "--test-token-delay",
        "50ms",
        "--resume-window",
        "0s",
        "--chat-lanes",
        "1",
    ])
    .await;
    let mut a = server.ws_as(&new_session()).await;
    a.send_json(submit("a", chat("Tell me a long story.", 400)))
        .await;
    accepted(&a.recv().await);
    while !matches!(a.recv().await, ServerMessage::Token { .. }) {}
    let mut b = server.ws_as(&new_session()).await;
    b.send_json(submit("b", chat("Say hi.", 4))).await;
    assert!(matches!(
        b.recv().await,
        ServerMessage::Accepted { position: 1, .. }
    ));
    let dropped = Instant::now();
    drop(a);
    // 400 tokens at 50 ms would take 20 s; the second chat takes the lane as soon as it is free.
    let msgs = b.until_end().await;
    assert!(
        matches!(msgs.last(), Some(ServerMessage::Done { .. })),
        "{msgs:?}"
    );
    assert!(
        dropped.elapsed() < Duration::from_secs(3),
        "the device was freed {:?} after the disconnect",
        dropped.elapsed()
    );
}

#[tokio::test]
async fn resume_after_a_dropped_connection_replays_exactly_the_missed_events() {
    let server = TestServer::start(&["--test-token-delay", "20ms"]).await;
    let session = new_session();
    let mut c = server.ws_as(&session).await;
    c.send_json(submit("c", chat("Describe the sea.", 40)))
        .await;
    let mut seen = vec![c.recv().await];
    let (job_id, conversation) = accepted(&seen[0]);
    while seen
        .iter()
        .filter(|m| matches!(m, ServerMessage::Token { .. }))
        .count()
        < 3
    {
        seen.push(c.recv().await);
    }
    drop(c);
    tokio::time::sleep(Duration::from_millis(200)).await; // tokens go on meanwhile
    let last_seq = seen.last().unwrap().seq().unwrap();
    let mut again = server.ws_as(&session).await;
    again
        .send_json(json!({"type":"resume","job_id":job_id,"last_seq":last_seq}))
        .await;
    let rest = again.until_end().await;
    assert_eq!(rest[0].seq(), Some(last_seq + 1), "{rest:?}");
    for w in rest.windows(2) {
        assert_eq!(w[0].seq().unwrap() + 1, w[1].seq().unwrap());
    }
    assert!(matches!(rest.last(), Some(ServerMessage::Done { .. })));
    seen.extend(rest);
    let stored: Conversation = server
        .get_json_as(&format!("/api/conversations/{conversation}"), &session)
        .await;
    assert_eq!(stored.messages[1].content, text_of(&seen));

    // Another session cannot resume it, nor continue the conversation.
    let mut stranger = server.ws_as(&new_session()).await;
    stranger
        .send_json(json!({"type":"resume","job_id":job_id}))
        .await;
    assert!(matches!(
        stranger.recv().await,
        ServerMessage::Error {
            code: ErrorCode::NotFound,
            ..
        }
    ));
    stranger
        .send_json(submit(
            "s",
            json!({"kind":"chat","conversation_id":conversation,"message":"hi"}),
        ))
        .await;
    match stranger.recv().await {
        ServerMessage::Error { code, message, .. } => {
            assert_eq!(code, ErrorCode::NotFound);
            assert!(!message.contains("Describe"));
        }
        other => panic!("{other:?}"),
    }
    let stored: Conversation = server
        .get_json_as(&format!("/api/conversations/{conversation}"), &session)
        .await;
    assert_eq!(
        stored.messages.len(),
        2,
        "the stranger's message was not added"
    );
}

#[tokio::test]
async fn bad_chat_requests_get_typed_errors_and_store_nothing() {
    let server = TestServer::start(&["--chat-max-message-chars", "10"]).await;
    let session = new_session();
    let mut c = server.ws_as(&session).await;
    for (job, code) in [
        (json!({"kind":"chat","message":""}), ErrorCode::InvalidInput),
        (
            json!({"kind":"chat","message":"far too long a message"}),
            ErrorCode::InvalidInput,
        ),
        (
            json!({"kind":"chat","message":"hi","max_tokens":0}),
            ErrorCode::InvalidInput,
        ),
        (
            json!({"kind":"chat","message":"hi","temperature":9}),
            ErrorCode::InvalidInput,
        ),
        (
            json!({"kind":"chat","message":"hi","conversation_id":"nope"}),
            ErrorCode::NotFound,
        ),
        (
            json!({"kind":"chat","regenerate":true}),
            ErrorCode::InvalidInput,
        ),
        (json!({"kind":"chat","message":5}), ErrorCode::InvalidInput),
    ] {
        c.send_json(submit("x", job.clone())).await;
        match c.recv().await {
            ServerMessage::Error {
                code: got,
                client_ref: Some(r),
                ..
            } => assert_eq!((got, r.as_str()), (code, "x"), "{job}"),
            other => panic!("{job}: {other:?}"),
        }
    }
    let list = server.get_value_as("/api/conversations", &session).await;
    assert_eq!(list["conversations"], json!([]));
}

#[tokio::test]
async fn history_survives_a_server_restart() {
    let dir = TempDir::new();
    let session = new_session();
    let conversation = {
        let server = TestServer::start_in(&dir, &[]).await;
        let mut c = server.ws_as(&session).await;
        c.send_json(submit("c", chat("Remember me.", 8))).await;
        let msgs = c.until_end().await;
        assert!(matches!(msgs.last(), Some(ServerMessage::Done { .. })));
        accepted(&msgs[0]).1
    };
    let server = TestServer::start_in(&dir, &[]).await;
    let stored: Conversation = server
        .get_json_as(&format!("/api/conversations/{conversation}"), &session)
        .await;
    assert_eq!(stored.messages.len(), 2);
    assert_eq!(stored.messages[0].content, "Remember me.");
    assert!(!stored.messages[1].content.is_empty());
}
