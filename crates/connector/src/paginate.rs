//! Pagination: a step's results fetched page by page, lazily.
//!
//! A [`Pagination`] is compiled once from a step's `paginate` configuration
//! (its jq programs included). [`Connector::paginate`] (and
//! [`Connector::paginate_graphql`]) start a [`Paginator`] from the step's
//! first request; each [`Paginator::next_page`] sends one request through
//! [`Connector::send`], so the retry policy applies to every page on its own,
//! and nothing is fetched before it is asked for: a consumer works on page 1
//! while page 2 has not been requested. [`Paginator::collect`] gathers every
//! item for steps that want the whole list.
//!
//! Styles and when they stop:
//!
//! - `cursor`: the next cursor is a jq value of the page; `null` or `""` ends.
//! - `page`: numbered pages; an empty page, or one shorter than `size`, ends.
//! - `offset`: the offset grows by the items received; a page shorter than
//!   `limit` ends.
//! - `link`: the `rel="next"` target of the RFC 8288 `Link` header; none ends.
//!   The target must stay under the connector's base URL (same scheme, host,
//!   port and path prefix): the connector's credential goes with every
//!   request, and a link is upstream-controlled text.
//! - `connection`: a GraphQL connection's `pageInfo { hasNextPage endCursor }`.
//!
//! A cursor or link that does not change from one page to the next is an
//! error: the upstream would hand out the same page until `max_pages`.
//! Reaching `max_pages` while more pages are offered is not an error: the
//! result is marked truncated and carries a warning.
//!
//! A request with an idempotency key sends `KEY:page-N` from the second page
//! on, so an upstream that replays responses by key does not answer every
//! page with the first one.

use std::fmt;

use futures::Stream;
use patchbay_config::{Located, PaginateConfig, PagingStyle};
use patchbay_expr::{Expr, Vars};
use serde_json::{Map, Value};

use crate::call::{CallRequest, Response};
use crate::connector::Connector;
use crate::error::{FetchError, PageError, PaginateConfigError};
use crate::graphql::{self, GraphqlRequest};
use crate::retry::RetryPolicy;

/// A step's `paginate` configuration, compiled.
#[derive(Clone, Debug)]
pub struct Pagination {
    style: Style,
    items: Option<Expr>,
    max_pages: u32,
}

#[derive(Clone, Debug)]
enum Style {
    Cursor {
        param: String,
        from: Expr,
    },
    Page {
        param: String,
        start: i64,
        size_param: Option<String>,
        size: Option<u32>,
    },
    Offset {
        param: String,
        limit_param: String,
        limit: u32,
    },
    Link,
    Connection {
        from: Expr,
        variable: String,
    },
}

impl Style {
    fn name(&self) -> &'static str {
        match self {
            Style::Cursor { .. } => "cursor",
            Style::Page { .. } => "page",
            Style::Offset { .. } => "offset",
            Style::Link => "link",
            Style::Connection { .. } => "connection",
        }
    }
}

impl Pagination {
    /// Compiles the `paginate` of a `call` step.
    pub fn for_call(
        config: &Located<PaginateConfig>,
    ) -> Result<Pagination, Vec<PaginateConfigError>> {
        Self::compile(config, false)
    }

    /// Compiles the `paginate` of a `graphql` step.
    pub fn for_graphql(
        config: &Located<PaginateConfig>,
    ) -> Result<Pagination, Vec<PaginateConfigError>> {
        Self::compile(config, true)
    }

