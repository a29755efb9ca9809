//! The queue-depth query behind the queue metrics.
//!
//! One statement on the reader pool, every part served by a partial index
//! that holds unfinished runs only: queued runs by due time (`runs_ready`),
//! where the counts walk an index range and the oldest due time is its
//! first entry, and running runs (`runs_lease`). Sampled every few seconds,
//! it never touches the writer.

use sqlx::sqlite::SqlitePool;

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
    crate::rows::depth_from_row(&row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::tests::{migrated_store, plan, scans_history};

    #[tokio::test]
    async fn the_queue_depth_reads_only_unfinished_runs() {
        let (_dir, path) = migrated_store().await;
        let plan = plan(&path, QUEUE_DEPTH);
        assert!(!plan.iter().any(|s| scans_history(s)), "{plan:?}");
        assert!(plan.iter().any(|s| s.contains("runs_ready")), "{plan:?}");
        assert!(plan.iter().any(|s| s.contains("runs_lease")), "{plan:?}");
    }
}
