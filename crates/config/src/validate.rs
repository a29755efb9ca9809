//! Cross-field checks that serde cannot express: connector settings, names,
//! and `${env:...}` references that must resolve.
//!
//! What needs the engine is checked there, with the same locations, when
//! the project is built: step and trigger kinds (each checks its own keys,
//! cron syntax and webhook paths included), jq expressions, webhook secrets
//! (resolved into their verifiers) and connectors (built with their
//! credentials).
//!
//! Every check adds to one [`Report`] rather than stopping at the first
//! problem, so `patchbay check` shows everything to fix in one pass.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use crate::connector::{
    AllowPrivate, ApiVersion, AuthConfig, ConnectorConfig, MAX_REDIRECTS, OAuth2Grant, RetryConfig,
};
use crate::diagnostic::{Diagnostic, Report};
use crate::flow::FlowConfig;
use crate::interpolate::{Env, interpolate};
use crate::located::Located;
use crate::project::Project;

/// Paths the server keeps for itself: no webhook may sit under them.
pub const RESERVED_PATHS: [&str; 4] = ["/api", "/healthz", "/metrics", "/ui"];

/// Checks a deserialized project's settings, connectors and triggers; its
/// steps are checked by the engine's step kinds as it compiles them.
pub fn project(project: &Project, env: &dyn Env) -> Report {
    let mut report = Report::default();
    let root = project.root_file.as_path();

    for (name, connector) in &project.config.connectors {
        let mut problems = Report::default();
        check_connector(root, name, connector, env, &mut problems);
        report.diagnostics.extend(
            problems
                .diagnostics
                .into_iter()
                .map(|d| d.in_connector(name)),
        );
    }
    check_settings(project, &mut report);
    check_store(project, env, &mut report);
    check_telemetry(project, &mut report);
    check_api(project, env, &mut report);

    for (name, flow) in &project.flows {
        let file = flow.file.as_path();
        if !is_identifier(name) {
            report.push(Diagnostic::new(
                file,
                0,
                0,
                format!("flow name `{name}` may only use letters, digits, `-` and `_`"),
            ));
        }
        check_steps(file, name, &flow.config, &mut report);
    }
    report
}

fn check_api_version(
    name: &str,
    connector: &ConnectorConfig,
    version: &Located<ApiVersion>,
    at: &dyn Fn(u64, u64, String) -> Diagnostic,
    report: &mut Report,
) {
    let mut problem = |message: String| report.push(at(version.line, version.column, message));
    let Some((header, value)) = version.header_pair() else {
        problem(format!(
            "connector `{name}`: `api_version` needs exactly one of `header` (e.g. \
             `{{value: \"2024-06-20\", header: Stripe-Version}}`) and `media_type`"
        ));
        return;
    };
    if version.value.value.trim().is_empty() {
        problem(format!("connector `{name}`: `api_version.value` is empty"));
    }
    if !is_header_name(&header) {
        problem(format!(
            "connector `{name}`: `api_version.header`: `{header}` is not a valid header name"
        ));
    } else if !is_header_value(&value) {
        problem(format!(
            "connector `{name}`: `api_version` holds a character that cannot be sent in an HTTP header"
        ));
    }
    if let Some(written) = connector
        .headers
        .keys()
        .find(|written| written.eq_ignore_ascii_case(&header))
    {
        problem(format!(
            "connector `{name}`: `api_version` sends `{header}`, which `headers` sets too (as `{written}`): keep one"
        ));
    }
}

fn check_store(project: &Project, env: &dyn Env, report: &mut Report) {
    let Some(postgres) = &project.config.store.postgres else {
        return;
    };
    let url = &postgres.url;
    let at = |message: String| Diagnostic::new(&project.root_file, url.line, url.column, message);
    if url.contains("${secret:") {
        report.push(at(
            "`store.postgres.url` cannot use `${secret:...}`: secrets are kept in the store itself; use `${env:NAME}`".to_string(),
        ));
        return;
    }
    match interpolate(url, env) {
        // The URL may hold a password: it is never quoted.
        Ok(resolved) => match url::Url::parse(&resolved) {
            Ok(parsed) if matches!(parsed.scheme(), "postgres" | "postgresql") => {}
            _ => report.push(at(
                "`store.postgres.url` must be a URL such as `postgres://user:password@host:5432/database`".to_string(),
            )),
        },
        Err(e) => report.push(at(format!("`store.postgres.url`: {e}"))),
    }
    if postgres.max_connections == Some(0) {
        report.push(at(
            "`store.postgres.max_connections` must be at least 1".to_string()
        ));
    }
    if postgres
        .acquire_timeout
        .is_some_and(|timeout| timeout.0.is_zero())
    {
        report.push(at(
            "`store.postgres.acquire_timeout` must be longer than 0s".to_string(),
        ));
    }
}

