//! Wake-ups between nodes: a transaction that makes runs ready for any
//! node (queued, due now) sends one `NOTIFY` on the store's channel, and
//! every node listening wakes its workers at once instead of at its next
//! poll. PostgreSQL folds the notifications of one transaction into one and
//! delivers them only once it commits, so a wake-up never precedes the
//! runs it announces.
//!
//! Polling stays the ground truth (`engine.poll_interval`): a listener that
//! lost its connection, or a pooler in transaction mode that cannot carry
//! `LISTEN`, delays work by a poll, never loses it.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use tracing::{debug, warn};

const NOTIFY: &str = "SELECT pg_notify($1, '')";

/// The channel of the store in `schema`: stores in other schemas of the
/// same database wake only their own nodes.
pub(super) fn channel(schema: Option<&str>) -> Arc<str> {
    format!("patchbay_ready.{}", schema.unwrap_or("public")).into()
}

/// Announces ready runs, inside the caller's transaction.
pub(super) async fn announce(
    connection: &mut PgConnection,
    channel: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(NOTIFY)
        .bind(channel)
        .execute(connection)
        .await?;
    Ok(())
}

/// Listens on `channel` until the pool closes, calling `wake` on every
/// notification; reconnects after a lost connection.
pub(super) async fn listen(pool: PgPool, channel: Arc<str>, wake: Arc<dyn Fn() + Send + Sync>) {
    loop {
        if pool.is_closed() {
            return;
        }
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(e) => {
                warn!(error = %e, "cannot listen for other nodes' runs; polling only, retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(&channel).await {
            warn!(error = %e, "cannot listen for other nodes' runs; polling only, retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        debug!(channel = %channel, "listening for other nodes' runs");
        // After a lost connection `recv` reconnects and listens again by
        // itself; what was sent meanwhile is lost, so wake once anyway.
        loop {
            match listener.recv().await {
                Ok(_) => wake(),
                Err(_) if pool.is_closed() => return,
                Err(e) => {
                    warn!(error = %e, "lost the wake-up channel; polling until it is back");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    wake();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::super::test_support::{drop_schema, new_run, open, open_in};
    use crate::{IntakeLease, Store};

    /// Waits until `count` moves past `seen`, up to `within`.
    async fn woken(count: &AtomicUsize, seen: usize, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if count.load(Ordering::SeqCst) > seen {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    /// A node is woken by another node's queued, released and replayed
    /// runs; runs committed leased to the node that took them are no news.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn other_nodes_are_woken_when_runs_become_ready() {
        let Some((store, schema)) = open().await else {
            return;
        };
        let other = open_in(&schema).await;
        let wakes = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = wakes.clone();
        store.on_ready(std::sync::Arc::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        }));
        // The listener subscribes in the background: wait until it hears.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while wakes.load(Ordering::SeqCst) == 0 {
            assert!(tokio::time::Instant::now() < deadline, "never woken");
            other.enqueue(&[new_run(None)]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;

        let seen = wakes.load(Ordering::SeqCst);
        let leased = IntakeLease {
            owner: "other".into(),
            duration: Duration::from_secs(600),
            starts_now: true,
        };
        other.enqueue(&[new_run(Some(leased))]).await.unwrap();
        assert!(
            !woken(&wakes, seen, Duration::from_millis(300)).await,
            "woken by a run leased to the node that took it"
        );

        let seen = wakes.load(Ordering::SeqCst);
        assert_eq!(other.release("other").await.unwrap(), 1);
        assert!(woken(&wakes, seen, Duration::from_secs(5)).await, "release");

        let seen = wakes.load(Ordering::SeqCst);
        other.enqueue(&[new_run(None)]).await.unwrap();
        assert!(woken(&wakes, seen, Duration::from_secs(5)).await, "enqueue");

        other.close().await;
        drop_schema(&store, schema).await;
    }
}
