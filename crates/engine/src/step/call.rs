//! `call: CONNECTOR METHOD /path` (or `call: CONNECTOR operationId` on a
//! connector with a `spec:`) with `query`, `headers`, `body`,
//! `idempotency_key`, `retry` and `paginate`: an HTTP call through a
//! connector. Its result is `{status, headers, body}` (or, paginated, the
//! collected items).
//!
//! With a contract, compiling the call also checks it against the
//! operation (see `super::contract`): the operation exists, the required
//! query parameters and body properties are given where they can be known,
//! and the reply's schema is recorded for the reads of later steps.

use std::collections::BTreeMap;

use async_trait::async_trait;
use patchbay_config::{
    AuthConfig, ContractMode, Located, PaginateConfig, ResponseHeaders, RetryConfig,
};
use patchbay_connector::redact::SensitiveHeaders;
use patchbay_connector::{CallRequest, Pagination, RetryPolicy};
use patchbay_contract::{Contract, Operation, Segment as PathPart};
use patchbay_expr::{Expr, Template};
use patchbay_store::{DriftKind, MAX_DRIFT_EXAMPLE_CHARS};
use serde::Deserialize;
use serde_json::Value;

use super::contract::{literal_query, path_parts};
use super::exchange::Exchange;
use super::{Compiler, Description, Kind, Performed, Step, StepContext};
use crate::contracts::ReplyCheck;
use crate::failure::StepError;

/// `call`'s keys.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// An HTTP call: `CONNECTOR METHOD /path`, where `{jq}` in the path is
    /// replaced by the expression's value, e.g. `erp PUT /customers/{.id}`;
    /// or `CONNECTOR operationId` on a connector with a `spec`. Its result
    /// is `{status, headers, body}`.
    call: Located<String>,
    /// jq producing an object of query parameters.
    #[serde(default)]
    query: Option<Located<String>>,
    /// jq producing an object of extra request headers.
    #[serde(default)]
    headers: Option<Located<String>>,
    /// jq producing the JSON request body.
    #[serde(default)]
    body: Option<Located<String>>,
    /// jq producing the call's idempotency key (default for `POST` and
    /// `PATCH`: derived from the run id, the step and the item). Retries and
    /// resumed runs send the same key, so the upstream applies the call once.
    #[serde(default)]
    idempotency_key: Option<Located<String>>,
    /// Retries of the call, replacing its connector's `retry`.
    #[serde(default)]
    retry: Option<Located<RetryConfig>>,
    /// Fetch the results page by page.
    #[serde(default)]
    paginate: Option<Located<PaginateConfig>>,
    /// With `call: CONNECTOR operationId`: the jq giving each of the
    /// operation's path parameters, by name (`{contactId: .id}`).
    #[serde(default)]
    path_params: BTreeMap<String, Located<String>>,
}

#[derive(Debug)]
pub(crate) struct Call {
    connector: String,
    method: String,
    path: Template,
    query: Option<Expr>,
    headers: Option<Expr>,
    body: Option<Expr>,
    idempotency_key: Option<Expr>,
    /// The step's retry policy; `None` means the connector's.
    retry: Option<RetryPolicy>,
    pagination: Option<Pagination>,
    /// The response headers its result keeps.
    response_headers: KeptHeaders,
    /// What its replies are held against at run time, with a contract.
    reply_check: Option<std::sync::Arc<ReplyCheck>>,
}

/// The response headers a call's result keeps (the connector's
/// `response_headers`, or all when the flow may read `headers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeptHeaders {
    All,
    /// These, lower case; none leaves no `headers` in the result.
    Named(Vec<String>),
}

impl KeptHeaders {
    fn of(setting: Option<&ResponseHeaders>, flow_reads_headers: bool) -> KeptHeaders {
        match setting {
            _ if flow_reads_headers => KeptHeaders::All,
            Some(ResponseHeaders::All(true)) => KeptHeaders::All,
            Some(ResponseHeaders::All(false)) | None => KeptHeaders::Named(Vec::new()),
            Some(ResponseHeaders::Named(names)) => {
                KeptHeaders::Named(names.iter().map(|name| name.to_ascii_lowercase()).collect())
            }
        }
    }

