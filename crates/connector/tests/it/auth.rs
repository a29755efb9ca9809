//! Authentication schemes, `${env:...}` resolution, and that no credential
//! shows up in summaries, error messages or `Debug` output.

use std::collections::BTreeMap;
use std::time::Duration;

use patchbay_config::{Located, MapEnv};
use patchbay_connector::{BuildError, CallClass, CallRequest, Connector, Connectors};
use patchbay_testkit::{MockUpstream, Reply};
use serde_json::json;

use crate::support::{build, build_with, call_err, closed_port, config, env, request};

const QUERY_KEY: &str = "qk-7f3a9c-SECRET";

/// Fails with everything `text` came from when it contains `secret`.
fn assert_hidden(text: &str, secret: &str) {
    assert!(
        !text.contains(secret),
        "secret {secret:?} leaked in: {text}"
    );
}

#[tokio::test]
async fn api_key_in_a_header() {
    let mock = MockUpstream::start().await;
    mock.route("GET", "/contacts", Reply::json(200, json!({})));
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\nauth: {{ api_key: {{ header: X-Api-Key, value: k-123 }} }}\n",
        mock.url()
    ));

    connector.call(&request("GET", "/contacts")).await.unwrap();

    let seen = &mock.requests()[0];
    assert_eq!(seen.header("x-api-key"), Some("k-123"));
    assert_eq!(seen.query, "");
    assert_eq!(seen.header("authorization"), None);
}

fn query_key_connector(url: &str) -> Connector {
    build_with(
        &format!(
            "dangerous_allow_private: true\nurl: {url}/api\ntimeout: 200ms\n\
             auth: {{ api_key: {{ query: api_key, value: \"${{env:CRM_KEY}}\" }} }}\n"
        ),
        &env(&[("CRM_KEY", QUERY_KEY)]),
    )
}

#[tokio::test]
async fn api_key_in_the_query_is_sent_but_never_shown() {
    let mock = MockUpstream::start().await;
    mock.route(
        "GET",
        "/api/contacts",
        Reply::json(200, json!({"ok": true})),
    );
    mock.script(
        "GET",
        "/api/contacts",
        [Reply::json(500, json!({"error": "internal"}))],
    );
    let connector = query_key_connector(&mock.url());
    let call = CallRequest {
        query: vec![("page".into(), "2".into())],
        ..request("GET", "/contacts")
    };

    // The summary is what the journal keeps.
    let summary = connector.summarize(&call);
    assert_eq!(
        summary,
        json!({
            "connector": "crm",
            "method": "GET",
            "url": format!("{}/api/contacts", mock.url()),
            "query": {"page": "2"},
        })
    );
    assert_hidden(&summary.to_string(), QUERY_KEY);

    // First call: the scripted 500.
    let error = call_err(&connector, &call).await;
    assert_eq!(error.status(), Some(500));
    assert_hidden(&error.to_string(), QUERY_KEY);
    assert_hidden(&format!("{error:?}"), QUERY_KEY);

    // Second call: success, and the key did travel.
    connector.call(&call).await.unwrap();
    let seen = mock.requests();
    assert_eq!(seen.len(), 2);
    for seen in &seen {
        assert_eq!(seen.query_param("api_key"), Some(QUERY_KEY));
        assert_eq!(seen.query_param("page"), Some("2"));
    }

    // A reply slower than the timeout.
    mock.script(
        "GET",
        "/api/contacts",
        [Reply::json(200, json!({})).with_delay(Duration::from_secs(10))],
    );
    let error = call_err(&connector, &call).await;
    assert_eq!(error.class(), CallClass::Timeout, "{error}");
    assert_hidden(&error.to_string(), QUERY_KEY);
    assert_hidden(&format!("{error:?}"), QUERY_KEY);

    assert_hidden(&format!("{connector:?}"), QUERY_KEY);
}

#[tokio::test]
async fn api_key_in_the_query_is_not_in_connect_errors() {
    let connector = query_key_connector(&format!("http://127.0.0.1:{}", closed_port()));

    let error = call_err(&connector, &request("GET", "/contacts")).await;

    assert_eq!(error.class(), CallClass::Connect, "{error}");
    assert_hidden(&error.to_string(), QUERY_KEY);
    assert_hidden(&format!("{error:?}"), QUERY_KEY);
}

