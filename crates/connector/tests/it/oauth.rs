//! OAuth 2.0 auth against a real token endpoint (`patchbay_testkit::oauth`):
//! token caching, single-flight refresh under concurrency, one refresh and
//! one retry on 401, the expiry margin, refresh-token rotation through the
//! token store, token endpoint errors, and secrets kept out of every message.
//!
//! Tests that wait (for a slow token endpoint, or for a token to age) run on
//! paused time ([`step_paused_time`]). The token server's own expiry reads
//! the wall clock, which barely moves there: these tests check what the
//! connector does, and the server never rejects a token for its age.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use patchbay_connector::{
    CallClass, CallError, Connector, MemoryTokenStore, SharedAccess, TokenStore, TokenStoreError,
};
use patchbay_testkit::oauth::{self, ClientAuth, OAuthServer, TOKEN_PATH};
use patchbay_testkit::{MockUpstream, Reply};
use serde_json::json;
use tokio::task::JoinSet;

use crate::support::{build_with, call_err, closed_port, env, request, step_paused_time};

const CLIENT_ID: &str = "crm-client";
const CLIENT_SECRET: &str = "cs-SECRET-9f2c";

/// A token server and an API whose `GET /contacts` wants its tokens.
async fn setup() -> (OAuthServer, MockUpstream) {
    let server = oauth::start(CLIENT_ID, CLIENT_SECRET).await.unwrap();
    let api = MockUpstream::start().await;
    server.protect(
        &api,
        "GET",
        "/contacts",
        Reply::json(200, json!({"ok": true})),
    );
    server.protect(
        &api,
        "POST",
        "/contacts",
        Reply::json(201, json!({"id": 1})),
    );
    (server, api)
}

/// Connector `crm` with `oauth2` auth; `extra` holds more `oauth2` keys, each
/// line indented by four spaces.
fn connector(api: &MockUpstream, token_url: &str, extra: &str) -> Connector {
    build_with(
        &format!(
            "dangerous_allow_private: true\nurl: {}\nretry: {{ attempts: 1 }}\nauth:\n  oauth2:\n    token_url: \"{token_url}\"\n    \
             client_id: {CLIENT_ID}\n    client_secret: \"${{env:CRM_SECRET}}\"\n{extra}",
            api.url()
        ),
        &env(&[("CRM_SECRET", CLIENT_SECRET)]),
    )
}

/// The bearer tokens the API received, in order.
fn tokens_seen(api: &MockUpstream) -> Vec<String> {
    api.requests()
        .iter()
        .map(|r| r.header("authorization").unwrap_or_default().to_owned())
        .collect()
}

fn assert_hidden(text: &str, secret: &str) {
    assert!(!secret.is_empty());
    assert!(
        !text.contains(secret),
        "secret {secret:?} leaked in: {text}"
    );
}

#[tokio::test]
async fn a_token_is_fetched_once_and_reused() {
    let (server, api) = setup().await;
    let connector = connector(
        &api,
        &server.token_url(),
        "    scopes: [contacts.read, contacts.write]\n    audience: https://crm.example\n",
    );

    for _ in 0..3 {
        let response = connector.call(&request("GET", "/contacts")).await.unwrap();
        assert_eq!(response.body, json!({"ok": true}));
    }

    assert_eq!(server.token_requests(), 1);
    let log = server.token_log();
    assert_eq!(log[0].grant_type, "client_credentials");
    assert_eq!(log[0].client_auth, ClientAuth::Basic);
    assert_eq!(
        log[0].scope.as_deref(),
        Some("contacts.read contacts.write")
    );
    assert_eq!(log[0].audience.as_deref(), Some("https://crm.example"));
    let seen = tokens_seen(&api);
    assert_eq!(seen.len(), 3);
    assert!(seen[0].starts_with("Bearer at_"), "{seen:?}");
    assert!(seen.iter().all(|t| *t == seen[0]), "{seen:?}");
    assert_eq!(server.rejections(), 0);
}

