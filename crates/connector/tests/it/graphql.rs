//! GraphQL over real sockets: the request shape, `data` as the result,
//! `errors` as a failure, retries for queries only, and pagination through a
//! connection's `pageInfo`.

use std::time::Duration;

use patchbay_config::{Located, PaginateConfig};
use patchbay_connector::{
    CallClass, Document, FetchError, GraphqlRequest, Pagination, RetryPolicy, variables,
};
use patchbay_expr::Vars;
use patchbay_testkit::{MockUpstream, Reply};
use serde_json::{Value, json};

use crate::support::build;

const ISSUES: &str = r#"
# Issues of a repository, 2 at a time.
query Issues($owner: String!, $after: String) {
  repository(owner: $owner) {
    issues(first: 2, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { number }
    }
  }
}
"#;

fn fast(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempts,
        min: Duration::from_millis(10),
        max: Duration::from_millis(50),
    }
}

fn connection(yaml: &str) -> Pagination {
    let config: PaginateConfig = serde_saphyr::from_str(yaml).unwrap();
    Pagination::for_graphql(&Located::unlocated(config)).unwrap()
}

#[tokio::test]
async fn data_is_the_result() {
    let mock = MockUpstream::start().await;
    mock.route(
        "POST",
        "/api/graphql",
        Reply::json(200, json!({ "data": { "viewer": { "login": "octo" } } })),
    );
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}/api\n",
        mock.url()
    ));
    let mut request = GraphqlRequest::new("/graphql", Document::new("{ viewer { login } }"));
    request.variables = variables(json!({ "n": 1 })).unwrap();
    request.headers.push(("x-trace".into(), "t1".into()));
    let result = connector.graphql(&request, fast(3)).await.unwrap();
    assert_eq!(result.data, json!({ "viewer": { "login": "octo" } }));
    assert_eq!(result.attempts, 1);
    let sent = &mock.requests()[0];
    assert_eq!(
        sent.json,
        Some(json!({ "query": "{ viewer { login } }", "variables": { "n": 1 } }))
    );
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.header("x-trace"), Some("t1"));

    // Without variables none are sent; `null` counts as none.
    request.variables = variables(Value::Null).unwrap();
    connector.graphql(&request, fast(3)).await.unwrap();
    assert_eq!(
        mock.requests()[1].json,
        Some(json!({ "query": "{ viewer { login } }" }))
    );
    assert!(variables(json!([1])).is_err());
}

#[tokio::test]
async fn errors_fail_with_their_messages_and_paths() {
    let mock = MockUpstream::start().await;
    mock.route(
        "POST",
        "/graphql",
        Reply::json(
            200,
            json!({
                "data": { "repository": null },
                "errors": [
                    { "message": "Could not resolve to a Repository", "path": ["repository"],
                      "locations": [{ "line": 1, "column": 3 }] },
                    { "message": "Rate limit close", "extensions": { "code": "X" } },
                ],
            }),
        ),
    );
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n",
        mock.url()
    ));
    let request = GraphqlRequest::new("/graphql", Document::new("query { repository { id } }"));
    let error = connector.graphql(&request, fast(3)).await.unwrap_err();
    let FetchError::Graphql { errors, more, .. } = &error else {
        panic!("expected GraphQL errors, got {error:?}");
    };
    assert_eq!(errors.len(), 2);
    assert_eq!(*more, 0);
    assert_eq!(errors[0].path.as_deref(), Some("repository"));
    assert_eq!(errors[1].path, None);
    assert_eq!(
        error.to_string(),
        "crm: POST /graphql answered with GraphQL errors: \
         Could not resolve to a Repository (at repository); Rate limit close"
    );
    assert_eq!(error.class(), CallClass::InvalidResponse);
    assert_eq!(mock.request_count(), 1, "GraphQL errors are not retried");

    // An empty `errors` array is no error.
    mock.route(
        "POST",
        "/graphql",
        Reply::json(200, json!({ "data": { "a": 1 }, "errors": [] })),
    );
    let result = connector.graphql(&request, fast(3)).await.unwrap();
    assert_eq!(result.data, json!({ "a": 1 }));

    mock.route(
        "POST",
        "/graphql",
        Reply::json(200, json!(["not", "graphql"])),
    );
    let error = connector.graphql(&request, fast(3)).await.unwrap_err();
    assert!(matches!(error, FetchError::Unusable { .. }), "{error}");
}

#[tokio::test]
async fn queries_are_retried_and_mutations_only_with_a_key() {
    let mock = MockUpstream::start().await;
    mock.route("POST", "/graphql", Reply::json(200, json!({ "data": {} })));
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n",
        mock.url()
    ));

    mock.script("POST", "/graphql", [Reply::status(503)]);
    let query = GraphqlRequest::new("/graphql", Document::new("  # list\n{ items { id } }"));
    assert_eq!(
        connector.graphql(&query, fast(3)).await.unwrap().attempts,
        2
    );
    assert_eq!(mock.request_count(), 2);

    mock.script("POST", "/graphql", [Reply::status(503)]);
    let mut mutation = GraphqlRequest::new(
        "/graphql",
        Document::new("mutation { close(id: 1) { id } }"),
    );
    let error = connector.graphql(&mutation, fast(3)).await.unwrap_err();
    assert_eq!(error.attempts(), 1);
    assert_eq!(error.status(), Some(503));
    assert_eq!(
        mock.request_count(),
        3,
        "a mutation without a key is sent once"
    );

    mock.script("POST", "/graphql", [Reply::status(503)]);
    mutation.idempotency_key = Some("run-7:close".into());
    assert_eq!(
        connector
            .graphql(&mutation, fast(3))
            .await
            .unwrap()
            .attempts,
        2
    );
    let requests = mock.requests();
    assert_eq!(requests[3].header("idempotency-key"), Some("run-7:close"));
    assert_eq!(requests[4].header("idempotency-key"), Some("run-7:close"));
}

