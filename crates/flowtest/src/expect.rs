//! Comparing a test's `expect:` with what its run did. Each expectation
//! that does not hold becomes one [`Failure`] naming the part of the test
//! and its line, with what differs underneath.

use patchbay_config::suggest_closest;
use patchbay_store::{JournalEntry, RunStatus, StepStatus};
use patchbay_testkit::RecordedRequest;
use serde_json::Value;

use crate::file::RequestMatcher;
use crate::file::TestFile;
use crate::fixture;
use crate::run::{Failure, Happened};
use crate::subset;

pub(crate) fn compare(test: &TestFile, happened: &Happened, out: &mut Vec<Failure>) {
    let expect = &test.expect;
    let run = &happened.run;

    let (wanted, line) = match (&expect.status, &expect.dead_letter) {
        (Some(status), _) => (status.value.as_str(), status.line),
        (None, Some(dead)) => ("dead", dead.line),
        (None, None) => ("succeeded", 0),
    };
    if !run.status.is_final() {
        out.push(Failure::new(
            "expect.status",
            line,
            vec![format!(
                "the run is still {} after {:?} (the test's `timeout`)",
                run.status, happened.timeout
            )],
        ));
    } else if run.status.as_str() != wanted {
        let mut details = vec![format!("expected {wanted}, got {}", run.status)];
        details.extend(why(run.status, run.error.as_deref(), &happened.journal));
        out.push(Failure::new("expect.status", line, details));
    }

    if let Some(output) = &expect.output {
        let actual = run.output.clone().unwrap_or(Value::Null);
        let details = told_under("output", &output.value, &actual);
        if !details.is_empty() {
            out.push(Failure::new("expect.output", output.line, details));
        }
    }

    for (id, step) in &expect.steps {
        let entry = last_entry(&happened.journal, id);
        let what = format!("expect.steps.{id}");
        let mut details = Vec::new();
        let status = entry.map_or("not_run", |e| e.status.as_str());
        if let Some(want) = &step.status
            && want != status
        {
            details.push(format!("status: expected {want}, got {status}"));
        }
        match entry {
            None if step.status.as_deref() != Some("not_run") => {
                let ran: Vec<&str> = happened
                    .journal
                    .iter()
                    .map(|e| e.step_id.as_str())
                    .collect();
                let hint = suggest_closest(id, ran.iter().copied())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                details.push(format!("step `{id}` never ran{hint}"));
            }
            None => {}
            Some(entry) => {
                if let Some(want) = &step.output {
                    let actual = entry.output.clone().unwrap_or(Value::Null);
                    details.extend(
                        subset::mismatches(want, &actual)
                            .iter()
                            .map(|m| m.under("output")),
                    );
                }
                if let Some(want) = &step.error {
                    let got = entry.error.as_deref().unwrap_or_default();
                    if !got.contains(want.as_str()) {
                        details.push(format!(
                            "error: expected it to contain {want:?}, got {got:?}"
                        ));
                    }
                }
                if let Some(want) = &step.error_class {
                    let got = entry.error_class.as_deref().unwrap_or("none");
                    if want != got {
                        details.push(format!("error_class: expected {want}, got {got}"));
                    }
                }
            }
        }
        if !details.is_empty() {
            out.push(Failure::new(what, step.line, details));
        }
    }

    for (connector, wanted) in &expect.requests {
        let what = format!("expect.requests.{connector}");
        let Some(got) = happened.requests.get(connector) else {
            out.push(Failure::new(
                what,
                wanted.line,
                vec![format!("the project has no connector `{connector}`")],
            ));
            continue;
        };
        let details = unmatched_requests(wanted, got);
        if !details.is_empty() {
            out.push(Failure::new(what, wanted.line, details));
        }
    }

    if let Some(state) = &expect.state {
        let details = told_under("state", &state.value, &happened.state);
        if !details.is_empty() {
            out.push(Failure::new("expect.state", state.line, details));
        }
    }

    if let Some(dead) = &expect.dead_letter {
        let mut details = Vec::new();
        let failed = happened
            .journal
            .iter()
            .rev()
            .find(|e| e.current && e.status == StepStatus::Failed);
        if let Some(want) = &dead.step {
            let got = failed.map_or("none", |e| e.step_id.as_str());
            if want != got {
                details.push(format!("step: expected {want}, got {got}"));
            }
        }
        if let Some(want) = &dead.class {
            let got = failed
                .and_then(|e| e.error_class.as_deref())
                .unwrap_or("none");
            if want != got {
                details.push(format!("class: expected {want}, got {got}"));
            }
        }
        if let Some(want) = &dead.error {
            let got = run.error.as_deref().unwrap_or_default();
            if !got.contains(want.as_str()) {
                details.push(format!(
                    "error: expected it to contain {want:?}, got {got:?}"
                ));
            }
        }
        if !details.is_empty() {
            out.push(Failure::new("expect.dead_letter", dead.line, details));
        }
    }
}

fn told_under(prefix: &str, expected: &Value, actual: &Value) -> Vec<String> {
    subset::mismatches(expected, actual)
        .iter()
        .map(|m| m.under(prefix))
        .collect()
}

