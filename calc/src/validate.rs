//! Validation of a calculator job against the caps: operands present as the op needs them, every
//! dimension at least 1, shapes that broadcast or multiply, the result's shape, and the job's cost
//! in floating-point operations, all before the job waits for the device.

use crate::{CalcError, CalcLimits};
use app::protocol::{CalcJob, Op};
use app::tensor::{element_count, TensorInput};

fn invalid(msg: impl Into<String>) -> CalcError {
    CalcError::InvalidInput(msg.into())
}

/// Checks the job and returns its output shape and estimated cost in flops.
pub fn validate(job: &CalcJob, limits: &CalcLimits) -> Result<(Vec<usize>, u64), CalcError> {
    if job.op == Op::Sleep {
        if !limits.test_mode {
            return Err(invalid(format!(
                "unknown op \"sleep\"; expected one of: {}",
                Op::PUBLIC.map(Op::as_str).join(", ")
            )));
        }
        let d = job
            .sleep_duration()
            .ok_or_else(|| invalid("op \"sleep\" needs \"ms\" (or \"us\")"))?;
        if d > limits.max_sleep {
            return Err(invalid(format!(
                "sleep of {} is over the test maximum",
                humantime::format_duration(d)
            )));
        }
        return Ok((vec![], 0));
    }
    let op = job.op.as_str();
    let a = job
        .a
        .as_ref()
        .ok_or_else(|| invalid(format!("op \"{op}\" needs operand \"a\"")))?;
    let b = match (job.op.is_binary(), &job.b) {
        (true, Some(b)) => Some(b),
        (true, None) => return Err(invalid(format!("op \"{op}\" needs a second operand \"b\""))),
        (false, Some(_)) => {
            return Err(invalid(format!(
                "op \"{op}\" takes one operand; remove \"b\""
            )))
        }
        (false, None) => None,
    };
    if job.dim.is_some() && !job.op.is_reduction() {
        return Err(invalid(format!(
            "\"dim\" applies only to sum, mean and max, not to \"{op}\""
        )));
    }
    let mut cost = operand_cost(a, "a", limits)?;
    if let Some(b) = b {
        cost = cost.saturating_add(operand_cost(b, "b", limits)?);
    }
    let sa = a.shape();
    let out: Vec<usize> = match job.op {
        Op::Add | Op::Sub | Op::Mul | Op::Div => {
            broadcast(sa, b.map(TensorInput::shape).unwrap_or(&[]), op)?
        }
        Op::Matmul => matmul_shape(sa, b.map(TensorInput::shape).unwrap_or(&[]))?,
        Op::Transpose => {
            if sa.len() < 2 {
                return Err(invalid(format!(
                    "transpose needs at least 2 dimensions; a is {sa:?}"
                )));
            }
            let mut s = sa.to_vec();
            let n = s.len();
            s.swap(n - 1, n - 2);
            s
        }
        Op::Softmax => {
            if sa.is_empty() {
                return Err(invalid("softmax needs at least 1 dimension; a is a scalar"));
            }
            sa.to_vec()
        }
        Op::Sum | Op::Mean | Op::Max => match job.dim {
            None => vec![],
            Some(d) if d < sa.len() => {
                let mut s = sa.to_vec();
                s.remove(d);
                s
            }
            Some(d) => {
                return Err(invalid(format!(
                    "dim {d} is out of range for a of shape {sa:?}"
                )))
            }
        },
        Op::Relu | Op::Gelu | Op::Exp | Op::Log | Op::Sqrt => sa.to_vec(),
        Op::Sleep => unreachable!("handled above"),
    };
    let n_out = element_count(&out);
    if n_out > limits.max_elements {
        return Err(invalid(format!(
            "the result would have {n_out} elements, over the cap of {}",
            limits.max_elements
        )));
    }
    let op_cost = match job.op {
        Op::Matmul => {
            let k = sa[sa.len() - 1] as u64;
            (n_out as u64).saturating_mul(k).saturating_mul(2)
        }
        Op::Softmax | Op::Gelu => (n_out as u64).saturating_mul(8),
        Op::Sum | Op::Mean | Op::Max => element_count(sa) as u64,
        _ => n_out as u64,
    };
    cost = cost.saturating_add(op_cost);
    if cost > limits.max_op_cost {
        return Err(invalid(format!(
            "this job would cost about {cost} floating-point operations, over the cap of {}; use smaller operands",
            limits.max_op_cost
        )));
    }
    Ok((out, cost))
}

fn operand_cost(t: &TensorInput, name: &str, limits: &CalcLimits) -> Result<u64, CalcError> {
    let shape = t.shape();
    if shape.contains(&0) {
        return Err(invalid(format!(
            "operand {name} has shape {shape:?}; every dimension must be at least 1"
        )));
    }
    let n = element_count(shape);
    if n > limits.max_elements {
        return Err(invalid(format!(
            "operand {name} has {n} elements, over the cap of {}",
            limits.max_elements
        )));
    }
    Ok(n as u64)
}

/// NumPy-style broadcasting, as candle's `broadcast_*` ops apply it.
fn broadcast(a: &[usize], b: &[usize], op: &str) -> Result<Vec<usize>, CalcError> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i < n - a.len() {
            1
        } else {
            a[i - (n - a.len())]
        };
        let db = if i < n - b.len() {
            1
        } else {
            b[i - (n - b.len())]
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(invalid(format!(
                    "{op} cannot broadcast a of shape {a:?} with b of shape {b:?}: dimensions must be equal or 1"
                )))
            }
        };
    }
    Ok(out)
}

fn matmul_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>, CalcError> {
    if a.len() < 2 || b.len() < 2 {
        return Err(invalid(format!(
            "matmul needs at least 2 dimensions on both operands; a is {a:?}, b is {b:?}"
        )));
    }
    if a.len() != b.len() || a[..a.len() - 2] != b[..b.len() - 2] {
        return Err(invalid(format!(
            "matmul needs the same leading (batch) dimensions; a is {a:?}, b is {b:?}"
        )));
    }
    let (k1, k2) = (a[a.len() - 1], b[b.len() - 2]);
    if k1 != k2 {
        return Err(invalid(format!(
            "matmul needs a's last dimension ({k1}) to equal b's second-to-last ({k2}); a is {a:?}, b is {b:?}"
        )));
    }
    let mut out = a[..a.len() - 1].to_vec();
    out.push(b[b.len() - 1]);
    Ok(out)
}
