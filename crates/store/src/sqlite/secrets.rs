//! Sealed secrets by name (see [`crate::secrets`] for the sealing).

use rusqlite::Connection;
use sqlx::sqlite::SqlitePool;

use crate::{SecretInfo, StoreError};

pub(super) async fn sealed_secrets(
    reader: &SqlitePool,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT name, sealed FROM secrets ORDER BY name")
            .fetch_all(reader)
            .await?,
    )
}

pub(super) async fn secret_names(reader: &SqlitePool) -> Result<Vec<SecretInfo>, StoreError> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT name, updated_at FROM secrets ORDER BY name")
            .fetch_all(reader)
            .await?;
    Ok(rows.into_iter().map(crate::rows::secret_info).collect())
}

pub(super) fn put_sealed_secret(
    connection: &Connection,
    name: &str,
    sealed: &[u8],
    now: i64,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO secrets (name, sealed, updated_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
        )?
        .execute(rusqlite::params![name, sealed, now])?;
    Ok(())
}

pub(super) fn delete_secret(connection: &Connection, name: &str) -> Result<bool, StoreError> {
    let deleted = connection
        .prepare_cached("DELETE FROM secrets WHERE name = ?1")?
        .execute([name])?;
    Ok(deleted > 0)
}

/// Deletes every secret and stored credential (one job, so one transaction).
pub(super) fn delete_sealed(connection: &Connection) -> Result<u64, StoreError> {
    let secrets = connection
        .prepare_cached("DELETE FROM secrets")?
        .execute([])?;
    let credentials = connection
        .prepare_cached("DELETE FROM credentials")?
        .execute([])?;
    Ok(u64::try_from(secrets + credentials).unwrap_or(u64::MAX))
}
