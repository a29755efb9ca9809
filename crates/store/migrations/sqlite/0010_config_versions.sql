-- The configuration each recent version was loaded from (its source files,
-- as JSON), so that a run finishes on the version it started with, after a
-- reload or a restart with a changed project.
CREATE TABLE config_versions (
    version    TEXT    PRIMARY KEY,
    sources    TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
