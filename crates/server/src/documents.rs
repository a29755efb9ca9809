//! The documents the management API answers with, built outside a request,
//! so that the command line prints the same data from a project's files and
//! store as it gets from a running node (`patchbay runs list` and
//! `patchbay runs list --url ...` agree field for field).

use chrono::{DateTime, Utc};
use patchbay_engine::Plan;
use patchbay_store::{Run, RunId};
use serde_json::Value;

/// A run as the API shows it: as stored, credentials in its headers masked.
pub fn shown_run(run: Run) -> Run {
    crate::api::runs::shown(run)
}

/// The `next_cursor` of a list of runs (or audit entries) whose last item
/// is `id`.
pub fn run_cursor(id: RunId) -> String {
    crate::api::page::run_cursor(id)
}

/// The run id a `next_cursor` of a list of runs (or audit entries)
/// continues after; `None` when `cursor` is not one.
pub fn after_run_cursor(cursor: &str) -> Option<RunId> {
    crate::api::page::decode_run_cursor(cursor)
}

/// The `next_cursor` of a list ordered by name whose last item is `name`.
pub fn name_cursor(name: &str) -> String {
    crate::api::page::name_cursor(name)
}

/// The flows of `plan` as `GET /api/v1/flows` lists them (one page holding
/// every flow).
pub fn flows(plan: &Plan) -> Value {
    crate::api::flows::list_document(plan)
}

/// One flow as `GET /api/v1/flows/{flow}` shows it; `None` when `plan` has
/// no flow of that name.
pub fn flow(plan: &Plan, name: &str) -> Option<Value> {
    crate::api::flows::detail_document(plan, name)
}

/// The configuration as `GET /api/v1/config` shows it.
pub fn config(plan: &Plan, loaded_at: DateTime<Utc>, connectors: Vec<String>) -> Value {
    crate::api::config::document(plan, loaded_at, connectors)
}
