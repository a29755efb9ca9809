//! `patchbay test --record`: runs a test's event once against the real
//! upstreams and writes what they answered as the test's fixtures, next to
//! it as `NAME.recorded.yaml`, for a person to review and keep.
//!
//! Each connector is pointed at a recording proxy on loopback that
//! forwards to the connector's real URL. What is written never holds a
//! credential: every value the project reads from `${env:...}` or
//! `${secret:...}`, and every credential header the connector sent (an
//! OAuth 2.0 token included), is replaced by `****` wherever it appears;
//! so are fields named like credentials (`password`, `token`,
//! `access_token`, ...) and the fields the test lists under
//! `record.redact`. Request headers are not written at all.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use patchbay_config::{Env, Project, interpolate};
use patchbay_engine::Build;
use serde::Serialize;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::error::FlowTestError;
use crate::file::{LoadedTest, ReplySpec, RequestMatcher};
use crate::run::{Upstreams, point_connectors, run_once};

/// Field names masked in every recorded body, whatever the test says.
pub const ALWAYS_REDACTED: [&str; 10] = [
    "password",
    "secret",
    "client_secret",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "api_key",
    "apikey",
    "authorization",
];

/// Request headers that carry credentials: their values are secrets.
const CREDENTIAL_HEADERS: [&str; 5] = [
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "cookie",
];

/// Response headers not worth keeping in a fixture (or unsafe to).
const DROPPED_RESPONSE_HEADERS: [&str; 9] = [
    "date",
    "set-cookie",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "server",
    "content-encoding",
    "vary",
];

const MASK: &str = "****";

/// One request a proxy forwarded and what came back.
#[derive(Clone, Debug)]
struct Exchange {
    connector: String,
    method: String,
    path: String,
    query: Vec<(String, String)>,
    body: Option<Value>,
    status: u16,
    headers: BTreeMap<String, String>,
    reply: Option<Value>,
}

#[derive(Default)]
struct Tape {
    exchanges: Vec<Exchange>,
    /// Credential header values seen on the way out.
    secrets: BTreeSet<String>,
}

struct Proxy {
    connector: String,
    target: String,
    client: reqwest::Client,
    tape: Arc<Mutex<Tape>>,
}

