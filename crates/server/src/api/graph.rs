//! A flow drawn as a picture: `GET /api/v1/flows/{flow}/graph` answers an
//! SVG of the flow as compiled — its trigger, then its steps top to bottom,
//! a `switch`'s cases side by side below it, an `on_error: fallback`'s
//! steps to the right of their step, `for_each` and `run_flow` marked on
//! their node — with each step's attempts of the last hour. Given a run
//! (`?run=ID`), it marks the path that run took: the steps it did, the one
//! that failed, those skipped and those it never reached.
//!
//! Drawn here rather than in the browser so the picture is the same for
//! every client and can be snapshot-tested. The SVG uses presentation
//! attributes and classes only (the dashboard's policy forbids inline
//! styles), and every text from the configuration is escaped.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use patchbay_store::{JournalEntry, RunStatus, StepStatus, StepTotal};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::flows::{FlowDetail, StepDetail};
use crate::AppState;
use crate::error::ApiError;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(flow_graph))
}

/// Width and height of a step's box.
const NODE_W: i32 = 260;
const NODE_H: i32 = 62;
/// Space between boxes, down and across.
const GAP_Y: i32 = 30;
const GAP_X: i32 = 36;
/// Room above a branch for its label.
const LABEL_H: i32 = 18;
const MARGIN: i32 = 16;
/// Characters that fit a box's line at the font size the stylesheet sets.
const LINE_CHARS: usize = 38;

/// How far a run got at a step, for the overlay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mark {
    Done,
    Failed,
    Skipped,
    /// The run ended without reaching it.
    NotReached,
    /// The run has not got there yet.
    Pending,
}

impl Mark {
    fn class(self) -> &'static str {
        match self {
            Mark::Done => "done",
            Mark::Failed => "failed",
            Mark::Skipped => "skipped",
            Mark::NotReached => "not-reached",
            Mark::Pending => "pending",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Mark::Done => "done",
            Mark::Failed => "failed",
            Mark::Skipped => "skipped",
            Mark::NotReached => "never reached",
            Mark::Pending => "not yet",
        }
    }
}

/// Each step's mark for a run: the outcome of its last current journal
/// entry (a `for_each`'s collecting entry, not its items); a step without
/// one was never reached if the run has ended, or is still ahead.
pub(crate) fn marks(
    flow: &FlowDetail,
    status: RunStatus,
    journal: &[JournalEntry],
) -> HashMap<String, Mark> {
    let ended = matches!(
        status,
        RunStatus::Succeeded | RunStatus::Dead | RunStatus::Skipped | RunStatus::Cancelled
    );
    let mut marks = HashMap::new();
    // In journal order: a failed step that a later attempt passed is done.
    for entry in journal.iter().filter(|e| e.current && e.item.is_none()) {
        let mark = match entry.status {
            StepStatus::Succeeded => Mark::Done,
            StepStatus::Failed => Mark::Failed,
            StepStatus::Skipped => Mark::Skipped,
        };
        marks.insert(entry.step_id.clone(), mark);
    }
    let mut all = Vec::new();
    every_step(&flow.steps, &mut all);
    for step in all {
        marks.entry(step.id.clone()).or_insert(if ended {
            Mark::NotReached
        } else {
            Mark::Pending
        });
    }
    marks
}

fn every_step<'a>(steps: &'a [StepDetail], into: &mut Vec<&'a StepDetail>) {
    for step in steps {
        into.push(step);
        every_step(&step.fallback, into);
        for branch in &step.branches {
            every_step(&branch.steps, into);
        }
    }
}

