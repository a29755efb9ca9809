//! Pagination of a step's results and GraphQL steps.
//!
//! `paginate` is one mapping on a `call` or `graphql` step, holding exactly
//! one style key plus `items` and `max_pages`:
//!
//! ```yaml
//! paginate:
//!   cursor: {param: cursor, from: .body.next_cursor}
//!   items: .body.data
//!   max_pages: 50
//! ```
//!
//! Styles are sibling keys rather than a `style:` tag so each carries only
//! its own options and a typo in one is a located "unknown field" error; the
//! one-style rule mirrors the one-kind rule of steps and is checked by
//! [`PaginateConfig::check`]. `items` and `max_pages` sit beside the style
//! because they mean the same thing for every style.
//!
//! A GraphQL step is its own kind (`graphql:` mapping) rather than a `call`
//! modifier: it is always a `POST` of `{query, variables}`, its result is the
//! response's `data`, and an `errors` array fails it; a `call` line would
//! only add a method and path that can be nothing else.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::located::Located;

/// Pages fetched when `max_pages` is not given.
pub const DEFAULT_MAX_PAGES: u32 = 100;
/// Largest accepted `max_pages`: beyond it a loop is more likely than a list.
pub const MAX_MAX_PAGES: u32 = 10_000;

/// How a step fetches its results page by page. Exactly one of `cursor`,
/// `page`, `offset`, `link` (for `call` steps) or `connection` (for `graphql`
/// steps) must be given.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaginateConfig {
    /// The next page's cursor comes from the response; stop when it is
    /// `null` or empty.
    #[serde(default)]
    pub cursor: Option<Located<CursorPaging>>,
    /// Numbered pages; stop on an empty (or short) page.
    #[serde(default)]
    pub page: Option<Located<PagePaging>>,
    /// An offset advanced by the items received; stop on a short page.
    #[serde(default)]
    pub offset: Option<Located<OffsetPaging>>,
    /// Follow the `Link: <...>; rel="next"` response header (RFC 8288);
    /// write `link: {}`.
    #[serde(default)]
    pub link: Option<Located<LinkPaging>>,
    /// A GraphQL connection with `pageInfo { hasNextPage endCursor }`.
    #[serde(default)]
    pub connection: Option<Located<ConnectionPaging>>,
    /// jq producing the page's items (an array; `null` counts as empty).
    /// Evaluated on `{status, headers, body}` for a `call` (default `.body`)
    /// and on the GraphQL response `{data, ...}` for `graphql` (default: the
    /// connection's `nodes`, or its `edges[].node`).
    #[serde(default)]
    pub items: Option<Located<String>>,
    /// Most pages fetched (default 100, at most 10000). Reaching it while the
    /// upstream offers more ends the step with `truncated: true` and a
    /// warning, not an error.
    #[serde(default)]
    pub max_pages: Option<Located<u32>>,
}

/// `cursor: {param, from}`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CursorPaging {
    /// Query parameter carrying the cursor (default `cursor`).
    #[serde(default = "default_cursor_param")]
    pub param: String,
    /// jq on `{status, headers, body}` producing the next cursor (a string or
    /// number); `null` or `""` means this was the last page.
    pub from: Located<String>,
}

/// `page: {param, start, size_param, size}`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PagePaging {
    /// Query parameter carrying the page number (default `page`).
    #[serde(default = "default_page_param")]
    pub param: String,
    /// Number of the first page (default 1).
    #[serde(default = "default_page_start")]
    pub start: i64,
    /// Query parameter carrying the page size (default: none is sent).
    #[serde(default)]
    pub size_param: Option<String>,
    /// Page size. When given, a page with fewer items is the last one;
    /// otherwise an empty page is.
    #[serde(default)]
    pub size: Option<u32>,
}

/// `offset: {param, limit_param, limit}`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OffsetPaging {
    /// Query parameter carrying the offset of the first item (default
    /// `offset`); it starts at 0 and grows by the items received.
    #[serde(default = "default_offset_param")]
    pub param: String,
    /// Query parameter carrying the page size (default `limit`).
    #[serde(default = "default_limit_param")]
    pub limit_param: String,
    /// Page size; a page with fewer items is the last one. Required: it must
    /// not exceed what the upstream really returns per page.
    pub limit: u32,
}

/// `link: {}`: no options.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkPaging {}

/// `connection: {from, variable}`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionPaging {
    /// jq on the GraphQL response `{data, ...}` producing the connection
    /// object, e.g. `.data.repository.issues`.
    pub from: Located<String>,
    /// GraphQL variable receiving `pageInfo.endCursor` (default `after`).
    #[serde(default = "default_connection_variable")]
    pub variable: String,
}

