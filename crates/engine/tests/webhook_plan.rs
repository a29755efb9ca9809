//! Compiling a webhook trigger's `verify` and `dedupe` into its plan.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use patchbay_config::{MapEnv, Project, Source};
use patchbay_engine::{Plan, TriggerPlan, WebhookPlan};
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
    match &plan.flows["hook"].trigger {
        TriggerPlan::Webhook(hook) => hook,
        _ => panic!("not a webhook"),
    }
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
fn verify_and_dedupe_compile_and_secrets_resolve_at_start() {
    let env = env("whsec_abc");
    let mut plan = Plan::compile(&project(FLOW, &env)).unwrap();
    let hook = webhook(&plan);
    let verify = hook.verify.as_ref().unwrap();
    assert_eq!(
        verify.scheme,
        Scheme::Stripe {
            tolerance: Duration::from_secs(90)
        }
    );
    assert!(verify.verifier().is_none(), "secrets resolve only at start");
    assert!(hook.dedupe.is_some());

    plan.resolve_secrets(&env).unwrap();
    let verifier = webhook(&plan).verify.as_ref().unwrap().verifier().unwrap();
    let refused = verifier.verify(
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

#[test]
fn an_unresolvable_secret_at_start_names_the_flow_not_the_value() {
    let mut plan = Plan::compile(&project(FLOW, &env("whsec_abc"))).unwrap();
    let error = plan.resolve_secrets(&MapEnv::default()).unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains(
            "flow `hook`: verify.stripe: secret 1: environment variable `HOOK_SECRET` is not set"
        ),
        "{text}"
    );
}

#[test]
fn invalid_dedupe_jq_is_reported_with_its_location() {
    let flow = FLOW.replace("'$headers[\"webhook-id\"] // .id'", "'.id |'");
    let report = Plan::compile(&project(&flow, &env("whsec_abc"))).unwrap_err();
    let text = report.to_string();
    assert!(text.contains("flows/hook.yaml:5:"), "{text}");
    assert!(
        text.contains("flow `hook`: invalid jq in `dedupe`"),
        "{text}"
    );
}
