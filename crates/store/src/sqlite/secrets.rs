//! Sealed secrets by name (see [`crate::secrets`] for the sealing).

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
    Ok(rows
        .into_iter()
        .map(|(name, updated_at)| SecretInfo {
            name,
            updated_at: chrono::DateTime::from_timestamp_millis(updated_at).unwrap_or_default(),
        })
        .collect())
}

pub(super) async fn put_sealed_secret(
    writer: &SqlitePool,
    name: &str,
    sealed: &[u8],
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO secrets (name, sealed, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
    )
    .bind(name)
    .bind(sealed)
    .bind(now)
    .execute(writer)
    .await?;
    Ok(())
}

pub(super) async fn delete_secret(writer: &SqlitePool, name: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM secrets WHERE name = $1")
        .bind(name)
        .execute(writer)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Deletes every secret and stored credential in one transaction.
pub(super) async fn delete_sealed(writer: &SqlitePool) -> Result<u64, StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let secrets = sqlx::query("DELETE FROM secrets").execute(&mut *tx).await?;
    let credentials = sqlx::query("DELETE FROM credentials")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(secrets.rows_affected() + credentials.rows_affected())
}
