//! Verification of one request against a scheme and its keys.
//!
//! Each scheme is parsed into the signed content plus the candidate MACs the
//! request carries; [`matches`] then computes the MAC once per key and
//! compares it with each candidate in constant time.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Sha256, Sha512};

use crate::error::{KeyError, SignatureError};
use crate::headers::Headers;
use crate::key::{BASE64, Key};
use crate::scheme::{Algorithm, Encoding, HmacScheme, Scheme};

/// Bounds the HMAC comparisons one request can cause: a header listing
/// thousands of signatures is refused rather than compared entry by entry.
const MAX_SIGNATURES: usize = 16;

/// A scheme with its keys, built once from configuration and used for every
/// request. `Debug` shows the scheme and how many keys, never the keys.
#[derive(Clone)]
pub struct Verifier {
    scheme: Scheme,
    keys: Vec<Key>,
}

impl Verifier {
    /// Reads each secret as `scheme` expects it. Several secrets let a
    /// sender rotate: a request signed with any of them passes.
    pub fn new<I, S>(scheme: Scheme, secrets: I) -> Result<Verifier, KeyError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let keys = secrets
            .into_iter()
            .enumerate()
            .map(|(index, secret)| {
                scheme
                    .key(secret.as_ref())
                    .map_err(|e| at_position(e, index + 1))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(KeyError::NoSecret);
        }
        Ok(Verifier { scheme, keys })
    }

    /// A verifier without a key, which refuses every request: for a
    /// webhook that must not be served (fail closed), never one in use.
    pub fn refusing(scheme: Scheme) -> Verifier {
        Verifier {
            scheme,
            keys: Vec::new(),
        }
    }

    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    /// Checks a request: its headers and raw body, at time `now`.
    pub fn verify(
        &self,
        headers: &(impl Headers + ?Sized),
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), SignatureError> {
        verify(&self.scheme, &self.keys, headers, body, now)
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("scheme", &self.scheme)
            .field("keys", &self.keys.len())
            .finish()
    }
}

fn at_position(error: KeyError, position: usize) -> KeyError {
    match error {
        KeyError::NoSecret => KeyError::NoSecret,
        KeyError::Empty { .. } => KeyError::Empty { position },
        KeyError::NotBase64 { .. } => KeyError::NotBase64 { position },
    }
}

/// Checks a request signed under `scheme` with one of `keys`: its headers
/// and raw body, at time `now`. With no keys nothing matches.
pub fn verify(
    scheme: &Scheme,
    keys: &[Key],
    headers: &(impl Headers + ?Sized),
    body: &[u8],
    now: SystemTime,
) -> Result<(), SignatureError> {
    match scheme {
        Scheme::StandardWebhooks { tolerance } => {
            standard_webhooks(keys, headers, body, now, *tolerance)
        }
        Scheme::GitHub => github(keys, headers, body),
        Scheme::Stripe { tolerance } => stripe(keys, headers, body, now, *tolerance),
        Scheme::Hmac(hmac) => generic(hmac, keys, headers, body, now),
    }
}

const WEBHOOK_ID: &str = "webhook-id";
const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
const WEBHOOK_SIGNATURE: &str = "webhook-signature";
const GITHUB_SIGNATURE: &str = "x-hub-signature-256";
const STRIPE_SIGNATURE: &str = "stripe-signature";

fn standard_webhooks(
    keys: &[Key],
    headers: &(impl Headers + ?Sized),
    body: &[u8],
    now: SystemTime,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let id = text_header(headers, WEBHOOK_ID)?;
    let timestamp = text_header(headers, WEBHOOK_TIMESTAMP)?;
    let signature = text_header(headers, WEBHOOK_SIGNATURE)?;
    let id = id.trim();
    if id.is_empty() {
        return Err(malformed(WEBHOOK_ID, "it is empty"));
    }
    let timestamp = check_timestamp(WEBHOOK_TIMESTAMP, timestamp, now, tolerance)?;

    // Entries other than `v1` (e.g. asymmetric `v1a`) are for other
    // verifiers; an undecodable `v1` entry simply cannot match.
    let mut candidates = Vec::new();
    let mut entries = 0;
    for entry in signature.split_ascii_whitespace() {
        entries += 1;
        if let Some(("v1", encoded)) = entry.split_once(',')
            && let Ok(mac) = BASE64.decode(encoded)
        {
            candidates.push(mac);
        }
    }
    if entries > MAX_SIGNATURES {
        return Err(malformed(WEBHOOK_SIGNATURE, "it lists too many signatures"));
    }
    if candidates.is_empty() {
        return Err(malformed(
            WEBHOOK_SIGNATURE,
            "it holds no `v1,<base64>` signature",
        ));
    }
    let timestamp = timestamp.to_string();
    let content = [id.as_bytes(), b".", timestamp.as_bytes(), b".", body];
    matches(Algorithm::Sha256, keys, &content, &candidates)
}