/// Runs `test` against the real upstreams with `env` (the project's real
/// variables and secrets) and writes `NAME.recorded.yaml` beside it.
/// Returns the path written.
pub async fn record(
    project_dir: &Path,
    test: &LoadedTest,
    env: &dyn Env,
    redact: &[String],
) -> Result<PathBuf, FlowTestError> {
    let (project, report) =
        Project::load_partial(project_dir, env).map_err(FlowTestError::Project)?;
    if !report.is_empty() {
        return Err(FlowTestError::Project(report));
    }
    let tape = Arc::new(Mutex::new(Tape::default()));
    let stop = CancellationToken::new();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| FlowTestError::Fixture(e.to_string()))?;
    let mut upstreams = Upstreams::new();
    for (name, connector) in &project.config.connectors {
        let real = interpolate(&connector.url, env)
            .map_err(|e| FlowTestError::Fixture(format!("connector `{name}`: url: {e}")))?;
        let origin = url::Url::parse(&real)
            .map(|url| url.origin().ascii_serialization())
            .map_err(|e| FlowTestError::Fixture(format!("connector `{name}`: url: {e}")))?;
        let proxy = Proxy {
            connector: name.clone(),
            target: origin,
            client: client.clone(),
            tape: Arc::clone(&tape),
        };
        upstreams.insert(name.clone(), serve(proxy, stop.clone()).await?);
    }
    let secrets = project_secrets(&project, env);
    let build = Build::load_adjusted(project_dir, env, |project| {
        point_connectors(project, &upstreams, env);
    })
    .map_err(FlowTestError::Project)?;
    let outcome = run_once(build, &test.test).await;
    stop.cancel();
    let (run, _, _, _) = outcome?;

    let tape = std::mem::take(&mut *tape.lock().unwrap_or_else(PoisonError::into_inner));
    let mut masked: BTreeSet<String> = secrets;
    masked.extend(tape.secrets.iter().cloned());
    // A bearer token is also sent bare (`Bearer abc` holds `abc`).
    for value in tape.secrets {
        if let Some((_, token)) = value.split_once(' ') {
            masked.insert(token.to_string());
        }
    }
    let fields: BTreeSet<String> = ALWAYS_REDACTED
        .iter()
        .map(|s| (*s).to_string())
        .chain(test.test.record.redact.iter().cloned())
        .chain(redact.iter().cloned())
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let mask = Mask {
        values: masked.into_iter().filter(|v| v.len() >= 4).collect(),
        fields,
    };
    let recorded = recorded_test(test, &tape.exchanges, run.status.as_str(), &mask);
    let text = serde_saphyr::to_string(&recorded)
        .map_err(|e| FlowTestError::Fixture(format!("cannot write the recording: {e}")))?;
    let path = recorded_path(project_dir, &test.path);
    std::fs::write(&path, text).map_err(|source| FlowTestError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Where the recording of the test at `shown` (relative to the project
/// when it is inside it) goes.
fn recorded_path(project_dir: &Path, shown: &Path) -> PathBuf {
    let full = if shown.is_absolute() {
        shown.to_path_buf()
    } else {
        project_dir.join(shown)
    };
    let stem = full
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    full.with_file_name(format!("{stem}.recorded.yaml"))
}

/// Every value the project reads from a variable or a secret.
fn project_secrets(project: &Project, env: &dyn Env) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for source in &project.sources {
        let mut rest = source.text.as_str();
        while let Some(start) = rest.find("${") {
            let Some(end) = rest[start..].find('}') else {
                break;
            };
            let reference = &rest[start..start + end + 1];
            if let Ok(value) = interpolate(reference, env)
                && value != reference
            {
                found.insert(value);
            }
            rest = &rest[start + end + 1..];
        }
    }
    found
}

async fn serve(proxy: Proxy, stop: CancellationToken) -> Result<String, FlowTestError> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .map_err(|e| FlowTestError::Fixture(e.to_string()))?;
    let address = listener
        .local_addr()
        .map_err(|e| FlowTestError::Fixture(e.to_string()))?;
    let app = axum::Router::new()
        .fallback(forward)
        .with_state(Arc::new(proxy));
    tokio::spawn(async move {
        // An accept error ends the proxy; the run then sees connection
        // errors, which the recording shows.
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
    });
    Ok(format!("http://{address}"))
}

/// Largest body a proxy forwards either way.
const MAX_BODY: usize = 16 * 1024 * 1024;

async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return status_only(StatusCode::PAYLOAD_TOO_LARGE);
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_string();
    let mut outgoing = proxy.client.request(
        parts.method.clone(),
        format!("{}{path_and_query}", proxy.target),
    );
    {
        let mut tape = proxy.tape.lock().unwrap_or_else(PoisonError::into_inner);
        for (name, value) in &parts.headers {
            if CREDENTIAL_HEADERS.contains(&name.as_str())
                && let Ok(value) = value.to_str()
            {
                tape.secrets.insert(value.to_string());
            }
        }
    }
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            outgoing = outgoing.header(name, value);
        }
    }
    let sent = outgoing.body(body.clone()).send().await;
    let (status, headers, reply_bytes) = match sent {
        Ok(response) => {
            let status = response.status();
            let headers = response.headers().clone();
            match response.bytes().await {
                Ok(bytes) => (status, headers, bytes),
                Err(_) => return status_only(StatusCode::BAD_GATEWAY),
            }
        }
        Err(_) => return status_only(StatusCode::BAD_GATEWAY),
    };
    let exchange = Exchange {
        connector: proxy.connector.clone(),
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(form_pairs).unwrap_or_default(),
        body: serde_json::from_slice(&body).ok(),
        status: status.as_u16(),
        headers: kept_headers(&headers),
        reply: serde_json::from_slice(&reply_bytes).ok(),
    };
    proxy
        .tape
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .exchanges
        .push(exchange);
    let mut response = Response::new(Body::from(reply_bytes));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if name != "content-length" && name != "transfer-encoding" && name != "connection" {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}

