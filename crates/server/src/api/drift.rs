//! `/api/v1/drift`: how upstream replies differ from their connectors'
//! contracts, one record per kind of difference (see
//! `patchbay_store::Drift`). Few records (kinds, not replies): one list,
//! not pages.

use axum::Json;
use axum::extract::State;
use patchbay_store::Drift;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_drift))
}

/// Every kind of contract drift recorded, by connector and operation.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct DriftList {
    items: Vec<Drift>,
}

/// List contract drift: for each connector and operation, where replies
/// differed from the documented response (a JSON pointer into the body),
/// what the contract expected and what came instead, when it was first and
/// last seen, how often, and one redacted example.
#[utoipa::path(
    get,
    path = "/drift",
    tag = "drift",
    responses((status = 200, description = "Every kind of drift recorded", body = DriftList)),
    security(("bearer" = ["read"]))
)]
async fn list_drift(State(state): State<AppState>) -> Result<Json<DriftList>, ApiError> {
    let items = state
        .engine
        .store()
        .list_drift()
        .await
        .map_err(patchbay_engine::EngineError::from)?;
    Ok(Json(DriftList { items }))
}