fn github(
    keys: &[Key],
    headers: &(impl Headers + ?Sized),
    body: &[u8],
) -> Result<(), SignatureError> {
    let value = text_header(headers, GITHUB_SIGNATURE)?.trim();
    let Some(encoded) = value.strip_prefix("sha256=") else {
        return Err(malformed(
            GITHUB_SIGNATURE,
            "it does not start with `sha256=`",
        ));
    };
    let mac = hex::decode(encoded)
        .map_err(|_| malformed(GITHUB_SIGNATURE, "the signature is not hexadecimal"))?;
    matches(Algorithm::Sha256, keys, &[body], &[mac])
}

fn stripe(
    keys: &[Key],
    headers: &(impl Headers + ?Sized),
    body: &[u8],
    now: SystemTime,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let value = text_header(headers, STRIPE_SIGNATURE)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    let mut entries = 0;
    for item in value.split(',') {
        entries += 1;
        match item.trim().split_once('=') {
            Some(("t", t)) if timestamp.is_none() => timestamp = Some(t),
            // As in Stripe's libraries, a `v1` entry that is not hex is
            // skipped rather than failing the others.
            Some(("v1", encoded)) => {
                if let Ok(mac) = hex::decode(encoded) {
                    candidates.push(mac);
                }
            }
            _ => {}
        }
    }
    if entries > MAX_SIGNATURES {
        return Err(malformed(STRIPE_SIGNATURE, "it lists too many signatures"));
    }
    let Some(timestamp) = timestamp else {
        return Err(malformed(STRIPE_SIGNATURE, "it has no `t=` timestamp"));
    };
    let timestamp = check_timestamp(STRIPE_SIGNATURE, timestamp, now, tolerance)?;
    if candidates.is_empty() {
        return Err(malformed(
            STRIPE_SIGNATURE,
            "it holds no `v1=<hex>` signature",
        ));
    }
    let timestamp = timestamp.to_string();
    let content = [timestamp.as_bytes(), b".", body];
    matches(Algorithm::Sha256, keys, &content, &candidates)
}

fn generic(
    scheme: &HmacScheme,
    keys: &[Key],
    headers: &(impl Headers + ?Sized),
    body: &[u8],
    now: SystemTime,
) -> Result<(), SignatureError> {
    let header = scheme.header.to_ascii_lowercase();
    let value = text_header(headers, &header)?.trim();
    let encoded = match &scheme.prefix {
        Some(prefix) => value
            .strip_prefix(prefix.as_str())
            .ok_or_else(|| malformed(&header, "it does not start with the configured prefix"))?,
        None => value,
    };
    let mac = match scheme.encoding {
        Encoding::Hex => hex::decode(encoded)
            .map_err(|_| malformed(&header, "the signature is not hexadecimal"))?,
        Encoding::Base64 => BASE64
            .decode(encoded)
            .map_err(|_| malformed(&header, "the signature is not base64"))?,
    };
    match &scheme.timestamp {
        None => matches(scheme.algorithm, keys, &[body], &[mac]),
        Some(check) => {
            let name = check.header.to_ascii_lowercase();
            // The sender signed the header's text; it is used as sent once
            // it has proved to be a plain number of seconds.
            let raw = text_header(headers, &name)?.trim();
            check_timestamp(&name, raw, now, check.tolerance)?;
            let content = [raw.as_bytes(), b".", body];
            matches(scheme.algorithm, keys, &content, &[mac])
        }
    }
}

/// Whether the HMAC of `content` under any key equals any candidate.
fn matches(
    algorithm: Algorithm,
    keys: &[Key],
    content: &[&[u8]],
    candidates: &[Vec<u8>],
) -> Result<(), SignatureError> {
    let found = match algorithm {
        Algorithm::Sha256 => matches_with::<Hmac<Sha256>>(keys, content, candidates),
        Algorithm::Sha512 => matches_with::<Hmac<Sha512>>(keys, content, candidates),
    };
    if found {
        Ok(())
    } else {
        Err(SignatureError::NoMatch)
    }
}

