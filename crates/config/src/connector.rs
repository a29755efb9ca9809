//! Connector configuration: how to reach one upstream API.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;

use crate::duration::HumanDuration;
use crate::located::Located;

/// One upstream API. Values of `url`, `headers` and `auth` may use
/// `${env:NAME}`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectorConfig {
    /// Base URL; a step's path is appended to it (`http://host/api` +
    /// `/contacts`).
    pub url: Located<String>,
    /// What this API is, for people reading the project.
    #[serde(default)]
    pub description: Option<String>,
    /// Headers sent with every request.
    #[serde(default)]
    pub headers: BTreeMap<String, Located<String>>,
    /// Authentication added to every request.
    #[serde(default)]
    pub auth: Option<Located<AuthConfig>>,
    /// The API version this connector is pinned to, sent with every request
    /// (see [`ApiVersion`]). A version in the path is the URL's path
    /// (`url: https://api.example.com/v2`).
    #[serde(default)]
    pub api_version: Option<Located<ApiVersion>>,
    /// Deadline of one request, from connecting to the last body byte
    /// (default `30s`).
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
    /// Largest response body accepted, in bytes (default 10 MiB); a larger
    /// one is a step error.
    #[serde(default)]
    pub max_response_bytes: Option<usize>,
    /// How failed calls are retried (default: 3 attempts, backoff 200ms to 10s).
    #[serde(default)]
    pub retry: Option<RetryConfig>,
    /// Header carrying the idempotency key of `POST` and `PATCH` calls, and
    /// of any call whose step sets `idempotency_key` (default
    /// `Idempotency-Key`; an empty string sends none).
    #[serde(default)]
    pub idempotency_header: Option<String>,
    /// Client-side rate limit: calls wait for a slot instead of being sent
    /// over the limit (default: none, only the upstream's own signals).
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
    /// Most calls of this connector in flight at once on a node: an attempt
    /// waits for one of them to end before it is sent (default: no limit).
    /// For an upstream that refuses or slows down past a number of
    /// concurrent requests, whatever their rate.
    #[serde(default)]
    pub max_in_flight: Option<u32>,
    /// Fails calls fast while the upstream keeps failing (default: on, with
    /// the defaults of [`CircuitBreakerConfig`]; `off` disables it).
    #[serde(default)]
    pub circuit_breaker: CircuitBreakerConfig,
    /// HMAC signature added to every request (see [`SignConfig`]).
    #[serde(default)]
    pub sign: Option<Located<SignConfig>>,
    /// Inward addresses this connector may reach. By default every call
    /// to a loopback, private, link-local, cloud-metadata, carrier-grade
    /// NAT, multicast, unspecified, broadcast, documentation or
    /// benchmarking address (and their IPv4-mapped IPv6 forms) is refused
    /// before a packet is sent, whatever name resolved to it, on every
    /// redirect hop and for the OAuth 2.0 token endpoint too. `true` allows
    /// all of them (an upstream on this machine or the private network); a
    /// list of CIDR blocks (`[10.1.0.0/16, 127.0.0.1/32]`) allows just those.
    #[serde(default)]
    pub dangerous_allow_private: Located<AllowPrivate>,
    /// Redirects this connector follows. Default: none; a 3xx answer with a
    /// `Location` fails the step, naming where it pointed.
    #[serde(default)]
    pub redirects: Option<Located<RedirectConfig>>,
    /// TLS to an `https://` upstream: a private certificate authority and a
    /// client certificate (mutual TLS). Applies to the OAuth 2.0 token
    /// endpoint too.
    #[serde(default)]
    pub tls: Option<Located<ConnectorTlsConfig>>,
    /// Response headers a call's result keeps: what `$steps.ID.headers`
    /// holds, what the journal records and `runs show` prints. By default a
    /// result keeps them all when its flow's file or `patchbay.yaml`
    /// mentions `headers` anywhere, and none otherwise: most flows read a
    /// reply's status and body only, and the headers are most of a small
    /// reply's journal entry. `true` keeps them all; a list keeps the named
    /// ones as well (`[etag, x-request-id]`).
    #[serde(default)]
    pub response_headers: ResponseHeaders,
    /// The API's contract: an OpenAPI 3.0 or 3.1 document (YAML or JSON),
    /// a path relative to `patchbay.yaml`. `check` then holds every call
    /// through this connector against it: the operation exists, required
    /// parameters and body properties are given, and every field a flow
    /// reads from a reply is one the reply documents. A call may then name
    /// an operation by its `operationId` (`call: crm getContact`).
    #[serde(default)]
    pub spec: Option<Located<String>>,
    /// How replies are held against the `spec` at run time: `warn` (the
    /// default with a `spec`: a reply that differs from its documented
    /// response is recorded as drift and the step goes on), `enforce`
    /// (such a reply fails the step with class `contract`, never retried)
    /// or `off`. A mapping also sets the share of replies checked:
    /// `{mode: warn, sample: 0.1}`.
    #[serde(default)]
    pub contract: Option<Located<ContractSetting>>,
}

