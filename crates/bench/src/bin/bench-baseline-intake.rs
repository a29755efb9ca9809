//! `bench-baseline-intake ADDR`: the intake baseline. An axum server, served
//! like Patchbay's (`axum::serve`, a fallback handler), that answers
//! `POST /hooks/...` by reading the body, parsing it as JSON and answering
//! `202 {"run_id": ..., "status": "accepted"}`, with no store behind it.
//! Prints `http://BOUND_ADDR` on the first line of standard output.

#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use clap::Parser;
use patchbay_bench::net;
use serde_json::json;

/// Same default limit as Patchbay's `server.max_body_bytes`.
const MAX_BODY_BYTES: usize = 1 << 20;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

#[derive(Parser)]
#[command(about = "Intake baseline: 202 after reading the body, no store")]
struct Args {
    /// Address to listen on, e.g. 127.0.0.1:0.
    addr: String,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let listener = net::bind_and_announce(&args.addr)
        .await
        .unwrap_or_else(|e| net::exit_on_error(e));
    let app = axum::Router::new().fallback(receive);
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn receive(request: Request) -> Response {
    if !request.uri().path().starts_with("/hooks/") {
        return StatusCode::NOT_FOUND.into_response();
    }
    if request.method() != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let body: Body = request.into_body();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    if serde_json::from_slice::<serde_json::Value>(&bytes).is_err() {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    (
        StatusCode::ACCEPTED,
        Json(json!({ "run_id": format!("{id:032x}"), "status": "accepted" })),
    )
        .into_response()
}
