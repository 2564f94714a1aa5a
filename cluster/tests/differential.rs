//! The shared queue against the in-process one: the same random operations (arrivals of random
//! parties, weights and costs in two lines, claims, cancels, both orders, caps) go through the
//! scheduler's `FairClock` with an ordered map (the order `fair.rs` and the scheduler give) and
//! through the Lua scripts in a real `redis-server`; after every operation the answers, every
//! line's order and every waiting job's position must be equal, and an instance's mirror fed by
//! the change stream must hold the same order.

use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use turnstile_cluster::testkit::RedisServer;
use turnstile_cluster::{Change, Mirror, NewJob, QueueConfig, Refusal, SharedQueue};
use turnstile_scheduler::fair::{FairClock, Tags};
use turnstile_scheduler::{Party, QueueKey, QueueOrder};

const LINES: [&str; 2] = ["device", "lane"];

static CASE: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Debug)]
enum Op {
    Enqueue {
        line: usize,
        party: usize,
        cost: u64,
    },
    Claim {
        line: usize,
    },
    Cancel(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..2usize, 0..6usize, prop_oneof![1..10u64, 1..200_000u64])
            .prop_map(|(line, party, cost)| Op::Enqueue { line, party, cost }),
        3 => (0..2usize).prop_map(|line| Op::Claim { line }),
        1 => any::<usize>().prop_map(Op::Cancel),
    ]
}

/// The in-process model: one clock and one ordered map per line, and the admission counts.
struct Model {
    clocks: [FairClock; 2],
    lines: [BTreeMap<QueueKey, String>; 2],
    tags: HashMap<String, (usize, Party, Tags)>,
    per_party: HashMap<usize, u64>,
    seq: u64,
    max_waiting: u64,
    max_per_party: u64,
}

impl Model {
    fn waiting(&self) -> u64 {
        self.lines.iter().map(|l| l.len() as u64).sum()
    }
}

fn weight(party: usize) -> u32 {
    [1, 1, 2, 4, 1, 3][party]
}

