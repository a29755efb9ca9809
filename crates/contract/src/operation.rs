//! Operations: one HTTP method on one path of the spec, with what it takes (path and
//! query parameters, a request body) and what it returns on success or on a given
//! status.
//!
//! Path items and operations are read straight from the root document on each question
//! rather than indexed at load time: a spec has at most a few thousand operations, and
//! borrowing from the documents keeps [`Operation`] a pair of references.
//!
//! Operations are listed by path template in byte order (serde_json's maps are sorted
//! unless its `preserve_order` feature is on, which would reach every crate of the
//! workspace), then by method in the order the OpenAPI Path Item lists them.

use serde_json::{Map, Value};

use crate::Contract;
use crate::schema::Schema;

/// The HTTP methods a Path Item may declare, as written and as reported.
pub(crate) const METHODS: [(&str, &str); 8] = [
    ("get", "GET"),
    ("put", "PUT"),
    ("post", "POST"),
    ("delete", "DELETE"),
    ("options", "OPTIONS"),
    ("head", "HEAD"),
    ("patch", "PATCH"),
    ("trace", "TRACE"),
];

/// One segment of a flow's request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Text known when the flow is checked.
    Literal(String),
    /// A value computed at run time, such as `{.id}`.
    Hole,
}

/// One method on one path of the spec.
#[derive(Clone, Copy)]
pub struct Operation<'a> {
    contract: &'a Contract,
    method: &'static str,
    path: &'a str,
    /// The document holding the path item (and so the operation), for its refs.
    doc: usize,
    item: &'a Map<String, Value>,
    op: &'a Map<String, Value>,
}

/// A parameter after `$ref`s are followed.
struct Param<'a> {
    name: &'a str,
    location: &'a str,
    required: bool,
}

pub(crate) fn all(contract: &Contract) -> Vec<Operation<'_>> {
    let Some(paths) = contract.root().get("paths").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (path, item) in paths {
        let Some((doc, Value::Object(item))) = contract.follow_refs(0, item) else {
            continue;
        };
        for (key, method) in METHODS {
            if let Some(Value::Object(op)) = item.get(key) {
                out.push(Operation {
                    contract,
                    method,
                    path,
                    doc,
                    item,
                    op,
                });
            }
        }
    }
    out
}

pub(crate) fn best_match<'a>(
    operations: Vec<Operation<'a>>,
    method: &str,
    path: &[Segment],
) -> Option<Operation<'a>> {
    let path: Vec<&Segment> = path
        .iter()
        .filter(|s| !matches!(s, Segment::Literal(text) if text.is_empty()))
        .collect();
    let mut best: Option<((usize, usize), Operation<'a>)> = None;
    for op in operations {
        if !op.method.eq_ignore_ascii_case(method) {
            continue;
        }
        let Some(score) = score(op.path, &path) else {
            continue;
        };
        // Strictly greater: among equals the first listed stays, so ties (which
        // OpenAPI calls ambiguous) resolve the same way every time.
        if best.as_ref().is_none_or(|(top, _)| score > *top) {
            best = Some((score, op));
        }
    }
    best.map(|(_, op)| op)
}

/// How well a path template matches: literal segments matched, then segments mixing
/// text and a template (more specific than a bare `{x}`); `None` when it does not.
fn score(template: &str, path: &[&Segment]) -> Option<(usize, usize)> {
    let spec: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
    if spec.len() != path.len() {
        return None;
    }
    let (mut literal, mut mixed) = (0, 0);
    for (spec, flow) in spec.iter().zip(path) {
        if !spec.contains('{') {
            match flow {
                Segment::Literal(text) if text == spec => literal += 1,
                _ => return None,
            }
        } else if !is_bare_template(spec) {
            mixed += 1;
        }
    }
    Some((literal, mixed))
}

fn is_bare_template(segment: &str) -> bool {
    segment
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .is_some_and(|name| !name.contains(['{', '}']))
}

