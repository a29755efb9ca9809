//! A test-only trigger kind that starts runs by itself, registered the way
//! a new kind is, and run through the same compile and source dispatch as
//! the built-in ones.

use futures::FutureExt;
use futures::future::BoxFuture;
use patchbay_config::Located;
use patchbay_store::NewRun;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Kind, KindEntry, SourceContext, Trigger, TriggerCompiler, kind_entry};

/// The test-only kinds: the one line a new kind adds, in a list of its own.
pub(super) static TEST_KINDS: &[KindEntry] = &[kind_entry::<Burst>()];

/// `burst: {count: N}`: starts `N` runs as soon as its source starts, each
/// with input `{n: I}` and a dedupe key, as a broker subscription would
/// start one per message.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BurstConfig {
    count: Located<u32>,
}

#[derive(Debug)]
pub(crate) struct Burst {
    count: u32,
}

impl Kind for Burst {
    const KEY: &'static str = "burst";
    type Config = BurstConfig;

    fn compile(config: BurstConfig, compiler: &mut TriggerCompiler<'_>) -> Option<Self> {
        if config.count.value == 0 {
            compiler.error(
                config.count.line,
                config.count.column,
                "`count` must be at least 1".into(),
            );
            return None;
        }
        Some(Burst {
            count: config.count.value,
        })
    }
}

impl Trigger for Burst {
    fn describe(&self) -> Map<String, Value> {
        Map::from_iter([("count".to_string(), json!(self.count))])
    }

    fn source(&self, cx: SourceContext) -> Option<BoxFuture<'static, ()>> {
        let count = self.count;
        Some(
            async move {
                for n in 0..count {
                    let run = NewRun {
                        id: uuid::Uuid::now_v7(),
                        flow: cx.flow.clone(),
                        trigger: Burst::KEY.into(),
                        input: json!({ "n": n }),
                        headers: json!({}),
                        config_version: cx.config_version.clone(),
                        dedupe_key: Some(format!("burst:{}:{n}", cx.flow)),
                        parent: None,
                        lease: None,
                    };
                    if cx.intake.submit(run).await.is_err() {
                        return;
                    }
                }
                cx.shutdown.cancelled().await;
            }
            .boxed(),
        )
    }
}

mod dispatch {
    use std::time::Duration;

    use patchbay_config::Report;
    use patchbay_store::{RunFilter, RunStatus};

    use crate::test_support::Running;

    fn build(flow: &str) -> Result<crate::Build, Report> {
        crate::test_support::build("bursts", flow)
    }

    #[test]
    fn its_settings_are_checked_at_their_line() {
        let report = build("trigger:\n  burst:\n    count: 0\nsteps:\n  - transform: .\n")
            .err()
            .expect("a count of 0 is refused")
            .to_string();
        assert!(
            report.contains("flows/bursts.yaml:3:")
                && report.contains("`count` must be at least 1"),
            "{report}"
        );
        let report = build("trigger:\n  burst: { cuont: 2 }\nsteps:\n  - transform: .\n")
            .err()
            .expect("a misspelt key is refused")
            .to_string();
        assert!(
            report.contains("burst: unknown key `cuont`") && report.contains("`count`"),
            "{report}"
        );
    }

    /// The test-only kind compiles, and its source starts runs that the
    /// engine executes, with nothing but its registration line in the engine.
    #[tokio::test]
    async fn a_kind_registered_in_one_line_starts_runs() {
        let build = build("trigger:\n  burst: { count: 3 }\nsteps:\n  - transform: '.n * 10'\n")
            .unwrap_or_else(|report| panic!("{report}"));
        let trigger = &build.plan.flows["bursts"].trigger;
        assert_eq!(trigger.kind(), "burst");
        assert!(trigger.webhook().is_none());
        let node = Running::start(build).await;
        let mut outputs = Vec::new();
        for _ in 0..500 {
            let runs = node.store.list_runs(&RunFilter::default()).await.unwrap();
            if runs.len() == 3 && runs.iter().all(|run| run.status == RunStatus::Succeeded) {
                outputs = runs
                    .iter()
                    .map(|run| (run.trigger.clone(), run.output.clone()))
                    .collect();
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        outputs.sort_by_key(|(_, output)| output.as_ref().and_then(|o| o.as_i64()));
        assert_eq!(
            outputs,
            vec![
                ("burst".to_string(), Some(serde_json::json!(0))),
                ("burst".to_string(), Some(serde_json::json!(10))),
                ("burst".to_string(), Some(serde_json::json!(20))),
            ]
        );
        node.stop().await;
    }
}

#[test]
fn a_broker_payload_is_its_json_else_its_text() {
    use super::payload_input;
    assert_eq!(payload_input(br#"{"id": 7}"#), json!({ "id": 7 }));
    assert_eq!(payload_input(b"hello"), json!("hello"));
    assert_eq!(payload_input(b""), json!(null));
}
