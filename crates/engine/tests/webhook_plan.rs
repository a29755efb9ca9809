//! Compiling a webhook trigger's `verify` (its secrets resolved into a
//! verifier) and `dedupe` into its plan.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use patchbay_config::{MapEnv, Project, Source};
use patchbay_engine::{Plan, WebhookPlan};
use patchbay_signature::{Scheme, SignatureError};

fn project(flow: &str, env: &MapEnv) -> Project {
    Project::from_sources(
        Path::new("."),
        Source {
            path: PathBuf::from("patchbay.yaml"),
            text: String::new(),
        },
        vec![Source {
            path: PathBuf::from("flows/hook.yaml"),
            text: flow.to_string(),
        }],
        env,
    )
    .unwrap_or_else(|report| panic!("{report}"))
}

fn webhook(plan: &Plan) -> &WebhookPlan {
    plan.flows["hook"].trigger.webhook().expect("a webhook")
}

fn env(secret: &str) -> MapEnv {
    MapEnv::new([("HOOK_SECRET".to_string(), secret.to_string())])
}

const FLOW: &str = "\
trigger:
  webhook:
    path: /hooks/a
    verify: { stripe: { secret: \"${env:HOOK_SECRET}\", tolerance: 90s } }
    dedupe: '$headers[\"webhook-id\"] // .id'
steps:
  - transform: '.'
";

#[test]
fn verify_and_dedupe_compile_with_the_secrets_resolved() {
    let env = env("whsec_abc");
    let plan = Plan::compile(&project(FLOW, &env), &env).unwrap();
    let hook = webhook(&plan);
    let verify = hook.verify.as_ref().unwrap();
    assert_eq!(
        verify.scheme,
        Scheme::Stripe {
            tolerance: Duration::from_secs(90)
        }
    );
    assert!(hook.dedupe.is_some());
    let refused = verify.verifier().verify(
        &[("stripe-signature", "t=1,v1=00")],
        b"{}",
        SystemTime::now(),
    );
    assert!(
        matches!(refused, Err(SignatureError::TimestampTooOld { .. })),
        "{refused:?}"
    );
    assert!(
        !format!("{plan:?}").contains("whsec_abc"),
        "a secret leaked"
    );
}

/// Compiles `flow` with `env`; its report, checked to quote no secret.
fn errors(flow: &str, env: &MapEnv) -> String {
    let report = Plan::compile(&project(flow, env), env).unwrap_err();
    let text = report.to_string();
    for secret in ["whsec_abc", "@@not-base64@@"] {
        assert!(!text.contains(secret), "a secret leaked: {text}");
    }
    text
}

#[test]
fn an_unresolvable_secret_names_the_flow_and_line_not_the_value() {
    let text = errors(FLOW, &MapEnv::default());
    assert!(
        text.contains(
            "flows/hook.yaml:4:13: flow `hook`: verify.stripe: `secret`: environment variable \
             `HOOK_SECRET` is not set"
        ),
        "{text}"
    );
}

#[test]
fn unresolvable_and_malformed_secrets_are_reported_by_position() {
    let env = MapEnv::new([
        ("HOOK_SECRET".to_string(), "whsec_abc".to_string()),
        ("NOT_BASE64".to_string(), "whsec_@@not-base64@@".to_string()),
    ]);
    let flow = |verify: &str| {
        format!(
            "trigger:\n  webhook:\n    path: /hooks/a\n    verify: {verify}\nsteps:\n  - transform: '.'\n"
        )
    };
    let text = errors(
        &flow("{ standard_webhooks: { secret: [\"${env:HOOK_SECRET}\", \"${env:MISSING}\"] } }"),
        &env,
    );
    assert!(
        text.contains("flow `hook`: verify.standard_webhooks: secret 2: environment variable `MISSING` is not set"),
        "{text}"
    );
    assert!(text.contains("hook.yaml:4:"), "{text}");
    let text = errors(
        &flow("{ standard_webhooks: { secret: \"${env:NOT_BASE64}\" } }"),
        &env,
    );
    assert!(
        text.contains("`secret` is not a Standard Webhooks secret"),
        "{text}"
    );
    let text = errors(&flow("{ github: { secret: [] } }"), &env);
    assert!(text.contains("needs at least one secret"), "{text}");
    let text = errors(&flow("{ stripe: { secret: '' } }"), &env);
    assert!(text.contains("`secret` is empty"), "{text}");
}

#[test]
fn a_bad_secret_does_not_hide_the_steps_problems() {
    let flow = FLOW.replace("transform: '.'", "transform: '.a |'");
    let text = errors(&flow, &MapEnv::default());
    assert!(text.contains("`HOOK_SECRET` is not set"), "{text}");
    assert!(text.contains("invalid jq in `transform`"), "{text}");
}

#[test]
fn invalid_dedupe_jq_is_reported_with_its_location() {
    let flow = FLOW.replace("'$headers[\"webhook-id\"] // .id'", "'.id |'");
    let env = env("whsec_abc");
    let report = Plan::compile(&project(&flow, &env), &env).unwrap_err();
    let text = report.to_string();
    assert!(text.contains("flows/hook.yaml:5:"), "{text}");
    assert!(
        text.contains("flow `hook`: invalid jq in `dedupe`"),
        "{text}"
    );
}