#[tokio::test]
async fn bearer_token() {
    let mock = MockUpstream::start().await;
    mock.route("GET", "/me", Reply::json(200, json!({})));
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\nauth: {{ bearer: {{ token: tok-abc.def }} }}\n",
        mock.url()
    ));

    connector.call(&request("GET", "/me")).await.unwrap();

    assert_eq!(
        mock.requests()[0].header("authorization"),
        Some("Bearer tok-abc.def")
    );
}

#[tokio::test]
async fn basic_auth_is_base64_of_user_colon_password() {
    let mock = MockUpstream::start().await;
    mock.route("GET", "/me", Reply::json(200, json!({})));
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\nauth: {{ basic: {{ username: Aladdin, password: open sesame }} }}\n",
        mock.url()
    ));

    connector.call(&request("GET", "/me")).await.unwrap();

    // The example of RFC 7617, section 2.
    assert_eq!(
        mock.requests()[0].header("authorization"),
        Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
    );
}

#[tokio::test]
async fn env_references_resolve_in_url_headers_and_auth() {
    let mock = MockUpstream::start().await;
    mock.route("GET", "/api/contacts", Reply::json(200, json!({})));
    let connector = build_with(
        "dangerous_allow_private: true\nurl: \"${env:CRM_BASE}/api\"\n\
         headers:\n  X-Tenant: \"tenant-${env:TENANT}\"\n\
         auth: { bearer: { token: \"${env:CRM_TOKEN}\" } }\n",
        &env(&[
            ("CRM_BASE", &mock.url()),
            ("TENANT", "42"),
            ("CRM_TOKEN", "env-token-1"),
        ]),
    );

    connector.call(&request("GET", "/contacts")).await.unwrap();

    let seen = mock.requests_to("GET", "/api/contacts");
    assert_eq!(seen.len(), 1, "{:?}", mock.requests());
    assert_eq!(seen[0].header("x-tenant"), Some("tenant-42"));
    assert_eq!(seen[0].header("authorization"), Some("Bearer env-token-1"));
}

#[tokio::test]
async fn a_pinned_api_version_is_sent_in_its_header_or_media_type_and_shown_in_health() {
    let mock = MockUpstream::start().await;
    mock.route("GET", "/contacts", Reply::json(200, json!({})));
    let in_header = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n\
         api_version: {{ value: '2024-06-20', header: Stripe-Version }}\n",
        mock.url()
    ));
    let in_media_type = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n\
         api_version: {{ value: '3', media_type: 'application/vnd.example.v{{version}}+json' }}\n",
        mock.url()
    ));
    in_header.call(&request("GET", "/contacts")).await.unwrap();
    in_media_type
        .call(&request("GET", "/contacts"))
        .await
        .unwrap();

    let seen = mock.requests_to("GET", "/contacts");
    assert_eq!(seen[0].header("stripe-version"), Some("2024-06-20"));
    assert_eq!(
        seen[1].header("accept"),
        Some("application/vnd.example.v3+json")
    );
    assert_eq!(
        in_header.health().api_version.as_deref(),
        Some("2024-06-20")
    );
}

#[test]
fn a_missing_variable_is_a_build_error_naming_it() {
    let cases = [
        (
            "dangerous_allow_private: true\nurl: \"${env:NO_URL_VAR}/api\"\n",
            "NO_URL_VAR",
        ),
        (
            "dangerous_allow_private: true\nurl: http://127.0.0.1:1\nheaders:\n  X-Tenant: \"${env:NO_HEADER_VAR}\"\n",
            "NO_HEADER_VAR",
        ),
        (
            "dangerous_allow_private: true\nurl: http://127.0.0.1:1\nauth: { bearer: { token: \"${env:NO_TOKEN_VAR}\" } }\n",
            "NO_TOKEN_VAR",
        ),
        (
            "dangerous_allow_private: true\nurl: http://127.0.0.1:1\nauth: { basic: { username: u, password: \"${env:NO_PW_VAR}\" } }\n",
            "NO_PW_VAR",
        ),
    ];
    for (yaml, name) in cases {
        let error = Connector::build("crm", &config(yaml), &MapEnv::default()).unwrap_err();
        assert!(
            matches!(&error, BuildError::Config { connector, .. } if connector == "crm"),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.contains(&format!("`{name}`")), "{message}");
        assert!(message.contains("crm"), "{message}");
    }
}

