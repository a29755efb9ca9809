//! Webhook signatures: proof that an event was sent by the party holding a
//! shared secret, and recently. Verified on the way in ([`verify`]), and
//! produced on the way out for the named schemes ([`Named`]), so both sides
//! of each scheme live in one place.
//!
//! Four schemes are understood:
//!
//! - [`Scheme::StandardWebhooks`] (<https://www.standardwebhooks.com>):
//!   `webhook-id`, `webhook-timestamp` and `webhook-signature` headers,
//!   HMAC-SHA256 over `{id}.{timestamp}.{body}`, base64, `whsec_` secrets;
//! - [`Scheme::GitHub`]: `X-Hub-Signature-256: sha256=<hex>` over the body;
//! - [`Scheme::Stripe`]: `Stripe-Signature: t=<ts>,v1=<hex>`, over
//!   `{t}.{body}`;
//! - [`Scheme::Hmac`]: a configurable header, digest, encoding, prefix and
//!   optional timestamp header.
//!
//! The crate is pure: no I/O, no clock (the caller passes `now`), no
//! allocation proportional to anything but the input. Every input path
//! returns a [`SignatureError`] rather than panicking, so it can be fed
//! arbitrary bytes. Signatures are compared in constant time (`hmac`'s
//! `verify_slice`), and no error, `Debug` or `Display` output contains a
//! secret or an expected signature.
//!
//! Several secrets may be configured at once, so a secret can be rotated
//! without refusing events signed with the previous one: an event passes
//! when any signature it carries matches any secret.

#![forbid(unsafe_code)]

mod error;
mod headers;
mod key;
mod scheme;
mod sign;
mod verify;

pub use error::{KeyError, SignatureError};
pub use headers::Headers;
pub use key::Key;
pub use scheme::{Algorithm, DEFAULT_TOLERANCE, Encoding, HmacScheme, Scheme, TimestampCheck};
pub use sign::Named;
pub use verify::{Verifier, verify};
