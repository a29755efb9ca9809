//! Loading projects from disk: valid ones load, broken ones report every
//! problem with its file, line and column.

use std::path::Path;

use patchbay_config::{MapEnv, Project, Report};

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn env() -> MapEnv {
    MapEnv::new([("ERP_KEY".to_string(), "k".to_string())])
}

fn load(dir: &Path) -> Result<Project, Report> {
    Project::load(dir, &env())
}

const ROOT: &str = "\
connectors:
  erp:
    url: http://127.0.0.1:9102
    auth: { api_key: { header: X-Api-Key, value: \"${env:ERP_KEY}\" } }
    timeout: 5s
engine:
  workers: 8
";

#[test]
fn loads_a_valid_project() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "patchbay.yaml", ROOT);
    write(
        dir.path(),
        "flows/new-order.yaml",
        "trigger: { webhook: { path: /hooks/orders } }\nsteps:\n  - id: push\n    call: erp POST /orders\n    body: '{id: .order_id}'\n",
    );
    write(
        dir.path(),
        "flows/nightly.yaml",
        "trigger: { schedule: \"0 3 * * *\" }\nsteps:\n  - transform: '.'\n",
    );
    let project = load(dir.path()).unwrap();
    assert_eq!(project.flows.len(), 2);
    assert_eq!(project.config.engine.workers, 8);
    let step = &project.flows["new-order"].config.steps[0];
    assert_eq!((step.line, step.field("call").unwrap().line), (3, 4));
    assert_eq!(project.version.len(), 16);
}

#[test]
fn reports_every_problem_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "patchbay.yaml", ROOT);
    write(
        dir.path(),
        "flows/sync.yaml",
        "\
trigger: { schedule: \"61 * * * *\" }
steps: []
",
    );
    write(
        dir.path(),
        "flows/typo.yaml",
        "trigger: { webhook: { path: /hooks/t } }\nsteps:\n  - call: erp GET /a\n    retires: 3\n",
    );
    write(
        dir.path(),
        "flows/env.yaml",
        "trigger: { manual: {} }\nsteps:\n  - transform: '.'\n",
    );
    let report = load(dir.path()).unwrap_err();
    let text = report.to_string();
    let sync = dir.path().join("flows/sync.yaml").display().to_string();
    let typo = dir.path().join("flows/typo.yaml").display().to_string();
    assert!(text.contains(&format!("{sync}:1:")), "{text}");
    assert!(text.contains("flow `sync` has no steps"), "{text}");
    // Steps and triggers are checked by the engine's kinds as it compiles
    // them (see the engine's `compile` tests); loading reports the rest.
    assert!(!text.contains("cron"), "{text}");
    assert!(!text.contains(&typo), "{text}");
    assert_eq!(report.len(), 1, "{text}");
}

#[test]
fn missing_environment_variable_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "patchbay.yaml",
        "connectors:\n  crm:\n    url: \"${env:CRM_URL}\"\n",
    );
    let text = load(dir.path()).unwrap_err().to_string();
    assert!(
        text.contains(
            "patchbay.yaml:3:10: connector `crm` url: environment variable `CRM_URL` is not set"
        ),
        "{text}"
    );
}

#[test]
fn misspelt_keys_get_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "patchbay.yaml",
        "connectors:\n  crm:\n    url: http://x\n    timeuot: 5s\n",
    );
    let text = load(dir.path()).unwrap_err().to_string();
    assert!(text.contains("patchbay.yaml:4:"), "{text}");
    assert!(
        text.contains("unknown key `timeuot` — did you mean `timeout`?"),
        "{text}"
    );
}

#[test]
fn every_broken_connector_and_section_of_the_root_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "patchbay.yaml",
        "\
connectors:
  crm:
    url: http://x
    timeuot: 5s
  erp:
    url: http://127.0.0.1:9102
  chat:
    url: [http://y]
store:
  pth: x.db
engine:
  workers: 3
",
    );
    write(
        dir.path(),
        "flows/sync.yaml",
        "trigger: { manual: {} }\nsteps:\n  - call: erp GET /a\n  - transform: '.a |'\n",
    );
    let report = load(dir.path()).unwrap_err();
    let text = report.to_string();
    let root = dir.path().join("patchbay.yaml").display().to_string();
    for (line, message) in [
        (4, "unknown key `timeuot` — did you mean `timeout`?"),
        (8, "expected string scalar"),
        (10, "unknown key `pth` — did you mean `path`?"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{root}:{line}:")) && l.contains(message)),
            "missing `{root}:{line}: … {message}` in:\n{text}"
        );
    }
    // The connectors are not all known: no "unknown connector" noise.
    assert_eq!(report.len(), 3, "{text}");
}

#[test]
fn connector_headers_are_checked_with_their_location() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "patchbay.yaml",
        "\
connectors:
  crm:
    url: https://crm.example.com
    headers:
      X Trace: '1'
      X-Token: \"${env:TWO_LINES}\"
",
    );
    let env = MapEnv::new([("TWO_LINES".to_string(), "first\nsecond".to_string())]);
    let report = Project::load(dir.path(), &env).unwrap_err();
    let text = report.to_string();
    assert!(
        text.contains("patchbay.yaml:5:16: connector `crm`: `X Trace` is not a valid header name"),
        "{text}"
    );
    assert!(
        text.contains(
            "patchbay.yaml:6:16: connector `crm` header `X-Token`: the value holds a line break"
        ),
        "{text}"
    );
    assert!(!text.contains("second"), "a credential leaked:\n{text}");
    assert!(
        report
            .diagnostics
            .iter()
            .all(|d| d.connector.as_deref() == Some("crm")),
        "{report:?}"
    );
}

