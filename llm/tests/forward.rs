//! The batched forward on a tiny random llama (built in memory, no model file needed): exact
//! agreement with candle's `quantized_llama` under continuous batching, the tensor path, and the
//! error cases (which must leave every cache untouched).

mod common;

use candle_core::quantized::GgmlDType;
use candle_core::Device;
use candle_transformers::models::quantized_llama::ModelWeights;
use common::candle_greedy;
use common::schedule::{run, Seq};
use common::tiny::{self, CONTEXT, VOCAB};
use turnstile_llm::{Chunk, Error, ExecPath, LlamaModel};

fn ours(bytes: &[u8], path: ExecPath) -> LlamaModel {
    let (content, mut r) = tiny::open(bytes);
    LlamaModel::from_gguf_with(&content, &mut r, &Device::Cpu, path).expect("load tiny model")
}

fn candle(bytes: &[u8]) -> ModelWeights {
    let (content, mut r) = tiny::open(bytes);
    ModelWeights::from_gguf(content, &mut r, &Device::Cpu).expect("candle tiny model")
}

fn prompt(len: usize, seed: u32) -> Vec<u32> {
    (0..len as u32)
        .map(|i| (i * 37 + seed * 11 + 3) % VOCAB as u32)
        .collect()
}

const PROMPTS: [usize; 3] = [3, 9, 14];
const GENERATE: usize = 12;

/// Runs the three sequences under `joins`/`chunk` and compares every logit with candle fed the
/// same way, bit for bit.
fn check(
    model: &LlamaModel,
    reference: &mut ModelWeights,
    joins: [usize; 3],
    chunk: usize,
    what: &str,
) {
    let mut seqs: Vec<Seq> = PROMPTS
        .iter()
        .zip(joins)
        .enumerate()
        .map(|(i, (&len, join))| Seq::new(model, prompt(len, i as u32), GENERATE, join))
        .collect();
    run(model, &mut seqs, chunk);
    for (i, s) in seqs.iter().enumerate() {
        let (want, rows) = candle_greedy(reference, &s.prompt, GENERATE, chunk);
        assert_eq!(s.out, want, "{what}: sequence {i} tokens");
        for (t, (a, b)) in s.rows.iter().zip(&rows).enumerate() {
            let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(
                same,
                "{what}: sequence {i} token {t}: logits differ from candle"
            );
        }
    }
}

#[test]
fn batched_native_forward_equals_candle_bit_for_bit() {
    for tied in [true, false] {
        let bytes = tiny::gguf(tied, GgmlDType::Q8_0);
        let model = ours(&bytes, ExecPath::Native);
        let mut reference = candle(&bytes);
        check(&model, &mut reference, [0, 0, 0], usize::MAX, "together");
        check(&model, &mut reference, [0, 0, 0], 4, "chunks of 4");
        check(
            &model,
            &mut reference,
            [0, 2, 5],
            1,
            "joining, token by token",
        );
        check(&model, &mut reference, [3, 0, 1], 5, "joining, chunks of 5");
    }
}

#[test]
fn tensor_path_equals_candle_bit_for_bit() {
    let bytes = tiny::gguf(true, GgmlDType::Q8_0);
    let model = ours(&bytes, ExecPath::Tensor);
    let mut reference = candle(&bytes);
    check(
        &model,
        &mut reference,
        [0, 0, 0],
        usize::MAX,
        "tensor together",
    );
    check(&model, &mut reference, [0, 2, 5], 4, "tensor joining");
}

