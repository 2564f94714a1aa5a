//! Lane jobs (chats on a batching engine) beside device jobs: each resource has its own line, so
//! a calculator job never waits behind chats waiting for a lane; at most `lanes` lane jobs are
//! dispatched at once; a lane job starts when its executor says so (`RunContext::begin`), and a
//! waiting one hears its position among the lane jobs only, with the executor's estimate (the
//! scripted executor says 7 s per position).

use super::*;

/// A chat holding its lane for `ms`.
fn chat(ms: u64) -> TestJob {
    TestJob::new(TestOp::Chat, ms)
}

fn start_lanes(lanes: usize) -> Scheduler<Scripted> {
    start(SchedulerConfig { lanes, ..config() }).0
}

#[tokio::test]
async fn lanes_cap_dispatched_chats_and_waiting_ones_count_only_chats_ahead() {
    let s = start_lanes(2);
    let mut chats: Vec<Owner> = (0..4).map(|_| owner()).collect();
    let mut tickets = vec![];
    for o in &chats {
        tickets.push(o.submit(&s, chat(400)).unwrap());
    }
    // Two take the lanes at once; the third and fourth wait, at positions 1 and 2 among chats,
    // with the executor's estimate.
    for o in &mut chats[..2] {
        assert!(matches!(o.next().await, Event::Accepted { .. }));
        assert!(matches!(o.next().await, Event::Started { .. }));
    }
    let mut told = vec![];
    for o in &mut chats[2..] {
        let Event::Accepted { position, .. } = o.next().await else {
            panic!("accepted first")
        };
        let last = o.last_position(position);
        told.push(last);
    }
    assert_eq!(told, [1, 2]);
    // A calculator job is not behind the waiting chats: it starts at once.
    let mut calc = owner();
    let _t = calc.submit(&s, job(TestOp::Sleep, 5)).unwrap();
    let events = calc.until_end().await;
    assert!(
        matches!(events[0], Event::Accepted { position: 1, .. }),
        "{events:?}"
    );
    assert!(
        matches!(events.last(), Some(Event::Ended(Ok(TestOutput::Calc(5))))),
        "{events:?}"
    );
    let view = s.view().await.unwrap();
    assert_eq!(view.running, 2, "two chats in lanes");
    assert_eq!(view.waiting, 2, "two chats waiting");
    // Every chat ends; the waiting ones started only as lanes freed.
    for o in &mut chats {
        let events = o.until_end().await;
        assert!(
            matches!(events.last(), Some(Event::Ended(Ok(TestOutput::Chat(400))))),
            "{events:?}"
        );
    }
}

#[tokio::test]
async fn a_waiting_chat_hears_the_executors_estimate_and_moves_up_as_lanes_free() {
    let s = start_lanes(1);
    let (mut a, mut b, mut c) = (owner(), owner(), owner());
    let _ta = a.submit(&s, chat(300)).unwrap();
    assert!(matches!(a.next().await, Event::Accepted { .. }));
    assert!(matches!(a.next().await, Event::Started { .. }));
    let tb = b.submit(&s, chat(300)).unwrap();
    let _tc = c.submit(&s, chat(10)).unwrap();
    let e = b.next().await;
    assert!(
        matches!(
            e,
            Event::Accepted {
                position: 1,
                queue_length: 1,
                eta_ms: 7000
            }
        ),
        "{e:?}"
    );
    let e = c.next().await;
    assert!(
        matches!(
            e,
            Event::Accepted {
                position: 2,
                queue_length: 2,
                eta_ms: 14000
            }
        ),
        "{e:?}"
    );
    // b leaves: c moves up to position 1 with the matching estimate.
    tb.cancel();
    let e = c.next().await;
    assert!(
        matches!(
            e,
            Event::Position {
                position: 1,
                eta_ms: 7000
            }
        ),
        "{e:?}"
    );
    assert!(matches!(c.next().await, Event::Started { .. }));
    assert_eq!(c.end().await, Ok(TestOutput::Chat(10)));
}
