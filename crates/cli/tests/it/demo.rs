//! `patchbay demo --for` ends by itself, every demo flow has succeeded, and
//! its scripted outages were ridden out: the payment gateway's outage by the
//! breaker and the backup gateway, the chat outage by run retries, with every
//! order charged exactly once.

use std::process::Command;

use crate::support::binary;

/// The number printed right after `label` (the first occurrence).
fn number_after(stdout: &str, label: &str) -> u64 {
    let start = stdout
        .find(label)
        .unwrap_or_else(|| panic!("`{label}` is not in the report:\n{stdout}"))
        + label.len();
    let digits: String = stdout[start..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number after `{label}`:\n{stdout}"))
}

/// The indented report lines between `from` and the next line starting
/// with two spaces and a letter (the next section of the outage report).
fn section<'a>(stdout: &'a str, from: &str) -> Vec<&'a str> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with(from))
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .collect()
}

#[test]
fn demo_rides_out_its_outages_and_every_flow_succeeds() {
    // Long enough to see both outages end (chat is back at 12s); the retried
    // runs finish while the demo drains.
    let output = Command::new(binary())
        .args(["demo", "--for", "13s", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("/api/v1/runs"),
        "the API address is printed:\n{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("dashboard") && l.contains("/ui")),
        "the dashboard address is printed:\n{stdout}"
    );
    let mut new_orders = 0;
    for flow in ["new-order", "quote", "sync-contacts"] {
        let row = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{flow} ")))
            .unwrap_or_else(|| panic!("no row for {flow}:\n{stdout}"));
        let column = |n: usize| -> u64 { row.split_whitespace().nth(n).unwrap().parse().unwrap() };
        let (succeeded, dead, queued) = (column(1), column(2), column(4));
        assert!(succeeded > 0, "{flow} had no successful run:\n{stdout}");
        assert_eq!(dead, 0, "{flow} has dead runs:\n{stdout}");
        assert_eq!(queued, 0, "{flow} has unfinished runs:\n{stdout}");
        if flow == "new-order" {
            new_orders = succeeded;
        }
    }

    // Both outages happened and ended.
    for line in [
        "payments is down",
        "payments is back",
        "chat is down",
        "chat is back",
    ] {
        assert!(stdout.contains(line), "no `{line}`:\n{stdout}");
    }

    // The payments breaker opened, and closed again once the gateway was back;
    // meanwhile orders were charged by the backup.
    let breaker = section(&stdout, "  payments ");
    assert!(
        breaker.iter().any(|l| l.contains("opened")),
        "the payments breaker did not open:\n{stdout}"
    );
    assert!(
        breaker
            .last()
            .is_some_and(|l| l.contains("the probe succeeded, closed")),
        "the payments breaker did not close:\n{stdout}"
    );
    assert!(
        number_after(&stdout, "charged by payments_backup:") > 0,
        "no order was charged by the backup:\n{stdout}"
    );

    // Runs failed by the chat outage were rescheduled and all succeeded.
    let rescheduled = number_after(&stdout, "runs rescheduled:");
    assert!(rescheduled > 0, "no run was rescheduled:\n{stdout}");
    assert_eq!(number_after(&stdout, "recovered:"), rescheduled, "{stdout}");
    assert_eq!(number_after(&stdout, "still waiting:"), 0, "{stdout}");
    assert_eq!(
        number_after(&stdout, "charges repeated by rescheduled runs:"),
        0,
        "{stdout}"
    );

    // Every order charged exactly once, across both gateways.
    assert_eq!(number_after(&stdout, "charged twice:"), 0, "{stdout}");
    assert_eq!(number_after(&stdout, "not charged:"), 0, "{stdout}");
    assert_eq!(
        number_after(&stdout, "Upstreams:"),
        new_orders,
        "one charge per succeeded order:\n{stdout}"
    );
    assert_eq!(
        number_after(&stdout, "side effects: charges:"),
        new_orders,
        "{stdout}"
    );
    assert_eq!(
        number_after(&stdout, "orders charged:"),
        new_orders,
        "{stdout}"
    );

    assert!(stdout.contains("A sample run of new-order"), "{stdout}");
}
