//! Bearer tokens and scopes: who may call which API route.
//!
//! Tokens are configured in `api.tokens`, each with scopes `read` <
//! `operate` < `admin` (each includes the lower ones). Only their SHA-256 is
//! kept in memory: a presented token is hashed and compared with every
//! configured hash in constant time, so neither the comparison's timing nor
//! a memory dump gives a token away.
//!
//! The scope a route needs is read from its own OpenAPI description (the
//! `bearer` security requirement of the operation), so the document can
//! never promise a scope the server does not enforce. A route without one
//! needs `admin`: forgetting to declare a scope fails closed.
//!
//! Without tokens the API is open (every caller has every scope); the node
//! allows that only on a loopback address unless
//! `api.dangerous_allow_anonymous` says otherwise.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use patchbay_config::{ApiConfig, ApiScope, Env, interpolate};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tracing::debug;

use super::audit::Audit;
use crate::error::ApiError;

/// The name of the security scheme in the OpenAPI document.
pub(crate) const SCHEME: &str = "bearer";

/// Who may use the API: the configured tokens, or nobody needs one.
#[derive(Clone)]
pub struct ApiAccess {
    tokens: Vec<KnownToken>,
}

#[derive(Clone)]
struct KnownToken {
    name: String,
    sha256: [u8; 32],
    scope: ApiScope,
}

impl std::fmt::Debug for ApiAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names and scopes only: even a token's hash stays out of logs.
        let tokens: Vec<(&str, ApiScope)> = self
            .tokens
            .iter()
            .map(|t| (t.name.as_str(), t.scope))
            .collect();
        f.debug_struct("ApiAccess")
            .field("tokens", &tokens)
            .finish()
    }
}

/// Why the API cannot be served as configured.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// No tokens, on an address others can reach.
    #[error("{0}")]
    Anonymous(String),
    /// A token's configuration is unusable.
    #[error("api token `{name}`: {reason}")]
    Token { name: String, reason: String },
}

impl ApiAccess {
    /// Access as `config` describes it, for a server listening on `listen`.
    /// Fails when a token cannot be resolved or is malformed, or when the API
    /// would be open on an address that is not loopback.
    pub fn from_config(
        config: &ApiConfig,
        env: &dyn Env,
        listen: SocketAddr,
    ) -> Result<ApiAccess, AccessError> {
        if !config.allows_listening_on(&listen) {
            return Err(AccessError::Anonymous(
                patchbay_config::validate::anonymous_api_refused(&listen),
            ));
        }
        let mut tokens = Vec::with_capacity(config.tokens.len());
        for token in &config.tokens {
            let error = |reason: String| AccessError::Token {
                name: token.name.clone(),
                reason,
            };
            let sha256 = match (&token.sha256, &token.token) {
                (Some(hex), None) => {
                    let mut hash = [0u8; 32];
                    hex::decode_to_slice(hex, &mut hash)
                        .map_err(|_| error("sha256 must be 64 hex digits".into()))?;
                    hash
                }
                (None, Some(value)) => {
                    let value =
                        interpolate(value, env).map_err(|e| error(format!("token: {e}")))?;
                    Sha256::digest(value.as_bytes()).into()
                }
                _ => return Err(error("give exactly one of `sha256` or `token`".into())),
            };
            let scope = token
                .scopes
                .iter()
                .copied()
                .max()
                .ok_or_else(|| error("give at least one scope".into()))?;
            tokens.push(KnownToken {
                name: token.name.clone(),
                sha256,
                scope,
            });
        }
        Ok(ApiAccess { tokens })
    }

    /// An API open to every caller (no tokens).
    pub fn open() -> ApiAccess {
        ApiAccess { tokens: Vec::new() }
    }

