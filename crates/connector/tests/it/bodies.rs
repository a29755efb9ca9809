//! Unusable 2xx bodies: not JSON, empty, or over `max_response_bytes`
//! (announced by `Content-Length` or only discovered while streaming).

use patchbay_connector::{CallClass, CallError};
use patchbay_testkit::{MockUpstream, Reply};
use serde_json::{Value, json};

use crate::support::{build, call_err, chunked_json_response, raw_upstream, request};

const LIMIT: usize = 1024;

/// A JSON string document of exactly `len` bytes.
fn json_of_len(len: usize) -> Vec<u8> {
    format!("\"{}\"", "x".repeat(len - 2)).into_bytes()
}

fn assert_invalid_response(error: &CallError, expected: &str) {
    assert_eq!(error.class(), CallClass::InvalidResponse, "{error}");
    assert!(!error.is_transient(), "{error}");
    assert_eq!(error.status(), Some(200), "{error}");
    assert!(error.to_string().contains(expected), "{error}");
}

#[tokio::test]
async fn html_is_not_json() {
    let mock = MockUpstream::start().await;
    mock.route(
        "GET",
        "/page",
        Reply::text(
            200,
            "text/html; charset=utf-8",
            "<html><body>Login</body></html>",
        ),
    );
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n",
        mock.url()
    ));

    let error = call_err(&connector, &request("GET", "/page")).await;

    assert_invalid_response(&error, "not JSON");
    let message = error.to_string();
    assert!(message.contains("text/html"), "{message}");
    assert!(message.contains("<html><body>Login"), "{message}");
}

#[tokio::test]
async fn an_empty_200_is_refused_but_a_204_is_null() {
    let mock = MockUpstream::start().await;
    mock.route("GET", "/empty", Reply::status(200));
    mock.route("DELETE", "/contacts/1", Reply::status(204));
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n",
        mock.url()
    ));

    let error = call_err(&connector, &request("GET", "/empty")).await;
    assert_invalid_response(&error, "empty");

    let response = connector
        .call(&request("DELETE", "/contacts/1"))
        .await
        .unwrap();
    assert_eq!(response.status, 204);
    assert_eq!(response.body, Value::Null);
}

#[tokio::test]
async fn a_body_over_the_limit_with_content_length_is_refused() {
    let mock = MockUpstream::start().await;
    mock.route(
        "GET",
        "/big",
        Reply::bytes(200, "application/json", json_of_len(10 * 1024)),
    );
    mock.route(
        "GET",
        "/at-limit",
        Reply::bytes(200, "application/json", json_of_len(LIMIT)),
    );
    mock.route(
        "GET",
        "/over-by-one",
        Reply::bytes(200, "application/json", json_of_len(LIMIT + 1)),
    );
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\nmax_response_bytes: {LIMIT}\n",
        mock.url()
    ));

    let error = call_err(&connector, &request("GET", "/big")).await;
    assert_invalid_response(&error, "limit of 1024 bytes");
    let error = call_err(&connector, &request("GET", "/over-by-one")).await;
    assert_invalid_response(&error, "limit of 1024 bytes");

    let response = connector.call(&request("GET", "/at-limit")).await.unwrap();
    assert_eq!(response.body.as_str().map(str::len), Some(LIMIT - 2));
}

#[tokio::test]
async fn an_announced_length_over_the_limit_is_refused_before_downloading() {
    // The header promises 10 KiB but only a few bytes follow before the
    // connection closes: only a refusal on the announced length can produce
    // the size error here.
    let mut response = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                         content-length: 10240\r\nconnection: close\r\n\r\n"
        .to_vec();
    response.extend_from_slice(b"\"xxxx");
    let addr = raw_upstream(response).await;
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: http://{addr}\nmax_response_bytes: {LIMIT}\n"
    ));

    let error = call_err(&connector, &request("GET", "/export")).await;

    assert_invalid_response(&error, "limit of 1024 bytes");
}

#[tokio::test]
async fn a_streamed_body_over_the_limit_is_refused() {
    // Chunked, so no Content-Length announces the size up front.
    let big = raw_upstream(chunked_json_response(&json_of_len(10 * 1024))).await;
    let small = raw_upstream(chunked_json_response(&json_of_len(LIMIT))).await;
    let yaml = |addr| {
        format!("dangerous_allow_private: true\nurl: http://{addr}\nmax_response_bytes: {LIMIT}\n")
    };

    let error = call_err(&build(&yaml(big)), &request("GET", "/export")).await;
    assert_invalid_response(&error, "limit of 1024 bytes");

    let response = build(&yaml(small))
        .call(&request("GET", "/export"))
        .await
        .unwrap();
    assert_eq!(response.body.as_str().map(str::len), Some(LIMIT - 2));
}

#[tokio::test]
async fn head_ignores_the_announced_length() {
    let mock = MockUpstream::start().await;
    // The server announces the GET body's length but sends no body to HEAD.
    mock.route(
        "HEAD",
        "/big",
        Reply::bytes(200, "application/json", json_of_len(10 * 1024)),
    );
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\nmax_response_bytes: {LIMIT}\n",
        mock.url()
    ));

    let response = connector.call(&request("HEAD", "/big")).await.unwrap();

    assert_eq!(response.status, 200);
    assert_eq!(response.body, json!(null));
    assert_eq!(response.headers["content-length"], "10240");
}
