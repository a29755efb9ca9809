//! What the PostgreSQL store's unit tests share: a store in a schema of its
//! own on the server the integration tests use, when they run against
//! PostgreSQL (`PATCHBAY_TEST_STORE=postgres`, `PATCHBAY_TEST_PG_URL`).

use std::sync::Arc;

use sqlx::AssertSqlSafe;

use super::{PgOptions, PgStore};

/// A fresh store and its schema's name; `None` when the tests do not run
/// against PostgreSQL.
pub(super) async fn open() -> Option<(Arc<PgStore>, String)> {
    if std::env::var("PATCHBAY_TEST_STORE").ok().as_deref() != Some("postgres") {
        return None;
    }
    let url = std::env::var("PATCHBAY_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("test_{}", uuid::Uuid::now_v7().simple());
    let store = PgStore::open(PgOptions {
        schema: Some(schema.clone()),
        ..PgOptions::new(url)
    })
    .await
    .unwrap();
    Some((Arc::new(store), schema))
}

/// Another store on the schema of a store [`open`] returned: another
/// node on the same database.
pub(super) async fn open_in(schema: &str) -> Arc<PgStore> {
    let url = std::env::var("PATCHBAY_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let store = PgStore::open(PgOptions {
        schema: Some(schema.to_string()),
        ..PgOptions::new(url)
    })
    .await
    .unwrap();
    Arc::new(store)
}

/// Drops the store's schema and closes its connections.
pub(super) async fn drop_schema(store: &PgStore, schema: &str) {
    sqlx::query(AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
        .execute(&store.pool)
        .await
        .unwrap();
    store.close().await;
}