fn check_connector(
    file: &Path,
    name: &str,
    connector: &Located<ConnectorConfig>,
    env: &dyn Env,
    report: &mut Report,
) {
    let at = |located_line: u64, located_column: u64, message: String| {
        Diagnostic::new(file, located_line, located_column, message)
    };
    if !is_identifier(name) {
        report.push(at(
            connector.line,
            connector.column,
            format!("connector name `{name}` may only use letters, digits, `-` and `_`"),
        ));
    }
    match interpolate(&connector.url, env) {
        Ok(url) if url.starts_with("http://") || url.starts_with("https://") => {}
        Ok(url) => report.push(at(
            connector.url.line,
            connector.url.column,
            format!("connector `{name}`: url `{url}` must start with http:// or https://"),
        )),
        Err(e) => report.push(at(
            connector.url.line,
            connector.url.column,
            format!("connector `{name}` url: {e}"),
        )),
    }
    for (header, value) in &connector.headers {
        if !is_header_name(header) {
            report.push(at(
                value.line,
                value.column,
                format!("connector `{name}`: `{header}` is not a valid header name"),
            ));
        }
        match interpolate(value, env) {
            // The value may be a credential: it is never quoted.
            Ok(resolved) if !is_header_value(&resolved) => report.push(at(
                value.line,
                value.column,
                format!(
                    "connector `{name}` header `{header}`: the value holds a line break or \
                     another character that cannot be sent in an HTTP header"
                ),
            )),
            Ok(_) => {}
            Err(e) => report.push(at(
                value.line,
                value.column,
                format!("connector `{name}` header `{header}`: {e}"),
            )),
        }
    }
    if let Some(version) = &connector.api_version {
        check_api_version(name, connector, version, &at, report);
    }
    if let Some(auth) = &connector.auth {
        let values: Vec<&str> = match &auth.value {
            AuthConfig::ApiKey {
                header,
                query,
                value,
            } => {
                if header.is_some() == query.is_some() {
                    report.push(at(
                        auth.line,
                        auth.column,
                        format!(
                            "connector `{name}`: api_key needs exactly one of `header` or `query`"
                        ),
                    ));
                }
                vec![value]
            }
            AuthConfig::Bearer { token } => vec![token],
            AuthConfig::Basic { username, password } => vec![username, password],
            AuthConfig::OAuth2(oauth) => {
                if oauth.grant == OAuth2Grant::RefreshToken && oauth.refresh_token.is_none() {
                    report.push(at(
                        auth.line,
                        auth.column,
                        format!(
                            "connector `{name}`: the oauth2 refresh_token grant needs `refresh_token`"
                        ),
                    ));
                }
                [&oauth.token_url, &oauth.client_id]
                    .into_iter()
                    .chain(&oauth.client_secret)
                    .chain(&oauth.refresh_token)
                    .chain(&oauth.audience)
                    .chain(&oauth.scopes)
                    .map(String::as_str)
                    .collect()
            }
        };
        for value in values {
            if let Err(e) = interpolate(value, env) {
                report.push(at(
                    auth.line,
                    auth.column,
                    format!("connector `{name}` auth: {e}"),
                ));
            }
        }
    }
    if let Some(sign) = &connector.sign
        && let Err(e) = interpolate(&sign.secret, env)
    {
        report.push(at(
            sign.line,
            sign.column,
            format!("connector `{name}` sign: {e}"),
        ));
    }
    let in_flight = (connector.max_in_flight == Some(0))
        .then(|| "max_in_flight must be at least 1 (leave it out for no limit)".to_string());
    let limits = connector
        .rate_limit
        .iter()
        .flat_map(|r| r.problems())
        .chain(connector.circuit_breaker.problems())
        .chain(in_flight);
    for problem in limits {
        report.push(at(
            connector.line,
            connector.column,
            format!("connector `{name}`: {problem}"),
        ));
    }
    if let Some(contract) = &connector.contract {
        if connector.spec.is_none() {
            report.push(at(
                contract.line,
                contract.column,
                format!("connector `{name}`: `contract` needs a `spec` to hold replies against"),
            ));
        }
        let sample = contract.sample();
        if !(sample > 0.0 && sample <= 1.0) {
            report.push(at(
                contract.line,
                contract.column,
                format!("connector `{name}`: contract.sample must be more than 0 and at most 1"),
            ));
        }
    }
    if let Some(retry) = &connector.retry {
        check_retry(retry, &mut |message| {
            report.push(at(
                connector.line,
                connector.column,
                format!("connector `{name}`: {message}"),
            ))
        });
    }
    if connector.timeout.is_some_and(|t| t.0.is_zero()) {
        report.push(at(
            connector.line,
            connector.column,
            format!("connector `{name}`: timeout must be greater than zero"),
        ));
    }
    check_network(file, name, connector, report);
}

