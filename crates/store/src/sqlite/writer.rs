//! The store's one writer: a thread of its own that owns the write
//! connection and commits whatever writes are waiting in one transaction.
//!
//! Every write of the store (intake's inserts, journal entries, run
//! endings, claims, audit entries, the rest) is a [`Writer::write`] job: a
//! closure over the connection, sent through one channel. The thread takes
//! every job waiting (up to [`MAX_BATCH`]), applies them one after the
//! other in a single `BEGIN IMMEDIATE` transaction and commits once, so
//! concurrent writers share one fsync (`synchronous=FULL`), then answers
//! each. Statements run on this thread against statements it prepared once
//! and keeps cached: a batch costs one hand-over between threads each way,
//! not one per statement as a driver that proxies each statement to its
//! connection thread would (the profile of the end-to-end load showed those
//! hand-overs as a fifth of the node's CPU).
//!
//! Each job runs inside a savepoint: a job that fails (an SQL error, a lost
//! lease, any error it returns) has its own writes rolled back and gets its
//! error, and its neighbours commit. A job is a transaction of its own as
//! far as its caller can tell: all of its writes land, or none do. When the
//! transaction as a whole cannot go on (SQLite rolled it back after an I/O
//! error or a full disk, or the commit failed), the batch is applied again,
//! each job in a transaction of its own, so one bad write cannot fail its
//! neighbours and every caller learns the fate of its own write.
//!
//! Jobs are `FnMut` so that they can be applied a second time that way;
//! they read "now" from values captured when they were asked for, so a
//! second application writes the same thing.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use super::checkpoint::{Checkpointer, WRITER_PAGES};

use crate::StoreError;

/// Most jobs committed together.
const MAX_BATCH: usize = 256;

/// Jobs waiting for the writer; beyond this, writers wait for room.
const QUEUE: usize = 4 * MAX_BATCH;

/// Statements kept prepared: every distinct write statement of the store,
/// with room to spare (the intake's multi-row inserts alone are seven).
const STATEMENT_CACHE: usize = 128;

/// Why the writer could not start.
#[derive(Debug, thiserror::Error)]
pub(super) enum OpenError {
    #[error(transparent)]
    Connection(#[from] rusqlite::Error),
    #[error("cannot start the writer thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Why a batch could not be committed as a whole.
#[derive(Debug, thiserror::Error)]
enum BatchFailed {
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    #[error("SQLite rolled the transaction back after a failed write")]
    RolledBack,
}

/// A write, type-erased so jobs of every result type share one channel.
trait Job: Send {
    /// Applies the write; false when it failed, so its writes must be
    /// undone (its outcome is then the error).
    fn apply(&mut self, connection: &Connection) -> bool;
    /// Sends the outcome of the last application to the caller.
    fn answer(self: Box<Self>);
    /// Sends `error` to the caller instead of an outcome.
    fn fail(self: Box<Self>, error: StoreError);
}

struct Work<F, T> {
    work: F,
    outcome: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<F, T> Job for Work<F, T>
where
    F: FnMut(&Connection) -> Result<T, StoreError> + Send,
    T: Send,
{
    fn apply(&mut self, connection: &Connection) -> bool {
        let outcome = (self.work)(connection);
        let applied = outcome.is_ok();
        self.outcome = Some(outcome);
        applied
    }

    fn answer(self: Box<Self>) {
        let outcome = self.outcome.unwrap_or(Err(StoreError::Closed));
        let _ = self.reply.send(outcome);
    }

    fn fail(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }
}

enum Message {
    Job(Box<dyn Job>),
    /// Close the connection (the last one to close checkpoints the WAL)
    /// and stop; answered once the connection is closed.
    Close(oneshot::Sender<()>),
}

/// The handle writers use. Cloning is cheap; [`Writer::close`] stops the
/// thread for every clone.
#[derive(Clone, Debug)]
pub(super) struct Writer {
    queue: mpsc::Sender<Message>,
    /// Transactions committed so far.
    commits: Arc<AtomicU64>,
}

impl Writer {
    /// Opens the write connection to the database at `path` (created and
    /// migrated already) and starts the writer thread.
    pub fn open(path: &Path, busy_timeout: Duration) -> Result<Writer, OpenError> {
        let connection = open_connection(path, busy_timeout)?;
        // The savepoint of each job, and multi-row inserts that may skip rows,
        // need a statement journal: on a file (SQLite's default), a
        // transaction that needed one created and deleted a temporary file
        // under /var/tmp; in memory it costs a few pages of a transaction
        // that is about to commit.
        connection.execute_batch("PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;")?;
        // Most checkpoints run on their own thread ([`super::checkpoint`]).
        connection.pragma_update(None, "wal_autocheckpoint", WRITER_PAGES)?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let checkpointer = Checkpointer::start(path, busy_timeout)?;

        let (queue, receiver) = mpsc::channel(QUEUE);
        let commits = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&commits);
        std::thread::Builder::new()
            .name("patchbay-store-writer".into())
            .spawn(move || serve(connection, receiver, &counted, checkpointer))?;
        Ok(Writer { queue, commits })
    }

    /// Transactions the writer has committed since it started.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Applies `work` on the writer connection, in a transaction shared
    /// with whatever other writes are waiting, and returns its result once
    /// that transaction is committed (or `work`'s error, its writes undone).
    pub async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Work {
            work,
            outcome: None,
            reply,
        });
        self.queue
            .send(Message::Job(job))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Closes the write connection once the writes already sent are done;
    /// later writes fail with [`StoreError::Closed`].
    pub async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.queue.send(Message::Close(done)).await.is_ok() {
            let _ = closed.await;
        }
    }
}

