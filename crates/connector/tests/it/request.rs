//! What reaches the upstream: method, path under the base URL's prefix,
//! encoded query, headers and JSON body; and what comes back in a `Response`.

use patchbay_connector::{CallClass, CallRequest};
use patchbay_testkit::{MockUpstream, Reply};
use serde_json::json;

use crate::support::{build, call_err, request};

#[tokio::test]
async fn get_keeps_the_base_path_encodes_the_query_and_sends_headers() {
    let mock = MockUpstream::start().await;
    mock.route(
        "GET",
        "/api/contacts",
        Reply::json(200, json!({"contacts": [{"id": 1}], "next": null}))
            .with_header("X-Request-Id", "req-1")
            .with_header("X-Multi", "a")
            .with_header("X-Multi", "b"),
    );
    // A trailing slash on the base URL must not double the separator.
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}/api/\nheaders:\n  X-Client: patchbay-tests\n",
        mock.url()
    ));
    let query = vec![
        (
            "updated since".to_string(),
            "2024-01-01T00:00:00+00:00".to_string(),
        ),
        ("tag".to_string(), "a&b=c".to_string()),
        ("tag".to_string(), "é".to_string()),
    ];
    let call = CallRequest {
        method: "GET".into(),
        path: "/contacts".into(),
        query: query.clone(),
        headers: vec![("X-Trace".into(), "t-1".into())],
        body: None,
        idempotency_key: None,
        rate_key: None,
        breaker_key: None,
    };

    let response = connector.call(&call).await.unwrap();

    let seen = mock.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let seen = &seen[0];
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.path, "/api/contacts");
    assert_eq!(seen.query_pairs, query, "raw query: {}", seen.query);
    // `&`, `=`, `+` and `:` inside values are escaped, not taken as syntax.
    assert!(seen.query.contains("tag=a%26b%3Dc"), "{}", seen.query);
    assert!(seen.query.contains("%2B00%3A00"), "{}", seen.query);
    assert_eq!(seen.header("x-client"), Some("patchbay-tests"));
    assert_eq!(seen.header("x-trace"), Some("t-1"));
    let agent = seen.header("user-agent").unwrap_or_default();
    assert!(agent.starts_with("patchbay/"), "{agent}");
    assert!(seen.body.is_empty());
    assert_eq!(seen.header("content-type"), None);

    assert_eq!(response.status, 200);
    assert_eq!(
        response.body,
        json!({"contacts": [{"id": 1}], "next": null})
    );
    assert_eq!(response.headers["x-request-id"], "req-1");
    assert_eq!(response.headers["x-multi"], "a, b");
    assert_eq!(response.headers["content-type"], "application/json");
    let names = response.headers.as_object().unwrap();
    assert!(
        names.keys().all(|k| *k == k.to_ascii_lowercase()),
        "{names:?}"
    );

    let headers = response.headers.clone();
    assert_eq!(
        response.into_value(),
        json!({
            "status": 200,
            "headers": headers,
            "body": {"contacts": [{"id": 1}], "next": null},
        })
    );
}

#[tokio::test]
async fn post_sends_a_json_body_with_its_content_type() {
    let mock = MockUpstream::start().await;
    mock.route(
        "POST",
        "/api/contacts",
        Reply::json(201, json!({"id": "c_9"})),
    );
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}/api\nheaders:\n  X-Client: patchbay-tests\n",
        mock.url()
    ));
    let body = json!({"name": "Ada Lovelace", "tags": ["math"], "score": 1.5, "vip": true});
    let call = CallRequest {
        method: "POST".into(),
        path: "/contacts".into(),
        query: Vec::new(),
        headers: vec![("Idempotency-Key".into(), "run-1/step-2".into())],
        body: Some(body.clone()),
        idempotency_key: None,
        rate_key: None,
        breaker_key: None,
    };

    let response = connector.call(&call).await.unwrap();

    let seen = mock.requests_to("POST", "/api/contacts");
    assert_eq!(seen.len(), 1, "{:?}", mock.requests());
    let seen = &seen[0];
    assert_eq!(seen.json.as_ref(), Some(&body), "{:?}", seen.body_text());
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(seen.header("idempotency-key"), Some("run-1/step-2"));
    assert_eq!(seen.header("x-client"), Some("patchbay-tests"));
    assert_eq!(seen.query, "");
    assert_eq!(response.status, 201);
    assert_eq!(response.body, json!({"id": "c_9"}));
}

#[tokio::test]
async fn request_headers_replace_defaults_and_the_credential_replaces_both() {
    let mock = MockUpstream::start().await;
    mock.route("GET", "/api/contacts", Reply::json(200, json!([])));
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}/api\nheaders:\n  X-Client: default\n  Accept: application/json\n\
         auth: {{ bearer: {{ token: configured }} }}\n",
        mock.url()
    ));
    let call = CallRequest {
        headers: vec![
            ("x-client".into(), "from-step".into()),
            ("X-Tag".into(), "one".into()),
            ("X-Tag".into(), "two".into()),
            ("Authorization".into(), "Bearer forged".into()),
        ],
        ..request("GET", "/contacts")
    };

    connector.call(&call).await.unwrap();

    let seen = &mock.requests()[0];
    let all = |name: &str| -> Vec<&str> {
        seen.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    };
    assert_eq!(all("x-client"), ["from-step"]);
    assert_eq!(all("accept"), ["application/json"]);
    assert_eq!(all("x-tag"), ["one", "two"]);
    assert_eq!(all("authorization"), ["Bearer configured"]);
}

#[tokio::test]
async fn a_path_without_leading_slash_is_refused_before_sending() {
    let mock = MockUpstream::start().await;
    // No base path: `.evil.example/x` would otherwise extend the host name.
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n",
        mock.url()
    ));

    for path in [".evil.example/x", "contacts", "@evil.example/x"] {
        let error = call_err(&connector, &request("GET", path)).await;
        assert_eq!(error.class(), CallClass::InvalidRequest, "{path}: {error}");
        assert!(error.to_string().contains("must start with `/`"), "{error}");
    }
    assert_eq!(mock.request_count(), 0);
}
