//! A webhook's `verify:` compiled: its signature scheme and a [`Verifier`]
//! holding the resolved secrets.
//!
//! Secrets are resolved (`${env:...}`, `${secret:...}`) when the plan is
//! compiled, with the environment the project was loaded with, so a plan is
//! complete when it exists: no request meets a webhook whose secrets are
//! still to come, and `check` reports an unusable secret with its file and
//! line as `run` would refuse it. Messages name the flow, the scheme and the
//! secret's position or variable, never its value.
//!
//! A plan kept only to finish the runs of an older version is compiled
//! without an environment: its webhooks are never served, and their
//! verifiers, holding no key, refuse every request.

use std::path::Path;

use patchbay_config::{
    Diagnostic, Env, HmacAlgorithm, Located, Report, SignatureEncoding, VerifyConfig, interpolate,
    is_header_name,
};
use patchbay_signature::{
    Algorithm, Encoding, HmacScheme, KeyError, Scheme, TimestampCheck, Verifier,
};

/// A webhook's signature check, ready to verify requests.
#[derive(Clone, Debug)]
pub struct VerifyPlan {
    pub scheme: Scheme,
    verifier: Verifier,
}

impl VerifyPlan {
    /// The verifier, with the resolved secrets.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }
}

/// Compiles flow `flow`'s `verify` (written in `file`) with the secrets
/// `env` resolves; the resolved secrets, to be masked wherever run data is
/// recorded, are added to `secrets`. `None` after reporting every problem.
/// Without `env`, the verifier refuses every request.
pub(crate) fn compile(
    file: &Path,
    flow: &str,
    verify: &Located<VerifyConfig>,
    env: Option<&dyn Env>,
    secrets: &mut Vec<String>,
    report: &mut Report,
) -> Option<VerifyPlan> {
    let scheme = scheme(&verify.value);
    let diagnostic = |message: String| {
        Diagnostic::new(
            file,
            verify.line,
            verify.column,
            format!("flow `{flow}`: verify.{}: {message}", verify.name()),
        )
    };
    let reported = report.len();
    check_options(&verify.value, &mut |message| {
        report.push(diagnostic(message))
    });
    if report.len() > reported {
        return None;
    }
    let Some(env) = env else {
        return Some(VerifyPlan {
            verifier: Verifier::refusing(scheme.clone()),
            scheme,
        });
    };
    let mut problem = |message: String| report.push(diagnostic(message));
    let written = verify.secrets();
    if written.is_empty() {
        problem("`secret` needs at least one secret".into());
        return None;
    }
    let mut values = Vec::with_capacity(written.len());
    for (index, secret) in written.iter().enumerate() {
        let which = if written.len() == 1 {
            "`secret`".to_string()
        } else {
            format!("secret {}", index + 1)
        };
        let value = match interpolate(secret, env) {
            Ok(value) => value,
            Err(e) => {
                problem(format!("{which}: {e}"));
                continue;
            }
        };
        match scheme.key(&value) {
            Ok(_) => values.push(value),
            Err(KeyError::Empty { .. }) => problem(format!("{which} is empty")),
            Err(KeyError::NotBase64 { .. }) => problem(format!(
                "{which} is not a Standard Webhooks secret (`whsec_` followed by base64)"
            )),
            Err(KeyError::NoSecret) => problem("`secret` needs at least one secret".into()),
        }
    }
    if values.len() != written.len() {
        return None;
    }
    let verifier = match Verifier::new(scheme.clone(), &values) {
        Ok(verifier) => verifier,
        Err(e) => {
            problem(e.to_string());
            return None;
        }
    };
    // `whsec_` secrets travel base64-encoded after the prefix.
    for value in values {
        if let Some(encoded) = value.strip_prefix("whsec_") {
            secrets.push(encoded.to_string());
        }
        secrets.push(value);
    }
    Some(VerifyPlan { scheme, verifier })
}

