//! One keep-alive HTTP/1.1 client connection over hyper, reconnecting after
//! a failure, for measuring latency without a pool in the way.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::BenchError;

/// Where requests go: `host:port` and the path with its query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub authority: String,
    pub path: String,
}

impl Target {
    /// Parses an `http://host:port/path?query` URL. Only plain HTTP is
    /// measured: TLS would add a cost no scenario asks for.
    pub fn parse(url: &str) -> Result<Target, BenchError> {
        let invalid = |reason: &str| BenchError::Invalid {
            what: "URL",
            value: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = url.parse().map_err(|_| invalid("not a URL"))?;
        if uri.scheme_str() != Some("http") {
            return Err(invalid("only http:// URLs are supported"));
        }
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        let port = authority.port_u16().unwrap_or(80);
        let path = uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned();
        Ok(Target {
            authority: format!("{}:{port}", authority.host()),
            path: if path.is_empty() { "/".into() } else { path },
        })
    }
}

/// A single keep-alive connection to a [`Target`].
pub struct Connection {
    target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    pub fn new(target: Target) -> Connection {
        Connection {
            target,
            sender: None,
        }
    }

    /// Sends one request, reads the whole answer and returns its status. A
    /// request the connection closed before sending is sent again on a new
    /// connection; one that may have reached the server is not.
    pub async fn send(&mut self, method: &Method, body: &Bytes) -> Result<StatusCode, BenchError> {
        let mut request = Request::builder()
            .method(method.clone())
            .uri(self.target.path.as_str())
            .header(HOST, self.target.authority.as_str());
        if !body.is_empty() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let request = request.body(Full::new(body.clone()))?;
        let mut sender = match self.sender.take() {
            Some(sender) if !sender.is_closed() => sender,
            _ => connect(&self.target.authority).await?,
        };
        let response = match send_once(&mut sender, request).await {
            Ok(response) => response,
            Err((Some(unsent), _)) => {
                sender = connect(&self.target.authority).await?;
                send_once(&mut sender, unsent).await.map_err(|(_, e)| e)?
            }
            Err((None, e)) => return Err(e.into()),
        };
        let status = response.status();
        response.into_body().collect().await?;
        self.sender = Some(sender);
        Ok(status)
    }
}

/// Sends `request`; on failure, gives it back if it never left.
async fn send_once(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<Response<Incoming>, (Option<Request<Full<Bytes>>>, hyper::Error)> {
    if let Err(e) = sender.ready().await {
        return Err((Some(request), e));
    }
    sender.try_send_request(request).await.map_err(|mut e| {
        let unsent = e.take_message();
        (unsent, e.into_error())
    })
}

async fn connect(authority: &str) -> Result<SendRequest<Full<Bytes>>, BenchError> {
    let stream = TcpStream::connect(authority)
        .await
        .map_err(|source| BenchError::Io {
            context: format!("cannot connect to {authority}"),
            source,
        })?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    // The connection task ends with the connection; its error, if any,
    // surfaces through the next `send_request` on the closed sender.
    tokio::spawn(connection);
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;
    use crate::net;

    #[test]
    fn parses_host_port_and_path() {
        let t = Target::parse("http://127.0.0.1:8080/hooks/x?a=1").unwrap();
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(t.path, "/hooks/x?a=1");
        let t = Target::parse("http://localhost").unwrap();
        assert_eq!(
            (t.authority.as_str(), t.path.as_str()),
            ("localhost:80", "/")
        );
    }

    #[test]
    fn refuses_other_schemes_and_garbage() {
        assert!(Target::parse("https://127.0.0.1/").is_err());
        assert!(Target::parse("127.0.0.1:80").is_err());
        assert!(Target::parse("http://").is_err());
    }

    #[tokio::test]
    async fn sends_over_one_connection_and_reconnects_after_close() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(net::serve(
            listener,
            |req: Request<hyper::body::Incoming>| async move {
                let close = req.uri().path() == "/close";
                let mut response = Response::builder().status(if close { 201 } else { 200 });
                if close {
                    response = response.header("connection", "close");
                }
                Ok::<_, Infallible>(response.body(Full::new(Bytes::new())).unwrap())
            },
        ));
        let mut conn = Connection::new(Target::parse(&format!("http://{addr}/close")).unwrap());
        let body = Bytes::from_static(b"{}");
        assert_eq!(conn.send(&Method::POST, &body).await.unwrap(), 201);
        // The server closed the connection: the next request opens another.
        assert_eq!(conn.send(&Method::POST, &body).await.unwrap(), 201);
        let mut conn = Connection::new(Target::parse(&format!("http://{addr}/ok")).unwrap());
        assert_eq!(conn.send(&Method::GET, &Bytes::new()).await.unwrap(), 200);
    }
}
