//! Authentication schemes applied to every request of a connector.

use base64::Engine as _;
use patchbay_config::{AuthConfig, Env, Secret, interpolate};
use reqwest::header::{HeaderName, HeaderValue};

use crate::error::BuildError;

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
}

impl Auth {
    /// Resolves `${env:...}` references and prepares the credential.
    pub fn build(
        connector: &str,
        config: Option<&AuthConfig>,
        env: &dyn Env,
    ) -> Result<Auth, BuildError> {
        let resolve = |value: &str| {
            interpolate(value, env)
                .map(Secret::new)
                .map_err(|reason| BuildError::Config {
                    connector: connector.to_string(),
                    reason: format!("auth: {reason}"),
                })
        };
        Ok(match config {
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
        })
    }

    /// Adds a query-string credential to the URL.
    pub(crate) fn apply_to_url(&self, url: &mut reqwest::Url) {
        if let Auth::QueryKey { name, value } = self {
            url.query_pairs_mut().append_pair(name, value.expose());
        }
    }

    /// Adds a header credential to a request being built.
    pub(crate) fn apply_to_headers(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, CredentialError> {
        Ok(match self {
            Auth::None | Auth::QueryKey { .. } => request,
            Auth::HeaderKey { name, value } => request.header(name.clone(), sensitive(value)?),
            Auth::Authorization(value) => {
                request.header(reqwest::header::AUTHORIZATION, sensitive(value)?)
            }
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
