//! Recent configuration versions: the source files each was loaded from.
//!
//! Saved when a node starts or reloads; read when a run created on another
//! version is resumed. The newest versions are kept, and any version an
//! unfinished run still needs; older ones are deleted as a new one is saved.

use serde_json::Value;
use sqlx::sqlite::SqlitePool;

use super::codec::parse_json;
use crate::StoreError;

/// How many versions are kept beyond those unfinished runs need.
const KEPT_VERSIONS: i64 = 20;

const SAVE: &str = "\
INSERT INTO config_versions (version, sources, created_at) VALUES (?1, ?2, ?3)
ON CONFLICT (version) DO UPDATE SET created_at = excluded.created_at";

const PRUNE: &str = "\
DELETE FROM config_versions
WHERE version NOT IN (SELECT version FROM config_versions ORDER BY created_at DESC LIMIT +?1)
  AND version NOT IN (SELECT DISTINCT config_version FROM runs WHERE status IN ('queued', 'running'))";

const SELECT: &str = "SELECT sources FROM config_versions WHERE version = $1";

pub(super) fn save(
    connection: &rusqlite::Connection,
    version: &str,
    sources: &str,
    now: i64,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(SAVE)?
        .execute(rusqlite::params![version, sources, now])?;
    connection.prepare_cached(PRUNE)?.execute([KEPT_VERSIONS])?;
    Ok(())
}

pub(super) async fn load(reader: &SqlitePool, version: &str) -> Result<Option<Value>, StoreError> {
    let text: Option<String> = sqlx::query_scalar(SELECT)
        .bind(version)
        .fetch_optional(reader)
        .await?;
    text.map(|text| parse_json("config_versions.sources", &text))
        .transpose()
}