    /// Drops the headers of `output` (`{status, headers, body}`) that are
    /// not kept, and `headers` itself when none is.
    fn apply(&self, output: &mut Value) {
        let KeptHeaders::Named(names) = self else {
            return;
        };
        let Some(fields) = output.as_object_mut() else {
            return;
        };
        if let Some(Value::Object(headers)) = fields.get_mut("headers") {
            headers.retain(|name, _| names.iter().any(|kept| kept.eq_ignore_ascii_case(name)));
            if !headers.is_empty() {
                return;
            }
        }
        fields.remove("headers");
    }
}

impl Kind for Call {
    const KEY: &'static str = "call";
    const FANS_OUT: bool = true;
    type Config = Config;

    fn compile(config: Config, compiler: &mut Compiler<'_>) -> Option<Self> {
        let spec = match CallSpec::parse(&config.call) {
            Ok(spec) => spec,
            Err(e) => {
                compiler.error(&config.call, e);
                return None;
            }
        };
        let known = compiler.known_connector(&config.call, &spec.connector);
        let (method, path, operation) = match &spec.target {
            Target::Path { method, path } => {
                if let Some((_, first)) = config.path_params.iter().next() {
                    compiler.error(
                        first,
                        "`path_params` goes with `call: CONNECTOR operationId`; write the values in the path".into(),
                    );
                }
                let operation = compiler.contract(&spec.connector).and_then(|contract| {
                    operation_at(
                        compiler,
                        contract,
                        &config.call,
                        &spec.connector,
                        method,
                        path,
                    )
                });
                (method.clone(), path.clone(), operation)
            }
            Target::Operation(id) => {
                let operation = named_operation(compiler, &config.call, &spec.connector, id)?;
                let path = fill_path_params(compiler, &config, operation)?;
                (operation.method().to_string(), path, Some(operation))
            }
        };
        let path = match Template::parse(&path) {
            Ok(template) => {
                compiler.template_holes("call", &config.call, &template);
                Some(template)
            }
            Err(e) => {
                compiler.error(
                    &config.call,
                    format!("invalid jq in the path `{path}`: {e}"),
                );
                None
            }
        };
        let mut reply_check = None;
        if let Some(operation) = operation {
            compiler.note_call(&config.call, &spec.connector, operation);
            check_operation(compiler, &config, &spec.connector, operation);
            if config.paginate.is_none() {
                compiler.expect_reply(&spec.connector, operation);
                reply_check = compiler
                    .reply_check(&config.call, &spec.connector, operation)
                    .map(std::sync::Arc::new);
            }
        }
        let retry = retry_policy(compiler, config.retry.as_ref());
        let pagination = pagination(compiler, config.paginate.as_ref(), false);
        let query = compiler.optional("query", config.query.as_ref());
        let headers = compiler.optional("headers", config.headers.as_ref());
        let body = compiler.optional("body", config.body.as_ref());
        let idempotency_key = compiler.optional("idempotency_key", config.idempotency_key.as_ref());
        if !known {
            return None;
        }
        let response_headers = KeptHeaders::of(
            compiler
                .project
                .config
                .connectors
                .get(&spec.connector)
                .map(|connector| &connector.response_headers),
            compiler.flow_reads_field("headers"),
        );
        Some(Call {
            connector: spec.connector,
            method,
            path: path?,
            query: query?,
            headers: headers?,
            body: body?,
            idempotency_key: idempotency_key?,
            retry: retry?,
            pagination: pagination?,
            response_headers,
            reply_check,
        })
    }
}

/// The operation of `contract` that `METHOD path` calls; reports when
/// there is none.
fn operation_at<'a>(
    compiler: &mut Compiler<'_>,
    contract: &'a Contract,
    at: &Located<String>,
    connector: &str,
    method: &str,
    path: &str,
) -> Option<Operation<'a>> {
    let found = find_operation(compiler, contract, connector, method, path);
    if found.is_none() {
        let declared: Vec<String> = contract
            .operations()
            .iter()
            .map(|op| format!("{} {}", op.method(), op.path()))
            .collect();
        let wanted = format!("{method} {}", path.split('?').next().unwrap_or(path));
        let hint = patchbay_config::suggest_closest(&wanted, declared.iter().map(String::as_str))
            .map(|closest| format!(" — did you mean `{closest}`?"))
            .unwrap_or_default();
        compiler.error(
            at,
            format!(
                "`{wanted}` is not an operation of connector `{connector}`'s spec ({}){hint}",
                compiler.contract_file(connector).display()
            ),
        );
    }
    found
}

