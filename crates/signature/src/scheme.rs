//! [`Scheme`]: how a sender signs its requests.

use std::time::Duration;

use crate::error::KeyError;
use crate::key::Key;

/// How far a signed timestamp may be from now, in either direction, unless
/// configured otherwise: five minutes, as Standard Webhooks and Stripe use.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// A signature scheme and its settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`,
    /// `webhook-signature: v1,<base64> [v1,<base64> ...]`, HMAC-SHA256 over
    /// `{id}.{timestamp}.{body}`, keyed by the base64-decoded `whsec_` secret.
    StandardWebhooks { tolerance: Duration },
    /// GitHub: `x-hub-signature-256: sha256=<hex>`, HMAC-SHA256 over the body.
    GitHub,
    /// Stripe: `stripe-signature: t=<unix>,v1=<hex>[,v1=<hex>...]`,
    /// HMAC-SHA256 over `{t}.{body}`, keyed by the whole secret.
    Stripe { tolerance: Duration },
    /// Any other HMAC signature.
    Hmac(HmacScheme),
}

impl Scheme {
    /// Standard Webhooks with the default tolerance.
    pub fn standard_webhooks() -> Scheme {
        Scheme::StandardWebhooks {
            tolerance: DEFAULT_TOLERANCE,
        }
    }

    /// Stripe with the default tolerance.
    pub fn stripe() -> Scheme {
        Scheme::Stripe {
            tolerance: DEFAULT_TOLERANCE,
        }
    }

    /// The scheme's name as written in configuration.
    pub fn name(&self) -> &'static str {
        match self {
            Scheme::StandardWebhooks { .. } => "standard_webhooks",
            Scheme::GitHub => "github",
            Scheme::Stripe { .. } => "stripe",
            Scheme::Hmac(_) => "hmac",
        }
    }

    /// Turns one configured secret into a key, as this scheme reads secrets.
    pub fn key(&self, secret: &str) -> Result<Key, KeyError> {
        match self {
            Scheme::StandardWebhooks { .. } => Key::standard_webhooks(secret),
            Scheme::GitHub | Scheme::Stripe { .. } | Scheme::Hmac(_) => Key::raw(secret),
        }
    }
}

/// A generic HMAC signature: `header: [prefix]<encoded MAC>`, over the body
/// or, with a timestamp header, over `{timestamp}.{body}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HmacScheme {
    /// The header holding the signature (any case).
    pub header: String,
    pub algorithm: Algorithm,
    pub encoding: Encoding,
    /// Text before the encoded MAC, e.g. `sha256=`; it must be present.
    pub prefix: Option<String>,
    /// A signed timestamp, checked against a tolerance.
    pub timestamp: Option<TimestampCheck>,
}

/// A header carrying the unix time (in seconds) the request was signed at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimestampCheck {
    pub header: String,
    pub tolerance: Duration,
}

/// The digest behind the HMAC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Algorithm {
    #[default]
    Sha256,
    Sha512,
}

/// How the MAC is written in the header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Encoding {
    /// Lowercase or uppercase hexadecimal.
    #[default]
    Hex,
    /// Standard base64, padded or not.
    Base64,
}
