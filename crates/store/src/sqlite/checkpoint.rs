//! Checkpoints the WAL on a thread of its own, so the writer's commits
//! rarely wait for one.
//!
//! In WAL mode every commit appends pages to the WAL, and a checkpoint
//! copies them back into the database file and syncs it. Left to SQLite, the
//! connection whose commit takes the WAL past 1,000 pages runs that
//! checkpoint inside its commit: every few hundred runs, one commit (and
//! every write waiting in its batch) also paid for copying megabytes and an
//! fsync of the database file. Here the writer nudges this thread after its
//! commits; the thread runs a `PASSIVE` checkpoint (which takes no lock a
//! writer or a reader waits for) at most every [`PAUSE`], on a connection
//! of its own.
//!
//! The writer still checkpoints by itself at [`WRITER_PAGES`]. A checkpoint
//! running beside a stream of commits never copies the last frames before
//! the next commit lands, and SQLite starts the WAL over from its beginning
//! only after a checkpoint that copied everything: without the writer's own,
//! the WAL file would grow until a pause in the traffic, and every commit
//! that extends the file syncs its new size too. With it, the writer's
//! checkpoint finds nearly everything copied already, and the WAL file stays
//! a few megabytes long, overwritten in place.

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::writer::{OpenError, open_connection};

/// The least time between two checkpoints of this thread.
const PAUSE: Duration = Duration::from_millis(100);

/// WAL pages after which the writer checkpoints by itself (SQLite's
/// `wal_autocheckpoint`; its default is 1,000).
pub(super) const WRITER_PAGES: u32 = 2_000;

/// The handle the writer keeps; [`Checkpointer::stop`] ends the thread
/// after its current checkpoint.
pub(super) struct Checkpointer {
    nudge: SyncSender<()>,
    thread: JoinHandle<()>,
}

impl Checkpointer {
    /// Opens a connection to the database at `path` and starts the thread.
    pub fn start(path: &Path, busy_timeout: Duration) -> Result<Checkpointer, OpenError> {
        let connection = open_connection(path, busy_timeout)?;
        let (nudge, nudged) = sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("patchbay-store-checkpointer".into())
            .spawn(move || serve(&connection, &nudged))?;
        Ok(Checkpointer { nudge, thread })
    }

    /// Asks for a checkpoint soon; never blocks (a pending request covers
    /// this one).
    pub fn nudge(&self) {
        match self.nudge.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
        }
    }

    /// Ends the thread and waits for it, so that its connection is closed
    /// before the writer's (the last to close checkpoints the whole WAL).
    pub fn stop(self) {
        drop(self.nudge);
        if self.thread.join().is_err() {
            tracing::warn!("the store's checkpointer stopped abnormally");
        }
    }
}

fn serve(connection: &Connection, nudged: &Receiver<()>) {
    while nudged.recv().is_ok() {
        let checkpoint = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
        });
        match checkpoint {
            Ok((wal_pages, copied)) => tracing::trace!(wal_pages, copied, "WAL checkpointed"),
            Err(e) => tracing::warn!(error = %e, "a WAL checkpoint failed; the next one retries"),
        }
        std::thread::sleep(PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commits on one connection are copied into the database file by the
    /// checkpointer while the committing connection never checkpoints.
    #[test]
    fn commits_reach_the_database_file_without_the_writer_checkpointing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
                 CREATE TABLE t (n INTEGER PRIMARY KEY, pad TEXT);",
            )
            .unwrap();
        let file_size = || std::fs::metadata(&path).unwrap().len();
        let checkpointer = Checkpointer::start(&path, Duration::from_secs(1)).unwrap();
        let before = file_size();
        for n in 0..200 {
            writer
                .execute(
                    "INSERT INTO t (n, pad) VALUES (?1, ?2)",
                    rusqlite::params![n, "x".repeat(500)],
                )
                .unwrap();
            checkpointer.nudge();
        }
        // 100 KB of rows: the database file grows once they are copied.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while file_size() < before + 50_000 && std::time::Instant::now() < deadline {
            checkpointer.nudge();
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            file_size() >= before + 50_000,
            "the database file stayed at {} bytes",
            file_size()
        );
        checkpointer.stop();
    }
}
