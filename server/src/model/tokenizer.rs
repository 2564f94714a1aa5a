//! The tokenizer of a GGUF model, built from the file's own metadata with the `tokenizers`
//! crate: GPT-2 style byte-level BPE (`tokenizer.ggml.model = "gpt2"`) from
//! `tokenizer.ggml.tokens` and `tokenizer.ggml.merges`, with control tokens (type 3, such as
//! `<|im_start|>`; special, so skipped when decoding an answer) and user-defined tokens (type 4)
//! as added tokens that encode whole wherever they appear in the text. The pre-tokenizer follows
//! `tokenizer.ggml.pre`: `smollm`, `starcoder` and `refact` split digits one by one before the
//! byte-level split (GPT-2's regex, no prefix space); `gpt2`, `default` or none is the byte-level
//! split alone. Anything else (SentencePiece `llama`, `llama-bpe`, `qwen2`, ...) is refused with
//! an error naming it, rather than tokenized subtly wrong. So any GGUF of this family runs with
//! nothing but its file.
//!
//! Concurrency: pure construction; the tokenizer is immutable afterwards and shared.

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, Tokenizer};

/// GGUF token type of control tokens (`<|im_start|>`, `<|endoftext|>`, ...).
const CONTROL: i32 = 3;
/// GGUF token type of user-defined tokens (added tokens that encode whole).
const USER_DEFINED: i32 = 4;

fn strings<'a>(content: &'a Content, key: &str) -> Result<Vec<&'a str>, String> {
    let values = content
        .metadata
        .get(key)
        .ok_or_else(|| format!("the model file has no {key}"))?
        .to_vec()
        .map_err(|_| format!("{key} is not a list"))?;
    values
        .iter()
        .map(|v| {
            v.to_string()
                .map(String::as_str)
                .map_err(|_| format!("{key} holds a non-string"))
        })
        .collect()
}

fn token_types(content: &Content, n: usize) -> Vec<i32> {
    let Some(Ok(values)) = content
        .metadata
        .get("tokenizer.ggml.token_type")
        .map(Value::to_vec)
    else {
        return vec![1; n];
    };
    values.iter().map(|v| v.to_i32().unwrap_or(1)).collect()
}

/// Builds the tokenizer described by the GGUF's metadata.
pub fn tokenizer_from_gguf(content: &Content) -> Result<Tokenizer, String> {
    let model = content
        .metadata
        .get("tokenizer.ggml.model")
        .and_then(|v| v.to_string().ok())
        .map(String::as_str)
        .unwrap_or("");
    if model != "gpt2" {
        return Err(format!(
            "unsupported tokenizer {model:?}: only byte-level BPE (\"gpt2\") is supported"
        ));
    }
    let tokens = strings(content, "tokenizer.ggml.tokens")?;
    let merges = strings(content, "tokenizer.ggml.merges")?;
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| ((*t).to_owned(), i as u32))
        .collect();
    let merges: Vec<(String, String)> = merges
        .iter()
        .filter_map(|m| m.split_once(' '))
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| format!("the model's tokenizer is invalid: {e}"))?;
    let pre = content
        .metadata
        .get("tokenizer.ggml.pre")
        .and_then(|v| v.to_string().ok())
        .map(String::as_str)
        .unwrap_or("default");
    let byte_level: PreTokenizerWrapper = ByteLevel::new(false, true, true).into();
    let pre_tokenizer = match pre {
        // SmolLM (and StarCoder-style vocabularies): every digit is its own token.
        "smollm" | "starcoder" | "refact" => {
            Sequence::new(vec![Digits::new(true).into(), byte_level])
        }
        "default" | "gpt2" | "gpt-2" => Sequence::new(vec![byte_level]),
        other => {
            return Err(format!(
                "unsupported pre-tokenizer {other:?} (supported: smollm, starcoder, gpt2)"
            ))
        }
    };
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer
        .with_pre_tokenizer(Some(pre_tokenizer))
        .with_decoder(Some(ByteLevel::default()));
    let types = token_types(content, tokens.len());
    let special: Vec<AddedToken> = tokens
        .iter()
        .zip(types)
        .filter(|(_, t)| *t == CONTROL || *t == USER_DEFINED)
        .map(|(tok, t)| AddedToken::from((*tok).to_owned(), t == CONTROL))
        .collect();
    tokenizer
        .add_special_tokens(special)
        .map_err(|e| format!("the model's special tokens are invalid: {e}"))?;
    Ok(tokenizer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::local::tests::embedded_content;

    #[test]
    fn the_embedded_tokenizer_round_trips_and_knows_chatml() {
        let content = embedded_content();
        let t = tokenizer_from_gguf(&content).unwrap();
        assert_eq!(t.get_vocab_size(true), 49_152);
        for text in [
            "Hello, world!",
            "  leading spaces and\ttabs\nnew lines",
            "Accents: café, naïve, Ærøskøbing",
            "CJK: 東京は晴れ。한국어",
            "Emoji: 🦀🚀 and ZWJ 👩‍💻",
            "fn main() { println!(\"{}\", 1 + 2); }",
        ] {
            let ids = t.encode(text, false).unwrap().get_ids().to_vec();
            assert_eq!(t.decode(&ids, false).unwrap(), text);
        }
        let ids = t.encode("12345", false).unwrap().get_ids().to_vec();
        let digits: Vec<String> = ids
            .iter()
            .map(|&i| t.decode(&[i], false).unwrap())
            .collect();
        assert_eq!(
            digits,
            ["1", "2", "3", "4", "5"],
            "digits are split one by one"
        );
        let ids = t
            .encode("<|im_start|>user\nhi<|im_end|>", false)
            .unwrap()
            .get_ids()
            .to_vec();
        assert_eq!(ids.first(), Some(&1));
        assert_eq!(ids.last(), Some(&2));
        assert_eq!(t.token_to_id("<|endoftext|>"), Some(0));
    }

    #[test]
    fn other_tokenizers_are_refused_by_name() {
        let gguf = |model: &str, pre: &str| {
            let (model, pre) = (Value::String(model.into()), Value::String(pre.into()));
            let tokens = Value::Array(vec![Value::String("a".into())]);
            let merges = Value::Array(vec![]);
            let mut buf = std::io::Cursor::new(Vec::new());
            candle_core::quantized::gguf_file::write(
                &mut buf,
                &[
                    ("tokenizer.ggml.model", &model),
                    ("tokenizer.ggml.pre", &pre),
                    ("tokenizer.ggml.tokens", &tokens),
                    ("tokenizer.ggml.merges", &merges),
                ],
                &[],
            )
            .unwrap();
            buf.set_position(0);
            Content::read(&mut buf).unwrap()
        };
        let e = tokenizer_from_gguf(&gguf("llama", "default")).unwrap_err();
        assert!(e.contains("\"llama\""), "{e}");
        let e = tokenizer_from_gguf(&gguf("gpt2", "qwen2")).unwrap_err();
        assert!(e.contains("\"qwen2\""), "{e}");
        assert!(tokenizer_from_gguf(&gguf("gpt2", "gpt2")).is_ok());
    }
}
