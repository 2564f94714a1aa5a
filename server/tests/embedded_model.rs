//! The embedded default model that `scripts/model.sh` (run by `make run` and `make test`) puts in
//! the data directory: SmolLM2-135M-Instruct, its tokenizer in the GGUF metadata, and the Q8_0
//! re-quantization.

use candle_core::quantized::{gguf_file, GgmlDType};
use std::path::PathBuf;

fn model(name: &str) -> PathBuf {
    let data = std::env::var_os("TURNSTILE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data"));
    let path = data.join("models").join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/model.sh (make test does)",
        path.display()
    );
    path
}

fn read(name: &str) -> (gguf_file::Content, std::fs::File) {
    let mut f = std::fs::File::open(model(name)).unwrap();
    (gguf_file::Content::read(&mut f).unwrap(), f)
}

#[test]
fn the_embedded_model_carries_a_llama_architecture_and_its_chat_tokenizer() {
    let (c, _) = read("SmolLM2-135M-Instruct.Q8_0.gguf");
    assert_eq!(
        c.metadata["general.architecture"].to_string().unwrap(),
        "llama"
    );
    let tokens = c.metadata["tokenizer.ggml.tokens"].to_vec().unwrap();
    assert_eq!(tokens.len(), 49_152);
    assert_eq!(tokens[1].to_string().unwrap(), "<|im_start|>");
    assert_eq!(tokens[2].to_string().unwrap(), "<|im_end|>");
    assert!(!c.metadata["tokenizer.ggml.merges"]
        .to_vec()
        .unwrap()
        .is_empty());
}

#[test]
fn the_requantized_file_has_no_slow_q4_1_tensors_left() {
    let (orig, _) = read("SmolLM2-135M-Instruct.Q4_1.gguf");
    let (q8, mut f) = read("SmolLM2-135M-Instruct.Q8_0.gguf");
    assert_eq!(orig.tensor_infos.len(), q8.tensor_infos.len());
    let q41 = orig
        .tensor_infos
        .values()
        .filter(|t| t.ggml_dtype == GgmlDType::Q4_1)
        .count();
    assert!(
        q41 > 100,
        "the shipped model should be mostly Q4_1, found {q41}"
    );
    assert!(q8
        .tensor_infos
        .values()
        .all(|t| t.ggml_dtype != GgmlDType::Q4_1));
    for (name, info) in &orig.tensor_infos {
        assert_eq!(
            q8.tensor_infos[name].shape, info.shape,
            "{name} changed shape"
        );
    }
    let t = q8
        .tensor(&mut f, "blk.0.attn_q.weight", &candle_core::Device::Cpu)
        .unwrap();
    assert_eq!(t.dtype(), GgmlDType::Q8_0);
}
