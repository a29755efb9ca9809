//! [`MockUpstream`]: a scriptable HTTP server standing in for a third-party API.
//!
//! A test configures routes, points the code under test at [`MockUpstream::url`]
//! and then inspects what arrived:
//!
//! ```no_run
//! # async fn demo() {
//! use patchbay_testkit::{MockUpstream, Reply};
//! use serde_json::json;
//!
//! let mock = MockUpstream::start().await;
//! mock.route("POST", "/v1/charges", Reply::json(201, json!({"id": "ch_1"})));
//! // Two outages first, then the default reply.
//! mock.script("POST", "/v1/charges", [Reply::status(503), Reply::status(503)]);
//! // ... run the code under test against mock.url() ...
//! assert_eq!(mock.requests_to("POST", "/v1/charges").len(), 3);
//! # }
//! ```
//!
//! Life of a request: the body is read, the request is counted as in flight,
//! its route is looked up (taking the next scripted reply, if any) and it is
//! recorded — all before any reply is computed, so a test can observe a request
//! that has not been answered yet. Then the reply is computed (so a computed
//! route's side effects happen now), the request waits while the mock is
//! [held](MockUpstream::hold), sleeps for the reply's delay and is answered.
//! Holding therefore models the dangerous case for crash tests: the upstream has
//! acted, but the caller never hears about it. In-flight accounting uses a drop guard, so a request whose
//! client went away still leaves the count.
//!
//! Misbehaviour on demand: [`Reply::reset`] cuts the connection without an
//! answer, [`Reply::malformed_json`] and [`Reply::huge_json`] send bodies a
//! client must refuse, [`MockUpstream::set_latency`] slows every reply,
//! [`MockUpstream::enforce_rate_limit`] answers `429` to anything over a
//! strict limit (before routing: a rejected request has no side effect and
//! takes no scripted reply), and [`MockUpstream::idempotent`] adds an
//! idempotency-key store that counts side effects per key.
//!
//! State lives behind `std::sync::Mutex`es that are held only for in-memory
//! bookkeeping and never across an `.await`.

mod conn;
mod idempotency;
mod limit;
mod pattern;
mod reply;
mod request;
mod routes;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::header::ALLOW;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use reply::{Reply, ReplyBody};
pub use request::RecordedRequest;

use crate::TestkitError;
use crate::sync::lock;
use conn::{ConnHandle, ResettableListener};
use idempotency::{Idempotency, Verdict};
use limit::Gcra;
use pattern::PathPattern;
use reply::plain_json;
use routes::{DefaultReply, Dispatch, Routes, normalize_method};

/// Largest request body a mock reads; larger bodies get a 413.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// How long [`MockUpstream::shutdown`] lets open connections drain.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A scriptable mock HTTP API listening on a real loopback socket.
///
/// Dropping it stops the server; [`MockUpstream::shutdown`] also waits for it.
pub struct MockUpstream {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: Option<JoinHandle<()>>,
}

struct Shared {
    /// Route table; a std mutex suffices because lookups never await.
    routes: Mutex<Routes>,
    /// Recorded requests; a std mutex suffices because pushes never await.
    requests: Mutex<Vec<RecordedRequest>>,
    /// Whether request bodies and headers are kept (counting always happens).
    recording: AtomicBool,
    /// Number of requests received; a watch so waiters need not poll.
    received: watch::Sender<usize>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// `true` while replies are held back.
    held: watch::Sender<bool>,
    shutdown: CancellationToken,
    /// Added to every reply's delay.
    latency: Mutex<Duration>,
    /// The enforced rate limit, if any.
    rate_limit: Mutex<Option<Gcra>>,
    /// Requests answered 429 by the enforced rate limit.
    rejected: AtomicUsize,
    idempotency: Mutex<Idempotency>,
}

impl MockUpstream {
    /// Starts a mock on `127.0.0.1` with an ephemeral port.
    ///
    /// # Panics
    ///
    /// Panics if no loopback port can be bound, which leaves a test nothing
    /// to run against; use [`MockUpstream::start_on`] to handle that case.
    pub async fn start() -> Self {
        match Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await {
            Ok(mock) => mock,
            Err(err) => panic!("mock upstream failed to start: {err}"),
        }
    }

