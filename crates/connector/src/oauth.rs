//! OAuth 2.0 access tokens for a connector (RFC 6749: the client credentials
//! and refresh token grants; RFC 6750 bearer tokens).
//!
//! Token requests are built and their answers parsed by the `oauth2` crate,
//! which does the protocol details right (form encoding, RFC 6749 §2.3.1
//! URL-encoding of Basic credentials, error responses, case-insensitive token
//! types). It is used without its own HTTP features: it hands us each request
//! through an async closure and we send it with a `reqwest` client of our own,
//! so there is one HTTP stack in the process and token responses are size
//! capped like any other. That client never follows redirects, which keeps a
//! token endpoint from bouncing the client secret elsewhere, and it shares
//! the connector's address filter (a token endpoint on an inward address is
//! refused like the API itself) and TLS settings.
//!
//! Tokens are cached per connector and replaced `refresh_margin` before they
//! expire (a token living less than twice the margin at half its life, so a
//! short-lived token is not fetched anew for every call). Exactly one token
//! request is in flight at a time: callers that find no usable token queue on
//! an async mutex, and each checks again after acquiring it, so those behind
//! the first one take the token it fetched. A 401 from the upstream makes the
//! connector ask for a new token only if the rejected token is still the
//! current one; otherwise another caller has already replaced it.
//!
//! With the refresh token grant, a rotated refresh token is saved in the
//! attached [`TokenStore`] and a token found there replaces the configured
//! one. If the store cannot be read the call fails rather than falling back
//! to the configured token: presenting a superseded refresh token makes some
//! servers revoke every token of the client.
//!
//! When several processes share the token store (nodes on one database),
//! they take turns for token requests, and the one whose turn it is takes
//! the access token another already fetched if it is still in use: the
//! cluster asks the token server once per token life, whatever its size.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use ::oauth2::basic::{BasicClient, BasicErrorResponse, BasicTokenType};
use ::oauth2::{
    AuthType, ClientId, ClientSecret, EndpointNotSet, EndpointSet, RefreshToken, RequestTokenError,
    Scope, TokenResponse, TokenUrl,
};
use patchbay_config::{Env, OAuth2ClientAuth, OAuth2Config, OAuth2Grant, Secret, interpolate};
use reqwest::header::HeaderValue;
use serde_json::Value;
use tokio::time::Instant;

use crate::address_filter::{AddressFilter, AddressRefusal};
use crate::connector::Outbound;
use crate::error::BuildError;
use crate::redact::Masker;
use crate::token_store::{SharedAccess, TokenStore};

const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(30);
/// Deadline of one token request; the call's own deadline still applies.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);
/// A token response is a few hundred bytes; anything near this is not one.
const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;
/// How much of the server's `error_description` is quoted.
const DESCRIPTION_CHARS: usize = 200;

type Client =
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// The OAuth 2.0 client of one connector and its token cache.
pub struct OAuth2 {
    connector: String,
    client: Client,
    http: reqwest::Client,
    /// The connector's address filter, for a token URL with a literal address.
    filter: AddressFilter,
    grant: OAuth2Grant,
    scopes: Vec<String>,
    audience: Option<String>,
    /// Kept to keep them out of messages an endpoint might echo them into.
    client_secret: Option<Secret>,
    /// The connector's masker: every token issued is added to it the moment
    /// it arrives, before any call can carry it (see [`crate::redact`]).
    masker: Masker,
    configured_refresh_token: Option<Secret>,
    margin: Duration,
    /// The token URL with any password masked.
    shown_token_url: String,
    /// The token in use; a std mutex because it is only read and replaced,
    /// never held across an await.
    current: Mutex<Option<Arc<Token>>>,
    /// Held for the whole of a token request: this is what makes it single
    /// flight.
    refresh: tokio::sync::Mutex<RefreshState>,
    store: Mutex<StoreSlot>,
}

#[derive(Default)]
struct RefreshState {
    /// Counts tokens obtained, so a caller can tell whether the token it
    /// used is still the current one.
    generation: u64,
    /// The refresh token in use once one was loaded or rotated in.
    refresh_token: Option<Secret>,
}

#[derive(Default)]
struct StoreSlot {
    store: Option<Arc<dyn TokenStore>>,
    /// The store was attached and not read yet.
    unread: bool,
}

