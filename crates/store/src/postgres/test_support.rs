//! What the PostgreSQL store's unit tests share: a store in a schema of its
//! own on the server the integration tests use, when they run against
//! PostgreSQL (`PATCHBAY_TEST_STORE=postgres`, `PATCHBAY_TEST_PG_URL`).

use std::sync::Arc;

use patchbay_testkit::pg::{TestSchema, on_postgres};
use serde_json::json;

use super::{PgOptions, PgStore};
use crate::{IntakeLease, NewRun, RunId};

/// A run of flow `orders` to enqueue, committed with `lease` (`None`:
/// queued for any node).
pub(super) fn new_run(lease: Option<IntakeLease>) -> NewRun {
    NewRun {
        id: RunId::now_v7(),
        flow: "orders".into(),
        trigger: "webhook".into(),
        input: json!({}),
        headers: json!({}),
        config_version: "v1".into(),
        dedupe_key: None,
        parent: None,
        lease,
    }
}

/// A fresh store and its schema; `None` when the tests do not run against
/// PostgreSQL.
pub(super) async fn open() -> Option<(Arc<PgStore>, TestSchema)> {
    if !on_postgres() {
        return None;
    }
    let schema = TestSchema::new();
    let store = open_in(&schema).await;
    Some((store, schema))
}

/// Another store on the schema of a store [`open`] returned: another
/// node on the same database.
pub(super) async fn open_in(schema: &TestSchema) -> Arc<PgStore> {
    let store = PgStore::open(PgOptions {
        schema: Some(schema.name().to_string()),
        ..PgOptions::new(schema.url())
    })
    .await
    .unwrap();
    Arc::new(store)
}

/// Closes the store's connections, then drops its schema.
pub(super) async fn drop_schema(store: &PgStore, schema: TestSchema) {
    store.close().await;
    drop(schema);
}
