//! [`Connector`]: one configured upstream API, built from its
//! configuration; and [`Connectors`], every connector of a project.
//!
//! This file owns the type and its build: it resolves `${env:...}` in the
//! URL, headers and auth, checks the URL, builds the HTTP client, the
//! credential ([`crate::auth`]), the signer, the redirect policy, the
//! throttle and the breaker, and gathers every secret into the masker. What
//! a connector does with all that lives elsewhere, one concern per file:
//! sending a call ([`crate::send`]), reporting health ([`crate::health`]),
//! GraphQL ([`crate::graphql`]) and pagination ([`crate::paginate`]). Their
//! `impl Connector` blocks read the fields here, which are crate-visible
//! for that reason.
//!
//! Secrets may hide in the base URL (userinfo), default headers and auth, so
//! `Debug` and [`Connector::summarize`] are built from redacted parts only,
//! and a build error quotes the URL as written, never as resolved. A
//! connector built with [`Connectors::build`] shares one masker with its
//! siblings, so whatever is journalled is masked of every connector's
//! credentials, OAuth 2.0 tokens issued later included.
//!
//! [`Outbound`] is the HTTP client setup that the connector and its OAuth 2.0
//! token client share: no redirects followed by reqwest (the connector
//! follows them itself, hop by hop), no `Referer`, names resolved through
//! the address filter ([`crate::address_filter`]), the connector's TLS
//! settings ([`crate::tls`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use patchbay_config::{ConnectorConfig, Env, Located, interpolate};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};

use crate::address_filter::AddressFilter;
use crate::auth::Auth;
use crate::call::CallRequest;
use crate::error::BuildError;
use crate::redact::Masker;
use crate::redirect::RedirectPolicy;
use crate::retry::RetryPolicy;
use crate::signing::Signer;
use crate::token_store::TokenStore;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_RESPONSE_BYTES: usize = 10 * 1024 * 1024;

