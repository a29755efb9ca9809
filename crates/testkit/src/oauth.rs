//! An OAuth 2.0 authorization server (RFC 6749) for tests and the demo.
//!
//! [`OAuthServer`] is a [`MockUpstream`] with two routes:
//!
//! - `POST /oauth/token` ([`TOKEN_PATH`]): the `client_credentials` and
//!   `refresh_token` grants. The client authenticates with HTTP Basic (id and
//!   secret form-URL-encoded first, RFC 6749 §2.3.1) or with `client_id` and
//!   `client_secret` form fields, never both. Access tokens are bearer tokens
//!   living [`OAuthServer::set_ttl`] (default 1 hour; `expires_in` is the
//!   whole seconds of it). With [rotation](OAuthServer::set_rotation) each
//!   refresh answers with a new refresh token and retires the one presented.
//!   Errors are RFC 6749 §5.2 documents (`invalid_client` with 401,
//!   `invalid_grant`, `unsupported_grant_type`, `invalid_request` with 400).
//! - `GET /resource` ([`RESOURCE_PATH`]): a protected resource answering 200
//!   `{"ok": true}` to a valid bearer token and 401 otherwise.
//!
//! Other mocks can protect their own routes with the same tokens through a
//! [`TokenValidator`] (see [`OAuthServer::protect`]). Tests can revoke or
//! expire every token issued so far to provoke a 401, slow the token endpoint
//! down to make callers pile up, script token endpoint failures through
//! [`OAuthServer::mock`], and count token requests.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::json;

use crate::sync::lock;
use crate::{MockUpstream, RecordedRequest, Reply, TestkitError};

/// Path of the token endpoint.
pub const TOKEN_PATH: &str = "/oauth/token";
/// Path of the protected resource.
pub const RESOURCE_PATH: &str = "/resource";
/// The client id the demo's authorization server accepts.
pub const OAUTH_CLIENT_ID: &str = "patchbay-demo";
/// The client secret the demo's authorization server accepts.
pub const OAUTH_CLIENT_SECRET: &str = "cs_test_patchbay_demo";

const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// A running authorization server.
#[derive(Debug)]
pub struct OAuthServer {
    mock: MockUpstream,
    state: Arc<Mutex<State>>,
}

/// How a client authenticated a token request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic (`client_secret_basic`).
    Basic,
    /// `client_id` / `client_secret` form fields (`client_secret_post`).
    Body,
    /// Neither.
    None,
}

/// One token request as the server saw it (secrets left out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    pub grant_type: String,
    pub client_auth: ClientAuth,
    pub scope: Option<String>,
    pub audience: Option<String>,
    /// The refresh token presented, for the `refresh_token` grant.
    pub refresh_token: Option<String>,
    /// The status answered.
    pub status: u16,
    /// When the request arrived.
    pub received: std::time::Instant,
}

struct State {
    client_id: String,
    client_secret: String,
    ttl: Duration,
    rotate: bool,
    delay: Duration,
    /// Access token -> when it stops being valid.
    access: HashMap<String, Instant>,
    /// Refresh tokens currently accepted.
    refresh: Vec<String>,
    log: Vec<TokenRequest>,
    rejections: usize,
    /// Access tokens issued.
    issued: u64,
    /// Numbers every token, access or refresh, so none repeats.
    serial: u64,
    /// Makes tokens of different servers (and runs) differ.
    nonce: u32,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("client_id", &self.client_id)
            .field("ttl", &self.ttl)
            .field("rotate", &self.rotate)
            .field("tokens_issued", &self.issued)
            .finish_non_exhaustive()
    }
}

/// Starts a server accepting `client_id` / `client_secret` on an ephemeral
/// port of `127.0.0.1`.
pub async fn start(client_id: &str, client_secret: &str) -> Result<OAuthServer, TestkitError> {
    start_on(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        client_id,
        client_secret,
    )
    .await
}