impl<'a> Operation<'a> {
    /// The method, upper case.
    pub fn method(&self) -> &'a str {
        self.method
    }

    /// The path template as in the spec, e.g. "/contacts/{contactId}".
    pub fn path(&self) -> &'a str {
        self.path
    }

    pub fn operation_id(&self) -> Option<&'a str> {
        self.op.get("operationId").and_then(Value::as_str)
    }

    /// Names of the template's path parameters, in order.
    pub fn path_params(&self) -> Vec<&'a str> {
        template_params(self.path)
    }

    /// Required query parameters, path-level ones merged in and overridden by
    /// operation-level ones with the same name and location.
    pub fn required_query(&self) -> Vec<&'a str> {
        self.params()
            .into_iter()
            .filter(|p| p.location == "query" && p.required)
            .map(|p| p.name)
            .collect()
    }

    /// All query parameter names, required or not.
    pub fn query_params(&self) -> Vec<&'a str> {
        self.params()
            .into_iter()
            .filter(|p| p.location == "query")
            .map(|p| p.name)
            .collect()
    }

    /// The schema of the JSON request body (`application/json`, any `…+json`, or the
    /// only content type declared), if the operation documents one.
    pub fn request_schema(&self) -> Option<Schema<'a>> {
        let (doc, body) = self
            .contract
            .follow_refs(self.doc, self.op.get("requestBody")?)?;
        let media = json_media(body.get("content")?.as_object()?)?;
        Some(Schema::at(self.contract, doc, media.get("schema")?))
    }

    pub fn request_body_required(&self) -> bool {
        self.op
            .get("requestBody")
            .and_then(|body| self.contract.follow_refs(self.doc, body))
            .and_then(|(_, body)| body.get("required"))
            == Some(&Value::Bool(true))
    }

    /// The status and JSON schema of the success response: the lowest explicit 2xx
    /// status with a JSON schema, else `2XX` with one; failing both, the lowest 2xx
    /// (or `2XX`) without a schema, such as a 204. `None` when no success is documented.
    pub fn success_response(&self) -> Option<(&'a str, Option<Schema<'a>>)> {
        let responses = self.op.get("responses")?.as_object()?;
        let mut explicit: Vec<(u16, &'a str, &'a Value)> = responses
            .iter()
            .filter_map(|(status, response)| {
                let code = status.parse::<u16>().ok()?;
                (status.len() == 3 && (200..300).contains(&code)).then_some((
                    code,
                    status.as_str(),
                    response,
                ))
            })
            .collect();
        explicit.sort_by_key(|(code, _, _)| *code);
        let range = responses
            .iter()
            .find(|(status, _)| status.eq_ignore_ascii_case("2XX"))
            .map(|(status, response)| (0, status.as_str(), response));
        let candidates: Vec<_> = explicit.into_iter().chain(range).collect();
        for (_, status, response) in &candidates {
            if let Some(schema) = self.schema_of(response) {
                return Some((*status, Some(schema)));
            }
        }
        candidates.first().map(|(_, status, _)| (*status, None))
    }

    fn schema_of(&self, response: &'a Value) -> Option<Schema<'a>> {
        let (doc, response) = self.contract.follow_refs(self.doc, response)?;
        let media = json_media(response.get("content")?.as_object()?)?;
        Some(Schema::at(self.contract, doc, media.get("schema")?))
    }

    /// The JSON schema of the response for `status` (an HTTP code): the exact code
    /// ("200"), else its class ("2XX", any case), else "default". `None` when that
    /// response is not documented at all, `Some(None)` when it is documented without a
    /// JSON schema (a 204, or only `text/csv`).
    ///
    /// Unlike [`Operation::success_response`], a lone non-JSON media type does not
    /// count: this answers what a reply body must look like at run time, and a CSV
    /// body is not checked against a JSON schema.
    pub fn response_schema(&self, status: u16) -> Option<Option<Schema<'a>>> {
        let (_, response) = self.response_for(status)?;
        Some(self.json_schema_of(response))
    }

    /// The key of the documented response used for `status` ("200", "2XX",
    /// "default"), as written in the spec, for messages and drift records.
    pub fn response_key(&self, status: u16) -> Option<&'a str> {
        self.response_for(status).map(|(key, _)| key)
    }

    fn response_for(&self, status: u16) -> Option<(&'a str, &'a Value)> {
        let responses = self.op.get("responses")?.as_object()?;
        let code = status.to_string();
        let class = format!("{}XX", status / 100);
        responses
            .get_key_value(code.as_str())
            .or_else(|| {
                responses
                    .iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(&class))
            })
            .or_else(|| responses.get_key_value("default"))
            .map(|(key, response)| (key.as_str(), response))
    }

    fn json_schema_of(&self, response: &'a Value) -> Option<Schema<'a>> {
        let (doc, response) = self.contract.follow_refs(self.doc, response)?;
        let media = strict_json_media(response.get("content")?.as_object()?)?;
        Some(Schema::at(self.contract, doc, media.get("schema")?))
    }

    /// The parameters after refs are followed, path-level first, each overridden by an
    /// operation-level one with the same name and location.
    fn params(&self) -> Vec<Param<'a>> {
        let mut out: Vec<Param<'a>> = Vec::new();
        for list in [self.item.get("parameters"), self.op.get("parameters")] {
            let Some(list) = list.and_then(Value::as_array) else {
                continue;
            };
            for param in list {
                let Some((_, Value::Object(param))) = self.contract.follow_refs(self.doc, param)
                else {
                    continue;
                };
                let (Some(name), Some(location)) = (
                    param.get("name").and_then(Value::as_str),
                    param.get("in").and_then(Value::as_str),
                ) else {
                    continue;
                };
                let param = Param {
                    name,
                    location,
                    required: param.get("required") == Some(&Value::Bool(true)),
                };
                match out
                    .iter_mut()
                    .find(|p| p.name == name && p.location == location)
                {
                    Some(existing) => *existing = param,
                    None => out.push(param),
                }
            }
        }
        out
    }
}