/// How a connector pins the version of its API: in a header
/// (`{value: "2024-06-20", header: Stripe-Version}`) or in the media type it
/// accepts (`{value: "2", media_type: "application/vnd.example.v{version}+json"}`,
/// sent as `Accept` with `{version}` replaced). Exactly one of `header` and
/// `media_type`. The version shows in the connector's health, and `check`
/// warns when the connector's `spec` describes another one.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiVersion {
    /// The version, as the provider names it (`2024-06-20`, `2022-11-28`).
    pub value: String,
    /// The header that carries it (`Stripe-Version`, `X-GitHub-Api-Version`).
    #[serde(default)]
    pub header: Option<String>,
    /// The media type that carries it, sent as `Accept`.
    #[serde(default)]
    pub media_type: Option<String>,
}

impl ApiVersion {
    /// The header name and value that pin the version.
    pub fn header_pair(&self) -> Option<(String, String)> {
        match (&self.header, &self.media_type) {
            (Some(header), None) => Some((header.clone(), self.value.clone())),
            (None, Some(media_type)) => Some((
                "accept".to_string(),
                media_type.replace("{version}", &self.value),
            )),
            _ => None,
        }
    }
}

/// How replies are held against a connector's contract (see
/// [`ConnectorConfig::contract`]).
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ContractSetting {
    /// `warn`, `enforce` or `off`, every reply checked.
    Mode(ContractMode),
    /// A mode and the share of replies checked.
    Sampled {
        mode: ContractMode,
        /// Share of replies checked, more than 0 and at most 1 (default 1).
        #[serde(default = "every_reply")]
        sample: f64,
    },
}

fn every_reply() -> f64 {
    1.0
}

impl ContractSetting {
    pub fn mode(&self) -> ContractMode {
        match self {
            ContractSetting::Mode(mode) | ContractSetting::Sampled { mode, .. } => *mode,
        }
    }

    pub fn sample(&self) -> f64 {
        match self {
            ContractSetting::Mode(_) => 1.0,
            ContractSetting::Sampled { sample, .. } => *sample,
        }
    }
}

/// What a reply that differs from the contract does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContractMode {
    /// Replies are not checked.
    Off,
    /// Recorded as drift; the step goes on.
    Warn,
    /// Recorded as drift, and the step fails (class `contract`).
    Enforce,
}

/// Which response headers a call's result keeps (see
/// [`ConnectorConfig::response_headers`]).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ResponseHeaders {
    /// `true`: all of them; `false` (the default): those its flow reads.
    All(bool),
    /// These, by name (any case), besides those its flow reads.
    Named(Vec<String>),
}

impl Default for ResponseHeaders {
    fn default() -> Self {
        ResponseHeaders::All(false)
    }
}

/// Which inward addresses a connector may reach (see
/// [`ConnectorConfig::dangerous_allow_private`]).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum AllowPrivate {
    /// `true`: every address; `false` (the default): none.
    All(bool),
    /// Only addresses inside these CIDR blocks (`127.0.0.1/32`, `fd00::/8`);
    /// a bare address is one host.
    Cidrs(Vec<String>),
}

impl Default for AllowPrivate {
    fn default() -> Self {
        AllowPrivate::All(false)
    }
}

