//! Picks each next token from a row of logits: the repeat penalty on recently generated tokens,
//! then greedy (temperature 0) or a draw among the top-k most likely tokens, narrowed to the
//! smallest set whose probability reaches top-p.
//!
//! Cost: one pass over the vocabulary (49,152 logits for SmolLM2) that keeps the k largest in a
//! small sorted buffer (most logits cost one comparison with the k-th largest), then work on k
//! entries only. Nothing sorts the whole vocabulary, and nothing allocates after the first call.
//!
//! It lives beside the forward pass so that it is compiled with full optimisation in every
//! profile (the workspace's `[profile.dev.package.turnstile-llm]`): it runs once per sequence per
//! step, on the device.
//!
//! Concurrency: a sampler belongs to one sequence; the engine samples the sequences of a step in
//! parallel, each with its own.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How to pick each next token.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplerConfig {
    /// Softmax temperature; 0 (or not a number) takes the most likely token every time.
    pub temperature: f32,
    /// Only the k most likely tokens are candidates.
    pub top_k: usize,
    /// Nucleus: the smallest set of the candidates whose probability reaches this (1 = all).
    pub top_p: f32,
    /// Penalty on tokens among the last `repeat_last_n` generated (1 = none).
    pub repeat_penalty: f32,
    /// How many recent tokens the penalty looks at.
    pub repeat_last_n: usize,
    /// The draws' seed: the same seed, logits and settings give the same tokens.
    pub seed: u64,
}

/// One sequence's sampler.
pub struct Sampler {
    /// Draws; seeded from the request, so the same seed, prompt and settings repeat an answer.
    rng: StdRng,
    /// Softmax temperature; 0 (or not a number) takes the most likely token.
    temperature: f32,
    /// How many of the most likely tokens a draw considers.
    top_k: usize,
    /// Nucleus: the smallest set of the top-k whose probability reaches this.
    top_p: f32,
    /// Penalty on tokens among the last `repeat_last_n` generated (1 = none).
    repeat_penalty: f32,
    /// How many recent tokens the penalty looks at.
    repeat_last_n: usize,
    /// The top-k candidates (logit, token), largest first; reused between calls.
    top: Vec<(f32, u32)>,
    /// Tokens already penalized this call (each is penalized once); reused.
    seen: Vec<u32>,
}

impl Sampler {
    /// A sampler for `config`.
    pub fn new(config: &SamplerConfig) -> Self {
        Sampler {
            rng: StdRng::seed_from_u64(config.seed),
            temperature: config.temperature,
            top_k: config.top_k.max(1),
            top_p: if config.top_p.is_nan() {
                0.0
            } else {
                config.top_p
            },
            repeat_penalty: config.repeat_penalty,
            repeat_last_n: config.repeat_last_n,
            top: Vec::with_capacity(config.top_k.clamp(1, 1024) + 1),
            seen: Vec::new(),
        }
    }

    /// Whether every draw takes the most likely token.
    fn greedy(&self) -> bool {
        self.temperature.is_nan() || self.temperature <= 0.0 || self.top_p <= 0.0
    }

    /// The next token after `generated`, from `logits` (changed in place by the penalty).
    pub fn sample(&mut self, logits: &mut [f32], generated: &[u32]) -> u32 {
        self.penalize(logits, generated);
        if self.greedy() {
            return argmax(logits);
        }
        self.top_k_of(logits);
        // Softmax over the candidates (largest first, so the first weight is 1).
        let t = self.temperature;
        let max = self.top[0].0;
        let mut total = 0.0f32;
        for c in &mut self.top {
            c.0 = ((c.0 - max) / t).exp();
            total += c.0;
        }
        // Nucleus: keep the shortest prefix whose probability reaches top_p.
        let mut kept = self.top.len();
        if self.top_p < 1.0 {
            let (mut mass, goal) = (0.0f32, self.top_p * total);
            for (i, c) in self.top.iter().enumerate() {
                mass += c.0;
                if mass >= goal {
                    kept = i + 1;
                    break;
                }
            }
        }
        let candidates = &self.top[..kept];
        let sum: f32 = candidates.iter().map(|c| c.0).sum();
        let mut draw = self.rng.random::<f32>() * sum;
        for c in candidates {
            if draw < c.0 {
                return c.1;
            }
            draw -= c.0;
        }
        candidates[kept - 1].1
    }

    /// Divides positive logits (multiplies negative ones) of recently generated tokens by the
    /// penalty, once per token.
    fn penalize(&mut self, logits: &mut [f32], generated: &[u32]) {
        if self.repeat_penalty == 1.0 || self.repeat_last_n == 0 || generated.is_empty() {
            return;
        }
        let recent = &generated[generated.len().saturating_sub(self.repeat_last_n)..];
        self.seen.clear();
        for &id in recent {
            if self.seen.contains(&id) {
                continue;
            }
            self.seen.push(id);
            if let Some(l) = logits.get_mut(id as usize) {
                *l = if *l >= 0.0 {
                    *l / self.repeat_penalty
                } else {
                    *l * self.repeat_penalty
                };
            }
        }
    }

