//! GraphQL over HTTP: one operation `POST`ed as `{query, variables}`.
//!
//! A GraphQL server answers 200 even when the operation failed, listing the
//! failures in `errors`; a response with a non-empty `errors` array is
//! therefore an error here ([`FetchError::Graphql`]) even when it carries
//! partial `data`, since a step working on half an answer would do so
//! silently. Otherwise the result is `data`.
//!
//! An operation goes through the same send pipeline as any call
//! ([`crate::send`]); the check of its response is shared with paginated
//! `graphql` steps ([`crate::paginate`]), which page through a GraphQL
//! connection.
//!
//! `POST` is not retried without an idempotency key ([`Connector::send`]),
//! but a query has no side effects, so a document whose operations are all
//! queries is retried like a `GET`. The check is syntactic and errs towards
//! not retrying: see [`Document::is_query`].

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::call::{CallRequest, Response};
use crate::connector::Connector;
use crate::error::FetchError;
use crate::redact::Masker;
use crate::retry::RetryPolicy;

/// How many errors of one response are kept.
pub const MAX_ERRORS_KEPT: usize = 10;
/// How many errors an error message lists.
const MAX_ERRORS_SHOWN: usize = 5;
/// Longest error message kept, in characters.
const MAX_MESSAGE_CHARS: usize = 300;

/// A GraphQL document, analysed once when the step is compiled.
#[derive(Clone)]
pub struct Document {
    text: Arc<str>,
    query: bool,
}

