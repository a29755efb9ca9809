-- Journal entries keyed by their run's number.
--
-- A journal entry used to name its run by the run's 36-character text id,
-- and an index on (run_id, seq) found a run's entries: the id was stored
-- twice per entry, and every step's insert wrote a second B-tree. A run now
-- has an integer `seq` (its rowid, given at insert), and an entry's key is
-- `seq * 2^20 + n`, n counting the run's entries from 0. A run's entries
-- are one range of the journal's own primary key, in recording order, with
-- no run id column and no index; a run holds at most 2^20 entries.
--
-- With no foreign key left between the two tables, a trigger deletes a
-- run's entries with the run.
--
-- Run ids (and parent run ids) are stored as their 16 bytes instead of 36
-- characters of text. UUIDv7 bytes sort by creation time as the text did,
-- so a time bound is still an id bound.
--
-- `dedupe_key` is unique through a partial index: most runs have no key,
-- and a NULL need not be indexed to be unique.

-- The old sequence numbers, renumbered per run in recording order (a run's
-- new `seq` is its old rowid). Keyed by the old number, so every lookup
-- below is one seek: the upgrade of a store of 10^6 runs stays linear.
CREATE TEMP TABLE journal_renumbered (
    old_seq INTEGER PRIMARY KEY,
    key     INTEGER NOT NULL
);
INSERT INTO journal_renumbered (old_seq, key)
SELECT j.seq, r.rowid * 1048576 + ROW_NUMBER() OVER (PARTITION BY j.run_id ORDER BY j.seq) - 1
FROM journal AS j JOIN runs AS r ON r.id = j.run_id;

CREATE TABLE runs_keyed (
    seq              INTEGER PRIMARY KEY,
    id               BLOB    NOT NULL UNIQUE,
    flow             TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    trigger          TEXT    NOT NULL,
    input            TEXT    NOT NULL,
    headers          TEXT    NOT NULL,
    output           TEXT,
    error            TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    config_version   TEXT    NOT NULL,
    dedupe_key       TEXT,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    next_attempt_at  INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    finished_at      INTEGER,
    retries          INTEGER NOT NULL DEFAULT 0,
    stalled_claims   INTEGER NOT NULL DEFAULT 0,
    journal_mark     INTEGER NOT NULL DEFAULT 0,
    parent_run_id    BLOB
);

-- A claim's progress mark was the newest entry's old number: it becomes
-- that entry's key.
INSERT INTO runs_keyed (seq, id, flow, status, trigger, input, headers, output, error, attempts,
                        config_version, dedupe_key, lease_owner, lease_expires_at, next_attempt_at,
                        created_at, updated_at, finished_at, retries, stalled_claims, journal_mark,
                        parent_run_id)
SELECT rowid, unhex(replace(id, '-', '')), flow, status, trigger, input, headers, output, error,
       attempts, config_version, dedupe_key, lease_owner, lease_expires_at, next_attempt_at,
       created_at, updated_at, finished_at, retries, stalled_claims,
       coalesce((SELECT n.key FROM journal_renumbered AS n WHERE n.old_seq = runs.journal_mark), 0),
       unhex(replace(parent_run_id, '-', ''))
FROM runs ORDER BY rowid;

CREATE TABLE journal_keyed (
    key         INTEGER PRIMARY KEY,
    step_index  INTEGER NOT NULL,
    step_id     TEXT    NOT NULL,
    item        INTEGER,
    attempt     INTEGER NOT NULL,
    status      TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    request     TEXT,
    output      TEXT,
    error       TEXT,
    superseded  INTEGER NOT NULL DEFAULT 0,
    error_class TEXT
);

INSERT INTO journal_keyed (key, step_index, step_id, item, attempt, status, started_at,
                           duration_ms, request, output, error, superseded, error_class)
SELECT n.key, j.step_index, j.step_id, j.item, j.attempt, j.status, j.started_at, j.duration_ms,
       j.request, j.output, j.error, j.superseded, j.error_class
FROM journal AS j JOIN journal_renumbered AS n ON n.old_seq = j.seq
ORDER BY n.key;

DROP TABLE journal_renumbered;

-- The journal first: dropping `runs` while entries still refer to it
-- would delete them.
DROP TABLE journal;
DROP TABLE runs;
ALTER TABLE runs_keyed RENAME TO runs;
ALTER TABLE journal_keyed RENAME TO journal;

CREATE UNIQUE INDEX runs_dedupe ON runs (dedupe_key) WHERE dedupe_key IS NOT NULL;
CREATE INDEX runs_ready ON runs (next_attempt_at, id) WHERE status = 'queued';
CREATE INDEX runs_lease ON runs (lease_expires_at) WHERE status = 'running';
CREATE INDEX runs_flow ON runs (flow, id);
CREATE INDEX runs_finished ON runs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX runs_unsucceeded ON runs (status, id) WHERE status <> 'succeeded';

CREATE TRIGGER runs_journal_delete AFTER DELETE ON runs BEGIN
    DELETE FROM journal WHERE key BETWEEN old.seq * 1048576 AND old.seq * 1048576 + 1048575;
END;
