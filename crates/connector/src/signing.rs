//! Outbound request signing: a shared-secret signature on every request of
//! a connector, for receivers that authenticate senders that way.
//!
//! A named scheme (`standard_webhooks`, `stripe`, `github`) signs exactly
//! as that scheme's receivers verify, through [`patchbay_signature::Named`]
//! (the same crate that verifies incoming webhooks). A Standard Webhooks
//! `webhook-id` is the call's idempotency key, so every attempt to deliver
//! one message carries one id and a receiver can drop repeats.
//!
//! The generic scheme (`hmac`) signs the connector's `payload` template
//! with its placeholders replaced by exactly what goes on the wire:
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
use patchbay_config::{
    Env, Secret, SignAlgorithm, SignConfig, SignEncoding, SignScheme, interpolate,
};
use patchbay_signature::{Key, Named};
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
    how: How,
}

#[derive(Clone)]
enum How {
    Named { scheme: Named, key: Key },
    Template(Template),
}

/// A generic HMAC signature's settings.
#[derive(Clone)]
struct Template {
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
    /// The message's identity across attempts (the idempotency key).
    pub message_id: Option<&'a str>,
}

impl Signer {
    /// The shared key, for masking.
    pub(crate) fn secret_value(&self) -> &str {
        self.secret.expose()
    }

