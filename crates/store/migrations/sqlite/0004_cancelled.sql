-- Cancelled runs.
--
-- An operator can cancel a queued or running run: it becomes `cancelled`,
-- finished, without a lease. No column changes: `status` is free text. The
-- migration marks the schema version from which that status may appear, so a
-- binary that predates it (and would read such a run as corrupt) refuses to
-- open the file instead: sqlx reports a migration it does not know.
SELECT 1;
