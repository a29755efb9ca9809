//! Every scheme against signatures made by Python's `hmac` module, so the
//! expected values come from an implementation independent of this crate.

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use patchbay_signature::{
    Algorithm, Encoding, HmacScheme, Scheme, SignatureError, TimestampCheck, Verifier,
};

/// Runs a Python snippet with `args` in `sys.argv[1:]` and returns its
/// trimmed standard output.
fn python(script: &str, args: &[&str]) -> String {
    let output = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sys, hmac, hashlib, base64\nargs = sys.argv[1:]\n{script}"
        ))
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf-8 output")
        .trim()
        .to_string()
}

/// `webhook-signature` value for Standard Webhooks: args are secret, id,
/// timestamp, body.
fn python_standard_webhooks(secret: &str, id: &str, timestamp: u64, body: &str) -> String {
    python(
        "secret = args[0][len('whsec_'):] if args[0].startswith('whsec_') else args[0]\n\
         key = base64.b64decode(secret)\n\
         content = f'{args[1]}.{args[2]}.{args[3]}'.encode()\n\
         print('v1,' + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode())",
        &[secret, id, &timestamp.to_string(), body],
    )
}

fn python_github(secret: &str, body: &str) -> String {
    python(
        "print('sha256=' + hmac.new(args[0].encode(), args[1].encode(), hashlib.sha256).hexdigest())",
        &[secret, body],
    )
}

fn python_stripe_v1(secret: &str, timestamp: u64, body: &str) -> String {
    python(
        "print(hmac.new(args[0].encode(), f'{args[1]}.{args[2]}'.encode(), hashlib.sha256).hexdigest())",
        &[secret, &timestamp.to_string(), body],
    )
}

/// args: digest name, encoding (`hex`/`base64`), secret, signed content.
fn python_hmac(algorithm: &str, encoding: &str, secret: &str, content: &str) -> String {
    python(
        "d = hmac.new(args[2].encode(), args[3].encode(), getattr(hashlib, args[0])).digest()\n\
         print(d.hex() if args[1] == 'hex' else base64.b64encode(d).decode())",
        &[algorithm, encoding, secret, content],
    )
}