    /// Whether the signature names the message (Standard Webhooks'
    /// `webhook-id`), so every attempt must carry the same idempotency key.
    pub(crate) fn needs_message_id(&self) -> bool {
        matches!(
            self.how,
            How::Named {
                scheme: Named::StandardWebhooks,
                ..
            }
        )
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
        let named = match config.scheme {
            SignScheme::Hmac => None,
            SignScheme::StandardWebhooks => Some(Named::StandardWebhooks),
            SignScheme::Stripe => Some(Named::Stripe),
            SignScheme::Github => Some(Named::GitHub),
        };
        let how = match named {
            Some(scheme) => {
                let generic = config.generic_keys();
                if !generic.is_empty() {
                    return Err(error(format!(
                        "`scheme: {}` fixes the signature's form, so it takes no {} \
                         (remove it, or use `scheme: hmac`)",
                        scheme.name(),
                        generic
                            .iter()
                            .map(|key| format!("`{key}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                let key = scheme.key(&secret).map_err(|e| {
                    error(format!("the secret does not suit `{}`: {e}", scheme.name()))
                })?;
                How::Named { scheme, key }
            }
            None => How::Template(Template::build(config).map_err(error)?),
        };
        Ok(Signer {
            secret: Secret::new(secret),
            how,
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
        match &self.how {
            How::Template(template) => {
                template.sign_at(self.secret.expose().as_bytes(), request, timestamp, headers)
            }
            How::Named { scheme, key } => {
                // Without an idempotency key (a GET, say) the message has no
                // identity beyond this attempt.
                let fresh;
                let id = match request.message_id {
                    Some(id) => id,
                    None => {
                        fresh = format!("msg_{}", uuid::Uuid::now_v7().simple());
                        &fresh
                    }
                };
                for (name, value) in scheme.headers(key, id, timestamp, request.body) {
                    if let Ok(mut value) = HeaderValue::try_from(value) {
                        value.set_sensitive(name != "webhook-id" && name != "webhook-timestamp");
                        headers.insert(HeaderName::from_static(name), value);
                    }
                }
            }
        }
    }

    #[cfg(test)]
    fn template(&self) -> &Template {
        match &self.how {
            How::Template(template) => template,
            How::Named { .. } => panic!("not a template signer"),
        }
    }
}

impl Template {
    fn build(config: &SignConfig) -> Result<Template, String> {
        let header_name = |name: &str| {
            HeaderName::try_from(name).map_err(|_| format!("`{name}` is not a valid header name"))
        };
        let header = header_name(config.header.as_deref().unwrap_or("X-Signature"))?;
        let timestamp_header = config
            .timestamp_header
            .as_deref()
            .map(header_name)
            .transpose()?;
        if timestamp_header.as_ref() == Some(&header) {
            // The timestamp would overwrite the signature.
            return Err(format!(
                "`timestamp_header` and `header` are both `{header}`; they must differ"
            ));
        }
        let template = match (&config.payload, &timestamp_header) {
            (Some(payload), _) => payload.as_str(),
            (None, Some(_)) => "{timestamp}.{body}",
            (None, None) => "{body}",
        };
        let payload = parse_template(template)?;
        if timestamp_header.is_none() && payload.contains(&Part::Timestamp) {
            // The upstream could not rebuild the payload without the
            // timestamp, so every request would fail its check.
            return Err("the payload uses {timestamp} but no `timestamp_header` sends it".into());
        }
        let prefix = config.prefix.clone().unwrap_or_default();
        // A prefix that cannot go in a header would fail every call.
        HeaderValue::try_from(prefix.as_str())
            .map_err(|_| "the prefix cannot be sent in an HTTP header".to_string())?;
        Ok(Template {
            algorithm: config.algorithm.unwrap_or_default(),
            encoding: config.encoding.unwrap_or_default(),
            header,
            timestamp_header,
            payload,
            prefix,
        })
    }

    fn sign_at(&self, key: &[u8], request: &Signed<'_>, timestamp: u64, headers: &mut HeaderMap) {
        let payload = self.payload(request, &timestamp.to_string());
        let signature = self.signature(key, &payload);
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

    fn signature(&self, key: &[u8], payload: &[u8]) -> String {
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
        match &self.how {
            How::Named { scheme, .. } => f
                .debug_struct("Signer")
                .field("scheme", &scheme.name())
                .finish_non_exhaustive(),
            How::Template(template) => f
                .debug_struct("Signer")
                .field("scheme", &"hmac")
                .field("algorithm", &template.algorithm)
                .field("header", &template.header)
                .field("timestamp_header", &template.timestamp_header)
                .finish_non_exhaustive(),
        }
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
            sha256
                .template()
                .signature(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let sha512 = signer("secret: Jefe\nalgorithm: sha512\n");
        assert_eq!(
            sha512
                .template()
                .signature(b"Jefe", b"what do ya want for nothing?"),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
             9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
        let base64 = signer("secret: Jefe\nencoding: base64\n");
        assert_eq!(
            base64
                .template()
                .signature(b"Jefe", b"what do ya want for nothing?"),
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
            message_id: None,
        };
        let plain = signer("secret: s\n");
        assert_eq!(plain.template().payload(&request, "17"), br#"{"id":1}"#);
        let stamped = signer("secret: s\ntimestamp_header: X-Timestamp\nprefix: \"sha256=\"\n");
        assert_eq!(
            stamped.template().payload(&request, "17"),
            br#"17.{"id":1}"#
        );
        let mut headers = HeaderMap::new();
        stamped.sign_at(&request, 17, &mut headers);
        assert_eq!(headers["x-timestamp"], "17");
        let expected = format!(
            "sha256={}",
            stamped.template().signature(b"s", br#"17.{"id":1}"#)
        );
        assert_eq!(headers["x-signature"], expected.as_str());
        let full = signer(
            "secret: s\ntimestamp_header: X-Ts\npayload: \"v1:{method}:{path}:{query}:{timestamp}:{body}\"\n",
        );
        assert_eq!(
            full.template().payload(&request, "9"),
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

    #[test]
    fn named_schemes_take_only_a_secret_and_sign_with_the_message_id() {
        let config: SignConfig =
            serde_saphyr::from_str("secret: s\nscheme: stripe\nheader: X-Sig\n").unwrap();
        let error = Signer::build("api", &config, &MapEnv::default()).unwrap_err();
        assert!(error.to_string().contains("takes no `header`"), "{error}");
        let config: SignConfig =
            serde_saphyr::from_str("secret: \"whsec_not base64!\"\nscheme: standard_webhooks\n")
                .unwrap();
        let error = Signer::build("api", &config, &MapEnv::default()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("does not suit `standard_webhooks`"),
            "{error}"
        );
        assert!(!error.to_string().contains("not base64!"), "{error}");

        let signer =
            signer("secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\nscheme: standard_webhooks\n");
        let url = url("http://h/hooks");
        let request = Signed {
            method: "POST",
            url: &url,
            body: br#"{"test": 2432232314}"#,
            message_id: Some("msg_p5jXN8AQM9LWM0D4loKWxJek"),
        };
        let mut headers = HeaderMap::new();
        signer.sign_at(&request, 1_614_265_330, &mut headers);
        assert_eq!(headers["webhook-id"], "msg_p5jXN8AQM9LWM0D4loKWxJek");
        assert_eq!(headers["webhook-timestamp"], "1614265330");
        assert_eq!(
            headers["webhook-signature"],
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let anonymous = Signed {
            message_id: None,
            ..request
        };
        let mut first = HeaderMap::new();
        signer.sign_at(&anonymous, 1, &mut first);
        let mut second = HeaderMap::new();
        signer.sign_at(&anonymous, 1, &mut second);
        assert!(first["webhook-id"].to_str().unwrap().starts_with("msg_"));
        assert_ne!(first["webhook-id"], second["webhook-id"]);
    }

    #[test]
    fn a_timestamp_header_may_not_be_the_signature_header() {
        let config: SignConfig =
            serde_saphyr::from_str("secret: s\nheader: X-Sig\ntimestamp_header: x-sig\n").unwrap();
        let error = Signer::build("api", &config, &MapEnv::default()).unwrap_err();
        assert!(error.to_string().contains("must differ"), "{error}");
    }
}
