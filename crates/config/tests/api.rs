//! The `api` section: tokens and the rule that an API without tokens only
//! listens on loopback.

use std::path::Path;

use patchbay_config::{ApiScope, MapEnv, Project, Report};

const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn load(root: &str, env: &[(&str, &str)]) -> Result<Project, Report> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("patchbay.yaml"), root).unwrap();
    let env = MapEnv::new(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Project::load(Path::new(dir.path()), &env)
}

fn errors(root: &str, env: &[(&str, &str)]) -> String {
    match load(root, env) {
        Ok(_) => panic!("the project was accepted:\n{root}"),
        Err(report) => report.to_string(),
    }
}

#[test]
fn tokens_load_with_their_scopes() {
    let root = format!(
        "api:\n  tokens:\n    - {{ name: ci, sha256: {HASH}, scopes: [read, operate] }}\n    - {{ name: ops, token: \"${{env:OPS_TOKEN}}\", scopes: [admin] }}\n"
    );
    let project = load(&root, &[("OPS_TOKEN", "0123456789abcdef")]).unwrap();
    let tokens = &project.config.api.tokens;
    assert_eq!(tokens.len(), 2);
    assert_eq!(tokens[0].scopes, vec![ApiScope::Read, ApiScope::Operate]);
    assert_eq!(tokens[1].token.as_deref(), Some("${env:OPS_TOKEN}"));
    assert_eq!(tokens[1].line, 4);
    assert!(!project.config.api.dangerous_allow_anonymous);
}

#[test]
fn bad_tokens_are_reported_with_their_line() {
    let root = "\
api:
  tokens:
    - { name: a, sha256: abc, scopes: [read] }
    - { name: a, sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08, token: x, scopes: [read] }
    - { name: b, token: short, scopes: [read] }
    - { name: c, token: \"${env:MISSING}\", scopes: [] }
";
    let text = errors(root, &[]);
    for expected in [
        "patchbay.yaml:3:7: api token `a`: sha256 must be 64 hex digits",
        "patchbay.yaml:4:7: api.tokens: the name `a` is used twice",
        "patchbay.yaml:4:7: api token `a`: give exactly one of `sha256` or `token`",
        "patchbay.yaml:5:7: api token `b`: the token must be at least 16 characters",
        "patchbay.yaml:6:7: api token `c` token: environment variable `MISSING` is not set",
        "api token `c`: give at least one of the scopes",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let text = errors(
        "api:\n  tokens:\n    - { name: a, sha256: x, scopes: [write] }\n",
        &[],
    );
    assert!(text.contains("write"), "{text}");
}

#[test]
fn an_open_api_may_only_listen_on_loopback() {
    let text = errors("server: { listen: \"0.0.0.0:8080\" }\n", &[]);
    assert!(
        text.contains("no tokens") && text.contains("0.0.0.0:8080") && text.contains("loopback"),
        "{text}"
    );
    assert!(load("server: { listen: \"127.0.0.1:8080\" }\n", &[]).is_ok());
    assert!(load("server: { listen: \"[::1]:8080\" }\n", &[]).is_ok());
    let allowed =
        "server: { listen: \"0.0.0.0:8080\" }\napi: { dangerous_allow_anonymous: true }\n";
    assert!(load(allowed, &[]).is_ok());
    let with_token = format!(
        "server: {{ listen: \"0.0.0.0:8080\" }}\napi: {{ tokens: [{{ name: ci, sha256: {HASH}, scopes: [read] }}] }}\n"
    );
    assert!(load(&with_token, &[]).is_ok());
}

#[test]
fn the_schema_documents_the_api_section() {
    let schema = patchbay_config::project_schema().to_string();
    assert!(schema.contains("dangerous_allow_anonymous"), "{schema}");
    assert!(schema.contains("patchbay token new"), "{schema}");
}