/// Starts a server on `addr`.
pub async fn start_on(
    addr: SocketAddr,
    client_id: &str,
    client_secret: &str,
) -> Result<OAuthServer, TestkitError> {
    let mock = MockUpstream::start_on(addr).await?;
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let state = Arc::new(Mutex::new(State {
        client_id: client_id.to_owned(),
        client_secret: client_secret.to_owned(),
        ttl: DEFAULT_TTL,
        rotate: false,
        delay: Duration::ZERO,
        access: HashMap::new(),
        refresh: Vec::new(),
        log: Vec::new(),
        rejections: 0,
        issued: 0,
        serial: 0,
        nonce,
    }));
    let token_state = Arc::clone(&state);
    mock.route_fn("POST", TOKEN_PATH, move |req| {
        let mut state = lock(&token_state);
        let reply = token(&mut state, req);
        reply.with_delay(state.delay)
    });
    let validator = TokenValidator {
        state: Arc::clone(&state),
    };
    mock.route_fn("GET", RESOURCE_PATH, move |req| {
        validator
            .authorize(req)
            .unwrap_or_else(|| Reply::json(200, json!({ "ok": true })))
    });
    Ok(OAuthServer { mock, state })
}

impl OAuthServer {
    /// Base URL of the server.
    pub fn url(&self) -> String {
        self.mock.url()
    }

    /// URL of the token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.mock.url())
    }

    /// The underlying mock: recorded requests, scripted replies (a scripted
    /// reply on [`TOKEN_PATH`] is answered instead of issuing a token).
    pub fn mock(&self) -> &MockUpstream {
        &self.mock
    }

    /// Lifetime of tokens issued from now on.
    pub fn set_ttl(&self, ttl: Duration) {
        lock(&self.state).ttl = ttl;
    }

    /// Whether each refresh rotates the refresh token.
    pub fn set_rotation(&self, rotate: bool) {
        lock(&self.state).rotate = rotate;
    }

    /// How long the token endpoint takes to answer.
    pub fn set_token_delay(&self, delay: Duration) {
        lock(&self.state).delay = delay;
    }

    /// Makes `refresh_token` valid, as if issued to the client earlier.
    pub fn add_refresh_token(&self, refresh_token: &str) {
        lock(&self.state).refresh.push(refresh_token.to_owned());
    }

    /// The refresh tokens currently accepted.
    pub fn refresh_tokens(&self) -> Vec<String> {
        lock(&self.state).refresh.clone()
    }

    /// Makes every access token issued so far invalid (a 401 from now on).
    pub fn revoke_access_tokens(&self) {
        lock(&self.state).access.clear();
    }

    /// Ends the life of every access token issued so far, as if their time
    /// had run out (the client's own clock still thinks them valid).
    pub fn expire_access_tokens(&self) {
        let now = Instant::now();
        for expires in lock(&self.state).access.values_mut() {
            *expires = now;
        }
    }

    /// Number of requests to the token endpoint so far.
    pub fn token_requests(&self) -> usize {
        self.mock.requests_to("POST", TOKEN_PATH).len()
    }

    /// The token requests answered by the server itself (not scripted), in order.
    pub fn token_log(&self) -> Vec<TokenRequest> {
        lock(&self.state).log.clone()
    }

    /// Access tokens issued so far, still valid or not.
    pub fn tokens_issued(&self) -> u64 {
        lock(&self.state).issued
    }

    /// Requests refused with 401 for their bearer token, here or on
    /// [protected](OAuthServer::protect) routes.
    pub fn rejections(&self) -> usize {
        lock(&self.state).rejections
    }

    /// Checks bearer tokens issued by this server, from any mock's routes.
    pub fn validator(&self) -> TokenValidator {
        TokenValidator {
            state: Arc::clone(&self.state),
        }
    }

    /// Makes `method pattern` on `mock` answer `reply` to requests with a
    /// valid bearer token of this server, and 401 to the others.
    pub fn protect(&self, mock: &MockUpstream, method: &str, pattern: &str, reply: Reply) {
        let validator = self.validator();
        mock.route_fn(method, pattern, move |req| {
            validator.authorize(req).unwrap_or_else(|| reply.clone())
        });
    }

    /// Stops the server.
    pub async fn shutdown(self) {
        self.mock.shutdown().await;
    }
}