#[test]
fn api_version_needs_one_carrier_and_no_clash_with_headers() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "patchbay.yaml",
        "\
connectors:
  stripe:
    url: https://api.stripe.com/v1
    headers: { stripe-version: '2023-10-16' }
    api_version: { value: '2024-06-20', header: Stripe-Version }
  github:
    url: https://api.github.com
    api_version: { value: '2022-11-28' }
  vendor:
    url: https://api.vendor.example
    api_version: { value: '2', header: X-Version, media_type: 'application/vnd.vendor.v{version}+json' }
  fine:
    url: https://api.fine.example
    api_version: { value: '3', media_type: 'application/vnd.fine.v{version}+json' }
",
    );
    let report = Project::load(dir.path(), &env()).unwrap_err();
    let folder = format!("{}/", dir.path().display());
    let lines: Vec<String> = report
        .diagnostics
        .iter()
        .map(|d| d.to_string().replace(&folder, ""))
        .collect();
    assert_eq!(
        lines,
        [
            "patchbay.yaml:5:18: connector `stripe`: `api_version` sends `Stripe-Version`, which `headers` sets too (as `stripe-version`): keep one",
            "patchbay.yaml:8:18: connector `github`: `api_version` needs exactly one of `header` (e.g. `{value: \"2024-06-20\", header: Stripe-Version}`) and `media_type`",
            "patchbay.yaml:11:18: connector `vendor`: `api_version` needs exactly one of `header` (e.g. `{value: \"2024-06-20\", header: Stripe-Version}`) and `media_type`",
        ]
    );
}

#[test]
fn missing_project_file_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let text = load(dir.path()).unwrap_err().to_string();
    assert!(text.contains("cannot read the project file"), "{text}");
}

#[test]
fn schema_describes_the_configuration() {
    let schema = patchbay_config::project_schema();
    let text = schema.to_string();
    assert!(text.contains("\"connectors\""));
    assert!(text.contains("max_body_bytes"));
    let flow = patchbay_config::flow_schema().to_string();
    assert!(flow.contains("for_each") && flow.contains("TriggerConfig"));
}

#[test]
fn network_settings_are_checked_with_their_location() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "certs/ca.pem", "not a certificate\n");
    write(
        dir.path(),
        "patchbay.yaml",
        "\
connectors:
  crm:
    url: https://crm.example.com
    dangerous_allow_private: [10.9.0.0/16, 10.0.0.0/33, not-an-address]
    redirects: { max: 0, allow_hosts: [\"https://api2.example.com/x\"] }
    tls:
      ca: certs/ca.pem
      client_cert: certs/missing.pem
",
    );
    let report = load(dir.path()).unwrap_err().to_string();
    let root = dir.path().join("patchbay.yaml");
    let at = |line: u32| format!("{}:{line}:", root.display());
    for (line, message) in [
        (
            4,
            "dangerous_allow_private: `10.0.0.0/33` is not a CIDR block",
        ),
        (
            4,
            "dangerous_allow_private: `not-an-address` is not a CIDR block",
        ),
        (5, "redirects: `max` must be between 1 and 20"),
        (
            5,
            "allow_hosts: `https://api2.example.com/x` is not a host name",
        ),
        (7, "tls: `client_cert` and `client_key` go together"),
        (7, "holds no PEM certificate"),
        (8, "certs/missing.pem`: cannot read"),
    ] {
        assert!(
            report
                .lines()
                .any(|l| l.starts_with(&at(line)) && l.contains(message)),
            "missing `{}` … {message} in:\n{report}",
            at(line)
        );
    }
    assert!(
        !report.contains("10.9.0.0/16"),
        "a good block is not reported:\n{report}"
    );
}

#[test]
fn plain_http_to_another_host_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "patchbay.yaml",
        "\
connectors:
  local: { url: http://127.0.0.1:9102 }
  named: { url: http://localhost:9102 }
  secure: { url: https://api.example.com }
  remote:
    url: http://api.example.com
    auth: { oauth2: { token_url: http://auth.example.com/token, client_id: c } }
",
    );
    let project = load(dir.path()).unwrap();
    let warnings: Vec<String> = patchbay_config::validate::warnings(&project, &env())
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(warnings[0].contains(":6:") && warnings[0].contains("url `http://api.example.com`"));
    assert!(warnings[1].contains("token_url `http://auth.example.com/token`"));
    assert!(
        warnings
            .iter()
            .all(|w| w.contains("warning: connector `remote`"))
    );
}

#[test]
fn a_flow_file_reports_every_broken_part() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "patchbay.yaml", ROOT);
    write(
        dir.path(),
        "flows/broken.yaml",
        "\
trigger:
  webhook: { path: /hooks/a }
  manual: {}
steps:
  - transform: .
    concurrency: many
  - call: erp GET /a
    on_error: retry_forever
  - transform: .
run_retries: [soon]
descripton: a typo
",
    );
    let report = load(dir.path()).unwrap_err();
    let file = dir.path().join("flows/broken.yaml").display().to_string();
    let text = report.to_string().replace(&format!("{file}:"), "AT ");
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("AT ")).collect();
    assert_eq!(lines.len(), 5, "{text}");
    for (line, words) in [
        (2, "has `webhook` and `manual`"),
        (6, "\"many\", expected usize"),
        (8, "retry_forever"),
        (10, "soon"),
        (11, "unknown key `descripton` — did you mean `description`?"),
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("AT {line}:")) && l.contains(words)),
            "line {line}, `{words}`: {text}"
        );
    }
}
