//! Outbound HMAC request signing: a shared-secret signature on every request
//! of a connector, for APIs that authenticate callers that way.
//!
//! The scheme: the signed payload is the connector's `payload` template with
//! its placeholders replaced by exactly what goes on the wire:
//!
//! | placeholder   | value                                                     |
//! |---------------|-----------------------------------------------------------|
//! | `{method}`    | the method, upper case (`POST`)                           |
//! | `{path}`      | the URL path as sent, base path included (`/api/orders`)  |
//! | `{query}`     | the query string as sent, without `?` (empty if none)     |
//! | `{timestamp}` | Unix time in seconds, also sent in `timestamp_header`     |
//! | `{body}`      | the raw body bytes (empty when there is none)             |
//!
//! The default payload is `{timestamp}.{body}` when a timestamp header is
//! configured and `{body}` otherwise. The signature is
//! `HMAC-SHA256(secret, payload)` (or SHA-512), encoded as lower-case hex or
//! standard base64, preceded by `prefix`, in the signature header.
//!
//! The JSON body is serialized once by the caller and these same bytes are
//! both signed and sent, so key order or whitespace can never make the
//! upstream compute a different payload. A request is signed again on every
//! attempt (a retry or a replay after a token refresh), with a fresh
//! timestamp.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use patchbay_config::{Env, Secret, SignAlgorithm, SignConfig, SignEncoding, interpolate};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Sha256, Sha512};

use crate::error::BuildError;

/// One piece of a payload template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Method,
    Path,
    Query,
    Timestamp,
    Body,
}

/// Signs the requests of one connector. `Debug` never shows the secret.
#[derive(Clone)]
pub(crate) struct Signer {
    secret: Secret,
    algorithm: SignAlgorithm,
    encoding: SignEncoding,
    header: HeaderName,
    timestamp_header: Option<HeaderName>,
    payload: Vec<Part>,
    prefix: String,
}

/// What a request looks like on the wire, as far as the signature goes.
pub(crate) struct Signed<'a> {
    pub method: &'a str,
    pub url: &'a reqwest::Url,
    pub body: &'a [u8],
}

impl Signer {
    /// The shared key, for masking.
    pub(crate) fn secret_value(&self) -> &str {
        self.secret.expose()
    }

    /// Resolves the secret and checks the header names and the template.
    pub(crate) fn build(
        connector: &str,
        config: &SignConfig,
        env: &dyn Env,
    ) -> Result<Signer, BuildError> {
        let error = |reason: String| BuildError::Config {
            connector: connector.to_string(),
            reason: format!("sign: {reason}"),
        };
        let secret = interpolate(&config.secret, env).map_err(error)?;
        if secret.is_empty() {
            return Err(error("the secret is empty".into()));
        }
        let header_name = |name: &str| {
            HeaderName::try_from(name)
                .map_err(|_| error(format!("`{name}` is not a valid header name")))
        };
        let header = header_name(&config.header)?;
        let timestamp_header = config
            .timestamp_header
            .as_deref()
            .map(header_name)
            .transpose()?;
        let template = match (&config.payload, &timestamp_header) {
            (Some(payload), _) => payload.as_str(),
            (None, Some(_)) => "{timestamp}.{body}",
            (None, None) => "{body}",
        };
        let payload = parse_template(template).map_err(error)?;
        if timestamp_header.is_none() && payload.contains(&Part::Timestamp) {
            // The upstream could not rebuild the payload without the
            // timestamp, so every request would fail its check.
            return Err(error(
                "the payload uses {timestamp} but no `timestamp_header` sends it".into(),
            ));
        }
        let prefix = config.prefix.clone().unwrap_or_default();
        // A prefix that cannot go in a header would fail every call.
        HeaderValue::try_from(prefix.as_str())
            .map_err(|_| error("the prefix cannot be sent in an HTTP header".into()))?;
        Ok(Signer {
            secret: Secret::new(secret),
            algorithm: config.algorithm,
            encoding: config.encoding,
            header,
            timestamp_header,
            payload,
            prefix,
        })
    }

    /// Adds the signature (and timestamp) headers, replacing any a request
    /// brought, for a request sent now.
    pub(crate) fn sign(&self, request: &Signed<'_>, headers: &mut HeaderMap) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        self.sign_at(request, now, headers);
    }

    fn sign_at(&self, request: &Signed<'_>, timestamp: u64, headers: &mut HeaderMap) {
        let payload = self.payload(request, &timestamp.to_string());
        let signature = self.signature(&payload);
        if let Some(name) = &self.timestamp_header {
            headers.insert(name.clone(), HeaderValue::from(timestamp));
        }
        // Hex and base64 are header-safe and the prefix was checked at build.
        if let Ok(mut value) = HeaderValue::try_from(format!("{}{signature}", self.prefix)) {
            value.set_sensitive(true);
            headers.insert(self.header.clone(), value);
        }
    }

