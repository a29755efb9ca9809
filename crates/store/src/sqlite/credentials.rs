//! Credentials issued at run time that must survive a restart (a rotated
//! OAuth2 refresh token), by name. Values arrive sealed
//! ([`crate::Secrets::save_credential`]); this module only stores them.

use sqlx::sqlite::SqlitePool;

use crate::StoreError;

const SELECT: &str = "SELECT value FROM credentials WHERE name = $1";

const UPSERT: &str = "\
INSERT INTO credentials (name, value, updated_at) VALUES (?1, ?2, ?3)
ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";

pub(super) async fn credential(
    reader: &SqlitePool,
    name: &str,
) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(SELECT)
        .bind(name)
        .fetch_optional(reader)
        .await?)
}

pub(super) fn save_credential(
    connection: &rusqlite::Connection,
    name: &str,
    value: &str,
    now: i64,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(UPSERT)?
        .execute(rusqlite::params![name, value, now])?;
    Ok(())
}

pub(super) async fn count_credentials(reader: &SqlitePool) -> Result<u64, StoreError> {
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM credentials")
        .fetch_one(reader)
        .await?;
    Ok(u64::try_from(count).unwrap_or_default())
}
