//! Property tests: random sequences of operations against the real scheduler (its task, its
//! runners and a device host with real device threads), with a scripted executor whose jobs hold
//! the device until the test says what they do.
//!
//! Operations: submit a job (held on the device until told, quick, or panicking before it reaches
//! the device) for one of a few owners, each with its own event sink; a burst of submissions with
//! no pause between them; cancel a job through its ticket, whatever state it is in; disconnect an
//! owner (its receiver and tickets dropped; a later submission for it reconnects as the same
//! party); finish or panic a job on the device; stall the device past the run limit; let time
//! pass. Settings vary per case: fair or FIFO order, party weights, `max_waiting` and
//! `max_waiting_per_party` small enough to refuse (`queue_full`, `rate_limited`) or not.
//!
//! A model of the queue (tagged by the crate's own fair clock, so its order is the scheduler's)
//! predicts what every owner must hear. After every operation the test waits until the
//! scheduler's view and the events heard match the model (or a time limit passes), then
//! checks:
//! 1. never more jobs on the device at once than `max_concurrent` (the executor counts);
//! 2. every accepted job hears `accepted` first, `started` before a successful `ended` (which
//!    carries its own label), exactly one terminal event (the one its fate calls for) and
//!    nothing after it; at the end, with every job finished, every job of a connected owner has
//!    had its terminal event;
//! 3. an owner hears only about its own jobs, and a refused submission produces no event (an
//!    event for an id nobody was given fails), and admission refuses exactly when the model's
//!    waiting jobs (queued or prefetched) reach a cap;
//! 4. every position an owner was last told equals a recount: 1 + the jobs ahead of it that have
//!    not started (the prefetched ones, and those earlier in the queue's order); `accepted`'s
//!    position is exact at once;
//! 5. no job waits while the device has a free place (the device is full whenever anything
//!    waits), and the view agrees with the model (running, prefetched, waiting, the listing,
//!    parties waiting, jobs processed).
//!
//! Properties: one place on the device, two places, no prefetch (all on a current-thread
//! runtime, where they pass); and three that fail on scheduler bugs the first ones found or led
//! to, each with the minimal sequence proptest found in its doc: jobs reach the device out of
//! dispatch order on a multi-thread runtime, `accepted`'s `queue_length` leaves out the
//! prefetched job, and a second prefetched job is never told it moved up.
//!
//! Timing: real time throughout (the device threads are real). `max_run` is 150 ms; a job the
//! test did not stall is finished by the test before it nears that (after 3 operations or 40 ms
//! on the device), so a run timeout happens only when the test asks for one, unless the machine
//! stops running a thread for 100 ms or more (seen on a loaded 2-core machine). Such `TIMING`
//! failures run the case again, up to 3 times in all; any other failure fails at once.

mod checks;
mod harness;
mod model;
mod probe;
mod script;
mod steps;
mod strategy;

use harness::Harness;
use proptest::prelude::*;
use std::time::Duration;
use strategy::{ops, setups, Mix, Op, Setup, Variant};

/// The longest run before `timeout`.
const MAX_RUN: Duration = Duration::from_millis(150);
/// Shortest interval between two position messages.
const INTERVAL: Duration = Duration::from_millis(5);
/// A job not stalled on purpose is finished after this long on the device...
const AUTO_FINISH_AFTER: Duration = Duration::from_millis(40);
/// ... or after this many operations.
const AUTO_FINISH_OPS: u32 = 3;
/// How long the test waits for the scheduler to reach the state the model predicts.
const SETTLE_LIMIT: Duration = Duration::from_millis(1500);
/// A held job gives up on its own after this long (a broken test must not hang).
const SAFETY: Duration = Duration::from_secs(20);
/// Owners (each a party with its own event sink).
const OWNERS: usize = 4;
/// A pause this long in a probe's sleeps means the machine stopped running that thread.
const STALL: Duration = Duration::from_millis(25);
/// Marks a failure that a slow machine can cause (a job ran into `max_run` before the test
/// finished it, the scheduler did not settle in time): the case is run again, up to `ATTEMPTS`
/// times in all, and fails only if it fails every time. Wrong answers fail at once.
const TIMING: &str = "[timing] ";
/// How a wrong position reads in the differences.
const STALE_POSITION: &str = "was last told position";
/// Runs of a case whose failures are all `TIMING` ones.
const ATTEMPTS: usize = 3;
/// A position still wrong after this many settle rounds, and this long, once everything else
/// matches the model, is wrong (positions are announced every `INTERVAL`).
const STALE_ROUNDS: u32 = 20;
const STALE_FOR: Duration = Duration::from_millis(40);

/// Runs a case (again, after a `TIMING` failure, up to `ATTEMPTS` times in all).
fn run(v: &Variant, setup: &Setup, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut failures = vec![];
    for _ in 0..ATTEMPTS {
        match run_once(v, setup, ops) {
            Ok(()) => return Ok(()),
            Err(e) => {
                let timing = e.starts_with(TIMING);
                if timing {
                    // Seen with --nocapture (or above a failure): how often the machine got in
                    // the way.
                    eprintln!("proptests: running a case again after: {e}");
                }
                failures.push(e);
                if !timing {
                    break;
                }
            }
        }
    }
    Err(TestCaseError::fail(
        failures.join("\n  --- and then, run again:\n"),
    ))
}