impl AllowPrivate {
    /// Reads one entry of the CIDR list: a block (`10.1.0.0/16`) or a bare
    /// address (`10.1.2.3`, one host).
    pub fn parse_cidr(text: &str) -> Result<ipnet::IpNet, String> {
        let text = text.trim();
        text.parse::<ipnet::IpNet>()
            .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| {
                format!(
                    "`{text}` is not a CIDR block such as `10.1.0.0/16`, `127.0.0.1/32` or `fd00::/8`"
                )
            })
    }
}

/// Redirects a connector follows (see [`ConnectorConfig::redirects`]). Every
/// hop passes the same inward-address check as the first request; no
/// `Referer` is ever sent.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedirectConfig {
    /// Most redirects followed for one request, 1 to 20 (default 5).
    #[serde(default = "default_max_redirects")]
    pub max: u32,
    /// Other hosts a redirect may lead to (`api2.example.com`, or
    /// `api2.example.com:8443` for one port only). Without any, a redirect
    /// must stay on the connector's own origin (scheme, host and port).
    /// Credentials (the `auth` header or query key, signatures, headers
    /// set from `${env:...}` or `${secret:...}`) are never sent to another
    /// origin, and an `https://` connector is never redirected to `http://`.
    #[serde(default)]
    pub allow_hosts: Vec<String>,
}

fn default_max_redirects() -> u32 {
    5
}

/// Most redirects `redirects.max` may allow.
pub const MAX_REDIRECTS: u32 = 20;

/// TLS settings of a connector. Paths are relative to the project folder;
/// each file is read and checked when the configuration loads.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectorTlsConfig {
    /// PEM bundle of the certificate authorities trusted for this upstream,
    /// in place of the system's (a private CA).
    #[serde(default)]
    pub ca: Option<Located<PathBuf>>,
    /// PEM certificate chain presented to the upstream (mutual TLS); needs
    /// `client_key`.
    #[serde(default)]
    pub client_cert: Option<Located<PathBuf>>,
    /// PEM private key of `client_cert` (PKCS#8, PKCS#1 or SEC1).
    #[serde(default)]
    pub client_key: Option<Located<PathBuf>>,
}

impl ConnectorTlsConfig {
    /// Resolves relative paths against the project folder.
    pub(crate) fn resolve_paths(&mut self, dir: &Path) {
        for path in [&mut self.ca, &mut self.client_cert, &mut self.client_key]
            .into_iter()
            .flatten()
        {
            path.value = dir.join(&path.value);
        }
    }
}

/// Retries of one call. Transient failures (connect errors, timeouts, 5xx,
/// 408, 429) are retried with exponential backoff and full jitter; a
/// `Retry-After` header is honoured, capped by `backoff.max`. `POST` and
/// `PATCH` are retried only when the call carries an idempotency key.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts in all, the first included (1 disables retries). Default 3.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    #[serde(default)]
    pub backoff: BackoffConfig,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            attempts: default_attempts(),
            backoff: BackoffConfig::default(),
        }
    }
}

fn default_attempts() -> u32 {
    3
}

/// Exponential backoff bounds: the first wait is up to `min`, each next one
/// up to twice the previous, never more than `max`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BackoffConfig {
    pub min: HumanDuration,
    pub max: HumanDuration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            min: std::time::Duration::from_millis(200).into(),
            max: std::time::Duration::from_secs(10).into(),
        }
    }
}

/// Authentication of a connector.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    /// A key sent in a header (`header: X-Api-Key`) or in the query string
    /// (`query: api_key`).
    ApiKey {
        #[serde(default)]
        header: Option<String>,
        #[serde(default)]
        query: Option<String>,
        value: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer { token: String },
    /// `Authorization: Basic base64(username:password)`.
    Basic { username: String, password: String },
    /// `Authorization: Bearer <token>` with a token obtained from an OAuth 2.0
    /// token endpoint (RFC 6749) and refreshed before it expires.
    #[serde(rename = "oauth2")]
    OAuth2(OAuth2Config),
}

