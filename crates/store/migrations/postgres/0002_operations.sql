-- What operating a node keeps besides runs: credentials an upstream issued,
-- sealed secrets, configuration versions, the audit log and contract drift.
--
-- Names are compared and sorted by their bytes (`COLLATE "C"`), as in the
-- SQLite store, whatever the database's default collation; the primary
-- keys then also serve the listings' order.

CREATE TABLE credentials (
    name       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    value      TEXT   NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE secrets (
    name       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    sealed     BYTEA  NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE config_versions (
    version    TEXT   NOT NULL PRIMARY KEY,
    sources    TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX config_versions_created ON config_versions (created_at);

-- Ids are UUIDv7, which `uuid` orders byte by byte, hence by time: the
-- primary key serves the newest-first pages and the purge by age.
CREATE TABLE audit (
    id     UUID    NOT NULL PRIMARY KEY,
    at     BIGINT  NOT NULL,
    actor  TEXT    NOT NULL,
    method TEXT    NOT NULL,
    route  TEXT    NOT NULL,
    target TEXT,
    status INTEGER,
    peer   TEXT
);

CREATE TABLE contract_drift (
    connector  TEXT COLLATE "C" NOT NULL,
    operation  TEXT COLLATE "C" NOT NULL,
    response   TEXT COLLATE "C" NOT NULL,
    pointer    TEXT COLLATE "C" NOT NULL,
    expected   TEXT COLLATE "C" NOT NULL,
    seen       TEXT   NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    count      BIGINT NOT NULL,
    example    TEXT   NOT NULL,
    PRIMARY KEY (connector, operation, response, pointer, expected)
);
