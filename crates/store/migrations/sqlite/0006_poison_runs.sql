-- Poison runs: a run whose execution stops the node (a crash, an
-- out-of-memory kill) would be claimed again after every restart and stop
-- the node again.
--
-- `stalled_claims` counts the claims of a run since it last reached the end
-- of a step, the current claim included; `journal_mark` is the newest journal
-- entry of the run when it was last claimed. Each claim compares the run's
-- newest entry with the mark: a newer entry means the previous claim made
-- progress and the count starts again at 1. Computing progress at claim time
-- keeps the per-step journal write as it was.
ALTER TABLE runs ADD COLUMN stalled_claims INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN journal_mark INTEGER NOT NULL DEFAULT 0;
