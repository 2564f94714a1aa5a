//! Unit tests of the chat page controller's pure helpers: reconnection pauses and API paths.

use super::conversations::conversation_path;
use super::*;

#[test]
fn reconnect_pauses_grow_and_stay_bounded() {
    let delays: Vec<u32> = (1..=MAX_RECONNECTS).map(reconnect_delay_ms).collect();
    assert_eq!(delays, vec![250, 500, 1000, 2000, 4000, 4000]);
    assert_eq!(reconnect_delay_ms(0), 250);
    assert_eq!(reconnect_delay_ms(u32::MAX), 4000);
}

#[test]
fn conversation_paths_are_encoded() {
    assert_eq!(
        conversation_path(&ConversationId("abc123".into())),
        "/api/conversations/abc123"
    );
    assert_eq!(
        conversation_path(&ConversationId("../x".into())),
        "/api/conversations/..%2Fx"
    );
}