    fn compile(
        config: &Located<PaginateConfig>,
        graphql: bool,
    ) -> Result<Pagination, Vec<PaginateConfigError>> {
        let mut errors: Vec<PaginateConfigError> = config
            .check(graphql)
            .into_iter()
            .map(|message| PaginateConfigError {
                message,
                line: config.line,
                column: config.column,
            })
            .collect();
        let mut compile = |key: &str, source: &Located<String>| match Expr::compile(source) {
            Ok(expr) => Some(expr),
            Err(e) => {
                errors.push(PaginateConfigError {
                    message: format!("invalid jq in `paginate.{key}`: {e}"),
                    line: source.line,
                    column: source.column,
                });
                None
            }
        };
        let items = config
            .items
            .as_ref()
            .and_then(|source| compile("items", source));
        let style = match config.styles().first() {
            Some(PagingStyle::Cursor(c)) => {
                compile("cursor.from", &c.from).map(|from| Style::Cursor {
                    param: c.param.clone(),
                    from,
                })
            }
            Some(PagingStyle::Page(p)) => Some(Style::Page {
                param: p.param.clone(),
                start: p.start,
                size_param: p.size_param.clone(),
                size: p.size,
            }),
            Some(PagingStyle::Offset(o)) => Some(Style::Offset {
                param: o.param.clone(),
                limit_param: o.limit_param.clone(),
                limit: o.limit,
            }),
            Some(PagingStyle::Link(_)) => Some(Style::Link),
            Some(PagingStyle::Connection(c)) => {
                compile("connection.from", &c.from).map(|from| Style::Connection {
                    from,
                    variable: c.variable.clone(),
                })
            }
            None => None,
        };
        match style {
            Some(style) if errors.is_empty() => Ok(Pagination {
                style,
                items,
                max_pages: config.max_pages(),
            }),
            _ => Err(errors),
        }
    }

    /// The page cap.
    pub fn max_pages(&self) -> u32 {
        self.max_pages
    }

    /// Whether this paginates a GraphQL connection (a `graphql` step).
    pub fn is_graphql(&self) -> bool {
        matches!(self.style, Style::Connection { .. })
    }
}

/// One fetched page.
#[derive(Clone, Debug)]
pub struct Page {
    /// Position from 1.
    pub index: u32,
    /// The page's items, in upstream order.
    pub items: Vec<Value>,
    /// The response the items came from.
    pub response: Response,
    /// The request that fetched it (for the journal: pass it to
    /// [`Connector::summarize`]).
    pub request: CallRequest,
    /// Attempts this page took.
    pub attempts: u32,
    /// True on the last page when `max_pages` stopped pagination while the
    /// upstream offered more.
    pub truncated: bool,
}

/// Every item of every page, for steps that want the whole list.
#[derive(Clone, Debug, PartialEq)]
pub struct Collected {
    pub items: Vec<Value>,
    /// Pages fetched.
    pub pages: u32,
    /// Requests sent, retries included.
    pub attempts: u32,
    /// `max_pages` stopped pagination while the upstream offered more.
    pub truncated: bool,
    /// Set when truncated, for the journal and logs.
    pub warning: Option<String>,
}

impl Collected {
    /// The step output: `{items, pages, truncated, warning}`.
    pub fn into_value(self) -> Value {
        serde_json::json!({
            "items": self.items,
            "pages": self.pages,
            "truncated": self.truncated,
            "warning": self.warning,
        })
    }
}

/// How pages are requested and read.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// A `call` step; jq sees `{status, headers, body}`.
    Rest,
    /// A `graphql` step; jq sees the response body `{data, ...}`. `replayable`
    /// when the document holds only queries.
    Graphql { replayable: bool },
}

/// Fetches pages one at a time, on demand.
pub struct Paginator<'a> {
    connector: &'a Connector,
    pagination: &'a Pagination,
    policy: RetryPolicy,
    vars: Vars<'a>,
    mode: Mode,
    /// The next page's request; `None` once pagination is over.
    next: Option<CallRequest>,
    /// The first request's idempotency key, the stem of later pages' keys.
    key: Option<String>,
    /// Pages fetched so far.
    fetched: u32,
    attempts: u32,
    truncated: bool,
    /// Cursor, offset or link of the page last requested, to notice a loop.
    position: Option<String>,
    /// An error found before the first request, yielded as page 1.
    setup_error: Option<String>,
}