/// How the requests a connector received differ from those expected, as a
/// set: each expectation must match a request of its own, and no request
/// may be left over. Order is not checked, since the order of a fan-out's
/// concurrent calls is not known in advance (the order of steps is checked
/// by their own expectations). Expectations are matched to requests as a
/// bipartite matching, so an expectation that fits several requests never
/// takes the one another needs.
fn unmatched_requests(wanted: &[RequestMatcher], got: &[RecordedRequest]) -> Vec<String> {
    let fits: Vec<Vec<usize>> = wanted
        .iter()
        .map(|want| {
            (0..got.len())
                .filter(|&r| fixture::differences(want, &got[r]).is_empty())
                .collect()
        })
        .collect();
    let mut owner: Vec<Option<usize>> = vec![None; got.len()];
    for expectation in 0..wanted.len() {
        let mut seen = vec![false; got.len()];
        augment(expectation, &fits, &mut owner, &mut seen);
    }
    let mut details = Vec::new();
    if wanted.len() != got.len() {
        details.push(format!(
            "expected {} request(s), got {}",
            wanted.len(),
            got.len()
        ));
    }
    let mut left: Vec<usize> = (0..got.len()).filter(|&r| owner[r].is_none()).collect();
    for (index, want) in wanted.iter().enumerate() {
        if owner.contains(&Some(index)) {
            continue;
        }
        let shown = format!("{} {}", want.method.to_ascii_uppercase(), want.path);
        // The closest request left over tells best what is off; it is then
        // told here rather than again as unexpected.
        let closest = left
            .iter()
            .map(|&r| (r, fixture::differences(want, &got[r])))
            .min_by_key(|(_, differences)| differences.len());
        match closest {
            Some((r, differences)) => {
                details.push(format!(
                    "[{index}] {shown}: no request matches; the closest, {}, differs:",
                    fixture::shown(&got[r])
                ));
                details.extend(differences.iter().map(|d| format!("    {d}")));
                left.retain(|&other| other != r);
            }
            None => details.push(format!("[{index}] {shown}: no request left to match")),
        }
    }
    if !left.is_empty() {
        details.push("not expected:".to_string());
        details.extend(
            left.iter()
                .map(|&r| format!("    {}", fixture::shown(&got[r]))),
        );
    }
    details
}

/// Kuhn's augmenting path: finds `expectation` a request, moving earlier
/// expectations to other requests they also fit when needed.
fn augment(
    expectation: usize,
    fits: &[Vec<usize>],
    owner: &mut [Option<usize>],
    seen: &mut [bool],
) -> bool {
    for &request in &fits[expectation] {
        if seen[request] {
            continue;
        }
        seen[request] = true;
        let free = match owner[request] {
            None => true,
            Some(other) => augment(other, fits, owner, seen),
        };
        if free {
            owner[request] = Some(expectation);
            return true;
        }
    }
    false
}

/// The step's entry as it stands: the last current one that is not an
/// item of a fan-out (a `for_each` step's own entry collects its items).
fn last_entry<'a>(journal: &'a [JournalEntry], id: &str) -> Option<&'a JournalEntry> {
    journal
        .iter()
        .rev()
        .find(|e| e.current && e.step_id == id && e.item.is_none())
}

/// Why a run did not end as expected: its error and its failed step.
fn why(status: RunStatus, error: Option<&str>, journal: &[JournalEntry]) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(error) = error {
        lines.push(format!("the run's error: {error}"));
    }
    if status == RunStatus::Dead
        && let Some(failed) = journal
            .iter()
            .rev()
            .find(|e| e.current && e.status == StepStatus::Failed)
    {
        lines.push(format!(
            "failed at step `{}` ({})",
            failed.step_id,
            failed.error_class.as_deref().unwrap_or("no class")
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sent(path: &str, body: Value) -> RecordedRequest {
        RecordedRequest {
            seq: 0,
            method: "PUT".to_string(),
            path: path.to_string(),
            query: String::new(),
            query_pairs: Vec::new(),
            headers: Default::default(),
            body: body.to_string().into(),
            json: Some(body),
            route: None,
            params: Default::default(),
            received_at: std::time::Instant::now(),
        }
    }

    fn expected(path: &str, body: Option<Value>) -> RequestMatcher {
        RequestMatcher {
            method: "put".to_string(),
            path: path.to_string(),
            body,
            ..RequestMatcher::default()
        }
    }

    #[test]
    fn requests_match_in_any_order_without_a_broad_expectation_taking_a_narrow_ones_request() {
        let got = [
            sent("/customers/c1", json!({"name": "Ada"})),
            sent("/customers/c2", json!({"name": "Alan"})),
        ];
        // The first expectation fits both requests; taken greedily it would
        // leave the second none.
        let wanted = [
            expected("/customers/{id}", None),
            expected("/customers/{id}", Some(json!({"name": "Ada"}))),
        ];
        assert_eq!(unmatched_requests(&wanted, &got), Vec::<String>::new());
    }

    #[test]
    fn a_missing_or_extra_request_is_told_with_the_closest_difference() {
        let got = [
            sent("/customers/c1", json!({"name": "Ada"})),
            sent("/customers/c2", json!({"name": "Alan"})),
        ];
        let wanted = [expected("/customers/c1", Some(json!({"name": "Grace"})))];
        assert_eq!(
            unmatched_requests(&wanted, &got),
            [
                "expected 1 request(s), got 2",
                "[0] PUT /customers/c1: no request matches; the closest, PUT /customers/c1, differs:",
                r#"    body.name: expected "Grace", got "Ada""#,
                "not expected:",
                "    PUT /customers/c2",
            ]
        );
    }
}