fn run_once(v: &Variant, setup: &Setup, ops: &[Op]) -> Result<(), String> {
    let runtime = if v.multi_thread {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .expect("a runtime");
    runtime.block_on(async {
        let mut h = Harness::new(v, setup);
        let outcome = h.run(ops).await;
        outcome.map_err(|e| {
            let dispatched: Vec<String> = h
                .dispatched
                .iter()
                .map(|&j| format!("L{} {:?}", h.jobs[j].label, h.jobs[j].phase))
                .collect();
            let queued: Vec<u64> = h.queue.values().map(|&j| h.jobs[j].label).collect();
            format!(
                "{e}\n  steps: {}\n  model: dispatched {dispatched:?}, queued {queued:?}\n  \
                 device start order: {:?}, runner order: {:?}",
                h.trace.join(" "),
                h.script.started.lock(),
                h.script.runs.lock()
            )
        })
    })
}

fn config(cases: u32) -> ProptestConfig {
    let defaults = ProptestConfig::default();
    ProptestConfig {
        // PROPTEST_CASES still decides when set.
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            defaults.cases
        } else {
            cases
        },
        failure_persistence: None,
        max_shrink_iters: 512,
        ..defaults
    }
}

const ONE_PLACE: Variant = Variant {
    prefetch: 1,
    max_concurrent: 1,
    multi_thread: false,
    check_queue_length: false,
    mix: Mix::All,
};

const TWO_PLACES: Variant = Variant {
    prefetch: 1,
    max_concurrent: 2,
    multi_thread: true,
    check_queue_length: false,
    mix: Mix::All,
};

const ORDER_ON_WORKERS: Variant = Variant {
    prefetch: 1,
    max_concurrent: 1,
    multi_thread: true,
    check_queue_length: false,
    mix: Mix::Order,
};

const NO_PREFETCH: Variant = Variant {
    prefetch: 0,
    max_concurrent: 1,
    multi_thread: false,
    check_queue_length: false,
    mix: Mix::All,
};

const DEEPER_PREFETCH: Variant = Variant {
    prefetch: 2,
    max_concurrent: 1,
    multi_thread: false,
    check_queue_length: false,
    mix: Mix::All,
};

const QUEUE_LENGTH: Variant = Variant {
    prefetch: 1,
    max_concurrent: 1,
    multi_thread: false,
    check_queue_length: true,
    mix: Mix::All,
};

proptest! {
    #![proptest_config(config(40))]

    /// One place on the device (and one prefetched), a current-thread runtime.
    #[test]
    fn one_place_on_the_device(setup in setups(), ops in ops(ONE_PLACE.mix)) {
        run(&ONE_PLACE, &setup, &ops)?;
    }

    /// Two places on the device (two device threads), a multi-thread runtime.
    #[test]
    fn two_places_on_the_device(setup in setups(), ops in ops(TWO_PLACES.mix)) {
        run(&TWO_PLACES, &setup, &ops)?;
    }

    /// No prefetch (`--prefetch 0`): the device waits for the scheduler.
    #[test]
    fn no_prefetch(setup in setups(), ops in ops(NO_PREFETCH.mix)) {
        run(&NO_PREFETCH, &setup, &ops)?;
    }

    /// Two jobs prefetched (`--prefetch 2`, a supported setting): a prefetched job's position
    /// counts the prefetched jobs ahead of it that have not started.
    ///
    /// (Found by proptest, since fixed: a prefetched job was told its position once, when it was
    /// dispatched, and never again, so with three held jobs submitted one after the other, the
    /// third, prefetched second and told position 2, was never told 1 when the second started.)
    #[test]
    fn a_deeper_prefetch(setup in setups(), ops in ops(DEEPER_PREFETCH.mix)) {
        run(&DEEPER_PREFETCH, &setup, &ops)?;
    }

    /// On a multi-thread runtime (the server's), jobs reach the device in the order the
    /// scheduler dispatched them: the job it counts as running is the one on the device, and a
    /// prefetched job is not passed by one dispatched after it.
    ///
    /// (Found by proptest, since fixed: each runner handed its job to the device on its first
    /// poll, and nothing ordered the first polls of two runners spawned close together, so
    /// `Burst([(1, 1), (0, 1)])`, two held jobs submitted back to back on an idle device, could
    /// start the second first. The scheduler now takes each job's place in the device's order
    /// as it dispatches it.)
    #[test]
    fn jobs_reach_the_device_in_dispatch_order(setup in setups(), ops in ops(ORDER_ON_WORKERS.mix)) {
        run(&ORDER_ON_WORKERS, &setup, &ops)?;
    }

    /// `accepted`'s `queue_length` is, as documented, the jobs waiting in all, this one
    /// included, so never less than its position: prefetched jobs count as waiting everywhere
    /// else (positions, the view's `waiting`, admission).
    ///
    /// (Found by proptest, since fixed: it was the queue's length alone, so with
    /// `Burst([(0, 1), (0, 1), (0, 1)])` the third job heard position 2 of `queue_length` 1.)
    #[test]
    fn accepted_queue_length_counts_every_waiting_job(setup in setups(), ops in ops(QUEUE_LENGTH.mix)) {
        run(&QUEUE_LENGTH, &setup, &ops)?;
    }
}
