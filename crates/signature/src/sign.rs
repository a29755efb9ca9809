//! The sending side of the named schemes: the headers a sender adds so that
//! a receiver verifying with [`crate::verify`] (or the scheme's official
//! library) accepts the request. Generic HMAC signing, with its payload
//! templates, belongs to the connector that sends.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::key::{BASE64, Key};

/// The scheme a request is signed under, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Named {
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`.
    StandardWebhooks,
    /// `Stripe-Signature: t=<unix>,v1=<hex>`.
    Stripe,
    /// `X-Hub-Signature-256: sha256=<hex>`.
    GitHub,
}

impl Named {
    /// The scheme's name as written in configuration.
    pub fn name(self) -> &'static str {
        match self {
            Named::StandardWebhooks => "standard_webhooks",
            Named::Stripe => "stripe",
            Named::GitHub => "github",
        }
    }

    /// Turns the configured secret into a key, as the scheme's receivers
    /// read it.
    pub fn key(self, secret: &str) -> Result<Key, crate::KeyError> {
        match self {
            Named::StandardWebhooks => Key::standard_webhooks(secret),
            Named::Stripe | Named::GitHub => Key::raw(secret),
        }
    }

    /// The headers to send with `body`: `id` is the message's identity,
    /// the same on every attempt to deliver it (only Standard Webhooks
    /// sends it), `timestamp` the unix time of this attempt.
    pub fn headers(
        self,
        key: &Key,
        id: &str,
        timestamp: u64,
        body: &[u8],
    ) -> Vec<(&'static str, String)> {
        let timestamp = timestamp.to_string();
        match self {
            Named::StandardWebhooks => {
                let mac = hmac(
                    key,
                    &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
                );
                vec![
                    ("webhook-id", id.to_string()),
                    ("webhook-timestamp", timestamp),
                    ("webhook-signature", format!("v1,{}", BASE64.encode(mac))),
                ]
            }
            Named::Stripe => {
                let mac = hmac(key, &[timestamp.as_bytes(), b".", body]);
                vec![(
                    "stripe-signature",
                    format!("t={timestamp},v1={}", hex::encode(mac)),
                )]
            }
            Named::GitHub => {
                let mac = hmac(key, &[body]);
                vec![(
                    "x-hub-signature-256",
                    format!("sha256={}", hex::encode(mac)),
                )]
            }
        }
    }
}

fn hmac(key: &Key, content: &[&[u8]]) -> Vec<u8> {
    // HMAC takes keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.bytes()) else {
        return Vec::new();
    };
    for part in content {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::{Scheme, verify};

    fn verifies(named: Named, scheme: Scheme, secret: &str) {
        let key = named.key(secret).unwrap();
        let body = br#"{"type":"order.paid","id":7}"#;
        let headers: HashMap<String, Vec<u8>> = named
            .headers(&key, "msg_2Kq", 1_700_000_000, body)
            .into_iter()
            .map(|(name, value)| (name.to_string(), value.into_bytes()))
            .collect();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_030);
        let keys = [scheme.key(secret).unwrap()];
        assert_eq!(
            verify(&scheme, &keys, &headers, body, now),
            Ok(()),
            "{named:?}"
        );
        let tampered = br#"{"type":"order.paid","id":8}"#;
        assert!(verify(&scheme, &keys, &headers, tampered, now).is_err());
        let other = [scheme.key("whsec_b3RoZXIgc2VjcmV0").unwrap()];
        assert!(verify(&scheme, &other, &headers, body, now).is_err());
    }

    #[test]
    fn each_named_scheme_verifies_with_its_receiving_side() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        verifies(Named::StandardWebhooks, Scheme::standard_webhooks(), secret);
        verifies(Named::Stripe, Scheme::stripe(), secret);
        verifies(Named::GitHub, Scheme::GitHub, secret);
    }

    #[test]
    fn standard_webhooks_matches_the_specification_example() {
        // The example of the Standard Webhooks specification's reference
        // libraries (msg_p5jXN8AQM9LWM0D4loKWxJek, 1614265330).
        let key = Named::StandardWebhooks
            .key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        let headers = Named::StandardWebhooks.headers(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            headers[2],
            (
                "webhook-signature",
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".to_string()
            )
        );
    }
}
