-- The cluster's concurrency limits (`max_in_flight`): a row per slot held,
-- by whom and until when, in microseconds of the database's clock. A slot
-- is given back by deleting its row; a dead node's slots come back when
-- their hold expires.
CREATE TABLE call_slots (
    name       TEXT    NOT NULL,
    slot       INTEGER NOT NULL,
    holder     TEXT    NOT NULL,
    expires_at BIGINT  NOT NULL,
    PRIMARY KEY (name, slot)
);
