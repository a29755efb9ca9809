//! Compiling flows: every step problem is reported, with its file, line and
//! the step's place in the flow, and a valid flow compiles to the plan the
//! executor runs.

use std::path::Path;

use patchbay_config::{MapEnv, Project, Report};
use patchbay_engine::Plan;

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const ROOT: &str = "\
connectors:
  erp:
    url: http://127.0.0.1:9102
    dangerous_allow_private: true
";

/// What `check` reports: loading's problems and compiling's, together,
/// with the temporary folder's path taken out.
fn check(flows: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "patchbay.yaml", ROOT);
    for (name, text) in flows {
        write(dir.path(), &format!("flows/{name}.yaml"), text);
    }
    let env = MapEnv::new([]);
    let (project, mut report) = Project::load_partial(dir.path(), &env).unwrap();
    if let Err(more) = Plan::compile(&project, &env) {
        report.extend(more);
    }
    render(report, dir.path())
}

fn render(report: Report, dir: &Path) -> String {
    report
        .sorted()
        .to_string()
        .replace(&format!("{}/", dir.display()), "")
}

fn compile(flow: &str) -> Plan {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "patchbay.yaml", ROOT);
    write(dir.path(), "flows/f.yaml", flow);
    let env = MapEnv::new([]);
    let project = Project::load(dir.path(), &env).unwrap_or_else(|r| panic!("{r}"));
    Plan::compile(&project, &env).unwrap_or_else(|r| panic!("{}", render(r, dir.path())))
}

#[test]
fn every_step_problem_is_reported_with_its_place() {
    let report = check(&[
        (
            "sync",
            "\
trigger: { schedule: \"61 * * * *\" }
steps:
  - call: erp GET /a
  - call: crm GET /contacts
  - transform: '.'
    filter: '.ok'
  - transfrom: '.'
  - id: bad id
    transform: '.'
",
        ),
        (
            "typo",
            "trigger: { webhook: { path: /hooks/t } }\nsteps:\n  - call: erp GET /a\n    retires: 3\n",
        ),
        (
            "branches",
            "\
trigger: { manual: {} }
steps:
  - id: route
    switch:
      cases:
        - name: refund
          when: '.type == \"refund\"'
          steps:
            - transform: '.amount +'
        - when: '.type == \"order\"'
          steps:
            - respond: { status: 200 }
      default:
        - wait: {until: '.at'}
          for_each: '.items'
  - filter: true
    on_error:
      fallback:
        - transform: '.'
",
        ),
    ]);
    insta::assert_snapshot!(report);
}

#[test]
fn a_switch_compiles_with_its_branches() {
    let plan = compile(
        "\
trigger: { manual: {} }
steps:
  - id: route
    switch:
      cases:
        - name: refund
          when: '.type == \"refund\"'
          steps:
            - transform: '{refund: .amount}'
            - id: inner
              switch:
                cases:
                  - when: '.amount > 100'
                    steps: [{transform: '\"big\"'}]
      default:
        - transform: '\"other\"'
  - when: '$steps.route != null'
    wait: 10m
",
    );
    let steps = &plan.flows["f"].steps;
    assert_eq!(steps.len(), 2);
    let described = steps[0].describe();
    let branches: Vec<(&str, Vec<&str>)> = described
        .branches
        .iter()
        .map(|(name, steps)| (name.as_str(), steps.iter().map(|s| s.id.as_str()).collect()))
        .collect();
    assert_eq!(
        branches,
        vec![
            ("refund", vec!["route-refund-1", "inner"]),
            ("default", vec!["route-default-1"]),
        ]
    );
    assert_eq!(steps[1].kind, "wait");
    assert_eq!(
        steps[1].when.as_ref().map(|w| w.source()),
        Some("$steps.route != null")
    );
}

#[test]
fn a_misspelt_step_id_in_steps_is_reported_with_the_closest_id() {
    let report = check(&[(
        "orders",
        "\
trigger: { manual: {} }
steps:
  - id: charge
    call: erp POST /charges
  - id: route
    switch:
      cases:
        - name: big
          when: '$steps.charge.body.amount > 100'
          steps:
            - id: flagged
              transform: '{flag: true}'
      default: []
  - transform: '{id: $steps.chrage.body.id, again: $steps.chrage.body.ref}'
  - transform: '{flag: $steps.flagged.flag, n: ($steps.nothing_like_it // 0)}'
",
    )]);
    // Reported once per expression, with the closest id when there is one;
    // ids anywhere in the flow (a branch's `flagged`) are known.
    assert_eq!(report.matches("`$steps.chrage`").count(), 1, "{report}");
    assert!(report.contains("did you mean `charge`?"), "{report}");
    assert!(report.contains("flows/orders.yaml:15"), "{report}");
    assert!(report.contains("`$steps.nothing_like_it`"), "{report}");
    assert!(!report.contains("flagged`"), "{report}");
    assert!(!report.contains("`$steps.charge`"), "{report}");
    // The same flow spelt right compiles.
    compile(
        "\
trigger: { manual: {} }
steps:
  - id: charge
    call: erp POST /charges
  - transform: '{id: $steps.charge.body.id, step: $steps}'
",
    );
}