impl Connector {
    /// Starts paginating a `call` step from its first request. Nothing is
    /// sent until [`Paginator::next_page`] is called. Run variables in
    /// `vars` are visible to `items` and `cursor.from`.
    pub fn paginate<'a>(
        &'a self,
        first: CallRequest,
        policy: RetryPolicy,
        pagination: &'a Pagination,
        vars: Vars<'a>,
    ) -> Paginator<'a> {
        let setup_error = pagination
            .is_graphql()
            .then(|| "`paginate.connection` needs a `graphql` step".to_string());
        Paginator::new(
            self,
            first,
            policy,
            pagination,
            vars,
            Mode::Rest,
            setup_error,
        )
    }

    /// Starts paginating a `graphql` step through its connection's
    /// `pageInfo`. Nothing is sent until [`Paginator::next_page`] is called.
    pub fn paginate_graphql<'a>(
        &'a self,
        request: &GraphqlRequest,
        policy: RetryPolicy,
        pagination: &'a Pagination,
        vars: Vars<'a>,
    ) -> Paginator<'a> {
        let setup_error = (!pagination.is_graphql()).then(|| {
            format!(
                "`paginate.{}` does not apply to a `graphql` step; use `connection`",
                pagination.style.name()
            )
        });
        let mode = Mode::Graphql {
            replayable: request.document.is_query(),
        };
        Paginator::new(
            self,
            request.to_call(),
            policy,
            pagination,
            vars,
            mode,
            setup_error,
        )
    }
}

impl<'a> Paginator<'a> {
    fn new(
        connector: &'a Connector,
        mut first: CallRequest,
        policy: RetryPolicy,
        pagination: &'a Pagination,
        vars: Vars<'a>,
        mode: Mode,
        setup_error: Option<String>,
    ) -> Self {
        let mut position = None;
        match &pagination.style {
            Style::Page {
                param,
                start,
                size_param,
                size,
            } => {
                set_query(&mut first, param, start.to_string());
                if let (Some(size_param), Some(size)) = (size_param, size) {
                    set_query(&mut first, size_param, size.to_string());
                }
                position = Some(start.to_string());
            }
            Style::Offset {
                param,
                limit_param,
                limit,
            } => {
                set_query(&mut first, param, "0".into());
                set_query(&mut first, limit_param, limit.to_string());
                position = Some("0".into());
            }
            Style::Cursor { .. } | Style::Link | Style::Connection { .. } => {}
        }
        Paginator {
            connector,
            pagination,
            policy,
            vars,
            mode,
            key: first.idempotency_key.clone(),
            next: Some(first),
            fetched: 0,
            attempts: 0,
            truncated: false,
            position,
            setup_error,
        }
    }

    /// Fetches the next page; `None` when there are no more (or after an
    /// error, which ends pagination).
    pub async fn next_page(&mut self) -> Option<Result<Page, PageError>> {
        let request = self.next.take()?;
        let index = self.fetched + 1;
        let result = self.fetch(request, index).await;
        self.fetched = index;
        if result.is_err() {
            self.next = None;
        }
        Some(result.map_err(|error| PageError { page: index, error }))
    }

    async fn fetch(&mut self, request: CallRequest, index: u32) -> Result<Page, FetchError> {
        let unusable = |reason: String| FetchError::Unusable {
            connector: self.connector.name().to_string(),
            method: request.method.clone(),
            path: request.path.clone(),
            reason,
        };
        if let Some(reason) = self.setup_error.take() {
            return Err(unusable(reason));
        }
        let sent = match self.mode {
            Mode::Rest => self.connector.send(&request, self.policy).await,
            Mode::Graphql { replayable } => {
                let replayable = replayable || request.idempotency_key.is_some();
                self.connector
                    .send_replayable(&request, self.policy, replayable)
                    .await
            }
        };
        let delivered = match sent {
            Ok(delivered) => delivered,
            Err(failed) => {
                self.attempts += failed.attempts;
                return Err(FetchError::Call {
                    error: failed.error,
                    attempts: failed.attempts,
                });
            }
        };
        self.attempts += delivered.attempts;
        let response = delivered.response;
        let view = match self.mode {
            Mode::Rest => response.clone().into_value(),
            Mode::Graphql { .. } => {
                graphql::check_response(self.connector, &request.path, &response.body)?;
                response.body.clone()
            }
        };
        let (items, next) = self
            .read_page(&request, &response, &view)
            .map_err(unusable)?;
        let mut next = next.map(|(position, mut next)| {
            next.idempotency_key = self
                .key
                .as_ref()
                .map(|key| format!("{key}:page-{}", index + 1));
            (position, next)
        });
        if let Some((position, _)) = &next
            && self.position.as_ref() == Some(position)
        {
            return Err(unusable(format!(
                "the upstream returned the same {} again; stopping instead of \
                     fetching one page over and over",
                match self.pagination.style {
                    Style::Link => "next link",
                    _ => "cursor",
                }
            )));
        }
        let mut truncated = false;
        if next.is_some() && index >= self.pagination.max_pages {
            truncated = true;
            self.truncated = true;
            next = None;
            tracing::warn!(
                connector = %self.connector.name(),
                max_pages = self.pagination.max_pages,
                "pagination stopped at max_pages; the upstream offers more pages"
            );
        }
        if let Some((position, request)) = next {
            self.position = Some(position);
            self.next = Some(request);
        }
        Ok(Page {
            index,
            items,
            response,
            request,
            attempts: delivered.attempts,
            truncated,
        })
    }