/// The operation `METHOD path` calls. A spec's paths are relative to its
/// server URL, a call's to its connector's URL, and the two need not end
/// at the same place (`url: https://api.example.com/v2` with paths
/// `/contacts`, or with a server `https://api.example.com` and paths
/// `/v2/contacts`): the request's whole path is matched after each of the
/// servers' prefixes, and the call's own path as written.
fn find_operation<'a>(
    compiler: &Compiler<'_>,
    contract: &'a Contract,
    connector: &str,
    method: &str,
    path: &str,
) -> Option<Operation<'a>> {
    let own = path_parts(path);
    let base = compiler
        .project
        .config
        .connectors
        .get(connector)
        // A URL from `${env:...}` is not known here; its path is left out.
        .filter(|config| !config.url.contains("${"))
        .map(|config| path_parts(patchbay_contract::url_path(&config.url)))
        .unwrap_or_default();
    let mut whole = base;
    whole.extend(own.iter().cloned());
    let mut candidates = vec![own];
    for prefix in contract.server_prefixes() {
        let starts = prefix.len() <= whole.len()
            && prefix
                .iter()
                .zip(&whole)
                .all(|(want, got)| matches!(got, PathPart::Literal(got) if got == want));
        if starts {
            candidates.push(whole[prefix.len()..].to_vec());
        }
    }
    candidates
        .iter()
        .find_map(|candidate| contract.match_operation(method, candidate))
}

/// The operation `call: CONNECTOR operationId` names; reports when there
/// is none, or no contract to look it up in.
fn named_operation<'a>(
    compiler: &mut Compiler<'a>,
    at: &Located<String>,
    connector: &str,
    id: &str,
) -> Option<Operation<'a>> {
    let Some(contract) = compiler.contract(connector) else {
        let has_spec = compiler
            .project
            .config
            .connectors
            .get(connector)
            .is_some_and(|config| config.spec.is_some());
        // A spec that did not load was reported already; an unknown
        // connector too.
        if !has_spec && compiler.project.config.connectors.contains_key(connector) {
            compiler.error(
                at,
                format!(
                    "`{id}` names an operation, which needs a `spec:` on connector `{connector}`; or write `{connector} METHOD /path`"
                ),
            );
        }
        return None;
    };
    let found = contract.operation_by_id(id);
    if found.is_none() {
        let hint = patchbay_config::suggest_closest(id, contract.operation_ids())
            .map(|closest| format!(" — did you mean `{closest}`?"))
            .unwrap_or_default();
        compiler.error(
            at,
            format!(
                "connector `{connector}`'s spec ({}) has no operation `{id}`{hint}",
                compiler.contract_file(connector).display()
            ),
        );
    }
    found
}

/// The path template of a call by `operationId`: the operation's path with
/// each `{name}` replaced by its `path_params` expression.
fn fill_path_params(
    compiler: &mut Compiler<'_>,
    config: &Config,
    operation: Operation<'_>,
) -> Option<String> {
    let names = operation.path_params();
    let mut ok = true;
    for (name, source) in &config.path_params {
        if !names.contains(&name.as_str()) {
            let hint = patchbay_config::suggest_closest(name, names.iter().copied())
                .map(|closest| format!(" — did you mean `{closest}`?"))
                .unwrap_or_default();
            compiler.error(
                source,
                format!(
                    "`{}` has no path parameter `{name}`{hint}",
                    operation.path()
                ),
            );
            ok = false;
        }
    }
    let mut path = operation.path().to_string();
    for name in names {
        match config.path_params.get(name) {
            Some(source) => {
                path = path.replace(&format!("{{{name}}}"), &format!("{{({})}}", source.value));
            }
            None => {
                compiler.error(
                    &config.call,
                    format!(
                        "`{} {}` needs path parameter `{name}`: add it to `path_params`",
                        operation.method(),
                        operation.path()
                    ),
                );
                ok = false;
            }
        }
    }
    ok.then_some(path)
}

