//! `poll: {connector, path, every | cron, ...}`: a flow fed by an API that
//! has no webhooks. Every `every` (or at the instants of `cron`) the poller
//! GETs `path` through the connector, and each item of the answer becomes a
//! run, its input the item.
//!
//! - **Incremental.** `query` (jq over the saved cursor) gives the request's
//!   query parameters, such as `{updated_since: .}`; `cursor` (jq over the
//!   items of a poll) gives the cursor to save once their runs are
//!   committed, such as `map(.updated_at) | max`. The cursor lives in the
//!   store with the flow's other state, so a restart (or another node
//!   taking over) goes on from it.
//! - **Exactly one run per item.** Each run carries the dedupe key
//!   `poll:FLOW:KEY`, `KEY` from the `key` expression (`.id` by default), so
//!   an item seen again (the overlap of an inclusive `since`, the same item
//!   on two pages while the list shifts, a poll repeated after a crash
//!   before its cursor was saved) makes no second run.
//! - **Conditional requests.** Without `paginate`, the poller keeps the
//!   answer's `ETag` and `Last-Modified` and sends them back as
//!   `If-None-Match` and `If-Modified-Since`: a `304 Not Modified` costs
//!   neither a run nor a cursor change. (With pages, an unchanged first page
//!   says nothing of the others, so a paginated poll always fetches.)
//! - **One poller.** On a store several nodes share, only the leader polls.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use patchbay_config::{HumanDuration, Located, PaginateConfig};
use patchbay_connector::{CallError, CallRequest, Pagination};
use patchbay_expr::{Budget, Expr, Vars};
use patchbay_store::{EnqueueOutcome, NewRun};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tracing::{debug, info, warn};

use super::{Kind, SourceContext, Trigger, TriggerCompiler};
use crate::EngineError;
use crate::step::scalar_text;

/// How many runs of one poll are handed to intake at once (it commits them
/// in groups).
const SUBMIT_AT_ONCE: usize = 64;

/// What an expression over an upstream's answer may take.
const BUDGET: Budget = Budget {
    steps: Some(10_000_000),
    time: Some(Duration::from_secs(2)),
    ..Budget::UNLIMITED
};

/// `poll`'s settings.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PollConfig {
    /// The connector of the API polled.
    connector: Located<String>,
    /// The path polled, under the connector's URL (`GET`).
    path: Located<String>,
    /// How often to poll (`5m`); the first poll is at start. Or `cron`.
    #[serde(default)]
    every: Option<Located<HumanDuration>>,
    /// A cron expression (UTC) giving the instants to poll at, instead of
    /// `every`.
    #[serde(default)]
    cron: Option<Located<String>>,
    /// jq over the saved cursor (`null` before the first) giving the query
    /// parameters, e.g. `{updated_since: .}`; null values are left out.
    #[serde(default)]
    query: Option<Located<String>>,
    /// jq over the answer's body giving the array of items (default `.`).
    /// With `paginate`, `paginate.items` gives each page's instead.
    #[serde(default)]
    items: Option<Located<String>>,
    /// jq over an item giving its key, which makes one run of it however
    /// often it is seen (default `.id`). Include a version
    /// (`"\(.id):\(.updated_at)"`) for a run per change of an item.
    #[serde(default)]
    key: Option<Located<String>>,
    /// jq over the array of a poll's items giving the cursor to save, e.g.
    /// `map(.updated_at) | max`; `null` keeps the saved one.
    #[serde(default)]
    cursor: Option<Located<String>>,
    /// Fetch every page, as a `call`'s `paginate`.
    #[serde(default)]
    paginate: Option<Located<PaginateConfig>>,
}

