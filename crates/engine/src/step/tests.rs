//! A test-only step kind, registered the way a new kind is, and run through
//! the same compile and dispatch as the built-in ones.

use async_trait::async_trait;
use patchbay_config::Located;
use serde::Deserialize;
use serde_json::json;

use super::{Compiler, Description, Kind, KindEntry, Performed, Step, StepContext, kind_entry};
use crate::failure::StepError;

/// The test-only kinds: the one line a new kind adds, in a list of its own.
pub(super) static TEST_KINDS: &[KindEntry] = &[kind_entry::<Echo>()];

/// `echo: TEXT`: its result is `{echo: TEXT, input: .}`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EchoConfig {
    echo: Located<String>,
}

#[derive(Debug)]
pub(crate) struct Echo {
    text: String,
}

impl Kind for Echo {
    const KEY: &'static str = "echo";
    type Config = EchoConfig;

    fn compile(config: EchoConfig, compiler: &mut Compiler<'_>) -> Option<Self> {
        if config.echo.is_empty() {
            compiler.error(&config.echo, "`echo` needs some text".into());
            return None;
        }
        Some(Echo {
            text: config.echo.value,
        })
    }
}

#[async_trait]
impl Step for Echo {
    async fn perform(&self, cx: &StepContext<'_>) -> Result<Performed, StepError> {
        Ok(Performed::output(
            json!({ "echo": self.text, "input": cx.input }),
        ))
    }

    fn describe(&self) -> Description {
        Description {
            expression: Some(self.text.clone()),
            ..Description::default()
        }
    }
}

mod dispatch {
    use std::time::Duration;

    use patchbay_store::{RunStatus, StepStatus};
    use serde_json::json;

    use crate::Event;
    use crate::test_support::{Running, build};

    /// The test-only kind compiles, runs, is journalled and steers like a
    /// built-in one, with nothing but its registration line in the engine.
    #[tokio::test]
    async fn a_kind_registered_in_one_line_compiles_and_runs() {
        let build = build(
            "echoes",
            "\
trigger: { manual: {} }
steps:
  - id: first
    echo: hello
  - when: '$steps.first.echo == \"hello\"'
    switch:
      cases:
        - name: echoed
          when: 'true'
          steps:
            - id: inner
              echo: again
",
        )
        .unwrap_or_else(|report| panic!("{report}"));
        let node = Running::start(build).await;
        let store = &node.store;
        let run = node
            .engine
            .trigger(Event {
                flow: "echoes".into(),
                trigger: "manual",
                input: json!({"n": 1}),
                headers: json!({}),
                dedupe_key: None,
            })
            .await
            .unwrap()
            .run_id();
        let mut finished = None;
        for _ in 0..500 {
            let run = store.run(run).await.unwrap().unwrap();
            if run.status.is_final() {
                finished = Some(run);
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let finished = finished.expect("the run finished");
        assert_eq!(
            finished.status,
            RunStatus::Succeeded,
            "{:?}",
            finished.error
        );
        assert_eq!(
            finished.output,
            Some(json!({"echo": "again", "input": {"n": 1}}))
        );
        let journal = store.journal(run).await.unwrap();
        let steps: Vec<(&str, StepStatus)> = journal
            .iter()
            .map(|e| (e.step_id.as_str(), e.status))
            .collect();
        assert_eq!(
            steps,
            vec![
                ("first", StepStatus::Succeeded),
                ("step-2", StepStatus::Succeeded),
                ("inner", StepStatus::Succeeded),
            ]
        );
        assert_eq!(journal[1].output, Some(json!({"branch": "echoed"})));
        node.stop().await;
    }
}
