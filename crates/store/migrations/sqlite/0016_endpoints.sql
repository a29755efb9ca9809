-- Webhook endpoints that `deliver` steps send to: whether each is failing
-- (since when) or disabled (see `crates/store/src/endpoints.rs`). One row
-- per endpoint, not per delivery: the journal keeps the attempts.
CREATE TABLE endpoints (
    name            TEXT    NOT NULL PRIMARY KEY,
    failing_since   INTEGER,
    disabled_at     INTEGER,
    last_attempt_at INTEGER NOT NULL,
    last_status     INTEGER,
    last_error      TEXT,
    delivered       INTEGER NOT NULL,
    failed          INTEGER NOT NULL
) WITHOUT ROWID;
