//! `call: CONNECTOR METHOD /path` with `query`, `headers`, `body`,
//! `idempotency_key`, `retry` and `paginate`: an HTTP call through a
//! connector. Its result is `{status, headers, body}` (or, paginated, the
//! collected items).

use async_trait::async_trait;
use patchbay_config::{Located, PaginateConfig, ResponseHeaders, RetryConfig};
use patchbay_connector::redact::SensitiveHeaders;
use patchbay_connector::{CallRequest, Pagination, RetryPolicy};
use patchbay_expr::{Expr, Template};
use serde::Deserialize;
use serde_json::Value;

use super::exchange::Exchange;
use super::{Compiler, Description, Kind, Performed, Step, StepContext};
use crate::failure::StepError;

/// `call`'s keys.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// An HTTP call: `CONNECTOR METHOD /path`, where `{jq}` in the path is
    /// replaced by the expression's value, e.g. `erp PUT /customers/{.id}`.
    /// Its result is `{status, headers, body}`.
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
        let path = match Template::parse(&spec.path) {
            Ok(path) => Some(path),
            Err(e) => {
                compiler.error(
                    &config.call,
                    format!("invalid jq in the path `{}`: {e}", spec.path),
                );
                None
            }
        };
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
            method: spec.method,
            path: path?,
            query: query?,
            headers: headers?,
            body: body?,
            idempotency_key: idempotency_key?,
            retry: retry?,
            pagination: pagination?,
            response_headers,
        })
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
        };
        let shown = connector.summarize(&request);
        let policy = self.retry.unwrap_or_else(|| connector.retry_policy());
        let exchange = match &self.pagination {
            None => {
                let mut exchange = Exchange::of_send(connector.send(&request, policy).await);
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
        Ok(Performed {
            output: exchange.result?,
            request: Some(summary),
            reply: None,
        })
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

/// A parsed `call:` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CallSpec {
    pub connector: String,
    pub method: String,
    /// The path template, `{jq}` holes included.
    pub path: String,
}

impl CallSpec {
    const METHODS: [&'static str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

    /// Parses `CONNECTOR METHOD /path`. The path may contain spaces inside
    /// `{jq}` holes, so everything after the method is the path.
    pub fn parse(text: &str) -> Result<CallSpec, String> {
        let text = text.trim();
        let mut parts = text.splitn(3, char::is_whitespace);
        let (Some(connector), Some(method), Some(path)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!(
                "`call: {text}` should be `CONNECTOR METHOD /path`, e.g. `crm GET /contacts`"
            ));
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
            method,
            path: path.to_string(),
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
        assert_eq!(spec.method, "PUT");
        assert_eq!(spec.path, "/customers/{ .id }");
        assert!(
            CallSpec::parse("erp")
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