#[test]
fn rejects_bad_chunks_and_leaves_caches_untouched() {
    let bytes = tiny::gguf(true, GgmlDType::Q8_0);
    for path in [ExecPath::Native, ExecPath::Tensor] {
        let model = ours(&bytes, path);
        let other = ours(
            &bytes,
            if path == ExecPath::Native {
                ExecPath::Tensor
            } else {
                ExecPath::Native
            },
        );
        let mut a = model.new_cache(8).unwrap();
        let mut b = model.new_cache(8).unwrap();
        let mut foreign = other.new_cache(8).unwrap();
        let ok = [1u32, 2, 3];
        model
            .forward(&mut [Chunk {
                tokens: &ok,
                cache: &mut a,
                want_logits: false,
            }])
            .unwrap();
        let cases: Vec<(Vec<u32>, bool, &str)> = vec![
            (vec![], false, "empty"),
            (vec![1, VOCAB as u32], false, "out of range"),
            (vec![1], true, "foreign cache"),
            (vec![1; 9], false, "longer than the cache"),
        ];
        for (tokens, use_foreign, what) in cases {
            let good = [4u32];
            let cache = if use_foreign { &mut foreign } else { &mut b };
            let err = model
                .forward(&mut [
                    Chunk {
                        tokens: &good,
                        cache: &mut a,
                        want_logits: true,
                    },
                    Chunk {
                        tokens: &tokens,
                        cache,
                        want_logits: true,
                    },
                ])
                .unwrap_err();
            let expected = match what {
                "empty" => matches!(err, Error::EmptyChunk { chunk: 1 }),
                "out of range" => matches!(
                    err,
                    Error::TokenOutOfRange {
                        chunk: 1,
                        token: 100,
                        ..
                    }
                ),
                "foreign cache" => matches!(err, Error::CacheMismatch { chunk: 1, .. }),
                _ => matches!(
                    err,
                    Error::CacheFull {
                        chunk: 1,
                        len: 0,
                        new: 9,
                        capacity: 8
                    }
                ),
            };
            assert!(expected, "{path:?} {what}: unexpected {err:?}");
            assert_eq!(
                (a.len(), b.len()),
                (3, 0),
                "{path:?} {what}: no cache may move"
            );
        }
        // Filling b to 3 makes 6 more tokens overflow its capacity of 8.
        model
            .forward(&mut [Chunk {
                tokens: &ok,
                cache: &mut b,
                want_logits: false,
            }])
            .unwrap();
        let six = [1u32; 6];
        let err = model
            .forward(&mut [Chunk {
                tokens: &six,
                cache: &mut b,
                want_logits: true,
            }])
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::CacheFull {
                    len: 3,
                    new: 6,
                    capacity: 8,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(b.len(), 3);
    }
}

#[test]
fn logits_only_for_chunks_that_want_them_in_batch_order() {
    let bytes = tiny::gguf(false, GgmlDType::Q8_0);
    let model = ours(&bytes, ExecPath::Native);
    let (p0, p1, p2) = (prompt(5, 0), prompt(4, 1), prompt(6, 2));
    let mut caches: Vec<_> = (0..3).map(|_| model.new_cache(16).unwrap()).collect();
    let [c0, c1, c2] = caches.as_mut_slice() else {
        unreachable!()
    };
    let l = model
        .forward(&mut [
            Chunk {
                tokens: &p0,
                cache: c0,
                want_logits: true,
            },
            Chunk {
                tokens: &p1,
                cache: c1,
                want_logits: false,
            },
            Chunk {
                tokens: &p2,
                cache: c2,
                want_logits: true,
            },
        ])
        .unwrap();
    assert_eq!((l.rows(), l.vocab()), (2, VOCAB));
    assert_eq!(
        caches.iter().map(|c| c.len()).collect::<Vec<_>>(),
        [5, 4, 6]
    );
    // Row 1 is sequence 2's last token: the same as running it alone.
    let mut alone = model.new_cache(16).unwrap();
    let l2 = model
        .forward(&mut [Chunk {
            tokens: &p2,
            cache: &mut alone,
            want_logits: true,
        }])
        .unwrap();
    assert_eq!(l.row(1), l2.row(0));
    let none = model
        .forward(&mut [Chunk {
            tokens: &[7],
            cache: &mut alone,
            want_logits: false,
        }])
        .unwrap();
    assert_eq!(none.rows(), 0);
}

#[test]
fn caches_size_truncate_and_reuse() {
    let bytes = tiny::gguf(true, GgmlDType::Q8_0);
    let model = ours(&bytes, ExecPath::Native);
    assert!(matches!(model.new_cache(0), Err(Error::BadCapacity { .. })));
    assert!(matches!(
        model.new_cache(CONTEXT + 1),
        Err(Error::BadCapacity { .. })
    ));
    let mut c = model.new_cache(20).unwrap();
    assert_eq!(c.bytes(), 20 * model.kv_bytes_per_token());
    assert_eq!(model.kv_bytes_per_token(), 2 * 2 * 128 * 4);
    let p = prompt(10, 3);
    let first = model
        .forward(&mut [Chunk {
            tokens: &p,
            cache: &mut c,
            want_logits: true,
        }])
        .unwrap();
    // Regenerate from the 6-token prefix: the same logits as a fresh cache fed 10 tokens.
    c.truncate(6);
    let again = model
        .forward(&mut [Chunk {
            tokens: &p[6..],
            cache: &mut c,
            want_logits: true,
        }])
        .unwrap();
    let mut fresh = model.new_cache(20).unwrap();
    model
        .forward(&mut [Chunk {
            tokens: &p[..6],
            cache: &mut fresh,
            want_logits: false,
        }])
        .unwrap();
    let want = model
        .forward(&mut [Chunk {
            tokens: &p[6..],
            cache: &mut fresh,
            want_logits: true,
        }])
        .unwrap();
    assert_eq!(again, want);
    assert_eq!(first.rows(), 1);
    c.clear();
    assert!(c.is_empty());
}

#[test]
fn refuses_weights_that_are_not_q8_0() {
    let bytes = tiny::gguf(true, GgmlDType::F16);
    let (content, mut r) = tiny::open(&bytes);
    match LlamaModel::from_gguf(&content, &mut r, &Device::Cpu) {
        Err(Error::Tensor { name, reason }) => {
            assert_eq!(name, "token_embd.weight");
            assert!(reason.contains("Q8_0"), "{reason}");
        }
        other => panic!("expected a dtype error, got {:?}", other.err()),
    }
}

#[test]
fn concurrent_forwards_on_one_model_agree_with_sequential_ones() {
    let bytes = tiny::gguf(true, GgmlDType::Q8_0);
    let model = ours(&bytes, ExecPath::Native);
    let run_one = |seed: u32| {
        let p = prompt(12, seed);
        let mut c = model.new_cache(12).unwrap();
        model
            .forward(&mut [Chunk {
                tokens: &p,
                cache: &mut c,
                want_logits: true,
            }])
            .unwrap()
    };
    let sequential: Vec<_> = (0..4).map(run_one).collect();
    let parallel: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|i| s.spawn(move || run_one(i))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(sequential, parallel);
}

#[test]
fn thread_pools_of_any_size_give_the_same_logits() {
    let bytes = tiny::gguf(false, GgmlDType::Q8_0);
    let model = ours(&bytes, ExecPath::Native);
    let step = || {
        let mut caches: Vec<_> = (0..3).map(|_| model.new_cache(20).unwrap()).collect();
        let ps: Vec<Vec<u32>> = (0..3).map(|i| prompt(5 + 3 * i, i as u32)).collect();
        let mut batch: Vec<Chunk> = ps
            .iter()
            .zip(caches.iter_mut())
            .map(|(p, cache)| Chunk {
                tokens: p,
                cache,
                want_logits: true,
            })
            .collect();
        model.forward(&mut batch).unwrap()
    };
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(step);
    let three = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap()
        .install(step);
    assert_eq!(one, three);
}
