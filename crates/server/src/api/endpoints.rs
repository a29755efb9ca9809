//! `/api/v1/endpoints`: the webhook endpoints `deliver` steps send to,
//! whether each is failing (since when) or disabled, and enabling one
//! again (see `patchbay_store::Endpoint`). Few records (one per
//! endpoint): one list, not pages.

use axum::Json;
use axum::extract::{Path, State};
use patchbay_store::Endpoint;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_endpoints))
        .routes(routes!(enable_endpoint))
}

/// Every endpoint that a delivery was attempted to, by name.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct EndpointList {
    items: Vec<Endpoint>,
}

/// List webhook endpoints: for each, when its last attempt was made and
/// how it went, since when every attempt has failed, and whether it was
/// disabled for failing its whole `disable_after` period.
#[utoipa::path(
    get,
    path = "/endpoints",
    tag = "endpoints",
    responses((status = 200, description = "Every endpoint delivered to", body = EndpointList)),
    security(("bearer" = ["read"]))
)]
async fn list_endpoints(State(state): State<AppState>) -> Result<Json<EndpointList>, ApiError> {
    let items = state
        .engine
        .store()
        .endpoints()
        .await
        .map_err(patchbay_engine::EngineError::from)?;
    Ok(Json(EndpointList { items }))
}

/// Enable an endpoint again.
///
/// Deliveries to it are attempted again, and its failing spell starts
/// afresh. Runs that ended dead while it was disabled stay dead: replay
/// them (`/dead-letters/replay`) to deliver their messages.
#[utoipa::path(
    post,
    path = "/endpoints/{name}/enable",
    tag = "endpoints",
    params(("name" = String, Path, description = "The endpoint's name (its connector)")),
    responses(
        (status = 200, description = "The endpoint, enabled", body = Endpoint),
        (status = 404, description = "`not_found`: no delivery was ever attempted to this endpoint"),
    ),
    security(("bearer" = ["operate"]))
)]
async fn enable_endpoint(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Endpoint>, ApiError> {
    let store = state.engine.store();
    let not_found = || ApiError::not_found(format!("no delivery was ever attempted to `{name}`"));
    if !store
        .enable_endpoint(&name)
        .await
        .map_err(patchbay_engine::EngineError::from)?
    {
        return Err(not_found());
    }
    let record = store
        .endpoint(&name)
        .await
        .map_err(patchbay_engine::EngineError::from)?
        .ok_or_else(not_found)?;
    Ok(Json(record))
}
