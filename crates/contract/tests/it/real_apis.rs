//! Acceptance of the diff on real API descriptions, two published versions each, as
//! their providers ship them in npm packages: GitHub's (`@octokit/openapi` 20.0.0 and
//! 23.0.2, 11.6 and 13.0 MB of JSON) and Blockfrost's (`@blockfrost/openapi` 0.1.24 and
//! 0.1.93, YAML). The hand-written fixtures prove each rule in isolation; these prove
//! that on descriptions nobody wrote for us the diff finds what really changed, at the
//! right place, and nothing between a version and itself.
//!
//! The files are too large and not ours to commit: `scripts/fetch-api-descriptions`
//! fetches them (pinned versions, integrity checked) into a cache outside the checkout,
//! and the tests run it when a file is missing. When it cannot (no npm, no registry),
//! the tests say so and pass, except in CI, where they fail.
//!
//! Every finding asserted here was checked by hand in the two files: the operation,
//! the JSON pointer and the value on each side. The operation counts and the numbers
//! of removed, moved and added operations were counted independently of this crate.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use patchbay_contract::{Change, Contract, Severity, diff};

/// The descriptions `scripts/fetch-api-descriptions` fetches, under its cache folder.
const GITHUB_OLD: &str = "github/20.0.0/api.github.com.json";
const GITHUB_NEW: &str = "github/23.0.2/api.github.com.json";
const BLOCKFROST_OLD: &str = "blockfrost/0.1.24/swagger.yaml";
const BLOCKFROST_NEW: &str = "blockfrost/0.1.93/openapi.yaml";
const ALL: [&str; 4] = [GITHUB_OLD, GITHUB_NEW, BLOCKFROST_OLD, BLOCKFROST_NEW];

/// The script's cache folder, by the script's own rule.
fn cache_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("PATCHBAY_API_DESCRIPTIONS") {
        return Ok(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME")
        .ok_or("neither PATCHBAY_API_DESCRIPTIONS nor HOME is set".to_string())?;
    Ok(PathBuf::from(home).join(".cache/patchbay/api-descriptions"))
}

/// The cache folder with every description in it, running the script when one is
/// missing: once per test process, so the tests of both APIs do not fetch side by side.
fn descriptions() -> &'static Result<PathBuf, String> {
    static FETCHED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FETCHED.get_or_init(|| {
        let dir = cache_dir()?;
        let complete = || ALL.iter().all(|file| dir.join(file).is_file());
        if complete() {
            return Ok(dir);
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let out = Command::new(root.join("scripts/fetch-api-descriptions"))
            .current_dir(&root)
            .output()
            .map_err(|e| format!("scripts/fetch-api-descriptions did not run: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "scripts/fetch-api-descriptions failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        if !complete() {
            return Err(format!(
                "scripts/fetch-api-descriptions succeeded but {} still lacks some of {ALL:?}",
                dir.display()
            ));
        }
        Ok(dir)
    })
}

/// In CI a missing description is a failure: the acceptance test must not pass by not
/// running.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Both versions loaded, or `None` (with a note) when they cannot be had outside CI.
fn pair(old: &str, new: &str) -> Option<(Contract, Contract)> {
    let dir = match descriptions() {
        Ok(dir) => dir,
        Err(why) => {
            let why = format!("the real API descriptions could not be fetched: {why}");
            if in_ci() {
                panic!("{why}");
            }
            eprintln!("SKIPPED: {why}");
            return None;
        }
    };
    let load = |file: &str| {
        let path = dir.join(file);
        Contract::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    Some((load(old), load(new)))
}

fn count(changes: &[Change], rule: &str) -> usize {
    changes.iter().filter(|c| c.rule == rule).count()
}

/// The changes of `rule` on `operation`.
fn of<'a>(changes: &'a [Change], rule: &str, operation: &str) -> Vec<&'a Change> {
    changes
        .iter()
        .filter(|c| c.rule == rule && c.operation.as_deref() == Some(operation))
        .collect()
}

/// The one change of `rule` on `operation`; when there is not exactly one, the panic
/// lists every change of that operation, which is what one needs to see.
fn only<'a>(changes: &'a [Change], rule: &str, operation: &str) -> &'a Change {
    match of(changes, rule, operation).as_slice() {
        [one] => one,
        found => {
            let around: Vec<String> = changes
                .iter()
                .filter(|c| c.operation.as_deref() == Some(operation))
                .map(|c| format!("  {} {}: {}", c.rule, show(c), c.message))
                .collect();
            panic!(
                "expected one `{rule}` on {operation}, found {}; its changes:\n{}",
                found.len(),
                around.join("\n")
            )
        }
    }
}

/// The old and new pointers.
fn pointers(change: &Change) -> (Option<&str>, Option<&str>) {
    (
        change.old.as_ref().map(|l| l.pointer.as_str()),
        change.new.as_ref().map(|l| l.pointer.as_str()),
    )
}