/// Validates bearer tokens of one [`OAuthServer`]; cheap to clone into
/// route closures.
#[derive(Clone, Debug)]
pub struct TokenValidator {
    state: Arc<Mutex<State>>,
}

impl TokenValidator {
    /// Whether `access_token` was issued here and is neither revoked nor expired.
    pub fn is_valid(&self, access_token: &str) -> bool {
        lock(&self.state)
            .access
            .get(access_token)
            .is_some_and(|expires| Instant::now() < *expires)
    }

    /// `None` when the request carries a valid bearer token, else the 401 to
    /// answer (RFC 6750 §3, `error="invalid_token"`).
    pub fn authorize(&self, req: &RecordedRequest) -> Option<Reply> {
        let token = req
            .header("authorization")
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        if token.is_some_and(|token| self.is_valid(token)) {
            return None;
        }
        lock(&self.state).rejections += 1;
        Some(
            Reply::json(401, json!({ "error": "invalid_token" })).with_header(
                "www-authenticate",
                "Bearer error=\"invalid_token\", error_description=\"the access token is invalid or expired\"",
            ),
        )
    }
}

/// Answers one token request.
fn token(state: &mut State, req: &RecordedRequest) -> Reply {
    let form: HashMap<String, String> = form_urlencoded::parse(&req.body).into_owned().collect();
    let field = |name: &str| form.get(name).cloned();
    let mut record = TokenRequest {
        grant_type: field("grant_type").unwrap_or_default(),
        client_auth: ClientAuth::None,
        scope: field("scope"),
        audience: field("audience"),
        refresh_token: field("refresh_token"),
        status: 200,
        received: std::time::Instant::now(),
    };
    let reply = issue(state, req, &form, &mut record);
    record.status = reply.status;
    state.log.push(record);
    reply.with_header("cache-control", "no-store")
}

fn issue(
    state: &mut State,
    req: &RecordedRequest,
    form: &HashMap<String, String>,
    record: &mut TokenRequest,
) -> Reply {
    let is_form = req
        .header("content-type")
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return oauth_error(400, "invalid_request", "the body must be form-encoded");
    }
    let basic = req
        .header("authorization")
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, credential)| decode_basic(credential.trim()));
    let in_body = (form.get("client_id"), form.get("client_secret"));
    let (id, secret) = match (basic, in_body) {
        (Some(_), (Some(_), _) | (_, Some(_))) => {
            return oauth_error(
                400,
                "invalid_request",
                "use one client authentication method, not two",
            );
        }
        (Some(Some(pair)), _) => {
            record.client_auth = ClientAuth::Basic;
            pair
        }
        (Some(None), _) => return invalid_client("malformed basic credentials"),
        (None, (Some(id), secret)) => {
            record.client_auth = ClientAuth::Body;
            (id.clone(), secret.cloned().unwrap_or_default())
        }
        (None, (None, _)) => return invalid_client("client authentication is required"),
    };
    if id != state.client_id || secret != state.client_secret {
        return invalid_client("unknown client or wrong secret");
    }
    let rotated = match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => None,
        Some("refresh_token") => {
            let Some(presented) = form.get("refresh_token") else {
                return oauth_error(400, "invalid_request", "refresh_token is required");
            };
            let Some(index) = state.refresh.iter().position(|t| t == presented) else {
                return oauth_error(
                    400,
                    "invalid_grant",
                    "the refresh token is invalid, expired or revoked",
                );
            };
            if state.rotate {
                state.refresh.remove(index);
                state.serial += 1;
                let next = format!("rt_{}_{}", state.nonce, state.serial);
                state.refresh.push(next.clone());
                Some(next)
            } else {
                None
            }
        }
        Some(_) => {
            return oauth_error(
                400,
                "unsupported_grant_type",
                "this server knows client_credentials and refresh_token",
            );
        }
        None => return oauth_error(400, "invalid_request", "grant_type is required"),
    };
    state.serial += 1;
    state.issued += 1;
    let access_token = format!("at_{}_{}", state.nonce, state.serial);
    state
        .access
        .insert(access_token.clone(), Instant::now() + state.ttl);
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": state.ttl.as_secs(),
    });
    if let Some(scope) = form.get("scope") {
        body["scope"] = json!(scope);
    }
    if let Some(refresh_token) = rotated {
        body["refresh_token"] = json!(refresh_token);
    }
    Reply::json(200, body)
}