#[derive(Clone, Debug)]
enum Timing {
    Every(Duration),
    Cron {
        written: String,
        cron: Box<croner::Cron>,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct Poll {
    connector: String,
    path: String,
    timing: Timing,
    query: Option<Expr>,
    items: Option<Expr>,
    key: Expr,
    cursor: Option<Expr>,
    pagination: Option<Arc<Pagination>>,
}

/// What a poll keeps between polls, in the store.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct Saved {
    #[serde(default)]
    cursor: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_modified: Option<String>,
}

/// Why a poll started no run.
#[derive(Debug, thiserror::Error)]
enum PollError {
    #[error("connector `{0}` is not configured")]
    NoConnector(String),
    #[error("{0}")]
    Call(#[from] CallError),
    #[error("{0}")]
    Pages(String),
    #[error("runs not committed ({0}); the next poll fetches their items again")]
    NotCommitted(EngineError),
    #[error("`{place}`: {message}")]
    Expression {
        place: &'static str,
        message: String,
    },
    #[error("the store failed: {0}")]
    Store(#[from] patchbay_store::StoreError),
}

impl Kind for Poll {
    const KEY: &'static str = "poll";
    type Config = PollConfig;

    fn compile(config: PollConfig, compiler: &mut TriggerCompiler<'_>) -> Option<Self> {
        let mut ok = true;
        if !compiler
            .project
            .config
            .connectors
            .contains_key(&config.connector.value)
        {
            compiler.error(
                config.connector.line,
                config.connector.column,
                format!("poll: unknown connector `{}`", config.connector.value),
            );
            ok = false;
        }
        if !config.path.value.starts_with('/') {
            compiler.error(
                config.path.line,
                config.path.column,
                format!("poll: path `{}` must start with `/`", config.path.value),
            );
            ok = false;
        }
        let timing = match (&config.every, &config.cron) {
            (Some(every), None) if every.value.0 >= Duration::from_secs(1) => {
                Some(Timing::Every(every.value.0))
            }
            (Some(every), None) => {
                compiler.error(
                    every.line,
                    every.column,
                    "poll: `every` must be at least 1s".into(),
                );
                None
            }
            (None, Some(cron)) => match croner::Cron::from_str(&cron.value) {
                Ok(parsed) => Some(Timing::Cron {
                    written: cron.value.clone(),
                    cron: Box::new(parsed),
                }),
                Err(e) => {
                    compiler.error(
                        cron.line,
                        cron.column,
                        format!("poll: invalid cron expression `{}`: {e}", cron.value),
                    );
                    None
                }
            },
            (Some(_), Some(cron)) => {
                compiler.error(
                    cron.line,
                    cron.column,
                    "poll: give `every` or `cron`, not both".into(),
                );
                None
            }
            (None, None) => {
                compiler.error_here("poll: say how often to poll with `every` or `cron`".into());
                None
            }
        };
        if let (Some(items), Some(_)) = (&config.items, &config.paginate) {
            compiler.error(
                items.line,
                items.column,
                "poll: with `paginate`, each page's items come from `paginate.items`; \
                 remove `items`"
                    .into(),
            );
            ok = false;
        }
        let pagination = match &config.paginate {
            None => Some(None),
            Some(paginate) => match Pagination::for_call(paginate) {
                Ok(pagination) => Some(Some(Arc::new(pagination))),
                Err(problems) => {
                    for problem in problems {
                        compiler.error(
                            problem.line,
                            problem.column,
                            format!("poll: paginate: {}", problem.message),
                        );
                    }
                    None
                }
            },
        };
        let mut expr = |key: &str, source: Option<&Located<String>>| match source {
            None => Some(None),
            Some(source) => match Expr::compile(source) {
                Ok(expr) => Some(Some(expr)),
                Err(e) => {
                    compiler.error(
                        source.line,
                        source.column,
                        format!("poll: invalid jq in `{key}`: {e}"),
                    );
                    None
                }
            },
        };
        let query = expr("query", config.query.as_ref());
        let items = expr("items", config.items.as_ref());
        let key = expr("key", config.key.as_ref());
        let cursor = expr("cursor", config.cursor.as_ref());
        if !ok {
            return None;
        }
        let key = match key? {
            Some(key) => key,
            None => Expr::compile(".id").ok()?,
        };
        Some(Poll {
            connector: config.connector.value,
            path: config.path.value,
            timing: timing?,
            query: query?,
            items: items?,
            key,
            cursor: cursor?,
            pagination: pagination?,
        })
    }
}

impl Trigger for Poll {
    fn describe(&self) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("connector".into(), json!(self.connector));
        out.insert("path".into(), json!(self.path));
        match &self.timing {
            Timing::Every(every) => {
                out.insert(
                    "every".into(),
                    json!(humantime::format_duration(*every).to_string()),
                );
            }
            Timing::Cron { written, .. } => {
                out.insert("cron".into(), json!(written));
            }
        }
        out.insert("paginated".into(), json!(self.pagination.is_some()));
        out
    }

    fn source(&self, cx: SourceContext) -> Option<BoxFuture<'static, ()>> {
        let poll = self.clone();
        Some(async move { poll.run(cx).await }.boxed())
    }
}

impl Poll {
    /// Polls on its timing until shutdown; on a shared store, only while
    /// this node leads.
    async fn run(&self, cx: SourceContext) {
        let Some(membership) = cx.exclusive.clone() else {
            self.poll_on_time(&cx).await;
            return;
        };
        while membership.until_leader(&cx.shutdown).await {
            tokio::select! {
                () = self.poll_on_time(&cx) => return,
                () = membership.until_follower() => {}
            }
        }
    }