/// An OAuth 2.0 client. `token_url`, `client_id`, `client_secret`,
/// `refresh_token`, `audience` and `scopes` may use `${env:NAME}`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Config {
    /// The token endpoint (`https://auth.example.com/oauth/token`).
    pub token_url: String,
    pub client_id: String,
    /// Omitted for public clients, which then send only `client_id`.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Scopes asked for, sent space-separated as `scope`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Sent as the `audience` parameter (Auth0, Okta and others use it).
    #[serde(default)]
    pub audience: Option<String>,
    /// How tokens are obtained (default `client_credentials`).
    #[serde(default)]
    pub grant: OAuth2Grant,
    /// The refresh token of the `refresh_token` grant. A rotated token the
    /// server hands back is kept in the token store and takes precedence.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// How the client authenticates at the token endpoint (default `basic`).
    #[serde(default)]
    pub client_auth: OAuth2ClientAuth,
    /// How long before its expiry a token is replaced (default `30s`; a
    /// token living less than twice this is replaced at half its life).
    #[serde(default)]
    pub refresh_margin: Option<HumanDuration>,
}

/// The OAuth 2.0 grant used to obtain access tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OAuth2Grant {
    /// RFC 6749 section 4.4: the client's own credentials.
    #[default]
    ClientCredentials,
    /// RFC 6749 section 6: a long-lived refresh token.
    RefreshToken,
}

/// Where the client credentials go in a token request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OAuth2ClientAuth {
    /// HTTP Basic (`client_secret_basic`), the method every server must support.
    #[default]
    Basic,
    /// `client_id` and `client_secret` form fields (`client_secret_post`).
    Body,
}

/// A signature over each outbound request: a webhook scheme by name
/// (`scheme: standard_webhooks`, `stripe` or `github`, whose receivers
/// verify it with their own libraries), or a generic HMAC (`scheme: hmac`,
/// the default) for APIs that authenticate callers by a shared secret.
///
/// A generic HMAC signs `payload` with its placeholders replaced by the
/// exact bytes sent: `{method}` (upper case), `{path}` (the URL path as
/// sent, base path included), `{query}` (the query string as sent, without
/// `?`), `{timestamp}` (Unix seconds, also sent in `timestamp_header`) and
/// `{body}` (the raw body, empty when there is none). A named scheme fixes
/// all of these, so it takes only `secret`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignConfig {
    /// The shared key; use `${env:NAME}`. For `standard_webhooks`, a
    /// `whsec_` secret (base64 after the prefix); otherwise its UTF-8 bytes.
    pub secret: String,
    /// How the request is signed (default `hmac`).
    #[serde(default)]
    pub scheme: SignScheme,
    /// Hash function of the HMAC (default `sha256`).
    #[serde(default)]
    pub algorithm: Option<SignAlgorithm>,
    /// Header carrying the signature (default `X-Signature`).
    #[serde(default)]
    pub header: Option<String>,
    /// How the signature bytes are written (default `hex`, lower case).
    #[serde(default)]
    pub encoding: Option<SignEncoding>,
    /// Header carrying the timestamp; none is sent when omitted.
    #[serde(default)]
    pub timestamp_header: Option<String>,
    /// What is signed (default `{timestamp}.{body}` with a timestamp header,
    /// `{body}` without).
    #[serde(default)]
    pub payload: Option<String>,
    /// Text put before the encoded signature, e.g. `sha256=`.
    #[serde(default)]
    pub prefix: Option<String>,
}

impl SignConfig {
    /// The generic settings given, by key: a named scheme takes none.
    pub fn generic_keys(&self) -> Vec<&'static str> {
        [
            ("algorithm", self.algorithm.is_some()),
            ("header", self.header.is_some()),
            ("encoding", self.encoding.is_some()),
            ("timestamp_header", self.timestamp_header.is_some()),
            ("payload", self.payload.is_some()),
            ("prefix", self.prefix.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, given)| given.then_some(key))
        .collect()
    }
}

/// How an outbound request is signed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignScheme {
    /// A generic HMAC shaped by the other `sign` keys.
    #[default]
    Hmac,
    /// Standard Webhooks: `webhook-id` (the call's idempotency key, the
    /// same on every attempt), `webhook-timestamp`, `webhook-signature`.
    StandardWebhooks,
    /// Stripe: `Stripe-Signature: t=<unix>,v1=<hex>`.
    Stripe,
    /// GitHub: `X-Hub-Signature-256: sha256=<hex>` over the body.
    Github,
}

/// Hash function of a request signature.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignAlgorithm {
    #[default]
    Sha256,
    Sha512,
}

