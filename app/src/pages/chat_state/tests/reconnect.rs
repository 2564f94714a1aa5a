//! Tests of reconnecting after a drop and resuming after a reload: replays, jobs the server no
//! longer knows, and drops before and after acceptance.

use super::*;

#[test]
fn a_replay_after_resume_neither_loses_nor_repeats_tokens() {
    let mut t = accepted_tracker();
    t.apply(started("j1", 1));
    for (seq, piece) in [(2, "one "), (3, "two "), (4, "three ")] {
        t.apply(token("j1", seq, piece));
    }
    // The socket drops; the page reopens it and resumes from the last seq seen.
    assert!(t.socket_closed("the connection to the server was lost"));
    assert!(t.is_reconnecting() && t.is_active());
    assert_eq!(
        t.resume_after_reconnect(),
        Some(ClientMessage::Resume {
            job_id: id("j1"),
            last_seq: Some(4)
        })
    );
    assert!(!t.is_reconnecting());
    assert_eq!(t.resume_after_reconnect(), None);
    // The server replays (here, overlapping what was seen), then goes on live.
    for (seq, piece) in [(3, "two "), (4, "three "), (5, "four "), (6, "five")] {
        t.apply(token("j1", seq, piece));
    }
    assert_eq!(t.apply(done("j1", 7)), Applied::Ended);
    assert_eq!(t.text(), "one two three four five");
}

#[test]
fn a_resume_after_reload_rebuilds_the_answer_from_the_start() {
    let mut t = ChatTracker::default();
    let resume = t.resuming(PendingJob {
        job_id: id("j9"),
        conversation_id: conv("c9"),
    });
    assert_eq!(
        resume,
        ClientMessage::Resume {
            job_id: id("j9"),
            last_seq: None
        }
    );
    assert!(t.is_active() && t.is_resumed() && t.can_stop());
    assert_eq!(t.phase(), &AnswerPhase::Resuming);
    assert_eq!(t.conversation_id(), Some(&conv("c9")));
    // The replay starts with the original `accepted` (another page's client_ref).
    let mut acc = accepted("c1-of-the-old-page", "j9", 1);
    if let ServerMessage::Accepted {
        conversation_id, ..
    } = &mut acc
    {
        *conversation_id = Some(conv("c9"));
    }
    assert_eq!(t.apply(acc), Applied::Accepted);
    t.apply(started("j9", 1));
    t.apply(token("j9", 2, "Where "));
    t.apply(token("j9", 3, "it was"));
    assert_eq!(t.text(), "Where it was");
    // Then the live stream.
    t.apply(token("j9", 4, ", and on."));
    assert_eq!(t.text(), "Where it was, and on.");
    assert_eq!(t.conversation_id(), Some(&conv("c9")));
}

#[test]
fn a_resume_the_server_no_longer_knows_is_gone_not_an_error() {
    let mut t = ChatTracker::default();
    t.resuming(PendingJob {
        job_id: id("j9"),
        conversation_id: conv("c9"),
    });
    assert_eq!(
        t.apply(error(Some("j9"), None, None, ErrorCode::NotFound)),
        Applied::Ended
    );
    assert_eq!(t.phase(), &AnswerPhase::Gone);
    assert!(t.failure().is_none() && t.final_message().is_none() && !t.is_active());

    // After a reconnect too.
    let mut t = accepted_tracker();
    t.apply(token("j1", 1, "part"));
    t.socket_closed("lost");
    t.resume_after_reconnect();
    assert_eq!(
        t.apply(error(Some("j1"), None, None, ErrorCode::NotFound)),
        Applied::Ended
    );
    assert_eq!(t.phase(), &AnswerPhase::Gone);
}

#[test]
fn a_drop_before_acceptance_fails_and_a_later_drop_reconnects() {
    let mut t = ChatTracker::default();
    t.submitted("c1".into(), None, false);
    assert!(!t.socket_closed("the server closed the connection"));
    assert_eq!(t.failure().map(|f| f.0), Some(CONNECTION_LOST));
    assert!(!t.socket_closed("again"));

    let mut t = accepted_tracker();
    assert!(t.socket_closed("lost"));
    assert!(t.is_reconnecting() && !t.can_stop());
    t.give_up("the server cannot be reached");
    assert_eq!(t.failure().map(|f| f.0), Some(CONNECTION_LOST));
    assert!(!t.is_reconnecting());
    assert_eq!(t.resume_after_reconnect(), None);

    // Idle trackers have nothing to reconnect.
    let mut t = ChatTracker::default();
    assert!(!t.socket_closed("x"));
    assert_eq!(t.phase(), &AnswerPhase::Idle);
}