/// The SVG of `flow`, with each step's totals and, for a run, its marks.
pub(crate) fn svg(
    flow: &FlowDetail,
    totals: &HashMap<String, StepTotal>,
    marks: Option<&HashMap<String, Mark>>,
) -> String {
    let mut canvas = Canvas {
        body: String::new(),
        totals,
        marks,
    };
    let trigger = trigger_text(flow);
    let top = MARGIN;
    canvas.node(
        MARGIN,
        top,
        "trigger",
        &[&format!("trigger: {}", flow.trigger.kind), &trigger, ""],
        None,
        format!("{} trigger {trigger}", flow.trigger.kind).trim_end(),
    );
    let below = top + NODE_H;
    let (width, height) = canvas.block(
        &flow.steps,
        MARGIN,
        below + GAP_Y,
        Some(anchor_below(MARGIN, below)),
    );
    let width = width.max(NODE_W) + 2 * MARGIN;
    let height = below + GAP_Y + height + MARGIN;
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"flow-graph\" viewBox=\"0 0 {width} {height}\" \
         width=\"{width}\" height=\"{height}\" role=\"img\" aria-labelledby=\"flow-graph-title\">\
         <title id=\"flow-graph-title\">Flow {}: {} step(s)</title>\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">\
         <path d=\"M 0 0 L 10 5 L 0 10 z\" class=\"arrow-head\"/></marker></defs>",
        escape(&flow.name),
        count_steps(&flow.steps),
    );
    out.push_str(&canvas.body);
    out.push_str("</svg>");
    out
}

fn count_steps(steps: &[StepDetail]) -> usize {
    let mut all = Vec::new();
    every_step(steps, &mut all);
    all.len()
}

fn trigger_text(flow: &FlowDetail) -> String {
    let settings = &flow.trigger.settings;
    [
        "path", "cron", "subject", "stream", "queue", "topic", "event", "every",
    ]
    .iter()
    .find_map(|key| {
        settings
            .get(*key)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    })
    .unwrap_or_default()
}

/// Where an edge into a node starts: the bottom middle of the box above.
fn anchor_below(x: i32, bottom: i32) -> (i32, i32) {
    (x + NODE_W / 2, bottom)
}

struct Canvas<'a> {
    body: String,
    totals: &'a HashMap<String, StepTotal>,
    marks: Option<&'a HashMap<String, Mark>>,
}

