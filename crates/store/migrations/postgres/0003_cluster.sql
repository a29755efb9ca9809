-- The nodes sharing this store, each as it last reported itself, and the
-- named leases that give one node a duty (`leader`: the housekeeping).
-- Times are unix milliseconds of the store's clock.

CREATE TABLE nodes (
    id             TEXT    NOT NULL PRIMARY KEY,
    version        TEXT    NOT NULL,
    address        TEXT,
    config_version TEXT    NOT NULL,
    started_at     BIGINT  NOT NULL,
    heartbeat_at   BIGINT  NOT NULL,
    runs_in_flight BIGINT  NOT NULL
);

CREATE TABLE leases (
    name       TEXT    NOT NULL PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at BIGINT  NOT NULL
);

-- The cluster's rate limits: one GCRA state per connector and key, its
-- theoretical arrival time in microseconds of the database's clock.
CREATE TABLE rate_limits (
    key TEXT   NOT NULL PRIMARY KEY,
    tat BIGINT NOT NULL
);

-- The configuration a node last published on a reload: the other nodes
-- reload too when they see a publication newer than the last they acted on.
CREATE TABLE published_config (
    singleton    INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
    version      TEXT    NOT NULL,
    node         TEXT    NOT NULL,
    published_at BIGINT  NOT NULL
);

-- Circuit breakers a node opened, until when: the other nodes hold their
-- own breaker for the connector open as long.
CREATE TABLE breaker_openings (
    connector  TEXT    NOT NULL PRIMARY KEY,
    open_until BIGINT  NOT NULL,
    node       TEXT    NOT NULL
);
