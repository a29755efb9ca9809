//! `/api/v1/flows`: the flows in force, and starting a run of one by hand.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use patchbay_engine::plan::{ErrorPolicy, StepPlan};
use patchbay_engine::{Event, FlowPlan, Plan, TriggerPlan};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::page::{NamePage, page_type};
use crate::AppState;
use crate::error::ApiError;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_flows))
        .routes(routes!(show_flow))
        .routes(routes!(start_run))
}

/// What starts a flow: its kind, and the settings that kind shows.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Trigger {
    /// `webhook`, `schedule` or `manual`.
    pub kind: &'static str,
    /// For a `webhook`: `path`, `mode` (`async`: answered 202 once stored;
    /// `sync`: answered by the flow's `respond` step), `verified` (whether
    /// requests must carry a valid signature) and `deduplicated` (whether
    /// repeated events are recognised by a dedupe key). For a `schedule`:
    /// `cron` and `timezone`. Nothing more for `manual`.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub settings: serde_json::Map<String, serde_json::Value>,
}

impl Trigger {
    fn of(trigger: &TriggerPlan) -> Trigger {
        Trigger {
            kind: trigger.kind(),
            settings: trigger.describe(),
        }
    }
}

/// A step, in brief.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StepSummary {
    pub id: String,
    /// The step's kind: `call`, `graphql`, `transform`, `filter`,
    /// `set_state`, `respond`, `switch` or `wait`.
    pub kind: String,
}

/// A flow, in brief.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FlowSummary {
    pub name: String,
    pub trigger: Trigger,
    pub steps: Vec<StepSummary>,
    /// The configuration version the flow belongs to.
    pub config_version: String,
}

page_type!(
    /// A page of flows, by name.
    FlowList of FlowSummary
);

/// A step as compiled: what it does, how it repeats, what a failure does.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StepDetail {
    /// Position in the flow, from 0 (a fallback step shares its step's).
    pub index: usize,
    pub id: String,
    /// The step's kind: `call`, `graphql`, `transform`, `filter`,
    /// `set_state`, `respond`, `switch` or `wait`.
    pub kind: String,
    /// The jq condition of its `when`, if any: the step runs only when true.
    pub when: Option<String>,
    /// The connector a `call` or `graphql` step uses.
    pub connector: Option<String>,
    /// The HTTP method of a `call`.
    pub method: Option<String>,
    /// The path (template) a `call` or `graphql` step requests.
    pub path: Option<String>,
    /// The jq expression of a `transform`, `filter` or `set_state` step,
    /// or the body of a `call` or `respond`.
    pub expression: Option<String>,
    /// The status a `respond` step answers with.
    pub status: Option<u16>,
    /// Whether the step fetches every page of a paginated answer.
    pub paginated: bool,
    /// With `for_each`: the expression giving the items, and how many run
    /// at once.
    pub for_each: Option<ForEach>,
    /// What a failure does: `retry` (the run is rescheduled), `continue`,
    /// `fail` or `fallback`.
    pub on_error: String,
    /// With `on_error: fallback`, the steps run instead.
    #[schema(no_recursion)]
    pub fallback: Vec<StepDetail>,
    /// A `switch`'s branches, in the order they are tried (`default` last).
    pub branches: Vec<BranchDetail>,
    /// The flow a `run_flow` step starts as a child run.
    pub runs_flow: Option<String>,
}

/// One branch of a `switch` step.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BranchDetail {
    /// The case's name, or `default`.
    pub name: String,
    #[schema(no_recursion)]
    pub steps: Vec<StepDetail>,
}

/// A step's `for_each`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ForEach {
    pub items: String,
    pub concurrency: usize,
}

impl StepDetail {
    fn of(step: &StepPlan) -> StepDetail {
        let described = step.describe();
        StepDetail {
            index: step.index,
            id: step.id.clone(),
            kind: step.kind.into(),
            when: step.when.as_ref().map(|when| when.source().into()),
            connector: described.connector,
            method: described.method,
            path: described.path,
            expression: described.expression,
            status: described.status,
            paginated: described.paginated,
            for_each: step.for_each.as_ref().map(|(items, concurrency)| ForEach {
                items: items.source().into(),
                concurrency: *concurrency,
            }),
            on_error: match &step.on_error {
                ErrorPolicy::Retry => "retry",
                ErrorPolicy::Continue => "continue",
                ErrorPolicy::Fail => "fail",
                ErrorPolicy::Fallback(_) => "fallback",
            }
            .into(),
            fallback: match &step.on_error {
                ErrorPolicy::Fallback(steps) => steps.iter().map(StepDetail::of).collect(),
                ErrorPolicy::Retry | ErrorPolicy::Continue | ErrorPolicy::Fail => Vec::new(),
            },
            runs_flow: described.runs_flow.clone(),
            branches: described
                .branches
                .iter()
                .map(|(name, steps)| BranchDetail {
                    name: name.clone(),
                    steps: steps.iter().map(StepDetail::of).collect(),
                })
                .collect(),
        }
    }
}

/// A flow as compiled.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FlowDetail {
    pub name: String,
    pub trigger: Trigger,
    pub steps: Vec<StepDetail>,
    /// Delays before each run-level retry, in milliseconds.
    pub run_retries_ms: Vec<u64>,
    pub config_version: String,
}

