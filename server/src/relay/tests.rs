//! Relay unit tests: logs driven directly (no scheduler), read by cursors.

use super::*;
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

fn job(n: u8) -> JobId {
    JobId(format!("job{n}"))
}

impl Relay {
    /// A log as `submit` makes it, without a job behind it.
    fn open(&self, id: &JobId, session: SessionId, resumable: bool, follower: Follower) {
        self.logs.lock().insert(
            id.clone(),
            Log {
                session,
                resumable,
                events: VecDeque::new(),
                first_seq: 0,
                ended: None,
                follower: Some(follower),
                detached_since: None,
                ticket: None,
                read_upto: 0,
                last_is_position: false,
            },
        );
    }

    fn token(&self, id: &JobId, text: &str) {
        let (id2, text) = (id.clone(), text.to_owned());
        self.append(id, false, move |seq| ServerMessage::Token {
            job_id: id2,
            seq,
            text,
        });
    }

    fn done(&self, id: &JobId) {
        let id2 = id.clone();
        self.append(id, false, move |seq| ServerMessage::Done {
            job_id: id2,
            seq,
            usage: None,
        });
    }

    fn position(&self, id: &JobId, position: u64) {
        let id2 = id.clone();
        self.append(id, true, move |seq| ServerMessage::Position {
            job_id: id2,
            seq,
            position,
            eta_ms: 0,
        });
    }

    fn bytes(&self) -> usize {
        self.logs.lock().bytes
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

#[test]
fn a_reader_gets_each_message_once_and_a_resume_exactly_what_it_missed() {
    let relay = Relay::new(Duration::from_secs(60), 100, 1 << 20);
    let id = job(1);
    relay.open(&id, session(1), true, follower(1));
    relay.token(&id, "a");
    relay.token(&id, "b");
    let first = relay.read(&id, 1, 0);
    assert_eq!(texts(&first), ["a", "b"]);
    assert!(!first.finished);
    relay.token(&id, "c");
    relay.detach([id.clone()], 1);
    relay.token(&id, "d");
    // Another session cannot take it; the owner's session can, from where it was.
    assert_eq!(
        relay.resume(&id, &session(2), follower(2), Some(1)),
        Err(ResumeError::NotFound(id.clone()))
    );
    let cursor = relay
        .resume(&id, &session(1), follower(3), Some(first.next - 1))
        .unwrap();
    relay.done(&id);
    let rest = relay.read(&id, 3, cursor);
    assert_eq!(texts(&rest)[..2], ["c", "d"]);
    assert!(rest.finished);
    // The old connection no longer follows it.
    assert!(relay.read(&id, 1, 0).messages.is_empty());
}

#[test]
fn per_job_and_total_caps_hold() {
    let relay = Relay::new(Duration::from_secs(60), 16, 1 << 16);
    let id = job(1);
    relay.open(&id, session(1), true, follower(1));
    for i in 0..20 {
        relay.token(&id, &i.to_string());
    }
    assert_eq!(relay.read(&id, 1, 0).messages.len(), 16);
    assert_eq!(
        relay.resume(&id, &session(1), follower(1), Some(1)),
        Err(ResumeError::Gone(id.clone(), 4))
    );
    // An ended job's log goes first when the total is over the cap.
    relay.done(&id);
    let big = "x".repeat(40_000);
    let other = job(2);
    relay.open(&other, session(1), true, follower(2));
    relay.token(&other, &big);
    relay.token(&other, &big);
    assert!(relay.bytes() <= 1 << 16, "{}", relay.bytes());
    assert!(relay.read(&id, 1, 0).finished && relay.read(&id, 1, 0).messages.is_empty());
    assert_eq!(
        relay.read(&other, 2, 0).messages.len(),
        1,
        "its newest message stays"
    );
}

#[test]
fn a_calculator_log_lasts_until_its_reader_has_the_end() {
    let relay = Relay::new(Duration::ZERO, 100, 1 << 20);
    let id = job(1);
    relay.open(&id, session(1), false, follower(1));
    relay.token(&id, "r");
    relay.done(&id);
    relay.sweep(Instant::now() + Duration::from_secs(5));
    let read = relay.read(&id, 1, 0);
    assert_eq!(read.messages.len(), 2);
    assert!(read.finished);
    assert!(relay.is_empty(), "read to the end: gone");
    assert_eq!(relay.bytes(), 0);
}

#[test]
fn an_unread_position_is_replaced_by_the_next_and_seqs_stay_contiguous() {
    let relay = Relay::new(Duration::from_secs(60), 4096, 1 << 20);
    let id = job(1);
    relay.open(&id, session(1), true, follower(1));
    relay.token(&id, "accepted-ish");
    for p in (1..=50).rev() {
        relay.position(&id, p);
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
    relay.position(&id, 1);
    relay.token(&id, "x");
    relay.position(&id, 1);
    relay.position(&id, 1);
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

#[test]
fn reads_come_in_slices_and_a_reader_behind_the_log_knows_it_lost_messages() {
    let relay = Relay::new(Duration::from_secs(60), 300, 64 << 20);
    let id = job(2);
    relay.open(&id, session(1), true, follower(1));
    for i in 0..(READ_BATCH + 10) {
        relay.token(&id, &i.to_string());
    }
    let first = relay.read(&id, 1, 0);
    assert_eq!(first.messages.len(), READ_BATCH);
    assert!(first.more && !first.lost && !first.finished);
    let rest = relay.read(&id, 1, first.next);
    assert_eq!(rest.messages.len(), 10);
    assert!(!rest.more);
    // The log keeps 300: a reader still at 0 after 400 more has lost the oldest.
    for i in 0..400 {
        relay.token(&id, &i.to_string());
    }
    assert!(relay.read(&id, 1, 0).lost);
}