#[test]
fn a_bad_schedule_and_the_flows_other_problems_are_all_reported() {
    let report = check(&[
        (
            "cron",
            "\
trigger: { schedule: \"61 * * * *\" }
steps:
  - call: erp GET /x
    query: {a: 1}
  - transform: '{a: .b | nosuchfn}'
",
        ),
        (
            "zone",
            "\
trigger: { schedule: { cron: \"0 9 * * *\", tz: Europe/Paris } }
steps:
  - transform: '.'
",
        ),
        (
            "number",
            "\
trigger: { schedule: 5 }
steps:
  - transform: '.'
",
        ),
    ]);
    // The cron, the unquoted jq and the unknown function: each with its line.
    assert!(
        report.contains("flows/cron.yaml:1:12: flow `cron`: invalid cron expression `61 * * * *`"),
        "{report}"
    );
    assert!(
        report.contains(
            "flows/cron.yaml:4:12: flow `cron` step 1: expected text, found a mapping; \
             a jq expression such as `{a: 1}` or `[.a]` must be quoted"
        ),
        "{report}"
    );
    assert!(
        report.contains("flows/cron.yaml:5:16: flow `cron` step 2: invalid jq in `transform`"),
        "{report}"
    );
    // An unknown key of a zoned schedule is not ignored (it was: `tz` for
    // `timezone` ran the flow in UTC).
    assert!(report.contains("unknown key `tz`"), "{report}");
    assert!(
        report.contains("expected a cron expression in quotes"),
        "{report}"
    );
    assert!(!report.contains("did not match any variant"), "{report}");
}

#[test]
fn branches_nest_only_so_deep() {
    let mut flow = String::from("trigger: { manual: {} }\nsteps:\n");
    let mut indent = String::from("  ");
    for _ in 0..10 {
        flow.push_str(&format!(
            "{indent}- switch:\n{indent}    cases:\n{indent}      - when: 'true'\n{indent}        steps:\n"
        ));
        indent.push_str("          ");
    }
    flow.push_str(&format!("{indent}- transform: '.'\n"));
    let report = check(&[("deep", &flow)]);
    assert!(
        report.contains("branches nest deeper than 8 levels"),
        "{report}"
    );
}

#[test]
fn the_schema_lists_every_kind_and_modifier() {
    let schema = patchbay_engine::step::complete_schema(patchbay_config::flow_schema());
    let step = &schema["$defs"]["StepConfig"];
    let mut keys: Vec<&str> = step["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    insta::assert_snapshot!(keys.join(" "));
    assert_eq!(step["additionalProperties"], false);

    let trigger = &schema["$defs"]["TriggerConfig"];
    let mut kinds: Vec<&str> = trigger["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "amqp", "event", "manual", "mqtt", "nats", "poll", "redis", "schedule", "webhook"
        ]
    );
    assert_eq!(trigger["maxProperties"], 1);
    assert!(
        trigger["properties"]["webhook"]
            .to_string()
            .contains("dedupe"),
        "{trigger}"
    );
}

#[test]
fn run_flow_refuses_unknown_flows_and_cycles() {
    let report = check(&[
        ("a", "trigger: { manual: {} }\nsteps:\n  - run_flow: b\n"),
        (
            "b",
            "trigger: { manual: {} }\nsteps:\n  - switch:\n      cases:\n        - when: 'true'\n          steps: [{run_flow: a}]\n",
        ),
        (
            "c",
            "trigger: { manual: {} }\nsteps:\n  - run_flow: b\n    async: true\n",
        ),
    ]);
    assert!(report.contains("starts itself"), "{report}");
    let unknown = check(&[("d", "trigger: { manual: {} }\nsteps:\n  - run_flow: nope\n")]);
    assert!(unknown.contains("step 1: unknown flow `nope`"), "{unknown}");
    insta::assert_snapshot!(report);
}