/// One upstream API, ready to call. Cheap to share behind an `Arc`; the HTTP
/// client inside pools and reuses connections (keep-alive).
pub struct Connector {
    pub(crate) name: String,
    /// The resolved URL, without a trailing slash. It may hold a credential
    /// (userinfo): never show it.
    pub(crate) base_url: String,
    /// `base_url` with any userinfo password masked, for summaries and `Debug`.
    shown_url: String,
    /// `base_url` parsed: its origin is where credentials may go.
    pub(crate) base: reqwest::Url,
    pub(crate) client: reqwest::Client,
    /// Which inward addresses calls may reach; checked on every hop.
    pub(crate) filter: AddressFilter,
    pub(crate) redirects: RedirectPolicy,
    /// The configured default headers (the credential is added per request).
    pub(crate) headers: HeaderMap,
    pub(crate) auth: Auth,
    pub(crate) timeout: Duration,
    pub(crate) max_response_bytes: usize,
    retry: RetryPolicy,
    /// `None` when the connector sends no idempotency keys.
    pub(crate) idempotency_header: Option<HeaderName>,
    pub(crate) signer: Option<Signer>,
    /// Rate limit and upstream pauses, applied by `send`.
    pub(crate) throttle: crate::ratelimit::Throttle,
    /// `max_in_flight`'s slots, taken by each attempt before it is sent;
    /// `None` without a limit.
    pub(crate) in_flight: Option<crate::in_flight::InFlight>,
    /// None (`circuit_breaker: off`), one, or one per key.
    pub(crate) breakers: crate::breakers::Breakers,
    /// The last hour of calls, for health and the dashboard.
    pub(crate) recent: crate::recent::RecentCalls,
    /// What the upstream said of endpoints going away.
    pub(crate) notices: crate::deprecation::Notices,
    /// Every resolved credential of this connector (and, when built with
    /// [`Connectors::build`], of its siblings), with the OAuth 2.0 tokens
    /// issued to it: masked in the upstream text that errors quote.
    pub(crate) masker: Masker,
    /// Headers carrying a credential (an `api_key` header, defaults set from
    /// `${env:...}`), redacted where headers are recorded.
    pub(crate) sensitive_headers: Vec<String>,
    /// The API version the connector pins (`api_version.value`).
    pub(crate) api_version: Option<String>,
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
        let api_version = config.api_version.as_ref().map(|v| v.value.value.clone());
        if let Some((key, value)) = config.api_version.as_ref().and_then(|v| v.header_pair()) {
            let header_name = HeaderName::try_from(key.as_str())
                .map_err(|_| config_error(format!("`{key}` is not a valid header name")))?;
            let header_value = HeaderValue::try_from(value.as_str()).map_err(|_| {
                config_error("`api_version` cannot be sent in an HTTP header".to_string())
            })?;
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
            in_flight: crate::in_flight::InFlight::build(name, config.max_in_flight, timeout),
            breakers: crate::breakers::Breakers::build(name, &config.circuit_breaker)
                .map_err(config_error)?,
            recent: crate::recent::RecentCalls::default(),
            notices: crate::deprecation::Notices::default(),
            masker,
            sensitive_headers,
            api_version,
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
        // A Standard Webhooks signature names the message by its key.
        self.idempotency_header.is_some()
            || self.signer.as_ref().is_some_and(Signer::needs_message_id)
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

    /// Takes over, for each connector that calls the same base URL as one
    /// of `earlier` (the connectors a configuration reload replaces), what
    /// that one saw: its calls of the last hour, its last error, the
    /// upstream's quota and deprecation notices. The figures describe the
    /// upstream, not the configuration, so a reload must not blank them.
    /// Breakers, rate limits and tokens start afresh with their settings.
    pub fn carry_over_from(&self, earlier: &Connectors) {
        for (name, connector) in &self.by_name {
            if let Some(old) = earlier.by_name.get(name)
                && old.base_url == connector.base_url
                && !Arc::ptr_eq(old, connector)
            {
                connector.recent.adopt(&old.recent);
                connector.notices.adopt(&old.notices);
            }
        }
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

    /// Tells `shared` when a connector's circuit breaker opens on this
    /// node's failures (see [`crate::SharedBreakers`]).
    pub fn set_shared_breakers(&self, shared: Arc<dyn crate::SharedBreakers>) {
        for connector in self.by_name.values() {
            connector.breakers.share(Arc::clone(&shared));
        }
    }

    /// Tells `watch` of every change of a connector's circuit breaker (see
    /// [`crate::BreakerWatch`]).
    pub fn set_breaker_watch(&self, watch: Arc<dyn crate::BreakerWatch>) {
        for connector in self.by_name.values() {
            connector.breakers.watch(Arc::clone(&watch));
        }
    }

    /// Opens a circuit breaker for `open_for`, as another node's opened;
    /// nothing when there is no such breaker or it is open already.
    /// `breaker` is a connector's name, or `connector[key]` for one of its
    /// keyed breakers (as [`crate::SharedBreakers::opened`] names them).
    pub fn open_breaker_as_elsewhere(&self, breaker: &str, open_for: std::time::Duration) {
        let (connector, key) = match breaker.split_once('[') {
            Some((connector, key)) => (connector, key.strip_suffix(']')),
            None => (breaker, None),
        };
        if let Some(breaker) = self
            .by_name
            .get(connector)
            .and_then(|c| c.breakers.get_named(key))
        {
            breaker.open_as_elsewhere(open_for);
        }
    }

    /// Makes every connector's `rate_limit` a budget shared with the other
    /// nodes through `rate` (see [`crate::SharedRate`]).
    pub fn set_shared_rate(&self, rate: Arc<dyn crate::SharedRate>) {
        for connector in self.by_name.values() {
            connector.throttle.share(Arc::clone(&rate));
        }
    }

    /// Makes every connector's `max_in_flight` a limit on the calls the
    /// nodes sharing `slots` have on the wire together (see
    /// [`crate::SharedSlots`]).
    pub fn set_shared_slots(&self, slots: Arc<dyn crate::SharedSlots>) {
        for connector in self.by_name.values() {
            if let Some(in_flight) = &connector.in_flight {
                in_flight.share(Arc::clone(&slots));
            }
        }
    }
}