fn matches_with<M: Mac + KeyInit + Clone>(
    keys: &[Key],
    content: &[&[u8]],
    candidates: &[Vec<u8>],
) -> bool {
    keys.iter().any(|key| {
        // HMAC accepts keys of any length, so this cannot fail; a key it
        // refused would match nothing.
        let Ok(mut mac) = <M as KeyInit>::new_from_slice(key.bytes()) else {
            return false;
        };
        for part in content {
            mac.update(part);
        }
        candidates
            .iter()
            .any(|candidate| mac.clone().verify_slice(candidate).is_ok())
    })
}

fn text_header<'a>(
    headers: &'a (impl Headers + ?Sized),
    name: &str,
) -> Result<&'a str, SignatureError> {
    let value = headers
        .header(name)
        .ok_or_else(|| SignatureError::MissingHeader(name.to_string()))?;
    std::str::from_utf8(value).map_err(|_| malformed(name, "it is not valid text"))
}

/// Parses a unix timestamp in seconds and checks it is within `tolerance`
/// of `now`, either way.
fn check_timestamp(
    header: &str,
    raw: &str,
    now: SystemTime,
    tolerance: Duration,
) -> Result<i64, SignatureError> {
    let raw = raw.trim();
    // Digits only: no sign, no fraction, and short enough for an i64.
    if raw.is_empty() || raw.len() > 15 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(header, "the timestamp is not unix seconds"));
    }
    let timestamp: i64 = raw
        .parse()
        .map_err(|_| malformed(header, "the timestamp is not unix seconds"))?;
    let now = match now.duration_since(UNIX_EPOCH) {
        Ok(since) => i128::from(since.as_secs()),
        Err(e) => -i128::from(e.duration().as_secs()),
    };
    let tolerance_secs = tolerance.as_secs();
    let offset = now - i128::from(timestamp);
    let distance = u64::try_from(offset.unsigned_abs()).unwrap_or(u64::MAX);
    if distance <= tolerance_secs {
        Ok(timestamp)
    } else if offset > 0 {
        Err(SignatureError::TimestampTooOld {
            header: header.to_string(),
            age_secs: distance,
            tolerance_secs,
        })
    } else {
        Err(SignatureError::TimestampInFuture {
            header: header.to_string(),
            ahead_secs: distance,
            tolerance_secs,
        })
    }
}

