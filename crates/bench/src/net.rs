//! Listening sockets and a plain hyper HTTP/1.1 accept loop (keep-alive,
//! `TCP_NODELAY`) for the instruments that do not use axum.

use std::convert::Infallible;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::BenchError;

/// The small JSON body the upstream and the intake baseline answer with.
pub const SMALL_JSON: &str = r#"{"ok":true}"#;

/// Parses `addr` (`IP:port`, port 0 for any free one).
pub fn parse_addr(addr: &str) -> Result<SocketAddr, BenchError> {
    addr.parse()
        .map_err(|e: std::net::AddrParseError| BenchError::Invalid {
            what: "address",
            value: addr.to_owned(),
            reason: e.to_string(),
        })
}

/// Binds `addr` and prints `http://BOUND_ADDR` as the first line of standard
/// output, so the caller learns the port and knows the socket accepts.
pub async fn bind_and_announce(addr: &str) -> Result<TcpListener, BenchError> {
    let addr = parse_addr(addr)?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| BenchError::Io {
            context: format!("cannot listen on {addr}"),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| BenchError::Io {
        context: "cannot read the bound address".into(),
        source,
    })?;
    let mut out = std::io::stdout().lock();
    // The announcement is the readiness signal: a lost line would stall the
    // caller, so a failed write is an error, not a warning.
    writeln!(out, "http://{local}")
        .and_then(|()| out.flush())
        .map_err(|source| BenchError::Io {
            context: "cannot write the address to standard output".into(),
            source,
        })?;
    Ok(listener)
}

/// Serves HTTP/1.1 on `listener` forever, one task per connection, calling
/// `handler` for each request.
pub async fn serve<F, Fut, B>(listener: TcpListener, handler: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors or a connection reset before accept:
            // the listener itself is fine, so back off briefly and go on.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        tokio::spawn(async move {
            // A connection ending in an error (a client killed mid-request)
            // concerns that connection only.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(handler))
                .await;
        });
    }
}

/// Prints `error: ...` on standard error and exits with 1: the instruments
/// are run by a script that reads their exit status.
pub fn exit_on_error(e: BenchError) -> ! {
    eprintln!("error: {e}");
    std::process::exit(1)
}