/// `dangerous_allow_private`, `redirects` and `tls`: CIDR blocks that parse,
/// redirect limits in range, and TLS files that exist and hold what they
/// should, so a broken certificate fails `check` rather than the first call.
fn check_network(file: &Path, name: &str, connector: &ConnectorConfig, report: &mut Report) {
    let allow = &connector.dangerous_allow_private;
    if let AllowPrivate::Cidrs(cidrs) = &allow.value {
        for cidr in cidrs {
            if let Err(e) = AllowPrivate::parse_cidr(cidr) {
                report.push(Diagnostic::new(
                    file,
                    allow.line,
                    allow.column,
                    format!("connector `{name}`: dangerous_allow_private: {e}"),
                ));
            }
        }
    }
    if let Some(redirects) = &connector.redirects {
        let mut problem = |message: String| {
            report.push(Diagnostic::new(
                file,
                redirects.line,
                redirects.column,
                format!("connector `{name}`: redirects: {message}"),
            ))
        };
        if redirects.max == 0 || redirects.max > MAX_REDIRECTS {
            problem(format!(
                "`max` must be between 1 and {MAX_REDIRECTS} (leave `redirects` out to follow none)"
            ));
        }
        for host in &redirects.allow_hosts {
            if !is_host_entry(host) {
                problem(format!(
                    "allow_hosts: `{host}` is not a host name or `host:port` \
                     (write `api2.example.com`, without scheme or path)"
                ));
            }
        }
    }
    if let Some(tls) = &connector.tls {
        if tls.client_cert.is_some() != tls.client_key.is_some() {
            report.push(Diagnostic::new(
                file,
                tls.line,
                tls.column,
                format!("connector `{name}`: tls: `client_cert` and `client_key` go together"),
            ));
        }
        let files = [
            ("ca", &tls.ca, PemKind::Certificates),
            ("client_cert", &tls.client_cert, PemKind::Certificates),
            ("client_key", &tls.client_key, PemKind::PrivateKey),
        ];
        for (key, path, kind) in files {
            let Some(path) = path else { continue };
            if let Err(e) = check_pem(&path.value, kind) {
                report.push(Diagnostic::new(
                    file,
                    path.line,
                    path.column,
                    format!(
                        "connector `{name}`: tls.{key} `{}`: {e}",
                        path.value.display()
                    ),
                ));
            }
        }
    }
}

/// An HTTP header value as connectors send it: visible ASCII, spaces and
/// tabs.
fn is_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

/// An `allow_hosts` entry: a host name or address, optionally `:port`.
fn is_host_entry(entry: &str) -> bool {
    !entry.is_empty()
        && !entry.contains(['/', '\\', '@', '?', '#', ' '])
        && url::Url::parse(&format!("http://{entry}")).is_ok_and(|url| url.host().is_some())
}

#[derive(Clone, Copy)]
enum PemKind {
    Certificates,
    PrivateKey,
}

/// Reads a PEM file and checks it holds at least one certificate, or a
/// private key.
fn check_pem(path: &Path, kind: PemKind) -> Result<(), String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    match kind {
        PemKind::Certificates => {
            let mut count = 0;
            for cert in CertificateDer::pem_slice_iter(&bytes) {
                cert.map_err(|e| format!("not a PEM certificate file: {e}"))?;
                count += 1;
            }
            if count == 0 {
                return Err("holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)".into());
            }
        }
        PemKind::PrivateKey => {
            PrivateKeyDer::from_pem_slice(&bytes)
                .map_err(|e| format!("holds no PEM private key: {e}"))?;
        }
    }
    Ok(())
}

