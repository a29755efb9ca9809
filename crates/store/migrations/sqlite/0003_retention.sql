-- Retention: finished runs are deleted (with their journal, by cascade)
-- once they are older than the configured retention. Partial, so queued and
-- running runs, which are never purged, do not pay for it.
CREATE INDEX runs_finished ON runs (finished_at) WHERE finished_at IS NOT NULL;
