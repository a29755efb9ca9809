//! Webhook intake: a `POST` on a flow's path becomes a committed run.
//!
//! The request is answered only after the run is durable (group commit in the
//! engine's intake). Bad requests (unknown path, wrong method, oversized or
//! unreadable body) are refused before anything is stored.
//!
//! The event is the body: JSON, or a form (`application/x-www-form-urlencoded`,
//! as GitHub's form option, Slack and Twilio send) read into an object. A
//! flow that takes `GET` (a provider's verification handshake) gets the
//! query string as its event. Every request's query string is kept with
//! its headers and read as `$query`.
//!
//! A flow with `verify` checks the signature on the raw body before the body
//! is even parsed: a forged or stale request costs an HMAC per configured
//! secret and leaves no trace in the store. A flow with `dedupe` turns each event into a dedupe
//! key; the store keeps one run per key and answers repeats with it.

use std::time::SystemTime;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use patchbay_engine::trigger::{WebhookMethod, WebhookMode};
use patchbay_engine::{Event, SyncReply, VerifyPlan};
use patchbay_expr::{Budget, EvalError, Expr, Vars};
use patchbay_signature::Headers;
use patchbay_store::{EnqueueOutcome, RunStatus};
use serde_json::{Value, json};
use tracing::info;

use crate::AppState;
use crate::error::ApiError;

pub(crate) async fn receive(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let path = request.uri().path().to_string();
    let plan = state.engine.plan();
    let Some((flow, hook)) = plan.webhook(&path) else {
        return Err(ApiError::not_found(format!("no flow listens on `{path}`")));
    };
    let Some(method) = hook
        .methods
        .iter()
        .copied()
        .find(|method| request.method().as_str() == method.as_str())
    else {
        let allowed: Vec<&str> = hook.methods.iter().map(|m| m.as_str()).collect();
        let mut refusal = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("`{path}` accepts {} only", allowed.join(" and ")),
        )
        .into_response();
        if let Ok(allow) = HeaderValue::try_from(allowed.join(", ")) {
            refusal
                .headers_mut()
                .insert(axum::http::header::ALLOW, allow);
        }
        return Ok(refusal);
    };
    // Held until the answer is ready, body read and run committed included.
    let Some(_slot) = state.inflight.enter(&path) else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!("`{path}` has too many requests in flight; retry later"),
        ));
    };
    let limit = hook.max_body_bytes.unwrap_or(state.settings.max_body_bytes);
    let (parts, body) = request.into_parts();
    // Parameters named like credentials (`token`, `secret`, `api_key`...)
    // are masked as such headers are: no flow reads them, and neither the
    // run record nor the API keeps them.
    let query = parts.uri.query().map(|query| {
        let mut query = form_object(query);
        plan.redaction.headers.redact_parameters(&mut query);
        query
    });
    let input = match method {
        // A handshake carries no body and no signature: its query string is
        // the event, and the flow checks its token itself.
        WebhookMethod::Get => query.clone().unwrap_or_else(|| json!({})),
        WebhookMethod::Post => {
            let bytes = read_body(body, limit).await?;
            if let Some(verify) = &hook.verify {
                check_signature(&flow.name, verify, &parts.headers, &bytes)?;
            }
            parse_body(&parts.headers, &bytes)?
        }
    };
    let mut headers = patchbay_connector::headers_to_json(&parts.headers);
    if let (Some(query), Value::Object(map)) = (query, &mut headers) {
        map.insert(patchbay_engine::QUERY_KEY.to_string(), query);
    }
    let dedupe_key = match &hook.dedupe {
        Some(expr) => dedupe_key(
            &flow.name,
            expr,
            &input,
            &headers,
            plan.expression_limits.inline_budget,
        )?,
        None => None,
    };
    let event = Event {
        flow: flow.name.clone(),
        trigger: "webhook",
        input,
        headers,
        dedupe_key,
    };
    match hook.mode {
        WebhookMode::Async => {
            let outcome = state.engine.trigger(event).await?;
            Ok(accepted(outcome))
        }
        WebhookMode::Sync => {
            let (outcome, reply) = state.engine.trigger_and_wait(event, hook.timeout).await?;
            Ok(sync_response(outcome, reply))
        }
    }
}

/// The event a `POST` body holds: a form read into an object, or JSON.
fn parse_body(headers: &HeaderMap, bytes: &[u8]) -> Result<Value, ApiError> {
    let media_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|media_type| media_type.trim().to_ascii_lowercase());
    if media_type.as_deref() == Some("application/x-www-form-urlencoded") {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| ApiError::bad_request("the form body is not UTF-8 text".to_string()))?;
        return Ok(form_object(text));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not valid JSON: {e}"),
        )
    })
}

/// `a=1&b=x&b=y` as `{"a": "1", "b": ["x", "y"]}`: every value a string,
/// a name given more than once an array of its values in order.
fn form_object(encoded: &str) -> Value {
    let mut object = serde_json::Map::new();
    for (name, value) in form_urlencoded::parse(encoded.as_bytes()) {
        let value = Value::String(value.into_owned());
        match object.get_mut(name.as_ref()) {
            Some(Value::Array(values)) => values.push(value),
            Some(first) => *first = Value::Array(vec![first.take(), value]),
            None => {
                object.insert(name.into_owned(), value);
            }
        }
    }
    Value::Object(object)
}

/// Request headers as the signature verifier reads them.
struct RequestHeaders<'a>(&'a HeaderMap);

impl Headers for RequestHeaders<'_> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.0.get(name).map(HeaderValue::as_bytes)
    }
}

