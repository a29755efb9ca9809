//! Authentication schemes applied to every request of a connector.
//!
//! Static credentials are prepared once at build time; OAuth 2.0 tokens are
//! obtained and renewed by [`OAuth2`](crate::oauth) while calls are made.

use std::sync::Arc;

use base64::Engine as _;
use patchbay_config::{AuthConfig, Env, Secret, interpolate};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};

use crate::connector::Outbound;
use crate::error::BuildError;
use crate::oauth::OAuth2;
use crate::redact::Masker;
use crate::token_store::TokenStore;

/// How a connector authenticates. Credentials are [`Secret`]s: formatting an
/// `Auth` never shows them.
#[derive(Clone, Debug)]
pub enum Auth {
    None,
    /// A key in a request header.
    HeaderKey {
        name: HeaderName,
        value: Secret,
    },
    /// A key in the query string.
    QueryKey {
        name: String,
        value: Secret,
    },
    /// A precomputed `Authorization` value (`Bearer ...` or `Basic ...`).
    Authorization(Secret),
    /// `Authorization: Bearer` with tokens from an OAuth 2.0 token endpoint.
    OAuth2(Arc<OAuth2>),
}

impl Auth {
    /// Resolves `${env:...}` references and prepares the credential. OAuth
    /// 2.0 tokens are added to `masker` as they are issued.
    pub(crate) fn build(
        connector: &str,
        config: Option<&AuthConfig>,
        env: &dyn Env,
        masker: &Masker,
        outbound: &Outbound<'_>,
    ) -> Result<Auth, BuildError> {
        let resolve = |value: &str| {
            interpolate(value, env)
                .map(Secret::new)
                .map_err(|reason| BuildError::Config {
                    connector: connector.to_string(),
                    reason: format!("auth: {reason}"),
                })
        };
        let auth = match config {
            None => Auth::None,
            Some(AuthConfig::ApiKey {
                header: Some(header),
                value,
                ..
            }) => Auth::HeaderKey {
                name: HeaderName::try_from(header.as_str()).map_err(|_| BuildError::Config {
                    connector: connector.to_string(),
                    reason: format!("`{header}` is not a valid header name"),
                })?,
                value: resolve(value)?,
            },
            Some(AuthConfig::ApiKey {
                query: Some(query),
                value,
                ..
            }) => Auth::QueryKey {
                name: query.clone(),
                value: resolve(value)?,
            },
            Some(AuthConfig::ApiKey { .. }) => {
                return Err(BuildError::Config {
                    connector: connector.to_string(),
                    reason: "api_key needs `header` or `query`".into(),
                });
            }
            Some(AuthConfig::OAuth2(config)) => Auth::OAuth2(Arc::new(OAuth2::build(
                connector,
                config,
                env,
                masker.clone(),
                outbound,
            )?)),
            Some(AuthConfig::Bearer { token }) => {
                Auth::Authorization(Secret::new(format!("Bearer {}", resolve(token)?.expose())))
            }
            Some(AuthConfig::Basic { username, password }) => {
                let pair = format!(
                    "{}:{}",
                    resolve(username)?.expose(),
                    resolve(password)?.expose()
                );
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                Auth::Authorization(Secret::new(format!("Basic {encoded}")))
            }
        };
        // A credential that cannot travel in a header is a configuration
        // mistake; refusing it here makes it a start-up error instead of a
        // failure on every call. The value itself is never quoted.
        match auth.header() {
            Ok(_) => Ok(auth),
            Err(CredentialError) => Err(BuildError::Config {
                connector: connector.to_string(),
                reason:
                    "auth: the credential contains characters that cannot be sent in an HTTP header"
                        .into(),
            }),
        }
    }

    /// Adds a query-string credential to the URL.
    pub(crate) fn apply_to_url(&self, url: &mut reqwest::Url) {
        if let Auth::QueryKey { name, value } = self {
            url.query_pairs_mut().append_pair(name, value.expose());
        }
    }

    /// Sets the header credential, replacing any header of the same name a
    /// request brought: the connector's configured credential always wins.
    pub(crate) fn apply_to_headers(&self, headers: &mut HeaderMap) -> Result<(), CredentialError> {
        if let Some((name, value)) = self.header()? {
            headers.insert(name, value);
        }
        Ok(())
    }

    /// The OAuth 2.0 client, when tokens come from a token endpoint.
    pub(crate) fn oauth2(&self) -> Option<&OAuth2> {
        match self {
            Auth::OAuth2(oauth) => Some(oauth),
            _ => None,
        }
    }

    /// Attaches the store of rotated refresh tokens (OAuth 2.0 only).
    pub(crate) fn set_token_store(&self, store: Arc<dyn TokenStore>) {
        if let Auth::OAuth2(oauth) = self {
            oauth.set_token_store(store);
        }
    }

    /// Every credential value this scheme sends or holds, for masking:
    /// a whole `Authorization` value and its token part (for basic auth,
    /// the `user:pass` pair too, whose halves the masker adds), keys, OAuth
    /// 2.0 client secrets.
    pub(crate) fn secret_values(&self) -> Vec<String> {
        match self {
            Auth::None => Vec::new(),
            Auth::HeaderKey { value, .. } | Auth::QueryKey { value, .. } => {
                vec![value.expose().to_string()]
            }
            Auth::Authorization(value) => {
                let whole = value.expose();
                let mut values = vec![whole.to_string()];
                if let Some((scheme, token)) = whole.split_once(' ') {
                    values.push(token.to_string());
                    if scheme == "Basic"
                        && let Ok(pair) = base64::engine::general_purpose::STANDARD.decode(token)
                    {
                        values.push(String::from_utf8_lossy(&pair).into_owned());
                    }
                }
                values
            }
            Auth::OAuth2(oauth) => oauth.secret_values(),
        }
    }

    /// The header an `api_key` credential travels in.
    pub(crate) fn key_header(&self) -> Option<&HeaderName> {
        match self {
            Auth::HeaderKey { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The header this credential is sent in, if it is sent in one.
    fn header(&self) -> Result<Option<(HeaderName, HeaderValue)>, CredentialError> {
        Ok(match self {
            // An OAuth 2.0 token is added per call, once it is known.
            Auth::None | Auth::QueryKey { .. } | Auth::OAuth2(_) => None,
            Auth::HeaderKey { name, value } => Some((name.clone(), sensitive(value)?)),
            Auth::Authorization(value) => Some((AUTHORIZATION, sensitive(value)?)),
        })
    }
}

/// A credential that cannot be put in a header (e.g. it contains a newline).
#[derive(Debug)]
pub(crate) struct CredentialError;

fn sensitive(secret: &Secret) -> Result<HeaderValue, CredentialError> {
    let mut value = HeaderValue::from_str(secret.expose()).map_err(|_| CredentialError)?;
    // Marked sensitive so HTTP/2 HPACK never indexes it and debug output hides it.
    value.set_sensitive(true);
    Ok(value)
}
