//! Execution of a validated calculator job on a candle device: its operands built (literals, or
//! generated: zeros, ones, eye, seeded random), the op run, the result read back as a wire
//! [`Tensor`], with cancellation checked before and after the work (and throughout a `sleep`).

use crate::CalcError;
use app::protocol::{CalcJob, Op};
use app::tensor::{element_count, Fill, Tensor, TensorInput};
use candle_core::{DType, Device, Tensor as CTensor};
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

/// Runs a job that passed [`crate::validate`] on `device`. Candle failures at this point are
/// device failures (shapes were already checked): [`CalcError::Device`], whose text is for the log
/// only. `cancelled` is asked at each checkpoint; once it says yes the job ends with
/// [`CalcError::Cancelled`].
pub fn execute(
    job: &CalcJob,
    device: &Device,
    cancelled: impl Fn() -> bool,
) -> Result<Tensor, CalcError> {
    let checkpoint = || {
        if cancelled() {
            Err(CalcError::Cancelled)
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
        let Some(a) = &job.a else {
            candle_core::bail!("op {} reached execute without operand a", job.op.as_str())
        };
        let a = materialise(a, device)?;
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
    let out = run().map_err(|e| CalcError::Device(format!("the op failed: {e}")))?;
    checkpoint()?;
    let shape = out.dims().to_vec();
    let data = out
        .flatten_all()
        .and_then(|t| t.to_dtype(DType::F32))
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| CalcError::Device(format!("reading the result back failed: {e}")))?;
    Ok(Tensor { shape, data })
}

/// Builds an operand on the device: a literal as given, or a generated one (`eye` is the identity
/// in every matrix of the batch; `random` is uniform in [0, 1), the same for the same seed).
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