    /// The page's items and, when there is a next page, its position and
    /// request.
    #[allow(clippy::type_complexity)]
    fn read_page(
        &self,
        request: &CallRequest,
        response: &Response,
        view: &Value,
    ) -> Result<(Vec<Value>, Option<(String, CallRequest)>), String> {
        let eval = |key: &str, expr: &Expr| {
            expr.eval(view, &self.vars)
                .map_err(|e| format!("`paginate.{key}`: {e}"))
        };
        let items = match (&self.pagination.items, &self.pagination.style) {
            (Some(expr), _) => into_items(eval("items", expr)?, "`paginate.items`")?,
            (None, Style::Connection { .. }) => Vec::new(), // read from the connection below
            (None, _) => into_items(
                view.get("body").cloned().unwrap_or(Value::Null),
                "the body (set `paginate.items` to the array's path, e.g. `.body.data`)",
            )?,
        };
        let with = |param: &str, value: String| {
            let mut next = request.clone();
            set_query(&mut next, param, value.clone());
            Some((value, next))
        };
        Ok(match &self.pagination.style {
            Style::Cursor { param, from } => {
                let cursor = eval("cursor.from", from)?;
                let cursor = match cursor {
                    Value::Null => None,
                    Value::String(s) if s.is_empty() => None,
                    Value::String(s) => Some(s),
                    Value::Number(n) => Some(n.to_string()),
                    other => {
                        return Err(format!(
                            "`paginate.cursor.from` produced {}, expected a string or number",
                            type_name(&other)
                        ));
                    }
                };
                (items, cursor.and_then(|cursor| with(param, cursor)))
            }
            Style::Page { param, size, .. } => {
                let last = items.is_empty() || size.is_some_and(|size| items.len() < size as usize);
                let number = current_number(request, param);
                let next = match number.and_then(|n| n.checked_add(1)) {
                    Some(n) if !last => with(param, n.to_string()),
                    _ => None,
                };
                (items, next)
            }
            Style::Offset { param, limit, .. } => {
                let last = items.len() < *limit as usize;
                let offset = current_number(request, param);
                let next = match offset.and_then(|o| o.checked_add(items.len() as i64)) {
                    Some(o) if !last => with(param, o.to_string()),
                    _ => None,
                };
                (items, next)
            }
            Style::Link => {
                let next = match response.headers.get("link").and_then(Value::as_str) {
                    Some(header) => match next_link(header) {
                        Some(target) => Some(self.follow(request, &target)?),
                        None => None,
                    },
                    None => None,
                };
                (items, next)
            }
            Style::Connection { from, variable } => {
                let connection = eval("connection.from", from)?;
                let Value::Object(connection) = connection else {
                    return Err(format!(
                        "`paginate.connection.from` produced {}, expected a connection object \
                         with `pageInfo`",
                        type_name(&connection)
                    ));
                };
                let items = if self.pagination.items.is_some() {
                    items
                } else {
                    connection_items(&connection)?
                };
                let info = connection.get("pageInfo");
                let has_next = info
                    .and_then(|i| i.get("hasNextPage"))
                    .and_then(Value::as_bool)
                    .ok_or("the connection has no `pageInfo.hasNextPage`; add `pageInfo { hasNextPage endCursor }` to the query")?;
                if !has_next {
                    return Ok((items, None));
                }
                let cursor = match info.and_then(|i| i.get("endCursor")) {
                    Some(Value::String(s)) if !s.is_empty() => s.clone(),
                    _ => {
                        return Err(
                            "`pageInfo.hasNextPage` is true but `endCursor` is missing or empty"
                                .into(),
                        );
                    }
                };
                let mut next = request.clone();
                if let Some(Value::Object(body)) = &mut next.body {
                    let variables = body
                        .entry("variables")
                        .or_insert_with(|| Value::Object(Map::new()));
                    if !variables.is_object() {
                        *variables = Value::Object(Map::new());
                    }
                    if let Value::Object(variables) = variables {
                        variables.insert(variable.clone(), Value::String(cursor.clone()));
                    }
                }
                (items, Some((cursor, next)))
            }
        })
    }

