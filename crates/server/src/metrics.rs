//! `GET /metrics`: every Patchbay metric in the Prometheus text format.
//!
//! The libraries record through the `metrics` facade (see the `events`
//! modules of the engine and connector crates); this module installs the
//! process-wide Prometheus recorder behind that facade and renders it.
//! There is one recorder per process, so nodes started in one process (as
//! tests do) share their metrics.
//!
//! Histograms are rendered as Prometheus histograms with fixed buckets:
//! durations (`*_seconds`) from 1 ms to 5 min, intake batch sizes in powers
//! of two up to 1024.
//!
//! The endpoint needs no token, like `/healthz`: scrapers rarely carry one,
//! and metrics hold no secrets, ids or URLs (labels are flows, steps,
//! connectors and fixed words). Expose the listener deliberately.

use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Buckets of every `*_seconds` histogram.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];
/// Buckets of the intake batch size histogram.
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];
/// How often histograms are drained when nobody scrapes, so their samples
/// do not pile up.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// `1`, labelled with the running version.
const BUILD_INFO: &str = "patchbay_build_info";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder for this process; later calls do
/// nothing. Fails when another recorder was installed first.
pub fn install_recorder() -> Result<(), String> {
    let mut outcome = Ok(());
    HANDLE.get_or_init(|| {
        let (recorder, handle) = match build() {
            Ok(built) => built,
            Err(e) => {
                outcome = Err(e);
                return PrometheusBuilder::new().build_recorder().handle();
            }
        };
        if let Err(e) = metrics::set_global_recorder(recorder) {
            outcome = Err(format!("cannot install the metrics recorder: {e}"));
        }
        // A scrape right after start finds at least this, before anything
        // has happened to record; and dashboards can tell versions apart.
        metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        let upkeep = handle.clone();
        let _ = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                }
            });
        handle
    });
    outcome
}

fn build() -> Result<
    (
        metrics_exporter_prometheus::PrometheusRecorder,
        PrometheusHandle,
    ),
    String,
> {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("patchbay_intake_batch_runs".into()),
                BATCH_BUCKETS,
            )
        })
        .map_err(|e| format!("metrics buckets: {e}"))?
        .build_recorder();
    let handle = recorder.handle();
    Ok((recorder, handle))
}

/// The `/metrics` route.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/metrics", get(render))
}

async fn render() -> impl IntoResponse {
    let text = HANDLE
        .get()
        .map(PrometheusHandle::render)
        .unwrap_or_default();
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
}
