//! Session-aware helpers: a random session token, WebSocket and HTTP requests made as a given
//! session (the `session` query parameter and the `x-turnstile-session` header), and a
//! temporary data directory that outlives one server (for restart tests).

use super::{Client, TestServer};
use serde::de::DeserializeOwned;
use std::path::PathBuf;

/// A fresh session token (32 hex characters, like the server's own).
pub fn new_session() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A directory under the system's temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("turnstile-test-{}", new_session()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl TestServer {
    /// A WebSocket connection for `session`.
    pub async fn ws_as(&self, session: &str) -> Client {
        let (stream, _) =
            tokio_tungstenite::connect_async(format!("ws://{}/ws?session={session}", self.addr))
                .await
                .unwrap();
        Client { stream }
    }

    /// `GET path` as `session`, decoded (the status must be a success).
    pub async fn get_json_as<T: DeserializeOwned>(&self, path: &str, session: &str) -> T {
        let response = reqwest::Client::new()
            .get(self.url(path))
            .header("x-turnstile-session", session)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// `GET path` as `session`, as JSON whatever the status.
    pub async fn get_value_as(&self, path: &str, session: &str) -> serde_json::Value {
        reqwest::Client::new()
            .get(self.url(path))
            .header("x-turnstile-session", session)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}
