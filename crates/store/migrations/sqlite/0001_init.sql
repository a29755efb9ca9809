-- Initial schema: the run queue, the step journal and per-flow state.
--
-- Kept close to standard SQL so the PostgreSQL schema can mirror it column for
-- column: ids are UUIDv7 text, times are unix milliseconds, JSON is text.

CREATE TABLE runs (
    id               TEXT    NOT NULL PRIMARY KEY,
    flow             TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    trigger          TEXT    NOT NULL,
    input            TEXT    NOT NULL,
    headers          TEXT    NOT NULL,
    output           TEXT,
    error            TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    config_version   TEXT    NOT NULL,
    dedupe_key       TEXT    UNIQUE,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    next_attempt_at  INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    finished_at      INTEGER
);

-- Serves the claim query: due queued runs in (next_attempt_at, id) order
-- without a sort.
CREATE INDEX runs_claim ON runs (status, next_attempt_at, id);

-- Serves the claim query's search for expired leases without walking every
-- running run. Partial, so only runs that hold a lease pay for it.
CREATE INDEX runs_lease ON runs (lease_expires_at) WHERE status = 'running';

-- Serves listing one flow's runs newest first.
CREATE INDEX runs_flow ON runs (flow, id);

CREATE TABLE journal (
    seq         INTEGER NOT NULL PRIMARY KEY,
    run_id      TEXT    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step_index  INTEGER NOT NULL,
    step_id     TEXT    NOT NULL,
    item        INTEGER,
    attempt     INTEGER NOT NULL,
    status      TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    request     TEXT,
    output      TEXT,
    error       TEXT
);

-- Serves reading one run's journal in recording order.
CREATE INDEX journal_run ON journal (run_id, seq);

CREATE TABLE flow_state (
    flow       TEXT    NOT NULL PRIMARY KEY,
    state      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
