//! Tests that follow an answer's stream: from submission to `done`, through the queue and the
//! model load, ignoring other jobs, other submissions and repeats.

use super::*;

#[test]
fn follows_an_answer_from_submission_to_done() {
    let mut t = ChatTracker::default();
    assert!(!t.is_active());
    t.submitted("c1".into(), None, false);
    assert_eq!(t.phase(), &AnswerPhase::Sending);
    assert!(t.is_active() && !t.can_stop());
    assert_eq!(t.apply(accepted("c1", "j1", 2)), Applied::Accepted);
    assert_eq!(t.job_id(), Some(&id("j1")));
    assert_eq!(t.conversation_id(), Some(&conv("c-new")));
    assert_eq!(
        t.phase(),
        &AnswerPhase::Waiting {
            position: 2,
            eta_ms: 900
        }
    );
    assert_eq!(
        t.pending(),
        Some(PendingJob {
            job_id: id("j1"),
            conversation_id: conv("c-new")
        })
    );
    assert!(t.can_stop());
    assert_eq!(t.apply(position("j1", 1, 1)), Applied::Changed);
    assert_eq!(t.apply(started("j1", 2)), Applied::Changed);
    assert_eq!(t.phase(), &AnswerPhase::Streaming);
    assert_eq!(t.apply(token("j1", 3, "Hel")), Applied::Changed);
    assert_eq!(t.apply(token("j1", 4, "lo!")), Applied::Changed);
    assert_eq!(t.text(), "Hello!");
    assert_eq!(t.last_seq(), Some(4));
    assert_eq!(t.apply(done("j1", 5)), Applied::Ended);
    assert!(!t.is_active());
    assert!(t.pending().is_none());
    assert!(matches!(t.phase(), AnswerPhase::Done { usage: Some(u) } if u.completion_tokens == 3));
    assert_eq!(
        t.final_message(),
        Some(ThreadMessage {
            role: Role::Assistant,
            content: "Hello!".into(),
            status: MessageStatus::Complete
        })
    );
    // Nothing after the end changes anything.
    assert_eq!(t.apply(token("j1", 6, " more")), Applied::Ignored);
    assert_eq!(t.text(), "Hello!");
}

#[test]
fn a_continued_conversation_keeps_its_id() {
    let mut t = ChatTracker::default();
    t.submitted("c7".into(), Some(conv("old")), false);
    assert_eq!(t.conversation_id(), Some(&conv("old")));
    let mut msg = accepted("c7", "j7", 1);
    if let ServerMessage::Accepted {
        conversation_id, ..
    } = &mut msg
    {
        *conversation_id = Some(conv("old"));
    }
    assert_eq!(t.apply(msg), Applied::Accepted);
    assert_eq!(t.conversation_id(), Some(&conv("old")));
    assert!(!t.is_regenerate());
    t.submitted("c8".into(), Some(conv("old")), true);
    assert!(t.is_regenerate());
}

#[test]
fn ignores_other_jobs_and_other_submissions() {
    let mut t = ChatTracker::default();
    t.submitted("c2".into(), None, false);
    assert_eq!(t.apply(accepted("c1", "other", 1)), Applied::Ignored);
    assert_eq!(
        t.apply(error(None, Some("c1"), None, ErrorCode::QueueFull)),
        Applied::Ignored
    );
    assert_eq!(t.apply(token("other", 3, "not mine")), Applied::Ignored);
    assert_eq!(t.apply(accepted("c2", "mine", 3)), Applied::Accepted);
    assert_eq!(t.apply(position("other", 1, 1)), Applied::Ignored);
    assert_eq!(t.apply(started("other", 2)), Applied::Ignored);
    assert_eq!(t.apply(token("other", 3, "not mine")), Applied::Ignored);
    assert_eq!(
        t.apply(error(Some("other"), None, Some(4), ErrorCode::Timeout)),
        Applied::Ignored
    );
    assert_eq!(
        t.apply(error(None, None, None, ErrorCode::BadMessage)),
        Applied::Ignored
    );
    // A second `accepted` for the same label (a stale echo) is not another job.
    assert_eq!(t.apply(accepted("c2", "again", 1)), Applied::Ignored);
    assert_eq!(t.text(), "");
    assert_eq!(t.job_id(), Some(&id("mine")));
    assert_eq!(
        t.phase(),
        &AnswerPhase::Waiting {
            position: 3,
            eta_ms: 900
        }
    );
}

#[test]
fn position_is_only_shown_while_waiting() {
    let mut t = accepted_tracker();
    assert_eq!(t.apply(position("j1", 1, 1)), Applied::Changed);
    assert_eq!(
        t.phase(),
        &AnswerPhase::Waiting {
            position: 1,
            eta_ms: 300
        }
    );
    assert_eq!(t.apply(started("j1", 2)), Applied::Changed);
    // A late position (sent before the start, delivered after) must not bring the queue back.
    assert_eq!(t.apply(position("j1", 3, 1)), Applied::Ignored);
    assert_eq!(t.phase(), &AnswerPhase::Streaming);
    assert_eq!(
        t.apply(ServerMessage::Loading {
            job_id: id("j1"),
            seq: 4,
            progress: None
        }),
        Applied::Changed
    );
    assert_eq!(t.apply(position("j1", 5, 1)), Applied::Ignored);
    assert_eq!(t.phase(), &AnswerPhase::Loading { progress: None });
}

#[test]
fn loading_reports_progress_until_the_first_token() {
    let mut t = accepted_tracker();
    t.apply(started("j1", 1));
    for (seq, p) in [(2, None), (3, Some(0.25)), (4, Some(1.0))] {
        assert_eq!(
            t.apply(ServerMessage::Loading {
                job_id: id("j1"),
                seq,
                progress: p
            }),
            Applied::Changed
        );
        assert_eq!(t.phase(), &AnswerPhase::Loading { progress: p });
    }
    assert_eq!(t.apply(token("j1", 5, "Hi")), Applied::Changed);
    assert_eq!(t.phase(), &AnswerPhase::Streaming);
    assert_eq!(
        t.apply(ServerMessage::Loading {
            job_id: id("j1"),
            seq: 6,
            progress: Some(0.5)
        }),
        Applied::Ignored
    );
    assert_eq!(t.phase(), &AnswerPhase::Streaming);
}

#[test]
fn repeats_and_stale_messages_are_ignored_by_seq() {
    let mut t = accepted_tracker();
    t.apply(started("j1", 1));
    t.apply(token("j1", 2, "a"));
    assert_eq!(t.apply(token("j1", 2, "a")), Applied::Ignored);
    assert_eq!(t.apply(token("j1", 1, "x")), Applied::Ignored);
    assert_eq!(t.apply(accepted("c1", "j1", 1)), Applied::Ignored);
    assert_eq!(t.apply(token("j1", 3, "b")), Applied::Changed);
    assert_eq!(t.text(), "ab");
    assert_eq!(t.last_seq(), Some(3));
}
