//! JSON log lines with the context flattened in.
//!
//! Every line is one JSON object: `timestamp`, `level`, `target`, `message`,
//! the fields of every span the event happened in (outermost first, so a
//! step's `step` sits next to its run's `run_id` and `flow`), the event's
//! own fields (which win a name clash), `span` (the innermost span's name)
//! and, when traces are exported, `trace_id` and `span_id`. So
//! `jq 'select(.run_id == "...")'` finds every line of one run, and a line
//! leads to its trace.
//!
//! tracing-subscriber's own JSON format nests span fields under `span` and
//! `spans`; flat keys are what log collectors index without configuration.

use std::fmt;

use opentelemetry::trace::TraceContextExt as _;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The JSON event format; use it with [`JsonFields`] as the field formatter.
pub struct FlatJson {
    /// Whether spans carry OpenTelemetry ids worth printing.
    pub trace_ids: bool,
}

impl<S> FormatEvent<S, JsonFields> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            humantime::format_rfc3339_micros(std::time::SystemTime::now())
                .to_string()
                .into(),
        );
        line.insert("level".into(), metadata.level().as_str().into());
        line.insert("target".into(), metadata.target().into());
        let mut innermost = None;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<JsonFields>>()
                    && let Ok(Value::Object(fields)) =
                        serde_json::from_str::<Value>(fields.fields.as_str())
                {
                    line.extend(fields);
                }
                innermost = Some((span.id(), span.name()));
            }
        }
        event.record(&mut Fields(&mut line));
        if let Some((id, name)) = innermost {
            line.insert("span".into(), name.into());
            if self.trace_ids {
                add_trace_ids(&mut line, &id);
            }
        }
        let text = serde_json::to_string(&Value::Object(line)).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// `trace_id` and `span_id` of the span `id`, when it belongs to a trace.
fn add_trace_ids(line: &mut Map<String, Value>, id: &tracing::span::Id) {
    let context = tracing::dispatcher::get_default(|dispatch| {
        tracing_opentelemetry::get_otel_context(id, dispatch)
    });
    let Some(context) = context else {
        return;
    };
    let span = context.span();
    let span_context = span.span_context();
    if span_context.is_valid() {
        line.insert(
            "trace_id".into(),
            span_context.trace_id().to_string().into(),
        );
        line.insert("span_id".into(), span_context.span_id().to_string().into());
    }
}

/// Records an event's fields into the line.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), value.to_string().into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `message` (and `%value` fields) arrive here already formatted.
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}