/// An access token ready to send.
pub(crate) struct Token {
    /// `Bearer <token>`, marked sensitive.
    header: HeaderValue,
    /// When to stop using it; `None` when the server gave no lifetime.
    refresh_at: Option<Instant>,
    generation: u64,
}

impl Token {
    pub(crate) fn header(&self) -> &HeaderValue {
        &self.header
    }

    fn usable(&self, now: Instant) -> bool {
        self.refresh_at.is_none_or(|at| now < at)
    }

    /// The token as other processes sharing the token store take it on.
    fn to_shared(&self) -> Option<SharedAccess> {
        let token = self.header.to_str().ok()?.strip_prefix("Bearer ")?;
        let now = Instant::now();
        Some(SharedAccess {
            token: token.to_string(),
            replace_at: self
                .refresh_at
                .map(|at| SystemTime::now() + at.saturating_duration_since(now)),
        })
    }
}

/// A token that could not be obtained. The reason never contains a secret.
#[derive(Debug)]
pub(crate) struct TokenError {
    pub reason: String,
    /// Whether the token endpoint may well answer later (unreachable, 5xx).
    pub transient: bool,
    /// Set when the token endpoint's address is refused: the call fails as
    /// [`crate::CallError::AddressRefused`].
    pub refused: Option<AddressRefusal>,
}

impl TokenError {
    fn new(reason: impl Into<String>, transient: bool) -> Self {
        TokenError {
            reason: reason.into(),
            transient,
            refused: None,
        }
    }
}

/// What went wrong sending a token request; the `oauth2` crate wraps it.
#[derive(Debug, thiserror::Error)]
enum TokenHttpError {
    #[error("cannot reach the token endpoint: {0}")]
    Transport(String),
    #[error("the token endpoint answered {0}")]
    Status(u16),
    /// An OAuth error document with a status that says "later": a 5xx,
    /// 408 or 429. The status decides transience, as for any call; the
    /// document's code (`server_error`, say) only explains.
    #[error("the token endpoint answered {status}: {code}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Unavailable {
        status: u16,
        code: String,
        description: Option<String>,
    },
    #[error("the token endpoint's response is larger than {MAX_TOKEN_RESPONSE_BYTES} bytes")]
    TooLarge,
    #[error("cannot build the token request")]
    Request,
    #[error("the token endpoint is not allowed: {0}")]
    Refused(AddressRefusal),
}

impl OAuth2 {
    /// Resolves `${env:...}` references and checks the token URL.
    pub(crate) fn build(
        connector: &str,
        config: &OAuth2Config,
        env: &dyn Env,
        masker: Masker,
        outbound: &Outbound<'_>,
    ) -> Result<OAuth2, BuildError> {
        let config_error = |reason: String| BuildError::Config {
            connector: connector.to_string(),
            reason: format!("auth: oauth2: {reason}"),
        };
        let resolve = |value: &str| interpolate(value, env).map_err(&config_error);
        let token_url = resolve(&config.token_url)?;
        let written = config.token_url.as_str();
        let parsed = reqwest::Url::parse(&token_url)
            .map_err(|e| config_error(format!("token_url `{written}`: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(config_error(format!(
                "token_url `{written}` must be an http:// or https:// URL with a host"
            )));
        }
        let shown_token_url = if parsed.password().is_some() {
            let mut masked = parsed.clone();
            // Cannot fail: the URL has a host, so it can carry a password.
            let _ = masked.set_password(Some("****"));
            masked.to_string()
        } else {
            parsed.to_string()
        };
        let client_id = resolve(&config.client_id)?;
        let client_secret = config
            .client_secret
            .as_deref()
            .map(resolve)
            .transpose()?
            .map(Secret::new);
        let configured_refresh_token = config
            .refresh_token
            .as_deref()
            .map(resolve)
            .transpose()?
            .map(Secret::new);
        let scopes = config
            .scopes
            .iter()
            .map(|scope| resolve(scope))
            .collect::<Result<Vec<_>, _>>()?;
        let audience = config.audience.as_deref().map(resolve).transpose()?;

