//! [`Connector`]: one configured upstream API and the call pipeline to it.
//!
//! Header precedence, lowest to highest: the connector's `headers`, the
//! request's own headers, the connector's credential. A request header
//! replaces a default of the same name rather than being sent next to it
//! (two `Accept` values confuse most APIs), and no step can swap the
//! configured credential for another.
//!
//! With OAuth 2.0 the token is added per attempt, and a 401 gets one new
//! token and one more try (see [`crate::oauth`]). With request signing the
//! JSON body is serialized once and those bytes are both signed and sent
//! (see [`crate::signing`]).
//!
//! Secrets may hide in the base URL (userinfo), default headers and auth, so
//! `Debug`, [`Connector::summarize`] and every [`CallError`] are built from
//! redacted parts only.
//!
//! Every request, and every redirect hop, passes the connector's address
//! filter before it is sent ([`crate::address_filter`]); redirects are
//! followed here, hop by hop, and only as configured ([`crate::redirect`]).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use patchbay_config::{ConnectorConfig, Env, Located, interpolate};
use reqwest::header::{
    AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderMap, HeaderName, HeaderValue, PROXY_AUTHORIZATION,
};
use serde_json::{Map, Value};

use crate::address_filter::{AddressFilter, AddressRefusal};
use crate::auth::Auth;
use crate::call::{CallRequest, Response, headers_to_json};
use crate::error::{BuildError, CallError, error_chain};
use crate::oauth::{Token, TokenError};
use crate::redact::Masker;
use crate::redirect::RedirectPolicy;
use crate::retry::RetryPolicy;
use crate::signing::{Signed, Signer};
use crate::token_store::TokenStore;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_RESPONSE_BYTES: usize = 10 * 1024 * 1024;
/// How much of an error body is kept for the journal and messages.
const ERROR_EXCERPT_CHARS: usize = 300;
/// How much of a non-2xx body is read: enough bytes for the excerpt even in
/// four-byte characters, plus one character to know there was more. An error
/// page is never rejected for its size, so a 503 stays a (transient) 503.
const ERROR_BODY_BYTES: usize = ERROR_EXCERPT_CHARS * 4 + 4;

/// One upstream API, ready to call. Cheap to share behind an `Arc`; the HTTP
/// client inside pools and reuses connections (keep-alive).
pub struct Connector {
    name: String,
    base_url: String,
    /// `base_url` with any userinfo password masked, for summaries and `Debug`.
    shown_url: String,
    /// `base_url` parsed: its origin is where credentials may go.
    base: reqwest::Url,
    client: reqwest::Client,
    /// Which inward addresses calls may reach; checked on every hop.
    filter: AddressFilter,
    redirects: RedirectPolicy,
    headers: HeaderMap,
    auth: Auth,
    timeout: Duration,
    max_response_bytes: usize,
    retry: RetryPolicy,
    /// `None` when the connector sends no idempotency keys.
    idempotency_header: Option<HeaderName>,
    signer: Option<Signer>,
    /// Rate limit and upstream pauses, applied by `send`.
    pub(crate) throttle: crate::ratelimit::Throttle,
    /// `None` when `circuit_breaker: off`.
    pub(crate) breaker: Option<crate::breaker::Breaker>,
    /// The last hour of calls, for health and the dashboard.
    pub(crate) recent: crate::recent::RecentCalls,
    /// Every resolved credential of this connector (and, when built with
    /// [`Connectors::build`], of its siblings), with the OAuth 2.0 tokens
    /// issued to it: masked in the upstream text that errors quote.
    masker: Masker,
    /// Headers carrying a credential (an `api_key` header, defaults set from
    /// `${env:...}`), redacted where headers are recorded.
    sensitive_headers: Vec<String>,
}

impl Connector {
    /// Builds a connector, resolving `${env:...}` in its URL, headers and auth.
    pub fn build(
        name: &str,
        config: &ConnectorConfig,
        env: &dyn Env,
    ) -> Result<Connector, BuildError> {
        Connector::build_masked_by(name, config, env, Masker::default())
    }

