//! Relay unit tests: chat logs fed events directly (no scheduler), read by cursors.

use super::log::ChatLog;
use super::*;
use crate::job::{JobEvent, Outcome, Progress};
use app::protocol::ServerMessage;
use std::time::Instant;

fn session(n: u8) -> SessionId {
    SessionId::parse(&format!("{n:032x}")).unwrap()
}

fn follower(conn: u64) -> Follower {
    Follower {
        conn,
        notify: Arc::new(Notify::new()),
    }
}

/// A job's scheduler id and its wire id.
fn job(n: u8) -> (turnstile_scheduler::JobId, JobId) {
    let id = turnstile_scheduler::JobId(u128::from(n));
    (id, JobLabel::wire_id(id))
}

/// A log as `submit` makes it, without a job behind it (and nothing to store).
struct Fed {
    id: turnstile_scheduler::JobId,
    wire: JobId,
    log: Arc<ChatLog>,
}

impl Relay {
    fn open(self: &Arc<Self>, n: u8, session: SessionId, follower: Follower) -> Fed {
        let (id, wire) = job(n);
        let log = ChatLog::new(Arc::downgrade(self), session, follower, None, "c".into());
        self.logs.lock().insert(wire.clone(), Arc::clone(&log));
        Fed { id, wire, log }
    }

