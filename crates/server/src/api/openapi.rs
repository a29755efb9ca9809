//! The API's OpenAPI 3.1 document, generated from the handlers' own types
//! and annotations, and served at `GET /api/openapi.json`.
//!
//! utoipa collects each route's description as the route is added to the
//! router, so the document lists exactly the routes that exist. A final pass
//! adds what every operation shares, so no handler can forget it: the bearer
//! scheme, `401` (and `403` where a scope above `read` is needed), `400` and
//! `415` where the request has parameters or a body, `503`, and the error
//! body on every error response. The document is committed as
//! `docs/openapi.json`; a test fails when the two differ.

use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::{OpenApi, ToSchema};

/// Shown on every error.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// Stable, snake_case: branch on this (see the list of codes above).
    pub code: String,
    /// For people; its wording may change.
    pub message: String,
    /// More, depending on the code: `parameter` for `invalid_request`,
    /// `required` for `forbidden`, `problems` for `invalid_config`, ...
    pub details: Option<Value>,
}

const DESCRIPTION: &str = "\
Manage a Patchbay node: its flows, runs, dead letters, connectors, \
configuration and secrets, and read its audit log.

Every request under `/api/v1` carries `Authorization: Bearer TOKEN`. Tokens \
are configured in `api.tokens` with scopes: `read` (look), `operate` (also \
start, cancel and replay runs) and `admin` (also configuration, secrets and \
the audit log); each includes the ones before it. A project without tokens \
serves the API open, on a loopback address only, and then answers only \
loopback host names (`localhost`, `127.0.0.1`, `[::1]`).

A request sent by a web page of another origin (its `Origin` header is not \
this node's) is refused, and a `POST`, `PUT`, `PATCH` or `DELETE` with a \
body must be `Content-Type: application/json`. Answers carry \
`Cache-Control: no-store`.

Lists take `limit` (1 to 500, default 50) and `cursor`, and answer \
`{\"items\": [...], \"next_cursor\": ...}`: pass `next_cursor` as `cursor` \
for the next page; it is `null` on the last one.

Errors answer `{\"error\": {\"code\", \"message\", \"details\"?}}`. Codes: \
`invalid_request` and `invalid_json` (400), `unauthorized` (401), \
`forbidden` and `origin_not_allowed` (403), `not_found` (404), \
`method_not_allowed` (405), `host_not_allowed` (421), \
`conflict` and `reload_unsupported` (409), `payload_too_large` (413), \
`unsupported_media_type` (415), `invalid_config` (422), `internal` (500), \
`not_implemented` (501), `unavailable` (503, retry later).";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Patchbay management API",
        description = DESCRIPTION,
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    tags(
        (name = "flows", description = "The flows in force; starting a run by hand"),
        (name = "runs", description = "Runs and their journal; cancel and replay"),
        (name = "dead-letters", description = "Runs that failed for good; replaying them"),
        (name = "connectors", description = "How each upstream is doing on this node"),
        (name = "stats", description = "Activity over time, for charts"),
        (name = "config", description = "The configuration in force; reloading it"),
        (name = "secrets", description = "Values for `${secret:NAME}`, write-only"),
        (name = "audit", description = "Who changed what on this node, and refused tokens"),
        (name = "drift", description = "How upstream replies differ from their connectors' contracts"),
        (name = "endpoints", description = "Webhook endpoints that flows deliver to, failing or disabled"),
        (name = "nodes", description = "The nodes sharing this store, and which one leads"),
    ),
    components(schemas(ErrorBody, ErrorDetail))
)]
pub(crate) struct ApiDoc;

/// Adds to the generated document what every operation shares (see the
/// module doc). Works on JSON: the additions are the same for every
/// operation, whatever utoipa's types for them.
pub(crate) fn finish(document: utoipa::openapi::OpenApi) -> Value {
    let mut document = serde_json::to_value(document).unwrap_or_else(|_| json!({}));
    document["components"]["securitySchemes"][super::auth::SCHEME] = json!({
        "type": "http",
        "scheme": "bearer",
        "description": "A token from `api.tokens` (`patchbay token new` makes one). \
                        Each operation lists the scope it needs."
    });
    let error = json!({ "application/json": {
        "schema": { "$ref": "#/components/schemas/ErrorBody" }
    }});
    if let Some(paths) = document["paths"].as_object_mut() {
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for operation in item.values_mut() {
                complete(operation, &error);
            }
        }
    }
    document
}

