//! Accepting connections: how many, how slow a client may be, TLS, and
//! graceful shutdown.
//!
//! `axum::serve` has no timer, so a client trickling its headers one byte
//! at a time keeps a connection (and its buffers) forever, and it accepts
//! every connection it is offered. Here hyper's HTTP/1 connection is driven
//! directly:
//!
//! - **header timeout**: hyper's `header_read_timeout`, with tokio's timer,
//!   closes a connection whose request head is not complete in time (also
//!   between requests on a kept-alive connection);
//! - **body timeout**: each request body gets a deadline ([`DeadlineBody`]);
//!   reading past it fails with [`BodyTimedOut`], which the webhook answers
//!   408. The timer is armed only when the body is not already buffered, so
//!   a typical small request costs no timer at all;
//! - **connection cap**: one semaphore permit per open connection, taken
//!   *before* `accept`, so past the cap new connections wait in the kernel's
//!   accept queue instead of costing memory here;
//! - **TLS**: the handshake runs in the connection's own task, under the
//!   header timeout, so a stalled handshake holds nothing but its permit;
//! - **pipelining**: hyper answers pipelined requests one after another, in
//!   order; `pipeline_flush` writes the answers of a pipelined batch
//!   together.
//!
//! On shutdown the listener is closed first, then every connection finishes
//! the request it is serving and closes (hyper's graceful shutdown).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;
use tracing::{debug, warn};

use crate::tls::CertResolver;

/// How the listener treats connections.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
}

/// Accepts connections on `listener` and serves `app` on each until
/// `shutdown` is cancelled; then lets in-flight requests finish.
pub(crate) async fn serve(
    app: Router,
    listener: TcpListener,
    limits: Limits,
    tls: Option<Arc<CertResolver>>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .pipeline_flush(true);
    let acceptor = tls.map(crate::tls::acceptor);
    loop {
        let slot = tokio::select! {
            _ = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                // The semaphore is never closed.
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    if !is_connection_error(&e) {
                        // Out of file descriptors, typically: wait rather than spin.
                        warn!(error = %e, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = service(app.clone(), limits.body_timeout, peer);
        let http = http.clone();
        let watcher = graceful.watcher();
        match &acceptor {
            None => {
                let connection = http.serve_connection(TokioIo::new(stream), service);
                tokio::spawn(async move {
                    if let Err(e) = watcher.watch(connection).await {
                        debug!(error = %e, "connection ended");
                    }
                    drop(slot);
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let handshake_timeout = limits.header_timeout;
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(
                        handshake_timeout,
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            debug!("TLS handshake timed out");
                            return;
                        }
                    };
                    let connection = http.serve_connection(TokioIo::new(stream), service);
                    if let Err(e) = watcher.watch(connection).await {
                        debug!(error = %e, "connection ended");
                    }
                    drop(slot);
                });
            }
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The router as a hyper service, with a deadline on every request body;
/// each request carries the connection's peer address (`ConnectInfo`), for
/// the audit log.
fn service(
    app: Router,
    body_timeout: Duration,
    peer: SocketAddr,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = axum::response::Response,
    Error = Infallible,
    Future = impl Future<Output = Result<axum::response::Response, Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let deadline = Instant::now() + body_timeout;
        let mut request = request.map(|body| Body::new(DeadlineBody::new(body, deadline)));
        request.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(request)
    })
}

/// Errors a listener meets when one client misbehaves, not the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// A request body was not received within `server.body_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received within the body timeout")]
pub struct BodyTimedOut;

/// A request body that fails with [`BodyTimedOut`] once `deadline` passes.
struct DeadlineBody {
    inner: Incoming,
    deadline: Instant,
    /// Armed the first time the body is not ready, not before: most bodies
    /// arrive with their headers and never need a timer.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, deadline: Instant) -> Self {
        DeadlineBody {
            inner,
            deadline,
            sleep: None,
        }
    }
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        ready!(sleep.as_mut().poll(cx));
        Poll::Ready(Some(Err(Box::new(BodyTimedOut))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
