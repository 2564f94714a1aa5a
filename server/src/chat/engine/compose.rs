//! What one step feeds the model: every decoding lane's next token first (a stream never skips a
//! step), then the prompts still being read, oldest admission first, up to the step's token
//! budget. A long prompt (more than a step's budget) is read in chunks over several steps
//! between the others' decodes instead of stalling their streams for its whole length. A prompt
//! that fits in one step is never cut: when the rest of this step's budget is too small it waits
//! for the next step whole, because where a prompt is cut changes its logits a little (and so a
//! greedy answer), and a chat's answer should not depend on which chats arrived with it.
//!
//! Concurrency: pure functions of their arguments.

/// Tokens each lane feeds this step, in lane order (0: it sits this step out). `prompt_left`
/// holds each lane's unread prompt tokens (0 for a lane that is decoding). The prompts share
/// `max_step_tokens` less the decodes; one that fits in a step (`max_step_tokens` or fewer
/// tokens left) goes whole or waits (and the prompts after it wait too, so prompts are read in
/// admission order), a longer one is chunked. The first prompt to read this step always gets at
/// least one token, so prompts always progress.
pub fn compose(prompt_left: &[usize], max_step_tokens: usize) -> Vec<usize> {
    let decoding = prompt_left.iter().filter(|&&left| left == 0).count();
    let mut budget = max_step_tokens.saturating_sub(decoding).max(1);
    let mut fed_a_prompt = false;
    prompt_left
        .iter()
        .map(|&left| {
            if left == 0 {
                return 1;
            }
            let whole_or_wait = left <= max_step_tokens && left > budget;
            if whole_or_wait && fed_a_prompt {
                // It waits, and the prompts after it with it: reading stays in admission order.
                budget = 0;
                return 0;
            }
            let take = left.min(budget);
            budget -= take;
            fed_a_prompt |= take > 0;
            take
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
        assert_eq!(compose(&[0, 100, 0, 150], 128), [1, 100, 1, 26]);
        assert_eq!(compose(&[40, 40], 128), [40, 40]);
        assert!(compose(&[], 128).is_empty());
    }

    #[test]
    fn a_prompt_that_fits_one_step_is_never_cut_it_waits_whole() {
        // Four short prompts arriving together: the fourth does not fit beside the others and
        // waits for the next step instead of being cut.
        assert_eq!(compose(&[35, 35, 35, 35], 128), [35, 35, 35, 0]);
        assert_eq!(compose(&[0, 0, 0, 35], 128), [1, 1, 1, 35]);
        assert_eq!(compose(&[0, 100, 0, 50], 128), [1, 100, 1, 0]);
        // The ones after a waiting prompt wait with it (admission order), decodes still step.
        assert_eq!(compose(&[100, 50, 20, 0], 128), [100, 0, 0, 1]);
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
