//! The calculator's unit tests: results of each kind of op on small operands, generators,
//! non-finite values, every kind of refusal with its message, and cancellation.

use super::*;
use app::protocol::CalcJob;
use app::tensor::Tensor;
use candle_core::Device;
use serde_json::json;
use std::time::Instant;

fn limits() -> CalcLimits {
    CalcLimits {
        max_elements: 1 << 20,
        max_op_cost: 1 << 32,
        test_mode: false,
        max_sleep: Duration::from_secs(60),
    }
}

fn job(v: serde_json::Value) -> CalcJob {
    serde_json::from_value(v).unwrap()
}

fn run(v: serde_json::Value) -> Result<Tensor, CalcError> {
    let j = job(v);
    validate(&j, &limits())?;
    execute(&j, &Device::Cpu, || false)
}

#[test]
fn matmul_of_small_matrices() {
    let out = run(json!({"op":"matmul","a":{"shape":[2,2],"data":[1,2,3,4]},"b":{"shape":[2,2],"data":[5,6,7,8]}}))
        .unwrap();
    assert_eq!(
        out,
        Tensor {
            shape: vec![2, 2],
            data: vec![19., 22., 43., 50.]
        }
    );
}

#[test]
fn broadcasting_add_and_generators() {
    let out =
        run(json!({"op":"add","a":{"shape":[2,3],"fill":"ones"},"b":{"shape":[3],"data":[1,2,3]}}))
            .unwrap();
    assert_eq!(out.shape, vec![2, 3]);
    assert_eq!(out.data, vec![2., 3., 4., 2., 3., 4.]);
    let eye = run(json!({"op":"relu","a":{"shape":[2,3,3],"fill":"eye"}})).unwrap();
    assert_eq!(&eye.data[..9], &[1., 0., 0., 0., 1., 0., 0., 0., 1.]);
    assert_eq!(&eye.data[9..], &eye.data[..9]);
}

#[test]
fn random_is_deterministic_per_seed() {
    let a = run(json!({"op":"relu","a":{"shape":[4,4],"fill":"random","seed":7}})).unwrap();
    let b = run(json!({"op":"relu","a":{"shape":[4,4],"fill":"random","seed":7}})).unwrap();
    let c = run(json!({"op":"relu","a":{"shape":[4,4],"fill":"random","seed":8}})).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(a.data.iter().all(|x| (0.0..1.0).contains(x)));
}

#[test]
fn unary_ops_reductions_and_softmax() {
    let a = json!({"shape":[2,2],"data":[1,4,9,16]});
    assert_eq!(
        run(json!({"op":"sqrt","a":a})).unwrap().data,
        vec![1., 2., 3., 4.]
    );
    assert_eq!(
        run(json!({"op":"transpose","a":a})).unwrap().data,
        vec![1., 9., 4., 16.]
    );
    assert_eq!(
        run(json!({"op":"sum","a":a})).unwrap(),
        Tensor {
            shape: vec![],
            data: vec![30.]
        }
    );
    assert_eq!(
        run(json!({"op":"sum","a":a,"dim":0})).unwrap().data,
        vec![10., 20.]
    );
    assert_eq!(
        run(json!({"op":"max","a":a,"dim":1})).unwrap().data,
        vec![4., 16.]
    );
    assert_eq!(run(json!({"op":"mean","a":a})).unwrap().data, vec![7.5]);
    let s = run(json!({"op":"softmax","a":{"shape":[1,3],"data":[0,0,0]}})).unwrap();
    assert!(s.data.iter().all(|x| (x - 1.0 / 3.0).abs() < 1e-6));
    let g = run(json!({"op":"gelu","a":{"shape":[2],"data":[0,10]}})).unwrap();
    assert_eq!(g.data[0], 0.0);
    assert!((g.data[1] - 10.0).abs() < 1e-4);
}

#[test]
fn non_finite_results_are_values_not_errors() {
    let out = run(json!({"op":"log","a":{"shape":[3],"data":[0,-1,1]}})).unwrap();
    assert_eq!(out.data[0], f32::NEG_INFINITY);
    assert!(out.data[1].is_nan());
    assert_eq!(out.data[2], 0.0);
    let div =
        run(json!({"op":"div","a":{"shape":[1],"data":[1]},"b":{"shape":[1],"data":[0]}})).unwrap();
    assert_eq!(div.data, vec![f32::INFINITY]);
}

