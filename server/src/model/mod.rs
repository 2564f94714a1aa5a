//! Language models on the shared device: the [`manager`] that loads each configured model once,
//! shares it, and unloads it after its keep-alive; the [`local`] engine (candle's quantized llama)
//! with the GGUF's own [`tokenizer`] and chat [`template`] and the [`sampling`] defaults; and
//! [`quantize`], the one-off rewrite of slow Q4_1 weights as Q8_0.

pub mod local;
pub mod manager;
pub mod quantize;
pub mod sampling;
pub mod template;
pub mod tokenizer;