impl Document {
    pub fn new(text: &str) -> Document {
        Document {
            text: Arc::from(text),
            query: only_queries(text),
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether every operation in the document is a query (`query …` or the
    /// `{ … }` shorthand), so the request may be retried. Fragments do not
    /// count; a document with a mutation, a subscription, anything else at
    /// the top level, or no operation at all is not a query. Comments and
    /// strings are skipped.
    pub fn is_query(&self) -> bool {
        self.query
    }
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("chars", &self.text.chars().count())
            .field("query", &self.query)
            .finish()
    }
}

/// Scans the top level of a document for its definitions' keywords.
fn only_queries(text: &str) -> bool {
    let bytes = text.as_bytes();
    let (mut braces, mut parens) = (0usize, 0usize);
    let mut at_definition = true;
    let mut operations = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            b'"' => {
                i = skip_string(bytes, i);
                continue;
            }
            b'{' => {
                if braces == 0 && parens == 0 && at_definition {
                    // `{ … }` alone is an anonymous query.
                    operations += 1;
                    at_definition = false;
                }
                braces += 1;
            }
            b'}' => {
                braces = braces.saturating_sub(1);
                if braces == 0 && parens == 0 {
                    at_definition = true;
                }
            }
            b'(' => parens += 1,
            b')' => parens = parens.saturating_sub(1),
            b if b == b'_' || b.is_ascii_alphabetic() => {
                let start = i;
                while i < bytes.len() && (bytes[i] == b'_' || bytes[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
                if braces == 0 && parens == 0 && at_definition {
                    match text.get(start..i).unwrap_or_default() {
                        "query" => operations += 1,
                        "fragment" => {}
                        // mutation, subscription, type-system definitions
                        _ => return false,
                    }
                    at_definition = false;
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    operations > 0
}

/// Index after the string starting at `bytes[start] == '"'` (block strings
/// `"""…"""` included); the end of input when unterminated.
fn skip_string(bytes: &[u8], start: usize) -> usize {
    if bytes.get(start..start + 3) == Some(b"\"\"\"") {
        let mut i = start + 3;
        while i < bytes.len() {
            if bytes.get(i..i + 4) == Some(b"\\\"\"\"") {
                i += 4;
            } else if bytes.get(i..i + 3) == Some(b"\"\"\"") {
                return i + 3;
            } else {
                i += 1;
            }
        }
        return i;
    }
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' | b'\n' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// One GraphQL operation to send.
#[derive(Clone, Debug)]
pub struct GraphqlRequest {
    /// Endpoint path under the connector's URL, e.g. `/graphql`.
    pub path: String,
    pub document: Document,
    /// Sent as `variables` (left out when empty).
    pub variables: Map<String, Value>,
    pub headers: Vec<(String, String)>,
    /// For a mutation: makes it retryable, as for any `POST`.
    pub idempotency_key: Option<String>,
    /// As [`CallRequest::rate_key`].
    pub rate_key: Option<String>,
    /// As [`CallRequest::breaker_key`].
    pub breaker_key: Option<String>,
}

impl GraphqlRequest {
    pub fn new(path: impl Into<String>, document: Document) -> GraphqlRequest {
        GraphqlRequest {
            path: path.into(),
            document,
            variables: Map::new(),
            headers: Vec::new(),
            idempotency_key: None,
            rate_key: None,
            breaker_key: None,
        }
    }

    /// The HTTP request: `POST path` with `{query, variables}`.
    pub fn to_call(&self) -> CallRequest {
        let mut body = Map::new();
        body.insert("query".into(), Value::String(self.document.text().into()));
        if !self.variables.is_empty() {
            body.insert("variables".into(), Value::Object(self.variables.clone()));
        }
        CallRequest {
            method: "POST".into(),
            path: self.path.clone(),
            query: Vec::new(),
            headers: self.headers.clone(),
            body: Some(Value::Object(body)),
            idempotency_key: self.idempotency_key.clone(),
            rate_key: self.rate_key.clone(),
            breaker_key: self.breaker_key.clone(),
        }
    }
}

/// The value of a `variables` expression as GraphQL variables: an object,
/// or `null` for none.
pub fn variables(value: Value) -> Result<Map<String, Value>, String> {
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        other => Err(format!(
            "variables must be an object, got {}",
            match other {
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                _ => "an array",
            }
        )),
    }
}

/// One entry of a response's `errors`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphqlError {
    /// The message, cut to 300 characters.
    pub message: String,
    /// Where in the result it happened, e.g. `repository.issues.3.title`.
    pub path: Option<String>,
}

impl fmt::Display for GraphqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{} (at {path})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A successful operation.
#[derive(Clone, Debug)]
pub struct GraphqlResult {
    /// The response's `data`: the step output.
    pub data: Value,
    pub response: Response,
    pub attempts: u32,
}

impl Connector {
    /// Sends one GraphQL operation. Queries are retried as the policy
    /// allows; a mutation only with an idempotency key.
    pub async fn graphql(
        &self,
        request: &GraphqlRequest,
        policy: RetryPolicy,
    ) -> Result<GraphqlResult, FetchError> {
        let call = request.to_call();
        let replayable = request.document.is_query() || request.idempotency_key.is_some();
        let delivered = self
            .send_replayable(&call, policy, replayable)
            .await
            .map_err(|failed| FetchError::Call {
                error: failed.error,
                attempts: failed.attempts,
            })?;
        let response = delivered.response;
        check_response(self, &request.path, &response, delivered.attempts)?;
        let data = response.body.get("data").cloned().unwrap_or(Value::Null);
        Ok(GraphqlResult {
            data,
            response,
            attempts: delivered.attempts,
        })
    }
}

/// Fails on a body that is not a GraphQL response or that lists errors.
/// Error messages are the upstream's text: masked before they are cut.
/// `attempts` is how many requests the answer took, for the error.
pub(crate) fn check_response(
    connector: &Connector,
    path: &str,
    response: &Response,
    attempts: u32,
) -> Result<(), FetchError> {
    let masker = connector.masker();
    let connector = connector.name();
    let unusable = |reason: &str| FetchError::Unusable {
        connector: connector.to_string(),
        method: "POST".into(),
        path: path.to_string(),
        reason: reason.to_string(),
        status: Some(response.status),
        attempts,
    };
    let Value::Object(body) = &response.body else {
        return Err(unusable("the GraphQL response is not a JSON object"));
    };
    match body.get("errors") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(errors)) if errors.is_empty() => Ok(()),
        Some(Value::Array(errors)) => Err(FetchError::Graphql {
            connector: connector.to_string(),
            path: path.to_string(),
            errors: errors
                .iter()
                .take(MAX_ERRORS_KEPT)
                .map(|error| read_error(error, masker))
                .collect(),
            more: errors.len().saturating_sub(MAX_ERRORS_KEPT),
            status: response.status,
            attempts,
        }),
        Some(_) => Err(unusable("the GraphQL response's `errors` is not an array")),
    }
}

fn read_error(error: &Value, masker: &Masker) -> GraphqlError {
    let message = match error.get("message") {
        Some(Value::String(message)) => message.clone(),
        Some(other) => other.to_string(),
        None => error.to_string(),
    };
    let path = error.get("path").and_then(Value::as_array).map(|segments| {
        segments
            .iter()
            .map(|segment| match segment {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(".")
    });
    GraphqlError {
        message: cut(masker.mask(&message)),
        path: path
            .filter(|p| !p.is_empty())
            .map(|path| cut(masker.mask(&path))),
    }
}

fn cut(mut text: String) -> String {
    if let Some((at, _)) = text.char_indices().nth(MAX_MESSAGE_CHARS) {
        text.truncate(at);
        text.push('…');
    }
    text
}

/// The errors for a message: the first few, then how many more.
pub(crate) fn describe(errors: &[GraphqlError], more: &usize) -> String {
    let mut text = errors
        .iter()
        .take(MAX_ERRORS_SHOWN)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    let hidden = errors.len().saturating_sub(MAX_ERRORS_SHOWN) + more;
    if hidden > 0 {
        text.push_str(&format!("; and {hidden} more"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_told_from_mutations() {
        for query in [
            "{ viewer { login } }",
            "  # a comment with mutation in it\n query Q($a: Int = 1) { x(a: $a) }",
            "fragment F on User { login }\nquery { viewer { ...F } }",
            "query A { a } query B { b }",
            "query ($f: In = {a: \"mutation {\"}) { x }",
            "query { x(s: \"\"\"mutation\n\\\"\"\" }\"\"\") }",
        ] {
            assert!(only_queries(query), "{query}");
        }
        for other in [
            "mutation { delete(id: 1) }",
            "fragment F on User { login }\nmutation M { x { ...F } }",
            "query A { a } mutation B { b }",
            "subscription { events }",
            "",
            "   # only a comment",
            "fragment F on User { login }",
            "type Query { a: Int }",
            "mutation ($f: In = {a: 1}) { x }",
        ] {
            assert!(!only_queries(other), "{other}");
        }
    }

    #[test]
    fn scanning_odd_text_never_panics() {
        for text in [
            "\"",
            "\"\"\"",
            "\"\\",
            "{{{",
            "}}})(",
            "é{query",
            "query\u{0}é",
        ] {
            let _ = only_queries(text);
        }
    }

    #[test]
    fn errors_read_message_and_path() {
        let error = read_error(
            &serde_json::json!({
                "message": "Could not resolve",
                "path": ["repository", "issues", 3],
            }),
            &Masker::default(),
        );
        assert_eq!(
            error.to_string(),
            "Could not resolve (at repository.issues.3)"
        );
        let errors = vec![error.clone(); 7];
        assert!(describe(&errors, &2).ends_with("; and 4 more"));
    }
}