/// Things that work but deserve a second look, for `patchbay check` to print
/// (and `run` to log) without failing: plain `http://` to an upstream that is
/// not on this machine, where credentials and data travel unencrypted.
pub fn warnings(project: &Project, env: &dyn Env) -> Vec<Diagnostic> {
    let file = project.root_file.as_path();
    let mut warnings = Vec::new();
    for (name, connector) in &project.config.connectors {
        let mut urls = vec![(
            "url",
            &connector.url.value,
            connector.url.line,
            connector.url.column,
        )];
        if let Some(auth) = &connector.auth
            && let AuthConfig::OAuth2(oauth) = &auth.value
        {
            urls.push((
                "auth.oauth2.token_url",
                &oauth.token_url,
                auth.line,
                auth.column,
            ));
        }
        for (key, written, line, column) in urls {
            let Ok(resolved) = interpolate(written, env) else {
                continue;
            };
            let Ok(url) = url::Url::parse(&resolved) else {
                continue;
            };
            if url.scheme() == "http" && !is_loopback_host(&url) {
                warnings.push(Diagnostic::new(
                    file,
                    line,
                    column,
                    format!(
                        "warning: connector `{name}`: {key} `{written}` is plain http:// to a host \
                         that is not this machine; credentials and data travel unencrypted \
                         (use https://)"
                    ),
                ));
            }
        }
    }
    warnings
}

fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Some(url::Host::Domain(host)) => {
            let host = host.trim_end_matches('.');
            host.eq_ignore_ascii_case("localhost")
                || host.to_ascii_lowercase().ends_with(".localhost")
        }
        None => false,
    }
}

pub fn check_retry(retry: &RetryConfig, report: &mut dyn FnMut(String)) {
    if retry.attempts == 0 {
        report("retry.attempts must be at least 1 (1 disables retries)".into());
    }
    if retry.attempts > 100 {
        report("retry.attempts must be at most 100".into());
    }
    if retry.backoff.min > retry.backoff.max {
        report("retry.backoff.min must not exceed retry.backoff.max".into());
    }
}

fn check_settings(project: &Project, report: &mut Report) {
    let file = project.root_file.as_path();
    let config = &project.config;
    if std::net::SocketAddr::from_str(&config.server.listen).is_err() {
        report.push(Diagnostic::new(
            file,
            0,
            0,
            format!(
                "server.listen `{}` is not an address like `127.0.0.1:8080`",
                config.server.listen
            ),
        ));
    }
    for (name, value) in [
        ("server.max_connections", config.server.max_connections),
        (
            "server.max_inflight_per_webhook",
            config.server.max_inflight_per_webhook,
        ),
    ] {
        if value == 0 {
            report.push(Diagnostic::new(
                file,
                0,
                0,
                format!("{name} must be at least 1"),
            ));
        }
    }
    for (name, value) in [
        ("server.header_timeout", config.server.header_timeout.0),
        ("server.body_timeout", config.server.body_timeout.0),
    ] {
        if value.is_zero() {
            report.push(Diagnostic::new(
                file,
                0,
                0,
                format!("{name} must be longer than 0s"),
            ));
        }
    }
    if config.engine.workers == 0 {
        report.push(Diagnostic::new(
            file,
            0,
            0,
            "engine.workers must be at least 1",
        ));
    }
    if config.engine.intake_batch == 0 {
        report.push(Diagnostic::new(
            file,
            0,
            0,
            "engine.intake_batch must be at least 1",
        ));
    }
    if config.engine.lease.0.as_millis() < 100 {
        report.push(Diagnostic::new(
            file,
            0,
            0,
            "engine.lease must be at least 100ms",
        ));
    }
    let engine = &config.engine;
    let expressions = &engine.expressions;
    for (name, zero) in [
        (
            "engine.max_claims_without_progress",
            engine.max_claims_without_progress == 0,
        ),
        (
            "engine.max_journal_entry_bytes",
            engine.max_journal_entry_bytes == 0,
        ),
        (
            "engine.max_run_output_bytes",
            engine.max_run_output_bytes == 0,
        ),
        ("engine.expressions.threads", expressions.threads == Some(0)),
        (
            "engine.expressions.max_memory_bytes",
            expressions.max_memory_bytes == 0,
        ),
        (
            "engine.expressions.max_output_bytes",
            expressions.max_output_bytes == 0,
        ),
        ("engine.expressions.time", expressions.time.0.is_zero()),
    ] {
        if zero {
            report.push(Diagnostic::new(
                file,
                0,
                0,
                format!("{name} must be more than 0"),
            ));
        }
    }
}