#[test]
fn bad_urls_and_credentials_are_build_errors_without_the_secret() {
    let secret_env = env(&[
        ("BROKEN_KEY", "line-one\nSECRET-line-two"),
        ("HOST", "SECRET-host name"),
    ]);
    let cases = [
        (
            "dangerous_allow_private: true\nurl: ftp://127.0.0.1/files\n",
            "http://",
        ),
        (
            "dangerous_allow_private: true\nurl: http://127.0.0.1:1/api?key=1\n",
            "query string",
        ),
        (
            "dangerous_allow_private: true\nurl: \"http://${env:HOST}/api\"\n",
            "${env:HOST}",
        ),
        (
            "dangerous_allow_private: true\nurl: http://127.0.0.1:1\nauth: { bearer: { token: \"${env:BROKEN_KEY}\" } }\n",
            "cannot be sent in an HTTP header",
        ),
        (
            "dangerous_allow_private: true\nurl: http://127.0.0.1:1\nauth: { api_key: { header: X-Key, value: \"${env:BROKEN_KEY}\" } }\n",
            "cannot be sent in an HTTP header",
        ),
    ];
    for (yaml, expected) in cases {
        let error = Connector::build("crm", &config(yaml), &secret_env).unwrap_err();
        let message = error.to_string();
        assert!(message.contains(expected), "{yaml}: {message}");
        assert_hidden(&message, "SECRET");
    }
}

#[tokio::test]
async fn debug_output_shows_no_secret() {
    let mock = MockUpstream::start().await;
    let vars = env(&[("HEADER_SECRET", "hdr-SECRET-1"), ("KEY", "key-SECRET-2")]);
    let header_key = format!(
        "dangerous_allow_private: true\nurl: {}\nheaders:\n  X-Signature: \"${{env:HEADER_SECRET}}\"\n\
         auth: {{ api_key: {{ header: X-Api-Key, value: \"${{env:KEY}}\" }} }}\n",
        mock.url()
    );
    let basic = format!(
        "dangerous_allow_private: true\nurl: {}\nauth: {{ basic: {{ username: svc, password: pw-SECRET-3 }} }}\n",
        mock.url()
    );
    let bearer = format!(
        "dangerous_allow_private: true\nurl: {}\nauth: {{ bearer: {{ token: tok-SECRET-4 }} }}\n",
        mock.url()
    );
    for yaml in [&header_key, &basic, &bearer] {
        let connector = build_with(yaml, &vars);
        let debug = format!("{connector:?}");
        assert!(debug.contains("crm"), "{debug}");
        assert_hidden(&debug, "SECRET");
        // Nor in its Basic encoding: base64("svc:pw-SECRET-3").
        assert_hidden(&debug, "c3ZjOnB3LVNFQ1JFVC0z");
    }

    let configs: BTreeMap<_, _> = [
        ("a".to_string(), Located::unlocated(config(&header_key))),
        ("b".to_string(), Located::unlocated(config(&basic))),
    ]
    .into_iter()
    .collect();
    let connectors = Connectors::build(&configs, &vars).unwrap();
    let debug = format!("{connectors:?}");
    assert!(
        debug.contains("X-Api-Key") || debug.contains("x-api-key"),
        "{debug}"
    );
    assert_hidden(&debug, "SECRET");
}

#[tokio::test]
async fn a_password_in_the_url_is_sent_as_basic_auth_but_masked() {
    let mock = MockUpstream::start().await;
    mock.route("GET", "/api/me", Reply::json(200, json!({})));
    let url = format!("http://svc:hunter2-pw@{}/api", mock.addr());
    let connector = build(&format!("dangerous_allow_private: true\nurl: {url}\n"));
    let call = request("GET", "/me");

    connector.call(&call).await.unwrap();

    assert_eq!(
        mock.requests()[0].header("authorization"),
        Some("Basic c3ZjOmh1bnRlcjItcHc=")
    );
    let summary = connector.summarize(&call).to_string();
    assert!(summary.contains("svc:****@"), "{summary}");
    assert_hidden(&summary, "hunter2");
    assert_hidden(&format!("{connector:?}"), "hunter2");
}