impl Canvas<'_> {
    /// Draws `steps` top to bottom from (`x`, `y`), the first joined to
    /// `from`; returns the block's width and height.
    fn block(
        &mut self,
        steps: &[StepDetail],
        x: i32,
        y: i32,
        from: Option<(i32, i32)>,
    ) -> (i32, i32) {
        let mut width = 0;
        let mut cursor = y;
        // Where the edges into the next step start (several after a switch).
        let mut ends: Vec<(i32, i32)> = from.into_iter().collect();
        for step in steps {
            for end in &ends {
                self.edge(*end, (x + NODE_W / 2, cursor), None);
            }
            let (w, h, out) = self.step(step, x, cursor);
            width = width.max(w);
            cursor += h + GAP_Y;
            ends = out;
        }
        (width, (cursor - GAP_Y - y).max(0))
    }

    /// One step with what hangs off it; returns its width, height and the
    /// points the next step's edges start from.
    fn step(&mut self, step: &StepDetail, x: i32, y: i32) -> (i32, i32, Vec<(i32, i32)>) {
        let mark = self.marks.and_then(|marks| marks.get(&step.id).copied());
        let totals = self.totals.get(&step.id);
        let mut kind = step.kind.clone();
        if let Some(each) = &step.for_each {
            kind = format!("{kind} · for each, {} at once", each.concurrency);
        }
        let detail = match (&step.connector, &step.runs_flow) {
            (Some(connector), _) => [
                Some(connector.as_str()),
                step.method.as_deref(),
                step.path.as_deref(),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" "),
            (None, Some(flow)) => format!("→ flow {flow}"),
            (None, None) => step
                .when
                .as_ref()
                .map(|w| format!("when {w}"))
                .or_else(|| step.expression.clone())
                .unwrap_or_default(),
        };
        let figures = match (mark, totals) {
            (Some(mark), _) => format!("this run: {}", mark.label()),
            (None, Some(t)) => {
                let mut text = format!("last hour: {} ok", t.succeeded);
                if t.failed > 0 {
                    let share = t.failed as f64 * 100.0 / (t.succeeded + t.failed) as f64;
                    let _ = write!(text, " · {} failed ({share:.0}%)", t.failed);
                }
                if t.skipped > 0 {
                    let _ = write!(text, " · {} skipped", t.skipped);
                }
                text
            }
            (None, None) => "last hour: no attempts".to_string(),
        };
        let mut class = format!("step kind-{}", step.kind);
        if step.for_each.is_some() {
            class.push_str(" fan-out");
        }
        if let Some(mark) = mark {
            let _ = write!(class, " mark-{}", mark.class());
        } else if totals.is_some_and(|t| t.failed > 0) {
            class.push_str(" has-failures");
        }
        let title = format!("{} ({}) {detail} — {figures}", step.id, step.kind);
        self.node(
            x,
            y,
            &class,
            &[&format!("{} · {kind}", step.id), &detail, &figures],
            Some(&step.id),
            &title,
        );
        let mut width = NODE_W;
        let mut height = NODE_H;
        let mut ends = vec![anchor_below(x, y + NODE_H)];

        if !step.fallback.is_empty() {
            let fx = x + NODE_W + GAP_X;
            let fy = y + LABEL_H;
            self.label(fx, y + LABEL_H - 5, "on error");
            self.edge(
                (x + NODE_W, y + NODE_H / 2),
                (fx, fy + NODE_H / 2),
                Some("fallback"),
            );
            let (w, h) = self.block(&step.fallback, fx, fy, None);
            width = width.max(NODE_W + GAP_X + w);
            height = height.max(LABEL_H + h);
        }

        if !step.branches.is_empty() {
            let by = y + NODE_H + GAP_Y + LABEL_H;
            let mut bx = x;
            let mut tallest = 0;
            ends.clear();
            let from = anchor_below(x, y + NODE_H);
            // Columns of empty cases: the flow goes straight on there.
            let mut straight = Vec::new();
            for branch in &step.branches {
                let label = format!("case {}", branch.name);
                if branch.steps.is_empty() {
                    // The line runs down the column's left edge, the label
                    // beside it.
                    self.label(bx + 8, by - 5, &label);
                    straight.push(bx);
                    bx += NODE_W / 2 + GAP_X;
                    continue;
                }
                self.label(bx, by - 5, &label);
                let (w, h) = self.block(&branch.steps, bx, by, Some(from));
                ends.push(anchor_below(bx, by + h));
                tallest = tallest.max(h);
                bx += w + GAP_X;
            }
            width = width.max(bx - GAP_X - x);
            height = NODE_H + GAP_Y + LABEL_H + tallest;
            let bottom = y + height;
            for column in straight {
                let mid = from.1 + GAP_Y / 3;
                let _ = write!(
                    self.body,
                    "<path d=\"M {} {} L {} {mid} L {column} {mid} L {column} {bottom}\" class=\"edge\"/>",
                    from.0, from.1, from.0
                );
                ends.push((column, bottom));
            }
            // Branches end at different heights: each edge out starts at
            // the bottom of the tallest.
            ends = ends.into_iter().map(|(ex, _)| (ex, bottom)).collect();
        }
        (width, height, ends)
    }

    fn node(
        &mut self,
        x: i32,
        y: i32,
        class: &str,
        lines: &[&str; 3],
        step: Option<&str>,
        title: &str,
    ) {
        let data = step
            .map(|id| format!(" data-step=\"{}\"", escape(id)))
            .unwrap_or_default();
        let _ = write!(
            self.body,
            "<g class=\"node {class}\"{data}><title>{}</title>\
             <rect x=\"{x}\" y=\"{y}\" width=\"{NODE_W}\" height=\"{NODE_H}\" rx=\"8\"/>",
            escape(title)
        );
        for (i, (line, kind)) in lines.iter().zip(["name", "detail", "figures"]).enumerate() {
            if line.is_empty() {
                continue;
            }
            let ty = y + 19 + 18 * i as i32;
            let _ = write!(
                self.body,
                "<text x=\"{}\" y=\"{ty}\" class=\"{kind}\">{}</text>",
                x + 10,
                escape(&fit(line))
            );
        }
        self.body.push_str("</g>");
    }

    fn edge(&mut self, from: (i32, i32), to: (i32, i32), class: Option<&str>) {
        let (x1, y1) = from;
        let (x2, y2) = to;
        // Straight down, or down-across-down between columns.
        let path = if x1 == x2 || y1 == y2 {
            format!("M {x1} {y1} L {x2} {y2}")
        } else if class.is_some() {
            let mid = (x1 + x2) / 2;
            format!("M {x1} {y1} L {mid} {y1} L {mid} {y2} L {x2} {y2}")
        } else {
            let mid = y1 + GAP_Y / 3;
            format!("M {x1} {y1} L {x1} {mid} L {x2} {mid} L {x2} {y2}")
        };
        let _ = write!(
            self.body,
            "<path d=\"{path}\" class=\"edge{}\" marker-end=\"url(#arrow)\"/>",
            class.map(|c| format!(" {c}")).unwrap_or_default()
        );
    }

    fn label(&mut self, x: i32, y: i32, text: &str) {
        let _ = write!(
            self.body,
            "<text x=\"{x}\" y=\"{y}\" class=\"branch-label\">{}</text>",
            escape(&fit(text))
        );
    }
}

