//! Language models on the shared device: the [`manager`] that loads each configured model once,
//! shares it, and unloads it after its keep-alive; the [`local`] model (the project's batched
//! llama forward from `turnstile-llm`) with the GGUF's own [`tokenizer`] and chat [`template`];
//! one answer in progress, [`sequence`] (sampled by `turnstile-llm`'s sampler), with the
//! [`sampling`] defaults; and
//! [`quantize`], the one-off rewrite of slow Q4_1 weights as Q8_0.

pub mod local;
pub mod manager;
pub mod quantize;
pub mod sampling;
pub mod sequence;
pub mod template;
pub mod tokenizer;
