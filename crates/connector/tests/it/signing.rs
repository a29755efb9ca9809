//! Outbound HMAC signatures, checked by the upstream on the bytes it received.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use patchbay_connector::CallRequest;
use patchbay_testkit::{MockUpstream, RecordedRequest, Reply};
use serde_json::json;
use sha2::{Sha256, Sha512};

use crate::support::{build_with, env, request};

const SECRET: &str = "whsec_test_123";

fn hmac_sha256(key: &str, payload: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(payload);
    mac.finalize().into_bytes().to_vec()
}

fn hmac_sha512(key: &str, payload: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha512>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(payload);
    mac.finalize().into_bytes().to_vec()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn the_body_sent_is_the_body_signed() {
    let mock = MockUpstream::start().await;
    mock.route("*", "/charges", Reply::json(200, json!({})));
    let connector = build_with(
        &format!(
            "dangerous_allow_private: true\nurl: {}\nsign: {{ secret: \"${{env:SIGN_SECRET}}\", prefix: \"sha256=\" }}\n",
            mock.url()
        ),
        &env(&[("SIGN_SECRET", SECRET)]),
    );
    let call = CallRequest {
        body: Some(json!({"currency": "eur", "amount": 100})),
        ..request("POST", "/charges")
    };

    connector.call(&call).await.unwrap();
    connector.call(&request("GET", "/charges")).await.unwrap();

    // Expected values computed with Python's hmac module:
    //   hmac.new(b"whsec_test_123", body, hashlib.sha256).hexdigest()
    let seen = mock.requests();
    assert_eq!(
        seen[0].body_text(),
        Some(r#"{"amount":100,"currency":"eur"}"#)
    );
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    assert_eq!(
        seen[0].header("x-signature"),
        Some("sha256=4c43556aeb7e59840fa7c975ba0facf3ac9430b99091c07e6c4b5a96e997e0e9")
    );
    // No body: the signature of the empty payload.
    assert_eq!(seen[1].body_text(), Some(""));
    assert_eq!(
        seen[1].header("x-signature"),
        Some("sha256=865b2a1ebf594ed45c0a57267d3f29afe5190549c0a534449d5635dc55925932")
    );
    assert_eq!(seen[0].header("x-timestamp"), None);
    assert!(!format!("{connector:?}").contains(SECRET));
}

/// What an upstream checking `{timestamp}.{body}` SHA-512 base64 signatures
/// answers: 200 when it verifies, 401 otherwise.
fn verify_timestamped(req: &RecordedRequest) -> Reply {
    let (Some(timestamp), Some(signature)) = (req.header("x-timestamp"), req.header("x-sig"))
    else {
        return Reply::json(401, json!({"error": "unsigned"}));
    };
    let fresh = timestamp
        .parse::<u64>()
        .is_ok_and(|ts| ts.abs_diff(unix_now()) <= 5);
    let mut payload = format!("{timestamp}.").into_bytes();
    payload.extend_from_slice(&req.body);
    let expected = base64::engine::general_purpose::STANDARD.encode(hmac_sha512(SECRET, &payload));
    if fresh && signature == expected {
        Reply::json(200, json!({"verified": true}))
    } else {
        Reply::json(401, json!({"error": "bad signature"}))
    }
}

#[tokio::test]
async fn a_timestamped_signature_verifies_upstream() {
    let mock = MockUpstream::start().await;
    mock.route_fn("POST", "/orders", verify_timestamped);
    let yaml = |secret: &str| {
        format!(
            "dangerous_allow_private: true\nurl: {}\nsign:\n  secret: {secret}\n  algorithm: sha512\n  header: X-Sig\n  \
             encoding: base64\n  timestamp_header: X-Timestamp\n",
            mock.url()
        )
    };
    let connector = build_with(&yaml(SECRET), &env(&[]));
    let call = CallRequest {
        body: Some(json!({"order": {"id": "o-1", "lines": [1, 2.5, "three"]}, "note": "naïve ✓"})),
        // A step cannot forge the signature: the connector's replaces it.
        headers: vec![("X-Sig".into(), "forged".into())],
        ..request("POST", "/orders")
    };

    let response = connector.call(&call).await.unwrap();
    assert_eq!(response.body, json!({"verified": true}));
    let seen = &mock.requests()[0];
    assert_eq!(seen.headers.get_all("x-sig").iter().count(), 1);
    assert_eq!(seen.json.as_ref(), call.body.as_ref());

    // The check can fail: a different key is refused.
    let wrong = build_with(&yaml("not-the-secret"), &env(&[]));
    let error = wrong.call(&call).await.unwrap_err();
    assert_eq!(error.status(), Some(401), "{error}");
}

#[tokio::test]
async fn a_custom_payload_covers_method_path_and_query() {
    let mock = MockUpstream::start().await;
    mock.route_fn("PUT", "/api/items/{id}", |req| {
        let timestamp = req.header("x-ts").unwrap_or_default();
        let payload = format!(
            "{}\n{}\n{}\n{timestamp}\n{}",
            req.method,
            req.path,
            req.query,
            req.body_text().unwrap_or_default()
        );
        let expected = hex::encode(hmac_sha256(SECRET, payload.as_bytes()));
        if req.header("x-signature") == Some(expected.as_str()) {
            Reply::json(200, json!({"payload": payload}))
        } else {
            Reply::json(401, json!({"error": "bad signature"}))
        }
    });
    let connector = build_with(
        &format!(
            "dangerous_allow_private: true\nurl: {}/api\n\
             auth: {{ api_key: {{ query: key, value: k-1 }} }}\n\
             sign:\n  secret: {SECRET}\n  timestamp_header: X-Ts\n  \
             payload: \"{{method}}\\n{{path}}\\n{{query}}\\n{{timestamp}}\\n{{body}}\"\n",
            mock.url()
        ),
        &env(&[]),
    );
    let call = CallRequest {
        query: vec![("q".into(), "a b&c".into())],
        body: Some(json!([1, 2])),
        ..request("PUT", "/items/7")
    };

    let response = connector.call(&call).await.unwrap();

    let payload = response.body["payload"].as_str().unwrap().to_owned();
    let lines: Vec<&str> = payload.split('\n').collect();
    assert_eq!(lines[..3], ["PUT", "/api/items/7", "q=a+b%26c&key=k-1"]);
    assert_eq!(lines[4], "[1,2]");
}
