//! A webhook's `verify` settings: how its sender signs requests. The
//! engine's `webhook` trigger reads them, and its verifier checks them.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::duration::HumanDuration;

/// How a webhook's sender signs its requests. Secrets may use
/// `${env:NAME}`; a list of secrets lets one be rotated (any may match).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum VerifyConfig {
    /// Standard Webhooks (`webhook-id`, `webhook-timestamp`,
    /// `webhook-signature`); secrets are `whsec_` + base64.
    StandardWebhooks {
        secret: SecretList,
        /// Largest distance between the signed timestamp and now, either
        /// way (default `5m`).
        #[serde(default)]
        tolerance: Option<HumanDuration>,
    },
    /// GitHub's `X-Hub-Signature-256: sha256=<hex>`.
    #[serde(rename = "github")]
    GitHub { secret: SecretList },
    /// Stripe's `Stripe-Signature: t=...,v1=...`.
    Stripe {
        secret: SecretList,
        /// Largest distance between `t` and now, either way (default `5m`).
        #[serde(default)]
        tolerance: Option<HumanDuration>,
    },
    /// An HMAC of the body (or of `{timestamp}.{body}`) in one header.
    Hmac {
        secret: SecretList,
        /// The header holding the signature, e.g. `X-Signature`.
        header: String,
        /// `sha256` (default) or `sha512`.
        #[serde(default)]
        algorithm: HmacAlgorithm,
        /// `hex` (default) or `base64`.
        #[serde(default)]
        encoding: SignatureEncoding,
        /// Text before the signature, e.g. `sha256=`.
        #[serde(default)]
        prefix: Option<String>,
        /// A header holding the unix time (seconds) of signing; the signed
        /// content becomes `{timestamp}.{body}`.
        #[serde(default)]
        timestamp_header: Option<String>,
        /// With `timestamp_header`: largest distance from now, either way
        /// (default `5m`).
        #[serde(default)]
        tolerance: Option<HumanDuration>,
    },
}

impl VerifyConfig {
    /// The scheme's key as written in YAML.
    pub fn name(&self) -> &'static str {
        match self {
            VerifyConfig::StandardWebhooks { .. } => "standard_webhooks",
            VerifyConfig::GitHub { .. } => "github",
            VerifyConfig::Stripe { .. } => "stripe",
            VerifyConfig::Hmac { .. } => "hmac",
        }
    }

    /// The configured secrets, uninterpolated.
    pub fn secrets(&self) -> &[String] {
        match self {
            VerifyConfig::StandardWebhooks { secret, .. }
            | VerifyConfig::GitHub { secret }
            | VerifyConfig::Stripe { secret, .. }
            | VerifyConfig::Hmac { secret, .. } => secret.as_slice(),
        }
    }
}

/// One secret, or several while one is being rotated.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SecretList {
    One(String),
    Many(Vec<String>),
}

impl SecretList {
    pub fn as_slice(&self) -> &[String] {
        match self {
            SecretList::One(secret) => std::slice::from_ref(secret),
            SecretList::Many(secrets) => secrets,
        }
    }
}

/// The digest of a generic HMAC signature.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HmacAlgorithm {
    #[default]
    Sha256,
    Sha512,
}

/// How a generic HMAC signature is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignatureEncoding {
    #[default]
    Hex,
    Base64,
}