    /// Whether the API is served without tokens.
    pub fn is_open(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The caller of a request, if its token is known (or none is needed).
    fn identify(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        if self.is_open() {
            return Ok(Caller {
                token: None,
                scope: ApiScope::Admin,
            });
        }
        let Some(presented) = bearer(headers) else {
            return Err(unauthorized(
                "this API needs a token: send `Authorization: Bearer TOKEN`",
                "Bearer realm=\"patchbay\"",
            ));
        };
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // Every configured hash is compared, matched or not, so the time
        // taken does not tell which token (or how many) came close.
        let mut found = None;
        for token in &self.tokens {
            let equal: bool = token.sha256.ct_eq(&digest).into();
            if equal && found.is_none() {
                found = Some(token);
            }
        }
        match found {
            Some(token) => Ok(Caller {
                token: Some(token.name.clone()),
                scope: token.scope,
            }),
            None => Err(unauthorized(
                "the token is not known to this node",
                "Bearer realm=\"patchbay\", error=\"invalid_token\"",
            )),
        }
    }
}

/// The authenticated caller of a request (a request extension).
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    /// The token's configured name; `None` when the API is open.
    pub token: Option<String>,
    pub scope: ApiScope,
}

/// The token of an `Authorization: Bearer` header. The scheme name is
/// case-insensitive, as HTTP says.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn unauthorized(message: &str, challenge: &'static str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    )
}

fn forbidden(required: ApiScope, had: ApiScope) -> ApiError {
    let challenge =
        format!("Bearer realm=\"patchbay\", error=\"insufficient_scope\", scope=\"{required}\"");
    let mut error = ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!("this needs the `{required}` scope; the token has `{had}`"),
    )
    .with_details(json!({ "required": required.as_str(), "scope": had.as_str() }));
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        error = error.with_header(header::WWW_AUTHENTICATE, value);
    }
    error
}

/// The scope each API operation needs, by route template and method, read
/// from the OpenAPI document.
#[derive(Debug, Default)]
pub(crate) struct ScopeTable {
    routes: HashMap<String, Vec<(Method, ApiScope)>>,
}

/// What a request on a route needs.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Needed {
    /// A token with this scope (or a higher one).
    Scope(ApiScope),
    /// Nothing: the route does not take this method; these are the ones it
    /// takes, for `Allow`.
    WrongMethod(String),
}

impl ScopeTable {
    /// Reads each operation's `bearer` requirement: the highest scope it
    /// lists, `read` when it lists none (any token). An operation with no
    /// `bearer` requirement needs `admin`.
    pub fn from_document(document: &Value) -> ScopeTable {
        let mut routes: HashMap<String, Vec<(Method, ApiScope)>> = HashMap::new();
        let paths = document["paths"].as_object().into_iter().flatten();
        for (path, item) in paths {
            for (method, operation) in item.as_object().into_iter().flatten() {
                let Ok(method) = method.to_ascii_uppercase().parse::<Method>() else {
                    continue;
                };
                let needed = operation["security"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|requirement| requirement.get(SCHEME)?.as_array())
                    .map(|names| {
                        names
                            .iter()
                            .filter_map(|name| ApiScope::parse(name.as_str()?))
                            .max()
                            .unwrap_or(ApiScope::Read)
                    })
                    .max()
                    .unwrap_or(ApiScope::Admin);
                routes
                    .entry(path.clone())
                    .or_default()
                    .push((method, needed));
            }
        }
        ScopeTable { routes }
    }

    /// What `method` on `route` needs. A route the document does not know
    /// needs `admin`; a method it does not list for a known route is
    /// refused before it could reach a handler.
    pub fn needed(&self, method: &Method, route: &str) -> Needed {
        let Some(methods) = self.routes.get(route) else {
            return Needed::Scope(ApiScope::Admin);
        };
        // HEAD is served by the GET handler, and needs what GET needs.
        let wanted = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        match methods.iter().find(|(m, _)| m == wanted) {
            Some((_, scope)) => Needed::Scope(*scope),
            None => {
                let mut allow: Vec<&str> = methods.iter().map(|(m, _)| m.as_str()).collect();
                if allow.contains(&"GET") {
                    allow.push("HEAD");
                }
                allow.sort_unstable();
                Needed::WrongMethod(allow.join(", "))
            }
        }
    }
}