    async fn poll_on_time(&self, cx: &SourceContext) {
        // `every` is a grid from the start, not a pause after each poll: a
        // slow poll does not push the later ones back, and a poll that
        // overran its slot is followed by the next at once, not by two.
        let mut ticks = match &self.timing {
            Timing::Every(every) => {
                let mut ticks = tokio::time::interval(*every);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                Some(ticks)
            }
            Timing::Cron { .. } => None,
        };
        loop {
            let due = async {
                match (&mut ticks, &self.timing) {
                    (Some(ticks), _) => {
                        ticks.tick().await;
                        true
                    }
                    (None, Timing::Cron { cron, .. }) => {
                        let now = cx.clock.now();
                        match cron.find_next_occurrence(&now, false) {
                            Ok(next) => {
                                tokio::time::sleep((next - now).to_std().unwrap_or_default()).await;
                                true
                            }
                            Err(e) => {
                                warn!(flow = %cx.flow, error = %e, "poll has no next occurrence; it stops");
                                false
                            }
                        }
                    }
                    (None, Timing::Every(_)) => false,
                }
            };
            tokio::select! {
                due = due => if !due { return },
                () = cx.shutdown.cancelled() => return,
            }
            match self.poll_once(cx).await {
                Ok(Polled::NotModified) => debug!(flow = %cx.flow, "poll: not modified"),
                Ok(Polled::Items { seen, new }) => {
                    info!(flow = %cx.flow, seen, new, "poll: items seen, new runs started")
                }
                Err(e) => {
                    warn!(flow = %cx.flow, error = %e, "poll failed; the next one tries again")
                }
            }
        }
    }

