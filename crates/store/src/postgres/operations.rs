//! Credentials, sealed secrets and configuration versions on PostgreSQL.
//! Semantics are those of the `Store` trait and of the SQLite store's
//! `credentials`, `secrets` and `versions`.
//!
//! Values arrive sealed ([`crate::Secrets`]); this module only stores them.
//! The newest configuration versions are kept, and any version an
//! unfinished run still needs; older ones are deleted as a new one is
//! saved.

use serde_json::Value;
use sqlx::PgPool;

use super::codec::{json_text, parse_json};
use crate::{SecretInfo, StoreError};

/// How many configuration versions are kept beyond those unfinished runs
/// need.
const KEPT_VERSIONS: i64 = 20;

const UPSERT_CREDENTIAL: &str = "\
INSERT INTO credentials (name, value, updated_at) VALUES ($1, $2, $3)
ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";

/// A version saved again keeps its first sources: a version names one set
/// of files, and the runs created on it must finish on those.
const SAVE_VERSION: &str = "\
INSERT INTO config_versions (version, sources, created_at) VALUES ($1, $2, $3)
ON CONFLICT (version) DO UPDATE SET created_at = excluded.created_at";

const PRUNE_VERSIONS: &str = "\
DELETE FROM config_versions
WHERE version NOT IN (SELECT version FROM config_versions ORDER BY created_at DESC LIMIT $1)
  AND version NOT IN (SELECT config_version FROM runs WHERE status IN ('queued', 'running'))";

const UPSERT_SECRET: &str = "\
INSERT INTO secrets (name, sealed, updated_at) VALUES ($1, $2, $3)
ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at";

pub(super) async fn credential(pool: &PgPool, name: &str) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT value FROM credentials WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?,
    )
}

pub(super) async fn save_credential(
    pool: &PgPool,
    name: &str,
    value: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(UPSERT_CREDENTIAL)
        .bind(name)
        .bind(value)
        .bind(now)
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn save_config_version(
    pool: &PgPool,
    version: &str,
    sources: &Value,
    now: i64,
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query(SAVE_VERSION)
        .bind(version)
        .bind(json_text(sources))
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(PRUNE_VERSIONS)
        .bind(KEPT_VERSIONS)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn config_version(
    pool: &PgPool,
    version: &str,
) -> Result<Option<Value>, StoreError> {
    let text: Option<String> =
        sqlx::query_scalar("SELECT sources FROM config_versions WHERE version = $1")
            .bind(version)
            .fetch_optional(pool)
            .await?;
    text.map(|text| parse_json("config_versions.sources", &text))
        .transpose()
}

pub(super) async fn put_sealed_secret(
    pool: &PgPool,
    name: &str,
    sealed: &[u8],
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(UPSERT_SECRET)
        .bind(name)
        .bind(sealed)
        .bind(now)
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn delete_secret(pool: &PgPool, name: &str) -> Result<bool, StoreError> {
    let deleted = sqlx::query("DELETE FROM secrets WHERE name = $1")
        .bind(name)
        .execute(pool)
        .await?;
    Ok(deleted.rows_affected() > 0)
}

pub(super) async fn secret_names(pool: &PgPool) -> Result<Vec<SecretInfo>, StoreError> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT name, updated_at FROM secrets ORDER BY name")
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(crate::rows::secret_info).collect())
}

pub(super) async fn sealed_secrets(pool: &PgPool) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT name, sealed FROM secrets ORDER BY name")
            .fetch_all(pool)
            .await?,
    )
}

pub(super) async fn count_credentials(pool: &PgPool) -> Result<u64, StoreError> {
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM credentials")
        .fetch_one(pool)
        .await?;
    Ok(u64::try_from(count).unwrap_or_default())
}

/// Deletes every secret and stored credential in one transaction.
pub(super) async fn delete_sealed(pool: &PgPool) -> Result<u64, StoreError> {
    let mut tx = pool.begin().await?;
    let secrets = sqlx::query("DELETE FROM secrets")
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let credentials = sqlx::query("DELETE FROM credentials")
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(secrets.saturating_add(credentials))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Store as _;
    use crate::postgres::test_support::{drop_schema, open};

    #[tokio::test]
    async fn versions_are_pruned_except_the_newest_and_those_unfinished_runs_need() {
        let Some((store, schema)) = open().await else {
            return;
        };
        for (id, status, version) in [
            (uuid::Uuid::now_v7(), "queued", "v0"),
            (uuid::Uuid::now_v7(), "succeeded", "v1"),
        ] {
            sqlx::query(
                "INSERT INTO runs (id, flow, status, trigger, input, headers, config_version, \
                 next_attempt_at, created_at, updated_at) \
                 VALUES ($1, 'orders', $2, 'webhook', '{}', '{}', $3, 0, 0, 0)",
            )
            .bind(id)
            .bind(status)
            .bind(version)
            .execute(&store.pool)
            .await
            .unwrap();
        }
        for i in 0..25 {
            save_config_version(&store.pool, &format!("v{i}"), &json!({ "i": i }), 1000 + i)
                .await
                .unwrap();
        }
        // The 20 newest (v5..v24), and v0 for its queued run.
        assert!(store.config_version("v0").await.unwrap().is_some());
        for gone in ["v1", "v4"] {
            assert!(
                store.config_version(gone).await.unwrap().is_none(),
                "{gone}"
            );
        }
        let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM config_versions")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(kept, 21);

        // Saved again, a version keeps the sources it was first saved with.
        save_config_version(&store.pool, "v5", &json!("other"), 2000)
            .await
            .unwrap();
        assert_eq!(
            store.config_version("v5").await.unwrap(),
            Some(json!({ "i": 5 }))
        );

        drop_schema(&store, schema).await;
    }
}