/// The style of a [`PaginateConfig`].
#[derive(Clone, Copy, Debug)]
pub enum PagingStyle<'a> {
    Cursor(&'a Located<CursorPaging>),
    Page(&'a Located<PagePaging>),
    Offset(&'a Located<OffsetPaging>),
    Link(&'a Located<LinkPaging>),
    Connection(&'a Located<ConnectionPaging>),
}

impl PagingStyle<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            PagingStyle::Cursor(_) => "cursor",
            PagingStyle::Page(_) => "page",
            PagingStyle::Offset(_) => "offset",
            PagingStyle::Link(_) => "link",
            PagingStyle::Connection(_) => "connection",
        }
    }

    /// Whether the style belongs on a `graphql` step (else on a `call`).
    pub fn is_graphql(&self) -> bool {
        matches!(self, PagingStyle::Connection(_))
    }
}

impl PaginateConfig {
    /// Every style key present; a valid configuration has exactly one.
    pub fn styles(&self) -> Vec<PagingStyle<'_>> {
        let mut styles = Vec::with_capacity(1);
        if let Some(v) = &self.cursor {
            styles.push(PagingStyle::Cursor(v));
        }
        if let Some(v) = &self.page {
            styles.push(PagingStyle::Page(v));
        }
        if let Some(v) = &self.offset {
            styles.push(PagingStyle::Offset(v));
        }
        if let Some(v) = &self.link {
            styles.push(PagingStyle::Link(v));
        }
        if let Some(v) = &self.connection {
            styles.push(PagingStyle::Connection(v));
        }
        styles
    }

    /// The page cap in force.
    pub fn max_pages(&self) -> u32 {
        self.max_pages
            .as_ref()
            .map(|m| m.value)
            .unwrap_or(DEFAULT_MAX_PAGES)
    }

    /// Problems that serde cannot see, for a `paginate` on a `graphql` step
    /// (`graphql: true`) or on a `call` step. Each message is a sentence about
    /// `paginate`; jq syntax is checked where expressions are compiled.
    pub fn check(&self, graphql: bool) -> Vec<String> {
        let mut problems = Vec::new();
        let styles = self.styles();
        match styles.as_slice() {
            [] if graphql => problems
                .push("`paginate` on a `graphql` step needs `connection: {from: JQ}`".to_string()),
            [] => problems
                .push("`paginate` needs one of `cursor`, `page`, `offset`, `link`".to_string()),
            [style] if style.is_graphql() && !graphql => problems.push(
                "`paginate.connection` applies to `graphql` steps; a `call` uses `cursor`, \
                 `page`, `offset` or `link`"
                    .to_string(),
            ),
            [style] if !style.is_graphql() && graphql => problems.push(format!(
                "`paginate.{}` applies to `call` steps; a `graphql` step uses `connection`",
                style.name()
            )),
            [_] => {}
            many => problems.push(format!(
                "`paginate` takes exactly one style, found {}",
                many.iter()
                    .map(|s| format!("`{}`", s.name()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
        for style in &styles {
            match style {
                PagingStyle::Cursor(c) => check_param("cursor.param", &c.param, &mut problems),
                PagingStyle::Page(p) => {
                    check_param("page.param", &p.param, &mut problems);
                    if let Some(size_param) = &p.size_param {
                        check_param("page.size_param", size_param, &mut problems);
                        if p.size.is_none() {
                            problems.push("`paginate.page.size_param` needs `size`".to_string());
                        }
                    }
                    if p.size == Some(0) {
                        problems.push("`paginate.page.size` must be at least 1".to_string());
                    }
                }
                PagingStyle::Offset(o) => {
                    check_param("offset.param", &o.param, &mut problems);
                    check_param("offset.limit_param", &o.limit_param, &mut problems);
                    if o.limit == 0 {
                        problems.push("`paginate.offset.limit` must be at least 1".to_string());
                    }
                }
                PagingStyle::Link(_) => {}
                PagingStyle::Connection(c) => {
                    if !is_graphql_name(&c.variable) {
                        problems.push(format!(
                            "`paginate.connection.variable` `{}` is not a GraphQL variable name \
                             (letters, digits, `_`; write it without `$`)",
                            c.variable
                        ));
                    }
                }
            }
        }
        if let Some(max) = &self.max_pages
            && !(1..=MAX_MAX_PAGES).contains(&max.value)
        {
            problems.push(format!(
                "`paginate.max_pages` must be between 1 and {MAX_MAX_PAGES}"
            ));
        }
        problems
    }
}

fn check_param(key: &str, value: &str, problems: &mut Vec<String>) {
    if value.is_empty() {
        problems.push(format!("`paginate.{key}` must not be empty"));
    }
}

/// GraphQL `Name`: `[_A-Za-z][_0-9A-Za-z]*`.
fn is_graphql_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

fn default_cursor_param() -> String {
    "cursor".into()
}

fn default_page_param() -> String {
    "page".into()
}

fn default_page_start() -> i64 {
    1
}

fn default_offset_param() -> String {
    "offset".into()
}

fn default_limit_param() -> String {
    "limit".into()
}

fn default_connection_variable() -> String {
    "after".into()
}

/// A `graphql` step: one GraphQL operation sent to a connector.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GraphqlConfig {
    /// The connector to send it to.
    pub connector: Located<String>,
    /// Endpoint path appended to the connector's URL (default `/graphql`).
    #[serde(default)]
    pub path: Option<Located<String>>,
    /// The GraphQL document: one operation, plus any fragments it uses.
    pub document: Located<String>,
    /// jq producing the object of variables (default: none).
    #[serde(default)]
    pub variables: Option<Located<String>>,
    /// jq producing an object of extra request headers.
    #[serde(default)]
    pub headers: Option<Located<String>>,
}

impl GraphqlConfig {
    /// The endpoint path when none is given.
    pub const DEFAULT_PATH: &'static str = "/graphql";

    /// The endpoint path in force.
    pub fn path(&self) -> &str {
        self.path
            .as_ref()
            .map(|p| p.value.as_str())
            .unwrap_or(Self::DEFAULT_PATH)
    }

    /// Problems that serde cannot see; the connector's existence and jq
    /// syntax are checked elsewhere.
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.connector.trim().is_empty() {
            problems.push("`graphql.connector` must name a connector".to_string());
        }
        let path = self.path();
        if !path.starts_with('/') {
            problems.push(format!("`graphql.path` `{path}` must start with `/`"));
        } else if path.contains(['?', '#']) {
            problems.push(format!(
                "`graphql.path` `{path}` must not contain a query string or fragment"
            ));
        }
        if self.document.trim().is_empty() {
            problems.push("`graphql.document` is empty".to_string());
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paginate(yaml: &str) -> PaginateConfig {
        serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
    }

    #[test]
    fn defaults_fill_the_conventional_names() {
        let config = paginate("cursor: {from: .body.next}\n");
        let cursor = config.cursor.as_ref().unwrap();
        assert_eq!(cursor.param, "cursor");
        assert_eq!(cursor.from.value, ".body.next");
        assert_eq!(config.max_pages(), DEFAULT_MAX_PAGES);
        assert!(config.check(false).is_empty());

        let config = paginate("page: {}\nmax_pages: 7\n");
        let page = config.page.as_ref().unwrap();
        assert_eq!((page.param.as_str(), page.start), ("page", 1));
        assert_eq!(page.size, None);
        assert_eq!(config.max_pages(), 7);

        let config = paginate("offset: {limit: 50}\n");
        let offset = config.offset.as_ref().unwrap();
        assert_eq!(
            (
                offset.param.as_str(),
                offset.limit_param.as_str(),
                offset.limit
            ),
            ("offset", "limit", 50)
        );

        let config = paginate("connection: {from: .data.repo.issues}\n");
        assert_eq!(config.connection.as_ref().unwrap().variable, "after");
        assert!(config.check(true).is_empty());
    }

    #[test]
    fn exactly_one_style_fitting_the_step() {
        assert!(paginate("items: .body\n").check(false)[0].contains("needs one of"));
        let two = paginate("link: {}\npage: {}\n").check(false);
        assert!(two[0].contains("found `page`, `link`"), "{two:?}");
        assert!(paginate("link: {}\n").check(true)[0].contains("applies to `call` steps"));
        let connection = paginate("connection: {from: .data.x}\n").check(false);
        assert!(connection[0].contains("applies to `graphql` steps"));
    }

    #[test]
    fn numbers_and_names_are_checked() {
        let problems = paginate("page: {size_param: per_page}\nmax_pages: 0\n").check(false);
        assert!(problems.iter().any(|p| p.contains("needs `size`")));
        assert!(problems.iter().any(|p| p.contains("max_pages")));
        assert!(!paginate("offset: {limit: 0}\n").check(false).is_empty());
        let bad = paginate("connection: {from: .data.x, variable: $after}\n").check(true);
        assert!(bad[0].contains("not a GraphQL variable name"), "{bad:?}");
        assert!(serde_saphyr::from_str::<PaginateConfig>("offset: {}\n").is_err());
        assert!(serde_saphyr::from_str::<PaginateConfig>("link: {rel: prev}\n").is_err());
    }

    #[test]
    fn schemas_name_every_key() {
        let paginate = schemars::schema_for!(PaginateConfig).to_value().to_string();
        for key in [
            "cursor",
            "size_param",
            "limit_param",
            "connection",
            "max_pages",
        ] {
            assert!(paginate.contains(&format!("\"{key}\"")), "{key}");
        }
        let graphql = schemars::schema_for!(GraphqlConfig).to_value().to_string();
        assert!(graphql.contains("\"document\"") && graphql.contains("\"variables\""));
    }

    #[test]
    fn graphql_defaults_and_checks() {
        let config: GraphqlConfig =
            serde_saphyr::from_str("connector: gh\ndocument: '{ viewer { login } }'\n").unwrap();
        assert_eq!(config.path(), "/graphql");
        assert!(config.check().is_empty());
        let config: GraphqlConfig =
            serde_saphyr::from_str("connector: gh\npath: graphql?x=1\ndocument: ' '\n").unwrap();
        let problems = config.check();
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