    /// The request for a `Link` target, which must stay under the
    /// connector's base URL.
    fn follow(&self, request: &CallRequest, target: &str) -> Result<(String, CallRequest), String> {
        let base = reqwest::Url::parse(self.connector.base_url())
            .map_err(|_| "the connector's URL cannot resolve links".to_string())?;
        let mut current =
            reqwest::Url::parse(&format!("{}{}", self.connector.base_url(), request.path))
                .map_err(|_| "the current page's URL cannot resolve links".to_string())?;
        if !request.query.is_empty() {
            current.query_pairs_mut().extend_pairs(&request.query);
        }
        let (path, query) = resolve_link(
            &base,
            &current,
            target,
            self.connector.credential_query_param(),
        )?;
        let mut next = request.clone();
        next.path = path;
        next.query = query;
        let position = format!("{}?{:?}", next.path, next.query);
        Ok((position, next))
    }

    /// Pages fetched so far.
    pub fn pages_fetched(&self) -> u32 {
        self.fetched
    }

    /// Requests sent so far, retries included.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Whether `max_pages` stopped pagination while more pages were offered.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// The warning to record when truncated.
    pub fn warning(&self) -> Option<String> {
        self.truncated.then(|| {
            format!(
                "stopped after {} pages (`paginate.max_pages`); the upstream offers more",
                self.pagination.max_pages
            )
        })
    }

    /// The pages as a stream; each is requested when the stream is polled
    /// for it.
    pub fn into_stream(self) -> impl Stream<Item = Result<Page, PageError>> + 'a {
        futures::stream::unfold(self, |mut paginator| async move {
            let page = paginator.next_page().await?;
            Some((page, paginator))
        })
    }

    /// Fetches every page and gathers the items, in order.
    pub async fn collect(mut self) -> Result<Collected, PageError> {
        let mut items = Vec::new();
        while let Some(page) = self.next_page().await {
            items.extend(page?.items);
        }
        Ok(Collected {
            items,
            pages: self.fetched,
            attempts: self.attempts,
            truncated: self.truncated,
            warning: self.warning(),
        })
    }
}

impl fmt::Debug for Paginator<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Paginator")
            .field("connector", &self.connector.name())
            .field("style", &self.pagination.style.name())
            .field("fetched", &self.fetched)
            .field("done", &self.next.is_none())
            .field("truncated", &self.truncated)
            .finish_non_exhaustive()
    }
}

/// Replaces every query parameter named `name` with one `name=value`.
fn set_query(request: &mut CallRequest, name: &str, value: String) {
    request.query.retain(|(key, _)| key != name);
    request.query.push((name.to_string(), value));
}

/// The integer value of query parameter `name` in `request`.
fn current_number(request: &CallRequest, name: &str) -> Option<i64> {
    request
        .query
        .iter()
        .rev()
        .find(|(key, _)| key == name)
        .and_then(|(_, value)| value.parse().ok())
}

fn into_items(value: Value, what: &str) -> Result<Vec<Value>, String> {
    match value {
        Value::Array(items) => Ok(items),
        Value::Null => Ok(Vec::new()),
        other => Err(format!(
            "{what} is {}, expected an array of items",
            type_name(&other)
        )),
    }
}

