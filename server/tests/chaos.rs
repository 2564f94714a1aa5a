//! Issue 14's chaos test (bounded, seeded, loopback only): a Redis, three web instances and two
//! workers as real processes, clients spread over the instances submitting jobs without pause,
//! and every few seconds one fault: `kill -9` of a web instance, of a worker while it runs jobs,
//! `SIGSTOP` of a worker past its lease then `SIGCONT`, a Redis restart from its append-only file.
//!
//! Checked: every job ends exactly once (in its event stream in Redis: one terminal event, the
//! last; and for a client whose connection lived, one terminal message); each job's `seq` has no
//! gap; no client hears another's event; no job was started more than twice (once, plus one
//! retry after a lost lease); and, when quiet, every waiting client's position equals its job's
//! rank in the sorted set.

mod common;

use app::protocol::ServerMessage;
use common::procs::Proc;
use common::{new_session, sleep_job, submit, Client, TempDir};
use futures::StreamExt;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use turnstile_cluster::testkit::RedisServer;

const SEED: u64 = 14;
const CLIENTS: usize = 9;
const RUN: Duration = Duration::from_secs(20);
/// The resume window is also how long an ended job's record and events are kept, and how long a
/// dead instance's jobs wait before they are cancelled: long enough to keep every job of the run.
const FLAGS: &[&str] = &["--lease", "1s", "--resume-window", "40s"];

/// What one client saw of one job.
#[derive(Default, Debug)]
struct Seen {
    id: Option<String>,
    seqs: Vec<u64>,
    terminals: u32,
    lost: bool,
    foreign: u32,
}

async fn connect(addr: std::net::SocketAddr, session: &str) -> Option<Client> {
    let url = format!("ws://{addr}/ws?session={session}");
    let (stream, _) = tokio::time::timeout(
        Duration::from_secs(3),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .ok()?
    .ok()?;
    Some(Client { stream })
}

/// The next protocol message, `None` when the connection failed or went silent for 10 s.
async fn next(c: &mut Client) -> Option<ServerMessage> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), c.stream.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).ok(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            _ => return None,
        }
    }
}

