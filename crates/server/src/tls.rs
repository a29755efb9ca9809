//! Inbound TLS: the certificate the server presents, read from PEM files
//! and read again when they change.
//!
//! Certificates are renewed often (ACME every 60 days or less), and a
//! renewal must not need a restart. [`CertResolver`] is rustls's
//! certificate resolver for every handshake: at most every
//! [`CHECK_EVERY`] it compares the files' modification times and sizes
//! with those it loaded, and re-reads them when they differ. The check is a
//! pair of `stat` calls, done inline in the handshake that happens to find
//! it due; a handshake in between costs an atomic load. A renewal that
//! cannot be used (a key that does not match, a half-written file) keeps
//! the previous certificate, logs why once, and is tried again when the
//! files change again.
//!
//! `patchbay check` and `run` both load the files through
//! [`CertResolver::load`], so a bad file is reported before anything
//! listens.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

/// How often, at most, the files are checked for a change.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Why the certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{} is not a PEM certificate chain: {reason}", path.display())]
    BadCertificate { path: PathBuf, reason: String },
    #[error("{} holds no usable PEM private key: {reason}", path.display())]
    BadKey { path: PathBuf, reason: String },
    #[error("the key in {} does not belong to the certificate in {}: {reason}", key.display(), cert.display())]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// What identifies a version of the files: modification time and size.
type Stamp = [(Option<SystemTime>, u64); 2];

/// The server's certificate, re-read when its files change.
pub struct CertResolver {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: ArcSwap<CertifiedKey>,
    /// When the files were last looked at and what they were then. A std
    /// mutex: held for two `stat` calls at most, never across an await.
    checked: Mutex<(Instant, Stamp)>,
}

impl std::fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertResolver")
            .field("cert", &self.cert_path)
            .field("key", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl CertResolver {
    /// Reads the certificate chain and key; fails with what is wrong and
    /// in which file.
    pub fn load(cert: &Path, key: &Path) -> Result<CertResolver, TlsError> {
        let stamp = stamp(cert, key);
        let certified = read(cert, key)?;
        Ok(CertResolver {
            cert_path: cert.to_path_buf(),
            key_path: key.to_path_buf(),
            current: ArcSwap::from_pointee(certified),
            checked: Mutex::new((Instant::now(), stamp)),
        })
    }

    /// The certificate now served (its chain, server certificate first).
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.current.load().cert.clone()
    }

    /// Re-reads the files if they changed since the last look, at most once
    /// every [`CHECK_EVERY`].
    fn refresh_if_due(&self) {
        let Ok(mut checked) = self.checked.try_lock() else {
            // Another handshake is checking right now.
            return;
        };
        if checked.0.elapsed() < CHECK_EVERY {
            return;
        }
        checked.0 = Instant::now();
        let now = stamp(&self.cert_path, &self.key_path);
        if now == checked.1 {
            return;
        }
        checked.1 = now;
        match read(&self.cert_path, &self.key_path) {
            Ok(certified) => {
                self.current.store(Arc::new(certified));
                info!(cert = %self.cert_path.display(), "TLS certificate reloaded");
            }
            Err(e) => {
                warn!(error = %e, "TLS certificate changed but cannot be used; serving the previous one")
            }
        }
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.refresh_if_due();
        Some(self.current.load_full())
    }
}

/// The TLS acceptor presenting `resolver`'s certificate, HTTP/1.1 only.
pub(crate) fn acceptor(resolver: Arc<CertResolver>) -> TlsAcceptor {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the default provider supports the default protocol versions")
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsAcceptor::from(Arc::new(config))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn stamp(cert: &Path, key: &Path) -> Stamp {
    [cert, key].map(|path| match std::fs::metadata(path) {
        Ok(meta) => (meta.modified().ok(), meta.len()),
        Err(_) => (None, 0),
    })
}

fn read(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let read_file = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let cert_pem = read_file(cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadCertificate {
            path: cert.to_path_buf(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_path_buf(),
        });
    }
    let key_pem = read_file(key)?;
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::BadKey {
        path: key.to_path_buf(),
        reason: e.to_string(),
    })?;
    let provider = provider();
    let signing = provider
        .key_provider
        .load_private_key(private)
        .map_err(|e| TlsError::BadKey {
            path: key.to_path_buf(),
            reason: e.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(e) => Err(TlsError::Mismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}