/// What the authorizing middleware needs.
#[derive(Clone)]
pub(crate) struct Guard {
    pub access: Arc<ApiAccess>,
    pub scopes: Arc<ScopeTable>,
    pub audit: patchbay_engine::AuditLog,
}

/// Middleware on every `/api/v1` route: identifies the caller and checks
/// the route's scope before the handler runs; records refusals and actions
/// in the audit log (see [`super::audit`]).
pub(crate) async fn authorize(
    State(guard): State<Guard>,
    route: Option<MatchedPath>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    mut request: Request,
    next: Next,
) -> Response {
    let needed = match &route {
        Some(route) => guard.scopes.needed(request.method(), route.as_str()),
        None => Needed::Scope(ApiScope::Admin),
    };
    let needed = match needed {
        Needed::Scope(scope) => scope,
        Needed::WrongMethod(allow) => {
            let allow = HeaderValue::from_str(&allow).unwrap_or(HeaderValue::from_static(""));
            return ApiError::method_not_allowed(allow).into_response();
        }
    };
    // Built only for what is recorded: a read by an allowed caller, the
    // common case, pays nothing for the audit log.
    let audit = |request: &Request| {
        Audit::of(
            &guard.audit,
            request,
            route.as_ref().map(MatchedPath::as_str),
            params.as_ref().ok(),
        )
    };
    let caller = match guard.access.identify(request.headers()) {
        Ok(caller) => caller,
        Err(error) => {
            audit(&request).refused(None, error.status);
            return error.into_response();
        }
    };
    let actor = caller.token.clone();
    if caller.scope < needed {
        debug!(token = caller.token.as_deref().unwrap_or("-"), needed = %needed, "API request refused: scope too low");
        let error = forbidden(needed, caller.scope);
        audit(&request).refused(actor.as_deref(), error.status);
        return error.into_response();
    }
    request.extensions_mut().insert(caller);
    if !Audit::is_action(request.method()) {
        return next.run(request).await;
    }
    let audit = audit(&request);
    if let Err(error) = audit.ahead(actor.as_deref()).await {
        return error.into_response();
    }
    let response = next.run(request).await;
    audit.answered(actor.as_deref(), response.status()).await;
    response
}

