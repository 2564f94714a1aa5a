//! Unit tests of the plan (how the jobs are dealt, the operands and their sums) and of the
//! violations' tally.

use super::plan::{add_of, deal, expected_sum, result_matches, Kind};
use super::{SoakOptions, Violation, Violations};
use crate::jobs;
use app::tensor::Tensor;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn opts(clients: usize, jobs: u64, chat_share: f64, churn: f64) -> SoakOptions {
    SoakOptions {
        clients,
        jobs,
        chat_share,
        cached_share: 0.1,
        churn,
        churn_jobs: 0.3,
        max_tokens: 4,
        prompt: "Say hello.".into(),
        duration: 10.0,
        grace: 1.0,
        settle: 1.0,
        linger: 0.0,
        seed: Some(1),
    }
}

#[test]
fn jobs_are_dealt_evenly_and_chats_go_to_the_churning_clients_first() {
    let mut rng = StdRng::seed_from_u64(7);
    let (plans, churning) = deal(&opts(40, 2002, 0.004, 0.1), &mut rng);
    assert_eq!(plans.len(), 40);
    assert_eq!(plans.iter().map(Vec::len).sum::<usize>(), 2002);
    assert!(plans.iter().all(|p| p.len() == 50 || p.len() == 51));
    assert_eq!(churning.iter().filter(|c| **c).count(), 4);
    let chats = |c: usize| plans[c].iter().filter(|k| **k == Kind::Chat).count();
    assert_eq!((0..40).map(chats).sum::<usize>(), 8);
    for c in (0..40).filter(|c| churning[*c]) {
        assert_eq!(chats(c), 1, "churning client {c}");
    }
    // More chats than a client has jobs: everything is a chat, nothing overflows.
    let (plans, _) = deal(&opts(3, 7, 1.0, 0.5), &mut rng);
    assert!(plans.iter().flatten().all(|k| *k == Kind::Chat));
    assert_eq!(plans.iter().map(Vec::len).sum::<usize>(), 7);
    // Degenerate shares and no clients never panic.
    let _ = deal(&opts(5, 10, f64::NAN, -3.0), &mut rng);
    assert!(deal(&opts(0, 10, 0.5, 0.5), &mut rng).0.is_empty());
}

#[test]
fn sums_are_checked_exactly_against_the_operands() {
    let job = jobs::distinct_add(12_345.0, 7, 3);
    let expected = expected_sum(&job).unwrap();
    assert_eq!(expected, vec![12_352.0, 6.0, 5.0, 7.0]);
    let right = Tensor::new(vec![2, 2], expected.clone()).unwrap();
    assert!(result_matches(&right, &expected));
    let wrong = Tensor::new(vec![2, 2], vec![12_352.0, 6.0, 5.0, 8.0]).unwrap();
    assert!(!result_matches(&wrong, &expected));
    let flat = Tensor::new(vec![4], expected.clone()).unwrap();
    assert!(!result_matches(&flat, &expected));
    let same = add_of([1.0, 2.0, 3.0, 4.0], [2.0; 4]);
    assert_eq!(expected_sum(&same).unwrap(), vec![3.0, 4.0, 5.0, 6.0]);
}

#[test]
fn violations_tally_by_kind() {
    let mut v = Violations::default();
    assert_eq!(v.summary(), "none");
    v.add(Violation::SeqGap, "a");
    v.add(Violation::SeqGap, "b");
    v.add(Violation::ForeignEvent, "c");
    assert_eq!(v.total(), 3);
    assert_eq!(v.summary(), "seq_gap ×2, foreign_event ×1");
    assert_eq!(v.examples["seq_gap"], "a");
}
