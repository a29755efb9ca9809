//! `/api/v1/errors`: runs that failed the same way, grouped — so an outage
//! that killed a thousand runs reads as one line with its count, and can
//! be replayed as one (`POST /dead-letters/replay` with its `error`).

use axum::Json;
use axum::extract::{Query, State};
use patchbay_store::{ErrorGroup, RunStatus};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;

/// Groups in one answer.
const MAX_GROUPS: u32 = 100;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_errors))
}

/// Filters of `GET /errors`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ErrorsQuery {
    /// Runs in this status (default `dead`); `succeeded` runs have no error.
    #[param(value_type = Option<RunStatus>)]
    status: Option<String>,
    /// Only runs of this flow.
    flow: Option<String>,
}

/// Runs of one flow that failed with the same error.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorGroupView {
    #[serde(flatten)]
    pub group: ErrorGroup,
    /// What kind of failure it is (`server_error`, `client_error`,
    /// `expression`...), from the newest run's failed step; `null` when
    /// its journal does not say.
    pub class: Option<String>,
}

/// The groups, the largest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorGroups {
    pub items: Vec<ErrorGroupView>,
}

/// List errors, grouped.
///
/// Runs in `status` (default `dead`) grouped by flow and error, word for
/// word, the largest groups first (at most 100), each with its count, its
/// newest run and the class of that run's failure.
#[utoipa::path(
    get,
    path = "/errors",
    tag = "runs",
    params(ErrorsQuery),
    responses((status = 200, description = "The groups, the largest first", body = ErrorGroups)),
    security(("bearer" = ["read"]))
)]
async fn list_errors(
    State(state): State<AppState>,
    Query(query): Query<ErrorsQuery>,
) -> Result<Json<ErrorGroups>, ApiError> {
    let status = super::runs::parse_status(query.status.as_deref())?.unwrap_or(RunStatus::Dead);
    let store = state.engine.store();
    let groups = store
        .error_groups(status, query.flow.as_deref(), MAX_GROUPS)
        .await
        .map_err(patchbay_engine::EngineError::from)?;
    let mut items = Vec::with_capacity(groups.len());
    for group in groups {
        let journal = store
            .journal(group.latest_run)
            .await
            .map_err(patchbay_engine::EngineError::from)?;
        let class = journal
            .iter()
            .rev()
            .find(|entry| entry.current && entry.error_class.is_some())
            .and_then(|entry| entry.error_class.clone());
        items.push(ErrorGroupView { group, class });
    }
    Ok(Json(ErrorGroups { items }))
}
