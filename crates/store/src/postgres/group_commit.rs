//! Group commit of journal writes on PostgreSQL: the entries and run ends
//! of concurrent runs written by one statement and one commit.
//!
//! Each journal write ([`Write`]) is sent to one task per store. The task
//! takes every write waiting (up to [`MAX_BATCH`]) and applies them with
//! one statement ([`APPLY`]): the columns travel as arrays, `unnest` turns
//! them back into rows, and the statement does for each row what the
//! single-write statements of [`super::journal`] do for one: check the
//! lease under the write's claim, take the entry's number from the run's
//! row, insert the entry, end the run or set the flow's state. It returns
//! the writes it applied; each other write is answered with the reason
//! its lease check failed (lease lost, journal full). A write costs
//! PostgreSQL a row, not a statement, a transaction and a WAL flush of its
//! own, which is what its CPU went to. One batch is in flight at a time,
//! as in the SQLite writer: the next takes whatever came meanwhile. (Four
//! in flight, each on a connection of its own, measured no faster.)
//!
//! A statement's `UPDATE` changes a row once, so a batch holds at most one
//! write per run; a second write of the same run waits for the next batch,
//! behind the first, so a run's entries are numbered in the order they
//! were sent. The flow state of several runs of one flow in a batch is the
//! last one sent, as if the writes had been applied one after the other.
//!
//! When PostgreSQL refuses the statement as a whole (a value it cannot
//! store, a deadlock with another node's statement), nothing of it was
//! written: each write is applied again on its own, so one bad write
//! cannot fail its neighbours and every caller learns the fate of its
//! own. When the statement's fate is unknown (the connection broke, no
//! connection came), every write of the batch gets the error, as a single
//! write would: applying them again could write an entry twice.

use std::collections::{HashSet, VecDeque};

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use super::journal::{ENTRIES_PER_RUN, Write, apply_one, refusal};
use crate::StoreError;

/// Most writes applied by one statement.
const MAX_BATCH: usize = 256;

/// Writes waiting for the task; beyond this, writers wait for room.
const QUEUE: usize = 4 * MAX_BATCH;

/// Applies a batch of writes. `$1` to `$20` are arrays with one element
/// per write (`ord` is the write's place in the batch), `$21` the most
/// entries a run may hold. A write without `end_status` appends an entry
/// and sets the flow's state when `state` is given; with it, it appends
/// the run's last entry and ends the run. Returns the `ord` of each write
/// applied.
///
/// `r.id = ANY($2)` repeats the join's condition for the planner: without
/// it, the plan (generic, and sure that few runs are running) walks every
/// running run and scans the whole input for each, which cost 2 to 5 ms a
/// batch of 16 with 200 runs running; with it, 0.7 to 1 ms.
const APPLY: &str = "\
WITH input AS (
    SELECT * FROM unnest($1::int4[], $2::uuid[], $3::text[], $4::int4[], $5::int4[], $6::int4[],
                         $7::text[], $8::int4[], $9::text[], $10::int8[], $11::int8[], $12::text[],
                         $13::text[], $14::text[], $15::text[], $16::text[], $17::text[],
                         $18::text[], $19::text[], $20::int8[])
        AS i (ord, run, owner, claim, attempt, step_index, step_id, item, status, started_at,
              duration_ms, request, output, error, error_class, state, end_status, end_output,
              end_error, now)
), taken AS (
    UPDATE runs AS r
    SET journal_entries = r.journal_entries + 1,
        status = COALESCE(i.end_status, r.status),
        output = CASE WHEN i.end_status IS NULL THEN r.output ELSE i.end_output END,
        error = CASE WHEN i.end_status IS NULL THEN r.error ELSE i.end_error END,
        finished_at = CASE WHEN i.end_status IS NULL THEN r.finished_at ELSE i.now END,
        updated_at = CASE WHEN i.end_status IS NULL THEN r.updated_at ELSE i.now END,
        lease_owner = CASE WHEN i.end_status IS NULL THEN r.lease_owner END,
        lease_expires_at = CASE WHEN i.end_status IS NULL THEN r.lease_expires_at END
    FROM input AS i
    WHERE r.id = ANY($2) AND r.id = i.run AND r.status = 'running' AND r.lease_owner = i.owner
      AND r.attempts = i.claim AND i.attempt = i.claim AND r.journal_entries < $21
    RETURNING i.ord, r.journal_entries - 1 AS n, r.flow
), appended AS (
    INSERT INTO journal (run_id, n, attempt, step_index, step_id, item, status, started_at,
                         duration_ms, request, output, error, error_class)
    SELECT i.run, t.n, i.claim, i.step_index, i.step_id, i.item, i.status, i.started_at,
           i.duration_ms, i.request, i.output, i.error, i.error_class
    FROM taken AS t JOIN input AS i USING (ord)
), state AS (
    INSERT INTO flow_state (flow, state, updated_at)
    SELECT DISTINCT ON (t.flow) t.flow, i.state, i.now
    FROM taken AS t JOIN input AS i USING (ord)
    WHERE i.state IS NOT NULL
    ORDER BY t.flow, i.ord DESC
    ON CONFLICT (flow) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at
)
SELECT ord FROM taken";