fn check_signature(
    flow: &str,
    verify: &VerifyPlan,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), ApiError> {
    verify
        .verifier()
        .verify(&RequestHeaders(headers), body, SystemTime::now())
        .map_err(|e| {
            info!(flow, scheme = verify.scheme.name(), reason = %e, "webhook signature refused");
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_signature",
                format!("the request's signature is not valid: {e}"),
            )
        })
}

/// Longest dedupe value kept; longer ones are refused rather than truncated,
/// since two truncated keys could collide.
const MAX_DEDUPE_VALUE_BYTES: usize = 512;

/// The event's dedupe key, `webhook:FLOW:VALUE`; `None` when the expression
/// gives `null`, an empty string or no output.
fn dedupe_key(
    flow: &str,
    expr: &Expr,
    input: &Value,
    headers: &Value,
    // Inline only: the event is not committed yet, so nothing may wait here for
    // the evaluation pool.
    budget: Budget,
) -> Result<Option<String>, ApiError> {
    let vars = Vars {
        event: input,
        headers,
        budget,
        ..Vars::default()
    };
    let value = match expr.eval(input, &vars) {
        Ok(value) => value,
        Err(EvalError::NoOutput) => return Ok(None),
        Err(e) => {
            return Err(ApiError::bad_request(format!(
                "flow `{flow}`: the dedupe expression failed on this event: {e}"
            )));
        }
    };
    let key = match value {
        Value::Null => return Ok(None),
        Value::String(text) if text.is_empty() => return Ok(None),
        Value::String(text) => text,
        Value::Number(number) => number.to_string(),
        other => {
            let kind = match other {
                Value::Bool(_) => "a boolean",
                Value::Array(_) => "an array",
                _ => "an object",
            };
            return Err(ApiError::bad_request(format!(
                "flow `{flow}`: the dedupe expression gave {kind}; it must give a string, a number or null"
            )));
        }
    };
    if key.len() > MAX_DEDUPE_VALUE_BYTES {
        return Err(ApiError::bad_request(format!(
            "flow `{flow}`: the dedupe key is longer than {MAX_DEDUPE_VALUE_BYTES} bytes"
        )));
    }
    Ok(Some(format!("webhook:{flow}:{key}")))
}

async fn read_body(body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        // The limit error sits somewhere in the cause chain; match its type,
        // not its wording.
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        let mut too_large = false;
        let mut too_slow = false;
        while let Some(current) = cause {
            too_large |= current.is::<http_body_util::LengthLimitError>();
            too_slow |= current.is::<crate::BodyTimedOut>();
            cause = current.source();
        }
        if too_slow {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                "the body was not received within the server's body timeout",
            )
        } else if too_large {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body exceeds the limit of {limit} bytes"),
            )
        } else {
            ApiError::bad_request(format!("cannot read the body: {e}"))
        }
    })
}

fn accepted(outcome: EnqueueOutcome) -> Response {
    match outcome {
        EnqueueOutcome::Created(id) => (
            StatusCode::ACCEPTED,
            Json(json!({ "run_id": id, "status": "accepted" })),
        )
            .into_response(),
        EnqueueOutcome::Duplicate(id) => (
            StatusCode::OK,
            Json(json!({ "run_id": id, "status": "duplicate" })),
        )
            .into_response(),
    }
}

fn sync_response(outcome: EnqueueOutcome, reply: Option<SyncReply>) -> Response {
    let run_id = outcome.run_id();
    match reply {
        Some(SyncReply::Respond {
            status,
            headers,
            body,
        }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            // A string with a content type of its own that is not JSON is
            // sent as it is: a handshake's challenge echoed in plain text.
            let content_type = headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
                .map(|(_, value)| value.to_ascii_lowercase());
            let raw = content_type.is_some_and(|media_type| !media_type.contains("json"));
            let mut response = match body {
                Value::Null => status.into_response(),
                Value::String(text) if raw => (status, text).into_response(),
                body => (status, Json(body)).into_response(),
            };
            for (name, value) in headers {
                if let (Ok(name), Ok(value)) =
                    (HeaderName::try_from(name), HeaderValue::try_from(value))
                {
                    response.headers_mut().insert(name, value);
                }
            }
            if let Ok(value) = HeaderValue::try_from(run_id.to_string()) {
                response.headers_mut().insert("patchbay-run-id", value);
            }
            response
        }
        // The run's error names connectors, paths and upstream replies:
        // internals the webhook's caller must not see. It is in the journal.
        Some(SyncReply::Ended {
            status: RunStatus::Dead,
            ..
        }) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "run_failed",
            format!("the run failed before responding; see run {run_id}"),
        )
        .with_details(json!({ "run_id": run_id }))
        .into_response(),
        // A transient failure rescheduled the run: it is accepted and will
        // finish later, like an `async` webhook's run.
        Some(SyncReply::Ended {
            status: RunStatus::Queued,
            ..
        }) => (
            StatusCode::ACCEPTED,
            Json(json!({ "run_id": run_id, "status": "queued" })),
        )
            .into_response(),
        Some(SyncReply::Ended { status, .. }) => (
            StatusCode::OK,
            Json(json!({ "run_id": run_id, "status": status })),
        )
            .into_response(),
        None if matches!(outcome, EnqueueOutcome::Duplicate(_)) => accepted(outcome),
        None => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "respond_timeout",
            "the flow did not respond in time; the run goes on",
        )
        .with_details(json!({ "run_id": run_id }))
        .into_response(),
    }
}