/// A read-write connection to the database at `path` (created and migrated
/// already), for this thread or the checkpointer's. WAL is a property of the
/// file, set when it was created; the busy timeout and `synchronous = FULL`
/// are properties of the connection and must be set on each.
pub(super) fn open_connection(path: &Path, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(busy_timeout)?;
    connection.execute_batch("PRAGMA synchronous = FULL;")?;
    Ok(connection)
}

/// The writer thread: waits for jobs, applies what is waiting, repeats.
fn serve(
    connection: Connection,
    mut receiver: mpsc::Receiver<Message>,
    commits: &AtomicU64,
    checkpointer: Checkpointer,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    let mut closing = None;
    while closing.is_none() {
        match receiver.blocking_recv() {
            Some(Message::Job(job)) => batch.push(job),
            Some(Message::Close(done)) => closing = Some(done),
            None => break,
        }
        while closing.is_none() && batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(Message::Job(job)) => batch.push(job),
                Ok(Message::Close(done)) => closing = Some(done),
                Err(_) => break,
            }
        }
        commit(&connection, &mut batch, commits);
        checkpointer.nudge();
    }
    // Jobs that arrive after a close are dropped with the receiver: their
    // callers see the store closed.
    drop(receiver);
    checkpointer.stop();
    if let Err((_, e)) = connection.close() {
        tracing::warn!(error = %e, "closing the store's write connection failed");
    }
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// Applies and commits `batch`, answering (and removing) every job.
fn commit(connection: &Connection, batch: &mut Vec<Box<dyn Job>>, commits: &AtomicU64) {
    if batch.len() > 1 {
        match apply_together(connection, batch) {
            Ok(()) => {
                commits.fetch_add(1, Ordering::Relaxed);
                for job in batch.drain(..) {
                    job.answer();
                }
                return;
            }
            Err(e) => {
                roll_back(connection);
                tracing::warn!(error = %e, writes = batch.len(), "a batched write failed; applying the writes one by one");
            }
        }
    }
    for job in batch.drain(..) {
        apply_alone(connection, job, commits);
    }
}

/// Applies every job of `batch` in one transaction, each in a savepoint.
/// An error means the transaction itself failed and nothing was committed.
fn apply_together(connection: &Connection, batch: &mut [Box<dyn Job>]) -> Result<(), BatchFailed> {
    execute(connection, "BEGIN IMMEDIATE")?;
    for job in batch.iter_mut() {
        execute(connection, "SAVEPOINT job")?;
        if !job.apply(connection) {
            if connection.is_autocommit() {
                // SQLite rolled the whole transaction back (I/O error, full
                // disk): the jobs applied before this one are gone too.
                return Err(BatchFailed::RolledBack);
            }
            execute(connection, "ROLLBACK TO job")?;
        }
        execute(connection, "RELEASE job")?;
    }
    Ok(execute(connection, "COMMIT")?)
}

/// Applies one job in a transaction of its own and answers it.
fn apply_alone(connection: &Connection, mut job: Box<dyn Job>, commits: &AtomicU64) {
    if let Err(e) = execute(connection, "BEGIN IMMEDIATE") {
        return job.fail(StoreError::Sql(e));
    }
    if !job.apply(connection) {
        roll_back(connection);
        return job.answer();
    }
    match execute(connection, "COMMIT") {
        Ok(()) => {
            commits.fetch_add(1, Ordering::Relaxed);
            job.answer();
        }
        Err(e) => {
            roll_back(connection);
            job.fail(StoreError::Sql(e));
        }
    }
}

/// Ends the open transaction, if SQLite has not ended it already.
fn roll_back(connection: &Connection) {
    if !connection.is_autocommit()
        && let Err(e) = execute(connection, "ROLLBACK")
    {
        tracing::warn!(error = %e, "cannot roll back a failed write");
    }
}