/// A connection's `nodes`, or the `node` of each of its `edges`.
fn connection_items(connection: &Map<String, Value>) -> Result<Vec<Value>, String> {
    if let Some(nodes) = connection.get("nodes").filter(|n| !n.is_null()) {
        return into_items(nodes.clone(), "the connection's `nodes`");
    }
    match connection.get("edges") {
        Some(Value::Array(edges)) => Ok(edges
            .iter()
            .map(|edge| edge.get("node").cloned().unwrap_or(Value::Null))
            .collect()),
        Some(Value::Null) | None => Err(
            "the connection has neither `nodes` nor `edges`; select one, or set `paginate.items`"
                .into(),
        ),
        Some(other) => Err(format!(
            "the connection's `edges` is {}, expected an array",
            type_name(other)
        )),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One link of an RFC 8288 `Link` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// The URI reference between `<` and `>`, as written.
    pub target: String,
    /// Parameters in order: names lowercased, values unquoted (`""` for a
    /// parameter without a value).
    pub params: Vec<(String, String)>,
}

impl Link {
    /// The first value of parameter `name` (lowercase); RFC 8288 ignores
    /// repeats of `rel`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Whether the link has relation type `rel` (compared without case):
    /// `rel` may list several, separated by spaces.
    pub fn has_rel(&self, rel: &str) -> bool {
        self.param("rel").is_some_and(|rels| {
            rels.split_ascii_whitespace()
                .any(|r| r.eq_ignore_ascii_case(rel))
        })
    }
}

/// Parses a `Link` header value (RFC 8288 §3) into its links.
///
/// Lenient and total: never panics, and skips an element it cannot read
/// rather than failing the rest. Targets may contain `,` and `;` (they end at
/// `>`); parameter values may be tokens or quoted strings with `\` escapes;
/// whitespace may surround every separator. Repeated headers joined with
/// `, ` parse as one list.
pub fn parse_link_header(value: &str) -> Vec<Link> {
    let bytes = value.as_bytes();
    let text = |from: usize, to: usize| value.get(from..to).unwrap_or_default();
    let is_space = |b: u8| b == b' ' || b == b'\t' || b == b'\r' || b == b'\n';
    let skip_space = |mut i: usize| {
        while i < bytes.len() && is_space(bytes[i]) {
            i += 1;
        }
        i
    };
    let mut links = Vec::new();
    let mut i = 0;
    loop {
        while i < bytes.len() && (is_space(bytes[i]) || bytes[i] == b',') {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        if bytes[i] != b'<' {
            // Not a link-value: skip to the next element.
            i = skip_junk(bytes, i, b',');
            continue;
        }
        let start = i + 1;
        let Some(end) = bytes[start..].iter().position(|&b| b == b'>') else {
            break;
        };
        let end = start + end;
        let target = text(start, end).trim().to_string();
        i = end + 1;
        let mut params = Vec::new();
        loop {
            i = skip_space(i);
            if i >= bytes.len() {
                break;
            }
            match bytes[i] {
                b',' => {
                    i += 1;
                    break;
                }
                b';' => {
                    i = skip_space(i + 1);
                    let name_start = i;
                    while i < bytes.len() && is_token(bytes[i]) {
                        i += 1;
                    }
                    let name = text(name_start, i).to_ascii_lowercase();
                    i = skip_space(i);
                    let mut param_value = String::new();
                    if i < bytes.len() && bytes[i] == b'=' {
                        i = skip_space(i + 1);
                        if i < bytes.len() && bytes[i] == b'"' {
                            let (unquoted, after) = quoted(bytes, i);
                            param_value = unquoted;
                            i = after;
                        } else {
                            let value_start = i;
                            while i < bytes.len()
                                && !matches!(bytes[i], b';' | b',')
                                && !is_space(bytes[i])
                            {
                                i += 1;
                            }
                            param_value = text(value_start, i).to_string();
                        }
                    }
                    if !name.is_empty() {
                        params.push((name, param_value));
                    }
                }
                _ => i = skip_junk(bytes, i, b';'),
            }
        }
        links.push(Link { target, params });
    }
    links
}

/// The target of the first link with relation `next`.
pub fn next_link(header: &str) -> Option<String> {
    parse_link_header(header)
        .into_iter()
        .find(|link| link.has_rel("next"))
        .map(|link| link.target)
}

/// RFC 9110 `tchar`.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Index of the next `,` (or `stop`) outside a quoted string, from `i`;
/// always past `i` unless at the end, so callers make progress.
fn skip_junk(bytes: &[u8], mut i: usize, stop: u8) -> usize {
    let first = i;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = quoted(bytes, i).1,
            b',' if i > first => return i,
            b if b == stop && i > first => return i,
            _ => i += 1,
        }
    }
    i
}

