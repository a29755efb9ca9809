//! `bench-client`: measures request latency in microseconds and prints one
//! JSON object on standard output.
//!
//! - `bench-client seq URL`: `--warmup` then `--requests` requests one after
//!   the other over one keep-alive connection; each is timed from send to
//!   the end of the answer's body.
//! - `bench-client rate URL --rate R`: an open-loop load at a fixed rate
//!   over `--connections` keep-alive connections, each sending its share on
//!   a fixed schedule. Latency is measured from the moment a request was
//!   due, not from when it could be sent, so a server that falls behind
//!   shows it (no coordinated omission, as with wrk2).
//!
//! An answer whose status is not `--expect` counts as an error; the run goes
//! on and the count is reported.

#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Args as ClapArgs, Parser, Subcommand};
use hyper::Method;
use patchbay_bench::client::{Connection, Target};
use patchbay_bench::stats::Summary;
use patchbay_bench::{BenchError, net};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(about = "Latency client for the benchmark suite")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Sequential requests over one connection.
    Seq {
        #[command(flatten)]
        request: RequestArgs,
        /// Measured requests.
        #[arg(long, default_value_t = 300)]
        requests: usize,
        /// Requests sent first and not measured.
        #[arg(long, default_value_t = 50)]
        warmup: usize,
    },
    /// Requests at a fixed rate, latency measured from when each was due.
    Rate {
        #[command(flatten)]
        request: RequestArgs,
        /// Requests per second, over all connections.
        #[arg(long)]
        rate: f64,
        /// How long to send, in seconds.
        #[arg(long, default_value_t = 8.0)]
        duration_s: f64,
        /// Keep-alive connections sharing the load.
        #[arg(long, default_value_t = 64)]
        connections: usize,
    },
}

#[derive(ClapArgs, Clone)]
struct RequestArgs {
    /// http://host:port/path
    url: String,
    /// Request method.
    #[arg(long, default_value = "POST")]
    method: Method,
    /// JSON request body; empty sends none.
    #[arg(long, default_value = r#"{"order_id":"A-1001","amount":1234}"#)]
    body: String,
    /// The status that counts as a success.
    #[arg(long, default_value_t = 200)]
    expect: u16,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let result = match cli.mode {
        Mode::Seq {
            request,
            requests,
            warmup,
        } => sequential(&request, warmup, requests).await,
        Mode::Rate {
            request,
            rate,
            duration_s,
            connections,
        } => fixed_rate(&request, rate, duration_s, connections).await,
    };
    match result {
        Ok(report) => println!("{report}"),
        Err(e) => net::exit_on_error(e),
    }
}

async fn sequential(
    args: &RequestArgs,
    warmup: usize,
    requests: usize,
) -> Result<Value, BenchError> {
    let mut conn = Connection::new(Target::parse(&args.url)?);
    let body = Bytes::from(args.body.clone());
    let mut errors = 0usize;
    let mut last_error = None;
    let mut samples = Vec::with_capacity(requests);
    for i in 0..warmup + requests {
        let start = Instant::now();
        let outcome = conn.send(&args.method, &body).await;
        let elapsed = start.elapsed();
        match outcome {
            Ok(status) if status.as_u16() == args.expect => {
                if i >= warmup {
                    samples.push(elapsed);
                }
            }
            Ok(status) => {
                errors += 1;
                last_error = Some(format!("status {status}"));
            }
            Err(e) => {
                errors += 1;
                last_error = Some(e.to_string());
            }
        }
    }
    Ok(report(&samples, errors, last_error, json!({})))
}

async fn fixed_rate(
    args: &RequestArgs,
    rate: f64,
    duration_s: f64,
    connections: usize,
) -> Result<Value, BenchError> {
    let invalid = |what: &'static str, value: f64| BenchError::Invalid {
        what,
        value: value.to_string(),
        reason: "must be a positive number".into(),
    };
    if !(rate.is_finite() && rate > 0.0) {
        return Err(invalid("rate", rate));
    }
    if !(duration_s.is_finite() && duration_s > 0.0) {
        return Err(invalid("duration", duration_s));
    }
    let connections = connections.max(1);
    let target = Target::parse(&args.url)?;
    let body = Bytes::from(args.body.clone());
    let total = (rate * duration_s).round() as usize;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::with_capacity(connections);
    for k in 0..connections {
        let mut conn = Connection::new(target.clone());
        let (method, body, expect) = (args.method.clone(), body.clone(), args.expect);
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut errors = 0usize;
            let mut last_error = None;
            // Request i (over all connections) is due at start + i × interval;
            // this connection sends every `connections`-th one.
            for i in (k..total).step_by(connections) {
                let due = start + interval.mul_f64(i as f64);
                tokio::time::sleep_until(due).await;
                match conn.send(&method, &body).await {
                    Ok(status) if status.as_u16() == expect => samples.push(due.elapsed()),
                    Ok(status) => {
                        errors += 1;
                        last_error = Some(format!("status {status}"));
                    }
                    Err(e) => {
                        errors += 1;
                        last_error = Some(e.to_string());
                    }
                }
            }
            (samples, errors, last_error)
        }));
    }
    let mut samples = Vec::with_capacity(total);
    let mut errors = 0;
    let mut last_error = None;
    for task in tasks {
        // A task only ends by returning; a panic would be a bug in this file.
        let Ok((s, e, last)) = task.await else {
            errors += 1;
            continue;
        };
        samples.extend(s);
        errors += e;
        last_error = last.or(last_error);
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok(report(
        &samples,
        errors,
        last_error,
        json!({
            "target_rate": rate,
            "achieved_rate": (samples.len() as f64 / elapsed * 10.0).round() / 10.0,
            "connections": connections,
        }),
    ))
}

fn report(samples: &[Duration], errors: usize, last_error: Option<String>, extra: Value) -> Value {
    let mut out =
        Summary::from_samples(samples).map_or_else(|| json!({ "count": 0 }), |s| s.to_json());
    out["errors"] = json!(errors);
    out["last_error"] = json!(last_error);
    if let (Some(out), Value::Object(extra)) = (out.as_object_mut(), extra) {
        out.extend(extra);
    }
    out
}