/// `text` cut to what a box's line holds.
fn fit(text: &str) -> String {
    if text.chars().count() <= LINE_CHARS {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(LINE_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// Text for XML content and attribute values: the API reference's HTML
/// escaping, with control characters (which XML 1.0 forbids) made spaces.
fn escape(text: &str) -> String {
    super::docs::escape(&text.replace(char::is_control, " "))
}

/// `?run=ID` of the graph.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct GraphQuery {
    /// A run of this flow whose path to mark.
    #[param(value_type = Option<uuid::Uuid>)]
    run: Option<String>,
}

/// Draw a flow.
///
/// An SVG picture of the flow as compiled: its trigger, then its steps top
/// to bottom, a `switch`'s cases side by side, fallbacks to the right of
/// their step, `for_each` and `run_flow` marked on their node, each with
/// its attempts of the last hour. With `run`, each step is marked with what
/// that run did there: `done`, `failed`, `skipped`, `not-reached` (the run
/// ended first) or `pending`.
#[utoipa::path(
    get,
    path = "/flows/{flow}/graph",
    tag = "flows",
    params(("flow" = String, Path, description = "The flow's name"), GraphQuery),
    responses(
        (status = 200, description = "The flow as an SVG picture", content_type = "image/svg+xml", body = String),
        (status = 400, description = "`invalid_request`: `run` is not a run id, or a run of another flow"),
        (status = 404, description = "`not_found`: no flow has this name, or no run has this id"),
    ),
    security(("bearer" = ["read"]))
)]
async fn flow_graph(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<GraphQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let plan = state.engine.plan();
    let flow = plan.flows.get(&name).ok_or_else(|| {
        ApiError::not_found(patchbay_engine::EngineError::unknown_flow(&name, &plan).to_string())
    })?;
    let detail = super::flows::detail(flow, &plan.version);
    let store = state.engine.store();
    let marks = match query.run.as_deref() {
        None => None,
        Some(text) => {
            let id = super::runs::parse_run_id("run", text)?;
            let run = store
                .run(id)
                .await
                .map_err(patchbay_engine::EngineError::from)?
                .ok_or_else(|| ApiError::not_found(format!("no run `{id}`")))?;
            if run.flow != name {
                return Err(ApiError::invalid_parameter(
                    "run",
                    format!("run `{id}` is a run of `{}`, not of `{name}`", run.flow),
                ));
            }
            let journal = store
                .journal(id)
                .await
                .map_err(patchbay_engine::EngineError::from)?;
            Some(marks(&detail, run.status, &journal))
        }
    };
    let since = chrono::Utc::now() - chrono::Duration::hours(1);
    let totals: HashMap<String, StepTotal> = store
        .step_totals(&name, since)
        .await
        .map_err(patchbay_engine::EngineError::from)?
        .into_iter()
        .map(|t| (t.step.clone(), t))
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        svg(&detail, &totals, marks.as_ref()),
    ))
}
