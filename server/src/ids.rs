//! Plain identifiers shared by the server's parts: a browser session's id, and who a job is for
//! in the fair queue. This module imports nothing of the server.

use std::fmt;

pub use turnstile_scheduler::Party;

/// A session's id: 32 lowercase hex characters (128 random bits).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionId(
    /// The id's 32 lowercase hex characters.
    String,
);

impl SessionId {
    /// A fresh random id.
    pub fn new() -> SessionId {
        SessionId(uuid::Uuid::new_v4().simple().to_string())
    }

    /// Accepts only the exact shape of an id; anything else is `None`.
    pub fn parse(s: &str) -> Option<SessionId> {
        (s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| SessionId(s.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for SessionId {
    fn default() -> Self {
        SessionId::new()
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_ids_parse() {
        assert!(SessionId::parse(&"a".repeat(32)).is_some());
        assert!(SessionId::parse(&"A".repeat(32)).is_none());
        assert!(SessionId::parse(&"a".repeat(31)).is_none());
        assert!(SessionId::parse("../../etc/passwd").is_none());
        assert_eq!(SessionId::new().as_str().len(), 32);
        assert_ne!(SessionId::new(), SessionId::new());
    }
}