#[tokio::test]
async fn client_credentials_can_travel_in_the_form_body() {
    let (server, api) = setup().await;
    let connector = connector(&api, &server.token_url(), "    client_auth: body\n");

    connector.call(&request("GET", "/contacts")).await.unwrap();

    assert_eq!(server.token_log()[0].client_auth, ClientAuth::Body);
    let form = server.mock().requests()[0].body_text().unwrap().to_owned();
    assert!(form.contains("client_id=crm-client"), "{form}");
    assert_eq!(server.mock().requests()[0].header("authorization"), None);
}

#[tokio::test(start_paused = true)]
async fn a_hundred_concurrent_calls_share_one_token_request() {
    step_paused_time();
    let (server, api) = setup().await;
    // A slow token endpoint, so every caller arrives while the first
    // request is still in flight.
    server.set_token_delay(Duration::from_millis(300));
    let connector = Arc::new(connector(&api, &server.token_url(), ""));

    let mut calls = JoinSet::new();
    for _ in 0..100 {
        let connector = Arc::clone(&connector);
        calls.spawn(async move { connector.call(&request("GET", "/contacts")).await });
    }
    let mut succeeded = 0;
    while let Some(result) = calls.join_next().await {
        result.unwrap().unwrap();
        succeeded += 1;
    }

    assert_eq!(succeeded, 100);
    assert_eq!(server.token_requests(), 1);
    assert_eq!(api.request_count(), 100);
    assert_eq!(server.rejections(), 0);
}

#[tokio::test]
async fn a_revoked_token_gets_one_refresh_and_the_call_succeeds() {
    let (server, api) = setup().await;
    let connector = connector(&api, &server.token_url(), "");
    connector.call(&request("GET", "/contacts")).await.unwrap();

    server.revoke_access_tokens();
    let response = connector.call(&request("GET", "/contacts")).await.unwrap();

    assert_eq!(response.status, 200);
    assert_eq!(server.token_requests(), 2);
    assert_eq!(server.rejections(), 1);
    let seen = tokens_seen(&api);
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0], seen[1], "the revoked token was sent once more");
    assert_ne!(seen[1], seen[2], "the retry carried the new token");

    // A POST is replayed as well: the 401 means nothing was done.
    server.revoke_access_tokens();
    let post = patchbay_connector::CallRequest {
        body: Some(json!({"name": "Ada"})),
        ..request("POST", "/contacts")
    };
    assert_eq!(connector.call(&post).await.unwrap().status, 201);
    let posts = api.requests_to("POST", "/contacts");
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0].body, posts[1].body);
    assert_eq!(server.token_requests(), 3);
}

#[tokio::test(start_paused = true)]
async fn concurrent_401s_lead_to_a_single_refresh() {
    step_paused_time();
    let (server, api) = setup().await;
    let connector = Arc::new(connector(&api, &server.token_url(), ""));
    connector.call(&request("GET", "/contacts")).await.unwrap();
    server.revoke_access_tokens();
    server.set_token_delay(Duration::from_millis(100));

    let mut calls = JoinSet::new();
    for _ in 0..30 {
        let connector = Arc::clone(&connector);
        calls.spawn(async move { connector.call(&request("GET", "/contacts")).await });
    }
    while let Some(result) = calls.join_next().await {
        result.unwrap().unwrap();
    }

    // Whoever found the rejected token already replaced took the new one.
    assert_eq!(server.token_requests(), 2);
    assert!(server.rejections() >= 1);
}

