//! W3C Trace Context: the `traceparent` and `tracestate` headers that tie an
//! upstream call, and the webhook that started a run, into one trace.
//!
//! Spans are ordinary `tracing` spans; when the node exports traces
//! (OpenTelemetry over OTLP, set up by the binary), the OpenTelemetry layer
//! gives each span a trace and span id. [`inject`] writes the current
//! span's ids into an outgoing request, so the upstream's own spans join the
//! run's trace. [`set_remote_parent`] makes a run's span the child of the
//! span named by the `traceparent` a webhook arrived with (kept in the run's
//! recorded headers, so the worker that executes the run later, on any
//! node, links to it).
//!
//! Without an OpenTelemetry layer both are no-ops: spans have no trace ids,
//! and nothing is sent or linked.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use tracing_opentelemetry::OpenTelemetrySpanExt;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// Adds `traceparent` (and `tracestate`) for `span` to `headers`, when the
/// span belongs to an exported trace. Replaces any the request brought.
pub fn inject(span: &tracing::Span, headers: &mut HeaderMap) {
    let context = span.context();
    let span_ref = context.span();
    let span_context = span_ref.span_context();
    if !span_context.is_valid() {
        return;
    }
    if let Ok(value) = HeaderValue::try_from(traceparent(span_context)) {
        headers.insert(HeaderName::from_static(TRACEPARENT), value);
    }
    let state = span_context.trace_state().header();
    if !state.is_empty()
        && let Ok(value) = HeaderValue::try_from(state)
    {
        headers.insert(HeaderName::from_static(TRACESTATE), value);
    }
}

/// Makes `span` (not yet entered) a child of the remote span that the
/// `traceparent` in `headers` (a JSON object of lower-case names, as runs
/// record them) names. An absent or malformed header leaves `span` a root.
pub fn set_remote_parent(span: &tracing::Span, headers: &Value) {
    let Some(parent) = headers.get(TRACEPARENT).and_then(Value::as_str) else {
        return;
    };
    let state = headers.get(TRACESTATE).and_then(Value::as_str);
    let Some(remote) = parse_traceparent(parent, state) else {
        return;
    };
    let context = opentelemetry::Context::new().with_remote_span_context(remote);
    // Fails only when the span is disabled or already started: then there
    // is nothing to link.
    let _ = span.set_parent(context);
}

/// `00-<trace id>-<span id>-<flags>`.
fn traceparent(context: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        context.trace_id(),
        context.span_id(),
        context.trace_flags().to_u8() & TraceFlags::SAMPLED.to_u8()
    )
}

/// Parses a `traceparent` value per W3C Trace Context level 1: version
/// `00` (or a later version's first four fields), non-zero ids in lower-case
/// hex.
pub fn parse_traceparent(value: &str, state: Option<&str>) -> Option<SpanContext> {
    let value = value.trim();
    let mut parts = value.split('-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let span_id = parts.next()?;
    let flags = parts.next()?;
    let valid_hex = |text: &str, len: usize| {
        text.len() == len
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !valid_hex(version, 2) || version == "ff" || !valid_hex(trace_id, 32) {
        return None;
    }
    if !valid_hex(span_id, 16) || !valid_hex(flags, 2) {
        return None;
    }
    // Version 00 has exactly four fields; later versions may append more.
    if version == "00" && parts.next().is_some() {
        return None;
    }
    let trace_id = TraceId::from_hex(trace_id).ok()?;
    let span_id = SpanId::from_hex(span_id).ok()?;
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    let flags = TraceFlags::new(u8::from_str_radix(flags, 16).ok()? & TraceFlags::SAMPLED.to_u8());
    let state = state
        .and_then(|s| s.parse::<TraceState>().ok())
        .unwrap_or_default();
    Some(SpanContext::new(trace_id, span_id, flags, true, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_traceparents() {
        let context = parse_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            Some("vendor=value"),
        )
        .expect("valid");
        assert_eq!(
            context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(context.span_id().to_string(), "00f067aa0ba902b7");
        assert!(context.is_sampled());
        assert!(context.is_remote());
        assert_eq!(context.trace_state().header(), "vendor=value");
        assert_eq!(
            traceparent(&context),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
    }

    #[test]
    fn refuses_malformed_traceparents() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert!(parse_traceparent(bad, None).is_none(), "{bad}");
        }
        // A later version may carry more fields.
        assert!(
            parse_traceparent(
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
                None
            )
            .is_some()
        );
    }

    #[test]
    fn without_an_exporter_nothing_is_injected() {
        let mut headers = HeaderMap::new();
        inject(&tracing::info_span!("call"), &mut headers);
        assert!(headers.is_empty());
    }
}