/// A write and where its outcome goes.
struct Pending {
    write: Write,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

/// The handle through which the store sends journal writes. Clones share
/// the task, which stops once every clone is gone.
#[derive(Clone, Debug)]
pub(super) struct GroupCommit {
    queue: mpsc::Sender<Pending>,
}

impl GroupCommit {
    /// Starts the task that applies the writes, on the current runtime.
    pub fn start(pool: PgPool) -> GroupCommit {
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(apply_batches(pool, waiting));
        GroupCommit { queue }
    }

    /// Applies `write` with whatever other writes are waiting, and answers
    /// once it is committed or refused.
    pub async fn write(&self, write: Write) -> Result<(), StoreError> {
        let (reply, outcome) = oneshot::channel();
        self.queue
            .send(Pending { write, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        outcome.await.map_err(|_| StoreError::Closed)?
    }
}

async fn apply_batches(pool: PgPool, mut waiting: mpsc::Receiver<Pending>) {
    // Writes held back because their run already had one in the batch.
    let mut held_back: VecDeque<Pending> = VecDeque::new();
    loop {
        if held_back.is_empty() {
            match waiting.recv().await {
                Some(pending) => held_back.push_back(pending),
                None => return,
            }
        }
        while held_back.len() < MAX_BATCH {
            match waiting.try_recv() {
                Ok(pending) => held_back.push_back(pending),
                Err(_) => break,
            }
        }
        let mut runs = HashSet::new();
        let mut batch = Vec::new();
        let mut later = VecDeque::new();
        for pending in held_back.drain(..) {
            if batch.len() < MAX_BATCH && runs.insert(pending.write.run) {
                batch.push(pending);
            } else {
                later.push_back(pending);
            }
        }
        held_back = later;
        apply(&pool, batch).await;
    }
}

/// Applies `batch` (at most one write per run) and answers each write.
async fn apply(pool: &PgPool, batch: Vec<Pending>) {
    let size = batch.len();
    match applied(pool, &batch).await {
        Ok(applied) => {
            tracing::trace!(
                size,
                refused = size - applied.len(),
                "journal batch committed"
            );
            let mut applied = applied.into_iter().peekable();
            for (ord, pending) in batch.into_iter().enumerate() {
                let outcome = if applied.next_if_eq(&ord).is_some() {
                    Ok(())
                } else {
                    refusal(pool, &pending.write).await.and_then(Err)
                };
                let _ = pending.reply.send(outcome);
            }
        }
        Err(sqlx::Error::Database(refused)) => {
            tracing::debug!(size, error = %refused, "journal batch refused; applying its writes one by one");
            for pending in batch {
                let outcome = apply_one(pool, &pending.write).await;
                let _ = pending.reply.send(outcome);
            }
        }
        Err(unknown) => {
            for pending in batch {
                let _ = pending.reply.send(Err(StoreError::Query(copy(&unknown))));
            }
        }
    }
}

/// Applies `batch` with [`APPLY`]; the places in the batch of the writes
/// applied, in order.
async fn applied(pool: &PgPool, batch: &[Pending]) -> Result<Vec<usize>, sqlx::Error> {
    fn column<'a, T>(batch: &'a [Pending], field: impl Fn(&'a Write) -> T) -> Vec<T> {
        batch.iter().map(|pending| field(&pending.write)).collect()
    }
    let ords: Vec<i32> = (0..batch.len())
        .map(|ord| i32::try_from(ord).unwrap_or(i32::MAX))
        .collect();
    let mut ords_applied: Vec<i32> = sqlx::query_scalar(APPLY)
        .bind(ords)
        .bind(column(batch, |w| w.run))
        .bind(column(batch, |w| w.owner.as_str()))
        .bind(column(batch, |w| w.claim))
        .bind(column(batch, |w| w.attempt))
        .bind(column(batch, |w| w.step_index))
        .bind(column(batch, |w| w.step_id.as_str()))
        .bind(column(batch, |w| w.item))
        .bind(column(batch, |w| w.status))
        .bind(column(batch, |w| w.started_at))
        .bind(column(batch, |w| w.duration_ms))
        .bind(column(batch, |w| w.request.as_deref()))
        .bind(column(batch, |w| w.output.as_deref()))
        .bind(column(batch, |w| w.error.as_deref()))
        .bind(column(batch, |w| w.error_class.as_deref()))
        .bind(column(batch, |w| w.state.as_deref()))
        .bind(column(batch, |w| w.end.as_ref().map(|end| end.status)))
        .bind(column(batch, |w| {
            w.end.as_ref().and_then(|end| end.output.as_deref())
        }))
        .bind(column(batch, |w| {
            w.end.as_ref().and_then(|end| end.error.as_deref())
        }))
        .bind(column(batch, |w| w.now))
        .bind(ENTRIES_PER_RUN)
        .fetch_all(pool)
        .await?;
    ords_applied.sort_unstable();
    Ok(ords_applied
        .into_iter()
        .filter_map(|ord| usize::try_from(ord).ok())
        .collect())
}

/// The same failure for another write of the batch: sqlx's errors cannot
/// be cloned, so this keeps what tells a caller whether to try again.
fn copy(error: &sqlx::Error) -> sqlx::Error {
    match error {
        sqlx::Error::Io(io) => sqlx::Error::Io(std::io::Error::new(io.kind(), io.to_string())),
        sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
        sqlx::Error::WorkerCrashed => sqlx::Error::WorkerCrashed,
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

/// Batches built by hand, so that the writes certainly share a statement;
/// the store's suites cover the task through the `Store` trait.
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};
    use tokio::sync::oneshot;

    use super::super::journal::Write;
    use super::super::test_support::{drop_schema, new_run, open};
    use super::{Pending, apply};
    use crate::{Claim, JournalEntry, RunId, RunOutcome, RunStatus, StepStatus, Store, StoreError};

    const OWNER: &str = "node-a";

    fn entry(run: RunId, step_index: u32, error: Option<&str>) -> JournalEntry {
        JournalEntry {
            run_id: run,
            step_index,
            step_id: format!("step-{step_index}"),
            item: None,
            attempt: 1,
            status: StepStatus::Succeeded,
            started_at: chrono::Utc::now(),
            duration_ms: 1,
            request: None,
            output: Some(json!(step_index)),
            error: error.map(str::to_string),
            error_class: None,
            current: true,
        }
    }

    /// Applies `writes` as one batch; each write's outcome, in order.
    async fn apply_together(
        store: &super::super::PgStore,
        writes: Vec<Write>,
    ) -> Vec<Result<(), StoreError>> {
        let (batch, outcomes): (Vec<_>, Vec<_>) = writes
            .into_iter()
            .map(|write| {
                let (reply, outcome) = oneshot::channel();
                (Pending { write, reply }, outcome)
            })
            .unzip();
        apply(&store.pool, batch).await;
        let mut answered = Vec::new();
        for outcome in outcomes {
            answered.push(outcome.await.expect("every write is answered"));
        }
        answered
    }

    /// Runs of flow `orders`, claimed by [`OWNER`].
    async fn claimed_runs(store: &super::super::PgStore, count: usize) -> Vec<RunId> {
        let runs: Vec<_> = (0..count).map(|_| new_run(None)).collect();
        store.enqueue(&runs).await.unwrap();
        let claimed = store
            .claim(
                OWNER,
                u32::try_from(count).unwrap(),
                Duration::from_secs(600),
            )
            .await
            .unwrap();
        assert_eq!(claimed.len(), count);
        runs.iter().map(|run| run.id).collect()
    }

    /// Appends, a run's end and a write whose lease is gone share one
    /// statement: each gets its own outcome, and the state of a flow is the
    /// last one sent.
    #[tokio::test]
    async fn a_batch_answers_each_write_with_its_own_outcome() {
        let Some((store, schema)) = open().await else {
            return;
        };
        let runs = claimed_runs(&store, 4).await;
        let outcome = RunOutcome {
            status: RunStatus::Succeeded,
            output: Some(json!({"done": true})),
            error: None,
        };
        let claim = Claim {
            run: runs[1],
            attempt: 1,
        };
        let now = chrono::Utc::now().timestamp_millis();
        let outcomes = apply_together(
            &store,
            vec![
                Write::append(OWNER, &entry(runs[0], 0, None), Some(&json!("first")), now),
                Write::finish(OWNER, claim, &outcome, &entry(runs[1], 0, None), now),
                Write::append("node-b", &entry(runs[2], 0, None), None, now),
                Write::append(OWNER, &entry(runs[3], 0, None), Some(&json!("last")), now),
            ],
        )
        .await;

        assert!(outcomes[0].is_ok(), "{outcomes:?}");
        assert!(outcomes[1].is_ok(), "{outcomes:?}");
        assert!(
            matches!(outcomes[2], Err(StoreError::LeaseLost { run }) if run == runs[2]),
            "{outcomes:?}"
        );
        assert!(outcomes[3].is_ok(), "{outcomes:?}");
        let journalled = |run| {
            let store = store.clone();
            async move { store.journal(run).await.unwrap().len() }
        };
        assert_eq!(journalled(runs[0]).await, 1);
        assert_eq!(journalled(runs[1]).await, 1);
        assert_eq!(journalled(runs[2]).await, 0);
        let ended = store.run(runs[1]).await.unwrap().unwrap();
        assert_eq!(ended.status, RunStatus::Succeeded);
        assert_eq!(ended.output, Some(json!({"done": true})));
        assert_eq!(
            store.run(runs[0]).await.unwrap().unwrap().status,
            RunStatus::Running
        );
        assert_eq!(
            store.flow_state("orders").await.unwrap(),
            Value::from("last")
        );
        drop_schema(&store, schema).await;
    }

    /// PostgreSQL refuses a text holding a NUL character, and with it the
    /// whole statement: the batch's other writes are applied one by one,
    /// and only the bad one fails.
    #[tokio::test]
    async fn a_write_postgresql_refuses_fails_alone() {
        let Some((store, schema)) = open().await else {
            return;
        };
        let runs = claimed_runs(&store, 3).await;
        let now = chrono::Utc::now().timestamp_millis();
        let outcomes = apply_together(
            &store,
            vec![
                Write::append(OWNER, &entry(runs[0], 0, None), None, now),
                Write::append(OWNER, &entry(runs[1], 0, Some("bad\0byte")), None, now),
                Write::append(OWNER, &entry(runs[2], 0, None), None, now),
            ],
        )
        .await;

        assert!(outcomes[0].is_ok(), "{outcomes:?}");
        assert!(
            matches!(
                &outcomes[1],
                Err(StoreError::Query(sqlx::Error::Database(_)))
            ),
            "{outcomes:?}"
        );
        assert!(outcomes[2].is_ok(), "{outcomes:?}");
        for (run, kept) in runs.iter().zip([1, 0, 1]) {
            assert_eq!(store.journal(*run).await.unwrap().len(), kept);
        }
        drop_schema(&store, schema).await;
    }
}
