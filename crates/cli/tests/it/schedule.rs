//! Schedules fire on time. Cron expressions with a seconds field keep the
//! test short without a fake clock.

use std::time::Duration;

use chrono::{DateTime, Utc};
use patchbay_store::{RunFilter, RunStatus};

use crate::support::{TestProject, env, eventually};

#[tokio::test]
async fn cron_flow_fires_on_time_with_state_carried_between_runs() {
    let project = TestProject::new(
        "",
        &[(
            "tick",
            "\
trigger: { schedule: \"* * * * * *\" }
steps:
  - id: count
    transform: '($state.count // 0) + 1'
  - set_state: '{count: $steps.count, last: .scheduled_at}'
",
        )],
    );
    let node = project.start(&env(&[])).await;
    let store = node.engine.store().clone();
    let fired = eventually(Duration::from_secs(10), || {
        let store = store.clone();
        async move {
            let filter = RunFilter {
                flow: Some("tick".into()),
                status: Some(RunStatus::Succeeded),
                ..Default::default()
            };
            store.list_runs(&filter).await.unwrap().len() >= 3
        }
    })
    .await;
    assert!(fired, "the schedule did not fire three times");
    node.stop().await.unwrap();

    let mut runs = store
        .list_runs(&RunFilter {
            flow: Some("tick".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    runs.sort_by_key(|r| r.created_at);
    for run in &runs {
        assert_eq!(run.trigger, "schedule");
        let scheduled: DateTime<Utc> = run.input["scheduled_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            scheduled.timestamp_subsec_millis(),
            0,
            "fires on the second"
        );
        let late = run.created_at - scheduled;
        assert!(
            late >= chrono::Duration::zero() && late < chrono::Duration::milliseconds(900),
            "committed {late} after its time"
        );
    }
    let state = store.flow_state("tick").await.unwrap();
    let succeeded = runs
        .iter()
        .filter(|r| r.status == RunStatus::Succeeded)
        .count();
    assert_eq!(
        state["count"], succeeded as u64,
        "state carried across runs: {state}"
    );
}
