//! Connector TLS against a real rustls upstream: a private CA given in
//! `tls.ca`, and an upstream that requires a client certificate (mTLS).
//! Certificates are made for each test with rcgen.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use patchbay_connector::CallClass;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{build, call_err, request};

/// A private certificate authority and the files it wrote.
struct Pki {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        Pki { dir, ca }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// A certificate for `names` signed by the CA, written as
    /// `NAME.pem` and `NAME.key`; returned in DER for a server.
    fn issue(
        &self,
        name: &str,
        names: &[&str],
    ) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let dir = self.dir.path();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (cert.der().clone(), key)
    }

    fn ca_der(&self) -> CertificateDer<'static> {
        self.ca.der().clone()
    }
}

/// An HTTPS upstream on 127.0.0.1 answering `{"ok": true}` to every
/// request; with `client_ca`, only to clients presenting a certificate
/// signed by it. Counts completed handshakes.
async fn https_upstream(
    pki: &Pki,
    client_ca: Option<CertificateDer<'static>>,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let (cert, key) = pki.issue("server", &["127.0.0.1", "localhost"]);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca).unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(vec![cert], key).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handshakes = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&handshakes);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let body = br#"{"ok":true}"#;
                let mut response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                response.extend_from_slice(body);
                let _ = tls.write_all(&response).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (addr, handshakes)
}

fn exists(path: &str) -> bool {
    Path::new(path).exists()
}

#[tokio::test]
async fn a_private_ca_is_trusted_through_tls_ca() {
    let pki = Pki::new();
    let (addr, handshakes) = https_upstream(&pki, None).await;
    let ca = pki.path("ca.pem");
    assert!(exists(&ca));
    let trusting = build(&format!(
        "dangerous_allow_private: true\nurl: https://{addr}\ntls: {{ ca: \"{ca}\" }}\n"
    ));
    let response = trusting.call(&request("GET", "/items")).await.unwrap();
    assert_eq!(response.body, json!({"ok": true}));
    assert_eq!(handshakes.load(Ordering::SeqCst), 1);

    // Without the CA the upstream's certificate is not trusted.
    let plain = build(&format!(
        "dangerous_allow_private: true\nurl: https://{addr}\nretry: {{ attempts: 1 }}\n"
    ));
    let error = call_err(&plain, &request("GET", "/items")).await;
    assert_eq!(error.class(), CallClass::Connect, "{error}");
    assert_eq!(handshakes.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_client_certificate_is_presented_for_mutual_tls() {
    let pki = Pki::new();
    let (addr, handshakes) = https_upstream(&pki, Some(pki.ca_der())).await;
    pki.issue("client", &["patchbay.test"]);
    let (ca, cert, key) = (
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client.key"),
    );
    let mutual = build(&format!(
        "dangerous_allow_private: true\nurl: https://{addr}\n\
         tls: {{ ca: \"{ca}\", client_cert: \"{cert}\", client_key: \"{key}\" }}\n"
    ));
    let response = mutual.call(&request("GET", "/items")).await.unwrap();
    assert_eq!(response.body, json!({"ok": true}));
    assert_eq!(handshakes.load(Ordering::SeqCst), 1);

    // The same CA but no client certificate: the upstream refuses.
    let anonymous = build(&format!(
        "dangerous_allow_private: true\nurl: https://{addr}\nretry: {{ attempts: 1 }}\n\
         tls: {{ ca: \"{ca}\" }}\n"
    ));
    let error = call_err(&anonymous, &request("GET", "/items")).await;
    assert_eq!(error.class(), CallClass::Connect, "{error}");
    assert_eq!(handshakes.load(Ordering::SeqCst), 1);
}