    /// Builds a connector whose credentials, configured and issued, are
    /// added to `masker` (shared by every connector of a project).
    fn build_masked_by(
        name: &str,
        config: &ConnectorConfig,
        env: &dyn Env,
        masker: Masker,
    ) -> Result<Connector, BuildError> {
        let config_error = |reason: String| BuildError::Config {
            connector: name.to_string(),
            reason,
        };
        let base_url =
            interpolate(&config.url, env).map_err(|e| config_error(format!("url: {e}")))?;
        // Messages quote the URL as written, never as resolved: a resolved
        // `${env:...}` may be a credential.
        let written = config.url.as_str();
        let parsed = reqwest::Url::parse(&base_url)
            .map_err(|e| config_error(format!("url `{written}`: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(config_error(format!(
                "url `{written}` must be an http:// or https:// URL with a host"
            )));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            // The request path is appended to the base URL, so a query here
            // would swallow it.
            return Err(config_error(format!(
                "url `{written}` must not have a query string or fragment; \
                 put query parameters on the step (or use `auth: {{api_key: {{query: ...}}}}`)"
            )));
        }
        let base = parsed.clone();
        let base_url = base_url.trim_end_matches('/').to_string();
        let mut secret_values: Vec<String> = Vec::new();
        if let Some(password) = parsed.password() {
            secret_values.push(password.to_string());
        }
        let shown_url = if parsed.password().is_some() {
            let mut masked = parsed;
            // Cannot fail: the URL has a host, so it can carry a password.
            let _ = masked.set_password(Some("****"));
            masked.as_str().trim_end_matches('/').to_string()
        } else {
            base_url.clone()
        };
        let mut headers = HeaderMap::new();
        let mut sensitive_headers: Vec<String> = Vec::new();
        for (key, value) in &config.headers {
            let resolved = interpolate(value, env)
                .map_err(|e| config_error(format!("header `{key}`: {e}")))?;
            let header_name = HeaderName::try_from(key.as_str())
                .map_err(|_| config_error(format!("`{key}` is not a valid header name")))?;
            let mut header_value = HeaderValue::try_from(resolved.as_str())
                .map_err(|_| config_error(format!("header `{key}` has an invalid value")))?;
            // A value taken from the environment is treated as a secret: HTTP/2
            // never indexes it and header debug output hides it.
            if value.contains("${") {
                header_value.set_sensitive(true);
                secret_values.push(resolved.clone());
                sensitive_headers.push(header_name.as_str().to_string());
            }
            headers.insert(header_name, header_value);
        }
        let filter = AddressFilter::build(&config.dangerous_allow_private).map_err(config_error)?;
        let tls = config.tls.as_ref().map(|tls| &tls.value);
        let outbound = Outbound {
            filter: &filter,
            tls,
        };
        let auth = Auth::build(
            name,
            config.auth.as_ref().map(|a| &a.value),
            env,
            &masker,
            &outbound,
        )?;
        secret_values.extend(auth.secret_values());
        if let Some(header) = auth.key_header() {
            sensitive_headers.push(header.as_str().to_string());
        }
        let timeout = config.timeout.map(|t| t.0).unwrap_or(DEFAULT_TIMEOUT);
        let client = outbound
            .client_builder()
            .map_err(config_error)?
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()?;
        let idempotency_header = match config.idempotency_header.as_deref() {
            Some("") => None,
            Some(header) => Some(HeaderName::try_from(header).map_err(|_| {
                config_error(format!("`{header}` is not a valid idempotency header name"))
            })?),
            None => Some(HeaderName::from_static("idempotency-key")),
        };
        let signer = config
            .sign
            .as_ref()
            .map(|sign| Signer::build(name, &sign.value, env))
            .transpose()?;
        if let Some(signer) = &signer {
            secret_values.push(signer.secret_value().to_string());
        }
        masker.add(secret_values);
        let redirects = RedirectPolicy::build(config.redirects.as_ref().map(|r| &r.value))
            .map_err(config_error)?;
        Ok(Connector {
            name: name.to_string(),
            base_url,
            shown_url,
            base,
            client,
            filter,
            redirects,
            headers,
            auth,
            timeout,
            max_response_bytes: config
                .max_response_bytes
                .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES),
            retry: config
                .retry
                .as_ref()
                .map(RetryPolicy::from)
                .unwrap_or_default(),
            idempotency_header,
            signer,
            throttle: crate::ratelimit::Throttle::build(name, config.rate_limit.as_ref())
                .map_err(config_error)?,
            breaker: crate::breaker::Breaker::build(name, &config.circuit_breaker)
                .map_err(config_error)?,
            recent: crate::recent::RecentCalls::default(),
            masker,
            sensitive_headers,
        })
    }

    /// Masks this connector's credentials in `text`.
    pub fn mask(&self, text: &str) -> String {
        self.masker.mask(text)
    }

    /// The masker of this connector's credentials.
    pub fn masker(&self) -> &Masker {
        &self.masker
    }

    /// Headers of this connector that carry a credential (its `api_key`
    /// header, `${env:...}` defaults), lower case.
    pub fn sensitive_headers(&self) -> &[String] {
        &self.sensitive_headers
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The resolved base URL, without a trailing slash. It may hold a
    /// credential (userinfo): never show it.
    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The query parameter carrying an `api_key` credential, if any.
    pub(crate) fn credential_query_param(&self) -> Option<&str> {
        match &self.auth {
            Auth::QueryKey { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The connector's retry policy (a step may replace it).
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// Attaches the store that keeps rotated OAuth 2.0 refresh tokens; a
    /// token saved there replaces the configured one. No effect without
    /// `oauth2` auth.
    pub fn set_token_store(&self, store: Arc<dyn TokenStore>) {
        self.auth.set_token_store(store);
    }

    /// Whether calls carry idempotency keys at all.
    pub fn sends_idempotency_keys(&self) -> bool {
        self.idempotency_header.is_some()
    }

    /// What the journal records of a request: method, URL and query, without
    /// credentials (query-string keys are added after this summary is made,
    /// and a password in the base URL is masked).
    pub fn summarize(&self, request: &CallRequest) -> Value {
        let mut summary = Map::new();
        summary.insert("connector".into(), self.name.clone().into());
        summary.insert("method".into(), request.method.clone().into());
        summary.insert(
            "url".into(),
            format!("{}{}", self.shown_url, request.path).into(),
        );
        if !request.query.is_empty() {
            let query: Map<String, Value> = request
                .query
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            summary.insert("query".into(), Value::Object(query));
        }
        Value::Object(summary)
    }

    /// Sends one request and reads its JSON response.
    pub async fn call(&self, request: &CallRequest) -> Result<Response, CallError> {
        let started = tokio::time::Instant::now();
        let result = match tokio::time::timeout(self.timeout, self.exchange(request)).await {
            Ok(result) => result,
            Err(_) => Err(CallError::Timeout {
                connector: self.name.clone(),
                method: request.method.clone(),
                path: request.path.clone(),
                after: started.elapsed(),
            }),
        };
        self.recent.record(started.elapsed(), &result);
        result
    }

    async fn exchange(&self, request: &CallRequest) -> Result<Response, CallError> {
        let invalid = |reason: String| CallError::InvalidRequest {
            connector: self.name.clone(),
            method: request.method.clone(),
            path: request.path.clone(),
            reason,
        };
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| invalid(format!("`{}` is not an HTTP method", request.method)))?;
        if !request.path.starts_with('/') {
            // Without the slash the path would continue the host name
            // (`https://api.example.com` + `.evil.net/`) and carry the
            // credential elsewhere.
            return Err(invalid("the path must start with `/`".into()));
        }
        let mut url = reqwest::Url::parse(&format!("{}{}", self.base_url, request.path))
            .map_err(|e| invalid(format!("bad URL: {e}")))?;
        if !request.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in &request.query {
                pairs.append_pair(key, value);
            }
        }
        self.auth.apply_to_url(&mut url);
        let mut own = HeaderMap::new();
        for (key, value) in &request.headers {
            let name = HeaderName::try_from(key.as_str())
                .map_err(|_| invalid(format!("`{key}` is not a valid header name")))?;
            let value = HeaderValue::try_from(value.as_str())
                .map_err(|_| invalid(format!("header `{key}` has an invalid value")))?;
            // `append`: a request may repeat a header on purpose.
            own.append(name, value);
        }
        let mut headers = self.headers.clone();
        for name in own.keys() {
            headers.remove(name);
        }
        for (name, value) in &own {
            headers.append(name, value.clone());
        }
        if let (Some(name), Some(key)) = (&self.idempotency_header, &request.idempotency_key) {
            let key = HeaderValue::try_from(key.as_str())
                .map_err(|_| invalid("the idempotency key is not a valid header value".into()))?;
            headers.insert(name.clone(), key);
        }
        self.auth
            .apply_to_headers(&mut headers)
            .map_err(|_| invalid("the credential cannot be sent in a header".into()))?;
        // Serialized once: these bytes are what is signed and what is sent,
        // on every attempt.
        let body = match &request.body {
            Some(body) => {
                if !headers.contains_key(CONTENT_TYPE) {
                    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                }
                let bytes = serde_json::to_vec(body)
                    .map_err(|e| invalid(format!("the body cannot be serialized: {e}")))?;
                Some(Bytes::from(bytes))
            }
            None => None,
        };
        let outgoing = Outgoing {
            method,
            url,
            headers,
            body,
        };
        let Some(oauth) = self.auth.oauth2() else {
            return self.send_once(request, &outgoing, None).await;
        };
        let token = oauth
            .token()
            .await
            .map_err(|e| self.auth_error(request, e))?;
        match self.send_once(request, &outgoing, Some(&token)).await {
            // Revoked, or expired earlier than announced: one new token and
            // one more try (a 401 means the request was not acted on). A
            // second 401 is the answer.
            Err(CallError::Status { status: 401, .. }) => {
                let token = oauth
                    .token_after_rejection(&token)
                    .await
                    .map_err(|e| self.auth_error(request, e))?;
                self.send_once(request, &outgoing, Some(&token)).await
            }
            other => other,
        }
    }

    /// One attempt: adds the token and signature, sends, reads the answer,
    /// following the redirects the connector allows.
    async fn send_once(
        &self,
        request: &CallRequest,
        outgoing: &Outgoing,
        token: Option<&Token>,
    ) -> Result<Response, CallError> {
        // Borrowed until a redirect is followed: the first hop costs what a
        // call without redirect support did.
        let mut method = Cow::Borrowed(&outgoing.method);
        let mut url = Cow::Borrowed(&outgoing.url);
        let mut body = outgoing.body.as_ref();
        // Whether the hop is on the connector's own origin, the only one
        // its credentials go to.
        let mut on_origin = true;
        let mut hops = 0;
        loop {
            self.filter
                .check_url(&url)
                .map_err(|refusal| self.address_refused(request, refusal))?;
            let headers = if on_origin {
                self.credentialed(outgoing, &method, &url, body.map(|b| &b[..]), token)
            } else {
                self.uncredentialed(outgoing, body.is_some())
            };
            let mut builder = self
                .client
                .request((*method).clone(), (*url).clone())
                .headers(headers);
            if let Some(body) = body {
                builder = builder.body(body.clone());
            }
            let response = builder
                .send()
                .await
                .map_err(|e| self.transport_error(request, e))?;
            let status = response.status();
            if !crate::redirect::is_redirect(status) {
                return self
                    .read_response(response, request, method.into_owned())
                    .await;
            }
            let hop = self
                .redirects
                .next(
                    &self.base,
                    &url,
                    &method,
                    status,
                    crate::redirect::location(&response),
                    hops,
                )
                .map_err(|refused| CallError::RedirectRefused {
                    connector: self.name.clone(),
                    method: request.method.clone(),
                    path: request.path.clone(),
                    status: status.as_u16(),
                    origin: refused.origin,
                    reason: refused.reason,
                })?;
            hops += 1;
            let mut next = hop.url;
            on_origin = next.origin() == self.base.origin();
            self.credential_in_query(&mut next, on_origin);
            url = Cow::Owned(next);
            method = Cow::Owned(hop.method);
            if !hop.keeps_body {
                body = None;
            }
        }
    }

    /// The headers of a hop on the connector's origin: everything, with the
    /// token and a signature over this hop's method, URL and body.
    fn credentialed(
        &self,
        outgoing: &Outgoing,
        method: &reqwest::Method,
        url: &reqwest::Url,
        body: Option<&[u8]>,
        token: Option<&Token>,
    ) -> HeaderMap {
        let mut headers = outgoing.headers.clone();
        if let Some(token) = token {
            headers.insert(AUTHORIZATION, token.header().clone());
        }
        crate::trace_context::inject(&tracing::Span::current(), &mut headers);
        if let Some(signer) = &self.signer {
            let signed = Signed {
                method: method.as_str(),
                url,
                body: body.unwrap_or_default(),
            };
            signer.sign(&signed, &mut headers);
        }
        headers
    }

    /// The headers of a hop to another origin: the request's own and the
    /// connector's plain defaults, without any credential.
    fn uncredentialed(&self, outgoing: &Outgoing, has_body: bool) -> HeaderMap {
        let mut headers = outgoing.headers.clone();
        for name in [AUTHORIZATION, PROXY_AUTHORIZATION, COOKIE] {
            headers.remove(name);
        }
        for name in &self.sensitive_headers {
            headers.remove(name.as_str());
        }
        if !has_body {
            headers.remove(CONTENT_TYPE);
        }
        crate::trace_context::inject(&tracing::Span::current(), &mut headers);
        headers
    }

    /// A query-string credential goes with hops on the connector's origin
    /// (put back if the `Location` dropped it) and never elsewhere (taken
    /// out if the `Location` echoed it).
    fn credential_in_query(&self, url: &mut reqwest::Url, on_origin: bool) {
        let Some(param) = self.credential_query_param() else {
            return;
        };
        let present = url.query_pairs().any(|(key, _)| key == param);
        if on_origin && !present {
            self.auth.apply_to_url(url);
        } else if !on_origin && present {
            let kept: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(key, _)| key != param)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            url.set_query(None);
            if !kept.is_empty() {
                url.query_pairs_mut().extend_pairs(kept);
            }
        }
    }

    fn address_refused(&self, request: &CallRequest, refusal: AddressRefusal) -> CallError {
        CallError::AddressRefused {
            connector: self.name.clone(),
            method: request.method.clone(),
            path: request.path.clone(),
            refusal: Box::new(refusal),
        }
    }

    /// The start of an upstream's text, masked as a whole before it is cut
    /// (see [`crate::redact`]).
    fn masked_excerpt(&self, bytes: &[u8]) -> String {
        excerpt(&self.mask(&String::from_utf8_lossy(bytes)))
    }

    fn auth_error(&self, request: &CallRequest, error: TokenError) -> CallError {
        if let Some(refusal) = error.refused {
            return self.address_refused(request, refusal);
        }
        CallError::Auth {
            connector: self.name.clone(),
            method: request.method.clone(),
            path: request.path.clone(),
            reason: error.reason,
            transient: error.transient,
        }
    }

    async fn read_response(
        &self,
        response: reqwest::Response,
        request: &CallRequest,
        method: reqwest::Method,
    ) -> Result<Response, CallError> {
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let retry_after = crate::retry::parse_retry_after(response.headers());
            // Past the excerpt's bytes, as far as a secret starting inside
            // it can reach: the masker must see the whole of it.
            let limit = ERROR_BODY_BYTES + self.masker.longest();
            let bytes = read_error_body(response, limit).await;
            return Err(CallError::Status {
                connector: self.name.clone(),
                method: request.method.clone(),
                path: request.path.clone(),
                status,
                body: self.masked_excerpt(&bytes),
                retry_after,
            });
        }
        let headers = headers_to_json(response.headers());
        let bytes = self.read_body(response, request, status).await?;
        let unusable = |reason: String| CallError::InvalidResponse {
            connector: self.name.clone(),
            method: request.method.clone(),
            path: request.path.clone(),
            status,
            reason,
        };
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            if status == 204 || method == reqwest::Method::HEAD {
                Value::Null
            } else {
                return Err(unusable("the body is empty (expected JSON)".into()));
            }
        } else {
            serde_json::from_slice(&bytes).map_err(|e| {
                let content_type = headers
                    .get("content-type")
                    .and_then(Value::as_str)
                    .unwrap_or("none");
                unusable(format!(
                    "the body is not JSON ({e}; content-type {content_type}): {}",
                    self.masked_excerpt(&bytes)
                ))
            })?
        };
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    async fn read_body(
        &self,
        mut response: reqwest::Response,
        request: &CallRequest,
        status: u16,
    ) -> Result<Vec<u8>, CallError> {
        let too_large = || CallError::InvalidResponse {
            connector: self.name.clone(),
            method: request.method.clone(),
            path: request.path.clone(),
            status,
            reason: format!(
                "the body is larger than the limit of {} bytes",
                self.max_response_bytes
            ),
        };
        if response
            .content_length()
            .is_some_and(|len| len > self.max_response_bytes as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(request, e))?
        {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn transport_error(&self, request: &CallRequest, error: reqwest::Error) -> CallError {
        // `without_url`: the URL may carry a query-string credential.
        let error = error.without_url();
        if let Some(refusal) = crate::address_filter::find_refusal(&error) {
            return self.address_refused(request, refusal.clone());
        }
        if error.is_timeout() {
            return CallError::Timeout {
                connector: self.name.clone(),
                method: request.method.clone(),
                path: request.path.clone(),
                after: self.timeout,
            };
        }
        CallError::Connect {
            connector: self.name.clone(),
            method: request.method.clone(),
            path: request.path.clone(),
            reason: error_chain(&error),
        }
    }
}

/// The start of a non-2xx body (about `limit` bytes), for the error excerpt.
/// A body that breaks off keeps what arrived: the status is the news, not
/// the transport.
async fn read_error_body(mut response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body
}

/// What every HTTP client of a connector shares: its address filter and TLS.
pub(crate) struct Outbound<'a> {
    pub filter: &'a AddressFilter,
    pub tls: Option<&'a patchbay_config::ConnectorTlsConfig>,
}