/// Checks what a call supplies against what its operation requires, where
/// that can be known without running it: query parameters (those written
/// in the path, and the keys of a `query` object literal) and the
/// properties of a `body` object literal.
fn check_operation(
    compiler: &mut Compiler<'_>,
    config: &Config,
    connector: &str,
    operation: Operation<'_>,
) {
    let shown = format!("{} {}", operation.method(), operation.path());
    let required = operation.required_query();
    // A paginated call's paging parameters are the paginator's; the
    // connector's API key may travel in the query.
    if !required.is_empty() && config.paginate.is_none() {
        let mut supplied = literal_query(&config.call);
        if let Some(Located {
            value: AuthConfig::ApiKey {
                query: Some(name), ..
            },
            ..
        }) = compiler
            .project
            .config
            .connectors
            .get(connector)
            .and_then(|c| c.auth.as_ref())
        {
            supplied.push(name.clone());
        }
        let keys = match &config.query {
            None => Some(Vec::new()),
            Some(query) => patchbay_expr::object_keys(query),
        };
        if let Some(keys) = keys {
            supplied.extend(keys);
            let missing: Vec<String> = required
                .iter()
                .filter(|name| !supplied.iter().any(|given| given == *name))
                .map(|name| format!("`{name}`"))
                .collect();
            if !missing.is_empty() {
                let at = config.query.as_ref().unwrap_or(&config.call);
                compiler.error(
                    at,
                    format!(
                        "`{shown}` requires query parameter{} {} (spec of connector `{connector}`)",
                        if missing.len() == 1 { "" } else { "s" },
                        missing.join(", ")
                    ),
                );
            }
        }
    }
    match &config.body {
        None if operation.request_body_required() => compiler.error(
            &config.call,
            format!(
                "`{shown}` requires a request body (spec of connector `{connector}`): add `body`"
            ),
        ),
        None => {}
        Some(body) => {
            let (Some(schema), Some(keys)) =
                (operation.request_schema(), patchbay_expr::object_keys(body))
            else {
                return;
            };
            let missing: Vec<String> = schema
                .required()
                .into_iter()
                .filter(|name| !keys.iter().any(|key| key == name))
                .map(|name| format!("`{name}`"))
                .collect();
            if !missing.is_empty() {
                compiler.error(
                    body,
                    format!(
                        "the body of `{shown}` requires propert{} {} (spec of connector `{connector}`)",
                        if missing.len() == 1 { "y" } else { "ies" },
                        missing.join(", ")
                    ),
                );
            }
        }
    }
}

/// Compiles a step's own `retry`: `Some(None)` without one (the
/// connector's applies), `None` after reporting its problems.
pub(super) fn retry_policy(
    compiler: &mut Compiler<'_>,
    config: Option<&Located<RetryConfig>>,
) -> Option<Option<RetryPolicy>> {
    let Some(retry) = config else {
        return Some(None);
    };
    let mut ok = true;
    patchbay_config::validate::check_retry(retry, &mut |message| {
        compiler.error(retry, message);
        ok = false;
    });
    ok.then(|| Some(RetryPolicy::from(&retry.value)))
}

/// Compiles a `paginate`: `Some(None)` without one, `None` after reporting.
pub(super) fn pagination(
    compiler: &mut Compiler<'_>,
    config: Option<&Located<PaginateConfig>>,
    graphql: bool,
) -> Option<Option<Pagination>> {
    let Some(config) = config else {
        return Some(None);
    };
    let compiled = if graphql {
        Pagination::for_graphql(config)
    } else {
        Pagination::for_call(config)
    };
    match compiled {
        Ok(pagination) => Some(Some(pagination)),
        Err(problems) => {
            for problem in problems {
                compiler.error_at(
                    problem.line,
                    problem.column,
                    format!("paginate: {}", problem.message),
                );
            }
            None
        }
    }
}

