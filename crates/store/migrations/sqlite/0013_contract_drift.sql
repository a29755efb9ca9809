-- Contract drift: one row per kind of difference between an upstream's
-- replies and its connector's contract (see `crates/store/src/drift.rs`).
-- Few rows (kinds, not occurrences): the primary key is all the index
-- there is.
CREATE TABLE contract_drift (
    connector  TEXT    NOT NULL,
    operation  TEXT    NOT NULL,
    response   TEXT    NOT NULL,
    pointer    TEXT    NOT NULL,
    expected   TEXT    NOT NULL,
    seen       TEXT    NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    count      INTEGER NOT NULL,
    example    TEXT    NOT NULL,
    PRIMARY KEY (connector, operation, response, pointer, expected)
) WITHOUT ROWID;
