//! Tests of the endings other than `done`: Stop, refusals and failures.

use super::*;

#[test]
fn stop_keeps_the_partial_answer_marked_stopped() {
    let mut t = accepted_tracker();
    t.apply(started("j1", 1));
    t.apply(token("j1", 2, "Part of"));
    assert!(t.can_stop());
    t.stop_requested();
    assert!(t.is_stopping() && !t.can_stop());
    t.apply(token("j1", 3, " it"));
    assert_eq!(
        t.apply(error(Some("j1"), None, Some(4), ErrorCode::Cancelled)),
        Applied::Ended
    );
    assert_eq!(t.phase(), &AnswerPhase::Stopped);
    assert!(!t.is_stopping() && t.failure().is_none());
    assert_eq!(
        t.final_message(),
        Some(ThreadMessage {
            role: Role::Assistant,
            content: "Part of it".into(),
            status: MessageStatus::Stopped
        })
    );
}

#[test]
fn refusals_and_failures_end_with_their_message() {
    let mut t = ChatTracker::default();
    t.submitted("c1".into(), None, false);
    assert_eq!(
        t.apply(error(None, Some("c1"), None, ErrorCode::QueueFull)),
        Applied::Ended
    );
    assert_eq!(t.failure(), Some(("queue_full", "what happened")));
    assert!(t.final_message().is_none());

    let mut t = accepted_tracker();
    t.apply(started("j1", 1));
    t.apply(token("j1", 2, "half"));
    assert_eq!(
        t.apply(error(
            Some("j1"),
            None,
            Some(3),
            ErrorCode::ModelUnavailable
        )),
        Applied::Ended
    );
    assert_eq!(t.failure().map(|f| f.0), Some("model_unavailable"));
    assert_eq!(
        t.final_message().map(|m| (m.content, m.status)),
        Some(("half".to_string(), MessageStatus::Failed))
    );

    // A failed job whose id was not ours is someone else's.
    let mut t = accepted_tracker();
    t.apply(error(Some("j2"), None, Some(1), ErrorCode::NotFound));
    assert!(t.is_active());
    // A not_found that is not about a resume is a plain failure.
    assert_eq!(
        t.apply(error(Some("j1"), None, Some(1), ErrorCode::NotFound)),
        Applied::Ended
    );
    assert_eq!(t.failure().map(|f| f.0), Some("not_found"));
}