#[async_trait]
impl Step for Call {
    async fn perform(&self, cx: &StepContext<'_>) -> Result<Performed, StepError> {
        let connector = cx.connector(&self.connector)?;
        let path = {
            let template = self.path.clone();
            cx.executor
                .evaluator
                .run(cx.input, &cx.vars(), move |input, vars| {
                    template.render_path(input, vars)
                })
                .await
                .map_err(|e| StepError::expression("path", e))?
        };
        let query = match &self.query {
            Some(expr) => cx.pairs("query", expr).await?,
            None => Vec::new(),
        };
        let headers = match &self.headers {
            Some(expr) => cx.pairs("headers", expr).await?,
            None => Vec::new(),
        };
        let body = match &self.body {
            Some(expr) => Some(cx.eval("body", expr).await?),
            None => None,
        };
        // Stable across retries and resumed runs, so the upstream can tell a
        // repeat from a new request. Sent by default only where a repeat
        // could duplicate a side effect (POST, PATCH).
        let has_side_effects = matches!(self.method.as_str(), "POST" | "PATCH");
        let idempotency_key = cx
            .idempotency_key(
                connector,
                self.idempotency_key.as_ref(),
                has_side_effects.then(|| cx.default_idempotency_key()),
            )
            .await?;
        let request = CallRequest {
            method: self.method.clone(),
            path,
            query,
            headers,
            body,
            idempotency_key,
            rate_key: cx.rate_key(&self.connector).await?,
            breaker_key: cx
                .breaker_key(&self.connector, &self.method, self.path.source())
                .await?,
        };
        let shown = connector.summarize(&request);
        let policy = self.retry.unwrap_or_else(|| connector.retry_policy());
        let exchange = match &self.pagination {
            None => {
                let mut exchange = Exchange::of_send(connector.send(&request, policy).await);
                if let (Some(check), Ok(output)) = (&self.reply_check, &exchange.result)
                    && let Err(e) = hold_to_contract(cx, check, output)
                {
                    exchange.result = Err(e);
                }
                if let Ok(output) = &mut exchange.result {
                    self.response_headers.apply(output);
                    if let Some(headers) = output.get_mut("headers") {
                        cx.executor.plan.redaction.headers.redact(headers);
                        SensitiveHeaders::redact_names(headers, connector.sensitive_headers());
                    }
                }
                exchange
            }
            Some(pagination) => Exchange::of_pages(
                connector
                    .paginate(request, policy, pagination, cx.vars())
                    .collect()
                    .await,
            ),
        };
        let summary = exchange.summarize(shown);
        match exchange.result {
            Ok(output) => Ok(Performed {
                output,
                request: Some(summary),
                reply: None,
            }),
            // The failed call's entry says how it went too.
            Err(error) => Err(error.with_request(summary)),
        }
    }

    fn describe(&self) -> Description {
        Description {
            connector: Some(self.connector.clone()),
            method: Some(self.method.clone()),
            path: Some(self.path.source().into()),
            expression: self.body.as_ref().map(|body| body.source().into()),
            paginated: self.pagination.is_some(),
            ..Description::default()
        }
    }
}

/// Holds a reply (`{status, headers, body}`) against its contract: every
/// difference is reported as drift, and in `enforce` mode fails the step.
fn hold_to_contract(
    cx: &StepContext<'_>,
    check: &ReplyCheck,
    output: &Value,
) -> Result<(), StepError> {
    if !check.sampled() {
        return Ok(());
    }
    let status = output
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(0);
    let body = output.get("body").unwrap_or(&Value::Null);
    let violations = check.violations(status, body);
    if violations.is_empty() {
        return Ok(());
    }
    let now = cx.executor.clock.now();
    for violation in &violations {
        let example: String = cx
            .executor
            .mask(&violation.example.to_string())
            .chars()
            .take(MAX_DRIFT_EXAMPLE_CHARS)
            .collect();
        cx.executor.drift.report(
            DriftKind {
                connector: check.connector.clone(),
                operation: check.operation.clone(),
                response: violation.response.clone(),
                pointer: violation.pointer.clone(),
                expected: violation.expected.clone(),
            },
            violation.seen.clone(),
            example,
            now,
        );
    }
    match check.mode {
        ContractMode::Enforce => Err(StepError::Contract {
            connector: check.connector.clone(),
            operation: check.operation.clone(),
            status,
            violations: violations
                .iter()
                .map(|v| {
                    let at = if v.pointer.is_empty() {
                        "/"
                    } else {
                        &v.pointer
                    };
                    format!("at `{at}` expected {}, found {}", v.expected, v.seen)
                })
                .collect::<Vec<_>>()
                .join("; "),
        }),
        ContractMode::Warn | ContractMode::Off => Ok(()),
    }
}

