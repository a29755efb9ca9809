//! Outbound network safety: inward addresses refused before a connection is
//! made (literal, resolved, IPv4-mapped, on redirect hops and at the token
//! endpoint), `dangerous_allow_private` CIDRs, and redirects: off by
//! default, never carrying a credential to another origin.

use std::sync::atomic::Ordering;

use patchbay_config::MapEnv;
use patchbay_connector::{CallClass, CallError, Connector, RetryPolicy};
use patchbay_testkit::{MockUpstream, Reply, counting_listener};
use serde_json::json;

use crate::support::{build, build_with, call_err, config, env, request};

/// Calls `connector` with its retries and insists on an address refusal.
async fn refused(connector: &Connector) -> CallError {
    let policy = RetryPolicy {
        attempts: 3,
        min: std::time::Duration::from_millis(1),
        max: std::time::Duration::from_millis(2),
    };
    let failed = connector
        .send(&request("GET", "/items"), policy)
        .await
        .expect_err("an inward address was reached");
    assert_eq!(failed.attempts, 1, "a refusal is not retried");
    let error = failed.error;
    assert_eq!(error.class(), CallClass::AddressRefused, "{error}");
    assert!(!error.is_transient(), "{error}");
    error
}

#[tokio::test]
async fn literal_loopback_is_refused_before_connecting() {
    let (addr, accepted) = counting_listener("127.0.0.1").await.unwrap();
    let connector = build(&format!("url: http://{addr}\n"));
    let error = refused(&connector).await;
    let message = error.to_string();
    for part in [
        "crm",
        "`127.0.0.1` is 127.0.0.1, a loopback address",
        "dangerous_allow_private: [127.0.0.1/32]",
    ] {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "a connection was made");
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused() {
    let (addr, accepted) = counting_listener("127.0.0.1").await.unwrap();
    let connector = build(&format!("url: http://localhost:{}\n", addr.port()));
    let message = refused(&connector).await.to_string();
    assert!(message.contains("`localhost` is "), "{message}");
    assert!(message.contains("a loopback address"), "{message}");
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "a connection was made");
}

#[tokio::test]
async fn the_ipv4_mapped_form_of_loopback_is_refused() {
    let (addr, accepted) = counting_listener("127.0.0.1").await.unwrap();
    for host in [
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "0.0.0.0",
        "2130706433",
    ] {
        let connector = build(&format!("url: http://{host}:{}\n", addr.port()));
        let message = refused(&connector).await.to_string();
        assert!(
            message.contains("dangerous_allow_private"),
            "{host}: {message}"
        );
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "a connection was made");
}

#[tokio::test]
async fn metadata_and_private_addresses_are_refused_without_a_packet() {
    // Nothing listens there; a connection attempt would time out or fail
    // as `connect_error`, not be refused.
    for (url, kind) in [
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://[fd00:ec2::254]/", "cloud metadata"),
        ("http://10.0.0.1/", "a private address"),
        ("http://100.64.0.1/", "carrier-grade NAT"),
    ] {
        let connector = build(&format!("url: {url}\ntimeout: 200ms\n"));
        let message = call_err(&connector, &request("GET", "/x"))
            .await
            .to_string();
        assert!(message.contains(kind), "{url}: {message}");
    }
}

#[tokio::test]
async fn cidr_opt_in_allows_exactly_its_range() {
    let mock = MockUpstream::start().await;
    mock.route("GET", "/items", Reply::json(200, json!({"ok": true})));
    let (other, accepted) = counting_listener("127.0.0.2").await.unwrap();
    let yaml =
        |addr: String| format!("dangerous_allow_private: [127.0.0.1/32]\nurl: http://{addr}\n");
    let allowed = build(&yaml(mock.addr().to_string()));
    let response = allowed.call(&request("GET", "/items")).await.unwrap();
    assert_eq!(response.body, json!({"ok": true}));

    let outside = build(&yaml(other.to_string()));
    let message = refused(&outside).await.to_string();
    assert!(message.contains("127.0.0.2"), "{message}");
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "a connection was made");

    let everything = build(&format!(
        "dangerous_allow_private: true\nurl: http://{}\n",
        mock.addr()
    ));
    everything.call(&request("GET", "/items")).await.unwrap();
}

