//! A webhook's `verify` and `dedupe` keys: what loads, and what `check`
//! reports (without ever printing a secret). The secrets themselves are
//! resolved with the plan: see the `webhook_plan` tests.

use std::path::Path;

use patchbay_config::{HmacAlgorithm, MapEnv, Project, SignatureEncoding, VerifyConfig};
use patchbay_engine::Build;
use patchbay_engine::trigger::WebhookTrigger;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn env() -> MapEnv {
    MapEnv::new([
        ("HOOK_SECRET".to_string(), SECRET.to_string()),
        ("RAW_SECRET".to_string(), "raw-secret-value".to_string()),
        ("NOT_BASE64".to_string(), "whsec_@@not-base64@@".to_string()),
    ])
}

/// The project, once `check` finds nothing wrong with it.
fn load(trigger: &str) -> Result<Project, String> {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "patchbay.yaml", "");
    write(
        dir.path(),
        "flows/hook.yaml",
        &format!("trigger:\n  webhook:\n{trigger}steps:\n  - transform: '.'\n"),
    );
    Build::load(dir.path(), &env())
        .map(|build| build.project)
        .map_err(|report| report.to_string())
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn webhook(project: &Project) -> WebhookTrigger {
    let trigger = &project.flows["hook"].config.trigger.value;
    assert_eq!(trigger.kind.value, "webhook");
    trigger.settings.read().unwrap()
}

fn errors(trigger: &str) -> String {
    let text = load(trigger).unwrap_err();
    for secret in [SECRET, "raw-secret-value", "@@not-base64@@"] {
        assert!(!text.contains(secret), "a secret leaked: {text}");
    }
    text
}

#[test]
fn every_scheme_loads() {
    let project = load(
        "    path: /hooks/a\n    verify: { standard_webhooks: { secret: \"${env:HOOK_SECRET}\", tolerance: 2m } }\n    dedupe: '$headers[\"webhook-id\"]'\n",
    )
    .unwrap();
    let hook = webhook(&project);
    assert!(matches!(
        &hook.verify.as_ref().unwrap().value,
        VerifyConfig::StandardWebhooks { tolerance: Some(t), .. } if t.0.as_secs() == 120
    ));
    assert_eq!(
        hook.dedupe.as_deref().map(String::as_str),
        Some("$headers[\"webhook-id\"]")
    );

    let project = load(
        "    path: /hooks/b\n    verify:\n      github:\n        secret: [\"${env:RAW_SECRET}\", previous-secret]\n",
    )
    .unwrap();
    let hook = webhook(&project);
    let verify = hook.verify.as_ref().unwrap();
    assert_eq!(verify.name(), "github");
    assert_eq!(verify.secrets(), ["${env:RAW_SECRET}", "previous-secret"]);

    let project =
        load("    path: /hooks/c\n    verify: { stripe: { secret: whsec_abc } }\n").unwrap();
    assert!(matches!(
        &webhook(&project).verify.as_ref().unwrap().value,
        VerifyConfig::Stripe {
            tolerance: None,
            ..
        }
    ));

    let project = load(
        "    path: /hooks/d\n    verify:\n      hmac:\n        secret: s\n        header: X-Signature\n        algorithm: sha512\n        encoding: base64\n        prefix: 'sha512='\n        timestamp_header: X-Timestamp\n        tolerance: 30s\n",
    )
    .unwrap();
    match &webhook(&project).verify.as_ref().unwrap().value {
        VerifyConfig::Hmac {
            header,
            algorithm,
            encoding,
            prefix,
            timestamp_header,
            tolerance,
            ..
        } => {
            assert_eq!(header, "X-Signature");
            assert_eq!(*algorithm, HmacAlgorithm::Sha512);
            assert_eq!(*encoding, SignatureEncoding::Base64);
            assert_eq!(prefix.as_deref(), Some("sha512="));
            assert_eq!(timestamp_header.as_deref(), Some("X-Timestamp"));
            assert_eq!(tolerance.unwrap().0.as_secs(), 30);
        }
        other => panic!("{other:?}"),
    }
    let project =
        load("    path: /hooks/e\n    verify: { hmac: { secret: s, header: X-Sig } }\n").unwrap();
    assert!(matches!(
        &webhook(&project).verify.as_ref().unwrap().value,
        VerifyConfig::Hmac {
            algorithm: HmacAlgorithm::Sha256,
            encoding: SignatureEncoding::Hex,
            prefix: None,
            ..
        }
    ));
}

#[test]
fn scheme_options_are_checked() {
    let text = errors(
        "    path: /hooks/a\n    verify: { hmac: { secret: s, header: 'X Sig', tolerance: 1m } }\n",
    );
    assert!(
        text.contains("`header: X Sig` is not a valid header name"),
        "{text}"
    );
    assert!(
        text.contains("`tolerance` needs `timestamp_header`"),
        "{text}"
    );

    let text = errors(
        "    path: /hooks/a\n    verify: { hmac: { secret: s, header: X-Sig, timestamp_header: x-sig } }\n",
    );
    assert!(
        text.contains("`timestamp_header` and `header` are both `x-sig`; they must differ"),
        "{text}"
    );

    let text = errors(
        "    path: /hooks/a\n    verify: { standard_webhooks: { secret: \"${env:HOOK_SECRET}\", tolerance: 0s } }\n",
    );
    assert!(
        text.contains("`tolerance` must be at least one second"),
        "{text}"
    );

    let text = errors("    path: /hooks/a\n    verify: { github: { secret: s, tolerance: 1m } }\n");
    assert!(text.contains("unknown key `tolerance`"), "{text}");

    let text = errors("    path: /hooks/a\n    verify: { svix: { secret: s } }\n");
    assert!(text.contains("svix"), "{text}");

    let text = errors("    path: /hooks/a\n    dedupe: '  '\n");
    assert!(text.contains("`dedupe` is empty"), "{text}");
}

#[test]
fn schema_describes_verify_and_dedupe() {
    let schema = schemars::schema_for!(WebhookTrigger).to_value().to_string();
    for key in [
        "standard_webhooks",
        "github",
        "stripe",
        "hmac",
        "timestamp_header",
        "dedupe",
    ] {
        assert!(
            schema.contains(&format!("\"{key}\"")),
            "{key} missing: {schema}"
        );
    }
}
