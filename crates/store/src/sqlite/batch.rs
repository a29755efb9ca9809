//! Group commit for the executor's writes (journal entries and run
//! endings) and for audit entries.
//!
//! With `synchronous = FULL`, every commit waits for the disk, and one
//! writer connection commits one transaction at a time: written one by
//! one, the steps of many concurrent runs would queue behind each other's
//! fsyncs. Here a single task takes every write that is waiting (up to
//! [`MAX_BATCH`]) and applies them in one transaction, then answers each.
//! A lone write costs what it did before; under load the cost of a commit
//! is shared.
//!
//! Each write keeps its own lease check, so a write whose lease is gone is
//! answered `LeaseLost` without disturbing the others. Should the batch fail
//! as a whole (an SQL error), it is rolled back and every write is applied
//! again in a transaction of its own, so a faulty write cannot fail its
//! neighbours.
//!
//! Audit entries come here so that the management API's write-ahead entry
//! (see [`crate::AuditEntry`]) shares a commit with whatever else is
//! waiting, instead of taking the single writer for a transaction of its
//! own; the API still waits for the commit before it acts.

use std::sync::Arc;

use sqlx::sqlite::SqlitePool;
use sqlx::{Sqlite, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::audit::{Encoded, UPSERT};
use super::codec::{id_text, int, json_text, millis};
use super::journal::{INSERT_ENTRY, UPSERT_STATE};
use super::queue::FINISH;
use super::renew_writer;
use crate::{AuditEntry, Clock, JournalEntry, RunId, RunOutcome, StoreError};

/// Most writes committed together.
const MAX_BATCH: usize = 256;

/// Writes waiting for the batcher; beyond this, writers wait for room.
const QUEUE: usize = 4 * MAX_BATCH;

/// One write, with its parameters already encoded for binding.
enum Write {
    Step {
        run: RunId,
        owner: String,
        step_index: i64,
        step_id: String,
        item: Option<i64>,
        attempt: i64,
        status: &'static str,
        started_at: i64,
        duration_ms: i64,
        request: Option<String>,
        output: Option<String>,
        error: Option<String>,
        error_class: Option<String>,
        state: Option<String>,
        /// When the write was asked for: the state's update time.
        at: i64,
    },
    Finish {
        run: RunId,
        owner: String,
        status: &'static str,
        output: Option<String>,
        error: Option<String>,
        /// When the write was asked for: the run's finishing time.
        at: i64,
    },
    /// Audit entries, inserted or completed.
    Audit(Vec<Encoded>),
}

impl Write {
    /// Applies the write inside `tx`. `Ok(Err(LeaseLost))` when the lease
    /// check matched nothing; `Err` only for an SQL failure.
    async fn apply(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
    ) -> Result<Result<(), StoreError>, sqlx::Error> {
        let lease_lost = |run: &RunId| Ok(Err(StoreError::LeaseLost { run: *run }));
        match self {
            Write::Step {
                run,
                owner,
                step_index,
                step_id,
                item,
                attempt,
                status,
                started_at,
                duration_ms,
                request,
                output,
                error,
                error_class,
                state,
                at,
            } => {
                let run_text = id_text(*run);
                let inserted = sqlx::query(INSERT_ENTRY)
                    .bind(&run_text)
                    .bind(step_index)
                    .bind(step_id)
                    .bind(item)
                    .bind(attempt)
                    .bind(status)
                    .bind(started_at)
                    .bind(duration_ms)
                    .bind(request)
                    .bind(output)
                    .bind(error)
                    .bind(owner)
                    .bind(error_class)
                    .execute(&mut **tx)
                    .await?
                    .rows_affected();
                if inserted == 0 {
                    return lease_lost(run);
                }
                if let Some(state) = state {
                    sqlx::query(UPSERT_STATE)
                        .bind(&run_text)
                        .bind(state)
                        .bind(at)
                        .execute(&mut **tx)
                        .await?;
                }
                Ok(Ok(()))
            }
            Write::Finish {
                run,
                owner,
                status,
                output,
                error,
                at,
            } => {
                let updated = sqlx::query(FINISH)
                    .bind(id_text(*run))
                    .bind(owner)
                    .bind(status)
                    .bind(output)
                    .bind(error)
                    .bind(at)
                    .execute(&mut **tx)
                    .await?
                    .rows_affected();
                if updated == 0 {
                    return lease_lost(run);
                }
                Ok(Ok(()))
            }
            Write::Audit(entries) => {
                for entry in entries {
                    sqlx::query(UPSERT)
                        .bind(&entry.id)
                        .bind(entry.at)
                        .bind(&entry.actor)
                        .bind(&entry.method)
                        .bind(&entry.route)
                        .bind(&entry.target)
                        .bind(entry.status)
                        .bind(&entry.peer)
                        .execute(&mut **tx)
                        .await?;
                }
                Ok(Ok(()))
            }
        }
    }
}

type Pending = (Write, oneshot::Sender<Result<(), StoreError>>);

/// The handle writers use; the batching task ends when every handle is gone.
#[derive(Clone, Debug)]
pub(super) struct Batcher {
    queue: mpsc::Sender<Pending>,
    /// Stamps each write when it is asked for, not when its batch commits.
    clock: Arc<dyn Clock>,
}

impl Batcher {
    pub fn start(writer: SqlitePool, clock: Arc<dyn Clock>) -> Batcher {
        let (queue, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(commit_loop(writer, receiver));
        Batcher { queue, clock }
    }

    fn now(&self) -> i64 {
        millis(self.clock.now())
    }

    pub async fn record_step(
        &self,
        owner: &str,
        entry: &JournalEntry,
        state: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        self.submit(Write::Step {
            run: entry.run_id,
            owner: owner.to_string(),
            step_index: i64::from(entry.step_index),
            step_id: entry.step_id.clone(),
            item: entry.item.map(i64::from),
            attempt: i64::from(entry.attempt),
            status: entry.status.as_str(),
            started_at: millis(entry.started_at),
            duration_ms: int(entry.duration_ms),
            request: entry.request.as_ref().map(json_text),
            output: entry.output.as_ref().map(json_text),
            error: entry.error.clone(),
            error_class: entry.error_class.clone(),
            state: state.map(json_text),
            at: self.now(),
        })
        .await
    }

    pub async fn finish(
        &self,
        owner: &str,
        run: RunId,
        outcome: &RunOutcome,
    ) -> Result<(), StoreError> {
        if !outcome.status.is_final() {
            return Err(StoreError::NotFinal {
                run,
                status: outcome.status,
            });
        }
        self.submit(Write::Finish {
            run,
            owner: owner.to_string(),
            status: outcome.status.as_str(),
            output: outcome.output.as_ref().map(json_text),
            error: outcome.error.clone(),
            at: self.now(),
        })
        .await
    }

    pub async fn record_audit(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.submit(Write::Audit(entries.iter().map(Encoded::encode).collect()))
            .await
    }

    async fn submit(&self, write: Write) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((write, reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

async fn commit_loop(writer: SqlitePool, mut receiver: mpsc::Receiver<Pending>) {
    let mut pending = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut pending, MAX_BATCH).await > 0 {
        match apply_together(&writer, &pending).await {
            Ok(results) => {
                for ((_, reply), result) in pending.drain(..).zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, writes = pending.len(), "batched write failed; applying the writes one by one");
                renew_writer(&writer).await;
                for (write, reply) in pending.drain(..) {
                    let result = apply_alone(&writer, &write).await;
                    if let Err(StoreError::Query(_)) = &result {
                        renew_writer(&writer).await;
                    }
                    let _ = reply.send(result);
                }
            }
        }
    }
}

async fn apply_together(
    writer: &SqlitePool,
    pending: &[Pending],
) -> Result<Vec<Result<(), StoreError>>, sqlx::Error> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let mut results = Vec::with_capacity(pending.len());
    for (write, _) in pending {
        results.push(write.apply(&mut tx).await?);
    }
    tx.commit().await?;
    Ok(results)
}

async fn apply_alone(writer: &SqlitePool, write: &Write) -> Result<(), StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let result = write.apply(&mut tx).await?;
    tx.commit().await?;
    result
}