        let mut client = BasicClient::new(ClientId::new(client_id))
            .set_auth_type(match config.client_auth {
                OAuth2ClientAuth::Basic => AuthType::BasicAuth,
                OAuth2ClientAuth::Body => AuthType::RequestBody,
            })
            .set_token_uri(TokenUrl::from_url(parsed));
        if let Some(secret) = &client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.expose().to_string()));
        }
        let http = outbound
            .client_builder()
            .map_err(&config_error)?
            .connect_timeout(Duration::from_secs(10))
            .timeout(TOKEN_TIMEOUT)
            .build()?;
        Ok(OAuth2 {
            connector: connector.to_string(),
            client,
            http,
            filter: outbound.filter.clone(),
            grant: config.grant,
            scopes,
            audience,
            client_secret,
            masker,
            configured_refresh_token,
            margin: config
                .refresh_margin
                .map(|m| m.0)
                .unwrap_or(DEFAULT_REFRESH_MARGIN),
            shown_token_url,
            current: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
            store: Mutex::new(StoreSlot::default()),
        })
    }

    /// Attaches the store rotated refresh tokens are saved in; it is read
    /// before the next refresh token request.
    pub(crate) fn set_token_store(&self, store: Arc<dyn TokenStore>) {
        *lock(&self.store) = StoreSlot {
            store: Some(store),
            unread: true,
        };
    }

    /// A usable token: the cached one, or a new one.
    pub(crate) async fn token(&self) -> Result<Arc<Token>, TokenError> {
        if let Some(token) = self.cached() {
            return Ok(token);
        }
        let mut state = self.refresh.lock().await;
        // Whoever held the lock before may have fetched one meanwhile.
        if let Some(token) = self.cached() {
            return Ok(token);
        }
        self.fetch(&mut state, None).await
    }

    /// A token to replace `rejected`, which the upstream answered 401 to.
    pub(crate) async fn token_after_rejection(
        &self,
        rejected: &Token,
    ) -> Result<Arc<Token>, TokenError> {
        {
            // Callers arriving from now on wait for the new token instead of
            // sending one that is known to fail.
            let mut current = lock(&self.current);
            if current
                .as_ref()
                .is_some_and(|token| token.generation == rejected.generation)
            {
                *current = None;
            }
        }
        let mut state = self.refresh.lock().await;
        if state.generation != rejected.generation
            && let Some(token) = self.cached()
        {
            return Ok(token);
        }
        self.fetch(&mut state, Some(rejected)).await
    }

    fn cached(&self) -> Option<Arc<Token>> {
        lock(&self.current)
            .as_ref()
            .filter(|token| token.usable(Instant::now()))
            .cloned()
    }

    /// Asks the token endpoint for a token; called with the refresh lock held.
    /// With a store other processes share, it first takes the cluster's
    /// turn, then takes the access token another process fetched if it is
    /// still in use (and is not `rejected`, the one the upstream just
    /// refused); otherwise it fetches one, reading a rotating refresh token
    /// again first, and shares it (see [`TokenStore::shared`]).
    async fn fetch(
        &self,
        state: &mut RefreshState,
        rejected: Option<&Token>,
    ) -> Result<Arc<Token>, TokenError> {
        let shared = lock(&self.store)
            .store
            .clone()
            .filter(|store| store.shared());
        let Some(store) = shared else {
            return self.fetch_now(state).await;
        };
        self.take_refresh_turn(store.as_ref()).await?;
        let fetched = self.fetch_shared(store.as_ref(), state, rejected).await;
        store.end_refresh(&self.connector).await;
        fetched
    }

    async fn fetch_shared(
        &self,
        store: &dyn TokenStore,
        state: &mut RefreshState,
        rejected: Option<&Token>,
    ) -> Result<Arc<Token>, TokenError> {
        if let Some(token) = self.adopt(store, state, rejected).await {
            return Ok(token);
        }
        if matches!(self.grant, OAuth2Grant::RefreshToken) {
            lock(&self.store).unread = true;
        }
        let token = self.fetch_now(state).await?;
        if let Some(access) = token.to_shared()
            && let Err(error) = store.save_access(&self.connector, &access).await
        {
            // This process goes on with the token; the others fetch their own.
            tracing::warn!(
                connector = %self.connector,
                error = %error,
                "cannot share the oauth2 access token with the other nodes"
            );
        }
        Ok(token)
    }

    /// The access token another process shared, made current here, when
    /// it is still in use and is not `rejected`.
    async fn adopt(
        &self,
        store: &dyn TokenStore,
        state: &mut RefreshState,
        rejected: Option<&Token>,
    ) -> Option<Arc<Token>> {
        let access = match store.load_access(&self.connector).await {
            Ok(access) => access?,
            Err(error) => {
                tracing::warn!(
                    connector = %self.connector,
                    error = %error,
                    "cannot read the oauth2 access token shared by the other nodes; fetching one"
                );
                return None;
            }
        };
        let left = match access.replace_at {
            Some(at) => Some(
                at.duration_since(SystemTime::now())
                    .ok()
                    .filter(|left| !left.is_zero())?,
            ),
            None => None,
        };
        let mut header = HeaderValue::try_from(format!("Bearer {}", access.token)).ok()?;
        header.set_sensitive(true);
        if rejected.is_some_and(|rejected| rejected.header == header) {
            return None;
        }
        self.masker.add_issued([access.token.as_str()]);
        state.generation += 1;
        let token = Arc::new(Token {
            header,
            refresh_at: left.map(|left| Instant::now() + left),
            generation: state.generation,
        });
        *lock(&self.current) = Some(Arc::clone(&token));
        tracing::debug!(connector = %self.connector, generation = token.generation, "oauth2 token taken from another node");
        Some(token)
    }

    /// Waits for this process's turn to refresh among those sharing the
    /// token store.
    async fn take_refresh_turn(&self, store: &dyn TokenStore) -> Result<(), TokenError> {
        let started = Instant::now();
        loop {
            match store.begin_refresh(&self.connector, REFRESH_TURN).await {
                Ok(true) => return Ok(()),
                Ok(false) if started.elapsed() < REFRESH_TURN => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(false) => {
                    return Err(TokenError::new(
                        "another node has been refreshing the oauth2 token for too long",
                        true,
                    ));
                }
                Err(error) => {
                    return Err(TokenError::new(
                        format!("cannot take the turn to refresh the token: {error}"),
                        true,
                    ));
                }
            }
        }
    }

    async fn fetch_now(&self, state: &mut RefreshState) -> Result<Arc<Token>, TokenError> {
        let started = Instant::now();
        // The closure owns its client, so the futures it returns borrow
        // nothing: a borrowing one cannot be proven `Send` for the
        // higher-ranked lifetime of the `oauth2` client trait.
        let http = self.http.clone();
        let filter = self.filter.clone();
        let send = move |request| post(http.clone(), filter.clone(), request);
        let scopes = self.scopes.iter().map(|s| Scope::new(s.clone()));
        let (response, used_refresh_token) = match self.grant {
            OAuth2Grant::ClientCredentials => {
                let mut request = self.client.exchange_client_credentials().add_scopes(scopes);
                if let Some(audience) = &self.audience {
                    request = request.add_extra_param("audience", audience.as_str());
                }
                (request.request_async(&send).await, None)
            }
            OAuth2Grant::RefreshToken => {
                let refresh_token = self.refresh_token(state).await?;
                let presented = RefreshToken::new(refresh_token.expose().to_string());
                let mut request = self
                    .client
                    .exchange_refresh_token(&presented)
                    .add_scopes(scopes);
                if let Some(audience) = &self.audience {
                    request = request.add_extra_param("audience", audience.as_str());
                }
                (request.request_async(&send).await, Some(refresh_token))
            }
        };
        let response = response.map_err(|e| self.token_error(e))?;
        // Masked from here on, whatever becomes of them.
        self.masker.add_issued(
            std::iter::once(response.access_token().secret().as_str())
                .chain(response.refresh_token().map(|r| r.secret().as_str())),
        );
        if !matches!(response.token_type(), BasicTokenType::Bearer) {
            return Err(TokenError::new(
                format!(
                    "the token endpoint issued a `{}` token; only bearer tokens are supported",
                    token_type_name(response.token_type())
                ),
                false,
            ));
        }
        if let (Some(used), Some(rotated)) = (used_refresh_token, response.refresh_token())
            && rotated.secret() != used.expose()
        {
            state.refresh_token = Some(Secret::new(rotated.secret().clone()));
            self.save_refresh_token(rotated.secret()).await;
        }
        let mut header = HeaderValue::try_from(format!(
            "Bearer {}",
            response.access_token().secret()
        ))
        .map_err(|_| {
            TokenError::new(
                "the access token contains characters that cannot be sent in an HTTP header",
                false,
            )
        })?;
        header.set_sensitive(true);
        state.generation += 1;
        let token = Arc::new(Token {
            header,
            refresh_at: response
                .expires_in()
                .map(|life| started + usable_for(life, self.margin)),
            generation: state.generation,
        });
        *lock(&self.current) = Some(Arc::clone(&token));
        tracing::debug!(connector = %self.connector, generation = token.generation, "oauth2 token obtained");
        Ok(token)
    }

    /// The refresh token to present: a rotated one, else the stored one,
    /// else the configured one.
    async fn refresh_token(&self, state: &mut RefreshState) -> Result<Secret, TokenError> {
        let unread = {
            let mut slot = lock(&self.store);
            let store = slot.store.clone().filter(|_| slot.unread);
            slot.unread = false;
            store
        };
        if let Some(store) = unread {
            match store.load(&self.connector).await {
                Ok(Some(saved)) => {
                    self.masker.add_issued([saved.as_str()]);
                    state.refresh_token = Some(Secret::new(saved));
                }
                Ok(None) => {}
                Err(error) => {
                    lock(&self.store).unread = true;
                    return Err(TokenError::new(
                        format!("cannot read the saved refresh token: {error}"),
                        true,
                    ));
                }
            }
        }
        state
            .refresh_token
            .clone()
            .or_else(|| self.configured_refresh_token.clone())
            .ok_or_else(|| {
                TokenError::new(
                    "the refresh_token grant has no refresh token (configure `refresh_token`)",
                    false,
                )
            })
    }

    async fn save_refresh_token(&self, refresh_token: &str) {
        let store = lock(&self.store).store.clone();
        let Some(store) = store else {
            tracing::warn!(
                connector = %self.connector,
                "the oauth2 refresh token was rotated but no token store is attached; \
                 the new one is kept in memory only"
            );
            return;
        };
        // The call goes on: the new token is in memory and the next rotation
        // tries to save again.
        if let Err(error) = store.save(&self.connector, refresh_token).await {
            tracing::warn!(
                connector = %self.connector,
                error = %error,
                "cannot save the rotated oauth2 refresh token"
            );
        }
    }

    fn token_error(
        &self,
        error: RequestTokenError<TokenHttpError, BasicErrorResponse>,
    ) -> TokenError {
        match error {
            RequestTokenError::ServerResponse(response) => {
                let code = response.error().to_string();
                let mut reason = format!("the token endpoint refused the request: {code}");
                if let Some(description) = response.error_description() {
                    reason.push_str(" (");
                    reason.push_str(&self.redact(description));
                    reason.push(')');
                }
                TokenError::new(reason, code == "temporarily_unavailable")
            }
            RequestTokenError::Request(error) => {
                let transient = match &error {
                    TokenHttpError::Transport(_) => true,
                    TokenHttpError::Status(status) => temporary(*status),
                    TokenHttpError::Unavailable { .. } => true,
                    TokenHttpError::TooLarge
                    | TokenHttpError::Request
                    | TokenHttpError::Refused(_) => false,
                };
                let mut token_error = TokenError::new(self.redact(&error.to_string()), transient);
                if let TokenHttpError::Refused(refusal) = error {
                    token_error.refused = Some(refusal);
                }
                token_error
            }
            RequestTokenError::Parse(error, _body) => {
                // The body may hold a token and serde's message may quote a
                // value, so only the location and a missing field are told.
                let inner = error.inner().to_string();
                let what = match inner.split_once(" at line ") {
                    Some((message, _)) if message.starts_with("missing field") => message,
                    _ => "unexpected content",
                };
                TokenError::new(
                    format!(
                        "the token endpoint's response is not a valid token response \
                         ({what} at `{}`)",
                        error.path()
                    ),
                    false,
                )
            }
            RequestTokenError::Other(message) => TokenError::new(
                format!("the token endpoint's response is unusable: {message}"),
                false,
            ),
        }
    }

    /// The configured client secret and refresh token, for masking.
    pub(crate) fn secret_values(&self) -> Vec<String> {
        let mut values: Vec<String> = [&self.client_secret, &self.configured_refresh_token]
            .into_iter()
            .flatten()
            .map(|secret| secret.expose().to_string())
            .collect();
        if let Some(secret) = &self.client_secret {
            // What HTTP Basic client authentication sends, base64-encoded:
            // the pair as is and URL-encoded (RFC 6749 §2.3.1).
            let id = self.client.client_id().as_str();
            let encode = |text: &str| -> String {
                form_urlencoded::byte_serialize(text.as_bytes()).collect()
            };
            let (encoded_id, encoded_secret) = (encode(id), encode(secret.expose()));
            values.push(format!("{id}:{}", secret.expose()));
            values.push(format!("{encoded_id}:{encoded_secret}"));
        }
        values
    }

    /// Quotes server text, shortened, with every credential masked should
    /// the server have echoed one; masked whole before it is cut.
    fn redact(&self, text: &str) -> String {
        let masked = self.masker.mask(text);
        let mut out: String = masked.chars().take(DESCRIPTION_CHARS).collect();
        if masked.chars().nth(DESCRIPTION_CHARS).is_some() {
            out.push('…');
        }
        out
    }
}