#[tokio::test]
async fn a_second_401_is_returned_as_the_error() {
    let (server, api) = setup().await;
    let connector = connector(&api, &server.token_url(), "");
    api.script(
        "GET",
        "/contacts",
        [
            Reply::json(401, json!({"error": "invalid_token"})),
            Reply::json(401, json!({"error": "invalid_token"})),
        ],
    );

    let error = call_err(&connector, &request("GET", "/contacts")).await;

    assert_eq!(error.status(), Some(401), "{error}");
    assert_eq!(error.class(), CallClass::ClientError);
    assert!(!error.is_transient());
    assert_eq!(api.request_count(), 2, "one call and one retry, no more");
    assert_eq!(
        server.token_requests(),
        2,
        "the first token and one refresh"
    );
    // The refreshed token is kept: the next call needs no new one.
    connector.call(&request("GET", "/contacts")).await.unwrap();
    assert_eq!(server.token_requests(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_token_about_to_expire_is_replaced_before_use() {
    step_paused_time();
    let (server, api) = setup().await;
    server.set_ttl(Duration::from_secs(2));
    let with_margin = connector(&api, &server.token_url(), "    refresh_margin: 1s\n");
    let without_margin = connector(&api, &server.token_url(), "    refresh_margin: 0s\n");
    with_margin
        .call(&request("GET", "/contacts"))
        .await
        .unwrap();
    without_margin
        .call(&request("GET", "/contacts"))
        .await
        .unwrap();
    assert_eq!(server.token_requests(), 2);

    // Past the margin, short of the expiry: only the first connector renews.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    with_margin
        .call(&request("GET", "/contacts"))
        .await
        .unwrap();
    assert_eq!(server.token_requests(), 3);
    without_margin
        .call(&request("GET", "/contacts"))
        .await
        .unwrap();
    assert_eq!(server.token_requests(), 3);

    // No call was refused: the renewal came before the old token died.
    assert_eq!(server.rejections(), 0);
    let seen = tokens_seen(&api);
    assert_ne!(seen[0], seen[2], "with a margin the token was replaced");
    assert_eq!(seen[1], seen[3], "without one it was still in use");
}

fn refresh_grant(api: &MockUpstream, server: &OAuthServer) -> Connector {
    connector(
        api,
        &server.token_url(),
        "    grant: refresh_token\n    refresh_token: rt-configured-SECRET\n",
    )
}

#[tokio::test]
async fn rotated_refresh_tokens_are_saved_and_used_by_the_next_connector() {
    let (server, api) = setup().await;
    server.add_refresh_token("rt-configured-SECRET");
    server.set_rotation(true);
    let store = Arc::new(MemoryTokenStore::new());

    let first = refresh_grant(&api, &server);
    first.set_token_store(store.clone());
    first.call(&request("GET", "/contacts")).await.unwrap();

    let rotated = store.get("crm").expect("the rotated token is saved");
    assert_ne!(rotated, "rt-configured-SECRET");
    assert_eq!(server.refresh_tokens(), std::slice::from_ref(&rotated));
    assert_eq!(
        server.token_log()[0].refresh_token.as_deref(),
        Some("rt-configured-SECRET")
    );
    assert_hidden(&format!("{store:?}"), &rotated);

    // A new connector (a restart) reads the saved token, not the configured
    // one, which the server no longer accepts.
    let second = refresh_grant(&api, &server);
    second.set_token_store(store.clone());
    second.call(&request("GET", "/contacts")).await.unwrap();
    assert_eq!(
        server.token_log()[1].refresh_token.as_deref(),
        Some(rotated.as_str())
    );
    assert_ne!(store.get("crm").as_deref(), Some(rotated.as_str()));

    // Without the store the configured token is all there is, and it is dead.
    let forgetful = refresh_grant(&api, &server);
    let error = call_err(&forgetful, &request("GET", "/contacts")).await;
    assert_eq!(error.class(), CallClass::Auth, "{error}");
    assert!(error.to_string().contains("invalid_grant"), "{error}");
    assert_hidden(&error.to_string(), "rt-configured-SECRET");
}

struct BrokenStore;

#[async_trait]
impl TokenStore for BrokenStore {
    async fn load(&self, _connector: &str) -> Result<Option<String>, TokenStoreError> {
        Err(TokenStoreError::new("database is locked"))
    }
    async fn save(&self, _connector: &str, _token: &str) -> Result<(), TokenStoreError> {
        Err(TokenStoreError::new("database is locked"))
    }
}

#[tokio::test]
async fn an_unreadable_store_fails_the_call_instead_of_using_a_stale_token() {
    let (server, api) = setup().await;
    server.add_refresh_token("rt-configured-SECRET");
    let connector = refresh_grant(&api, &server);
    connector.set_token_store(Arc::new(BrokenStore));

    let error = call_err(&connector, &request("GET", "/contacts")).await;

    assert_eq!(error.class(), CallClass::Auth, "{error}");
    assert!(error.to_string().contains("database is locked"), "{error}");
    assert!(error.is_transient());
    assert_eq!(server.token_requests(), 0);
    assert_eq!(api.request_count(), 0);
}

/// A token store several processes share, as a database several nodes
/// use: turns and the shared access token.
#[derive(Default)]
struct SharedStore {
    access: std::sync::Mutex<Option<SharedAccess>>,
    turn_taken: std::sync::Mutex<bool>,
}

#[async_trait]
impl TokenStore for SharedStore {
    async fn load(&self, _connector: &str) -> Result<Option<String>, TokenStoreError> {
        Ok(None)
    }
    async fn save(&self, _connector: &str, _token: &str) -> Result<(), TokenStoreError> {
        Ok(())
    }
    fn shared(&self) -> bool {
        true
    }
    async fn begin_refresh(
        &self,
        _connector: &str,
        _ttl: Duration,
    ) -> Result<bool, TokenStoreError> {
        let mut taken = self.turn_taken.lock().unwrap();
        Ok(!std::mem::replace(&mut *taken, true))
    }
    async fn end_refresh(&self, _connector: &str) {
        *self.turn_taken.lock().unwrap() = false;
    }
    async fn load_access(&self, _connector: &str) -> Result<Option<SharedAccess>, TokenStoreError> {
        Ok(self.access.lock().unwrap().clone())
    }
    async fn save_access(
        &self,
        _connector: &str,
        access: &SharedAccess,
    ) -> Result<(), TokenStoreError> {
        *self.access.lock().unwrap() = Some(access.clone());
        Ok(())
    }
}

/// Two connectors sharing a token store, as two nodes on one database: the
/// second takes the token the first fetched; after the server revokes it,
/// the first node refused fetches a new one and the other takes that one
/// instead of fetching its own.
#[tokio::test]
async fn connectors_sharing_a_store_share_one_access_token() {
    let (server, api) = setup().await;
    let store = Arc::new(SharedStore::default());
    let a = connector(&api, &server.token_url(), "");
    let b = connector(&api, &server.token_url(), "");
    a.set_token_store(store.clone());
    b.set_token_store(store.clone());

    a.call(&request("GET", "/contacts")).await.unwrap();
    b.call(&request("GET", "/contacts")).await.unwrap();
    assert_eq!(server.token_requests(), 1, "b took a's token");
    let seen = tokens_seen(&api);
    assert_eq!(seen[0], seen[1]);

    server.revoke_access_tokens();
    b.call(&request("GET", "/contacts")).await.unwrap();
    assert_eq!(
        server.token_requests(),
        2,
        "b's token was refused: b fetched one"
    );
    a.call(&request("GET", "/contacts")).await.unwrap();
    assert_eq!(
        server.token_requests(),
        2,
        "a's token was refused too: a took the one b fetched"
    );
    let seen = tokens_seen(&api);
    let last = seen.last().expect("calls were made");
    assert_ne!(seen[0], *last);
    assert_eq!(
        seen.iter().filter(|token| *token == last).count(),
        2,
        "b's new token carried b's call and a's: {seen:?}"
    );
    assert_hidden(&format!("{:?}", store.access.lock().unwrap()), last);
}

#[tokio::test]
async fn token_endpoint_failures_are_auth_errors() {
    let (server, api) = setup().await;

    // Wrong secret: the server's error code and description, never the secret.
    let wrong = build_with(
        &format!(
            "dangerous_allow_private: true\nurl: {}\nauth: {{ oauth2: {{ token_url: \"{}\", client_id: {CLIENT_ID}, \
             client_secret: wrong-SECRET-1 }} }}\n",
            api.url(),
            server.token_url()
        ),
        &env(&[]),
    );
    let error = call_err(&wrong, &request("GET", "/contacts")).await;
    assert_eq!(error.class(), CallClass::Auth, "{error}");
    assert!(!error.is_transient());
    let message = error.to_string();
    assert!(message.contains("invalid_client"), "{message}");
    assert!(message.contains("wrong secret"), "{message}");
    assert_hidden(&message, "wrong-SECRET-1");
    assert_hidden(&format!("{error:?}"), "wrong-SECRET-1");

    let connector = connector(&api, &server.token_url(), "");
    let token_path = TOKEN_PATH;
    // An OAuth error document that echoes the secret back.
    server.mock().script(
        "POST",
        token_path,
        [Reply::json(
            400,
            json!({"error": "invalid_scope", "error_description": format!("bad scope for {CLIENT_SECRET}")}),
        )],
    );
    let error = call_err(&connector, &request("GET", "/contacts")).await;
    assert!(error.to_string().contains("invalid_scope"), "{error}");
    assert_hidden(&error.to_string(), CLIENT_SECRET);

    // An outage page: transient, so the retry layer may try again.
    server.mock().script(
        "POST",
        token_path,
        [Reply::text(502, "text/html", "<h1>Bad gateway</h1>")],
    );
    let error = call_err(&connector, &request("GET", "/contacts")).await;
    assert_eq!(error.class(), CallClass::Auth, "{error}");
    assert!(error.is_transient());
    assert!(error.to_string().contains("502"), "{error}");

    // A 200 that is no token response; the body is not quoted.
    server.mock().script(
        "POST",
        token_path,
        [Reply::json(200, json!({"access_token": "at-LEAK-1"}))],
    );
    let error = call_err(&connector, &request("GET", "/contacts")).await;
    assert!(error.to_string().contains("token_type"), "{error}");
    assert_hidden(&error.to_string(), "at-LEAK-1");

    assert_eq!(api.request_count(), 0, "no call went out without a token");
    // The endpoint recovers and so does the connector.
    connector.call(&request("GET", "/contacts")).await.unwrap();

    // Unreachable token endpoint.
    let unreachable = connector_to_port(&api);
    let error = call_err(&unreachable, &request("GET", "/contacts")).await;
    assert_eq!(error.class(), CallClass::Auth, "{error}");
    assert!(error.is_transient());
    assert!(error.to_string().contains("cannot reach"), "{error}");
}

#[tokio::test]
async fn a_token_endpoint_answering_5xx_or_429_is_retried_like_any_upstream() {
    let (server, api) = setup().await;
    let connector = connector(&api, &server.token_url(), "");
    // An OAuth error document with a status that says "later": the status
    // decides, whatever the code says.
    for (status, code) in [
        (503, "server_error"),
        (500, "server_error"),
        (429, "slow_down"),
    ] {
        server.mock().script(
            "POST",
            TOKEN_PATH,
            [Reply::json(
                status,
                json!({"error": code, "error_description": format!("not now {CLIENT_SECRET}")}),
            )],
        );
        let error = call_err(&connector, &request("GET", "/contacts")).await;
        assert_eq!(error.class(), CallClass::Auth, "{error}");
        assert!(error.is_transient(), "{status}: {error}");
        let message = error.to_string();
        assert!(
            message.contains(&status.to_string()) && message.contains(code),
            "{message}"
        );
        assert_hidden(&message, CLIENT_SECRET);
    }
    // A refusal stays permanent, whatever else it says.
    server.mock().script(
        "POST",
        TOKEN_PATH,
        [Reply::json(400, json!({"error": "invalid_grant"}))],
    );
    let error = call_err(&connector, &request("GET", "/contacts")).await;
    assert!(!error.is_transient(), "{error}");

    // With retries, a token endpoint that fails twice with 503 and then
    // answers costs the call nothing but time: one call reaches the API.
    let retrying = build_with(
        &format!(
            "dangerous_allow_private: true\nurl: {}\nretry: {{ attempts: 3, backoff: {{ min: 10ms, max: 20ms }} }}\n\
             auth:\n  oauth2:\n    token_url: \"{}\"\n    client_id: {CLIENT_ID}\n    client_secret: \"${{env:CRM_SECRET}}\"\n",
            api.url(),
            server.token_url()
        ),
        &env(&[("CRM_SECRET", CLIENT_SECRET)]),
    );
    let before = server.token_requests();
    let calls = api.request_count();
    server.mock().script(
        "POST",
        TOKEN_PATH,
        [
            Reply::json(503, json!({"error": "server_error"})),
            Reply::json(503, json!({"error": "server_error"})),
        ],
    );
    let delivered = retrying
        .send(&request("GET", "/contacts"), retrying.retry_policy())
        .await
        .unwrap_or_else(|undelivered| panic!("{}", undelivered.error));
    assert_eq!(delivered.attempts, 3);
    assert_eq!(
        server.token_requests() - before,
        3,
        "two failures, then a token"
    );
    assert_eq!(api.request_count() - calls, 1, "one call upstream");
}

fn connector_to_port(api: &MockUpstream) -> Connector {
    connector(
        api,
        &format!("http://127.0.0.1:{}/oauth/token", closed_port()),
        "",
    )
}

#[tokio::test]
async fn secrets_and_tokens_never_show() {
    let (server, api) = setup().await;
    server.add_refresh_token("rt-configured-SECRET");
    server.set_rotation(true);
    let store = Arc::new(MemoryTokenStore::new());
    let connector = refresh_grant(&api, &server);
    connector.set_token_store(store.clone());
    connector.call(&request("GET", "/contacts")).await.unwrap();
    api.script("GET", "/contacts", [Reply::status(401), Reply::status(401)]);
    let error: CallError = call_err(&connector, &request("GET", "/contacts")).await;

    let access_tokens: Vec<String> = tokens_seen(&api)
        .iter()
        .map(|t| t.trim_start_matches("Bearer ").to_owned())
        .collect();
    let rotated = store.get("crm").unwrap();
    let texts = [
        format!("{connector:?}"),
        format!("{error}"),
        format!("{error:?}"),
        format!("{store:?}"),
        connector
            .summarize(&request("GET", "/contacts"))
            .to_string(),
    ];
    for text in &texts {
        assert_hidden(text, CLIENT_SECRET);
        assert_hidden(text, "rt-configured-SECRET");
        assert_hidden(text, &rotated);
        for token in &access_tokens {
            assert_hidden(text, token);
        }
    }
    assert!(texts[0].contains("token_url"), "{}", texts[0]);
}

#[test]
fn bad_oauth2_configurations_are_build_errors() {
    for (auth, expected) in [
        (
            "{ oauth2: { token_url: \"ftp://x/token\", client_id: a } }",
            "token_url",
        ),
        (
            "{ oauth2: { token_url: \"http://127.0.0.1:1/t\", client_id: a, client_secret: \"${env:NO_SUCH_SECRET}\" } }",
            "NO_SUCH_SECRET",
        ),
        (
            "{ oauth2: { token_url: \"http://127.0.0.1:1/t\", client_id: a, grant: password } }",
            "password",
        ),
    ] {
        let yaml =
            format!("dangerous_allow_private: true\nurl: http://127.0.0.1:1\nauth: {auth}\n");
        let result = serde_saphyr::from_str::<patchbay_config::ConnectorConfig>(&yaml)
            .map_err(|e| e.to_string())
            .and_then(|config| {
                Connector::build("crm", &config, &env(&[])).map_err(|e| e.to_string())
            });
        let message = result.expect_err(&yaml);
        assert!(message.contains(expected), "{yaml}: {message}");
    }
}