/// The content of the quoted string starting at `bytes[start] == '"'`, and
/// the index after it (the end of input when unterminated).
fn quoted(bytes: &[u8], start: usize) -> (String, usize) {
    let mut out = Vec::new();
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if i + 1 < bytes.len() => {
                out.push(bytes[i + 1]);
                i += 2;
            }
            b'"' => return (String::from_utf8_lossy(&out).into_owned(), i + 1),
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), i)
}

/// Resolves a `Link` target against the page it came from and turns it into
/// a path under the connector's base URL and decoded query pairs. Refuses a
/// target on another scheme, host or port, or outside the base path: the
/// connector's credential would go with it. The `api_key` query parameter is
/// dropped (the connector adds its own), so an upstream echoing it back
/// neither duplicates it nor puts it in the journal.
pub(crate) fn resolve_link(
    base: &reqwest::Url,
    current: &reqwest::Url,
    target: &str,
    credential_param: Option<&str>,
) -> Result<(String, Vec<(String, String)>), String> {
    // Errors never quote the target: it may carry a query-string credential.
    let next = current
        .join(target)
        .map_err(|e| format!("the `Link` header's next target is not a valid URL ({e})"))?;
    let same_origin = next.scheme() == base.scheme()
        && next.host_str() == base.host_str()
        && next.port_or_known_default() == base.port_or_known_default();
    if !same_origin {
        return Err(format!(
            "the `Link` header's next target is on another origin ({}://{}); \
             only links under the connector's URL are followed",
            next.scheme(),
            next.host_str().unwrap_or("no host")
        ));
    }
    let prefix = base.path().trim_end_matches('/');
    let rest = match next.path().strip_prefix(prefix) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => {
            return Err(format!(
                "the `Link` header's next target is outside the connector's base path `{}`",
                if prefix.is_empty() { "/" } else { prefix }
            ));
        }
    };
    let query = next
        .query_pairs()
        .filter(|(key, _)| Some(key.as_ref()) != credential_param)
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    Ok((rest.to_string(), query))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> reqwest::Url {
        reqwest::Url::parse(text).unwrap()
    }

    #[test]
    fn quoted_strings_unescape_and_may_be_unterminated() {
        assert_eq!(quoted(br#""a\"b" x"#, 0), ("a\"b".to_string(), 6));
        assert_eq!(quoted(br#""abc"#, 0), ("abc".to_string(), 4));
        assert_eq!(quoted(br#""\"#, 0), ("\\".to_string(), 2));
    }

    #[test]
    fn resolution_keeps_the_path_under_the_base() {
        let base = url("https://api.example.com/v2");
        let current = url("https://api.example.com/v2/items?page=1");
        assert_eq!(
            resolve_link(&base, &current, "?page=2", None).unwrap(),
            ("/items".to_string(), vec![("page".into(), "2".into())])
        );
        assert_eq!(resolve_link(&base, &current, "/v2", None).unwrap().0, "/");
        assert!(resolve_link(&base, &current, "/v20/items", None).is_err());
        assert!(resolve_link(&base, &current, "/../v1/items", None).is_err());
        let (_, query) = resolve_link(
            &base,
            &current,
            "https://api.example.com:443/v2/items?key=s3cret&page=3",
            Some("key"),
        )
        .unwrap();
        assert_eq!(query, vec![("page".into(), "3".into())]);
    }
}
