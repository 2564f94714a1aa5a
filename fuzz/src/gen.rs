//! Calculator jobs built from fuzzer bytes, as the JSON a client would send. Shapes are mostly
//! small and often compatible (equal, broadcastable, or matmul-shaped), with now and then a zero,
//! a huge dimension, a fifth dimension, a literal that does not fill its shape, an unknown op or
//! fill, or a field where it does not belong, so both validation's refusals and execution get
//! exercised.

use arbitrary::{Result, Unstructured};
use serde_json::{json, Map, Value};

const OPS: [&str; 17] = [
    "add",
    "sub",
    "mul",
    "div",
    "matmul",
    "transpose",
    "relu",
    "gelu",
    "exp",
    "log",
    "sqrt",
    "softmax",
    "sum",
    "mean",
    "max",
    "sleep",
    "pow",
];

const BINARY: [&str; 5] = ["add", "sub", "mul", "div", "matmul"];

/// The JSON text of one job, with `"kind":"calc"` half the time.
pub fn calc_job_json(data: &[u8]) -> Result<String> {
    let mut u = Unstructured::new(data);
    Ok(job(&mut u)?.to_string())
}

fn job(u: &mut Unstructured) -> Result<Value> {
    let op = *u.choose(&OPS)?;
    let mut obj = Map::new();
    if u.arbitrary()? {
        obj.insert("kind".into(), json!("calc"));
    }
    obj.insert("op".into(), json!(op));
    let a_shape = shape(u)?;
    if u.ratio(15, 16)? {
        obj.insert("a".into(), tensor(u, &a_shape)?);
    }
    let wants_b = BINARY.contains(&op);
    if if wants_b {
        u.ratio(15, 16)?
    } else {
        u.ratio(1, 16)?
    } {
        let b_shape = related_shape(u, &a_shape, op)?;
        obj.insert("b".into(), tensor(u, &b_shape)?);
    }
    let reduction = matches!(op, "sum" | "mean" | "max");
    if if reduction {
        u.ratio(1, 2)?
    } else {
        u.ratio(1, 32)?
    } {
        let dim: u64 = if u.ratio(7, 8)? {
            u.int_in_range(0..=4)?
        } else {
            u.arbitrary()?
        };
        obj.insert("dim".into(), json!(dim));
    }
    if op == "sleep" || u.ratio(1, 32)? {
        if u.arbitrary()? {
            obj.insert("ms".into(), json!(small_or_any(u, 2)?));
        }
        if u.arbitrary()? {
            obj.insert("us".into(), json!(small_or_any(u, 1500)?));
        }
    }
    Ok(Value::Object(obj))
}

fn small_or_any(u: &mut Unstructured, small: u64) -> Result<u64> {
    if u.ratio(7, 8)? {
        u.int_in_range(0..=small)
    } else {
        u.arbitrary()
    }
}

fn dimension(u: &mut Unstructured) -> Result<u64> {
    Ok(match u.int_in_range(0..=31u8)? {
        0 => 0,
        1 => u.arbitrary()?,
        2 => 1 << u.int_in_range(8..=40)?,
        _ => u.int_in_range(1..=5)?,
    })
}

fn shape(u: &mut Unstructured) -> Result<Vec<u64>> {
    let rank = if u.ratio(1, 32)? {
        u.int_in_range(5..=6)?
    } else {
        u.int_in_range(0..=4)?
    };
    (0..rank).map(|_| dimension(u)).collect()
}

/// A second operand's shape: often one that fits the first for the op.
fn related_shape(u: &mut Unstructured, a: &[u64], op: &str) -> Result<Vec<u64>> {
    Ok(match u.int_in_range(0..=5u8)? {
        0 => a.to_vec(),
        // Broadcastable: some dimensions 1, some leading ones dropped.
        1 | 2 => {
            let drop = u.int_in_range(0..=a.len())?;
            let mut s = Vec::new();
            for &d in &a[drop..] {
                s.push(if u.ratio(1, 3)? { 1 } else { d });
            }
            s
        }
        // Matmul-shaped: same batch, k = a's last, any n.
        3 | 4 if a.len() >= 2 || op == "matmul" => {
            let mut s = a.to_vec();
            if s.len() >= 2 {
                let k = s[s.len() - 1];
                let n = s.len();
                s[n - 2] = k;
                s[n - 1] = dimension(u)?;
            }
            s
        }
        _ => shape(u)?,
    })
}

fn tensor(u: &mut Unstructured, shape: &[u64]) -> Result<Value> {
    let mut obj = Map::new();
    obj.insert("shape".into(), json!(shape));
    let n = shape.iter().fold(1u64, |n, &d| n.saturating_mul(d));
    if u.ratio(1, 2)? && n <= 4096 {
        // A literal; now and then one value short or over.
        let len = match u.int_in_range(0..=15u8)? {
            0 => n.saturating_sub(1),
            1 => n + 1,
            _ => n,
        };
        let data = (0..len).map(|_| number(u)).collect::<Result<Vec<_>>>()?;
        obj.insert("data".into(), Value::Array(data));
        if u.ratio(1, 32)? {
            obj.insert("fill".into(), json!("zeros"));
        }
    } else {
        let fill = *u.choose(&["zeros", "ones", "eye", "random", "random", "twos"])?;
        obj.insert("fill".into(), json!(fill));
        if u.arbitrary()? {
            let seed: u64 = u.arbitrary()?;
            obj.insert("seed".into(), json!(seed));
        }
    }
    Ok(Value::Object(obj))
}

fn number(u: &mut Unstructured) -> Result<Value> {
    Ok(match u.int_in_range(0..=15u8)? {
        0 => json!("NaN"),
        1 => json!("Infinity"),
        2 => json!("-Infinity"),
        3 => {
            let x: f64 = u.arbitrary()?;
            if x.is_finite() {
                json!(x)
            } else {
                json!(0)
            }
        }
        4 => {
            let x: f32 = u.arbitrary()?;
            if x.is_finite() {
                json!(x)
            } else {
                json!(1)
            }
        }
        _ => json!(u.int_in_range(-8i32..=8)?),
    })
}
