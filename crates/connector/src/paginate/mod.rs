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
//! Each style is a file of this folder, and says two things: where the
//! first request starts (`page` and `offset` put their parameters on it),
//! and, from a fetched page, what the next request is, if any. Everything
//! else is the [`Paginator`]'s, here: sending each page through the
//! pipeline, reading the items, noticing a loop, `max_pages`, idempotency
//! keys. The styles and when they stop:
//!
//! - `cursor` (`cursor.rs`): the next cursor is a jq value of the page;
//!   `null` or `""` ends.
//! - `page` (`page.rs`): numbered pages; an empty page, or one shorter than
//!   `size`, ends.
//! - `offset` (`offset.rs`): the offset grows by the items received; a page
//!   shorter than `limit` ends.
//! - `link` (`link.rs`): the `rel="next"` target of the RFC 8288 `Link`
//!   header, parsed in `link_header.rs`; none ends. The target must stay
//!   under the connector's base URL (same scheme, host, port and path
//!   prefix): the connector's credential goes with every request, and a
//!   link is upstream-controlled text.
//! - `connection` (`connection.rs`): a GraphQL connection's
//!   `pageInfo { hasNextPage endCursor }`.
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
use serde_json::Value;

use crate::call::{CallRequest, Response};
use crate::connector::Connector;
use crate::error::{FetchError, PageError, PaginateConfigError};
use crate::graphql::{self, GraphqlRequest};
use crate::retry::RetryPolicy;

mod connection;
mod cursor;
mod link;
mod link_header;
mod offset;
mod page;

pub use link_header::{Link, next_link, parse_link_header};

/// The next page of a style: its position (a cursor, page number, offset
/// or link, compared with the last to notice a loop) and its request.
type Next = (String, CallRequest);

/// A step's `paginate` configuration, compiled.
#[derive(Clone, Debug)]
pub struct Pagination {
    style: Style,
    items: Option<Expr>,
    max_pages: u32,
}

/// The compiled style; each is a file of this folder.
#[derive(Clone, Debug)]
enum Style {
    Cursor(cursor::Cursor),
    Page(page::Numbered),
    Offset(offset::Offset),
    Link,
    Connection(connection::Connection),
}

impl Style {
    fn name(&self) -> &'static str {
        match self {
            Style::Cursor(_) => "cursor",
            Style::Page(_) => "page",
            Style::Offset(_) => "offset",
            Style::Link => "link",
            Style::Connection(_) => "connection",
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
            Some(PagingStyle::Cursor(c)) => compile("cursor.from", &c.from).map(|from| {
                Style::Cursor(cursor::Cursor {
                    param: c.param.clone(),
                    from,
                })
            }),
            Some(PagingStyle::Page(p)) => Some(Style::Page(page::Numbered {
                param: p.param.clone(),
                start: p.start,
                size_param: p.size_param.clone(),
                size: p.size,
            })),
            Some(PagingStyle::Offset(o)) => Some(Style::Offset(offset::Offset {
                param: o.param.clone(),
                limit_param: o.limit_param.clone(),
                limit: o.limit,
            })),
            Some(PagingStyle::Link(_)) => Some(Style::Link),
            Some(PagingStyle::Connection(c)) => compile("connection.from", &c.from).map(|from| {
                Style::Connection(connection::Connection {
                    from,
                    variable: c.variable.clone(),
                })
            }),
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
        matches!(self.style, Style::Connection(_))
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
    /// The last page's status.
    pub status: Option<u16>,
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
    /// The status of the last page answered.
    last_status: Option<u16>,
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
        let position = match &pagination.style {
            Style::Page(style) => Some(style.start(&mut first)),
            Style::Offset(style) => Some(style.start(&mut first)),
            Style::Cursor(_) | Style::Link | Style::Connection(_) => None,
        };
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
            last_status: None,
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
        Some(result.map_err(|error| PageError {
            page: index,
            error,
            attempts: self.attempts,
        }))
    }

    async fn fetch(&mut self, request: CallRequest, index: u32) -> Result<Page, FetchError> {
        // `answer`: the status and attempts of the answer found unusable,
        // `None` when nothing was sent.
        let unusable = |reason: String, answer: Option<(u16, u32)>| FetchError::Unusable {
            connector: self.connector.name().to_string(),
            method: request.method.clone(),
            path: request.path.clone(),
            reason,
            status: answer.map(|(status, _)| status),
            attempts: answer.map_or(0, |(_, attempts)| attempts),
        };
        if let Some(reason) = self.setup_error.take() {
            return Err(unusable(reason, None));
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
        self.last_status = Some(response.status);
        let answer = Some((response.status, delivered.attempts));
        let view = match self.mode {
            Mode::Rest => response.clone().into_value(),
            Mode::Graphql { .. } => {
                graphql::check_response(
                    self.connector,
                    &request.path,
                    &response,
                    delivered.attempts,
                )?;
                response.body.clone()
            }
        };
        let (items, next) = self
            .read_page(&request, &response, &view)
            .map_err(|reason| unusable(reason, answer))?;
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
            return Err(unusable(
                format!(
                    "the upstream returned the same {} again; stopping instead of \
                     fetching one page over and over",
                    match self.pagination.style {
                        Style::Link => "next link",
                        Style::Cursor(_)
                        | Style::Page(_)
                        | Style::Offset(_)
                        | Style::Connection(_) => "cursor",
                    }
                ),
                answer,
            ));
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
    /// request: the items as configured (or the body), the next page as
    /// the style says.
    fn read_page(
        &self,
        request: &CallRequest,
        response: &Response,
        view: &Value,
    ) -> Result<(Vec<Value>, Option<Next>), String> {
        let items = match (&self.pagination.items, &self.pagination.style) {
            (Some(expr), _) => {
                into_items(eval("items", expr, view, &self.vars)?, "`paginate.items`")?
            }
            (None, Style::Connection(_)) => Vec::new(), // read from the connection
            (None, _) => into_items(
                view.get("body").cloned().unwrap_or(Value::Null),
                "the body (set `paginate.items` to the array's path, e.g. `.body.data`)",
            )?,
        };
        Ok(match &self.pagination.style {
            Style::Cursor(style) => {
                let next = style.next(request, view, &self.vars)?;
                (items, next)
            }
            Style::Page(style) => {
                let next = style.next(request, &items);
                (items, next)
            }
            Style::Offset(style) => {
                let next = style.next(request, &items);
                (items, next)
            }
            Style::Link => {
                let next = link::next(self.connector, request, response)?;
                (items, next)
            }
            Style::Connection(style) => {
                let configured = self.pagination.items.is_some().then_some(items);
                style.read(request, view, &self.vars, configured)?
            }
        })
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
            status: self.last_status,
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

/// `request` with query parameter `name` set to `value`, and `value` as the
/// position: the next page of the query-parameter styles.
fn with_query(request: &CallRequest, name: &str, value: String) -> Next {
    let mut next = request.clone();
    set_query(&mut next, name, value.clone());
    (value, next)
}

/// The value of a `paginate` jq program on the page's `view`.
fn eval(key: &str, expr: &Expr, view: &Value, vars: &Vars<'_>) -> Result<Value, String> {
    expr.eval(view, vars)
        .map_err(|e| format!("`paginate.{key}`: {e}"))
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