    /// Starts a mock listening on `addr` (port 0 picks a free port).
    pub async fn start_on(addr: SocketAddr) -> Result<Self, TestkitError> {
        let bind_error = |source| TestkitError::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local = listener.local_addr().map_err(bind_error)?;
        let shared = Arc::new(Shared {
            routes: Mutex::new(Routes::default()),
            requests: Mutex::new(Vec::new()),
            recording: AtomicBool::new(true),
            received: watch::Sender::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            held: watch::Sender::new(false),
            shutdown: CancellationToken::new(),
            latency: Mutex::new(Duration::ZERO),
            rate_limit: Mutex::new(None),
            rejected: AtomicUsize::new(0),
            idempotency: Mutex::new(Idempotency::default()),
        });
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared))
            .into_make_service_with_connect_info::<ConnHandle>();
        let stop = shared.shutdown.clone();
        let server = tokio::spawn(async move {
            // An accept loop error ends the mock; tests then see connection
            // errors, which is the honest symptom.
            let _ = axum::serve(ResettableListener(listener), app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        Ok(Self {
            shared,
            addr: local,
            server: Some(server),
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket address the mock listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets the default reply for `method` and `pattern` (`{name}` segments
    /// capture; method `*` matches any). Replaces an earlier default.
    pub fn route(&self, method: &str, pattern: &str, reply: Reply) {
        lock(&self.shared.routes).set_default(method, pattern, DefaultReply::Fixed(reply));
    }

    /// Sets a default reply computed from each request.
    pub fn route_fn<F>(&self, method: &str, pattern: &str, reply: F)
    where
        F: Fn(&RecordedRequest) -> Reply + Send + Sync + 'static,
    {
        lock(&self.shared.routes).set_default(
            method,
            pattern,
            DefaultReply::Computed(Arc::new(reply)),
        );
    }

    /// Answers every request whose path no route matches with a reply
    /// computed from it, instead of a 404: for servers that match requests
    /// on more than method and path (a fixture server matching bodies).
    pub fn fallback_fn<F>(&self, reply: F)
    where
        F: Fn(&RecordedRequest) -> Reply + Send + Sync + 'static,
    {
        lock(&self.shared.routes).set_fallback(Arc::new(reply));
    }

    /// Queues replies that are used, in order, before the route's default.
    /// A route whose script is used up and that has no default answers 404.
    pub fn script(&self, method: &str, pattern: &str, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.shared.routes).push_script(method, pattern, replies);
    }

    /// All recorded requests in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Recorded requests with `method` whose path matches `pattern`
    /// (a concrete path or a pattern with `{name}` segments).
    pub fn requests_to(&self, method: &str, pattern: &str) -> Vec<RecordedRequest> {
        let method = normalize_method(method);
        let pattern = PathPattern::parse(pattern);
        lock(&self.shared.requests)
            .iter()
            .filter(|r| r.method == method && pattern.matches(&r.path).is_some())
            .cloned()
            .collect()
    }

    /// Number of requests received so far (counted even when not recording).
    pub fn request_count(&self) -> usize {
        *self.shared.received.borrow()
    }

    /// Requests currently being handled (received, not yet answered).
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// Highest number of requests ever in flight at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Holds replies back: requests are still recorded on arrival, but none is
    /// answered until [`MockUpstream::release`].
    pub fn hold(&self) {
        self.shared.held.send_replace(true);
    }

    /// Lets held and future requests be answered.
    pub fn release(&self) {
        self.shared.held.send_replace(false);
    }

    /// Turns keeping request details on or off; long benchmarks turn it off
    /// so memory stays flat. Counts and in-flight tracking continue.
    pub fn set_recording(&self, on: bool) {
        self.shared.recording.store(on, Ordering::SeqCst);
    }

    /// Adds `latency` to every reply's own delay (scripted, default and
    /// computed replies alike); zero turns it off.
    pub fn set_latency(&self, latency: Duration) {
        *lock(&self.shared.latency) = latency;
    }

    /// Enforces a strict limit of `requests` per `per` on everything the
    /// mock receives, spaced evenly (no burst): a request that comes too
    /// early is answered `429` with `Retry-After` and counted in
    /// [`MockUpstream::rejected`]. Replaces an earlier limit.
    pub fn enforce_rate_limit(&self, requests: u32, per: Duration) {
        self.enforce_rate_limit_with_burst(requests, per, 1);
    }

    /// Like [`MockUpstream::enforce_rate_limit`], tolerating up to `burst`
    /// requests back to back (GCRA: `burst - 1` intervals of earliness).
    pub fn enforce_rate_limit_with_burst(&self, requests: u32, per: Duration, burst: u32) {
        *lock(&self.shared.rate_limit) = Some(Gcra::new(requests, per, burst));
    }

    /// Requests answered `429` by the enforced rate limit.
    pub fn rejected(&self) -> usize {
        self.shared.rejected.load(Ordering::SeqCst)
    }

    /// Makes `method` (`*` for any) on `pattern` honour `Idempotency-Key`:
    /// the first request per key is processed and counted as a side effect,
    /// repeats get the stored reply. See [`MockUpstream::side_effects`].
    pub fn idempotent(&self, method: &str, pattern: &str) {
        self.idempotent_with_header(method, pattern, "idempotency-key");
    }

    /// Like [`MockUpstream::idempotent`] with another key header.
    pub fn idempotent_with_header(&self, method: &str, pattern: &str, header: &str) {
        lock(&self.shared.idempotency).mark(method, pattern, header);
    }

    /// Side effects applied for idempotency key `key` on idempotent routes:
    /// 1 when every repeat was recognised, 0 when none succeeded.
    pub fn side_effects(&self, key: &str) -> usize {
        lock(&self.shared.idempotency).side_effects(key)
    }

    /// Side effects applied on idempotent routes in all, requests without a
    /// key included (each of those is one).
    pub fn side_effects_total(&self) -> usize {
        lock(&self.shared.idempotency).side_effects_total()
    }

    /// Requests answered from the idempotency store.
    pub fn replays(&self) -> usize {
        lock(&self.shared.idempotency).replays()
    }

    /// Waits until at least `n` requests have arrived; `false` on timeout.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let mut received = self.shared.received.subscribe();
        matches!(
            tokio::time::timeout(timeout, received.wait_for(|count| *count >= n)).await,
            Ok(Ok(_))
        )
    }

    /// Stops the server: held requests are answered 503, open connections
    /// get a short grace period, then the server task is aborted.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.cancel();
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut server)
                .await
                .is_err()
        {
            server.abort();
        }
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

impl std::fmt::Debug for MockUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockUpstream")
            .field("addr", &self.addr)
            .field("requests", &self.request_count())
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

/// Leaves the in-flight count when the handler ends, however it ends.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            return plain_json(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({ "error": "body_unreadable" }),
            );
        }
    };

    let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let _in_flight = InFlight(&shared.in_flight);

    // Tokio's clock: the wall clock, unless a test paused time, when arrival
    // times and the mock's own rate limit follow the paused clock.
    let arrived = tokio::time::Instant::now().into_std();
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let query_pairs = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
        .map(|Query(pairs)| pairs)
        .unwrap_or_default();
    let json = if body.is_empty() {
        None
    } else {
        serde_json::from_slice(&body).ok()
    };

    // Refused or replayed requests are answered without routing: they
    // have no side effect and take no scripted reply.
    let limited = lock(&shared.rate_limit)
        .as_mut()
        .and_then(|limit| limit.admit(arrived).err());
    let verdict = match limited {
        Some(wait) => {
            shared.rejected.fetch_add(1, Ordering::SeqCst);
            Verdict::Answer(Reply::too_many_requests(wait))
        }
        None => lock(&shared.idempotency).check(
            &method,
            &path,
            |name| {
                parts
                    .headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            },
            &body,
        ),
    };

    // Dispatch and record under the requests lock so scripted replies are
    // handed out in the same order as `seq`.
    let (dispatch, recorded) = {
        let mut requests = lock(&shared.requests);
        let dispatch = match &verdict {
            Verdict::Answer(_) => None,
            Verdict::Ordinary | Verdict::Process(_) => {
                Some(lock(&shared.routes).dispatch(&method, &path))
            }
        };
        let (route, params) = match &dispatch {
            Some(Dispatch::Matched { route, params, .. }) => (Some(route.clone()), params.clone()),
            _ => (None, Default::default()),
        };
        let recorded = RecordedRequest {
            seq: *shared.received.borrow(),
            method,
            path,
            query,
            query_pairs,
            headers: parts.headers,
            body,
            json,
            route,
            params,
            received_at: arrived,
        };
        if shared.recording.load(Ordering::SeqCst) {
            requests.push(recorded.clone());
        }
        shared.received.send_modify(|count| *count += 1);
        (dispatch, recorded)
    };

    let reply = match (verdict, dispatch) {
        (Verdict::Answer(reply), _) => reply,
        (verdict, Some(dispatch)) => {
            let reply = route_reply(dispatch, &recorded);
            if let Verdict::Process(key) = verdict {
                lock(&shared.idempotency).settle(key, &reply);
            }
            reply
        }
        // Unreachable by construction (only answers skip dispatch), and a
        // 500 is the honest symptom should that change.
        (_, None) => Reply::error(500, "not_dispatched"),
    };
    let delay = reply.delay + *lock(&shared.latency);

    let mut held = shared.held.subscribe();
    let answered = async {
        // The sender lives in `shared`, so this wait ends only by release.
        let _ = held.wait_for(|held| !*held).await;
        tokio::time::sleep(delay).await;
    };
    tokio::select! {
        () = answered => {
            if reply.reset
                && let Some(ConnectInfo(conn)) = parts.extensions.get::<ConnectInfo<ConnHandle>>()
            {
                conn.reset();
            }
            reply.into_response()
        }
        () = shared.shutdown.cancelled() => shutting_down(),
    }
}

/// The reply a routed request gets.
fn route_reply(dispatch: Dispatch, recorded: &RecordedRequest) -> Reply {
    match dispatch {
        Dispatch::Matched {
            reply: Some(DefaultReply::Fixed(reply)),
            ..
        } => reply,
        Dispatch::Matched {
            reply: Some(DefaultReply::Computed(f)),
            ..
        } => f(recorded),
        Dispatch::Matched { reply: None, .. } | Dispatch::NotFound => {
            Reply::error(404, "not_found")
        }
        Dispatch::MethodNotAllowed(allowed) => {
            Reply::error(405, "method_not_allowed").with_header(ALLOW.as_str(), &allowed.join(", "))
        }
    }
}

fn shutting_down() -> Response {
    let mut response = plain_json(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({ "error": "shutting_down" }),
    );
    response
        .headers_mut()
        .insert("connection", HeaderValue::from_static("close"));
    response
}
