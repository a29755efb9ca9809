-- The inputs a replay with an edited input replaced (see
-- `Store::replay_with_input`): the run keeps the new one, this table every
-- one it had before, so the record of what arrived is never lost.
CREATE TABLE input_edits (
    n         BIGSERIAL PRIMARY KEY,
    run_id    UUID    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    edited_at BIGINT  NOT NULL,
    previous  TEXT    NOT NULL
);
CREATE INDEX input_edits_run ON input_edits (run_id);
