//! Arbitrary requests through every signature scheme: headers (any bytes, not
//! only text), body, secret and clock all come from the input. Verification
//! must never panic, and no signature may pass for a body it does not sign.
//!
//! Input layout: one byte choosing the scheme and its options, eight bytes of
//! clock (the request's arrival time), then NUL-separated fields: secret, body, and the values of the
//! headers in [`HEADERS`] (a missing field leaves its header out).
//!
//! A request passes only when it is genuinely signed (the seeds hold the
//! schemes' published examples); then the same headers over another body
//! must fail.

#![no_main]
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use patchbay_signature::{Algorithm, Encoding, HmacScheme, Scheme, TimestampCheck, Verifier};

/// Every header some scheme reads; the generic HMAC scheme uses the last two.
const HEADERS: [&str; 7] = [
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "X-Hub-Signature-256",
    "stripe-signature",
    "x-signature",
    "X-Timestamp",
];

/// Used when the fuzzed secret is not one the scheme accepts, so the request
/// is still verified.
const FALLBACK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn scheme(options: u8) -> Scheme {
    let tolerance = Duration::from_secs(u64::from(options >> 4) * 60);
    match options & 0b11 {
        0 => Scheme::StandardWebhooks { tolerance },
        1 => Scheme::GitHub,
        2 => Scheme::Stripe { tolerance },
        _ => Scheme::Hmac(HmacScheme {
            header: "X-Signature".into(),
            algorithm: if options & 0b100 == 0 {
                Algorithm::Sha256
            } else {
                Algorithm::Sha512
            },
            encoding: if options & 0b1000 == 0 {
                Encoding::Hex
            } else {
                Encoding::Base64
            },
            prefix: (options & 0b1_0000 != 0).then(|| "sha256=".into()),
            timestamp: (options & 0b10_0000 != 0).then(|| TimestampCheck {
                header: "x-timestamp".into(),
                tolerance,
            }),
        }),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&options, rest)) = data.split_first() else {
        return;
    };
    let Some((clock, rest)) = rest.split_first_chunk::<8>() else {
        return;
    };
    // Little-endian seconds since 1970; the top bit makes them seconds
    // before 1970, which a `SystemTime` may also hold.
    let secs = u64::from_le_bytes(*clock);
    let offset = Duration::from_secs(secs & !(1 << 63));
    let now = if secs >> 63 == 1 {
        UNIX_EPOCH.checked_sub(offset)
    } else {
        UNIX_EPOCH.checked_add(offset)
    }
    .unwrap_or(UNIX_EPOCH);
    let mut fields = rest.split(|&b| b == 0);
    let secret = String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    let body = fields.next().unwrap_or_default();
    let headers: Vec<(&str, &[u8])> = HEADERS.iter().copied().zip(fields).collect();

    let scheme = scheme(options);
    let verifier = Verifier::new(scheme.clone(), [secret.as_str()])
        .or_else(|_| Verifier::new(scheme, [FALLBACK_SECRET]))
        .expect("the fallback secret suits every scheme");
    let result = verifier.verify(headers.as_slice(), body, now);
    // Forging an HMAC is out of a fuzzer's reach, but the seeds hold
    // genuinely signed requests (the schemes' published examples), which
    // the fuzzer can reassemble. A genuine signature binds the body: the
    // same headers over any other body must fail. A check that lets through
    // a signature it should not (an empty or truncated MAC, a skipped
    // comparison) passes whatever the body, and is caught here.
    if result.is_ok() {
        let mut tampered = body.to_vec();
        match tampered.first_mut() {
            Some(first) => *first ^= 1,
            None => tampered.push(b' '),
        }
        assert!(
            verifier.verify(headers.as_slice(), &tampered, now).is_err(),
            "a signature passed for a body it does not sign"
        );
    }
    if let Err(error) = &result {
        // Messages are shown to senders: rendering them must not panic.
        let _ = error.to_string();
    }
    let _ = format!("{verifier:?}");
    // The same request through a header map (lowercase keys, first value
    // wins) gives the same answer.
    let map: BTreeMap<String, &[u8]> = headers
        .iter()
        .rev()
        .map(|(name, value)| (name.to_ascii_lowercase(), *value))
        .collect();
    assert_eq!(verifier.verify(&map, body, now), result);
});
