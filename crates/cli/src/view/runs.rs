//! Runs for people: the runs list as a table (`runs list`, `dead-letters
//! list`) and one run step by step with its attempts, durations and errors
//! (`runs show`, and the demo's report).

use patchbay_store::{InputEdit, JournalEntry, Run};
use serde::Deserialize;
use serde_json::Value;

use super::{dim, one_line, status, table};

/// A page of runs (`{items, next_cursor}`) as a table, newest first.
pub fn list(document: &Value) -> anyhow::Result<String> {
    let runs = super::items(document);
    if runs.is_empty() {
        return Ok("no runs\n".to_string());
    }
    let rows = runs
        .iter()
        .map(|run| {
            [
                super::cell(&run["id"]),
                super::cell(&run["flow"]),
                status(run["status"].as_str().unwrap_or("")),
                super::cell(&run["attempts"]),
                super::cell(&run["retries"]),
                super::time(&run["created_at"]),
                one_line(run["error"].as_str().unwrap_or(""), 80),
            ]
        })
        .collect();
    Ok(table(
        [
            "ID", "FLOW", "STATUS", "ATTEMPTS", "RETRIES", "CREATED", "ERROR",
        ],
        rows,
    ))
}

/// `GET /api/v1/runs/{id}`: a run and its journal.
#[derive(Deserialize)]
struct Detail {
    run: Run,
    journal: Vec<JournalEntry>,
    #[serde(default)]
    input_edits: Vec<InputEdit>,
}

/// One run (`{run, journal}`) step by step.
pub fn detail(document: &Value) -> anyhow::Result<String> {
    let Detail {
        run,
        journal,
        input_edits,
    } = serde_json::from_value(document.clone())?;
    let mut out = format!(
        "run {}  {}  {}\n",
        run.id,
        run.flow,
        status(run.status.as_str())
    );
    let finished = run
        .finished_at
        .map(|at| {
            let took = (at - run.created_at).num_milliseconds().max(0);
            format!("  finished {} ({})", clock(&at), millis(took as u64))
        })
        .unwrap_or_default();
    out.push_str(&format!(
        "  {} {}{finished}\n  trigger {}  attempts {}  retries {}\n",
        dim("created"),
        run.created_at.format("%Y-%m-%d %H:%M:%S%.3f"),
        run.trigger,
        run.attempts,
        run.retries,
    ));
    if run.status.as_str() == "queued" && run.retries > 0 {
        out.push_str(&format!(
            "  next attempt {}\n",
            run.next_attempt_at.format("%Y-%m-%d %H:%M:%S%.3f")
        ));
    }
    if let Some(error) = &run.error {
        out.push_str(&format!("  error {error}\n"));
    }
    out.push_str(&format!("  input {}\n", compact(&run.input, 200)));
    for edit in &input_edits {
        out.push_str(&format!(
            "  {} {}, was {}\n",
            dim("input edited"),
            edit.edited_at.format("%Y-%m-%d %H:%M:%S%.3f"),
            compact(&edit.previous, 200)
        ));
    }
    if let Some(parent) = run.parent {
        out.push_str(&format!("  started by run {parent}\n"));
    }
    out.push_str("steps\n");
    if journal.is_empty() {
        out.push_str("  (none yet)\n");
    }
    for entry in &journal {
        out.push_str(&entry_lines(entry));
    }
    if let Some(output) = &run.output {
        out.push_str(&format!("output {}\n", compact(output, 200)));
    }
    Ok(out)
}

/// One journal entry: attempt, step (and item), status, duration, the
/// request it made and what it answered; the error on the next line. Set
/// aside entries (a replay from the start) are marked.
pub fn entry_lines(entry: &JournalEntry) -> String {
    let answered = entry
        .request
        .as_ref()
        .and_then(|r| r.get("status"))
        .filter(|s| !s.is_null())
        .map(|s| s.to_string())
        .unwrap_or_default();
    let target = entry
        .request
        .as_ref()
        .map(|r| {
            format!(
                "{} {}",
                r["method"].as_str().unwrap_or(""),
                r["url"].as_str().unwrap_or("")
            )
        })
        .unwrap_or_default();
    let step = match entry.item {
        Some(item) => format!("{}[{item}]", entry.step_id),
        None => entry.step_id.clone(),
    };
    // Padded before colouring: escape codes would upset the widths.
    let state = format!("{:<9}", entry.status.as_str());
    let state = state.replacen(entry.status.as_str(), &status(entry.status.as_str()), 1);
    let line = format!(
        "  #{} {step:<14} {state} {:>6}  {target} {answered}{}",
        entry.attempt,
        millis(entry.duration_ms),
        if entry.current { "" } else { "  (set aside)" },
    );
    let mut out = format!("{}\n", line.trim_end());
    if let Some(error) = &entry.error {
        let class = entry
            .error_class
            .as_deref()
            .map(|c| format!(" [{c}]"))
            .unwrap_or_default();
        out.push_str(&format!("       {error}{}\n", dim(&class)));
    }
    out
}

fn clock(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.format("%H:%M:%S%.3f").to_string()
}

/// A duration for people: `840ms`, `2.4s`, `3m05s`.
fn millis(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        _ => format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60),
    }
}

/// JSON on one line, cut to `max` characters.
fn compact(value: &Value, max: usize) -> String {
    one_line(&value.to_string(), max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(millis(840), "840ms");
        assert_eq!(millis(2_430), "2.4s");
        assert_eq!(millis(185_000), "3m05s");
    }
}
