//! `/api/v1/runs`: list and search runs, show one with its journal, cancel
//! and replay.
//!
//! A run is answered as the store keeps it ([`Run`], whose schema the store
//! derives under its `openapi` feature), with the credentials in its headers
//! masked, so the API's run cannot drift from the stored one. A journal
//! entry has a view of its own: it leaves out the run id and gives the
//! status as text.

use std::str::FromStr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use patchbay_engine::ReplaySelection;
use patchbay_store::{CancelOutcome, InputEdit, JournalEntry, Run, RunFilter, RunId, RunStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::page::{RunPage, page_type, run_cursor};
use crate::AppState;
use crate::error::ApiError;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_runs))
        .routes(routes!(show_run))
        .routes(routes!(cancel_run))
        .routes(routes!(replay_run))
}

/// Header names whose values are credentials and never shown.
fn is_sensitive_header(name: &str) -> bool {
    const EXACT: [&str; 5] = [
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
    ];
    const PARTS: [&str; 5] = ["token", "secret", "password", "api-key", "apikey"];
    EXACT.contains(&name) || PARTS.iter().any(|part| name.contains(part))
}

fn masked_headers(headers: Value) -> Value {
    match headers {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(name, value)| {
                    let value = if is_sensitive_header(&name.to_ascii_lowercase()) {
                        Value::String("****".into())
                    } else {
                        value
                    };
                    (name, value)
                })
                .collect::<Map<String, Value>>(),
        ),
        other => other,
    }
}

/// A run as the API shows it: as stored, credentials in its headers masked.
pub(crate) fn shown(mut run: Run) -> Run {
    run.headers = masked_headers(run.headers);
    run
}

page_type!(
    /// A page of runs, newest first.
    RunList of Run
);

/// A run with every journal entry, in the order recorded.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunDetail {
    pub run: Run,
    pub journal: Vec<JournalEntry>,
    /// The inputs the run had before a replay with an edited input, oldest
    /// first (`run.input` is the one in force); empty when never edited.
    pub input_edits: Vec<InputEdit>,
}

/// What became of a run after a cancel or replay.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunChange {
    pub run_id: Uuid,
    pub status: RunStatus,
}

/// Filters of `GET /runs`; every one given must match.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RunsQuery {
    /// Only runs of this flow.
    flow: Option<String>,
    /// Only runs in this status.
    #[param(value_type = Option<RunStatus>)]
    status: Option<String>,
    /// Only runs created at or after this time (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    since: Option<String>,
    /// Only runs created before this time (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    until: Option<String>,
    /// Only runs whose error contains this text (ASCII letters match
    /// regardless of case).
    q: Option<String>,
}

pub(crate) fn parse_run_id(name: &str, text: &str) -> Result<RunId, ApiError> {
    RunId::from_str(text).map_err(|_| {
        ApiError::invalid_parameter(
            name,
            format!("`{name}` must be a run id (a UUID); got `{text}`"),
        )
    })
}

fn parse_time(name: &str, text: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    text.map(|text| {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                ApiError::invalid_parameter(
                    name,
                    format!(
                        "`{name}` must be an RFC 3339 time like 2026-01-31T09:30:00Z; got `{text}`"
                    ),
                )
            })
    })
    .transpose()
}

pub(crate) fn parse_status(text: Option<&str>) -> Result<Option<RunStatus>, ApiError> {
    text.map(|name| {
        RunStatus::parse(name).ok_or_else(|| {
            let known: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::invalid_parameter(
                "status",
                format!("`status` must be one of {}; got `{name}`", known.join(", ")),
            )
        })
    })
    .transpose()
}

/// Runs a page of `filter`, newest first, after the page's cursor.
pub(crate) async fn page_of_runs(
    state: &AppState,
    mut filter: RunFilter,
    page: &RunPage,
) -> Result<RunList, ApiError> {
    let page = page.page()?;
    filter.before = page.after;
    // One more than asked tells whether another page follows.
    filter.limit = page.limit + 1;
    let runs = state
        .engine
        .store()
        .list_runs(&filter)
        .await
        .map_err(patchbay_engine::EngineError::from)?;
    let shown = runs.into_iter().map(shown).collect();
    Ok(page.finish(shown, |run: &Run| run_cursor(run.id)).into())
}

/// List runs, newest first.
#[utoipa::path(
    get,
    path = "/runs",
    tag = "runs",
    params(RunsQuery, RunPage),
    responses((status = 200, description = "A page of runs, newest first", body = RunList)),
    security(("bearer" = ["read"]))
)]
async fn list_runs(
    State(state): State<AppState>,
    Query(query): Query<RunsQuery>,
    Query(page): Query<RunPage>,
) -> Result<Json<RunList>, ApiError> {
    let filter = RunFilter {
        status: parse_status(query.status.as_deref())?,
        since: parse_time("since", query.since.as_deref())?,
        until: parse_time("until", query.until.as_deref())?,
        flow: query.flow,
        error_contains: query.q.filter(|q| !q.is_empty()),
        ..RunFilter::default()
    };
    Ok(Json(page_of_runs(&state, filter, &page).await?))
}

