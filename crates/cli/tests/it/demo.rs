//! `patchbay demo --for` ends by itself and every demo flow has succeeded.

use std::process::Command;

use crate::support::binary;

#[test]
fn demo_runs_for_a_while_and_every_flow_succeeds() {
    let output = Command::new(binary())
        .args(["demo", "--for", "6s", "--listen", "127.0.0.1:0"])
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
    for flow in ["new-order", "quote", "sync-contacts"] {
        let row = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{flow} ")))
            .unwrap_or_else(|| panic!("no row for {flow}:\n{stdout}"));
        let succeeded: u64 = row.split_whitespace().nth(1).unwrap().parse().unwrap();
        let failed: u64 = row.split_whitespace().nth(2).unwrap().parse().unwrap();
        assert!(succeeded > 0, "{flow} had no successful run:\n{stdout}");
        assert_eq!(failed, 0, "{flow} had failures:\n{stdout}");
    }
    assert!(stdout.contains("A sample run of new-order"), "{stdout}");
}