/// `(id, secret)` from a Basic credential whose parts are form-URL-encoded.
fn decode_basic(credential: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(credential)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((form_decode(id), form_decode(secret)))
}

fn form_decode(text: &str) -> String {
    // An encoded part holds no raw `=` or `&`, so it parses as one key.
    form_urlencoded::parse(text.as_bytes())
        .next()
        .map(|(key, _)| key.into_owned())
        .unwrap_or_default()
}

fn oauth_error(status: u16, code: &str, description: &str) -> Reply {
    Reply::json(
        status,
        json!({ "error": code, "error_description": description }),
    )
}

fn invalid_client(description: &str) -> Reply {
    oauth_error(401, "invalid_client", description)
        .with_header("www-authenticate", "Basic realm=\"oauth\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "client-1";
    const SECRET: &str = "s3cr:t/+= &x";

    fn basic(id: &str, secret: &str) -> String {
        let id: String = form_urlencoded::byte_serialize(id.as_bytes()).collect();
        let secret: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        format!("Basic {encoded}")
    }

    fn form(pairs: &[(&str, &str)]) -> String {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    }

    async fn post(
        server: &OAuthServer,
        authorization: Option<String>,
        pairs: &[(&str, &str)],
    ) -> (u16, serde_json::Value) {
        let mut request = reqwest::Client::new()
            .post(server.token_url())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(pairs));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    async fn resource(server: &OAuthServer, token: &str) -> u16 {
        reqwest::Client::new()
            .get(format!("{}{RESOURCE_PATH}", server.url()))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    #[tokio::test]
    async fn client_credentials_with_basic_or_body_authentication() {
        let server = start(ID, SECRET).await.unwrap();
        server.set_ttl(Duration::from_secs(120));

        let (status, body) = post(
            &server,
            Some(basic(ID, SECRET)),
            &[("grant_type", "client_credentials"), ("scope", "a b")],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 120);
        assert_eq!(body["scope"], "a b");
        assert!(body.get("refresh_token").is_none(), "{body}");
        let token = body["access_token"].as_str().unwrap().to_owned();
        assert_eq!(resource(&server, &token).await, 200);

        let (status, body) = post(
            &server,
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", ID),
                ("client_secret", SECRET),
                ("audience", "https://api"),
            ],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_ne!(body["access_token"].as_str().unwrap(), token);

        let log = server.token_log();
        assert_eq!(log.len(), 2);
        assert_eq!(log[0].client_auth, ClientAuth::Basic);
        assert_eq!(log[1].client_auth, ClientAuth::Body);
        assert_eq!(log[1].audience.as_deref(), Some("https://api"));
        assert_eq!(server.token_requests(), 2);
    }

    #[tokio::test]
    async fn wrong_or_doubled_credentials_are_refused() {
        let server = start(ID, SECRET).await.unwrap();
        let grant = [("grant_type", "client_credentials")];
        let (status, body) = post(&server, Some(basic(ID, "wrong")), &grant).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client"))
        );
        let (status, body) = post(&server, None, &grant).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client"))
        );
        let (status, body) = post(
            &server,
            Some(basic(ID, SECRET)),
            &[("grant_type", "client_credentials"), ("client_id", ID)],
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request"))
        );
        let (status, body) = post(
            &server,
            Some(basic(ID, SECRET)),
            &[("grant_type", "password")],
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("unsupported_grant_type"))
        );
        assert_eq!(server.tokens_issued(), 0);
    }

    #[tokio::test]
    async fn refresh_tokens_rotate_and_old_ones_stop_working() {
        let server = start(ID, SECRET).await.unwrap();
        server.add_refresh_token("rt-initial");
        server.set_rotation(true);
        let refresh = |token: &str| {
            [
                ("grant_type", "refresh_token".to_owned()),
                ("refresh_token", token.to_owned()),
            ]
        };

        let pairs = refresh("rt-initial");
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, body) = post(&server, Some(basic(ID, SECRET)), &pairs).await;
        assert_eq!(status, 200, "{body}");
        let rotated = body["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(rotated, "rt-initial");
        assert_eq!(server.refresh_tokens(), std::slice::from_ref(&rotated));

        let (status, body) = post(&server, Some(basic(ID, SECRET)), &pairs).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );

        server.set_rotation(false);
        let pairs = refresh(&rotated);
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, body) = post(&server, Some(basic(ID, SECRET)), &pairs).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("refresh_token").is_none(), "{body}");
        assert_eq!(server.refresh_tokens(), [rotated]);
    }

    #[tokio::test]
    async fn revoked_and_expired_tokens_get_401_on_protected_routes() {
        let server = start(ID, SECRET).await.unwrap();
        let api = MockUpstream::start().await;
        server.protect(&api, "GET", "/things", Reply::json(200, json!([1])));
        let grant = [("grant_type", "client_credentials")];
        let (_, body) = post(&server, Some(basic(ID, SECRET)), &grant).await;
        let first = body["access_token"].as_str().unwrap().to_owned();

        let get = |token: String| {
            let url = format!("{}/things", api.url());
            async move {
                let response = reqwest::Client::new()
                    .get(url)
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap();
                (
                    response.status().as_u16(),
                    response
                        .headers()
                        .get("www-authenticate")
                        .map(|v| v.to_str().unwrap().to_owned()),
                )
            }
        };
        assert_eq!(get(first.clone()).await, (200, None));
        server.revoke_access_tokens();
        let (status, challenge) = get(first.clone()).await;
        assert_eq!(status, 401);
        assert!(challenge.unwrap().contains("invalid_token"));
        assert_eq!(get("at_made_up".into()).await.0, 401);

        let (_, body) = post(&server, Some(basic(ID, SECRET)), &grant).await;
        let second = body["access_token"].as_str().unwrap().to_owned();
        assert_eq!(get(second.clone()).await.0, 200);
        server.expire_access_tokens();
        assert_eq!(get(second.clone()).await.0, 401);
        assert_eq!(resource(&server, &second).await, 401);
        assert_eq!(server.rejections(), 4);
    }

    #[tokio::test]
    async fn short_ttl_tokens_expire_on_their_own() {
        let server = start(ID, SECRET).await.unwrap();
        server.set_ttl(Duration::from_millis(300));
        let grant = [("grant_type", "client_credentials")];
        let (_, body) = post(&server, Some(basic(ID, SECRET)), &grant).await;
        assert_eq!(body["expires_in"], 0);
        let token = body["access_token"].as_str().unwrap().to_owned();
        assert!(server.validator().is_valid(&token));
        // Waiting for the clock is the point of this test.
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(!server.validator().is_valid(&token));
        assert_eq!(resource(&server, &token).await, 401);
    }

    #[tokio::test]
    async fn token_answers_can_be_slowed_and_scripted() {
        let server = start(ID, SECRET).await.unwrap();
        server.set_token_delay(Duration::from_millis(200));
        let grant = [("grant_type", "client_credentials")];
        let started = Instant::now();
        let (status, _) = post(&server, Some(basic(ID, SECRET)), &grant).await;
        assert_eq!(status, 200);
        assert!(started.elapsed() >= Duration::from_millis(200));

        server.set_token_delay(Duration::ZERO);
        server.mock().script(
            "POST",
            TOKEN_PATH,
            [Reply::json(
                503,
                json!({"error": "temporarily_unavailable"}),
            )],
        );
        let (status, body) = post(&server, Some(basic(ID, SECRET)), &grant).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (503, Some("temporarily_unavailable"))
        );
        assert_eq!(server.token_requests(), 2);
        assert_eq!(server.token_log().len(), 1);
    }
}