/// Text encoding of a request signature.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignEncoding {
    /// Lower-case hexadecimal.
    #[default]
    Hex,
    /// Standard base64 with padding.
    Base64,
}

/// `requests` calls per `per`, smoothed by GCRA: calls are spaced
/// `per / requests` apart, and up to `burst` may go back to back after a
/// quiet spell. A call over the limit waits for its slot, at most `max_wait`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Calls allowed per `per`; at least 1.
    pub requests: u32,
    /// The period `requests` refers to (default `1s`).
    #[serde(default = "default_rate_period")]
    pub per: HumanDuration,
    /// Calls that may go back to back after a quiet spell (default 1: evenly
    /// spaced).
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// Longest a call waits for its slot, or for a pause the upstream asked
    /// for, before it fails as rate limited (default `30s`).
    #[serde(default = "default_max_wait")]
    pub max_wait: HumanDuration,
    /// A jq expression evaluated per call; calls with different values get
    /// separate limits (e.g. one per tenant). Default: one limit for all.
    #[serde(default)]
    pub key: Option<Located<String>>,
}

fn default_rate_period() -> HumanDuration {
    std::time::Duration::from_secs(1).into()
}

fn default_burst() -> u32 {
    1
}

/// The longest wait for a rate-limit slot or an upstream pause (`30s`), also
/// used when the connector has no `rate_limit`.
pub fn default_max_wait() -> HumanDuration {
    std::time::Duration::from_secs(30).into()
}

/// Circuit breaker of one connector. It opens when, over the last `window`,
/// at least `min_calls` calls were made and at least `failure_rate` percent
/// of them failed (5xx, timeout, connection error; never 4xx or 429). While
/// open, calls fail at once without reaching the upstream; after `open_for`
/// up to `half_open_calls` probe calls go through, and the first outcome
/// closes it (success) or opens it again (failure).
///
/// Written as a map of the fields below, or `off` / `false` to disable it.
#[derive(Clone, Debug, PartialEq)]
pub struct CircuitBreakerConfig {
    /// Default `true`; `circuit_breaker: off` is the short form of `false`.
    pub enabled: bool,
    /// Percentage of failed calls that opens the breaker, in (0, 100]
    /// (default 50); written `50` or `50%`.
    pub failure_rate: f64,
    /// Calls needed in the window before the rate is judged (default 20).
    pub min_calls: u32,
    /// Length of the sliding window (default `60s`).
    pub window: HumanDuration,
    /// How long the breaker stays open before probing (default `30s`).
    pub open_for: HumanDuration,
    /// Probe calls let through while half-open (default 1).
    pub half_open_calls: u32,
    /// A jq expression evaluated per call, over `{connector, method, path,
    /// flow, step}` (`path` as the step writes it, `/orders/{id}`) with
    /// the run's variables; calls with different values get breakers of
    /// their own. Default: one breaker for the connector.
    pub key: Option<Located<String>>,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        CircuitBreakerFields::default().into_config(true)
    }
}

/// The map form of [`CircuitBreakerConfig`].
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(rename = "CircuitBreaker")]
struct CircuitBreakerFields {
    /// Default `true`.
    enabled: bool,
    /// Percentage of failed calls in the window that opens the breaker
    /// (default 50); `50` or `"50%"`.
    #[serde(deserialize_with = "percent")]
    #[schemars(schema_with = "percent_schema")]
    failure_rate: f64,
    /// Calls needed in the window before the rate is judged (default 20).
    min_calls: u32,
    /// Length of the sliding window (default `60s`).
    window: HumanDuration,
    /// How long the breaker stays open before probing (default `30s`).
    open_for: HumanDuration,
    /// Probe calls let through while half-open (default 1).
    half_open_calls: u32,
    /// A jq expression over `{connector, method, path, flow, step}` and the
    /// run's variables: calls with different values get breakers of their
    /// own (e.g. `'"\(.method) \(.path)"'` for one per endpoint,
    /// `$event.tenant` for one per tenant). Default: one per connector.
    key: Option<Located<String>>,
}

