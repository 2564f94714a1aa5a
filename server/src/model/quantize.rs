//! Re-quantizing a GGUF model file once, at setup. candle has SIMD kernels for Q4_0, Q8_0 and the
//! K-quants but not for Q4_1 (the embedded SmolLM2's format), which decodes 2-4x slower; so the
//! setup step rewrites the Q4_1 (and Q5_0/Q5_1) tensors as Q8_0, keeping every metadata entry
//! (the tokenizer lives there) and every other tensor byte for byte.
//!
//! Concurrency: a plain blocking function over two files; used by the `turnstile-requantize`
//! command, never by the server while it runs.

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::Device;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;

/// What a re-quantization did.
#[derive(Debug, PartialEq)]
pub struct Report {
    /// Tensors rewritten in the target format.
    pub converted: usize,
    /// Tensors copied unchanged (already fast, or not block-aligned for the target).
    pub kept: usize,
}

/// The formats worth converting: quantized, but without fast kernels in candle.
fn is_slow(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

/// Rewrites `input` as `output`, converting slow quantized tensors to `target`.
pub fn requantize(input: &Path, output: &Path, target: GgmlDType) -> candle_core::Result<Report> {
    let mut reader = BufReader::new(File::open(input)?);
    let content = gguf_file::Content::read(&mut reader)?;
    // Keep the file's own tensor order.
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort_by_key(|n| content.tensor_infos[*n].offset);
    let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(names.len());
    let mut report = Report {
        converted: 0,
        kept: 0,
    };
    for name in names {
        let q = content.tensor(&mut reader, name, &Device::Cpu)?;
        let last_dim = q.shape().dims().last().copied().unwrap_or(0);
        let q = if is_slow(q.dtype()) && last_dim % target.block_size() == 0 {
            report.converted += 1;
            QTensor::quantize(&q.dequantize(&Device::Cpu)?, target)?
        } else {
            report.kept += 1;
            q
        };
        tensors.push((name.clone(), q));
    }
    let mut metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    metadata.sort_by_key(|(k, _)| *k);
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let tmp = output.with_extension("partial");
    {
        let mut w = BufWriter::new(File::create(&tmp)?);
        gguf_file::write(&mut w, &metadata, &tensor_refs)?;
        std::io::Write::flush(&mut w)?;
    }
    // Only a complete file ever appears under the final name.
    std::fs::rename(&tmp, output)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Tensor;
    use gguf_file::Value;

    #[test]
    fn q4_1_tensors_become_q8_0_and_everything_else_is_kept() {
        let dir = std::env::temp_dir().join(format!("turnstile-quant-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (input, output) = (dir.join("in.gguf"), dir.join("out.gguf"));
        let dev = Device::Cpu;
        let weights = Tensor::randn(0f32, 1.0, (4, 64), &dev).unwrap();
        let q41 = QTensor::quantize(&weights, GgmlDType::Q4_1).unwrap();
        let norm = QTensor::quantize(&Tensor::new(&[1f32, 2., 3.], &dev).unwrap(), GgmlDType::F32)
            .unwrap();
        let tokens = Value::Array(vec![
            Value::String("<|im_start|>".into()),
            Value::String("hi".into()),
        ]);
        let arch = Value::String("llama".into());
        gguf_file::write(
            &mut File::create(&input).unwrap(),
            &[
                ("general.architecture", &arch),
                ("tokenizer.ggml.tokens", &tokens),
            ],
            &[("blk.0.attn_q.weight", &q41), ("output_norm.weight", &norm)],
        )
        .unwrap();

        let report = requantize(&input, &output, GgmlDType::Q8_0).unwrap();
        assert_eq!(
            report,
            Report {
                converted: 1,
                kept: 1
            }
        );

        let mut r = File::open(&output).unwrap();
        let c = gguf_file::Content::read(&mut r).unwrap();
        assert_eq!(
            c.metadata["general.architecture"].to_string().unwrap(),
            "llama"
        );
        assert_eq!(
            c.metadata["tokenizer.ggml.tokens"].to_vec().unwrap().len(),
            2
        );
        let q8 = c.tensor(&mut r, "blk.0.attn_q.weight", &dev).unwrap();
        assert_eq!(q8.dtype(), GgmlDType::Q8_0);
        let before = q41
            .dequantize(&dev)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let after = q8
            .dequantize(&dev)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let max = before.iter().fold(0f32, |m, x| m.max(x.abs()));
        let worst = before
            .iter()
            .zip(&after)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            worst <= max / 100.0,
            "Q8_0 drifted {worst} from the Q4_1 values (max {max})"
        );
        let kept = c.tensor(&mut r, "output_norm.weight", &dev).unwrap();
        assert_eq!(kept.dtype(), GgmlDType::F32);
        assert_eq!(
            kept.dequantize(&dev).unwrap().to_vec1::<f32>().unwrap(),
            vec![1., 2., 3.]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
