-- The nodes sharing this store, each as it last reported itself, and the
-- named leases that give one node a duty (`leader`: the housekeeping).
-- Times are unix milliseconds of the store's clock.

CREATE TABLE nodes (
    id             TEXT    NOT NULL PRIMARY KEY,
    version        TEXT    NOT NULL,
    address        TEXT,
    config_version TEXT    NOT NULL,
    started_at     INTEGER NOT NULL,
    heartbeat_at   INTEGER NOT NULL,
    runs_in_flight INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE leases (
    name       TEXT    NOT NULL PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;

-- The rate limits kept in the store: one GCRA state per connector and
-- key, its theoretical arrival time in microseconds of the store's clock.
CREATE TABLE rate_limits (
    key TEXT    NOT NULL PRIMARY KEY,
    tat INTEGER NOT NULL
) WITHOUT ROWID;

-- The configuration a node last published on a reload: the other nodes
-- reload too when they see a publication newer than the last they acted on.
CREATE TABLE published_config (
    singleton    INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
    version      TEXT    NOT NULL,
    node         TEXT    NOT NULL,
    published_at INTEGER NOT NULL
);

-- Circuit breakers a node opened, until when: the other nodes hold their
-- own breaker for the connector open as long.
CREATE TABLE breaker_openings (
    connector  TEXT    NOT NULL PRIMARY KEY,
    open_until INTEGER NOT NULL,
    node       TEXT    NOT NULL
);