    /// The bytes that are signed.
    fn payload(&self, request: &Signed<'_>, timestamp: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(request.body.len() + 64);
        for part in &self.payload {
            match part {
                Part::Literal(text) => out.extend_from_slice(text.as_bytes()),
                Part::Method => out.extend_from_slice(request.method.as_bytes()),
                Part::Path => out.extend_from_slice(request.url.path().as_bytes()),
                Part::Query => {
                    out.extend_from_slice(request.url.query().unwrap_or_default().as_bytes())
                }
                Part::Timestamp => out.extend_from_slice(timestamp.as_bytes()),
                Part::Body => out.extend_from_slice(request.body),
            }
        }
        out
    }

    fn signature(&self, payload: &[u8]) -> String {
        let key = self.secret.expose().as_bytes();
        // HMAC takes keys of any length, so `new_from_slice` cannot fail.
        let digest = match self.algorithm {
            SignAlgorithm::Sha256 => Hmac::<Sha256>::new_from_slice(key).map(|mut mac| {
                mac.update(payload);
                mac.finalize().into_bytes().to_vec()
            }),
            SignAlgorithm::Sha512 => Hmac::<Sha512>::new_from_slice(key).map(|mut mac| {
                mac.update(payload);
                mac.finalize().into_bytes().to_vec()
            }),
        }
        .unwrap_or_default();
        match self.encoding {
            SignEncoding::Hex => hex::encode(digest),
            SignEncoding::Base64 => base64::engine::general_purpose::STANDARD.encode(digest),
        }
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("algorithm", &self.algorithm)
            .field("header", &self.header)
            .field("timestamp_header", &self.timestamp_header)
            .finish_non_exhaustive()
    }
}

/// Splits a template into literals and placeholders; an unknown placeholder
/// or an unclosed `{` is an error.
fn parse_template(template: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        if start > 0 {
            parts.push(Part::Literal(rest[..start].to_string()));
        }
        let after = &rest[start + 1..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed `{{` in payload `{template}`"))?;
        parts.push(match &after[..end] {
            "method" => Part::Method,
            "path" => Part::Path,
            "query" => Part::Query,
            "timestamp" => Part::Timestamp,
            "body" => Part::Body,
            other => {
                return Err(format!(
                    "unknown placeholder `{{{other}}}` in payload `{template}` \
                     (use {{method}}, {{path}}, {{query}}, {{timestamp}} or {{body}})"
                ));
            }
        });
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Literal(rest.to_string()));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchbay_config::MapEnv;

    fn signer(yaml: &str) -> Signer {
        let config: SignConfig = serde_saphyr::from_str(yaml).unwrap();
        Signer::build("api", &config, &MapEnv::default()).unwrap()
    }

    fn url(text: &str) -> reqwest::Url {
        reqwest::Url::parse(text).unwrap()
    }

    #[test]
    fn rfc_4231_test_case_2() {
        // RFC 4231 section 4.3: key "Jefe", data "what do ya want for nothing?".
        let sha256 = signer("secret: Jefe\n");
        assert_eq!(
            sha256.signature(b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let sha512 = signer("secret: Jefe\nalgorithm: sha512\n");
        assert_eq!(
            sha512.signature(b"what do ya want for nothing?"),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
             9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
        let base64 = signer("secret: Jefe\nencoding: base64\n");
        assert_eq!(
            base64.signature(b"what do ya want for nothing?"),
            "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="
        );
    }

    #[test]
    fn default_payloads_and_prefix() {
        let url = url("http://h/api/orders?b=2&a=1");
        let request = Signed {
            method: "POST",
            url: &url,
            body: br#"{"id":1}"#,
        };
        let plain = signer("secret: s\n");
        assert_eq!(plain.payload(&request, "17"), br#"{"id":1}"#);
        let stamped = signer("secret: s\ntimestamp_header: X-Timestamp\nprefix: \"sha256=\"\n");
        assert_eq!(stamped.payload(&request, "17"), br#"17.{"id":1}"#);
        let mut headers = HeaderMap::new();
        stamped.sign_at(&request, 17, &mut headers);
        assert_eq!(headers["x-timestamp"], "17");
        let expected = format!("sha256={}", stamped.signature(br#"17.{"id":1}"#));
        assert_eq!(headers["x-signature"], expected.as_str());
        let full = signer(
            "secret: s\ntimestamp_header: X-Ts\npayload: \"v1:{method}:{path}:{query}:{timestamp}:{body}\"\n",
        );
        assert_eq!(
            full.payload(&request, "9"),
            br#"v1:POST:/api/orders:b=2&a=1:9:{"id":1}"#
        );
    }

    #[test]
    fn bad_templates_are_refused() {
        for (yaml, expected) in [
            (
                "secret: s\npayload: \"{nope}\"\n",
                "unknown placeholder `{nope}`",
            ),
            ("secret: s\npayload: \"{body\"\n", "unclosed"),
            (
                "secret: s\npayload: \"{timestamp}{body}\"\n",
                "timestamp_header",
            ),
            (
                "secret: s\nheader: \"bad header\"\n",
                "not a valid header name",
            ),
            ("secret: \"\"\n", "empty"),
        ] {
            let config: SignConfig = serde_saphyr::from_str(yaml).unwrap();
            let error = Signer::build("api", &config, &MapEnv::default()).unwrap_err();
            assert!(error.to_string().contains(expected), "{yaml}: {error}");
        }
    }
}
