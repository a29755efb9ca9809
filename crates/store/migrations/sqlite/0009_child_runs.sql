-- A run started by another run's `run_flow` step names its parent, so that
-- its end can wake the parent waiting for it.
ALTER TABLE runs ADD COLUMN parent_run_id TEXT;