/// The signature scheme a `verify:` block describes.
/// The scheme's options: usable header names and tolerances.
fn check_options(config: &VerifyConfig, problem: &mut dyn FnMut(String)) {
    let tolerance = match config {
        VerifyConfig::StandardWebhooks { tolerance, .. }
        | VerifyConfig::Stripe { tolerance, .. } => *tolerance,
        VerifyConfig::GitHub { .. } => None,
        VerifyConfig::Hmac {
            header,
            timestamp_header,
            tolerance,
            ..
        } => {
            if !is_header_name(header) {
                problem(format!("`header: {header}` is not a valid header name"));
            }
            match timestamp_header {
                Some(name) if !is_header_name(name) => problem(format!(
                    "`timestamp_header: {name}` is not a valid header name"
                )),
                // One header cannot carry both: the signature would be
                // read as the timestamp, and every delivery refused.
                Some(name) if name.eq_ignore_ascii_case(header) => problem(format!(
                    "`timestamp_header` and `header` are both `{name}`; they must differ"
                )),
                None if tolerance.is_some() => {
                    problem("`tolerance` needs `timestamp_header`".into())
                }
                _ => {}
            }
            *tolerance
        }
    };
    if tolerance.is_some_and(|t| t.0.as_secs() == 0) {
        problem("`tolerance` must be at least one second".into());
    }
}

fn scheme(config: &VerifyConfig) -> Scheme {
    let tolerance = |t: &Option<patchbay_config::HumanDuration>| {
        t.map(|t| t.0)
            .unwrap_or(patchbay_signature::DEFAULT_TOLERANCE)
    };
    match config {
        VerifyConfig::StandardWebhooks { tolerance: t, .. } => Scheme::StandardWebhooks {
            tolerance: tolerance(t),
        },
        VerifyConfig::GitHub { .. } => Scheme::GitHub,
        VerifyConfig::Stripe { tolerance: t, .. } => Scheme::Stripe {
            tolerance: tolerance(t),
        },
        VerifyConfig::Hmac {
            header,
            algorithm,
            encoding,
            prefix,
            timestamp_header,
            tolerance: t,
            ..
        } => Scheme::Hmac(HmacScheme {
            header: header.clone(),
            algorithm: match algorithm {
                HmacAlgorithm::Sha256 => Algorithm::Sha256,
                HmacAlgorithm::Sha512 => Algorithm::Sha512,
            },
            encoding: match encoding {
                SignatureEncoding::Hex => Encoding::Hex,
                SignatureEncoding::Base64 => Encoding::Base64,
            },
            prefix: prefix.clone().filter(|p| !p.is_empty()),
            timestamp: timestamp_header.as_ref().map(|header| TimestampCheck {
                header: header.clone(),
                tolerance: tolerance(t),
            }),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::SystemTime;

    use patchbay_config::{MapEnv, Project, Source};

    use crate::plan::Plan;

    #[test]
    fn a_plan_for_stored_runs_refuses_its_webhooks_without_their_secrets() {
        let flow = "\
trigger:
  webhook:
    path: /hooks/a
    verify: { github: { secret: \"${env:GONE}\" } }
steps:
  - transform: '.'
";
        let empty = MapEnv::new([]);
        let project = Project::from_sources(
            Path::new("."),
            Source {
                path: "patchbay.yaml".into(),
                text: String::new(),
            },
            vec![Source {
                path: "flows/hook.yaml".into(),
                text: flow.into(),
            }],
            &empty,
        )
        .unwrap_or_else(|report| panic!("{report}"));
        assert!(
            Plan::compile(&project, &empty).is_err(),
            "the secret is unset"
        );
        let plan = Plan::compile_for_stored_runs(&project).unwrap_or_else(|r| panic!("{r}"));
        let hook = plan.flows["hook"].trigger.webhook().expect("a webhook");
        let verifier = hook.verify.as_ref().expect("verify").verifier();
        assert!(
            verifier
                .verify(
                    &[("x-hub-signature-256", "sha256=00")],
                    b"{}",
                    SystemTime::now()
                )
                .is_err()
        );
    }
}
