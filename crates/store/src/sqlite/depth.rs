//! The queue-depth query behind the queue metrics.
//!
//! One statement on the reader pool, every part served by the `runs_claim`
//! index (`status, next_attempt_at, id`): the counts walk an index range, the
//! oldest due time is its first entry. Sampled every few seconds, it never
//! touches the writer.

use sqlx::sqlite::SqlitePool;

use super::codec::{get, parse_time, parse_u64};
use crate::{QueueDepth, StoreError};

const QUEUE_DEPTH: &str = "\
SELECT
  (SELECT COUNT(*) FROM runs WHERE status = 'queued' AND next_attempt_at <= $1) AS ready,
  (SELECT MIN(next_attempt_at) FROM runs WHERE status = 'queued' AND next_attempt_at <= $1)
    AS oldest,
  (SELECT COUNT(*) FROM runs WHERE status = 'queued' AND next_attempt_at > $1) AS delayed,
  (SELECT COUNT(*) FROM runs WHERE status = 'running') AS running";

/// The depth at `now` (unix milliseconds): runs due by then are ready.
pub(super) async fn queue_depth(reader: &SqlitePool, now: i64) -> Result<QueueDepth, StoreError> {
    let row = sqlx::query(QUEUE_DEPTH).bind(now).fetch_one(reader).await?;
    let count = |name: &'static str| -> Result<u64, StoreError> {
        parse_u64(name, get::<i64>(&row, name)?)
    };
    let oldest: Option<i64> = get(&row, "oldest")?;
    Ok(QueueDepth {
        ready: count("ready")?,
        delayed: count("delayed")?,
        running: count("running")?,
        oldest_ready_since: oldest.map(|ms| parse_time("oldest", ms)).transpose()?,
    })
}