fn now() -> SystemTime {
    SystemTime::now()
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

const BODY: &str = r#"{"type":"order.created","data":{"id":"ord_1","total":1250}}"#;

#[test]
fn published_vectors_match_python() {
    assert_eq!(
        python_standard_webhooks(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            r#"{"test": 2432232314}"#
        ),
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
    // GitHub's documented example.
    assert_eq!(
        python_github("It's a Secret to Everybody", "Hello, World!"),
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    );
    let github = Verifier::new(Scheme::GitHub, ["It's a Secret to Everybody"]).unwrap();
    github
        .verify(
            &[(
                "X-Hub-Signature-256",
                "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            )],
            b"Hello, World!",
            now(),
        )
        .unwrap();
}

#[test]
fn standard_webhooks_signed_by_python() {
    let secret = "whsec_c2VjcmV0LWtleS1mb3ItdGVzdHMtMTIzNDU2Nzg5MA==";
    let at = now();
    let ts = unix(at);
    let signature = python_standard_webhooks(secret, "msg_42", ts, BODY);
    let headers = |signature: &str| {
        vec![
            ("webhook-id", "msg_42".to_string()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", signature.to_string()),
        ]
    };
    let verifier = Verifier::new(Scheme::standard_webhooks(), [secret]).unwrap();
    verifier
        .verify(&headers(&signature), BODY.as_bytes(), at)
        .unwrap();
    // Several signatures in one header: the sender is rotating its secret.
    let previous = python_standard_webhooks("whsec_b2xkLXNlY3JldA==", "msg_42", ts, BODY);
    let both = format!("{previous} {signature}");
    verifier
        .verify(&headers(&both), BODY.as_bytes(), at)
        .unwrap();
    // Several configured secrets: the receiver is rotating.
    let rotating = Verifier::new(
        Scheme::standard_webhooks(),
        ["whsec_b2xkLXNlY3JldA==", secret],
    )
    .unwrap();
    rotating
        .verify(&headers(&previous), BODY.as_bytes(), at)
        .unwrap();
    assert_eq!(
        verifier.verify(&headers(&previous), BODY.as_bytes(), at),
        Err(SignatureError::NoMatch)
    );
    assert_eq!(
        verifier.verify(&headers(&signature), b"{}", at),
        Err(SignatureError::NoMatch)
    );
    assert!(matches!(
        verifier.verify(
            &headers(&signature),
            BODY.as_bytes(),
            at + Duration::from_secs(301)
        ),
        Err(SignatureError::TimestampTooOld { .. })
    ));
}

#[test]
fn github_signed_by_python() {
    let signature = python_github("gh-secret", BODY);
    let verifier = Verifier::new(Scheme::GitHub, ["gh-secret"]).unwrap();
    verifier
        .verify(
            &[("x-hub-signature-256", signature.as_str())],
            BODY.as_bytes(),
            now(),
        )
        .unwrap();
    let upper = format!("sha256={}", signature["sha256=".len()..].to_uppercase());
    verifier
        .verify(
            &[("x-hub-signature-256", upper.as_str())],
            BODY.as_bytes(),
            now(),
        )
        .unwrap();
    assert_eq!(
        Verifier::new(Scheme::GitHub, ["other"]).unwrap().verify(
            &[("x-hub-signature-256", signature.as_str())],
            BODY.as_bytes(),
            now()
        ),
        Err(SignatureError::NoMatch)
    );
    assert_eq!(
        verifier.verify(&[("x-hub-signature", "sha1=00")], BODY.as_bytes(), now()),
        Err(SignatureError::MissingHeader("x-hub-signature-256".into()))
    );
}

#[test]
fn stripe_signed_by_python() {
    // Stripe keys the HMAC with the whole secret, `whsec_` included.
    let secret = "whsec_stripe_test_secret";
    let at = now();
    let ts = unix(at);
    let v1 = python_stripe_v1(secret, ts, BODY);
    let old = python_stripe_v1("whsec_previous", ts, BODY);
    let header = format!(
        "t={ts},v1={old},v1={v1},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"
    );
    let verifier = Verifier::new(Scheme::stripe(), [secret]).unwrap();
    verifier
        .verify(
            &[("Stripe-Signature", header.as_str())],
            BODY.as_bytes(),
            at,
        )
        .unwrap();
    let only_old = format!("t={ts},v1={old}");
    assert_eq!(
        verifier.verify(
            &[("Stripe-Signature", only_old.as_str())],
            BODY.as_bytes(),
            at
        ),
        Err(SignatureError::NoMatch)
    );
    let shifted = format!("t={},v1={v1}", ts + 1);
    assert_eq!(
        verifier.verify(
            &[("Stripe-Signature", shifted.as_str())],
            BODY.as_bytes(),
            at
        ),
        Err(SignatureError::NoMatch)
    );
    assert!(matches!(
        verifier.verify(
            &[("Stripe-Signature", header.as_str())],
            BODY.as_bytes(),
            at + Duration::from_secs(600)
        ),
        Err(SignatureError::TimestampTooOld {
            age_secs: 600,
            tolerance_secs: 300,
            ..
        })
    ));
}

#[test]
fn generic_hmac_signed_by_python() {
    for (algorithm, python_name) in [(Algorithm::Sha256, "sha256"), (Algorithm::Sha512, "sha512")] {
        for (encoding, python_encoding) in [(Encoding::Hex, "hex"), (Encoding::Base64, "base64")] {
            let mac = python_hmac(python_name, python_encoding, "generic-secret", BODY);
            let verifier = Verifier::new(
                Scheme::Hmac(HmacScheme {
                    header: "X-Signature".into(),
                    algorithm,
                    encoding,
                    prefix: None,
                    timestamp: None,
                }),
                ["generic-secret"],
            )
            .unwrap();
            verifier
                .verify(&[("x-signature", mac.as_str())], BODY.as_bytes(), now())
                .unwrap_or_else(|e| panic!("{python_name} {python_encoding}: {e}"));
            assert_eq!(
                verifier.verify(&[("x-signature", mac.as_str())], b"{}", now()),
                Err(SignatureError::NoMatch)
            );
        }
    }
}

#[test]
fn generic_hmac_with_prefix_and_timestamp_signed_by_python() {
    let at = now();
    let ts = unix(at).to_string();
    let mac = python_hmac("sha256", "hex", "generic-secret", &format!("{ts}.{BODY}"));
    let signature = format!("v1={mac}");
    let verifier = Verifier::new(
        Scheme::Hmac(HmacScheme {
            header: "X-Signature".into(),
            algorithm: Algorithm::Sha256,
            encoding: Encoding::Hex,
            prefix: Some("v1=".into()),
            timestamp: Some(TimestampCheck {
                header: "X-Signature-Timestamp".into(),
                tolerance: Duration::from_secs(60),
            }),
        }),
        ["generic-secret"],
    )
    .unwrap();
    let headers = [
        ("X-Signature", signature.as_str()),
        ("X-Signature-Timestamp", ts.as_str()),
    ];
    verifier.verify(&headers, BODY.as_bytes(), at).unwrap();
    assert!(matches!(
        verifier.verify(&headers, BODY.as_bytes(), at - Duration::from_secs(61)),
        Err(SignatureError::TimestampInFuture { .. })
    ));
    let unprefixed = [
        ("X-Signature", mac.as_str()),
        ("X-Signature-Timestamp", ts.as_str()),
    ];
    assert!(matches!(
        verifier.verify(&unprefixed, BODY.as_bytes(), at),
        Err(SignatureError::MalformedHeader { .. })
    ));
}