#[test]
fn every_trigger_problem_is_reported_with_its_place() {
    let report = check(&[
        (
            "typo",
            "trigger:\n  webhok: { path: /hooks/a }\nsteps:\n  - transform: .\n",
        ),
        (
            "two",
            "trigger:\n  manual: {}\n  schedule: '* * * * *'\nsteps:\n  - transform: .\n",
        ),
        (
            "key",
            "trigger:\n  webhook:\n    path: /hooks/b\n    mdoe: sync\nsteps:\n  - transform: .\n",
        ),
        (
            "paths",
            "trigger:\n  webhook: { path: hooks/c }\nsteps:\n  - transform: .\n",
        ),
        (
            "reserved",
            "trigger:\n  webhook: { path: /api/hooks }\nsteps:\n  - transform: .\n",
        ),
        (
            "first",
            "trigger:\n  webhook: { path: /hooks/same }\nsteps:\n  - transform: .\n",
        ),
        (
            "second",
            "trigger:\n  webhook: { path: /hooks/same }\nsteps:\n  - transform: .\n",
        ),
        (
            "cron",
            "trigger:\n  schedule: { cron: 'every day', timezone: Mars/Olympus }\nsteps:\n  - transform: .\n",
        ),
        (
            "manual",
            "trigger:\n  manual: { when: now }\nsteps:\n  - transform: .\n",
        ),
        (
            "reply",
            "trigger:\n  webhook: { path: /hooks/d, mode: sync }\nsteps:\n  - transform: .\n",
        ),
    ]);
    insta::assert_snapshot!(report);
}

#[test]
fn every_trigger_kind_compiles_and_describes_itself() {
    let plan = compile(
        "trigger:\n  schedule: { cron: '0 9 * * MON-FRI', timezone: Europe/Paris }\nsteps:\n  - transform: .\n",
    );
    let trigger = &plan.flows["f"].trigger;
    assert_eq!(trigger.kind(), "schedule");
    assert!(trigger.webhook().is_none());
    assert_eq!(
        serde_json::Value::Object(trigger.describe()),
        serde_json::json!({"cron": "0 9 * * MON-FRI", "timezone": "Europe/Paris"})
    );

    let plan = compile("trigger:\n  manual:\nsteps:\n  - transform: .\n");
    assert_eq!(plan.flows["f"].trigger.kind(), "manual");
    assert!(plan.flows["f"].trigger.describe().is_empty());

    let plan = compile(
        "trigger:\n  webhook: { path: /hooks/x, mode: sync }\nsteps:\n  - respond: { status: 200 }\n",
    );
    let trigger = &plan.flows["f"].trigger;
    assert!(trigger.awaits_reply());
    assert_eq!(
        trigger.webhook().map(|hook| hook.path.as_str()),
        Some("/hooks/x")
    );
    assert_eq!(
        serde_json::Value::Object(trigger.describe()),
        serde_json::json!({"path": "/hooks/x", "methods": ["POST"], "mode": "sync", "verified": false, "deduplicated": false})
    );
}

/// A run reads its flow's state from the store only when an expression of
/// the flow may read `$state`.
#[test]
fn only_a_flow_that_names_its_state_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "patchbay.yaml", ROOT);
    let flows = [
        ("reads", "  - transform: '{seen: ($state.seen + 1)}'\n"),
        ("sets", "  - set_state: '{last: .id}'\n"),
        ("neither", "  - transform: '{state: .state}'\n"),
        (
            "nested",
            "  - switch:\n      cases:\n        - name: a\n          when: '.a'\n          steps:\n            - transform: '$state'\n",
        ),
    ];
    for (name, steps) in flows {
        write(
            dir.path(),
            &format!("flows/{name}.yaml"),
            &format!("trigger: {{ webhook: {{ path: /hooks/{name} }} }}\nsteps:\n{steps}"),
        );
    }
    let env = MapEnv::new([]);
    let project = Project::load(dir.path(), &env).unwrap();
    let plan = Plan::compile(&project, &env).unwrap();
    let reads = |flow: &str| plan.flows[flow].reads_state;
    assert!(reads("reads"));
    assert!(reads("nested"));
    // `set_state` replaces the state without reading it.
    assert!(!reads("sets"));
    assert!(!reads("neither"));
}

#[test]
fn every_poll_problem_is_reported_at_its_line() {
    let poll = |settings: &str| format!("trigger:\n  poll:\n{settings}steps:\n  - transform: .\n");
    let report = check(&[
        (
            "unknown",
            &poll("    connector: crm\n    path: contacts\n    every: 5m\n"),
        ),
        ("timing", &poll("    connector: erp\n    path: /orders\n")),
        (
            "both",
            &poll("    connector: erp\n    path: /orders\n    every: 5m\n    cron: '* * * * *'\n"),
        ),
        (
            "cron",
            &poll(
                "    connector: erp\n    path: /orders\n    cron: '61 * * * *'\n    key: '.id +'\n",
            ),
        ),
        (
            "pages",
            &poll(
                "    connector: erp\n    path: /orders\n    every: 500ms\n    items: .orders\n    \
                 paginate: { page: {} }\n",
            ),
        ),
    ]);
    insta::assert_snapshot!(report);
}
