-- Webhook endpoints that `deliver` steps send to: whether each is failing
-- (since when) or disabled (see `crates/store/src/endpoints.rs`). One row
-- per endpoint, not per delivery: the journal keeps the attempts.
CREATE TABLE endpoints (
    name            TEXT   NOT NULL PRIMARY KEY,
    failing_since   BIGINT,
    disabled_at     BIGINT,
    last_attempt_at BIGINT NOT NULL,
    last_status     BIGINT,
    last_error      TEXT,
    delivered       BIGINT NOT NULL,
    failed          BIGINT NOT NULL
);
