-- The audit log: one row per management API request that changed something
-- or presented a token the node refused. Written ahead of the action (with
-- no status) and completed with the status answered, so an action never
-- happens without its row; a row left without a status is an action the
-- node did not see to the end (it stopped).
--
-- `id` is a UUIDv7: its text order is time order, so it serves both the
-- newest-first listing and retention without an index of its own. Request
-- bodies are never recorded (a secret's value travels in one).
CREATE TABLE audit (
    id     TEXT    NOT NULL PRIMARY KEY,
    at     INTEGER NOT NULL,
    actor  TEXT    NOT NULL,
    method TEXT    NOT NULL,
    route  TEXT    NOT NULL,
    target TEXT,
    status INTEGER,
    peer   TEXT
);