impl Outbound<'_> {
    /// A client builder that follows no redirects (the connector does, see
    /// [`crate::redirect`]), never sends `Referer`, resolves names through
    /// the address filter and uses the connector's TLS settings.
    pub(crate) fn client_builder(&self) -> Result<reqwest::ClientBuilder, String> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("patchbay/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .referer(false);
        if let Some(resolver) = self.filter.resolver() {
            builder = builder.dns_resolver(resolver);
        }
        crate::tls::configure(builder, self.tls)
    }
}

/// A request ready to send but for its per-attempt token and signature.
struct Outgoing {
    method: reqwest::Method,
    url: reqwest::Url,
    headers: HeaderMap,
    body: Option<Bytes>,
}

fn excerpt(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars.by_ref().take(ERROR_EXCERPT_CHARS).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

impl std::fmt::Debug for Connector {
    /// Header names only and the masked URL: values may be credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let header_names: Vec<&str> = self.headers.keys().map(HeaderName::as_str).collect();
        f.debug_struct("Connector")
            .field("name", &self.name)
            .field("url", &self.shown_url)
            .field("headers", &header_names)
            .field("auth", &self.auth)
            .field("sign", &self.signer)
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish_non_exhaustive()
    }
}

/// Every connector of a project, by name.
#[derive(Clone, Debug, Default)]
pub struct Connectors {
    by_name: HashMap<String, Arc<Connector>>,
    /// Every connector's credentials, for masking what is journalled.
    masker: Masker,
}

impl Connectors {
    pub fn build(
        configs: &BTreeMap<String, Located<ConnectorConfig>>,
        env: &dyn Env,
    ) -> Result<Connectors, BuildError> {
        let mut by_name = HashMap::new();
        // One masker for all: a step's journal entry is masked of every
        // connector's credentials, tokens issued later included.
        let masker = Masker::default();
        for (name, config) in configs {
            let connector = Connector::build_masked_by(name, config, env, masker.clone())?;
            by_name.insert(name.clone(), Arc::new(connector));
        }
        Ok(Connectors { by_name, masker })
    }

    /// Masks the credentials of every connector (see [`crate::redact`]).
    pub fn masker(&self) -> &Masker {
        &self.masker
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Connector>> {
        self.by_name.get(name)
    }

    /// Every connector's name, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Attaches `store` to every connector (see [`Connector::set_token_store`]).
    pub fn set_token_store(&self, store: Arc<dyn TokenStore>) {
        for connector in self.by_name.values() {
            connector.set_token_store(Arc::clone(&store));
        }
    }
}
