//! What one step feeds the model: every decoding lane's next token first (a stream never skips a
//! step), then chunks of the prompts still being read, oldest admission first, up to the step's
//! token budget. A long prompt is thus read over several steps between the others' decodes
//! instead of stalling their streams for its whole length.
//!
//! Concurrency: pure functions of their arguments.

/// Tokens each lane feeds this step, in lane order (0: it sits this step out). `prompt_left`
/// holds each lane's unread prompt tokens (0 for a lane that is decoding). The prompt chunks
/// share `max_step_tokens` less the decodes, but at least one token goes to the oldest unread
/// prompt, so prompts always progress.
pub fn compose(prompt_left: &[usize], max_step_tokens: usize) -> Vec<usize> {
    let decoding = prompt_left.iter().filter(|&&left| left == 0).count();
    let mut budget = max_step_tokens.saturating_sub(decoding).max(1);
    prompt_left
        .iter()
        .map(|&left| {
            if left == 0 {
                1
            } else {
                let take = left.min(budget);
                budget -= take;
                take
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_always_step_and_prompts_share_the_rest_oldest_first() {
        assert_eq!(compose(&[0, 0, 0], 128), [1, 1, 1]);
        assert_eq!(compose(&[0, 300, 0, 50], 128), [1, 126, 1, 0]);
        assert_eq!(compose(&[0, 100, 0, 50], 128), [1, 100, 1, 26]);
        assert_eq!(compose(&[40, 40], 128), [40, 40]);
        assert!(compose(&[], 128).is_empty());
    }

    #[test]
    fn a_prompt_progresses_even_when_decodes_fill_the_budget() {
        assert_eq!(compose(&[0, 0, 0, 9, 9], 3), [1, 1, 1, 1, 0]);
        assert_eq!(compose(&[5], 0), [1]);
    }

    #[test]
    fn a_step_never_feeds_more_than_the_budget_beyond_its_decodes() {
        for budget in [1, 7, 64, 128] {
            let lefts = [0, 500, 0, 3, 77, 0, 12];
            let plan = compose(&lefts, budget);
            let decodes = lefts.iter().filter(|&&l| l == 0).count();
            let fed: usize = plan.iter().sum();
            assert!(fed <= budget.max(decodes + 1), "{plan:?} at {budget}");
            for (take, left) in plan.iter().zip(lefts) {
                assert!(*take <= left.max(1));
            }
        }
    }
}
