-- The inputs a replay with an edited input replaced (see
-- `Store::replay_with_input`): the run keeps the new one, this table every
-- one it had before, so the record of what arrived is never lost. Deleted
-- with their run, as its journal is.
CREATE TABLE input_edits (
    run_id    BLOB    NOT NULL,
    edited_at INTEGER NOT NULL,
    previous  TEXT    NOT NULL
);
CREATE INDEX input_edits_run ON input_edits (run_id);

CREATE TRIGGER runs_input_edits_delete AFTER DELETE ON runs BEGIN
    DELETE FROM input_edits WHERE run_id = old.id;
END;