fn show(change: &Change) -> String {
    let (old, new) = pointers(change);
    format!("{} -> {}", old.unwrap_or("-"), new.unwrap_or("-"))
}

#[test]
fn github_20_to_23() {
    let Some((old, new)) = pair(GITHUB_OLD, GITHUB_NEW) else {
        return;
    };
    assert_eq!((old.version(), new.version()), ("3.0.3", "3.0.3"));
    assert_eq!(old.operations().len(), 1080);
    assert_eq!(new.operations().len(), 1223);
    assert_eq!(diff(&old, &old), []);

    let changes = diff(&old, &new);
    // Counted by method and path (parameter names ignored), then by operationId.
    assert_eq!(count(&changes, "operation-removed"), 69);
    assert_eq!(count(&changes, "path-changed"), 3);
    assert_eq!(count(&changes, "operation-added"), 212);
    // Classroom's six read operations.
    assert_eq!(count(&changes, "operation-deprecated"), 6);

    // Projects (classic) are gone: `projects-classic/delete` is in neither place.
    let removed = only(
        &changes,
        "operation-removed",
        "DELETE /projects/{project_id}",
    );
    assert_eq!(removed.severity, Severity::Breaking);
    assert_eq!(
        pointers(removed),
        (Some("/paths/~1projects~1{project_id}/delete"), None)
    );

    // Dependabot's repository access moved from /organizations/{org} to /orgs/{org},
    // keeping its operationId.
    let moved = only(
        &changes,
        "path-changed",
        "GET /organizations/{org}/dependabot/repository-access",
    );
    assert_eq!(moved.severity, Severity::Breaking);
    assert_eq!(
        pointers(moved),
        (
            Some("/paths/~1organizations~1{org}~1dependabot~1repository-access/get"),
            Some("/paths/~1orgs~1{org}~1dependabot~1repository-access/get")
        )
    );
    assert!(
        moved
            .message
            .contains("`dependabot/repository-access-for-org`")
    );

    // Custom properties were renamed throughout, on the same method and path.
    let renamed = only(
        &changes,
        "operation-id-changed",
        "GET /orgs/{org}/properties/schema",
    );
    assert!(
        renamed.message.contains("`orgs/get-all-custom-properties`")
            && renamed
                .message
                .contains("`orgs/custom-properties-for-repos-get-organization-definitions`"),
        "{renamed:#?}"
    );

    // `team_discussions` left `app-permissions`, which installations return.
    let gone = only(
        &changes,
        "response-property-removed",
        "GET /app/installations/{installation_id}",
    );
    assert_eq!(gone.severity, Severity::Breaking);
    assert_eq!(gone.response.as_deref(), Some("200"));
    assert_eq!(gone.field, ["permissions", "team_discussions"]);
    assert_eq!(
        pointers(gone),
        (
            Some("/components/schemas/app-permissions/properties/team_discussions"),
            None
        )
    );

    // A Dependabot alert's `dependency.relationship` gained "inconclusive".
    let value = only(
        &changes,
        "response-enum-value-added",
        "GET /repos/{owner}/{repo}/dependabot/alerts/{alert_number}",
    );
    assert_eq!(value.severity, Severity::Warning);
    assert_eq!(value.field, ["dependency", "relationship"]);
    assert!(value.message.contains("\"inconclusive\""), "{value:#?}");
    let relationship =
        "/components/schemas/dependabot-alert/properties/dependency/properties/relationship";
    assert_eq!(pointers(value), (Some(relationship), Some(relationship)));

    // Detaching code security configurations now requires the repositories' ids.
    let required = only(
        &changes,
        "request-property-became-required",
        "DELETE /orgs/{org}/code-security/configurations/detach",
    );
    assert_eq!(required.severity, Severity::Breaking);
    assert!(required.message.contains("`selected_repository_ids`"));

    // The SARIF media type was respelt `application/sarif+json`.
    let media = only(
        &changes,
        "response-media-type-removed",
        "GET /repos/{owner}/{repo}/code-scanning/analyses/{analysis_id}",
    );
    assert!(media.message.contains("`application/json+sarif`"));
    assert_eq!(
        pointers(media),
        (
            Some(
                "/paths/~1repos~1{owner}~1{repo}~1code-scanning~1analyses~1{analysis_id}/get/responses/200/content/application~1json+sarif"
            ),
            None
        )
    );

    // Page-number pagination of a repository's Dependabot alerts (deprecated in 20.0.0,
    // the 13th parameter) is gone; `per_page` became a shared parameter of the same
    // name, which is no change.
    let parameters = of(
        &changes,
        "request-parameter-removed",
        "GET /repos/{owner}/{repo}/dependabot/alerts",
    );
    let page: Vec<_> = parameters
        .iter()
        .filter(|c| c.message.contains("`page`"))
        .collect();
    assert_eq!(page.len(), 1, "{parameters:#?}");
    assert_eq!(page[0].severity, Severity::Warning);
    assert_eq!(
        pointers(page[0]),
        (
            Some("/paths/~1repos~1{owner}~1{repo}~1dependabot~1alerts/get/parameters/12"),
            None
        )
    );
    assert!(!parameters.iter().any(|c| c.message.contains("`per_page`")));
}

