//! Trace export: OpenTelemetry over OTLP/HTTP (protobuf), when a project's
//! `telemetry.otlp_endpoint` asks for it.
//!
//! The libraries only make `tracing` spans (run, step, upstream call) and
//! carry W3C trace context (see `patchbay_connector::trace_context`); this
//! module turns those spans into OpenTelemetry spans and exports them. A
//! batch processor on its own thread sends them with a blocking HTTP client,
//! so exporting never runs on (or stalls) the async runtime, and a collector
//! that is down costs dropped spans, never work.
//!
//! `run` starts logging once its project is loaded (and validated, like
//! every section, by the one loader `check` uses too), with the pipeline
//! the project's `telemetry` section asks for.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use patchbay_config::TelemetryConfig;

/// The path OTLP/HTTP collectors receive traces on.
const TRACES_PATH: &str = "/v1/traces";

/// A running trace pipeline; [`Tracing::shutdown`] flushes what is queued.
pub struct Tracing {
    provider: SdkTracerProvider,
}

impl Tracing {
    /// The pipeline `config` asks for; `Ok(None)` when tracing is off.
    pub fn start(config: &TelemetryConfig) -> Result<Option<Tracing>, String> {
        let Some(endpoint) = config.otlp_endpoint.as_deref() else {
            return Ok(None);
        };
        let endpoint = traces_url(endpoint)?;
        if !(0.0..=1.0).contains(&config.sample_ratio) {
            return Err(format!(
                "telemetry.sample_ratio must be between 0 and 1, not {}",
                config.sample_ratio
            ));
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .build()
            .map_err(|e| format!("telemetry: cannot create the OTLP exporter: {e}"))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                config.sample_ratio,
            ))))
            .with_resource(
                Resource::builder()
                    .with_service_name(config.service_name.clone())
                    .build(),
            )
            .build();
        Ok(Some(Tracing { provider }))
    }

    /// The tracer the `tracing` layer creates spans with.
    pub fn tracer(&self) -> opentelemetry_sdk::trace::Tracer {
        self.provider.tracer("patchbay")
    }

    /// Sends the spans still queued and stops the exporter. Blocking: call
    /// it outside the async runtime.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("warning: traces not all exported at exit: {e}");
        }
    }
}

/// The collector's traces URL: `endpoint` + `/v1/traces`, unless it already
/// names that path.
fn traces_url(endpoint: &str) -> Result<String, String> {
    let trimmed = endpoint.trim_end_matches('/');
    let url = reqwest::Url::parse(trimmed)
        .map_err(|e| format!("telemetry.otlp_endpoint `{endpoint}`: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!(
            "telemetry.otlp_endpoint `{endpoint}` must be an http:// or https:// URL"
        ));
    }
    Ok(if trimmed.ends_with(TRACES_PATH) {
        trimmed.to_string()
    } else {
        format!("{trimmed}{TRACES_PATH}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_added_once() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318").unwrap(),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector:4318/v1/traces/").unwrap(),
            "http://collector:4318/v1/traces"
        );
        assert!(traces_url("collector:4318").is_err());
        assert!(traces_url("ftp://collector").is_err());
    }
}