fn malformed(header: &str, reason: &'static str) -> SignatureError {
    SignatureError::MalformedHeader {
        header: header.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::TimestampCheck;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: u64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    /// The specification's published example, checked with:
    /// python3 -c "import hmac,hashlib,base64; print(base64.b64encode(hmac.new(
    ///   base64.b64decode('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'),
    ///   b'msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{\"test\": 2432232314}',
    ///   hashlib.sha256).digest()).decode())"
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn standard(secrets: &[&str]) -> Verifier {
        Verifier::new(Scheme::standard_webhooks(), secrets).unwrap()
    }

    fn request(signature: &str) -> Vec<(&'static str, String)> {
        vec![
            ("webhook-id", ID.to_string()),
            ("webhook-timestamp", TIMESTAMP.to_string()),
            ("webhook-signature", signature.to_string()),
        ]
    }

    #[test]
    fn published_standard_webhooks_example_passes() {
        let verifier = standard(&[SECRET]);
        verifier
            .verify(&request(SIGNATURE), BODY, at(TIMESTAMP))
            .unwrap();
    }

    #[test]
    fn a_refusing_verifier_refuses_a_good_signature() {
        let refusing = Verifier::refusing(Scheme::standard_webhooks());
        assert!(matches!(
            refusing.verify(&request(SIGNATURE), BODY, at(TIMESTAMP)),
            Err(SignatureError::NoMatch)
        ));
    }

    #[test]
    fn any_listed_signature_may_match() {
        let verifier = standard(&[SECRET]);
        let header = format!("v1,Zm9vYmFy v1a,c29tZXRoaW5n {SIGNATURE} v1,not-base64!");
        verifier
            .verify(&request(&header), BODY, at(TIMESTAMP))
            .unwrap();
        let wrong = "v1,Zm9vYmFy v1,YmFyYmF6";
        assert_eq!(
            verifier.verify(&request(wrong), BODY, at(TIMESTAMP)),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn any_configured_secret_may_match() {
        let rotated = standard(&["whsec_bmV3IHNlY3JldCBrZXkgYnl0ZXM=", SECRET]);
        rotated
            .verify(&request(SIGNATURE), BODY, at(TIMESTAMP))
            .unwrap();
        let other = standard(&["whsec_bmV3IHNlY3JldCBrZXkgYnl0ZXM="]);
        assert_eq!(
            other.verify(&request(SIGNATURE), BODY, at(TIMESTAMP)),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn a_changed_body_or_id_fails() {
        let verifier = standard(&[SECRET]);
        assert_eq!(
            verifier.verify(
                &request(SIGNATURE),
                br#"{"test": 2432232315}"#,
                at(TIMESTAMP)
            ),
            Err(SignatureError::NoMatch)
        );
        let mut headers = request(SIGNATURE);
        headers[0].1 = "msg_other".into();
        assert_eq!(
            verifier.verify(&headers, BODY, at(TIMESTAMP)),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn timestamps_must_be_within_tolerance_both_ways() {
        let verifier = standard(&[SECRET]);
        let headers = request(SIGNATURE);
        verifier
            .verify(&headers, BODY, at(TIMESTAMP + 300))
            .unwrap();
        verifier
            .verify(&headers, BODY, at(TIMESTAMP - 300))
            .unwrap();
        let old = verifier
            .verify(&headers, BODY, at(TIMESTAMP + 400))
            .unwrap_err();
        assert_eq!(
            old,
            SignatureError::TimestampTooOld {
                header: "webhook-timestamp".into(),
                age_secs: 400,
                tolerance_secs: 300
            }
        );
        assert!(old.to_string().contains("by 100 s"), "{old}");
        let ahead = verifier
            .verify(&headers, BODY, at(TIMESTAMP - 301))
            .unwrap_err();
        assert!(
            matches!(
                ahead,
                SignatureError::TimestampInFuture {
                    ahead_secs: 301,
                    ..
                }
            ),
            "{ahead:?}"
        );
        let strict = Verifier::new(
            Scheme::StandardWebhooks {
                tolerance: Duration::from_secs(10),
            },
            [SECRET],
        )
        .unwrap();
        assert!(strict.verify(&headers, BODY, at(TIMESTAMP + 11)).is_err());
    }

    #[test]
    fn missing_and_malformed_headers_are_named() {
        let verifier = standard(&[SECRET]);
        for missing in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            let headers: Vec<_> = request(SIGNATURE)
                .into_iter()
                .filter(|(name, _)| *name != missing)
                .collect();
            let error = verifier.verify(&headers, BODY, at(TIMESTAMP)).unwrap_err();
            assert_eq!(error, SignatureError::MissingHeader(missing.into()));
            assert_eq!(error.to_string(), format!("missing header `{missing}`"));
        }
        let mut headers = request(SIGNATURE);
        headers[1].1 = "-1614265330".into();
        assert!(matches!(
            verifier.verify(&headers, BODY, at(TIMESTAMP)),
            Err(SignatureError::MalformedHeader { header, .. }) if header == "webhook-timestamp"
        ));
        assert!(matches!(
            verifier.verify(&request("v2,abc"), BODY, at(TIMESTAMP)),
            Err(SignatureError::MalformedHeader { header, .. }) if header == "webhook-signature"
        ));
        let many = vec![SIGNATURE; MAX_SIGNATURES + 1].join(" ");
        assert!(matches!(
            verifier.verify(&request(&many), BODY, at(TIMESTAMP)),
            Err(SignatureError::MalformedHeader { .. })
        ));
    }

    #[test]
    fn errors_and_debug_never_show_secrets_or_expected_signatures() {
        let verifier = standard(&[SECRET]);
        let debug = format!("{verifier:?}");
        assert!(!debug.contains("MfKQ9r8G"), "{debug}");
        for body in [BODY, b"other".as_slice()] {
            for now in [TIMESTAMP, TIMESTAMP + 1000] {
                if let Err(e) = verifier.verify(&request("v1,AAAA"), body, at(now)) {
                    let text = e.to_string();
                    assert!(
                        !text.contains("MfKQ9r8G") && !text.contains("g0hM9SsE"),
                        "{text}"
                    );
                }
            }
        }
    }

    #[test]
    fn stripe_entries_are_parsed_leniently() {
        let mac = "00".repeat(32);
        let verifier = Verifier::new(Scheme::stripe(), ["whsec_test"]).unwrap();
        let header = |value: String| vec![("Stripe-Signature", value)];
        // Unknown schemes and undecodable entries are skipped, not fatal.
        assert_eq!(
            verifier.verify(
                &header(format!("t={TIMESTAMP},v0=abc,v1={mac},v1=zz")),
                BODY,
                at(TIMESTAMP)
            ),
            Err(SignatureError::NoMatch)
        );
        assert!(matches!(
            verifier.verify(&header(format!("v1={mac}")), BODY, at(TIMESTAMP)),
            Err(SignatureError::MalformedHeader { reason, .. }) if reason.contains("`t=`")
        ));
        assert!(matches!(
            verifier.verify(&header(format!("t={TIMESTAMP}")), BODY, at(TIMESTAMP)),
            Err(SignatureError::MalformedHeader { reason, .. }) if reason.contains("`v1=")
        ));
        assert!(matches!(
            verifier.verify(
                &header(format!("t={TIMESTAMP},v1={mac}")),
                BODY,
                at(TIMESTAMP + 301)
            ),
            Err(SignatureError::TimestampTooOld { .. })
        ));
    }

    #[test]
    fn generic_hmac_requires_its_prefix_and_encoding() {
        let scheme = Scheme::Hmac(HmacScheme {
            header: "X-Signature".into(),
            algorithm: Algorithm::Sha512,
            encoding: Encoding::Base64,
            prefix: Some("sha512=".into()),
            timestamp: Some(TimestampCheck {
                header: "X-Timestamp".into(),
                tolerance: Duration::from_secs(60),
            }),
        });
        let verifier = Verifier::new(scheme, ["k"]).unwrap();
        let headers = |signature: &str, timestamp: &str| {
            vec![
                ("x-signature", signature.to_string()),
                ("x-timestamp", timestamp.to_string()),
            ]
        };
        let ts = TIMESTAMP.to_string();
        assert!(matches!(
            verifier.verify(&headers("c2lnbmF0dXJl", &ts), BODY, at(TIMESTAMP)),
            Err(SignatureError::MalformedHeader { reason, .. }) if reason.contains("prefix")
        ));
        assert!(matches!(
            verifier.verify(&headers("sha512=@@", &ts), BODY, at(TIMESTAMP)),
            Err(SignatureError::MalformedHeader { reason, .. }) if reason.contains("base64")
        ));
        assert_eq!(
            verifier.verify(&headers("sha512=c2lnbmF0dXJl", &ts), BODY, at(TIMESTAMP)),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verifier.verify(&vec![("x-signature", "sha512=c2ln")], BODY, at(TIMESTAMP)),
            Err(SignatureError::MissingHeader("x-timestamp".into()))
        );
    }

    #[test]
    fn secrets_are_checked_when_the_verifier_is_built() {
        assert_eq!(
            Verifier::new(Scheme::GitHub, Vec::<String>::new()).unwrap_err(),
            KeyError::NoSecret
        );
        assert_eq!(
            Verifier::new(Scheme::standard_webhooks(), [SECRET, "whsec_!!"]).unwrap_err(),
            KeyError::NotBase64 { position: 2 }
        );
        assert_eq!(
            Verifier::new(Scheme::GitHub, ["a", ""]).unwrap_err(),
            KeyError::Empty { position: 2 }
        );
    }

    /// Arbitrary header bytes must yield an error, never a panic. A small
    /// xorshift generator keeps the inputs reproducible.
    #[test]
    fn arbitrary_headers_never_panic() {
        let schemes = [
            Scheme::standard_webhooks(),
            Scheme::GitHub,
            Scheme::stripe(),
            Scheme::Hmac(HmacScheme {
                header: "x-sig".into(),
                algorithm: Algorithm::Sha256,
                encoding: Encoding::Hex,
                prefix: Some("sha256=".into()),
                timestamp: Some(TimestampCheck {
                    header: "x-ts".into(),
                    tolerance: Duration::from_secs(5),
                }),
            }),
        ];
        let alphabet = b"v1,= t0123456789abcdefABCDEF+/_-.whsec\xff\x00";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let names = [
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "x-hub-signature-256",
            "stripe-signature",
            "x-sig",
            "x-ts",
        ];
        for _ in 0..2000 {
            let mut headers: Vec<(&str, Vec<u8>)> = Vec::new();
            for name in names {
                if next() % 4 == 0 {
                    continue;
                }
                let len = (next() % 80) as usize;
                let value = (0..len)
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                    .collect();
                headers.push((name, value));
            }
            let now = at(next() % (2 * TIMESTAMP));
            for scheme in &schemes {
                let verifier = Verifier::new(scheme.clone(), ["whsec_c2VjcmV0"]).unwrap();
                assert!(verifier.verify(&headers, BODY, now).is_err());
            }
        }
    }
}
