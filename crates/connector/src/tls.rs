//! Connector TLS: a private certificate authority and a client certificate.
//!
//! `tls.ca` replaces the system's roots for this connector rather than adding
//! to them: an upstream behind a private CA is then trusted through that CA
//! only, and a public CA cannot vouch for an impostor of it. `client_cert`
//! and `client_key` are presented when the upstream asks (mutual TLS). The
//! same settings apply to the connector's OAuth 2.0 token endpoint.
//!
//! The files were read and checked when the configuration loaded (with
//! their line in `patchbay.yaml`); they are read again here, so a file that
//! changed in between fails the start with its path.

use std::path::Path;

use patchbay_config::ConnectorTlsConfig;
use reqwest::{Certificate, ClientBuilder, Identity};

/// Adds the connector's TLS settings to an HTTP client under construction.
pub(crate) fn configure(
    builder: ClientBuilder,
    tls: Option<&ConnectorTlsConfig>,
) -> Result<ClientBuilder, String> {
    let Some(tls) = tls else {
        return Ok(builder);
    };
    let mut builder = builder;
    if let Some(ca) = &tls.ca {
        let certs = Certificate::from_pem_bundle(&read(&ca.value, "ca")?)
            .map_err(|e| format!("tls.ca `{}`: {e}", ca.value.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "tls.ca `{}` holds no PEM certificate",
                ca.value.display()
            ));
        }
        builder = builder.tls_certs_only(certs);
    }
    match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => {
            let mut pem = read(&cert.value, "client_cert")?;
            pem.push(b'\n');
            pem.extend(read(&key.value, "client_key")?);
            let identity = Identity::from_pem(&pem).map_err(|e| {
                format!(
                    "tls.client_cert `{}` with tls.client_key `{}`: {e}",
                    cert.value.display(),
                    key.value.display()
                )
            })?;
            builder = builder.identity(identity);
        }
        (None, None) => {}
        _ => return Err("tls: `client_cert` and `client_key` go together".into()),
    }
    Ok(builder)
}

fn read(path: &Path, key: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("tls.{key} `{}`: cannot read: {e}", path.display()))
}