#[test]
fn mistakes_are_invalid_input_with_a_useful_message() {
    let msg = |v| match validate(&job(v), &limits()) {
        Err(CalcError::InvalidInput(m)) => m,
        other => panic!("expected invalid_input, got {other:?}"),
    };
    assert!(msg(
        json!({"op":"matmul","a":{"shape":[2,3],"fill":"ones"},"b":{"shape":[4,2],"fill":"ones"}})
    )
    .contains("last dimension (3) to equal b's second-to-last (4)"));
    assert!(msg(
        json!({"op":"add","a":{"shape":[2,3],"fill":"ones"},"b":{"shape":[2],"fill":"ones"}})
    )
    .contains("cannot broadcast"));
    assert!(
        msg(json!({"op":"add","a":{"shape":[2],"fill":"ones"}})).contains("needs a second operand")
    );
    assert!(msg(
        json!({"op":"relu","a":{"shape":[2],"fill":"ones"},"b":{"shape":[2],"fill":"ones"}})
    )
    .contains("takes one operand"));
    assert!(msg(json!({"op":"transpose","a":{"shape":[2],"fill":"ones"}})).contains("at least 2"));
    assert!(
        msg(json!({"op":"sum","a":{"shape":[2],"fill":"ones"},"dim":1})).contains("out of range")
    );
    assert!(
        msg(json!({"op":"relu","a":{"shape":[2048,1024],"fill":"ones"}})).contains("over the cap")
    );
    let tight = CalcLimits {
        max_op_cost: 1 << 30,
        ..limits()
    };
    let big = job(
        json!({"op":"matmul","a":{"shape":[1024,1024],"fill":"ones"},"b":{"shape":[1024,1024],"fill":"ones"}}),
    );
    assert!(
        matches!(validate(&big, &tight), Err(CalcError::InvalidInput(m)) if m.contains("floating-point operations"))
    );
    assert!(
        validate(&big, &limits()).is_ok(),
        "1024x1024 matmul fits the default cost cap"
    );
    assert!(msg(json!({"op":"sleep","ms":10})).contains("unknown op \"sleep\""));
    assert!(msg(json!({"op":"relu","a":{"shape":[0,2],"fill":"ones"}})).contains("at least 1"));
}

#[test]
fn a_cancelled_job_stops_at_its_next_checkpoint() {
    let token = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let j = job(json!({"op":"sleep","ms":10_000}));
    let t = std::sync::Arc::clone(&token);
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        t.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let started = Instant::now();
    let cancelled = || token.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        execute(&j, &Device::Cpu, cancelled),
        Err(CalcError::Cancelled)
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    canceller.join().unwrap();
}

#[test]
fn sleep_is_test_mode_only_and_capped() {
    let test = CalcLimits {
        test_mode: true,
        max_sleep: Duration::from_millis(50),
        ..limits()
    };
    assert_eq!(
        validate(&job(json!({"op":"sleep","ms":10})), &test),
        Ok((vec![], 0))
    );
    let over = validate(&job(json!({"op":"sleep","ms":51})), &test);
    assert!(matches!(over, Err(CalcError::InvalidInput(m)) if m.contains("over the test maximum")));
    let out = execute(&job(json!({"op":"sleep","ms":1})), &Device::Cpu, || false).unwrap();
    assert_eq!(out.shape, Vec::<usize>::new());
}

#[test]
fn each_error_has_its_wire_code() {
    use app::error_code::ErrorCode;
    assert_eq!(
        CalcError::InvalidInput("x".into()).code(),
        ErrorCode::InvalidInput
    );
    assert_eq!(CalcError::Cancelled.code(), ErrorCode::Cancelled);
    assert_eq!(CalcError::Device("x".into()).code(), ErrorCode::DeviceError);
    assert_eq!(
        CalcError::InvalidInput("say why".into()).to_string(),
        "say why"
    );
}

#[test]
fn an_unvalidated_job_fails_instead_of_panicking() {
    let e = execute(&job(json!({"op":"relu"})), &Device::Cpu, || false);
    assert!(matches!(e, Err(CalcError::Device(m)) if m.contains("without operand a")));
    assert_eq!(
        execute(&job(json!({"op":"relu"})), &Device::Cpu, || true),
        Err(CalcError::Cancelled)
    );
}