#[test]
fn blockfrost_0_1_24_to_0_1_93() {
    let Some((old, new)) = pair(BLOCKFROST_OLD, BLOCKFROST_NEW) else {
        return;
    };
    assert_eq!((old.version(), new.version()), ("3.0.0", "3.0.3"));
    assert_eq!(old.operations().len(), 79);
    assert_eq!(new.operations().len(), 129);
    assert_eq!(diff(&old, &old), []);

    let changes = diff(&old, &new);
    assert_eq!(count(&changes, "operation-removed"), 2);
    assert_eq!(count(&changes, "operation-added"), 52);

    // The trailing slash was dropped from `/ipfs/pin/list/`: another path to call.
    let removed = only(&changes, "operation-removed", "GET /ipfs/pin/list/");
    assert_eq!(
        pointers(removed),
        (Some("/paths/~1ipfs~1pin~1list~1/get"), None)
    );
    let added = only(&changes, "operation-added", "GET /ipfs/pin/list");
    assert_eq!(
        pointers(added),
        (None, Some("/paths/~1ipfs~1pin~1list/get"))
    );

    // The size of an added IPFS object now comes as a string ("125297").
    let size =
        "/paths/~1ipfs~1add/post/responses/200/content/application~1json/schema/properties/size";
    let retyped = only(&changes, "response-property-type-changed", "POST /ipfs/add");
    assert_eq!(retyped.severity, Severity::Breaking);
    assert_eq!(retyped.field, ["size"]);
    assert_eq!(pointers(retyped), (Some(size), Some(size)));
    assert!(
        retyped.message.contains("from integer to string"),
        "{retyped:#?}"
    );

    // A protocol parameter went from a (nullable) object to a (nullable) string.
    let entropy = "/components/schemas/epoch_param_content/properties/extra_entropy";
    let retyped = only(
        &changes,
        "response-property-type-changed",
        "GET /epochs/latest/parameters",
    );
    assert_eq!(retyped.field, ["extra_entropy"]);
    assert_eq!(pointers(retyped), (Some(entropy), Some(entropy)));
    assert!(
        retyped.message.contains("from object to string"),
        "{retyped:#?}"
    );

    let epoch = "/components/schemas/account_content/properties/active_epoch";
    let nullable = only(
        &changes,
        "response-property-became-nullable",
        "GET /accounts/{stake_address}",
    );
    assert_eq!(nullable.field, ["active_epoch"]);
    assert_eq!(pointers(nullable), (Some(epoch), Some(epoch)));

    // Submitting a transaction now documents its required CBOR body.
    let body = only(&changes, "request-body-added-required", "POST /tx/submit");
    assert_eq!(body.severity, Severity::Breaking);
    assert_eq!(
        pointers(body),
        (None, Some("/paths/~1tx~1submit/post/requestBody"))
    );

    // The old pin state enum was one string, "queued|pinned|unpinned|failed|gc": each
    // real state is a value a flow reading the old one never saw.
    let mut states: Vec<&str> = of(
        &changes,
        "response-enum-value-added",
        "GET /ipfs/pin/list/{IPFS_path}",
    )
    .iter()
    .map(|c| {
        assert_eq!(c.field, ["state"]);
        c.message.rsplit(' ').next().unwrap_or_default()
    })
    .collect();
    states.sort_unstable();
    assert_eq!(
        states,
        [
            "\"failed\"",
            "\"gc\"",
            "\"pinned\"",
            "\"queued\"",
            "\"unpinned\""
        ]
    );

    // The testnet server was retired; mainnet's URL only lost its trailing slash, which
    // is no change.
    let servers: Vec<&Change> = changes
        .iter()
        .filter(|c| c.rule == "server-url-changed")
        .collect();
    assert_eq!(servers.len(), 1, "{servers:#?}");
    assert_eq!(pointers(servers[0]), (Some("/servers/1"), Some("/servers")));
    assert!(
        servers[0]
            .message
            .contains("`https://cardano-testnet.blockfrost.io/api/v0/`")
    );

    // The clock endpoint had `security: []` and now inherits the project key.
    let security = only(
        &changes,
        "security-requirements-changed",
        "GET /health/clock",
    );
    assert_eq!(
        pointers(security),
        (
            Some("/paths/~1health~1clock/get/security"),
            Some("/security")
        )
    );

    // Paging parameters gained a minimum of 1.
    let minimum = of(&changes, "request-min-increased", "GET /pools");
    assert_eq!(minimum.len(), 2, "{minimum:#?}");
    assert!(minimum.iter().any(
        |c| c.message == "query parameter `count` minimum 1 was added"
            && pointers(c).0 == Some("/paths/~1pools/get/parameters/0/schema")
    ));
}
