//! The send pipeline: one call from [`Connector::send`] to the bytes on the
//! wire and back, in the order it runs.
//!
//! 1. **Retry** ([`Connector::send`]): attempts are repeated while the error
//!    [`is_retried_in_call`](CallError::is_retried_in_call) and the policy
//!    has attempts left. Only a request that may be repeated is: an
//!    idempotent method, or one carrying an idempotency key (otherwise a
//!    retry after a lost response could apply the side effect twice). The
//!    wait between attempts, full jitter or the upstream's `Retry-After`, is
//!    the policy's ([`crate::retry`]).
//! 2. **Span**: each attempt is an `upstream call` client span, whose ids
//!    travel to the upstream in `traceparent` ([`crate::trace_context`]).
//! 3. **Circuit breaker** ([`crate::breaker`]): admits the attempt, or it
//!    fails at once with [`CallError::CircuitOpen`].
//! 4. **Rate limit** ([`crate::ratelimit`]): waits for any pause the
//!    upstream asked for and for a slot of the call's rate key, or fails with
//!    [`CallError::RateLimited`] when that would outlast `max_wait`. Neither
//!    refusal is retried inside the call: waiting it out would hold a worker,
//!    while the run can be rescheduled after
//!    [`retry_after`](CallError::retry_after).
//!    Then the attempt takes one of the connector's `max_in_flight` slots,
//!    waiting for a call in flight to end when all are taken; the wait
//!    counts with the rate limit's in [`Delivered::waited`].
//! 5. **Timeout** ([`Connector::call`]): the rest runs under the connector's
//!    timeout, and its outcome is recorded for health ([`crate::recent`]).
//! 6. **Request and credential** (`exchange`): URL, query, headers,
//!    idempotency key, the configured credential, and the JSON body,
//!    serialized once so that the bytes signed are the bytes sent. With
//!    OAuth 2.0 the token is fetched here, and a 401 gets one new token and
//!    one more try ([`crate::oauth`]).
//! 7. **HTTP** (`send_once`): every hop passes the address filter
//!    ([`crate::address_filter`]) and gets its headers afresh: on the
//!    connector's origin with the credential, token and signature
//!    ([`crate::signing`]), elsewhere without any; redirects are followed
//!    here, hop by hop, only as configured ([`crate::redirect`]).
//! 8. **Response**: a 2xx body is read up to the size cap and parsed as
//!    JSON; of a non-2xx body only a masked excerpt is kept, so a large
//!    error page never turns a transient 503 into an invalid response.
//!
//! On the way back the attempt's outcome is fed to the breaker and the
//! throttle (which learns from `429`, `Retry-After` and quota headers to
//! pause the whole connector), and its events are emitted
//! ([`crate::events`]).
//!
//! Header precedence, lowest to highest: the connector's `headers`, the
//! request's own headers, the connector's credential. A request header
//! replaces a default of the same name rather than being sent next to it
//! (two `Accept` values confuse most APIs), and no step can swap the
//! configured credential for another.
//!
//! Every [`CallError`] is built from redacted parts: the upstream's text is
//! masked of every credential before it is cut to an excerpt
//! ([`crate::redact`]), and transport errors drop the URL, which may carry a
//! query-string credential.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::Retryable;
use bytes::Bytes;
use reqwest::header::{
    AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderMap, HeaderName, HeaderValue, PROXY_AUTHORIZATION,
};
use serde_json::Value;
use tracing::Instrument as _;

use crate::address_filter::AddressRefusal;
use crate::breaker::Outcome;
use crate::call::{CallRequest, Response, headers_to_json};
use crate::connector::Connector;
use crate::error::{CallError, error_chain};
use crate::events::{CallRefused, CallRetried, RateLimitWaited, Refusal, UpstreamResponded};
use crate::oauth::{Token, TokenError};
use crate::retry::{RetryPolicy, is_idempotent};
use crate::signing::Signed;

/// How much of an error body is kept for the journal and messages.
const ERROR_EXCERPT_CHARS: usize = 300;
/// How much of a non-2xx body is read: enough bytes for the excerpt even in
/// four-byte characters, plus one character to know there was more. An error
/// page is never rejected for its size, so a 503 stays a (transient) 503.
const ERROR_BODY_BYTES: usize = ERROR_EXCERPT_CHARS * 4 + 4;

