-- Runs, their journal and per-flow state: the queue and the record of
-- what each run did. Mirrors the SQLite schema's conventions: run ids are
-- UUIDv7 (time ordered), times are unix milliseconds, JSON documents are
-- text (kept byte for byte as the engine wrote them).

CREATE TABLE runs (
    id               UUID    NOT NULL PRIMARY KEY,
    flow             TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    trigger          TEXT    NOT NULL,
    input            TEXT    NOT NULL,
    headers          TEXT    NOT NULL,
    output           TEXT,
    error            TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    retries          INTEGER NOT NULL DEFAULT 0,
    config_version   TEXT    NOT NULL,
    dedupe_key       TEXT,
    lease_owner      TEXT,
    lease_expires_at BIGINT,
    next_attempt_at  BIGINT  NOT NULL,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    finished_at      BIGINT,
    -- Claims since the run last journalled anything, the current one
    -- included: a run that stops its node every time it runs is told from
    -- one that progresses.
    stalled_claims   INTEGER NOT NULL DEFAULT 0,
    -- How many journal entries the run holds: the `n` of its next one.
    -- Taken in the same statement that checks the lease, so concurrent
    -- steps of one run (a `for_each`'s items) never take the same number.
    journal_entries  INTEGER NOT NULL DEFAULT 0,
    -- `journal_entries` when the run was last claimed: more entries since
    -- then mean the previous claim made progress.
    claim_mark       INTEGER NOT NULL DEFAULT 0,
    -- Journal entries numbered below this one were set aside by a replay
    -- from the start.
    journal_mark     INTEGER NOT NULL DEFAULT 0,
    parent_run_id    UUID
);
CREATE UNIQUE INDEX runs_dedupe ON runs (dedupe_key) WHERE dedupe_key IS NOT NULL;
CREATE INDEX runs_ready ON runs (next_attempt_at, id) WHERE status = 'queued';
CREATE INDEX runs_lease ON runs (lease_expires_at) WHERE status = 'running';
CREATE INDEX runs_flow ON runs (flow, id);
CREATE INDEX runs_finished ON runs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX runs_unsucceeded ON runs (status, id) WHERE status <> 'succeeded';

-- One row per journal entry; `n` numbers a run's entries from 0 in the
-- order they were recorded.
CREATE TABLE journal (
    run_id      UUID    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    n           INTEGER NOT NULL,
    step_index  INTEGER NOT NULL,
    step_id     TEXT    NOT NULL,
    item        INTEGER,
    attempt     INTEGER NOT NULL,
    status      TEXT    NOT NULL,
    started_at  BIGINT  NOT NULL,
    duration_ms BIGINT  NOT NULL,
    request     TEXT,
    output      TEXT,
    error       TEXT,
    error_class TEXT,
    PRIMARY KEY (run_id, n)
);

CREATE TABLE flow_state (
    flow       TEXT   NOT NULL PRIMARY KEY,
    state      TEXT   NOT NULL,
    updated_at BIGINT NOT NULL
);