fn execute(connection: &Connection, sql: &str) -> rusqlite::Result<()> {
    connection.prepare_cached(sql)?.execute([])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestJob = Box<dyn FnMut(&Connection) -> Result<(), StoreError> + Send>;

    /// A writer on a fresh file with one table of numbers.
    fn writer(dir: &tempfile::TempDir) -> Writer {
        let path = dir.path().join("w.db");
        let setup = Connection::open(&path).unwrap();
        setup
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (n INTEGER PRIMARY KEY);")
            .unwrap();
        drop(setup);
        Writer::open(&path, Duration::from_secs(1)).unwrap()
    }

    fn insert(n: i64) -> impl FnMut(&Connection) -> Result<(), StoreError> + Send + 'static {
        move |connection| {
            connection.execute("INSERT INTO t (n) VALUES (?1)", [n])?;
            Ok(())
        }
    }

    async fn numbers(writer: &Writer) -> Vec<i64> {
        writer
            .write(|connection| {
                let mut select = connection.prepare("SELECT n FROM t ORDER BY n")?;
                let numbers = select
                    .query_map([], |row| row.get(0))?
                    .collect::<Result<Vec<i64>, _>>()?;
                Ok(numbers)
            })
            .await
            .unwrap()
    }

    /// Holds the writer thread in a job until `release` is sent, and waits
    /// until `queued` more jobs are waiting behind it, so that they are
    /// taken as one batch.
    async fn hold_then_queue<F>(writer: &Writer, queue: F) -> Vec<Result<(), StoreError>>
    where
        F: FnOnce() -> Vec<tokio::task::JoinHandle<Result<(), StoreError>>>,
    {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let held = std::sync::Mutex::new(held);
        let (started, running) = oneshot::channel::<()>();
        let mut started = Some(started);
        let blocker = {
            let writer = writer.clone();
            tokio::spawn(async move {
                writer
                    .write(move |_| {
                        if let Some(started) = started.take() {
                            let _ = started.send(());
                        }
                        let _ = held.lock().unwrap().recv();
                        Ok(())
                    })
                    .await
            })
        };
        running.await.unwrap();
        // The blocker has been taken; what is sent now waits behind it.
        let handles = queue();
        let queued = handles.len();
        while writer.queue.capacity() != QUEUE - queued {
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        let mut results = Vec::new();
        for handle in handles {
            results.push(handle.await.unwrap());
        }
        results
    }

    #[tokio::test]
    async fn waiting_writes_share_one_commit_and_a_failed_one_is_undone_alone() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(&dir);
        let before = writer.commits();

        let results = hold_then_queue(&writer, || {
            let spawn = |work: TestJob| {
                let writer = writer.clone();
                tokio::spawn(async move { writer.write(work).await })
            };
            let mut fails = insert(2);
            vec![
                spawn(Box::new(insert(1))),
                // Writes, then fails: its insert must not survive.
                spawn(Box::new(move |connection| {
                    fails(connection)?;
                    Err(StoreError::LeaseLost {
                        run: uuid::Uuid::nil(),
                    })
                })),
                spawn(Box::new(insert(3))),
            ]
        })
        .await;

        assert!(results[0].is_ok());
        assert!(matches!(results[1], Err(StoreError::LeaseLost { .. })));
        assert!(results[2].is_ok());
        assert_eq!(numbers(&writer).await, vec![1, 3]);
        // The blocker's commit and the batch's: the three writes shared one.
        assert_eq!(
            writer.commits() - before,
            3,
            "the blocker's, the batch's, the read's"
        );
    }

    #[tokio::test]
    async fn a_write_that_loses_the_transaction_does_not_take_its_neighbours_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(&dir);

        let results = hold_then_queue(&writer, || {
            let spawn = |work: TestJob| {
                let writer = writer.clone();
                tokio::spawn(async move { writer.write(work).await })
            };
            vec![
                spawn(Box::new(insert(1))),
                // As SQLite does after an I/O error or a full disk: the
                // whole transaction is rolled back under the batch.
                spawn(Box::new(|connection: &Connection| {
                    connection.execute_batch("ROLLBACK")?;
                    Err(StoreError::Closed)
                })),
                spawn(Box::new(insert(3))),
                // A duplicate key: an SQL error that leaves the transaction.
                spawn(Box::new(insert(3))),
            ]
        })
        .await;

        assert!(results[0].is_ok(), "{:?}", results[0]);
        assert!(matches!(results[1], Err(StoreError::Closed)));
        assert!(results[2].is_ok(), "{:?}", results[2]);
        assert!(
            matches!(results[3], Err(StoreError::Sql(_))),
            "{:?}",
            results[3]
        );
        assert_eq!(numbers(&writer).await, vec![1, 3]);
    }

    #[tokio::test]
    async fn writes_after_close_are_refused_and_earlier_ones_land() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(&dir);
        writer.write(insert(7)).await.unwrap();
        writer.close().await;
        assert!(matches!(
            writer.write(insert(8)).await,
            Err(StoreError::Closed)
        ));
        let reopened = Connection::open(dir.path().join("w.db")).unwrap();
        let numbers: Vec<i64> = reopened
            .prepare("SELECT n FROM t")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(numbers, vec![7]);
    }
}
