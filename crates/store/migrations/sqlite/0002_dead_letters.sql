-- Run-level retries and dead letters.
--
-- A run whose step failed after its call retries is rescheduled (back to
-- `queued`, due later, `retries` counting the reschedules) until its flow's
-- schedule is spent; then it is `dead`: the dead-letter queue, from which it
-- can be replayed. `failed` is folded into `dead`: every run that ended in an
-- error can be replayed.

ALTER TABLE runs ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;

UPDATE runs SET status = 'dead' WHERE status = 'failed';

-- A replay "from the start" keeps the earlier journal for the record but
-- marks it superseded, so the executor no longer reuses its outputs.
ALTER TABLE journal ADD COLUMN superseded INTEGER NOT NULL DEFAULT 0;

-- Serves listing dead letters (and other statuses) newest first.
CREATE INDEX runs_status ON runs (status, id);

-- Credentials an upstream hands out at run time and that must outlive a
-- restart, such as a rotated OAuth2 refresh token, by name.
CREATE TABLE credentials (
    name       TEXT    NOT NULL PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