/// Middleware for routes outside `/api/v1` that show what the API's `read`
/// scope shows (`/metrics`: flow and connector names, error rates): the
/// same tokens, at least `read`.
pub(crate) async fn require_read(
    State(access): State<Arc<ApiAccess>>,
    request: Request,
    next: Next,
) -> Response {
    match access.identify(request.headers()) {
        // Every scope includes `read`.
        Ok(_) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

/// A new random API token: 32 bytes from the system's secure generator,
/// base64url, prefixed `pbt_` so it is recognisable in a secret scanner.
#[derive(Clone)]
pub struct NewToken {
    /// The token to give the client. Shown once; only its hash is kept.
    pub token: String,
    /// Its SHA-256, hex, for `api.tokens[].sha256`.
    pub sha256: String,
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken")
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

impl NewToken {
    pub fn generate() -> Result<NewToken, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        let token = format!(
            "pbt_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        );
        let sha256 = hex::encode(Sha256::digest(token.as_bytes()));
        Ok(NewToken { token, sha256 })
    }
}

#[cfg(test)]
mod tests {
    use patchbay_config::{ApiTokenConfig, Located, MapEnv};

    use super::*;

    fn config(tokens: Vec<ApiTokenConfig>) -> ApiConfig {
        ApiConfig {
            tokens: tokens.into_iter().map(Located::unlocated).collect(),
            dangerous_allow_anonymous: false,
            allowed_hosts: Vec::new(),
        }
    }

    fn token(
        name: &str,
        sha256: Option<String>,
        token: Option<&str>,
        scopes: &[ApiScope],
    ) -> ApiTokenConfig {
        ApiTokenConfig {
            name: name.into(),
            sha256,
            token: token.map(str::to_string),
            scopes: scopes.to_vec(),
        }
    }

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, authorization.parse().unwrap());
        headers
    }

    #[test]
    fn tokens_are_known_by_hash_or_value_with_their_highest_scope() {
        let new = NewToken::generate().unwrap();
        assert!(
            new.token.starts_with("pbt_") && new.token.len() == 47,
            "{}",
            new.token
        );
        assert_eq!(new.sha256.len(), 64);
        let env = MapEnv::new([("OPS".to_string(), "ops-token-0123456789".to_string())]);
        let access = ApiAccess::from_config(
            &config(vec![
                token(
                    "ci",
                    Some(new.sha256.clone()),
                    None,
                    &[ApiScope::Read, ApiScope::Operate],
                ),
                token("ops", None, Some("${env:OPS}"), &[ApiScope::Admin]),
            ]),
            &env,
            "0.0.0.0:80".parse().unwrap(),
        )
        .unwrap();
        let ci = access
            .identify(&headers(&format!("Bearer {}", new.token)))
            .unwrap();
        assert_eq!(
            (ci.token.as_deref(), ci.scope),
            (Some("ci"), ApiScope::Operate)
        );
        let ops = access
            .identify(&headers("bearer ops-token-0123456789"))
            .unwrap();
        assert_eq!(ops.scope, ApiScope::Admin);
        for bad in [
            "Bearer nope",
            "Basic b3BzOng=",
            "Bearer ",
            "ops-token-0123456789",
        ] {
            let error = access.identify(&headers(bad)).unwrap_err();
            assert_eq!(error.code, "unauthorized", "{bad}");
            assert!(
                error
                    .headers
                    .iter()
                    .any(|(name, _)| name == header::WWW_AUTHENTICATE)
            );
        }
        assert!(access.identify(&HeaderMap::new()).is_err());
        let shown = format!("{access:?}");
        assert!(
            !shown.contains(&new.sha256) && !shown.contains("ops-token"),
            "{shown}"
        );
    }

    #[test]
    fn an_open_api_is_refused_off_loopback() {
        let env = MapEnv::default();
        let public = "0.0.0.0:8080".parse().unwrap();
        let error = ApiAccess::from_config(&config(vec![]), &env, public).unwrap_err();
        assert!(error.to_string().contains("0.0.0.0:8080"), "{error}");
        let open =
            ApiAccess::from_config(&config(vec![]), &env, "127.0.0.1:0".parse().unwrap()).unwrap();
        assert!(open.is_open());
        assert_eq!(
            open.identify(&HeaderMap::new()).unwrap().scope,
            ApiScope::Admin
        );
        let mut allowed = config(vec![]);
        allowed.dangerous_allow_anonymous = true;
        assert!(ApiAccess::from_config(&allowed, &env, public).is_ok());
    }

    #[test]
    fn scopes_come_from_the_document_and_default_to_admin() {
        let document = json!({ "paths": {
            "/api/v1/runs": {
                "get": { "security": [{ "bearer": ["read"] }] },
                "post": { "security": [{ "bearer": ["operate"] }] },
            },
            "/api/v1/stats": { "get": { "security": [{ "bearer": [] }] } },
            "/api/v1/open": { "get": {} },
        }});
        let table = ScopeTable::from_document(&document);
        let scope = |method: Method, route: &str| table.needed(&method, route);
        assert_eq!(
            scope(Method::GET, "/api/v1/runs"),
            Needed::Scope(ApiScope::Read)
        );
        assert_eq!(
            scope(Method::HEAD, "/api/v1/runs"),
            Needed::Scope(ApiScope::Read)
        );
        assert_eq!(
            scope(Method::POST, "/api/v1/runs"),
            Needed::Scope(ApiScope::Operate)
        );
        assert_eq!(
            scope(Method::DELETE, "/api/v1/runs"),
            Needed::WrongMethod("GET, HEAD, POST".into())
        );
        assert_eq!(
            scope(Method::GET, "/api/v1/stats"),
            Needed::Scope(ApiScope::Read)
        );
        assert_eq!(
            scope(Method::GET, "/api/v1/open"),
            Needed::Scope(ApiScope::Admin)
        );
        assert_eq!(
            scope(Method::GET, "/api/v1/unknown"),
            Needed::Scope(ApiScope::Admin)
        );
    }
}
