//! A follower: one task that reads a few streams (the queue's changes, an instance's events, a
//! worker's control messages) with one blocking `XREAD` on its own connection, and hands each
//! entry, in order, to its owner through a channel.
//!
//! Concurrency: the task owns its connection and its read positions; nothing else reads them. A
//! blocking read needs a connection of its own (it would hold up every command pipelined behind
//! it). After a failed read (Redis restarting) it says `Reconnected` once it reads again, so the
//! owner can resynchronise what it derived from the streams.

use crate::error::QueueError;
use redis::aio::ConnectionManager;
use redis::streams::{StreamId, StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, FromRedisValue, Value};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What a follower hands its owner.
#[derive(Debug)]
pub enum Followed {
    /// One stream entry.
    Entry {
        /// The stream it was read from.
        stream: String,
        /// Its fields.
        fields: HashMap<String, Value>,
    },
    /// Reads failed for a while and work again: entries may have been lost (a Redis restart
    /// without its append-only file), so derived state should be rebuilt.
    Reconnected,
}

/// How long one blocking read waits for an entry.
const BLOCK: Duration = Duration::from_millis(1000);

/// Starts following `streams` from their current ends (entries added after this returns are
/// delivered). Stops when `shutdown` fires or the receiver is dropped.
pub async fn follow(
    client: &redis::Client,
    streams: Vec<String>,
    tx: mpsc::UnboundedSender<Followed>,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, QueueError> {
    let mut conn = ConnectionManager::new_with_config(
        client.clone(),
        redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(BLOCK + Duration::from_secs(4))),
    )
    .await?;
    let mut ids = Vec::with_capacity(streams.len());
    for s in &streams {
        let last: redis::streams::StreamRangeReply = conn.xrevrange_count(s, "+", "-", 1).await?;
        ids.push(
            last.ids
                .first()
                .map_or_else(|| "0-0".to_owned(), |e| e.id.clone()),
        );
    }
    Ok(tokio::spawn(async move {
        let opts = StreamReadOptions::default()
            .block(BLOCK.as_millis() as usize)
            .count(4096);
        let mut failing = false;
        loop {
            let read = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = conn.xread_options::<_, _, Option<StreamReadReply>>(&streams, &ids, &opts) => r,
            };
            match read {
                Ok(reply) => {
                    if std::mem::take(&mut failing) && tx.send(Followed::Reconnected).is_err() {
                        return;
                    }
                    for key in reply.map(|r| r.keys).unwrap_or_default() {
                        let Some(i) = streams.iter().position(|s| *s == key.key) else {
                            continue;
                        };
                        for StreamId { id, map, .. } in key.ids {
                            ids[i] = id;
                            let entry = Followed::Entry {
                                stream: key.key.clone(),
                                fields: map,
                            };
                            if tx.send(entry).is_err() {
                                return;
                            }
                        }
                    }
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "following the queue's streams failed; retrying");
                    }
                    failing = true;
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
            }
        }
    }))
}

/// A field as text.
pub fn text(fields: &HashMap<String, Value>, name: &str) -> Option<String> {
    fields
        .get(name)
        .and_then(|v| String::from_redis_value_ref(v).ok())
}

/// A field as a number.
pub fn number(fields: &HashMap<String, Value>, name: &str) -> Option<u64> {
    fields
        .get(name)
        .and_then(|v| u64::from_redis_value_ref(v).ok())
}

/// A field as bytes.
pub fn bytes(fields: &HashMap<String, Value>, name: &str) -> Option<Vec<u8>> {
    fields
        .get(name)
        .and_then(|v| Vec::<u8>::from_redis_value_ref(v).ok())
}

/// The `(seq, bytes)` pairs of stream entries with a seq field and a bytes field.
pub(crate) fn seq_entries<'a>(
    entries: &'a [StreamId],
    seq: &'a str,
    body: &'a str,
) -> impl Iterator<Item = (u64, Vec<u8>)> + 'a {
    entries
        .iter()
        .filter_map(move |e| Some((number(&e.map, seq)?, bytes(&e.map, body)?)))
}
