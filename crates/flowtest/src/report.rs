//! What people and CI read of a test run: a text report (each failure
//! with the part of the test, its line, and what differs) and JUnit XML.

use std::fmt::Write as _;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::run::{Outcome, TestResult};

/// The text report, tests in file order, then a summary line.
pub fn text(results: &[TestResult], total: Duration) -> String {
    let mut out = String::new();
    for result in results {
        let (word, ok) = match result.outcome {
            Outcome::Passed => ("ok", true),
            Outcome::Failed(_) => ("FAIL", false),
            Outcome::Error(_) => ("ERROR", false),
        };
        let _ = writeln!(
            out,
            "{word:<5} {} ({}){}",
            result.name,
            result.path.display(),
            if ok {
                String::new()
            } else {
                format!(" {}", seconds(result.duration))
            }
        );
        out.push_str(&details(result, "      "));
    }
    let passed = results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Passed))
        .count();
    let _ = writeln!(
        out,
        "\n{} passed, {} failed, {} in total ({})",
        passed,
        results.len() - passed,
        results.len(),
        seconds(total)
    );
    out
}

/// A failed or broken test's lines, each starting with `indent`.
fn details(result: &TestResult, indent: &str) -> String {
    let mut out = String::new();
    match &result.outcome {
        Outcome::Passed => {}
        Outcome::Error(message) => {
            for line in message.lines() {
                let _ = writeln!(out, "{indent}{line}");
            }
        }
        Outcome::Failed(failures) => {
            for failure in failures {
                let at = if failure.line > 0 {
                    format!("{}:{}", result.path.display(), failure.line)
                } else {
                    result.path.display().to_string()
                };
                let _ = writeln!(out, "{indent}{} ({at})", failure.what);
                for detail in &failure.details {
                    let _ = writeln!(out, "{indent}  {detail}");
                }
            }
        }
    }
    out
}

fn seconds(duration: Duration) -> String {
    format!("{:.2} s", duration.as_secs_f64())
}

/// The results as JUnit XML: one suite, a case per test file.
pub fn junit(
    results: &[TestResult],
    total: Duration,
) -> Result<String, quick_junit::SerializeError> {
    let mut report = Report::new("patchbay test");
    let mut suite = TestSuite::new("flows");
    suite.set_time(total);
    for result in results {
        let mut status = match &result.outcome {
            Outcome::Passed => TestCaseStatus::success(),
            Outcome::Failed(_) => TestCaseStatus::non_success(NonSuccessKind::Failure),
            Outcome::Error(_) => TestCaseStatus::non_success(NonSuccessKind::Error),
        };
        match &result.outcome {
            Outcome::Passed => {}
            Outcome::Failed(failures) => {
                status.set_message(format!("{} expectation(s) did not hold", failures.len()));
                status.set_description(details(result, ""));
            }
            Outcome::Error(message) => {
                status.set_message("the test could not run");
                status.set_description(message.clone());
            }
        }
        let mut case = TestCase::new(result.name.clone(), status);
        case.set_classname(result.path.display().to_string());
        case.set_time(result.duration);
        suite.add_test_case(case);
    }
    report.add_test_suite(suite);
    report.to_string()
}