/// A successful call and how many attempts it took.
#[derive(Clone, Debug)]
pub struct Delivered {
    pub response: Response,
    pub attempts: u32,
    /// Time spent waiting for rate-limit slots, upstream pauses and
    /// `max_in_flight` slots, over all attempts (backoff between attempts
    /// not included).
    pub waited: Duration,
}

/// A failed call and how many attempts were made.
#[derive(Debug)]
pub struct Undelivered {
    pub error: CallError,
    pub attempts: u32,
    /// Time spent waiting for rate-limit slots, upstream pauses and
    /// `max_in_flight` slots, over all attempts (backoff between attempts
    /// not included).
    pub waited: Duration,
}

impl Connector {
    /// Sends a request, retrying transient failures as `policy` allows.
    pub async fn send(
        &self,
        request: &CallRequest,
        policy: RetryPolicy,
    ) -> Result<Delivered, Undelivered> {
        let replayable = is_idempotent(&request.method) || request.idempotency_key.is_some();
        self.send_replayable(request, policy, replayable).await
    }

    /// [`Connector::send`] for a caller that knows better than the method
    /// whether the request may be repeated (a GraphQL query is a `POST`
    /// without side effects).
    pub(crate) async fn send_replayable(
        &self,
        request: &CallRequest,
        policy: RetryPolicy,
        replayable: bool,
    ) -> Result<Delivered, Undelivered> {
        let mut attempts = 0u32;
        // Nanoseconds, shared with each attempt's future. Owned (an `Arc`),
        // not borrowed from this frame: a future borrowing its own locals
        // through the retry closure cannot be proven `Send` for every
        // lifetime, which callers spawning it on a runtime need.
        let waited = Arc::new(AtomicU64::new(0));
        let result = (|| {
            attempts += 1;
            self.attempt(request, Arc::clone(&waited))
        })
        .retry(policy.backoff(replayable))
        .when(CallError::is_retried_in_call)
        // `bound` is the exponential bound, or None when attempts are spent.
        .adjust(|error, bound| bound.map(|bound| policy.wait(error, bound)))
        .notify(|error, wait| {
            CallRetried {
                connector: self.name(),
                error,
                wait,
            }
            .emit();
        })
        .await;
        let waited = Duration::from_nanos(waited.load(Ordering::Relaxed));
        match result {
            Ok(response) => Ok(Delivered {
                response,
                attempts,
                waited,
            }),
            Err(error) => Err(Undelivered {
                error,
                attempts,
                waited,
            }),
        }
    }

    /// One attempt in its own span (`upstream call`, a client span in
    /// traces, whose ids travel to the upstream in `traceparent`).
    async fn attempt(
        &self,
        request: &CallRequest,
        waited: Arc<AtomicU64>,
    ) -> Result<Response, CallError> {
        let span = tracing::info_span!(
            "upstream call",
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            connector = %self.name(),
            http.request.method = %request.method,
            url.path = %request.path,
            http.response.status_code = tracing::field::Empty,
        );
        let result = self
            .attempt_in_span(request, waited)
            .instrument(span.clone())
            .await;
        let status = match &result {
            Ok(response) => Some(response.status),
            Err(error) => error.status(),
        };
        if let Some(status) = status {
            span.record("http.response.status_code", status);
        }
        if result.is_err() {
            span.record("otel.status_code", "error");
        }
        result
    }