    /// One poll: fetch, start a run per new item, save the cursor.
    async fn poll_once(&self, cx: &SourceContext) -> Result<Polled, PollError> {
        let state_name = state_name(&cx.flow);
        let saved: Saved =
            serde_json::from_value(cx.store.flow_state(&state_name).await?).unwrap_or_default();
        let connector = cx
            .connectors
            .get(&self.connector)
            .ok_or_else(|| PollError::NoConnector(self.connector.clone()))?;
        let query = match &self.query {
            Some(expr) => {
                let value = eval(expr, &saved.cursor).map_err(|message| PollError::Expression {
                    place: "query",
                    message,
                })?;
                crate::step::pairs("query", value).map_err(|e| PollError::Expression {
                    place: "query",
                    message: e.to_string(),
                })?
            }
            None => Vec::new(),
        };
        let mut headers = Vec::new();
        if self.pagination.is_none() {
            if let Some(etag) = &saved.etag {
                headers.push(("If-None-Match".to_string(), etag.clone()));
            }
            if let Some(modified) = &saved.last_modified {
                headers.push(("If-Modified-Since".to_string(), modified.clone()));
            }
        }
        let request = CallRequest {
            method: "GET".into(),
            path: self.path.clone(),
            query,
            headers,
            body: None,
            idempotency_key: None,
            rate_key: None,
            // A poll is not a step: on a connector that keys its breakers,
            // it goes through the breaker of the empty key.
            breaker_key: None,
        };
        let policy = connector.retry_policy();
        let (items, etag, last_modified) = match &self.pagination {
            Some(pagination) => {
                let collected = connector
                    .paginate(request, policy, pagination, Vars::default())
                    .collect()
                    .await
                    .map_err(|e| PollError::Pages(e.to_string()))?;
                (collected.items, None, None)
            }
            None => {
                let response = match connector.send(&request, policy).await {
                    Ok(delivered) => delivered.response,
                    Err(failed) if failed.error.status() == Some(304) => {
                        return Ok(Polled::NotModified);
                    }
                    Err(failed) => return Err(failed.error.into()),
                };
                let header = |name: &str| {
                    response
                        .headers
                        .get(name)
                        .and_then(Value::as_str)
                        .map(str::to_string)
                };
                let (etag, last_modified) = (header("etag"), header("last-modified"));
                let items = match &self.items {
                    Some(expr) => {
                        eval(expr, &response.body).map_err(|message| PollError::Expression {
                            place: "items",
                            message,
                        })?
                    }
                    None => response.body,
                };
                let items = match items {
                    Value::Array(items) => items,
                    Value::Null => Vec::new(),
                    other => {
                        return Err(PollError::Expression {
                            place: "items",
                            message: format!(
                                "must produce an array, got {}",
                                crate::failure::type_name(&other)
                            ),
                        });
                    }
                };
                (items, etag, last_modified)
            }
        };
        // Every key first: an item without one fails the poll before any
        // run starts, and the cursor stays where it was.
        let mut runs = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let key = eval(&self.key, item).map_err(|message| PollError::Expression {
                place: "key",
                message: format!("item {index}: {message}"),
            })?;
            if key.is_null() {
                return Err(PollError::Expression {
                    place: "key",
                    message: format!("item {index} has no key (the expression gave null)"),
                });
            }
            runs.push(NewRun {
                id: uuid::Uuid::now_v7(),
                flow: cx.flow.clone(),
                trigger: Self::KEY.into(),
                input: item.clone(),
                headers: json!({}),
                config_version: cx.config_version.clone(),
                dedupe_key: Some(format!("poll:{}:{}", cx.flow, scalar_text(&key))),
                parent: None,
                lease: None,
            });
        }
        let seen = runs.len();
        let outcomes: Vec<_> = futures::stream::iter(runs)
            .map(|run| cx.intake.submit(run))
            .buffer_unordered(SUBMIT_AT_ONCE)
            .collect()
            .await;
        let mut new = 0;
        for outcome in outcomes {
            match outcome {
                Ok(EnqueueOutcome::Created(_)) => new += 1,
                Ok(EnqueueOutcome::Duplicate(_)) => {}
                // The cursor is not saved: the next poll asks for these
                // items again, and the committed ones are not repeated.
                Err(e) => return Err(PollError::NotCommitted(e)),
            }
        }
        let cursor = match &self.cursor {
            Some(expr) => {
                match eval(expr, &Value::Array(items)).map_err(|message| PollError::Expression {
                    place: "cursor",
                    message,
                })? {
                    Value::Null => saved.cursor.clone(),
                    next => next,
                }
            }
            None => saved.cursor.clone(),
        };
        let next = Saved {
            cursor,
            etag,
            last_modified,
        };
        if next != saved {
            let value = serde_json::to_value(&next).unwrap_or(Value::Null);
            cx.store.put_flow_state(&state_name, &value).await?;
        }
        Ok(Polled::Items { seen, new })
    }
}

/// What a poll found.
enum Polled {
    NotModified,
    /// Items in the answer, and how many were new.
    Items {
        seen: usize,
        new: usize,
    },
}

/// Where a flow's poll keeps its cursor: beside the flow's own state, under
/// a name no flow can have (flow names have no `:`).
fn state_name(flow: &str) -> String {
    format!("{flow}:poll")
}

fn eval(expr: &Expr, input: &Value) -> Result<Value, String> {
    let vars = Vars {
        budget: BUDGET,
        ..Vars::default()
    };
    expr.eval(input, &vars).map_err(|e| e.to_string())
}
