//! Sampling settings for generation, with the shipped defaults, and how generated tokens become
//! text: [`SamplingParams`] configures a [`turnstile_llm::Sampler`]; [`TextStream`] turns token
//! ids into pieces of text that are always whole UTF-8 characters and never contain (any start
//! of) a stop sequence.
//!
//! The defaults suit a 135M model, which wanders: a low temperature, nucleus sampling and a
//! repeat penalty keep it focused. Requests may override max_tokens, temperature, top_p and stop.
//!
//! Concurrency: plain data; a [`TextStream`] belongs to one generation (it may move between
//! threads with it).

use std::sync::Arc;

/// How to pick each next token.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingParams {
    /// Most tokens to generate.
    pub max_tokens: u32,
    /// Softmax temperature; 0 takes the most likely token every time.
    pub temperature: f32,
    /// Nucleus sampling: only the most likely tokens whose probabilities sum to this.
    pub top_p: Option<f32>,
    /// Only the k most likely tokens are candidates (before top_p narrows them further).
    pub top_k: usize,
    /// Penalty on tokens generated among the last `repeat_last_n` (1 = none). The prompt is not
    /// penalised: an answer may repeat the question's words.
    pub repeat_penalty: f32,
    /// How many recent tokens the repeat penalty looks at.
    pub repeat_last_n: usize,
    /// Stop before any of these would be emitted (empty strings are ignored).
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
            top_k: 40,
            repeat_penalty: 1.2,
            repeat_last_n: 64,
            stop: Vec::new(),
            seed: 0,
        }
    }
}

impl SamplingParams {
    /// The sampler's settings for these parameters (no top-p is top-p 1: every candidate).
    pub fn sampler(&self) -> turnstile_llm::SamplerConfig {
        turnstile_llm::SamplerConfig {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p.unwrap_or(1.0),
            repeat_penalty: self.repeat_penalty,
            repeat_last_n: self.repeat_last_n,
            seed: self.seed,
        }
    }
}

/// Generated text, handed out as it becomes final: whole characters only, and nothing that is or
/// could still become a stop sequence.
pub struct TextStream {
    /// Decodes the ids.
    tokenizer: Arc<tokenizers::Tokenizer>,
    /// The non-empty stop sequences.
    stop: Vec<String>,
    /// Every id generated so far.
    ids: Vec<u32>,
    /// Bytes of the decoded text already handed out.
    emitted: usize,
    /// Everything handed out (the answer so far).
    text: String,
    /// A stop sequence was reached: nothing more is handed out.
    stopped: bool,
}

impl TextStream {
    /// An empty stream for one answer.
    pub fn new(tokenizer: Arc<tokenizers::Tokenizer>, stop: &[String]) -> Self {
        TextStream {
            tokenizer,
            stop: stop.iter().filter(|s| !s.is_empty()).cloned().collect(),
            ids: Vec::new(),
            emitted: 0,
            text: String::new(),
            stopped: false,
        }
    }

    /// Adds a generated token and hands out what became final. Returns true once a stop sequence
    /// is reached (the text before it is handed out; the sequence and what follows are not).
    pub fn push(&mut self, id: u32, on_piece: &mut dyn FnMut(&str)) -> Result<bool, String> {
        if self.stopped {
            return Ok(true);
        }
        self.ids.push(id);
        let full = self.decode()?;
        if full.ends_with('\u{FFFD}') {
            return Ok(false); // half a character so far: wait for the rest
        }
        let fresh = &full[self.emitted..];
        let mut end = full.len();
        if let Some(at) = self.stop.iter().filter_map(|s| fresh.find(s)).min() {
            end = self.emitted + at;
            self.stopped = true;
        } else {
            // Hold back the longest tail that begins some stop sequence.
            for s in &self.stop {
                for (i, _) in s.char_indices().skip(1) {
                    if fresh.ends_with(&s[..i]) {
                        end = end.min(full.len() - i);
                    }
                }
            }
        }
        self.emit(&full, end, on_piece);
        Ok(self.stopped)
    }

    /// Ends the answer: hands out any text held back for a stop sequence that never came (but
    /// not a trailing half character), and returns the whole answer.
    pub fn finish(mut self, on_piece: &mut dyn FnMut(&str)) -> Result<String, String> {
        if !self.stopped {
            let full = self.decode()?;
            let end = full.trim_end_matches('\u{FFFD}').len().max(self.emitted);
            self.emit(&full, end, on_piece);
        }
        Ok(self.text)
    }

    fn decode(&self) -> Result<String, String> {
        self.tokenizer
            .decode(&self.ids, true)
            .map_err(|e| e.to_string())
    }

    fn emit(&mut self, full: &str, end: usize, on_piece: &mut dyn FnMut(&str)) {
        if end > self.emitted && full.is_char_boundary(end) {
            let piece = &full[self.emitted..end];
            on_piece(piece);
            self.text.push_str(piece);
            self.emitted = end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::local::tests::embedded_content;
    use crate::model::tokenizer::tokenizer_from_gguf;

    /// Streams `text` token by token (its own tokenization), returning the pieces, the answer
    /// and whether a stop sequence ended it.
    fn stream(text: &str, stop: &[&str]) -> (Vec<String>, String, bool) {
        let tokenizer = tokenizer_from_gguf(&embedded_content()).unwrap();
        let stop: Vec<String> = stop.iter().map(|s| s.to_string()).collect();
        let ids = tokenizer.encode(text, false).unwrap().get_ids().to_vec();
        let mut s = TextStream::new(Arc::new(tokenizer), &stop);
        let mut pieces = vec![];
        let mut stopped = false;
        for id in ids {
            stopped = s.push(id, &mut |p| pieces.push(p.to_owned())).unwrap();
            if stopped {
                break;
            }
        }
        let text = s.finish(&mut |p| pieces.push(p.to_owned())).unwrap();
        (pieces, text, stopped)
    }

    #[test]
    fn pieces_are_whole_characters_and_add_up_to_the_text() {
        let text = "Crab 🦀, café, 東京, 👩‍💻 and 12345.";
        let (pieces, out, stopped) = stream(text, &[]);
        assert_eq!(out, text);
        assert_eq!(pieces.concat(), text);
        assert!(!stopped);
        assert!(pieces.iter().all(|p| !p.contains('\u{FFFD}')), "{pieces:?}");
        assert!(pieces.len() > 10, "streamed, not handed out at the end");
    }

    #[test]
    fn stop_sequences_and_their_starts_are_held_back() {
        let (pieces, out, stopped) = stream("Hello there. User: next question", &["User:", ""]);
        assert_eq!(out, "Hello there. ");
        assert_eq!(pieces.concat(), out);
        assert!(stopped);
        // A tail that only looks like the start of a stop sequence comes out at the end.
        let (pieces, out, stopped) = stream("one two Us", &["User:"]);
        assert_eq!(out, "one two Us");
        assert_eq!(pieces.last().map(String::as_str), Some("Us"));
        assert!(!stopped);
    }
}