    /// One attempt: breaker, throttle, the call, and its outcome fed back.
    async fn attempt_in_span(
        &self,
        request: &CallRequest,
        waited: Arc<AtomicU64>,
    ) -> Result<Response, CallError> {
        let breaker = self.breakers.get(request.breaker_key.as_deref());
        let permit = match &breaker {
            Some(breaker) => Some(breaker.admit().map_err(|retry_in| {
                CallRefused {
                    connector: self.name(),
                    reason: Refusal::CircuitOpen,
                }
                .emit();
                CallError::CircuitOpen {
                    connector: self.name().to_string(),
                    key: breaker.key().map(str::to_string),
                    retry_in,
                }
            })?),
            None => None,
        };
        let wait = self.throttle.wait(request.rate_key.as_deref()).await;
        let wait_time = match &wait {
            Ok(time) => *time,
            Err(refused) => refused.waited,
        };
        add_wait(&waited, wait_time);
        if self.throttle.is_limited() || !wait_time.is_zero() {
            RateLimitWaited {
                connector: self.name(),
                waited: wait_time,
            }
            .emit();
        }
        if let Err(refused) = wait {
            CallRefused {
                connector: self.name(),
                reason: Refusal::RateLimited,
            }
            .emit();
            return Err(CallError::RateLimited {
                connector: self.name().to_string(),
                method: request.method.clone(),
                path: request.path.clone(),
                waited: refused.waited,
                retry_in: refused.retry_in,
            });
        }
        // Held until the attempt's outcome is in, so at most
        // `max_in_flight` attempts are on the wire at once.
        let _slot = match &self.in_flight {
            Some(slots) => {
                let asked = tokio::time::Instant::now();
                let slot = slots.acquire().await;
                add_wait(&waited, asked.elapsed());
                Some(slot)
            }
            None => None,
        };
        let sent = tokio::time::Instant::now();
        let result = self.call(request).await;
        let ok_status = result.as_ref().map_or(0, |response| response.status);
        if let Some(status_class) = crate::events::status_class(&result, ok_status) {
            UpstreamResponded {
                connector: self.name(),
                status_class,
                duration: sent.elapsed(),
            }
            .emit();
        }
        self.throttle.observe(&result);
        if let Some(permit) = permit {
            permit.record(Outcome::of(&result));
        }
        result
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
        if let Ok(response) = &result {
            let endpoint = format!("{} {}", request.method, request.path);
            if let Some((notice, new)) =
                self.notices
                    .observe(&endpoint, &response.headers, chrono::Utc::now())
            {
                crate::events::DeprecationNoticed {
                    connector: self.name(),
                    notice: &notice,
                    new,
                }
                .emit();
            }
        }
        result
    }

    /// Builds the request as the upstream will see it (URL, headers,
    /// credential, body), then sends it, with an OAuth 2.0 token when the
    /// connector has one.
    async fn exchange(&self, request: &CallRequest) -> Result<Response, CallError> {
        let invalid = |reason: String| CallError::InvalidRequest {
            connector: self.name.clone(),
            method: request.method.clone(),
            path: request.path.clone(),
            reason,
        };
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| invalid(format!("`{}` is not an HTTP method", request.method)))?;
        if !request.path.is_empty() && !request.path.starts_with('/') {
            // Without the slash the path would continue the host name
            // (`https://api.example.com` + `.evil.net/`) and carry the
            // credential elsewhere. An empty path is the base URL itself.
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
                let message_id = request.idempotency_key.as_deref();
                self.credentialed(
                    outgoing,
                    &method,
                    &url,
                    body.map(|b| &b[..]),
                    token,
                    message_id,
                )
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
        message_id: Option<&str>,
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
                message_id,
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
            .map_err(|e| self.body_error(request, status, e))?
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
        if is_not_http(&error) {
            return CallError::BrokenResponse {
                connector: self.name.clone(),
                method: request.method.clone(),
                path: request.path.clone(),
                status: None,
                reason: error_chain(&error),
            };
        }
        CallError::Connect {
            connector: self.name.clone(),
            method: request.method.clone(),
            path: request.path.clone(),
            reason: error_chain(&error),
        }
    }

    /// A body that could not be read after its status line arrived: the
    /// upstream was reached, so never "cannot reach".
    fn body_error(&self, request: &CallRequest, status: u16, error: reqwest::Error) -> CallError {
        let error = error.without_url();
        if error.is_timeout() {
            return self.transport_error(request, error);
        }
        CallError::BrokenResponse {
            connector: self.name.clone(),
            method: request.method.clone(),
            path: request.path.clone(),
            status: Some(status),
            reason: error_chain(&error),
        }
    }
}

/// Whether the upstream's answer could not be parsed as HTTP (random bytes,
/// a broken status line): reqwest says so only through hyper's error in its
/// chain.
fn is_not_http(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>() {
            return hyper.is_parse() || hyper.is_parse_status();
        }
        source = cause.source();
    }
    false
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

/// Adds `time` to an attempt's waiting, kept in nanoseconds.
fn add_wait(waited: &AtomicU64, time: Duration) {
    waited.fetch_add(
        u64::try_from(time.as_nanos()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}