/// Serves 7 issues, 2 per page, after cursor `c<k>` (k issues already sent)
/// in variable `after` or `cursor`; `edges` instead of `nodes` when the
/// request asks for them.
fn serve_issues(mock: &MockUpstream) {
    mock.route_fn("POST", "/graphql", |req| {
        let body = req.json.clone().unwrap_or_default();
        let variables = &body["variables"];
        let after = variables["after"]
            .as_str()
            .or(variables["cursor"].as_str())
            .map(|c| c.trim_start_matches('c').parse::<u64>().unwrap())
            .unwrap_or(0);
        let end = (after + 2).min(7);
        let numbers: Vec<u64> = (after + 1..=end).collect();
        let edges = body["query"].as_str().unwrap_or_default().contains("edges");
        let mut issues = json!({
            "pageInfo": { "hasNextPage": end < 7, "endCursor": format!("c{end}") },
        });
        if edges {
            issues["edges"] = json!(
                numbers
                    .iter()
                    .map(|n| json!({ "cursor": format!("c{n}"), "node": { "number": n } }))
                    .collect::<Vec<_>>()
            );
        } else {
            issues["nodes"] = json!(
                numbers
                    .iter()
                    .map(|n| json!({ "number": n }))
                    .collect::<Vec<_>>()
            );
        }
        Reply::json(
            200,
            json!({ "data": { "repository": { "issues": issues } } }),
        )
    });
}

#[tokio::test]
async fn connections_paginate_through_page_info() {
    let mock = MockUpstream::start().await;
    serve_issues(&mock);
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n",
        mock.url()
    ));
    let spec = connection("connection: {from: .data.repository.issues}\n");
    let mut request = GraphqlRequest::new("/graphql", Document::new(ISSUES));
    request.variables = variables(json!({ "owner": "acme" })).unwrap();
    let collected = connector
        .paginate_graphql(&request, fast(3), &spec, Vars::default())
        .collect()
        .await
        .unwrap();
    let numbers: Vec<Value> = (1..=7).map(|n| json!({ "number": n })).collect();
    assert_eq!(collected.items, numbers);
    assert_eq!(collected.pages, 4);
    assert!(!collected.truncated);
    let sent: Vec<Value> = mock
        .requests()
        .iter()
        .map(|r| r.json.clone().unwrap()["variables"].clone())
        .collect();
    assert_eq!(
        sent,
        vec![
            json!({ "owner": "acme" }),
            json!({ "owner": "acme", "after": "c2" }),
            json!({ "owner": "acme", "after": "c4" }),
            json!({ "owner": "acme", "after": "c6" }),
        ]
    );

    // `edges[].node`, a custom variable name, and the page cap.
    let mock = MockUpstream::start().await;
    serve_issues(&mock);
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n",
        mock.url()
    ));
    let document = ISSUES
        .replace("nodes { number }", "edges { node { number } }")
        .replace("$after", "$cursor");
    let mut request = GraphqlRequest::new("/graphql", Document::new(&document));
    request.variables = variables(json!({ "owner": "acme" })).unwrap();
    let spec =
        connection("connection: {from: .data.repository.issues, variable: cursor}\nmax_pages: 2\n");
    let collected = connector
        .paginate_graphql(&request, fast(3), &spec, Vars::default())
        .collect()
        .await
        .unwrap();
    assert_eq!(collected.items, numbers[..4].to_vec());
    assert!(collected.truncated);
    assert!(collected.warning.is_some());
    let second = mock.requests()[1].json.clone().unwrap();
    assert_eq!(second["variables"]["cursor"], json!("c2"));
}

#[tokio::test]
async fn graphql_errors_on_a_later_page_name_the_page() {
    let mock = MockUpstream::start().await;
    mock.route(
        "POST",
        "/graphql",
        Reply::json(200, json!({ "errors": [{ "message": "cursor expired" }] })),
    );
    mock.script(
        "POST",
        "/graphql",
        [Reply::json(
            200,
            json!({ "data": { "list": {
                "pageInfo": { "hasNextPage": true, "endCursor": "c1" },
                "nodes": [1],
            } } }),
        )],
    );
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n",
        mock.url()
    ));
    let spec = connection("connection: {from: .data.list}\n");
    let request = GraphqlRequest::new("/graphql", Document::new("query { list { id } }"));
    let error = connector
        .paginate_graphql(&request, fast(3), &spec, Vars::default())
        .collect()
        .await
        .unwrap_err();
    assert_eq!(error.page, 2);
    assert!(error.to_string().contains("cursor expired"), "{error}");
}

#[tokio::test]
async fn a_connection_without_page_info_is_an_error() {
    let mock = MockUpstream::start().await;
    mock.route(
        "POST",
        "/graphql",
        Reply::json(200, json!({ "data": { "list": { "nodes": [1] } } })),
    );
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n",
        mock.url()
    ));
    let spec = connection("connection: {from: .data.list}\n");
    let request = GraphqlRequest::new("/graphql", Document::new("{ list { nodes } }"));
    let error = connector
        .paginate_graphql(&request, fast(3), &spec, Vars::default())
        .collect()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("pageInfo"), "{error}");
}