fn complete(operation: &mut Value, error: &Value) {
    let Some(operation) = operation.as_object_mut() else {
        return;
    };
    let scope = operation
        .get("security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|requirement| requirement.get(super::auth::SCHEME)?.as_array())
        .flatten()
        .filter_map(Value::as_str)
        .max_by_key(|name| patchbay_config::ApiScope::parse(name))
        .unwrap_or("read")
        .to_string();
    let has_parameters = operation
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|p| !p.is_empty());
    let has_body = operation.contains_key("requestBody");

    let note = format!("Needs a token with the `{scope}` scope.");
    let description = match operation.get("description").and_then(Value::as_str) {
        Some(text) if !text.is_empty() => format!("{text}\n\n{note}"),
        _ => note,
    };
    operation.insert("description".into(), description.into());

    let responses = operation
        .entry("responses")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(responses) = responses.as_object_mut() else {
        return;
    };
    let mut add = |status: &str, description: &str| {
        responses
            .entry(status)
            .or_insert_with(|| json!({ "description": description }));
    };
    if has_parameters || has_body {
        add(
            "400",
            "`invalid_request` or `invalid_json`: a malformed parameter or body; `details.parameter` names the parameter",
        );
    }
    add(
        "401",
        "`unauthorized`: no token, or one this node does not know",
    );
    if scope != "read" {
        add("403", "`forbidden`: the token lacks the scope");
    }
    if has_body {
        add(
            "415",
            "`unsupported_media_type`: the body is not `application/json`",
        );
    }
    add(
        "503",
        "`unavailable`: the store cannot be reached or the node is stopping; retry later",
    );
    for (status, response) in responses.iter_mut() {
        let is_error = status.parse::<u16>().is_ok_and(|s| s >= 400);
        let Some(response) = response.as_object_mut() else {
            continue;
        };
        if is_error && !response.contains_key("content") {
            response.insert("content".into(), error.clone());
        }
        if status == "401" {
            response.insert(
                "headers".into(),
                json!({ "WWW-Authenticate": {
                    "description": "`Bearer realm=\"patchbay\"`, with `error=\"invalid_token\"` for an unknown token",
                    "schema": { "type": "string" }
                }}),
            );
        }
    }
}

/// The document as served and committed: pretty JSON and a final newline.
pub(crate) fn to_text(document: &Value) -> String {
    let mut text = serde_json::to_string_pretty(document).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    match (key.as_str(), inner) {
                        ("$ref", Value::String(target)) => found.push(target),
                        _ => refs(inner, found),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|inner| refs(inner, found)),
            _ => {}
        }
    }

    #[test]
    fn the_document_is_openapi_3_1_and_complete() {
        let document: Value = serde_json::from_str(&super::super::openapi_json()).unwrap();
        assert_eq!(document["openapi"], "3.1.0");
        let mut found = Vec::new();
        refs(&document, &mut found);
        for target in found {
            let name = target.strip_prefix("#/components/schemas/").unwrap();
            assert!(
                document["components"]["schemas"].get(name).is_some(),
                "dangling reference {target}"
            );
        }
        let paths = document["paths"].as_object().unwrap();
        assert!(paths.len() >= 10, "{:?}", paths.keys());
        for (path, item) in paths {
            assert!(path.starts_with("/api/v1/"), "{path}");
            for (method, operation) in item.as_object().unwrap() {
                let scopes = &operation["security"][0]["bearer"];
                assert!(scopes.is_array(), "{method} {path} declares no scope");
                assert!(operation["responses"]["401"].is_object(), "{method} {path}");
                assert!(
                    operation["summary"].is_string(),
                    "{method} {path} has no summary"
                );
            }
        }
    }
}