impl Default for CircuitBreakerFields {
    fn default() -> Self {
        CircuitBreakerFields {
            enabled: true,
            failure_rate: 50.0,
            min_calls: 20,
            window: std::time::Duration::from_secs(60).into(),
            open_for: std::time::Duration::from_secs(30).into(),
            half_open_calls: 1,
            key: None,
        }
    }
}

impl CircuitBreakerFields {
    fn into_config(self, enabled: bool) -> CircuitBreakerConfig {
        CircuitBreakerConfig {
            enabled: enabled && self.enabled,
            failure_rate: self.failure_rate,
            min_calls: self.min_calls,
            window: self.window,
            open_for: self.open_for,
            half_open_calls: self.half_open_calls,
            key: self.key,
        }
    }
}

impl<'de> Deserialize<'de> for CircuitBreakerConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = CircuitBreakerConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`off`, `on`, a boolean or a map of circuit breaker settings")
            }
            fn visit_bool<E: serde::de::Error>(self, on: bool) -> Result<Self::Value, E> {
                Ok(CircuitBreakerFields::default().into_config(on))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                match text.trim() {
                    "off" | "false" => self.visit_bool(false),
                    "on" | "true" => self.visit_bool(true),
                    other => Err(E::custom(format!(
                        "`{other}` is not a circuit breaker setting (write `off` or a map)"
                    ))),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                let fields = CircuitBreakerFields::deserialize(
                    serde::de::value::MapAccessDeserializer::new(map),
                )?;
                Ok(fields.into_config(true))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl JsonSchema for CircuitBreakerConfig {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CircuitBreakerSetting".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let fields = generator.subschema_for::<CircuitBreakerFields>();
        schemars::json_schema!({
            "description": "Circuit breaker settings, or `off` to disable it.",
            "anyOf": [
                { "type": "boolean" },
                { "type": "string", "enum": ["off", "on"] },
                fields
            ]
        })
    }
}

/// A percentage written as a number (`50`) or with a sign (`"50%"`).
/// A percentage, written `50` or `"50%"`: the form `circuit_breaker.
/// failure_rate` takes, for settings elsewhere that are percentages too.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Percent(pub f64);

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        percent(deserializer).map(Percent)
    }
}

impl JsonSchema for Percent {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Percent".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        percent_schema(generator)
    }
}

fn percent<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = f64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a percentage such as `50` or `50%`")
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<f64, E> {
            let number = text.trim().trim_end_matches('%').trim();
            number
                .parse()
                .map_err(|_| E::custom(format!("`{text}` is not a percentage (write e.g. `50%`)")))
        }
    }
    deserializer.deserialize_any(Visitor)
}

fn percent_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "A percentage: `50` or `\"50%\"`.",
        "anyOf": [
            { "type": "number", "exclusiveMinimum": 0, "maximum": 100 },
            { "type": "string", "pattern": "^\\s*[0-9]+(\\.[0-9]+)?\\s*%\\s*$" }
        ]
    })
}

impl CircuitBreakerConfig {
    /// Values that no breaker can work with; `patchbay check` reports them
    /// and a connector refuses to build with them.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.enabled {
            return problems;
        }
        if !(self.failure_rate > 0.0 && self.failure_rate <= 100.0) {
            problems.push(format!(
                "circuit_breaker.failure_rate must be above 0% and at most 100%, not {}%",
                self.failure_rate
            ));
        }
        if self.min_calls == 0 {
            problems.push("circuit_breaker.min_calls must be at least 1".into());
        }
        if self.half_open_calls == 0 {
            problems.push("circuit_breaker.half_open_calls must be at least 1".into());
        }
        if self.window.0.is_zero() || self.open_for.0.is_zero() {
            problems.push("circuit_breaker.window and open_for must be longer than 0s".into());
        }
        problems
    }
}

impl RateLimitConfig {
    /// Values that no limiter can pace; see [`CircuitBreakerConfig::problems`].
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.requests == 0 {
            problems.push("rate_limit.requests must be at least 1".into());
        }
        if self.burst == 0 {
            problems.push("rate_limit.burst must be at least 1".into());
        }
        if self.requests > 0 && (self.per.0 / self.requests).is_zero() {
            problems.push(format!(
                "rate_limit: {} requests per {:?} is too fast to pace",
                self.requests, self.per.0
            ));
        }
        problems
    }
}
