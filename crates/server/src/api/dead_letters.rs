//! `/api/v1/dead-letters`: runs that failed for good, and replaying them.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use patchbay_engine::ReplaySelection;
use patchbay_store::{RunFilter, RunStatus};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::page::RunPage;
use super::runs::{RunList, optional_body, page_of_runs};
use crate::AppState;
use crate::error::ApiError;

/// Most runs one replay request may name.
const MAX_IDS: usize = 1000;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_dead_letters))
        .routes(routes!(replay_dead_letters))
}

/// Filters of `GET /dead-letters`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeadLettersQuery {
    /// Only dead runs of this flow.
    flow: Option<String>,
}

/// List dead runs (dead letters), newest first.
#[utoipa::path(
    get,
    path = "/dead-letters",
    tag = "dead-letters",
    params(DeadLettersQuery, RunPage),
    responses((status = 200, description = "A page of dead runs, newest first", body = RunList)),
    security(("bearer" = ["read"]))
)]
async fn list_dead_letters(
    State(state): State<AppState>,
    Query(query): Query<DeadLettersQuery>,
    Query(page): Query<RunPage>,
) -> Result<Json<RunList>, ApiError> {
    let filter = RunFilter {
        flow: query.flow,
        status: Some(RunStatus::Dead),
        ..RunFilter::default()
    };
    Ok(Json(page_of_runs(&state, filter, &page).await?))
}

/// Which dead runs to replay: those in `ids` (or every one) of `flow` (or
/// of any flow) whose error contains `error` (or any). `{}` replays every
/// dead run.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayDeadLetters {
    /// Only these runs (at most 1000); those that are not dead are left
    /// alone.
    #[schema(max_items = 1000)]
    ids: Option<Vec<Uuid>>,
    /// Only runs of this flow.
    flow: Option<String>,
    /// Only runs whose error contains this text (ASCII letters match
    /// regardless of case): a group of `GET /errors`, say.
    #[schema(min_length = 1)]
    error: Option<String>,
    /// Run every step again instead of resuming at the failed one.
    #[serde(default)]
    from_start: bool,
}

/// The runs queued again.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Replayed {
    /// Ids of the runs replayed: those named (or selected) that were dead.
    replayed: Vec<Uuid>,
}

/// Replay dead runs.
///
/// Each is queued again, due now, its retries reset, and resumes at the
/// step that failed (`from_start`: at the first step).
#[utoipa::path(
    post,
    path = "/dead-letters/replay",
    tag = "dead-letters",
    request_body(content = Option<ReplayDeadLetters>, description = "`{}` (or no body) replays every dead run", content_type = "application/json"),
    responses((status = 200, description = "The runs queued again", body = Replayed)),
    security(("bearer" = ["operate"]))
)]
async fn replay_dead_letters(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Replayed>, ApiError> {
    let request: ReplayDeadLetters = optional_body(&body)?;
    if request.ids.as_ref().is_some_and(|ids| ids.len() > MAX_IDS) {
        return Err(ApiError::invalid_parameter(
            "ids",
            format!("at most {MAX_IDS} `ids` per request"),
        ));
    }
    // An empty text is in every error: it would replay every dead run.
    if request.error.as_ref().is_some_and(|error| error.is_empty()) {
        return Err(ApiError::invalid_parameter(
            "error",
            "`error` is empty; leave it out to replay runs whatever their error",
        ));
    }
    let which = ReplaySelection {
        runs: request.ids,
        flow: request.flow,
        error: request.error,
    };
    let replayed = state.engine.replay(which, request.from_start).await?;
    Ok(Json(Replayed { replayed }))
}
