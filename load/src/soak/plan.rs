//! The run's plan: the kinds of job, how they and the churn are dealt to the clients up front, and
//! the calculator jobs' literal operands with the exact sums their results must be.

use super::{SoakOptions, SAME_JOBS};
use app::protocol::{CalcJob, Op};
use app::tensor::{Fill, Tensor, TensorInput};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

/// What kind of job a client runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// A distinct 2x2 add.
    Add,
    /// One of [`SAME_JOBS`] identical 2x2 adds.
    Same(u8),
    /// A short chat.
    Chat,
}

/// A share option as a probability: NaN is 0, the rest clamped to 0 ..= 1.
pub(super) fn share(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, 1.0)
    }
}

/// Each client's jobs, and which clients churn: `jobs / clients` jobs each, the chats dealt
/// round-robin starting with the churning clients, the kinds shuffled within each client.
pub(super) fn deal(opts: &SoakOptions, rng: &mut StdRng) -> (Vec<Vec<Kind>>, Vec<bool>) {
    let n = opts.clients;
    if n == 0 {
        return (Vec::new(), Vec::new());
    }
    let churn = share(opts.churn);
    let churners = ((n as f64 * churn).round() as usize).clamp(usize::from(churn > 0.0), n);
    let mut ids: Vec<usize> = (0..n).collect();
    ids.shuffle(rng);
    let mut churning = vec![false; n];
    for &c in &ids[..churners] {
        churning[c] = true;
    }
    let per = opts.jobs / n as u64;
    let extra = (opts.jobs % n as u64) as usize;
    let counts: Vec<u64> = (0..n).map(|c| per + u64::from(c < extra)).collect();
    let chats_total = ((opts.jobs as f64 * share(opts.chat_share)).round() as u64).min(opts.jobs);
    let mut chats = vec![0u64; n];
    let mut dealt = 0u64;
    // `ids` lists the churning clients first: they get the first chats.
    'deal: while dealt < chats_total {
        let before = dealt;
        for &c in &ids {
            if dealt == chats_total {
                break 'deal;
            }
            if chats[c] < counts[c] {
                chats[c] += 1;
                dealt += 1;
            }
        }
        if dealt == before {
            break;
        }
    }
    let same = share(opts.cached_share);
    let plans = (0..n)
        .map(|c| {
            let mut kinds: Vec<Kind> = (0..counts[c])
                .map(|i| {
                    if i < chats[c] {
                        Kind::Chat
                    } else if rng.random_bool(same) {
                        Kind::Same(rng.random_range(0..SAME_JOBS))
                    } else {
                        Kind::Add
                    }
                })
                .collect();
            kinds.shuffle(rng);
            kinds
        })
        .collect();
    (plans, churning)
}

/// A 2x2 add of two literal operands.
pub(super) fn add_of(a: [f32; 4], b: [f32; 4]) -> CalcJob {
    let literal = |data: [f32; 4]| {
        Tensor::new(vec![2, 2], data.to_vec())
            .map(TensorInput::Literal)
            // The shape fits the data by construction; the generator form cannot be reached.
            .unwrap_or(TensorInput::Generated {
                fill: Fill::Ones,
                shape: vec![2, 2],
                seed: None,
            })
    };
    CalcJob {
        op: Op::Add,
        a: Some(literal(a)),
        b: Some(literal(b)),
        dim: None,
        ms: None,
        us: None,
    }
}

/// The exact sum an add of literal operands must give (f32, as the device computes it).
pub(super) fn expected_sum(job: &CalcJob) -> Option<Vec<f32>> {
    match (&job.a, &job.b) {
        (Some(TensorInput::Literal(a)), Some(TensorInput::Literal(b)))
            if job.op == Op::Add && a.shape == b.shape =>
        {
            Some(a.data.iter().zip(&b.data).map(|(x, y)| x + y).collect())
        }
        _ => None,
    }
}

/// Whether `output` is exactly `expected` in a 2x2 shape.
pub(super) fn result_matches(output: &Tensor, expected: &[f32]) -> bool {
    output.shape == [2, 2]
        && output.data.len() == expected.len()
        && output
            .data
            .iter()
            .zip(expected)
            .all(|(x, y)| x.to_bits() == y.to_bits() || x == y)
}