/// One client: jobs one after another until `until`, over instance `first` (then the next live
/// one when its connection fails).
async fn client(
    n: usize,
    addrs: Vec<std::net::SocketAddr>,
    until: Instant,
    seen: Arc<Mutex<HashMap<String, Seen>>>,
) {
    let session = new_session();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(SEED + n as u64);
    let mut at = n % addrs.len();
    let mut conn = None;
    let mut job = 0;
    while Instant::now() < until {
        let Some(c) = conn.as_mut() else {
            conn = connect(addrs[at], &session).await;
            at = (at + 1) % addrs.len();
            if conn.is_none() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            continue;
        };
        job += 1;
        let cref = format!("c{n}-{job}");
        let ms = rng.random_range(10..50);
        c.send_json(submit(&cref, sleep_job(ms))).await;
        let mut s = Seen::default();
        loop {
            let Some(m) = next(c).await else {
                s.lost = true;
                conn = None;
                break;
            };
            match (&m, &s.id) {
                (
                    ServerMessage::Accepted {
                        client_ref, job_id, ..
                    },
                    None,
                ) if *client_ref == cref => s.id = Some(job_id.to_string()),
                (ServerMessage::Error { job_id: None, .. }, None) => {}
                (_, Some(id)) if m.job_id().map(|j| j.to_string()).as_ref() == Some(id) => {}
                _ => s.foreign += 1,
            }
            if let Some(seq) = m.seq() {
                s.seqs.push(seq);
            }
            if m.is_terminal() || matches!(m, ServerMessage::Error { job_id: None, .. }) {
                s.terminals += 1;
                break;
            }
        }
        seen.lock().unwrap().insert(cref, s);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_lose_no_job_and_mix_no_events() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let dir = TempDir::new();
    let mut webs: Vec<Proc> = (0..3)
        .map(|i| Proc::web(&url, dir.path(), &format!("web{i}"), FLAGS))
        .collect();
    let mut workers: Vec<Proc> = (0..2)
        .map(|i| Proc::worker(&url, dir.path(), &format!("worker{i}"), FLAGS))
        .collect();
    let addrs: Vec<_> = webs.iter().map(|w| w.addr.unwrap()).collect();
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let until = Instant::now() + RUN;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| tokio::spawn(client(n, addrs.clone(), until, Arc::clone(&seen))))
        .collect();

    // One fault every 3 s, in a seeded order that covers each kind.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(SEED);
    let mut faults = vec![0, 1, 2, 3, 0, 1];
    for i in (1..faults.len()).rev() {
        faults.swap(i, rng.random_range(0..=i));
    }
    for fault in faults {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let k = rng.random_range(0..2usize);
        match fault {
            0 => {
                eprintln!("fault: kill -9 web instance {k}");
                webs[k].kill();
                tokio::time::sleep(Duration::from_millis(500)).await;
                webs[k].start();
            }
            1 => {
                eprintln!("fault: kill -9 worker {k}");
                workers[k].kill();
                tokio::time::sleep(Duration::from_millis(500)).await;
                workers[k].start();
            }
            2 => {
                eprintln!("fault: SIGSTOP worker {k} past its lease, then SIGCONT");
                workers[k].pause();
                tokio::time::sleep(Duration::from_millis(2500)).await;
                workers[k].resume();
            }
            _ => {
                eprintln!("fault: redis-server killed and restarted from its append-only file");
                redis.restart();
            }
        }
    }
    for c in clients {
        c.await.unwrap();
    }

    // Every job in Redis ends, exactly once: one terminal event, the last of its stream.
    let mut conn = common::redis_conn(&url).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let jobs: Vec<String> = loop {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("turnstile:job:*")
            .query_async(&mut conn)
            .await
            .unwrap();
        let mut open = 0;
        for k in &keys {
            let state: Option<String> = redis::cmd("HGET")
                .arg(k)
                .arg("state")
                .query_async(&mut conn)
                .await
                .unwrap();
            if state.as_deref() != Some("done") {
                open += 1;
            }
        }
        if open == 0 {
            break keys;
        }
        assert!(Instant::now() < deadline, "{open} jobs never ended");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(jobs.len() > 100, "only {} jobs ran", jobs.len());
    for k in &jobs {
        let id = k.trim_start_matches("turnstile:job:");
        let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(format!("turnstile:ev:{id}"))
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .unwrap();
        let kinds: Vec<String> = entries
            .ids
            .iter()
            .map(|e| {
                let body = turnstile_cluster::follow::bytes(&e.map, "e").unwrap();
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                v["t"].as_str().unwrap().to_owned()
            })
            .collect();
        let ends = kinds.iter().filter(|t| *t == "ended").count();
        assert_eq!(ends, 1, "job {id}: {kinds:?}");
        assert_eq!(
            kinds.last().map(String::as_str),
            Some("ended"),
            "job {id}: {kinds:?}"
        );
        let starts = kinds.iter().filter(|t| *t == "started").count();
        assert!(starts <= 2, "job {id} started {starts} times: {kinds:?}");
    }

    // What the clients saw (the guard ends with the block, before the next await).
    {
        let seen = seen.lock().unwrap();
        let lived: Vec<_> = seen.values().filter(|s| !s.lost).collect();
        assert!(
            lived.len() > 100,
            "only {} jobs were seen to their end",
            lived.len()
        );
        for (cref, s) in seen.iter() {
            assert_eq!(s.foreign, 0, "{cref} heard another client's event: {s:?}");
            let want: Vec<u64> = (0..s.seqs.len() as u64).collect();
            if s.id.is_some() {
                assert_eq!(s.seqs, want, "{cref}: a gap in seq");
            }
            if !s.lost {
                assert_eq!(s.terminals, 1, "{cref}: {s:?}");
            }
        }
        let lost = seen.values().filter(|s| s.lost).count();
        eprintln!(
            "{} jobs seen to their end, {lost} lost with their connection, {} in Redis",
            lived.len(),
            jobs.len()
        );
    }

    // Quiet: no worker; waiting clients on every instance are told their rank in the sorted set.
    for w in &mut workers {
        w.kill();
    }
    let mut waiting = vec![];
    for (i, addr) in addrs.iter().enumerate() {
        for j in 0..2 {
            let mut c = connect(*addr, &new_session())
                .await
                .expect("the instance is up");
            c.send_json(submit(&format!("q{i}{j}"), sleep_job(5))).await;
            waiting.push(c);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let order: Vec<String> = redis::cmd("ZRANGE")
        .arg("turnstile:line:device:q")
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(order.len(), waiting.len());
    for c in &mut waiting {
        let mut told = None;
        let mut id = None;
        while let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout(Duration::from_millis(200), c.stream.next()).await
        {
            match serde_json::from_str::<ServerMessage>(&t).unwrap() {
                ServerMessage::Accepted {
                    position, job_id, ..
                } => {
                    told = Some(position);
                    id = Some(job_id.to_string());
                }
                ServerMessage::Position { position, .. } => told = Some(position),
                m => panic!("unexpected {m:?}"),
            }
        }
        let id = id.expect("accepted");
        let rank = order.iter().position(|m| m.ends_with(&id)).unwrap() as u64 + 1;
        assert_eq!(told, Some(rank), "job {id}");
    }
}