/// A parsed `call:` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CallSpec {
    pub connector: String,
    pub target: Target,
}

/// What a `call:` line calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// `METHOD /path`; the path template with its `{jq}` holes.
    Path { method: String, path: String },
    /// An `operationId` of the connector's contract.
    Operation(String),
}

impl CallSpec {
    const METHODS: [&'static str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

    /// Parses `CONNECTOR METHOD /path` or `CONNECTOR operationId`. The path
    /// may contain spaces inside `{jq}` holes, so everything after the
    /// method is the path.
    pub fn parse(text: &str) -> Result<CallSpec, String> {
        let text = text.trim();
        let mut parts = text.splitn(3, char::is_whitespace);
        let usage = || {
            format!(
                "`call: {text}` should be `CONNECTOR METHOD /path` (e.g. `crm GET /contacts`) or `CONNECTOR operationId`"
            )
        };
        let (connector, method, path) = match (parts.next(), parts.next(), parts.next()) {
            (Some(connector), Some(word), None)
                if !Self::METHODS.contains(&word.to_ascii_uppercase().as_str())
                    && !word.starts_with('/') =>
            {
                return Ok(CallSpec {
                    connector: connector.to_string(),
                    target: Target::Operation(word.to_string()),
                });
            }
            (Some(connector), Some(method), Some(path)) => (connector, method, path),
            _ => return Err(usage()),
        };
        let method = method.to_ascii_uppercase();
        if !Self::METHODS.contains(&method.as_str()) {
            return Err(format!(
                "unknown HTTP method `{method}` in `call: {text}` (use one of {})",
                Self::METHODS.join(", ")
            ));
        }
        let path = path.trim();
        if !path.starts_with('/') {
            return Err(format!("the path in `call: {text}` must start with `/`"));
        }
        Ok(CallSpec {
            connector: connector.to_string(),
            target: Target::Path {
                method,
                path: path.to_string(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn kept_headers_follow_the_flow_then_the_connector() {
        let named = ResponseHeaders::Named(vec!["ETag".into()]);
        assert_eq!(KeptHeaders::of(Some(&named), true), KeptHeaders::All);
        assert_eq!(
            KeptHeaders::of(Some(&named), false),
            KeptHeaders::Named(vec!["etag".into()])
        );
        assert_eq!(
            KeptHeaders::of(Some(&ResponseHeaders::All(true)), false),
            KeptHeaders::All
        );
        assert_eq!(KeptHeaders::of(None, false), KeptHeaders::Named(Vec::new()));

        let reply = json!({"status": 200, "headers": {"etag": "1", "date": "x"}, "body": 1});
        let mut all = reply.clone();
        KeptHeaders::All.apply(&mut all);
        assert_eq!(all, reply);
        let mut etag = reply.clone();
        KeptHeaders::Named(vec!["etag".into()]).apply(&mut etag);
        assert_eq!(
            etag,
            json!({"status": 200, "headers": {"etag": "1"}, "body": 1})
        );
        let mut none = reply.clone();
        KeptHeaders::Named(Vec::new()).apply(&mut none);
        assert_eq!(none, json!({"status": 200, "body": 1}));
    }

    #[test]
    fn parses_call_lines() {
        let spec = CallSpec::parse("erp put /customers/{ .id }").unwrap();
        assert_eq!(spec.connector, "erp");
        assert_eq!(
            spec.target,
            Target::Path {
                method: "PUT".into(),
                path: "/customers/{ .id }".into()
            }
        );
        assert_eq!(
            CallSpec::parse("erp getCustomer").unwrap().target,
            Target::Operation("getCustomer".into())
        );
        assert!(
            CallSpec::parse("erp")
                .unwrap_err()
                .contains("CONNECTOR METHOD /path")
        );
        assert!(
            CallSpec::parse("erp GET")
                .unwrap_err()
                .contains("CONNECTOR METHOD /path")
        );
        assert!(
            CallSpec::parse("erp FETCH /x")
                .unwrap_err()
                .contains("unknown HTTP method")
        );
        assert!(
            CallSpec::parse("erp GET x")
                .unwrap_err()
                .contains("must start with `/`")
        );
    }
}