#[tokio::test]
async fn a_refused_token_endpoint_is_never_contacted() {
    let api = MockUpstream::start().await;
    let (token, accepted) = counting_listener("127.0.0.2").await.unwrap();
    let connector = build_with(
        &format!(
            "dangerous_allow_private: [127.0.0.1/32]\nurl: {}\n\
             auth: {{ oauth2: {{ token_url: \"http://{token}/token\", client_id: c, \
             client_secret: \"${{env:SECRET}}\" }} }}\n",
            api.url()
        ),
        &env(&[("SECRET", "cs-never-sent")]),
    );
    let message = refused(&connector).await.to_string();
    assert!(message.contains("127.0.0.2"), "{message}");
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "the token endpoint was contacted"
    );
    assert_eq!(api.request_count(), 0);
}

/// An upstream that answers `status` redirecting to `location`.
async fn redirecting(status: u16, location: &str) -> MockUpstream {
    let mock = MockUpstream::start().await;
    for method in ["GET", "POST"] {
        mock.route(
            method,
            "/start",
            Reply::status(status).with_header("location", location),
        );
    }
    mock
}

#[tokio::test]
async fn redirects_are_not_followed_by_default() {
    let target = MockUpstream::start().await;
    target.route("GET", "/landing", Reply::json(200, json!({})));
    for status in [301, 302, 303, 307, 308] {
        let start = redirecting(status, &format!("{}/landing?k=1", target.url())).await;
        let connector = build(&format!(
            "dangerous_allow_private: true\nurl: {}\n\
             auth: {{ api_key: {{ header: X-Api-Key, value: k-123 }} }}\n",
            start.url()
        ));
        let error = call_err(&connector, &request("GET", "/start")).await;
        assert_eq!(error.class(), CallClass::RedirectRefused, "{error}");
        assert!(!error.is_transient());
        let message = error.to_string();
        assert!(
            message.contains(&format!("a redirect to {}:", target.url())),
            "{status}: the Location's origin is named: {message}"
        );
        assert!(message.contains("follows no redirects"), "{message}");
        assert!(
            !message.contains("k=1"),
            "only the origin is named: {message}"
        );
    }
    assert_eq!(target.request_count(), 0, "the redirect target was reached");
}

/// A connector with every kind of credential that can travel in headers:
/// an api key header, a header from `${env:...}` and a signature.
fn credentialed(start: &MockUpstream, redirects: &str) -> Connector {
    build_with(
        &format!(
            "dangerous_allow_private: true\nurl: {}\n{redirects}\n\
             headers:\n  X-Tenant-Secret: \"${{env:TENANT}}\"\n  Accept: application/json\n\
             auth: {{ api_key: {{ header: X-Api-Key, value: \"${{env:KEY}}\" }} }}\n\
             sign: {{ secret: \"${{env:SIGN}}\", header: X-Signature }}\n",
            start.url()
        ),
        &env(&[
            ("TENANT", "tenant-SECRET-1"),
            ("KEY", "key-SECRET-2"),
            ("SIGN", "sign-SECRET-3"),
        ]),
    )
}

#[tokio::test]
async fn a_cross_origin_redirect_carries_no_credential() {
    let target = MockUpstream::start().await;
    target.route(
        "POST",
        "/landing",
        Reply::json(200, json!({"landed": true})),
    );
    let start = redirecting(307, &format!("{}/landing", target.url())).await;
    // Another port on the same host is another origin.
    let connector = credentialed(&start, "redirects: { allow_hosts: [127.0.0.1] }");
    let mut call = request("POST", "/start");
    call.body = Some(json!({"amount": 5}));
    let response = connector.call(&call).await.unwrap();
    assert_eq!(response.body, json!({"landed": true}));

    let first = &start.requests()[0];
    for header in ["x-api-key", "x-tenant-secret", "x-signature"] {
        assert!(
            first.header(header).is_some(),
            "{header} missing at the origin"
        );
    }
    let hops = target.requests();
    assert_eq!(hops.len(), 1);
    let hop = &hops[0];
    assert_eq!(hop.method, "POST", "307 keeps the method");
    assert_eq!(hop.json, Some(json!({"amount": 5})), "307 keeps the body");
    for header in [
        "x-api-key",
        "x-tenant-secret",
        "x-signature",
        "authorization",
        "referer",
    ] {
        assert_eq!(hop.header(header), None, "{header} went to another origin");
    }
    assert_eq!(hop.header("accept"), Some("application/json"));
    let seen = format!("{:?}", hop.headers);
    for secret in ["SECRET-1", "SECRET-2", "SECRET-3"] {
        assert!(!seen.contains(secret), "{secret} in {seen}");
    }
}

