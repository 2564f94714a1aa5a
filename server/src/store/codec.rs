//! The column encodings both backends share: timestamps as unix milliseconds in, RFC 3339 out;
//! roles and statuses as the lower-case words the schemas' `CHECK`s list.
//!
//! Concurrency: pure functions; nothing here holds state or touches a connection.

use app::chat::{MessageStatus, Role};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A time as unix milliseconds (0 before 1970).
pub(super) fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Now, as unix milliseconds (this web instance's clock, on either backend).
pub(super) fn now_ms() -> i64 {
    millis(SystemTime::now())
}

/// Unix milliseconds as RFC 3339 with milliseconds, e.g. `2025-01-02T03:04:05.678Z`.
pub(super) fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0).unsigned_abs());
    humantime::format_rfc3339_millis(t).to_string()
}

/// A role's column value (the `CHECK` in the schema lists the same three).
pub(super) fn role_str(r: Role) -> &'static str {
    r.as_str()
}

/// A role from its column value.
pub(super) fn parse_role(s: &str) -> Role {
    match s {
        "system" => Role::System,
        "assistant" => Role::Assistant,
        _ => Role::User,
    }
}

/// A status's column value (the `CHECK` in the schema lists the same three).
pub(super) fn status_str(s: MessageStatus) -> &'static str {
    match s {
        MessageStatus::Complete => "complete",
        MessageStatus::Stopped => "stopped",
        MessageStatus::Failed => "failed",
    }
}

/// A status from its column value.
pub(super) fn parse_status(s: &str) -> MessageStatus {
    match s {
        "stopped" => MessageStatus::Stopped,
        "failed" => MessageStatus::Failed,
        _ => MessageStatus::Complete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codecs_round_trip_and_times_are_rfc3339() {
        for r in [Role::System, Role::User, Role::Assistant] {
            assert_eq!(parse_role(role_str(r)), r);
        }
        for s in [
            MessageStatus::Complete,
            MessageStatus::Stopped,
            MessageStatus::Failed,
        ] {
            assert_eq!(parse_status(status_str(s)), s);
        }
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(millis(UNIX_EPOCH + Duration::from_millis(42)), 42);
        assert_eq!(millis(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
