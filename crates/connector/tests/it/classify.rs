//! Failure classification: `CallError::class()`, `is_transient()` and
//! `status()` for each way a call can go wrong.

use std::time::{Duration, Instant};

use patchbay_connector::{CallClass, CallRequest};
use patchbay_testkit::{MockUpstream, Reply};
use serde_json::json;

use crate::support::{build, call_err, closed_port, raw_upstream, request};

#[tokio::test]
async fn statuses_are_classified_by_family_with_408_and_429_transient() {
    let mock = MockUpstream::start().await;
    let cases = [
        (404, CallClass::ClientError, false),
        (400, CallClass::ClientError, false),
        (408, CallClass::ClientError, true),
        (429, CallClass::ClientError, true),
        (500, CallClass::ServerError, true),
        (503, CallClass::ServerError, true),
    ];
    for (status, _, _) in cases {
        mock.route(
            "GET",
            &format!("/s{status}"),
            Reply::json(status, json!({"error": format!("e{status}")})),
        );
    }
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n",
        mock.url()
    ));

    for (status, class, transient) in cases {
        let error = call_err(&connector, &request("GET", &format!("/s{status}"))).await;
        assert_eq!(error.class(), class, "{status}: {error}");
        assert_eq!(error.is_transient(), transient, "{status}: {error}");
        assert_eq!(error.status(), Some(status));
        assert!(error.to_string().contains(&status.to_string()), "{error}");
    }
    assert_eq!(mock.request_count(), cases.len());
}

#[tokio::test]
async fn a_503_message_carries_the_body_excerpt() {
    let mock = MockUpstream::start().await;
    mock.route(
        "POST",
        "/orders",
        Reply::json(503, json!({"error": "maintenance window until 02:00"})),
    );
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n",
        mock.url()
    ));

    let error = call_err(&connector, &request("POST", "/orders")).await;

    assert_eq!(error.class(), CallClass::ServerError);
    assert!(error.is_transient());
    let message = error.to_string();
    assert!(message.contains("503"), "{message}");
    assert!(message.contains("POST /orders"), "{message}");
    assert!(
        message.contains("maintenance window until 02:00"),
        "{message}"
    );
}

#[tokio::test]
async fn a_large_error_page_stays_a_transient_server_error() {
    let mock = MockUpstream::start().await;
    let page = format!("<html>{}</html>", "overloaded ".repeat(1000));
    mock.route("GET", "/busy", Reply::text(503, "text/html", page));
    // The page is ten times the response limit; the status must still win.
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\nmax_response_bytes: 1024\n",
        mock.url()
    ));

    let error = call_err(&connector, &request("GET", "/busy")).await;

    assert_eq!(error.class(), CallClass::ServerError, "{error}");
    assert!(error.is_transient());
    let message = error.to_string();
    assert!(message.contains("<html>overloaded"), "{message}");
    assert!(message.ends_with('…'), "{message}");
    assert!(message.chars().count() < 500, "{message}");
}

#[tokio::test]
async fn a_reply_slower_than_the_timeout_is_a_timeout() {
    let mock = MockUpstream::start().await;
    mock.route(
        "GET",
        "/slow",
        Reply::json(200, json!({})).with_delay(Duration::from_secs(10)),
    );
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\ntimeout: 200ms\n",
        mock.url()
    ));
    let started = Instant::now();

    let error = call_err(&connector, &request("GET", "/slow")).await;

    let elapsed = started.elapsed();
    assert_eq!(error.class(), CallClass::Timeout, "{error}");
    assert!(error.is_transient());
    assert_eq!(error.status(), None);
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert!(error.to_string().contains("timed out"), "{error}");
    // The request did reach the upstream: the wait was for the reply.
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: http://127.0.0.1:{}\ntimeout: 5s\n",
        closed_port()
    ));

    let error = call_err(&connector, &request("GET", "/contacts")).await;

    assert_eq!(error.class(), CallClass::Connect, "{error}");
    assert!(error.is_transient());
    assert_eq!(error.status(), None);
    assert!(
        error.to_string().contains("cannot reach upstream"),
        "{error}"
    );
}

#[tokio::test]
async fn an_answer_that_breaks_off_or_is_not_http_is_a_broken_response() {
    // A 200 status line, then a chunk whose size line is not hexadecimal;
    // a body cut short of its announced length; bytes that are not HTTP.
    let broken_chunk = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                         transfer-encoding: chunked\r\n\r\n5\r\n{\"a\":\r\nzz\r\n"
        .to_vec();
    let cut_short = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                      content-length: 100\r\n\r\n{\"a\": 1"
        .to_vec();
    let random = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n".to_vec();
    for (response, status) in [
        (broken_chunk, Some(200)),
        (cut_short, Some(200)),
        (random, None),
    ] {
        let addr = raw_upstream(response).await;
        let connector = build(&format!(
            "dangerous_allow_private: true\nurl: http://{addr}\nretry: {{ attempts: 1 }}\n"
        ));

        let error = call_err(&connector, &request("GET", "/orders")).await;

        assert_eq!(error.class(), CallClass::BrokenResponse, "{error}");
        assert_eq!(error.class().as_str(), "broken_response");
        assert!(error.is_transient(), "{error}");
        assert_eq!(error.status(), status, "{error}");
        let message = error.to_string();
        assert!(
            message.contains("GET /orders: broken response"),
            "{message}"
        );
        assert!(!message.contains("cannot reach"), "{message}");
        if let Some(status) = status {
            assert!(
                message.contains(&format!("after status {status}")),
                "{message}"
            );
        }
    }
}

#[tokio::test]
async fn an_unsendable_request_is_invalid_and_never_sent() {
    let mock = MockUpstream::start().await;
    mock.route("*", "/contacts", Reply::json(200, json!({})));
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n",
        mock.url()
    ));
    let with_header = |name: &str, value: &str| CallRequest {
        headers: vec![(name.into(), value.into())],
        ..request("GET", "/contacts")
    };
    let cases = [
        (with_header("X-Note", "line\nbreak"), "invalid value"),
        (with_header("Bad Name", "x"), "not a valid header name"),
        (request("GE T", "/contacts"), "not an HTTP method"),
    ];

    for (call, expected) in cases {
        let error = call_err(&connector, &call).await;
        assert_eq!(error.class(), CallClass::InvalidRequest, "{error}");
        assert!(!error.is_transient());
        assert_eq!(error.status(), None);
        assert!(error.to_string().contains(expected), "{error}");
    }
    assert_eq!(mock.request_count(), 0);
}
