-- Secrets set through the CLI or the management API, sealed with the
-- node's master key (AES-256-GCM; the name is the associated data, so a
-- sealed value cannot be moved to another name). Values are never read
-- back through the API, only resolved into `${secret:NAME}` at load.
CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    sealed     BLOB NOT NULL,
    updated_at INTEGER NOT NULL
);