/// Show a run and its journal.
#[utoipa::path(
    get,
    path = "/runs/{id}",
    tag = "runs",
    params(("id" = Uuid, Path, description = "The run's id")),
    responses(
        (status = 200, description = "The run and every step attempt", body = RunDetail),
        (status = 404, description = "`not_found`: no run has this id"),
    ),
    security(("bearer" = ["read"]))
)]
async fn show_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RunDetail>, ApiError> {
    let id = parse_run_id("id", &id)?;
    let store = state.engine.store();
    let run = store
        .run(id)
        .await
        .map_err(patchbay_engine::EngineError::from)?
        .ok_or_else(|| ApiError::not_found(format!("no run `{id}`")))?;
    let journal = store
        .journal(id)
        .await
        .map_err(patchbay_engine::EngineError::from)?;
    let input_edits = store
        .input_edits(id)
        .await
        .map_err(patchbay_engine::EngineError::from)?;
    Ok(Json(RunDetail {
        run: shown(run),
        journal,
        input_edits,
    }))
}

/// Cancel a queued or running run.
///
/// A queued run never starts. A running run stops at its next step
/// boundary: the step in flight completes, but nothing more is recorded
/// and no further step runs.
#[utoipa::path(
    post,
    path = "/runs/{id}/cancel",
    tag = "runs",
    params(("id" = Uuid, Path, description = "The run's id")),
    responses(
        (status = 200, description = "The run is cancelled", body = RunChange),
        (status = 404, description = "`not_found`: no run has this id"),
        (status = 409, description = "`conflict`: the run has already ended"),
    ),
    security(("bearer" = ["operate"]))
)]
async fn cancel_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RunChange>, ApiError> {
    let id = parse_run_id("id", &id)?;
    match state.engine.cancel(id).await? {
        CancelOutcome::Cancelled(run) => Ok(Json(RunChange {
            run_id: run.id,
            status: RunStatus::Cancelled,
        })),
        CancelOutcome::Finished(status) => Err(ApiError::conflict(format!(
            "run `{id}` has already ended ({status}); only queued and running runs can be cancelled"
        ))
        .with_details(serde_json::json!({ "status": status.as_str() }))),
        CancelOutcome::NotFound => Err(ApiError::not_found(format!("no run `{id}`"))),
    }
}

/// Options of a replay.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayRequest {
    /// Run every step again (with the same idempotency keys) instead of
    /// resuming at the failed step. Default false.
    #[serde(default)]
    pub from_start: bool,
    /// A corrected event to run with instead of the run's input (any JSON).
    /// The run then starts over (as with `from_start`), and the input it
    /// had is kept in its `input_edits`.
    #[serde(default)]
    pub input: Option<Value>,
}

/// The JSON body of a request, or `T::default()` when there is none (or
/// it is `null`).
pub(crate) fn optional_body<T: Default + serde::de::DeserializeOwned>(
    body: &Bytes,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    match value {
        Value::Null => return Ok(T::default()),
        Value::Object(_) => {}
        _ => return Err(ApiError::bad_request("the body must be a JSON object")),
    }
    serde_json::from_value(value)
        .map_err(|e| ApiError::bad_request(format!("the body is not as expected: {e}")))
}

/// Replay a dead run.
///
/// The run is queued again, due now, its retries reset. It resumes at the
/// step that failed, reusing the recorded results of the steps before;
/// `from_start` runs every step again. With `input`, the run starts over
/// with that event instead of its own, which stays on record in the run's
/// `input_edits`.
#[utoipa::path(
    post,
    path = "/runs/{id}/replay",
    tag = "runs",
    params(("id" = Uuid, Path, description = "The run's id")),
    request_body(content = Option<ReplayRequest>, description = "Optional; `{}` by default", content_type = "application/json"),
    responses(
        (status = 200, description = "The run is queued again", body = RunChange),
        (status = 404, description = "`not_found`: no run has this id"),
        (status = 409, description = "`conflict`: the run is not dead"),
    ),
    security(("bearer" = ["operate"]))
)]
async fn replay_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<RunChange>, ApiError> {
    let id = parse_run_id("id", &id)?;
    let request: ReplayRequest = optional_body(&body)?;
    let replayed = match &request.input {
        Some(input) => state.engine.replay_with_input(id, input).await?,
        None => state
            .engine
            .replay(
                ReplaySelection {
                    runs: Some(vec![id]),
                    ..ReplaySelection::default()
                },
                request.from_start,
            )
            .await?
            .contains(&id),
    };
    if replayed {
        return Ok(Json(RunChange {
            run_id: id,
            status: RunStatus::Queued,
        }));
    }
    let run = state
        .engine
        .store()
        .run(id)
        .await
        .map_err(patchbay_engine::EngineError::from)?;
    match run {
        Some(run) => Err(ApiError::conflict(format!(
            "run `{id}` is {}; only dead runs can be replayed",
            run.status
        ))
        .with_details(serde_json::json!({ "status": run.status.as_str() }))),
        None => Err(ApiError::not_found(format!("no run `{id}`"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_headers_are_masked() {
        let headers = serde_json::json!({
            "authorization": "Bearer x",
            "x-shop-token": "t",
            "x-api-key": "k",
            "Cookie": "c",
            "content-type": "application/json",
            "webhook-id": "msg_1",
        });
        let masked = masked_headers(headers);
        assert_eq!(masked["authorization"], "****");
        assert_eq!(masked["x-shop-token"], "****");
        assert_eq!(masked["x-api-key"], "****");
        assert_eq!(masked["Cookie"], "****");
        assert_eq!(masked["content-type"], "application/json");
        assert_eq!(masked["webhook-id"], "msg_1");
    }
}