fn form_pairs(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn kept_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .filter(|(name, _)| !DROPPED_RESPONSE_HEADERS.contains(&name.as_str()))
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
        .collect()
}

fn status_only(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response.headers_mut().insert(
        "x-patchbay-record",
        HeaderValue::from_static("upstream-failed"),
    );
    response
}

/// What is masked in a recording.
struct Mask {
    /// Secret values, replaced wherever they occur in a string.
    values: Vec<String>,
    /// Field names (lower case) whose values are replaced whole.
    fields: BTreeSet<String>,
}

impl Mask {
    fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for value in &self.values {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), MASK);
            }
        }
        out
    }

    fn value(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.value(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let masked = if self.fields.contains(&k.to_ascii_lowercase()) {
                            Value::String(MASK.to_string())
                        } else {
                            self.value(v)
                        };
                        (self.text(k), masked)
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// The recorded test as written: the original event and expectations on
/// status and requests, the fixtures as answered.
#[derive(Serialize)]
struct Recorded {
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    flow: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<Value>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
    upstreams: BTreeMap<String, Vec<RecordedFixture>>,
    expect: RecordedExpect,
}

#[derive(Serialize)]
struct RecordedFixture {
    request: RequestMatcher,
    replies: Vec<ReplySpec>,
}

#[derive(Serialize)]
struct RecordedExpect {
    status: String,
    requests: BTreeMap<String, Vec<RequestMatcher>>,
}

fn recorded_test(test: &LoadedTest, exchanges: &[Exchange], status: &str, mask: &Mask) -> Recorded {
    let mut upstreams: BTreeMap<String, Vec<RecordedFixture>> = BTreeMap::new();
    let mut requests: BTreeMap<String, Vec<RequestMatcher>> = BTreeMap::new();
    for exchange in exchanges {
        let matcher = RequestMatcher {
            method: exchange.method.clone(),
            path: mask.text(&exchange.path),
            query: exchange
                .query
                .iter()
                .map(|(k, v)| {
                    let value = if mask.fields.contains(&k.to_ascii_lowercase()) {
                        MASK.to_string()
                    } else {
                        mask.text(v)
                    };
                    (k.clone(), Value::String(value))
                })
                .collect(),
            headers: BTreeMap::new(),
            body: exchange.body.as_ref().map(|b| mask.value(b)),
        };
        let reply = ReplySpec {
            status: Some(exchange.status),
            headers: exchange
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), mask.text(v)))
                .collect(),
            body: exchange.reply.as_ref().map(|b| mask.value(b)),
            delay: None,
            fault: None,
        };
        requests
            .entry(exchange.connector.clone())
            .or_default()
            .push(matcher.clone());
        // Requests alike (method, path, query, body) share one fixture,
        // its replies in the order they came.
        let fixtures = upstreams.entry(exchange.connector.clone()).or_default();
        let same = |f: &&mut RecordedFixture| {
            f.request.method == matcher.method
                && f.request.path == matcher.path
                && f.request.query == matcher.query
                && f.request.body == matcher.body
        };
        match fixtures.iter_mut().find(|f| same(f)) {
            Some(fixture) => fixture.replies.push(reply),
            None => fixtures.push(RecordedFixture {
                request: matcher,
                replies: vec![reply],
            }),
        }
    }
    let original = &test.test;
    Recorded {
        description: original.description.clone(),
        flow: original.flow.value.clone(),
        state: original.state.clone(),
        input: original.input.as_ref().map(|i| mask.value(i)),
        headers: original
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), mask.text(v)))
            .collect(),
        upstreams,
        expect: RecordedExpect {
            status: status.to_string(),
            requests,
        },
    }
}
