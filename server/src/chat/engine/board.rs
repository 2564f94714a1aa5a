//! The engine's published view of its lanes: what each occupied lane is expected to need still,
//! the measured time of a decode step, and how long answers turn out to be. The scheduler reads
//! it to tell a waiting chat its wait ("N chats ahead of you · about T s"); `/api/stats` reads the
//! lanes in use.
//!
//! A chat's expected length is its requested `max_tokens`, or the average length of recent
//! answers when that is shorter (most answers end well before their limit); its time is that many
//! decode steps at the measured step time, plus its prompt read at the measured rate. The wait of
//! the chat at position p among L lanes: lanes free up at times f_1 <= ... <= f_L (0 for a free
//! lane); each chat ahead takes the lane that frees first and holds it for the average answer
//! time D, so position p starts at f_((p-1) mod L + 1) + floor((p-1) / L) * D.
//!
//! Concurrency: written by the engine task after each step, read by the scheduler task; a small
//! lock, never held across an `.await`.

use parking_lot::Mutex;
use std::time::Duration;

/// The lanes, as last published.
pub struct LaneBoard {
    /// Lanes the engine may fill.
    lanes: usize,
    /// The published state.
    state: Mutex<BoardState>,
}

/// One occupied lane's expectations.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LaneLoad {
    /// Prompt tokens still to read.
    pub prompt_left: usize,
    /// Tokens generated so far.
    pub generated: usize,
    /// Most tokens it may generate.
    pub max_new: usize,
}

#[derive(Debug)]
struct BoardState {
    /// The occupied lanes (and admitted-but-waiting requests) as of the last step.
    occupied: Vec<LaneLoad>,
    /// Moving average of a decode step's time.
    step: Duration,
    /// Moving average of the time to read one prompt token.
    per_prompt_token: Duration,
    /// Moving average of answers' lengths in tokens (None until one has ended).
    answer_tokens: Option<f64>,
    /// Moving average of the requested `max_tokens` (the length a new chat may ask for).
    requested: f64,
    /// Moving average of prompt lengths.
    prompt_tokens: f64,
}

impl LaneBoard {
    /// A board for `lanes` lanes with first guesses: a 30 ms step, 1 ms per prompt token.
    pub fn new(lanes: usize) -> Self {
        LaneBoard {
            lanes: lanes.max(1),
            state: Mutex::new(BoardState {
                occupied: Vec::new(),
                step: Duration::from_millis(30),
                per_prompt_token: Duration::from_millis(1),
                answer_tokens: None,
                requested: 256.0,
                prompt_tokens: 64.0,
            }),
        }
    }

    /// Lanes the engine may fill.
    pub fn lanes(&self) -> usize {
        self.lanes
    }

    /// Lanes occupied now.
    pub fn occupied(&self) -> usize {
        self.state.lock().occupied.len()
    }

    /// Publishes the lanes after a step.
    pub fn publish(&self, occupied: Vec<LaneLoad>) {
        self.state.lock().occupied = occupied;
    }

    /// Records a step that decoded (its time) and read `prompt_tokens` of prompts.
    pub fn record_step(&self, took: Duration, prompt_tokens: usize, decodes: usize) {
        let mut s = self.state.lock();
        if decodes > 0 && prompt_tokens == 0 {
            s.step = (s.step * 7 + took) / 8;
        } else if prompt_tokens > 0 {
            let per = took / prompt_tokens as u32;
            s.per_prompt_token = (s.per_prompt_token * 7 + per) / 8;
        }
    }

    /// Records a request admitted: its prompt and requested length.
    pub fn record_admitted(&self, prompt_tokens: usize, max_new: usize) {
        let mut s = self.state.lock();
        s.prompt_tokens = (s.prompt_tokens * 7.0 + prompt_tokens as f64) / 8.0;
        s.requested = (s.requested * 7.0 + max_new as f64) / 8.0;
    }

    /// Records an answer's length.
    pub fn record_answer(&self, tokens: usize) {
        let mut s = self.state.lock();
        let t = tokens as f64;
        s.answer_tokens = Some(s.answer_tokens.map_or(t, |a| (a * 7.0 + t) / 8.0));
    }

    /// The expected wait of the chat at `position` (1 = next) of the lane line.
    pub fn eta(&self, position: u64) -> Duration {
        let s = self.state.lock();
        let expect = |max_new: f64| match s.answer_tokens {
            Some(a) => a.min(max_new),
            None => max_new,
        };
        let step = s.step.as_secs_f64();
        let per_prompt = s.per_prompt_token.as_secs_f64();
        let mut free: Vec<f64> = s
            .occupied
            .iter()
            .map(|l| {
                let left = (expect(l.max_new as f64) - l.generated as f64).max(1.0);
                left * step + l.prompt_left as f64 * per_prompt
            })
            .collect();
        free.resize(self.lanes.max(free.len()), 0.0);
        free.sort_by(f64::total_cmp);
        // Only the L lanes that free first matter (extra occupants wait for a lane themselves).
        free.truncate(self.lanes);
        let per_chat = expect(s.requested) * step + s.prompt_tokens * per_prompt;
        let ahead = position.saturating_sub(1) as usize;
        let round = (ahead / self.lanes) as f64;
        Duration::from_secs_f64(free[ahead % self.lanes] + round * per_chat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Milliseconds, rounded (the estimate is computed in floating point).
    fn ms(d: Duration) -> u64 {
        (d.as_secs_f64() * 1e3).round() as u64
    }

    #[test]
    fn free_lanes_mean_no_wait_and_full_lanes_wait_for_the_first_to_free() {
        let b = LaneBoard::new(2);
        assert_eq!(ms(b.eta(1)), 0);
        assert_eq!(ms(b.eta(2)), 0);
        // Step 30 ms; answers ask 256 tokens and none has ended: 256 steps each.
        b.publish(vec![
            LaneLoad {
                prompt_left: 0,
                generated: 200,
                max_new: 256,
            },
            LaneLoad {
                prompt_left: 0,
                generated: 56,
                max_new: 256,
            },
        ]);
        assert_eq!(ms(b.eta(1)), 56 * 30);
        assert_eq!(ms(b.eta(2)), 200 * 30);
        // The third waits for the first lane to free, then a whole average chat.
        assert_eq!(ms(b.eta(3)), 56 * 30 + 256 * 30 + 64);
    }

    #[test]
    fn short_answers_shorten_the_estimate() {
        let b = LaneBoard::new(1);
        b.publish(vec![LaneLoad {
            prompt_left: 0,
            generated: 10,
            max_new: 512,
        }]);
        let before = b.eta(1);
        for _ in 0..50 {
            b.record_answer(40);
        }
        let after = b.eta(1);
        assert!(after < before / 10, "{before:?} -> {after:?}");
        assert!(ms(after) >= 29, "at least a step: {after:?}");
    }

    #[test]
    fn measured_steps_move_the_estimate() {
        let b = LaneBoard::new(1);
        b.publish(vec![LaneLoad {
            prompt_left: 0,
            generated: 0,
            max_new: 100,
        }]);
        for _ in 0..100 {
            b.record_step(Duration::from_millis(10), 0, 8);
        }
        assert!((ms(b.eta(1)) as i64 - 1000).abs() <= 20, "{:?}", b.eta(1));
    }
}
