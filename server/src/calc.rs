//! The tensor calculator: validation of a [`CalcJob`] against the configured caps (cheap, done at
//! submission so a bad job is refused before it waits), and its execution on a candle device.
//!
//! Concurrency: pure functions. `execute` runs on a blocking thread while its job holds a device
//! lease; it checks the job's cancellation token between steps (its cancellation points).

use crate::error::JobError;
use app::protocol::{CalcJob, Op};
use app::tensor::{element_count, Fill, Tensor, TensorInput};
use candle_core::{DType, Device, Tensor as CTensor};
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The caps a calculator job must fit.
#[derive(Clone, Copy, Debug)]
pub struct CalcLimits {
    /// Most elements in any operand or result.
    pub max_elements: usize,
    /// Most floating-point operations for generating the operands plus the op.
    pub max_op_cost: u64,
    /// Whether the test-only `sleep` op is accepted.
    pub test_mode: bool,
    /// Longest `sleep` accepted (test mode), so a test job cannot hold the device forever.
    pub max_sleep: Duration,
}

fn invalid(msg: impl Into<String>) -> JobError {
    JobError::InvalidInput(msg.into())
}

/// Checks the job and returns its output shape and estimated cost in flops.
pub fn validate(job: &CalcJob, limits: &CalcLimits) -> Result<(Vec<usize>, u64), JobError> {
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

fn operand_cost(t: &TensorInput, name: &str, limits: &CalcLimits) -> Result<u64, JobError> {
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
fn broadcast(a: &[usize], b: &[usize], op: &str) -> Result<Vec<usize>, JobError> {
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

fn matmul_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>, JobError> {
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

/// Runs a validated job on `device`. Candle failures at this point are device failures: shapes
/// were already checked. The error text is for the log; the client sees only the code.
pub fn execute(
    job: &CalcJob,
    device: &Device,
    cancel: &CancellationToken,
) -> Result<Tensor, JobError> {
    let checkpoint = || {
        if cancel.is_cancelled() {
            Err(JobError::Cancelled)
        } else {
            Ok(())
        }
    };
    checkpoint()?;
    if job.op == Op::Sleep {
        let d = job.sleep_duration().unwrap_or_default();
        let until = Instant::now() + d;
        loop {
            let now = Instant::now();
            if now >= until {
                break;
            }
            checkpoint()?;
            std::thread::sleep(Duration::from_millis(5).min(until - now));
        }
        return Ok(Tensor {
            shape: vec![],
            data: vec![d.as_secs_f64() as f32 * 1e3],
        });
    }
    let run = || -> candle_core::Result<CTensor> {
        let a = materialise(job.a.as_ref().expect("validated"), device)?;
        let b = job.b.as_ref().map(|b| materialise(b, device)).transpose()?;
        Ok(match (job.op, b) {
            (Op::Add, Some(b)) => a.broadcast_add(&b)?,
            (Op::Sub, Some(b)) => a.broadcast_sub(&b)?,
            (Op::Mul, Some(b)) => a.broadcast_mul(&b)?,
            (Op::Div, Some(b)) => a.broadcast_div(&b)?,
            (Op::Matmul, Some(b)) => a.matmul(&b)?,
            (Op::Transpose, _) => a.t()?,
            (Op::Relu, _) => a.relu()?,
            (Op::Gelu, _) => a.gelu_erf()?,
            (Op::Exp, _) => a.exp()?,
            (Op::Log, _) => a.log()?,
            (Op::Sqrt, _) => a.sqrt()?,
            (Op::Softmax, _) => candle_nn::ops::softmax_last_dim(&a)?,
            (Op::Sum, _) => match job.dim {
                Some(d) => a.sum(d)?,
                None => a.sum_all()?,
            },
            (Op::Mean, _) => match job.dim {
                Some(d) => a.mean(d)?,
                None => a.mean_all()?,
            },
            (Op::Max, _) => match job.dim {
                Some(d) => a.max(d)?,
                None => a.flatten_all()?.max(0)?,
            },
            (op, _) => {
                candle_core::bail!("op {} reached execute without its operands", op.as_str())
            }
        })
    };
    let out = run().map_err(|e| {
        tracing::error!(error = %e, "calculator op failed on the device");
        JobError::DeviceFailed
    })?;
    checkpoint()?;
    let shape = out.dims().to_vec();
    let data = out
        .flatten_all()
        .and_then(|t| t.to_dtype(DType::F32))
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| {
            tracing::error!(error = %e, "reading the result back from the device failed");
            JobError::DeviceFailed
        })?;
    Ok(Tensor { shape, data })
}

/// Builds an operand on the device.
fn materialise(t: &TensorInput, device: &Device) -> candle_core::Result<CTensor> {
    match t {
        TensorInput::Literal(t) => CTensor::from_slice(&t.data, t.shape.as_slice(), device),
        TensorInput::Generated { fill, shape, seed } => match fill {
            Fill::Zeros => CTensor::zeros(shape.as_slice(), DType::F32, device),
            Fill::Ones => CTensor::ones(shape.as_slice(), DType::F32, device),
            Fill::Eye => {
                let (m, n) = (shape[shape.len() - 2], shape[shape.len() - 1]);
                let data: Vec<f32> = (0..element_count(shape))
                    .map(|i| if (i / n) % m == i % n { 1.0 } else { 0.0 })
                    .collect();
                CTensor::from_vec(data, shape.as_slice(), device)
            }
            Fill::Random => {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed.unwrap_or(0));
                let data: Vec<f32> = (0..element_count(shape))
                    .map(|_| rng.random::<f32>())
                    .collect();
                CTensor::from_vec(data, shape.as_slice(), device)
            }
        },
    }
}

#[cfg(test)]
#[path = "calc_tests.rs"]
mod tests;

/// The calculator as the executor's [`crate::job::Handler`] of calculator jobs.
pub struct Calculator {
    /// The caps jobs must fit.
    pub limits: CalcLimits,
    /// Where results are remembered for identical jobs.
    pub cache: std::sync::Arc<crate::cache::ResultCache>,
    /// Test-only faults (never armed outside `--test-mode`).
    pub faults: std::sync::Arc<crate::faults::Faults>,
}

impl crate::job::Handler<CalcJob> for Calculator {
    /// Checks a calculator job against the caps.
    fn validate(&self, job: &CalcJob) -> Result<(), JobError> {
        validate(job, &self.limits).map(|_| ())
    }

    /// Computes `job` on the device (through a lease), times it, and remembers the result.
    fn run(
        self: std::sync::Arc<Self>,
        job: CalcJob,
        ctx: crate::job::RunContext,
    ) -> futures::future::BoxFuture<'static, Result<crate::job::Outcome, JobError>> {
        let cache = std::sync::Arc::clone(&self.cache);
        let faults = std::sync::Arc::clone(&self.faults);
        Box::pin(async move {
            let cancel = ctx.cancel.clone();
            let (output, compute_ms, job) = ctx
                .on_device(move |device| {
                    use crate::faults::Fault;
                    if faults.fires(Fault::JobPanic) {
                        panic!("injected fault: a job panicked on the device");
                    }
                    let t = Instant::now();
                    let output = execute(&job, device, &cancel)?;
                    if faults.fires(Fault::DeviceFail) {
                        tracing::error!("injected fault: the device failed mid-job");
                        return Err(JobError::DeviceFailed);
                    }
                    Ok((output, t.elapsed().as_secs_f64() * 1e3, job))
                })
                .await?;
            cache.put(
                &job,
                crate::cache::Cached {
                    output: output.clone(),
                    compute_ms,
                },
            );
            Ok(crate::job::Outcome::Tensor { output, compute_ms })
        })
    }
}
