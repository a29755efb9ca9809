//! `/api/v1/config`: the configuration in force, and reloading it from disk
//! without a restart.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use patchbay_engine::Plan;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show_config))
        .routes(routes!(reload_config))
}

/// The configuration in force.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConfigView {
    /// Identifies the configuration: a hash of every source file.
    pub version: String,
    /// When it was loaded (at start, or by the last effective reload).
    pub loaded_at: DateTime<Utc>,
    /// The names of its flows.
    pub flows: Vec<String>,
    /// The names of its connectors.
    pub connectors: Vec<String>,
}

/// What a reload did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Reload {
    /// The configuration version now in force.
    pub version: String,
    /// The version in force before.
    pub previous: String,
    /// False when nothing changed on disk (nor in the secrets it uses).
    pub changed: bool,
}

/// Show the configuration in force.
#[utoipa::path(
    get,
    path = "/config",
    tag = "config",
    responses((status = 200, description = "The configuration in force", body = ConfigView)),
    security(("bearer" = ["admin"]))
)]
async fn show_config(State(state): State<AppState>) -> Result<Json<ConfigView>, ApiError> {
    let plan = state.engine.plan();
    let connectors = state
        .engine
        .connectors()
        .names()
        .into_iter()
        .map(str::to_string)
        .collect();
    Ok(Json(view(&plan, state.engine.loaded_at(), connectors)))
}

fn view(plan: &Plan, loaded_at: DateTime<Utc>, connectors: Vec<String>) -> ConfigView {
    ConfigView {
        version: plan.version.clone(),
        loaded_at,
        flows: plan.flows.keys().cloned().collect(),
        connectors,
    }
}

/// [`ConfigView`] as JSON (see [`crate::documents::config`]).
pub(crate) fn document(plan: &Plan, loaded_at: DateTime<Utc>, connectors: Vec<String>) -> Value {
    serde_json::to_value(view(plan, loaded_at, connectors)).unwrap_or(Value::Null)
}

/// Load the configuration again from disk.
///
/// It is validated as `patchbay check` would; when valid and different it
/// is swapped in without a restart. Runs in progress finish with the
/// configuration they started with.
#[utoipa::path(
    post,
    path = "/config/reload",
    tag = "config",
    responses(
        (status = 200, description = "The configuration in force after the reload", body = Reload),
        (status = 409, description = "`reload_unsupported`: this node cannot load its configuration again"),
        (status = 422, description = "`invalid_config`: the configuration on disk is invalid; `details.problems` lists each with file, line and column. The running one is unchanged."),
    ),
    security(("bearer" = ["admin"]))
)]
async fn reload_config(State(state): State<AppState>) -> Result<Json<Reload>, ApiError> {
    let reloaded = state.engine.reload().await?;
    Ok(Json(Reload {
        version: reloaded.version,
        previous: reloaded.previous,
        changed: reloaded.changed,
    }))
}