    fn bytes(&self) -> usize {
        self.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Fed {
    fn token(&self, text: &str) {
        let text = text.to_owned();
        self.log
            .on_event(self.id, JobEvent::Progress(Progress::Token { text }));
    }

    fn done(&self) {
        let usage = app::chat::ChatUsage {
            prompt_tokens: 1,
            completion_tokens: 1,
            time_to_first_token_ms: 1.0,
            tokens_per_second: 1.0,
            finish_reason: app::chat::FinishReason::Stop,
        };
        self.log
            .on_event(self.id, JobEvent::Ended(Ok(Outcome::Chat(usage))));
    }

    fn position(&self, position: u64) {
        self.log.on_event(
            self.id,
            JobEvent::Position {
                position,
                eta_ms: 0,
            },
        );
    }
}

fn texts(read: &Read) -> Vec<String> {
    read.messages
        .iter()
        .map(
            |m| match serde_json::from_str::<ServerMessage>(m).unwrap() {
                ServerMessage::Token { text, .. } => text,
                other => format!("{other:?}"),
            },
        )
        .collect()
}

#[tokio::test]
async fn a_reader_gets_each_message_once_and_a_resume_exactly_what_it_missed() {
    let relay = Relay::new(Duration::from_secs(60), 100, 1 << 20);
    let job = relay.open(1, session(1), follower(1));
    let id = job.wire.clone();
    job.token("a");
    job.token("b");
    let first = relay.read(&id, 1, 0);
    assert_eq!(texts(&first), ["a", "b"]);
    assert!(!first.finished);
    job.token("c");
    relay.detach([id.clone()], 1);
    job.token("d");
    // Another session cannot take it; the owner's session can, from where it was.
    assert_eq!(
        relay.resume(&id, &session(2), follower(2), Some(1)),
        Err(ResumeError::NotFound(id.clone()))
    );
    let cursor = relay
        .resume(&id, &session(1), follower(3), Some(first.next - 1))
        .unwrap();
    job.done();
    let rest = relay.read(&id, 3, cursor);
    assert_eq!(texts(&rest)[..2], ["c", "d"]);
    assert!(rest.finished);
    // The old connection no longer follows it.
    assert!(relay.read(&id, 1, 0).messages.is_empty());
}

#[tokio::test]
async fn per_job_and_total_caps_hold() {
    let relay = Relay::new(Duration::from_secs(60), 16, 1 << 16);
    let job1 = relay.open(1, session(1), follower(1));
    let id = job1.wire.clone();
    for i in 0..20 {
        job1.token(&i.to_string());
    }
    assert_eq!(relay.read(&id, 1, 0).messages.len(), 16);
    assert_eq!(
        relay.resume(&id, &session(1), follower(1), Some(1)),
        Err(ResumeError::Gone(id.clone(), 4))
    );
    // An ended job's log goes first when the total is over the cap.
    job1.done();
    let big = "x".repeat(40_000);
    let other = relay.open(2, session(1), follower(2));
    other.token(&big);
    other.token(&big);
    assert!(relay.bytes() <= 1 << 16, "{}", relay.bytes());
    assert!(relay.read(&id, 1, 0).finished && relay.read(&id, 1, 0).messages.is_empty());
    assert_eq!(
        relay.read(&other.wire, 2, 0).messages.len(),
        1,
        "its newest message stays"
    );
}

#[tokio::test]
async fn an_ended_log_is_kept_for_the_window_then_forgotten() {
    let relay = Relay::new(Duration::from_secs(60), 100, 1 << 20);
    let job = relay.open(1, session(1), follower(1));
    job.token("r");
    job.done();
    relay.sweep(Instant::now() + Duration::from_secs(5));
    let read = relay.read(&job.wire, 1, 0);
    assert_eq!(read.messages.len(), 2);
    assert!(read.finished);
    assert_eq!(relay.len(), 1, "still within the window");
    relay.sweep(Instant::now() + Duration::from_secs(61));
    assert!(relay.is_empty(), "past the window: gone");
    assert_eq!(relay.bytes(), 0);
}

#[tokio::test]
async fn an_unread_position_is_replaced_by_the_next_and_seqs_stay_contiguous() {
    let relay = Relay::new(Duration::from_secs(60), 4096, 1 << 20);
    let job = relay.open(1, session(1), follower(1));
    let id = job.wire.clone();
    job.token("accepted-ish");
    for p in (1..=50).rev() {
        job.position(p);
    }
    let read = relay.read(&id, 1, 0);
    let msgs: Vec<ServerMessage> = read
        .messages
        .iter()
        .map(|m| serde_json::from_str(m).unwrap())
        .collect();
    assert_eq!(msgs.len(), 2, "fifty unread positions became one");
    assert!(matches!(
        msgs[1],
        ServerMessage::Position {
            position: 1,
            seq: 1,
            ..
        }
    ));
    // Once read, a position is not replaced: the next one follows it.
    job.position(1);
    job.token("x");
    job.position(1);
    job.position(1);
    let read = relay.read(&id, 1, read.next);
    let seqs: Vec<u64> = read
        .messages
        .iter()
        .map(|m| {
            serde_json::from_str::<ServerMessage>(m)
                .unwrap()
                .seq()
                .unwrap()
        })
        .collect();
    assert_eq!(
        seqs,
        vec![2, 3, 4],
        "no gaps; the last two positions became one"
    );
}

#[tokio::test]
async fn reads_come_in_slices_and_a_reader_behind_the_log_knows_it_lost_messages() {
    let relay = Relay::new(Duration::from_secs(60), 300, 64 << 20);
    let job = relay.open(2, session(1), follower(1));
    let id = job.wire.clone();
    for i in 0..(READ_BATCH + 10) {
        job.token(&i.to_string());
    }
    let first = relay.read(&id, 1, 0);
    assert_eq!(first.messages.len(), READ_BATCH);
    assert!(first.more && !first.lost && !first.finished);
    let rest = relay.read(&id, 1, first.next);
    assert_eq!(rest.messages.len(), 10);
    assert!(!rest.more);
    // The log keeps 300: a reader still at 0 after 400 more has lost the oldest.
    for i in 0..400 {
        job.token(&i.to_string());
    }
    assert!(relay.read(&id, 1, 0).lost);
}

#[tokio::test]
async fn the_first_event_names_the_job_and_its_label() {
    let relay = Relay::new(Duration::from_secs(60), 100, 1 << 20);
    let job = relay.open(7, session(1), follower(1));
    job.log.on_event(
        job.id,
        JobEvent::Accepted {
            position: 3,
            queue_length: 3,
            eta_ms: 5,
        },
    );
    let read = relay.read(&job.wire, 1, 0);
    let msg: ServerMessage = serde_json::from_str(&read.messages[0]).unwrap();
    assert!(matches!(
        msg,
        ServerMessage::Accepted { ref job_id, ref client_ref, seq: 0, position: 3, .. }
            if *job_id == job.wire && client_ref == "c"
    ));
}

/// Keeps the copies it is handed, acknowledging none until asked.
#[derive(Default)]
struct Copies(parking_lot::Mutex<Vec<(u64, u64, Copied)>>);

impl WireCopy for Copies {
    fn copy(&self, _: &JobId, seq: u64, q: u64, _: &Arc<str>, copied: Copied) -> bool {
        self.0.lock().push((seq, q, copied));
        true
    }
}

#[tokio::test]
async fn in_a_deployment_a_message_is_read_only_once_copied_with_its_event_count() {
    let copies = Arc::new(Copies::default());
    let wire = Arc::clone(&copies) as Arc<dyn WireCopy>;
    let relay = Relay::with_wire(Duration::from_secs(60), 100, 1 << 20, Some(wire));
    let job = relay.open(1, session(1), follower(1));
    job.log.on_event(
        job.id,
        JobEvent::Accepted {
            position: 1,
            queue_length: 1,
            eta_ms: 0,
        },
    );
    job.position(1);
    job.log.on_event(job.id, JobEvent::Started { waited_ms: 1 });
    job.token("a");
    job.token("b");
    let counted: Vec<(u64, u64)> = copies.0.lock().iter().map(|(s, q, _)| (*s, *q)).collect();
    assert_eq!(counted, vec![(0, 0), (1, 0), (2, 1), (3, 2), (4, 3)]);
    assert!(
        relay.read(&job.wire, 1, 0).messages.is_empty(),
        "nothing copied yet"
    );
    // The first three copies are made: those three are read, no more.
    let made: Vec<Copied> = copies.0.lock().drain(..3).map(|(_, _, c)| c).collect();
    made.into_iter().for_each(Copied::done);
    let read = relay.read(&job.wire, 1, 0);
    assert_eq!((read.messages.len(), read.next, read.more), (3, 3, false));
    job.done();
    let rest: Vec<Copied> = copies.0.lock().drain(..).map(|(_, _, c)| c).collect();
    assert_eq!(rest.len(), 3);
    let read = relay.read(&job.wire, 1, 3);
    assert!(read.messages.is_empty() && !read.finished);
    rest.into_iter().for_each(Copied::done);
    let read = relay.read(&job.wire, 1, 3);
    assert_eq!(texts(&read)[..2], ["a".to_owned(), "b".to_owned()]);
    assert_eq!((read.next, read.finished), (6, true));
}