fn check_telemetry(project: &Project, report: &mut Report) {
    let file = project.root_file.as_path();
    let telemetry = &project.config.telemetry;
    if let Some(endpoint) = &telemetry.otlp_endpoint {
        let rest = endpoint
            .strip_prefix("http://")
            .or_else(|| endpoint.strip_prefix("https://"));
        if rest.is_none_or(|rest| rest.is_empty() || rest.starts_with('/')) {
            report.push(Diagnostic::new(
                file,
                0,
                0,
                format!(
                    "telemetry.otlp_endpoint `{endpoint}` must be an http:// or https:// URL, \
                     like `http://127.0.0.1:4318`"
                ),
            ));
        }
    }
    if !(0.0..=1.0).contains(&telemetry.sample_ratio) {
        report.push(Diagnostic::new(
            file,
            0,
            0,
            format!(
                "telemetry.sample_ratio must be between 0 and 1, not {}",
                telemetry.sample_ratio
            ),
        ));
    }
    if let Some(name) = telemetry.redact_headers.iter().find(|n| !is_header_name(n)) {
        report.push(Diagnostic::new(
            file,
            0,
            0,
            format!("telemetry.redact_headers: `{name}` is not a header name"),
        ));
    }
}

/// Shortest token accepted in `api.tokens[].token`: anything shorter could
/// be guessed by trying.
const MIN_API_TOKEN_CHARS: usize = 16;

fn check_api(project: &Project, env: &dyn Env, report: &mut Report) {
    let file = project.root_file.as_path();
    let api = &project.config.api;
    let mut names = HashMap::new();
    for token in &api.tokens {
        let at = |message: String| Diagnostic::new(file, token.line, token.column, message);
        let name = &token.name;
        if name.trim().is_empty() {
            report.push(at("api.tokens: every token needs a `name`".into()));
        } else if names.insert(name.as_str(), ()).is_some() {
            report.push(at(format!("api.tokens: the name `{name}` is used twice")));
        }
        match (&token.sha256, &token.token) {
            (Some(_), Some(_)) | (None, None) => report.push(at(format!(
                "api token `{name}`: give exactly one of `sha256` or `token`"
            ))),
            (Some(hash), None) => {
                if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                    report.push(at(format!(
                        "api token `{name}`: sha256 must be 64 hex digits (`patchbay token new` prints it)"
                    )));
                }
            }
            (None, Some(value)) => match interpolate(value, env) {
                Ok(value) if value.chars().count() < MIN_API_TOKEN_CHARS => report.push(at(format!(
                    "api token `{name}`: the token must be at least {MIN_API_TOKEN_CHARS} characters"
                ))),
                Ok(_) => {}
                Err(e) => report.push(at(format!("api token `{name}` token: {e}"))),
            },
        }
        if token.scopes.is_empty() {
            report.push(at(format!(
                "api token `{name}`: give at least one of the scopes read, operate, admin"
            )));
        }
    }
    if let Ok(listen) = std::net::SocketAddr::from_str(&project.config.server.listen)
        && !api.allows_listening_on(&listen)
    {
        report.push(Diagnostic::new(file, 0, 0, anonymous_api_refused(&listen)));
    }
}

/// Why a node refuses to serve the API without tokens on `listen`.
pub fn anonymous_api_refused(listen: &std::net::SocketAddr) -> String {
    format!(
        "the management API has no tokens (api.tokens) and would be open to anyone who can \
         reach {listen}, which is not a loopback address: add a token (`patchbay token new` \
         prints one) or listen on 127.0.0.1; `api.dangerous_allow_anonymous: true` serves it \
         open anyway"
    )
}

/// An HTTP header name: one or more token characters (RFC 9110).
pub fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Only what needs no knowledge of step kinds: the steps themselves are
/// checked by the engine's step kinds as it compiles them.
fn check_steps(file: &Path, flow_name: &str, flow: &FlowConfig, report: &mut Report) {
    if flow.steps.is_empty() {
        report.push(Diagnostic::new(
            file,
            flow.trigger.line,
            flow.trigger.column,
            format!("flow `{flow_name}` has no steps"),
        ));
    }
}

pub fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}