impl std::fmt::Debug for OAuth2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth2")
            .field("token_url", &self.shown_token_url)
            .field("client_id", &self.client.client_id().as_str())
            .field("grant", &self.grant)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// Longest one process keeps the turn to refresh a token shared with
/// others, and longest another waits for it: a refresh that outlasts it has
/// failed anyway (the token request's own timeout is shorter).
const REFRESH_TURN: Duration = Duration::from_secs(30);

/// How long a token living `life` is used: until `margin` before it
/// expires, but at least half its life.
fn usable_for(life: Duration, margin: Duration) -> Duration {
    life.saturating_sub(margin).max(life / 2)
}

/// Sends one token request with our own client.
async fn post(
    http: reqwest::Client,
    filter: AddressFilter,
    request: ::oauth2::HttpRequest,
) -> Result<::oauth2::HttpResponse, TokenHttpError> {
    let request = reqwest::Request::try_from(request).map_err(|_| TokenHttpError::Request)?;
    filter
        .check_url(request.url())
        .map_err(TokenHttpError::Refused)?;
    let transport = |e: reqwest::Error| {
        let e = e.without_url();
        match crate::address_filter::find_refusal(&e) {
            Some(refusal) => TokenHttpError::Refused(refusal.clone()),
            None => TokenHttpError::Transport(crate::error::error_chain(&e)),
        }
    };
    let mut response = http.execute(request).await.map_err(transport)?;
    let status = response.status();
    let headers = std::mem::take(response.headers_mut());
    if response
        .content_length()
        .is_some_and(|len| len > MAX_TOKEN_RESPONSE_BYTES as u64)
    {
        return Err(TokenHttpError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > MAX_TOKEN_RESPONSE_BYTES {
            return Err(TokenHttpError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    if status != reqwest::StatusCode::OK {
        let Some((code, description)) = error_document(&body) else {
            // Not an OAuth error document (an HTML 502 page, say): the
            // status is all there is to say, and it decides whether to try
            // again.
            return Err(TokenHttpError::Status(status.as_u16()));
        };
        if temporary(status.as_u16()) {
            return Err(TokenHttpError::Unavailable {
                status: status.as_u16(),
                code,
                description,
            });
        }
        // A refusal (`invalid_client`, `invalid_grant`...): the `oauth2`
        // crate reads the document.
    }
    let mut out = ::oauth2::HttpResponse::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

/// The `error` and `error_description` of an RFC 6749 §5.2 error
/// document; `None` when the body is not one.
fn error_document(body: &[u8]) -> Option<(String, Option<String>)> {
    let doc = serde_json::from_slice::<Value>(body).ok()?;
    let code = doc.get("error")?.as_str()?.to_string();
    let description = doc
        .get("error_description")
        .and_then(Value::as_str)
        .map(str::to_string);
    Some((code, description))
}

/// Whether an HTTP status says the token endpoint may answer later.
fn temporary(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}

fn token_type_name(token_type: &BasicTokenType) -> &str {
    match token_type {
        BasicTokenType::Bearer => "bearer",
        BasicTokenType::Mac => "mac",
        BasicTokenType::Extension(name) => name,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Only whole values are ever stored, so a panic elsewhere leaves them usable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_replaced_margin_before_expiry_or_at_half_life() {
        let secs = Duration::from_secs;
        assert_eq!(usable_for(secs(3600), secs(30)), secs(3570));
        assert_eq!(usable_for(secs(40), secs(30)), secs(20));
        assert_eq!(usable_for(secs(10), secs(0)), secs(10));
        assert_eq!(usable_for(secs(0), secs(30)), secs(0));
    }
}