#[tokio::test]
async fn a_query_key_never_follows_a_redirect_to_another_origin() {
    let target = MockUpstream::start().await;
    target.route("GET", "/landing", Reply::json(200, json!({})));
    // The upstream echoes the key back in the Location.
    let start = redirecting(
        302,
        &format!("{}/landing?api_key=key-SECRET-4&page=2", target.url()),
    )
    .await;
    let connector = build_with(
        &format!(
            "dangerous_allow_private: true\nurl: {}\n\
             redirects: {{ max: 2, allow_hosts: [\"127.0.0.1:{}\"] }}\n\
             auth: {{ api_key: {{ query: api_key, value: \"${{env:KEY}}\" }} }}\n",
            start.url(),
            target.addr().port()
        ),
        &env(&[("KEY", "key-SECRET-4")]),
    );
    connector.call(&request("GET", "/start")).await.unwrap();
    assert_eq!(
        start.requests()[0].query_param("api_key"),
        Some("key-SECRET-4")
    );
    let hop = &target.requests()[0];
    assert_eq!(hop.query_param("api_key"), None, "query: {}", hop.query);
    assert_eq!(hop.query_param("page"), Some("2"));
    assert_eq!(hop.header("referer"), None);
}

#[tokio::test]
async fn a_same_origin_redirect_keeps_credentials_and_is_signed_anew() {
    let upstream = MockUpstream::start().await;
    upstream.route(
        "GET",
        "/old",
        Reply::status(301).with_header("location", "/new"),
    );
    upstream.route("GET", "/new", Reply::json(200, json!({"moved": true})));
    let connector = credentialed(&upstream, "redirects: {}");
    let response = connector.call(&request("GET", "/old")).await.unwrap();
    assert_eq!(response.body, json!({"moved": true}));
    let requests = upstream.requests();
    assert_eq!(requests.len(), 2);
    let (old, new) = (&requests[0], &requests[1]);
    assert_eq!(new.path, "/new");
    assert_eq!(new.header("x-api-key"), Some("key-SECRET-2"));
    assert_eq!(new.header("x-tenant-secret"), Some("tenant-SECRET-1"));
    assert!(new.header("x-signature").is_some());
    assert_eq!(new.header("referer"), None);
    // The default payload is the body, empty for both GETs: same signature.
    assert_eq!(old.header("x-signature"), new.header("x-signature"));
}

#[tokio::test]
async fn redirects_to_unlisted_hosts_or_past_max_are_refused() {
    let target = MockUpstream::start().await;
    let start = redirecting(302, &format!("http://localhost:{}/x", target.addr().port())).await;
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\nredirects: {{ max: 3 }}\n",
        start.url()
    ));
    let message = call_err(&connector, &request("GET", "/start"))
        .await
        .to_string();
    assert!(
        message.contains(&format!(
            "a redirect to http://localhost:{}",
            target.addr().port()
        )),
        "{message}"
    );
    assert!(message.contains("allow_hosts"), "{message}");

    let looping = MockUpstream::start().await;
    looping.route(
        "GET",
        "/loop",
        Reply::status(302).with_header("location", "/loop"),
    );
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\nredirects: {{ max: 3 }}\n",
        looping.url()
    ));
    let error = call_err(&connector, &request("GET", "/loop")).await;
    assert!(
        error.to_string().contains("more than 3 redirects"),
        "{error}"
    );
    assert_eq!(
        looping.request_count(),
        4,
        "the first request and three hops"
    );
    assert_eq!(target.request_count(), 0);
}

#[tokio::test]
async fn every_redirect_hop_passes_the_address_filter() {
    let (inward, accepted) = counting_listener("127.0.0.2").await.unwrap();
    let start = redirecting(302, &format!("http://{inward}/x")).await;
    let connector = build(&format!(
        "dangerous_allow_private: [127.0.0.1/32]\nurl: {}\n\
         redirects: {{ allow_hosts: [127.0.0.2] }}\n",
        start.url()
    ));
    let error = call_err(&connector, &request("GET", "/start")).await;
    assert_eq!(error.class(), CallClass::AddressRefused, "{error}");
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "a connection was made");
}

#[test]
fn unusable_network_settings_do_not_build() {
    for (yaml, expected) in [
        (
            "url: http://api.test\ndangerous_allow_private: [10.0.0.0/33]\n",
            "`10.0.0.0/33` is not a CIDR block",
        ),
        (
            "url: https://api.test\ntls: { ca: /nonexistent/ca.pem }\n",
            "/nonexistent/ca.pem",
        ),
        (
            "url: https://api.test\ntls: { client_cert: /nonexistent/c.pem }\n",
            "`client_cert` and `client_key` go together",
        ),
    ] {
        let error = Connector::build("crm", &config(yaml), &MapEnv::default()).unwrap_err();
        assert!(error.to_string().contains(expected), "{yaml}: {error}");
    }
}
