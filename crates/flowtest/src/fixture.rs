//! Fixture servers: one real HTTP server on loopback per connector of the
//! project, answering from the test's fixtures. A request is matched
//! against the connector's fixtures in order; the first that matches gives
//! its next reply (the last one repeats). A request no fixture matches gets
//! a 404 saying so, and is reported: a test never reaches a real upstream.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use patchbay_config::Located;
use patchbay_testkit::{MockUpstream, RecordedRequest, Reply};
use serde_json::{Value, json};

use crate::error::FlowTestError;
use crate::file::{Fault, Fixture, ReplySpec, RequestMatcher};
use crate::subset;

/// A connector's fixture server.
pub struct FixtureServer {
    mock: MockUpstream,
    book: Arc<Mutex<Book>>,
}

/// The fixtures and how far each one's replies are used.
struct Book {
    fixtures: Vec<(RequestMatcher, Vec<ReplySpec>, usize)>,
    unmatched: Vec<String>,
}

impl FixtureServer {
    pub async fn start(fixtures: &[Located<Fixture>]) -> Result<FixtureServer, FlowTestError> {
        let mock = MockUpstream::start_on(std::net::SocketAddr::from((
            std::net::Ipv4Addr::LOCALHOST,
            0,
        )))
        .await
        .map_err(|e| FlowTestError::Fixture(e.to_string()))?;
        let book = Arc::new(Mutex::new(Book {
            fixtures: fixtures
                .iter()
                .map(|f| (f.request.clone(), f.sequence(), 0))
                .collect(),
            unmatched: Vec::new(),
        }));
        let answering = Arc::clone(&book);
        mock.fallback_fn(move |request| {
            let mut book = answering.lock().unwrap_or_else(PoisonError::into_inner);
            answer(&mut book, request)
        });
        Ok(FixtureServer { mock, book })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.mock.url()
    }

    /// What the server received, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.mock.requests()
    }

    /// Requests no fixture matched, as `METHOD /path?query`.
    pub fn unmatched(&self) -> Vec<String> {
        self.book
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .unmatched
            .clone()
    }
}

fn answer(book: &mut Book, request: &RecordedRequest) -> Reply {
    for (matcher, replies, used) in &mut book.fixtures {
        if !differences(matcher, request).is_empty() {
            continue;
        }
        let index = (*used).min(replies.len().saturating_sub(1));
        *used += 1;
        return match replies.get(index) {
            Some(spec) => reply(spec),
            // A fixture without replies answers an empty 200.
            None => Reply::status(200),
        };
    }
    let shown = shown(request);
    book.unmatched.push(shown.clone());
    Reply::json(
        404,
        json!({"error": "no_fixture", "message": format!("no fixture of this test matches {shown}")}),
    )
}

/// `METHOD /path?query`, as reports show a request.
pub fn shown(request: &RecordedRequest) -> String {
    if request.query.is_empty() {
        format!("{} {}", request.method, request.path)
    } else {
        format!("{} {}?{}", request.method, request.path, request.query)
    }
}

fn reply(spec: &ReplySpec) -> Reply {
    let mut reply = match (spec.fault, &spec.body) {
        (Some(Fault::Reset), _) => Reply::reset(),
        (Some(Fault::MalformedJson), _) => Reply::malformed_json(spec.status()),
        (None, Some(body)) => Reply::json(spec.status(), body.clone()),
        (None, None) => Reply::status(spec.status()),
    };
    for (name, value) in &spec.headers {
        reply = reply.with_header(name, value);
    }
    if let Some(delay) = spec.delay {
        reply = reply.with_delay(delay.0);
    }
    reply
}

/// How `request` differs from what `matcher` asks for, one line each;
/// empty when it matches.
pub fn differences(matcher: &RequestMatcher, request: &RecordedRequest) -> Vec<String> {
    let mut found = Vec::new();
    if !matcher.method.eq_ignore_ascii_case(&request.method) {
        found.push(format!(
            "method: expected {}, got {}",
            matcher.method.to_ascii_uppercase(),
            request.method
        ));
    }
    if !path_matches(&matcher.path, &request.path) {
        found.push(format!(
            "path: expected {}, got {}",
            matcher.path, request.path
        ));
    }
    for (name, want) in &matcher.query {
        let want = scalar_text(want);
        match request.query_param(name) {
            Some(got) if got == want => {}
            Some(got) => found.push(format!("query {name}: expected {want:?}, got {got:?}")),
            None => found.push(format!("query {name}: expected {want:?}, got nothing")),
        }
    }
    for (name, want) in &matcher.headers {
        match request.header(name) {
            Some(got) if got == want => {}
            Some(got) => found.push(format!("header {name}: expected {want:?}, got {got:?}")),
            None => found.push(format!("header {name}: expected {want:?}, got nothing")),
        }
    }
    if let Some(want) = &matcher.body {
        match &request.json {
            Some(got) => found.extend(
                subset::mismatches(want, got)
                    .iter()
                    .map(|m| m.under("body")),
            ),
            None => found.push(format!(
                "body: expected {}, got {}",
                subset::short(want),
                request
                    .body_text()
                    .filter(|t| !t.is_empty())
                    .map_or("no JSON body".to_string(), |t| format!("{t:?}"))
            )),
        }
    }
    found
}

/// A query value as sent: strings as they are, numbers and booleans as
/// JSON writes them.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether `path` fits `pattern`, where a `{name}` segment is any one
/// segment. A trailing `/` does not count.
pub fn path_matches(pattern: &str, path: &str) -> bool {
    let want: Vec<&str> = pattern.trim_end_matches('/').split('/').collect();
    let got: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    want.len() == got.len()
        && want.iter().zip(&got).all(|(want, got)| {
            (want.starts_with('{') && want.ends_with('}') && !got.is_empty()) || want == got
        })
}

/// The requests each connector's server received, by connector.
pub fn requests_by_connector(
    servers: &BTreeMap<String, FixtureServer>,
) -> BTreeMap<String, Vec<RecordedRequest>> {
    servers
        .iter()
        .map(|(name, server)| (name.clone(), server.requests()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_segments_match_any_one_segment() {
        assert!(path_matches("/customers/{id}", "/customers/c-1"));
        assert!(path_matches("/customers/{id}/", "/customers/c-1"));
        assert!(!path_matches("/customers/{id}", "/customers/c-1/orders"));
        assert!(!path_matches("/customers/{id}", "/customers/"));
        assert!(!path_matches("/v1/charges", "/v1/refunds"));
    }
}