fn run(
    redis: &RedisServer,
    fifo: bool,
    max_waiting: u64,
    max_per_party: u64,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let prefix = format!("case{}", CASE.fetch_add(1, Ordering::Relaxed));
        let config = QueueConfig {
            prefix: prefix.clone(),
            fifo,
            max_waiting,
            max_waiting_per_party: max_per_party,
            ..QueueConfig::default()
        };
        let q = SharedQueue::connect(&redis.url(), config).await.unwrap();
        let order = if fifo {
            QueueOrder::Fifo
        } else {
            QueueOrder::Fair
        };
        let mut m = Model {
            clocks: [FairClock::new(order), FairClock::new(order)],
            lines: [BTreeMap::new(), BTreeMap::new()],
            tags: HashMap::new(),
            per_party: HashMap::new(),
            seq: 0,
            max_waiting,
            max_per_party,
        };
        let mut mirror = Mirror::default();
        let mut changes_read = "0-0".to_owned();
        let mut next_id = 0u64;
        for op in ops {
            match op {
                Op::Enqueue { line, party, cost } => {
                    next_id += 1;
                    let id = format!("{next_id:032x}");
                    let got = q
                        .enqueue(NewJob {
                            id: &id,
                            line: LINES[*line],
                            party: &format!("p{party}"),
                            weight: weight(*party),
                            cost_us: *cost,
                            owner: "model",
                            payload: b"job",
                            session: "",
                            meta: b"",
                        })
                        .await
                        .unwrap();
                    let n = m.per_party.get(party).copied().unwrap_or(0);
                    let want = if m.max_waiting > 0 && m.waiting() >= m.max_waiting {
                        Err(Refusal::QueueFull)
                    } else if m.max_per_party > 0 && n >= m.max_per_party {
                        Err(Refusal::RateLimited)
                    } else {
                        m.seq += 1;
                        let p = Party {
                            key: format!("p{party}").into(),
                            weight: weight(*party),
                        };
                        let tags = m.clocks[*line].tag(&p, *cost, m.seq);
                        m.lines[*line].insert(tags.key, id.clone());
                        m.tags.insert(id.clone(), (*line, p, tags));
                        *m.per_party.entry(*party).or_default() += 1;
                        let position = m.lines[*line].range(..=tags.key).count() as u64;
                        Ok((tags.key.tag, position, m.lines[*line].len() as u64))
                    };
                    let got = got.map(|e| (e.tag, e.position, e.line_length));
                    prop_assert_eq!(got, want, "enqueue {:?}", op);
                }
                Op::Claim { line } => {
                    let got = q.claim(LINES[*line], "w1").await.unwrap().map(|c| c.id);
                    let want = m.lines[*line].pop_first().map(|(_, id)| id);
                    if let Some(id) = &want {
                        let (l, p, tags) = m.tags.remove(id).unwrap();
                        m.clocks[l].dispatched(&tags);
                        let party: usize = p.key[1..].parse().unwrap();
                        *m.per_party.get_mut(&party).unwrap() -= 1;
                    }
                    prop_assert_eq!(got, want, "claim {:?}", op);
                }
                Op::Cancel(n) => {
                    let ids: Vec<String> = m.tags.keys().cloned().collect();
                    if ids.is_empty() {
                        continue;
                    }
                    let mut ids = ids;
                    ids.sort();
                    let id = ids[n % ids.len()].clone();
                    let outcome = q.cancel(&id, b"cancelled").await.unwrap();
                    prop_assert_eq!(outcome, turnstile_cluster::CancelOutcome::Removed);
                    let (l, p, tags) = m.tags.remove(&id).unwrap();
                    m.lines[l].remove(&tags.key);
                    m.clocks[l].withdrawn(&p, &tags);
                    let party: usize = p.key[1..].parse().unwrap();
                    *m.per_party.get_mut(&party).unwrap() -= 1;
                }
            }
            // Every line's order, in Redis and in the mirror fed by the change stream.
            let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
                .arg(q.keys().changes())
                .arg(format!("({changes_read}"))
                .arg("+")
                .query_async(&mut q.connection())
                .await
                .unwrap();
            for e in &reply.ids {
                changes_read = e.id.clone();
                let change = Change::from_fields(&e.map).expect("a well-formed change");
                prop_assert!(mirror.apply(&change).is_ok(), "a gap in the change stream");
            }
            let snapshot = q.snapshot(&LINES).await.unwrap();
            prop_assert_eq!(snapshot.cseq, mirror.cseq());
            for (i, line) in LINES.iter().enumerate() {
                let want: Vec<String> = m.lines[i].values().cloned().collect();
                let redis_order: Vec<String> = snapshot.lines[i]
                    .1
                    .iter()
                    .map(|(member, _)| {
                        turnstile_cluster::split_member(member)
                            .unwrap()
                            .1
                            .to_owned()
                    })
                    .collect();
                prop_assert_eq!(&redis_order, &want, "line {} in redis", line);
                prop_assert_eq!(&mirror.order(line), &want, "line {} in the mirror", line);
                for (member, score) in &snapshot.lines[i].1 {
                    let id = turnstile_cluster::split_member(member).unwrap().1;
                    let key = m.tags[id].2.key;
                    let pos = m.lines[i].range(..=key).count() as u64;
                    prop_assert_eq!(mirror.position(line, member, *score), Some(pos));
                }
            }
        }
        Ok(())
    })
}

/// Runs `cases` random cases against one redis-server, started here and stopped at the end
/// (a static would outlive the test process's destructors and leave the server running).
fn check<S: Strategy>(
    cases: u32,
    strategy: S,
    case: impl Fn(&RedisServer, S::Value) -> Result<(), TestCaseError>,
) {
    let redis = RedisServer::start();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        ..ProptestConfig::default()
    });
    if let Err(e) = runner.run(&strategy, |v| case(&redis, v)) {
        panic!("{e}");
    }
}

#[test]
fn fair_order_matches_the_in_process_queue() {
    check(96, prop::collection::vec(op(), 1..80), |redis, ops| {
        run(redis, false, 0, 0, &ops)
    });
}

#[test]
fn fifo_order_matches_the_in_process_queue() {
    check(64, prop::collection::vec(op(), 1..60), |redis, ops| {
        run(redis, true, 0, 0, &ops)
    });
}

#[test]
fn caps_refuse_as_the_scheduler_does() {
    let cases = (1..8u64, 1..4u64, prop::collection::vec(op(), 1..60));
    check(96, cases, |redis, (max_waiting, max_per_party, ops)| {
        run(redis, false, max_waiting, max_per_party, &ops)
    });
}
