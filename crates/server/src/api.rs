//! The management API under `/api/v1`: flows, runs and manual triggers.

use std::str::FromStr;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use patchbay_engine::{Event, TriggerPlan};
use patchbay_store::{RunFilter, RunId, RunStatus};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/flows", get(list_flows))
        .route("/flows/{flow}/runs", post(start_run))
        .route("/runs", get(list_runs))
        .route("/runs/{id}", get(show_run))
}

async fn list_flows(State(state): State<AppState>) -> Json<Value> {
    let flows: Vec<Value> = state
        .engine
        .plan()
        .flows
        .values()
        .map(|flow| {
            let trigger = match &flow.trigger {
                TriggerPlan::Webhook(hook) => json!({ "webhook": { "path": hook.path } }),
                TriggerPlan::Schedule { cron, timezone } => {
                    json!({ "schedule": { "cron": cron.pattern.to_string(), "timezone": timezone.name() } })
                }
                TriggerPlan::Manual => json!({ "manual": {} }),
            };
            let steps: Vec<Value> = flow
                .steps
                .iter()
                .map(|s| json!({ "id": s.id, "kind": s.action.kind() }))
                .collect();
            json!({ "name": flow.name, "trigger": trigger, "steps": steps })
        })
        .collect();
    Json(json!({ "flows": flows, "config_version": state.engine.plan().version }))
}

async fn start_run(
    State(state): State<AppState>,
    Path(flow): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let input = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("the body is not valid JSON: {e}"),
            )
        })?
    };
    let outcome = state
        .engine
        .trigger(Event {
            flow,
            trigger: "manual",
            input,
            headers: json!({}),
            dedupe_key: None,
        })
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "run_id": outcome.run_id(), "status": "accepted" })),
    )
        .into_response())
}

#[derive(Deserialize)]
struct RunsQuery {
    flow: Option<String>,
    status: Option<String>,
    before: Option<String>,
    limit: Option<u32>,
}

async fn list_runs(
    State(state): State<AppState>,
    Query(query): Query<RunsQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = match query.status.as_deref() {
        Some(name) => Some(RunStatus::parse(name).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown status `{name}` (queued, running, succeeded, dead, skipped)"
            ))
        })?),
        None => None,
    };
    let before = match query.before.as_deref() {
        Some(id) => Some(parse_id(id)?),
        None => None,
    };
    let filter = RunFilter {
        flow: query.flow,
        status,
        before,
        limit: query.limit.unwrap_or(50).min(1000),
    };
    let runs = state
        .engine
        .store()
        .list_runs(&filter)
        .await
        .map_err(patchbay_engine::EngineError::from)?;
    let next = runs
        .last()
        .filter(|_| runs.len() as u32 == filter.limit)
        .map(|r| r.id);
    Ok(Json(json!({ "runs": runs, "next_before": next })))
}

async fn show_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
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
    Ok(Json(json!({ "run": run, "journal": journal })))
}

fn parse_id(text: &str) -> Result<RunId, ApiError> {
    RunId::from_str(text).map_err(|_| ApiError::bad_request(format!("`{text}` is not a run id")))
}