/// The JSON media type of a `content` map: `application/json`, else any `…+json`, else
/// the only one there is.
fn json_media(content: &Map<String, Value>) -> Option<&Value> {
    strict_json_media(content).or_else(|| {
        (content.len() == 1)
            .then(|| content.values().next())
            .flatten()
    })
}

/// The JSON media type of a `content` map: `application/json`, else any `…+json`.
fn strict_json_media(content: &Map<String, Value>) -> Option<&Value> {
    let base = |media: &str| {
        media
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    };
    content
        .iter()
        .find(|(media, _)| base(media) == "application/json")
        .or_else(|| {
            content
                .iter()
                .find(|(media, _)| base(media).ends_with("+json"))
        })
        .map(|(_, value)| value)
}

impl std::fmt::Debug for Operation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// The parameter names of a path template (`/a/{id}/{n}.json` gives `id`, `n`), in
/// order.
pub(crate) fn template_params(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else { break };
        out.push(&after[..end]);
        rest = &after[end + 1..];
    }
    out
}

/// A path template with parameter names dropped: `/a/{id}.json` gives `/a/{}.json`, so
/// that two templates naming their parameters differently compare equal.
pub fn path_shape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut inside = false;
    for c in path.chars() {
        match c {
            '{' => {
                inside = true;
                out.push('{');
            }
            '}' if inside => {
                inside = false;
                out.push('}');
            }
            _ if inside => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(text: &str) -> Segment {
        Segment::Literal(text.to_string())
    }

    #[test]
    fn scores_prefer_literals_then_mixed_segments() {
        let flow = [lit("files"), lit("a.json")];
        let refs: Vec<&Segment> = flow.iter().collect();
        assert_eq!(score("/files/{name}", &refs), Some((1, 0)));
        assert_eq!(score("/files/{name}.json", &refs), Some((1, 1)));
        assert_eq!(score("/files/a.json", &refs), Some((2, 0)));
        assert_eq!(score("/files", &refs), None);
        let hole = [lit("files"), Segment::Hole];
        let refs: Vec<&Segment> = hole.iter().collect();
        assert_eq!(score("/files/a.json", &refs), None);
        assert_eq!(score("/files/{name}.json", &refs), Some((1, 1)));
    }

    #[test]
    fn bare_templates() {
        assert!(is_bare_template("{id}"));
        assert!(!is_bare_template("{id}.json"));
        assert!(!is_bare_template("{a}{b}"));
    }
}