    /// Fills `top` with the `top_k` largest logits, largest first (ties: the lower id first).
    fn top_k_of(&mut self, logits: &[f32]) {
        let k = self.top_k.min(logits.len()).max(1);
        self.top.clear();
        let mut floor = f32::NEG_INFINITY;
        for (id, &l) in logits.iter().enumerate() {
            if l.is_nan() || (self.top.len() == k && l <= floor) {
                continue;
            }
            // Insert keeping the buffer sorted, largest first; k is small.
            let at = self.top.partition_point(|c| c.0 >= l);
            self.top.insert(at, (l, id as u32));
            if self.top.len() > k {
                self.top.pop();
            }
            if self.top.len() == k {
                floor = self.top[k - 1].0;
            }
        }
    }
}

/// The index of the largest logit (the first, on a tie); 0 for an empty row.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = (0usize, f32::NEG_INFINITY);
    for (i, &l) in logits.iter().enumerate() {
        if l > best.1 {
            best = (i, l);
        }
    }
    best.0 as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(temperature: f32, top_k: usize, top_p: Option<f32>) -> SamplerConfig {
        SamplerConfig {
            temperature,
            top_k,
            top_p: top_p.unwrap_or(1.0),
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 7,
        }
    }

    #[test]
    fn greedy_takes_the_largest_logit() {
        for p in [
            params(0.0, 40, Some(0.9)),
            params(f32::NAN, 40, Some(0.9)),
            params(0.8, 40, Some(0.0)),
        ] {
            let mut s = Sampler::new(&p);
            assert_eq!(s.sample(&mut [0.1, 3.0, 0.2, 3.0], &[]), 1);
        }
    }

    #[test]
    fn top_k_matches_a_full_sort() {
        let mut rng = StdRng::seed_from_u64(1);
        for k in [1, 2, 5, 40, 100] {
            let logits: Vec<f32> = (0..5000).map(|_| rng.random_range(-10.0..10.0)).collect();
            let mut s = Sampler::new(&params(1.0, k, None));
            s.top_k_of(&logits);
            let mut sorted: Vec<(f32, u32)> = logits
                .iter()
                .enumerate()
                .map(|(i, &l)| (l, i as u32))
                .collect();
            sorted.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            assert_eq!(s.top, sorted[..k], "k = {k}");
        }
    }

    #[test]
    fn draws_follow_the_distribution_and_top_p_cuts_the_tail() {
        // Probabilities 0.5, 0.3, 0.2 at temperature 1.
        let row = [0.5f32.ln(), 0.3f32.ln(), 0.2f32.ln(), f32::NEG_INFINITY];
        let mut s = Sampler::new(&params(1.0, 40, None));
        let mut counts = [0u32; 4];
        for _ in 0..20_000 {
            counts[s.sample(&mut row.clone(), &[]) as usize] += 1;
        }
        let share = |i: usize| f64::from(counts[i]) / 20_000.0;
        assert!((share(0) - 0.5).abs() < 0.02, "{counts:?}");
        assert!((share(1) - 0.3).abs() < 0.02, "{counts:?}");
        assert_eq!(counts[3], 0);
        // top_p 0.75: 0.5 + 0.3 reaches it, so 0.2 is never drawn.
        let mut s = Sampler::new(&params(1.0, 40, Some(0.75)));
        for _ in 0..5_000 {
            assert_ne!(s.sample(&mut row.clone(), &[]), 2);
        }
        // top_k 1 is greedy.
        let mut s = Sampler::new(&params(1.0, 1, None));
        for _ in 0..100 {
            assert_eq!(s.sample(&mut row.clone(), &[]), 0);
        }
    }

    #[test]
    fn the_same_seed_repeats_the_draws() {
        let row: Vec<f32> = (0..100).map(|i| (i as f32 * 0.37).sin()).collect();
        let draws = |seed| {
            let mut s = Sampler::new(&SamplerConfig {
                seed,
                ..params(1.0, 40, Some(0.95))
            });
            (0..50)
                .map(|_| s.sample(&mut row.clone(), &[]))
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(3), draws(3));
        assert_ne!(draws(3), draws(4));
    }

    #[test]
    fn the_repeat_penalty_applies_once_per_recent_token() {
        let mut s = Sampler::new(&SamplerConfig {
            repeat_penalty: 2.0,
            repeat_last_n: 2,
            ..params(0.0, 40, None)
        });
        let mut row = [4.0f32, -1.0, 3.0];
        // Token 0 is outside the last two; 1 appears twice but is penalized once.
        s.penalize(&mut row, &[0, 1, 1]);
        assert_eq!(row, [4.0, -2.0, 3.0]);
        let mut row = [4.0f32, -1.0, 3.0];
        s.penalize(&mut row, &[0, 2]);
        assert_eq!(row, [2.0, -1.0, 1.5]);
        // Greedy after the penalty: 2.0 < 3.0 / 2 is false, so token 0 still wins.
        assert_eq!(argmax(&row), 0);
    }
}
