-- Finished runs are nearly all of a store's rows, and most of them
-- succeeded. Indexes that serve only unfinished runs, or only the runs an
-- operator looks for by status, now hold only those: a succeeded run no
-- longer pays for two index entries it is never found through.

-- The claim and the queue metrics read queued runs only, in due order.
DROP INDEX runs_claim;
CREATE INDEX runs_ready ON runs (next_attempt_at, id) WHERE status = 'queued';

-- Listing runs by status, newest first, is for the ones that need a look
-- (dead, cancelled, queued, running, skipped). Succeeded runs are listed
-- from the primary key in id order, where nearly every row matches. Queries
-- that want this index repeat its condition: SQLite uses a partial index
-- only when the query's WHERE clause contains the index's own.
DROP INDEX runs_status;
CREATE INDEX runs_unsucceeded ON runs (status, id) WHERE status <> 'succeeded';
