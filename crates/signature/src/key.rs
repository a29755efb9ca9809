//! [`Key`]: a secret turned into the bytes that key the HMAC.

use std::fmt;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::error::KeyError;

/// The prefix of Standard Webhooks secrets.
const WHSEC_PREFIX: &str = "whsec_";

/// Standard base64, padded or not: senders and secret generators differ.
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// HMAC key bytes. `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(Vec<u8>);

impl Key {
    /// The secret's UTF-8 bytes, used as they are (GitHub, Stripe — whose
    /// `whsec_` secrets are used whole, prefix included — and generic HMAC).
    pub fn raw(secret: &str) -> Result<Key, KeyError> {
        if secret.is_empty() {
            return Err(KeyError::Empty { position: 1 });
        }
        Ok(Key(secret.as_bytes().to_vec()))
    }

    /// A Standard Webhooks secret: `whsec_` then the base64 of the key. As
    /// in the specification's reference libraries the prefix is optional,
    /// but what follows must be base64.
    pub fn standard_webhooks(secret: &str) -> Result<Key, KeyError> {
        let encoded = secret.strip_prefix(WHSEC_PREFIX).unwrap_or(secret);
        if encoded.is_empty() {
            return Err(KeyError::Empty { position: 1 });
        }
        let bytes = BASE64
            .decode(encoded)
            .map_err(|_| KeyError::NotBase64 { position: 1 })?;
        if bytes.is_empty() {
            return Err(KeyError::Empty { position: 1 });
        }
        Ok(Key(bytes))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(****)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_secrets_are_base64_with_an_optional_prefix() {
        let with = Key::standard_webhooks("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let without = Key::standard_webhooks("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(with, without);
        assert_eq!(with.bytes().len(), 24);
        assert_eq!(
            Key::standard_webhooks("whsec_not base64!"),
            Err(KeyError::NotBase64 { position: 1 })
        );
        assert_eq!(
            Key::standard_webhooks("whsec_"),
            Err(KeyError::Empty { position: 1 })
        );
    }

    #[test]
    fn raw_secrets_are_used_whole_and_never_shown() {
        let key = Key::raw("whsec_abc").unwrap();
        assert_eq!(key.bytes(), b"whsec_abc");
        assert_eq!(format!("{key:?}"), "Key(****)");
        assert_eq!(Key::raw(""), Err(KeyError::Empty { position: 1 }));
    }
}
