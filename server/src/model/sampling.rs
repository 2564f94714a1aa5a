//! Sampling settings for generation, with the shipped defaults: a 135M model wanders, so the
//! defaults keep it focused (low temperature, nucleus sampling, a repeat penalty). Requests may
//! override max_tokens, temperature, top_p and stop. Plain data.

/// How to pick each next token.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingParams {
    /// Most tokens to generate.
    pub max_tokens: u32,
    /// Softmax temperature; 0 takes the most likely token every time.
    pub temperature: f32,
    /// Nucleus sampling: only the most likely tokens whose probabilities sum to this.
    pub top_p: Option<f32>,
    /// Penalty on tokens seen among the last `repeat_last_n` (1 = none).
    pub repeat_penalty: f32,
    /// How many recent tokens the repeat penalty looks at.
    pub repeat_last_n: usize,
    /// Stop before any of these would be emitted.
    pub stop: Vec<String>,
    /// The sampler's seed (the same seed, prompt and settings give the same answer).
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            max_tokens: 512,
            temperature: 0.3,
            top_p: Some(0.9),
            repeat_penalty: 1.2,
            repeat_last_n: 64,
            stop: Vec::new(),
            seed: 0,
        }
    }
}