fn summary(flow: &FlowPlan, version: &str) -> FlowSummary {
    FlowSummary {
        name: flow.name.clone(),
        trigger: Trigger::of(&flow.trigger),
        steps: flow
            .steps
            .iter()
            .map(|step| StepSummary {
                id: step.id.clone(),
                kind: step.kind.into(),
            })
            .collect(),
        config_version: version.into(),
    }
}

/// List the flows in force, by name.
#[utoipa::path(
    get,
    path = "/flows",
    tag = "flows",
    params(NamePage),
    responses((status = 200, description = "A page of flows, by name", body = FlowList)),
    security(("bearer" = ["read"]))
)]
async fn list_flows(
    State(state): State<AppState>,
    Query(page): Query<NamePage>,
) -> Result<Json<FlowList>, ApiError> {
    let page = page.page()?;
    let plan = state.engine.plan();
    // The plan keeps flows in a sorted map: name order is cursor order.
    let flows: Vec<FlowSummary> = plan
        .flows
        .values()
        .map(|flow| summary(flow, &plan.version))
        .collect();
    Ok(Json(page.of_sorted(flows, |f| f.name.clone()).into()))
}

/// Show a flow as compiled, its steps nested.
#[utoipa::path(
    get,
    path = "/flows/{flow}",
    tag = "flows",
    params(("flow" = String, Path, description = "The flow's name")),
    responses(
        (status = 200, description = "The flow", body = FlowDetail),
        (status = 404, description = "`not_found`: no flow has this name"),
    ),
    security(("bearer" = ["read"]))
)]
async fn show_flow(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<FlowDetail>, ApiError> {
    let plan = state.engine.plan();
    let flow = plan.flows.get(&name).ok_or_else(|| {
        ApiError::not_found(patchbay_engine::EngineError::unknown_flow(&name, &plan).to_string())
    })?;
    Ok(Json(detail(flow, &plan.version)))
}

pub(crate) fn detail(flow: &FlowPlan, version: &str) -> FlowDetail {
    FlowDetail {
        name: flow.name.clone(),
        trigger: Trigger::of(&flow.trigger),
        steps: flow.steps.iter().map(StepDetail::of).collect(),
        run_retries_ms: flow
            .run_retries
            .iter()
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .collect(),
        config_version: version.into(),
    }
}

/// Every flow of `plan` as one page of [`FlowList`], as JSON (see
/// [`crate::documents::flows`]).
pub(crate) fn list_document(plan: &Plan) -> serde_json::Value {
    let flows: Vec<FlowSummary> = plan
        .flows
        .values()
        .map(|flow| summary(flow, &plan.version))
        .collect();
    serde_json::to_value(FlowList {
        items: flows,
        next_cursor: None,
    })
    .unwrap_or_default()
}

/// One flow's [`FlowDetail`] as JSON (see [`crate::documents::flow`]).
pub(crate) fn detail_document(plan: &Plan, name: &str) -> Option<serde_json::Value> {
    let flow = plan.flows.get(name)?;
    serde_json::to_value(detail(flow, &plan.version)).ok()
}

/// A run accepted for execution.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunAccepted {
    pub run_id: Uuid,
    /// Always `accepted`.
    #[schema(example = "accepted")]
    pub status: String,
}

/// Start a run of a flow by hand, whatever its trigger.
///
/// The body is the event (`.` in the flow's expressions); no body means
/// `{}`. Answered once the run is stored.
#[utoipa::path(
    post,
    path = "/flows/{flow}/runs",
    tag = "flows",
    params(("flow" = String, Path, description = "The flow's name")),
    request_body(content = Option<Value>, description = "The event, any JSON; `{}` when empty or `null`", content_type = "application/json"),
    responses(
        (status = 202, description = "The run is stored and will execute", body = RunAccepted),
        (status = 404, description = "`not_found`: no flow has this name"),
        (status = 413, description = "`payload_too_large`: the body exceeds `server.max_body_bytes`"),
    ),
    security(("bearer" = ["operate"]))
)]
async fn start_run(
    State(state): State<AppState>,
    Path(flow): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<RunAccepted>), ApiError> {
    if body.len() > state.settings.max_body_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the body exceeds the limit of {} bytes",
                state.settings.max_body_bytes
            ),
        ));
    }
    let input = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(serde_json::Value::Null) => json!({}),
            Ok(input) => input,
            Err(e) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_json",
                    format!("the body is not valid JSON: {e}"),
                ));
            }
        }
    };
    let outcome = state
        .engine
        .trigger(Event {
            flow,
            trigger: "manual",
            input,
            headers: trace_context(&headers),
            dedupe_key: None,
        })
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RunAccepted {
            run_id: outcome.run_id(),
            status: "accepted".into(),
        }),
    ))
}

/// The W3C trace context a caller sent, so a run started by hand continues
/// the caller's trace as a webhook's does. Only these headers: a manual
/// run's `$headers` is otherwise empty.
fn trace_context(headers: &HeaderMap) -> serde_json::Value {
    let kept: serde_json::Map<String, serde_json::Value> = ["traceparent", "tracestate"]
        .into_iter()
        .filter_map(|name| {
            let value = headers.get(name)?.to_str().ok()?;
            Some((name.to_string(), json!(value)))
        })
        .collect();
    serde_json::Value::Object(kept)
}
